//go:build linux

package replicas

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
)

// clerkCalls are the fake Clerk's endpoints the proxy calls: discovery
// (readiness), the code exchange, introspection and userinfo.
var clerkCalls = []string{"/.well-known/openid-configuration", "/oauth/token", "/oauth/token_info", "/oauth/userinfo"}

// slowClerk makes every call the proxy makes to the fake Clerk wait d first
// (its fault API); 0 clears the faults.
func (s *stack) slowClerk(t *testing.T, d time.Duration) {
	t.Helper()
	if d == 0 {
		req, _ := http.NewRequest(http.MethodDelete, s.clerk+"/__admin/faults", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("clear faults: %v", err)
		}
		resp.Body.Close()
		return
	}
	for _, ep := range clerkCalls {
		body, _ := json.Marshal(map[string]any{"endpoint": ep, "delay_ms": d.Milliseconds()})
		resp, err := http.Post(s.clerk+"/__admin/faults", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("set fault: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("set fault %s: %d", ep, resp.StatusCode)
		}
	}
}

// timed runs f and returns how long it took.
func timed(f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}

// readyz is replica i's /readyz status.
func (s *stack) readyz(i int) int {
	resp, err := http.Get("http://" + s.addrs[i] + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// firstUse is the first MCP request with a fresh token (its Clerk token is
// introspected now).
func firstUse(e *e2etest.Env, u *signedIn) (int, string, error) {
	r, err := e.TryMCP(u.c.AccessToken, "", "initialize", map[string]any{"protocolVersion": "2025-11-25",
		"capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "replicas", "version": "1"}})
	return r.Status, r.Header.Get("Retry-After"), err
}

// TestClerkSlow: the fake Clerk answers, but slowly, under tool-call load
// from clients whose tokens are cached; CLERK_TIMEOUT=2s. Slower than
// usual but within the timeout (1.5 s per call): cached tokens keep
// answering 200; a new sign-in and a fresh token's first use succeed, slowly;
// /readyz stays 200 (its discovery check allows 3 s). Slower than the
// timeout (4 s per call): cached tokens still 200; a new sign-in fails at
// the code exchange and a fresh token's first use gets 503 with
// Retry-After, each after about CLERK_TIMEOUT, never hanging and never 500;
// /readyz answers 503. Faults cleared: /readyz 200 on every replica and a
// sign-in works, with no restart. Durations are logged, not asserted.
func TestClerkSlow(t *testing.T) {
	s := startStackWith(t, stackOptions{env: []string{"CLERK_TIMEOUT=2s"}})
	rec := &recorder{}
	e := e2etest.Attach(t, s.lb)
	e.HTTP = noRedirects(rec)

	cached := signInCached(t, e, 3, 45000)
	ty := &tally{}
	stop := make(chan struct{})
	wg := load(e, cached, ty, stop)
	t.Cleanup(func() {
		select {
		case <-stop:
		default:
			close(stop)
			wg.Wait()
		}
	})
	waitRequests(t, ty, 30)

	for _, phase := range []struct {
		delay       time.Duration
		withinLimit bool
	}{{1500 * time.Millisecond, true}, {4 * time.Second, false}} {
		s.slowClerk(t, phase.delay)
		var u *signedIn
		var err error
		d := timed(func() { u, err = loginAs(e, 45010, users[0]) })
		switch {
		case phase.withinLimit && err != nil:
			t.Errorf("Clerk %v slow: a new sign-in failed: %v", phase.delay, err)
		case !phase.withinLimit && err == nil:
			t.Errorf("Clerk %v slow (over CLERK_TIMEOUT): a new sign-in succeeded", phase.delay)
		}
		t.Logf("Clerk %v slow: a new sign-in took %v: %v", phase.delay, d.Round(10*time.Millisecond), map[bool]any{true: "ok", false: err}[err == nil])
		if u == nil { // a token to try first use with, signed in when Clerk was fast
			s.slowClerk(t, 0)
			if u, err = loginAs(e, 45011, users[1]); err != nil {
				t.Fatal(err)
			}
			s.slowClerk(t, phase.delay)
		}
		var status int
		var retry string
		d = timed(func() { status, retry, err = firstUse(e, u) })
		want := map[bool]int{true: http.StatusOK, false: http.StatusServiceUnavailable}[phase.withinLimit]
		if status != want || err != nil {
			t.Errorf("Clerk %v slow: a fresh token's first use: %d %v, want %d", phase.delay, status, err, want)
		}
		t.Logf("Clerk %v slow: a fresh token's first use answered %d (Retry-After %q) in %v", phase.delay, status, retry, d.Round(10*time.Millisecond))
		var ready int
		d = timed(func() { ready = s.readyz(1) })
		if want := map[bool]int{true: http.StatusOK, false: http.StatusServiceUnavailable}[phase.withinLimit]; ready != want {
			// The result is reused for 2 s: one more look once it expired.
			time.Sleep(2100 * time.Millisecond)
			if ready = s.readyz(1); ready != want {
				t.Errorf("Clerk %v slow: /readyz %d, want %d", phase.delay, ready, want)
			}
		}
		t.Logf("Clerk %v slow: /readyz %d in %v", phase.delay, ready, d.Round(10*time.Millisecond))
		before := ty.total.Load()
		waitRequests(t, ty, 50)
		t.Logf("Clerk %v slow: cached tokens, %d tool calls meanwhile; so far %s", phase.delay, ty.total.Load()-before, ty)
	}
	rec.mu.Lock()
	for _, line := range rec.seen {
		if strings.Contains(line, " 500 ") {
			t.Errorf("the proxy answered 500 with Clerk slow: %s", line)
		}
	}
	rec.mu.Unlock()

	s.slowClerk(t, 0)
	for i := range s.addrs {
		waitReady(t, "http://"+s.addrs[i]+"/readyz", s.replicas[i])
	}
	close(stop)
	wg.Wait()
	checkTally(t, "tool calls with cached tokens while Clerk was slow", ty, 0)
	u, err := loginAs(e, 45012, users[2])
	if err != nil {
		t.Fatalf("sign-in after the slowdown: %v", err)
	}
	if status, err := u.toolCall(e); status != http.StatusOK || err != nil {
		t.Fatalf("tool call after the slowdown: %d %v", status, err)
	}
	t.Log("Clerk fast again, no restart: /readyz 200 on every replica, a new sign-in and tool call work")
}

// TestClerkOutagePastTTL: the fake Clerk is frozen (SIGSTOP: connections
// hang, CLERK_TIMEOUT=2s) for longer than INTROSPECTION_CACHE_TTL (5s).
// Tokens introspected before the freeze answer 200 until their cached
// introspection expires, then 503 (never 401: an outage is not a
// revocation, and never 500); once Clerk runs again (SIGCONT, its memory
// intact) the same tokens answer 200 again, no restart.
func TestClerkOutagePastTTL(t *testing.T) {
	s := startStackWith(t, stackOptions{env: []string{"CLERK_TIMEOUT=2s", "INTROSPECTION_CACHE_TTL=5s"}})
	e := e2etest.Attach(t, s.lb)
	e.HTTP = noRedirects(http.DefaultTransport)
	u, err := loginAs(e, 45100, users[1])
	if err != nil {
		t.Fatal(err)
	}
	if status, err := u.toolCall(e); status != http.StatusOK || err != nil {
		t.Fatalf("tool call before the outage: %d %v", status, err)
	}
	introspected := time.Now()
	s.clerkProc.signal(syscall.SIGSTOP)
	t.Cleanup(func() { s.clerkProc.signal(syscall.SIGCONT) })
	frozen := time.Now()

	seen := map[int]int{}
	var refusedAt time.Duration
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		status, err := u.toolCall(e)
		seen[status]++
		if status == http.StatusOK && err != nil {
			t.Fatalf("wrong answer: %v", err)
		}
		if status != http.StatusOK && status != http.StatusServiceUnavailable {
			t.Fatalf("a cached token during the outage answered %d (%v); want 200, then 503", status, err)
		}
		if status == http.StatusServiceUnavailable {
			refusedAt = time.Since(introspected)
			break
		}
		u.session = ""
		if time.Now().After(deadline) {
			t.Fatalf("a cached token still answers 200 60s into the outage, INTROSPECTION_CACHE_TTL=5s")
		}
	}
	t.Logf("Clerk frozen: the cached token answered 200 until %v after its introspection (%v into the outage), then 503 (answers: %v)",
		refusedAt.Round(100*time.Millisecond), time.Since(frozen).Round(100*time.Millisecond), seen)

	s.clerkProc.signal(syscall.SIGCONT)
	thawed := time.Now()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		u.session = ""
		status, err := u.toolCall(e)
		if status == http.StatusOK && err == nil {
			break
		}
		if status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("after Clerk resumed, the token answered %d (%v)", status, err)
		}
	}
	t.Logf("Clerk resumed: the same token answers 200 again %v later, no restart", time.Since(thawed).Round(100*time.Millisecond))
}
