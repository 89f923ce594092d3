package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/app"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mockclerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testclock"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testredis"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store/redisstore"
)

// replica is a second server with the same configuration and Redis as an
// environment: what a load balancer in front of several pods reaches.
type replica struct {
	t    *testing.T
	addr string // where it listens
	host string // the public Host (BASE_URL's), as the load balancer forwards it
}

func startReplica(t *testing.T, e *e2etest.Env, now func() time.Time) *replica {
	t.Helper()
	return startReplicaWith(t, e, app.Options{Now: now})
}

// startReplicaWith is startReplica with more options (its store and logger
// are set here).
func startReplicaWith(t *testing.T, e *e2etest.Env, o app.Options) *replica {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg := e.App.Config
	st, err := redisstore.New(ctx, redisstore.Options{URL: cfg.RedisURL, Prefix: cfg.RedisPrefix})
	if err != nil {
		t.Fatal(err)
	}
	o.Store, o.Logger = st, slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := app.New(ctx, cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Serve(ctx, l, 5*time.Second) }()
	t.Cleanup(func() { cancel(); <-done; _ = st.Close() })
	u, _ := url.Parse(e.BaseURL)
	return &replica{t: t, addr: l.Addr().String(), host: u.Host}
}

// do sends a request to this replica with the public Host.
func (r *replica) do(method, path, token, contentType string, body []byte) (int, []byte) {
	r.t.Helper()
	req, _ := http.NewRequest(method, "http://"+r.addr+path, bytes.NewReader(body))
	req.Host = r.host
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func (r *replica) initialize(token string) int {
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": map[string]any{
		"protocolVersion": "2025-11-25", "capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "replica", "version": "1"}}})
	status, _ := r.do(http.MethodPost, "/mcp", token, "application/json", body)
	return status
}

// TestReplicasShareState: tokens issued by one replica work at another (the
// signing keys and grants live in Redis), a refresh on one rotates for all,
// and a revocation on one ends the grant on the other within the grant
// cache's second.
func TestReplicasShareState(t *testing.T) {
	t.Parallel()
	e := e2etest.Start(t, e2etest.Options{})
	b := startReplica(t, e, nil)
	c := e.Register()
	e.Login(c, testflow.Choices{}) // on replica A

	if status := b.initialize(c.AccessToken); status != http.StatusOK {
		t.Fatalf("A's access token at replica B: %d", status)
	}
	access, refresh := refreshAt(t, b, c) // A's refresh token, at B
	if r := e.MCP(access, "", "initialize", map[string]any{"protocolVersion": "2025-11-25", "capabilities": map[string]any{},
		"clientInfo": map[string]any{"name": "a", "version": "1"}}); r.Status != http.StatusOK {
		t.Fatalf("B's access token at A: %d", r.Status)
	}

	// Revoke at A; B stops accepting the grant's tokens.
	if resp, err := http.PostForm(e.BaseURL+"/revoke", url.Values{"token": {refresh}, "client_id": {c.ID}}); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke at A: %v", err)
	}
	var last int
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if last = b.initialize(access); last == http.StatusUnauthorized {
			break
		}
	}
	if last != http.StatusUnauthorized {
		t.Fatalf("B still accepts a grant revoked at A: %d", last)
	}
	if status, raw := b.do(http.MethodGet, "/.well-known/jwks.json", "", "", nil); status != http.StatusOK || !strings.Contains(string(raw), `"kid"`) {
		t.Errorf("B's JWKS: %d", status)
	}
}

// TestUpstreamRefreshOnceAcrossReplicas: when Clerk's token expires, 60
// concurrent requests spread over three replicas refresh it at Clerk exactly
// once (a Redis lock), and all of them succeed (issue #17's goal 3).
func TestUpstreamRefreshOnceAcrossReplicas(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := e2etest.Start(t, e2etest.Options{Now: clock, Clerk: func(c *mockclerk.Config) { c.AccessTokenTTL = time.Minute }})
	b, c3 := startReplica(t, e, clock), startReplica(t, e, clock)
	c := e.Register()
	e.Login(c, testflow.Choices{})
	before := e.Clerk.Stats()["/oauth/token"]
	mu.Lock()
	now = now.Add(2 * time.Minute) // Clerk's token has expired for every replica
	mu.Unlock()

	var wg sync.WaitGroup
	statuses := make(chan int, 60)
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch i % 3 {
			case 0:
				statuses <- b.initialize(c.AccessToken)
				return
			case 1:
				statuses <- c3.initialize(c.AccessToken)
				return
			}
			statuses <- e.MCP(c.AccessToken, "", "initialize", map[string]any{"protocolVersion": "2025-11-25",
				"capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "a", "version": "1"}}).Status
		}()
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusOK {
			t.Errorf("a request during the upstream refresh got %d", s)
		}
	}
	if got := e.Clerk.Stats()["/oauth/token"] - before; got != 1 {
		t.Fatalf("Clerk token refreshes for 60 requests on 3 replicas = %d, want 1", got)
	}
}

