package app_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testclock"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testredis"
)

// BenchmarkTokenChurn measures what the process keeps per issued token: the
// chaos soak's traffic (docs/operations.md section 5) in one process —
// cycles of registration, sign-in, an MCP session and a tool call, a
// refresh, a new session and a tool call with the new token, and a
// revocation — two access tokens per cycle. Reported, as the live heap's
// growth (after a full GC) from a warm point (a fifth of the cycles) per
// token issued after it:
//
//   - live-B/token: at the end of the cycles, every token still within
//     its lifetime and every session just used;
//   - expired-B/token: after every in-process entry about those tokens has
//     expired — the injected clock moved 11 minutes on (past the caches'
//     TTLs, within the access tokens' hour) and, for mcp-go's session
//     sweeper, which runs on the real clock, 95 s waited with
//     MCP_SESSION_IDLE_TTL=1m — and 20 more cycles run. What is still
//     there is kept per token for longer than any cache's TTL: a leak.
//
// BENCH_CHURN_N sets the cycles (default 2,000); with BENCH_CHURN_PROFILE=dir
// the heap profiles at the three points are written there (go tool pprof
// -sample_index=inuse_space -top -base warm.pprof live.pprof). The fake
// Clerk runs in the same process: its share is in the profile under
// internal/mockclerk.
//
//	REQUIRE_REDIS=1 BENCH_CHURN_N=10000 go test -run '^$' -bench TokenChurn -benchtime 1x ./internal/app
func BenchmarkTokenChurn(b *testing.B) {
	n := 2_000
	if v, err := strconv.Atoi(os.Getenv("BENCH_CHURN_N")); err == nil && v > 0 {
		n = v
	}
	dir := os.Getenv("BENCH_CHURN_PROFILE")
	if dir != "" {
		// Finer than the default (512 KiB) so small per-token structures show.
		runtime.MemProfileRate = 16 << 10
	}
	clock := testclock.New(time.Now())
	e := e2etest.Start(b, e2etest.Options{Redis: testredis.Start(b), Now: clock.Now, LogTo: io.Discard,
		Env: map[string]string{"LOG_LEVEL": "info", "MCP_SESSION_IDLE_TTL": "1m"}})
	users := []string{"user_2aliceExampleSeededUser0001", "user_2bobExampleSeededUser00002", "user_2carolExampleSeededUser003"}
	cycle := func(i int) error {
		c, err := e.TryRegister()
		if err != nil {
			return err
		}
		if err := e.TryLogin(c, testflow.Choices{UserID: users[i%len(users)]}); err != nil {
			return err
		}
		if err := churnToolCall(e, c.AccessToken); err != nil {
			return err
		}
		status, out, err := e.TryPostForm("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {c.RefreshToken}}, c)
		if err != nil || status != http.StatusOK {
			return fmt.Errorf("refresh: %d %v", status, err)
		}
		c.AccessToken, c.RefreshToken = out["access_token"].(string), out["refresh_token"].(string)
		if err := churnToolCall(e, c.AccessToken); err != nil {
			return err
		}
		status, _, err = e.TryPostForm("/revoke", url.Values{"token": {c.RefreshToken}, "token_type_hint": {"refresh_token"}}, c)
		if err != nil || status != http.StatusOK {
			return fmt.Errorf("revoke: %d %v", status, err)
		}
		return nil
	}
	// run does cycles [from, to) on 4 workers.
	run := func(b *testing.B, from, to int) {
		next := make(chan int)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for i := range next {
					if err := cycle(i); err != nil {
						b.Error(err)
					}
				}
			})
		}
		for i := from; i < to && !b.Failed(); i++ {
			next <- i
		}
		close(next)
		wg.Wait()
	}
	profile := func(b *testing.B, name string) {
		if dir == "" {
			return
		}
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		warmAt := n / 5
		run(b, 0, warmAt)
		warm := liveHeap()
		profile(b, "warm.pprof")
		run(b, warmAt, n)
		live := liveHeap()
		profile(b, "live.pprof")
		clock.Advance(11 * time.Minute)
		time.Sleep(95 * time.Second)
		run(b, n, n+20)
		expired := liveHeap()
		profile(b, "expired.pprof")
		tokens := float64(2 * (n - warmAt))
		b.ReportMetric(float64(int64(live)-int64(warm))/tokens, "live-B/token")
		b.ReportMetric(float64(int64(expired)-int64(warm))/tokens, "expired-B/token")
		b.ReportMetric(float64(live)/(1<<20), "live-heap-MiB")
		b.ReportMetric(float64(expired)/(1<<20), "expired-heap-MiB")
	}
}

// churnToolCall opens an MCP session with token and calls a tool in it.
func churnToolCall(e *e2etest.Env, token string) error {
	r, err := e.TryMCP(token, "", "initialize", map[string]any{"protocolVersion": "2025-11-25",
		"capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "churn", "version": "1"}})
	if err != nil || r.Status != http.StatusOK {
		return fmt.Errorf("initialize: %d %v", r.Status, err)
	}
	if _, err := e.TryMCP(token, r.SessionID, "notifications/initialized", nil); err != nil {
		return err
	}
	r, err = e.TryMCP(token, r.SessionID, "tools/call", map[string]any{"name": "get-user-info", "arguments": map[string]any{}})
	if err != nil || r.Status != http.StatusOK {
		return fmt.Errorf("tools/call: %d %v", r.Status, err)
	}
	return nil
}