// TestSigningKeysSurviveRedisDataLoss: Redis loses everything (a flush, or a
// failover to an empty replica) while replica A runs, and replica C starts
// afterwards with a key set of its own. Once A re-syncs (it does before
// signing, at most every few seconds), tokens signed by either replica, even
// those A signed before it noticed, verify on both.
func TestSigningKeysSurviveRedisDataLoss(t *testing.T) {
	t.Parallel()
	clock := testclock.New(time.Now())
	e := e2etest.Start(t, e2etest.Options{Redis: testredis.Start(t), Now: clock.Now})
	if err := e.Redis.Client(t).FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	c := startReplica(t, e, clock.Now)

	early := e.Register()
	e.Login(early, testflow.Choices{}) // signed by A with its pre-flush key
	clock.Advance(10 * time.Second)
	late := e.Register()
	e.Login(late, testflow.Choices{}) // A re-syncs first: the store now holds both sets
	viaC := e.Register()
	e.Login(viaC, testflow.Choices{})
	viaCToken, _ := refreshAt(t, c, viaC) // signed by C

	for name, tok := range map[string]string{"A before it noticed": early.AccessToken, "A after": late.AccessToken, "C": viaCToken} {
		if status := c.initialize(tok); status != http.StatusOK {
			t.Errorf("token signed by %s, at C: %d", name, status)
		}
		if r := e.MCP(tok, "", "initialize", map[string]any{"protocolVersion": "2025-11-25", "capabilities": map[string]any{},
			"clientInfo": map[string]any{"name": "a", "version": "1"}}); r.Status != http.StatusOK {
			t.Errorf("token signed by %s, at A: %d", name, r.Status)
		}
	}
}

// refreshAt refreshes cl's tokens at replica r and returns the new pair.
func refreshAt(t *testing.T, r *replica, cl *e2etest.Client) (access, refresh string) {
	t.Helper()
	status, raw := r.do(http.MethodPost, "/token", "", "application/x-www-form-urlencoded",
		[]byte(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {cl.RefreshToken}, "client_id": {cl.ID}}.Encode()))
	var pair struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if json.Unmarshal(raw, &pair) != nil || status != http.StatusOK || pair.AccessToken == "" {
		t.Fatalf("refresh at %s: %d %s", r.addr, status, raw)
	}
	return pair.AccessToken, pair.RefreshToken
}

// TestRefreshSuccessorUseSeenByAllReplicas: the client refreshes at replica
// A and uses the new access token at replica B only; hours later a thief
// presents the old refresh token at A. B recorded the successor's use in
// Redis, so A treats the replay as theft and the grant dies everywhere.
func TestRefreshSuccessorUseSeenByAllReplicas(t *testing.T) {
	clock := testclock.New(time.Now())
	e := e2etest.Start(t, e2etest.Options{Now: clock.Now})
	b := startReplica(t, e, clock.Now)
	c := e.Register()
	e.Login(c, testflow.Choices{})
	stolen := c.RefreshToken
	p := refreshOK(t, e, c, c.RefreshToken) // at A
	if status := b.initialize(p.access); status != http.StatusOK {
		t.Fatalf("the successor's access token at B: %d", status)
	}
	clock.Advance(2 * time.Hour)
	revocations := clerkRevocations(e)
	if status, out := e.Refresh(c, stolen); status != http.StatusBadRequest || out["error"] != "invalid_grant" {
		t.Fatalf("the thief's refresh at A: %d %v, want 400 invalid_grant", status, out)
	}
	wantGrantRevoked(t, e, c, revocations, []string{p.access}, []string{p.refresh})
}
