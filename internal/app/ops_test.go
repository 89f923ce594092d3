package app_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mockclerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testredis"
)

// waitStatus polls url until it answers want (readiness is cached for two
// seconds, so a change shows up after at most that long).
func waitStatus(t *testing.T, url string, want int) {
	t.Helper()
	var got int
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got = resp.StatusCode; got == want {
			return
		}
	}
	t.Fatalf("%s: status %d, want %d", url, got, want)
}

// TestReadiness: /readyz fails while Redis or Clerk's discovery is
// unreachable and recovers when they are back; /healthz stays up.
func TestReadiness(t *testing.T) {
	t.Parallel()
	e := e2etest.Start(t, e2etest.Options{Redis: testredis.Start(t)})
	waitStatus(t, e.BaseURL+"/readyz", http.StatusOK)

	e.Redis.Stop(t)
	waitStatus(t, e.BaseURL+"/readyz", http.StatusServiceUnavailable)
	waitStatus(t, e.BaseURL+"/healthz", http.StatusOK)
	e.Redis.Restart(t)
	waitStatus(t, e.BaseURL+"/readyz", http.StatusOK)

	e.Clerk.SetFault(mockclerk.Fault{Endpoint: "/.well-known/openid-configuration", Status: http.StatusBadGateway})
	waitStatus(t, e.BaseURL+"/readyz", http.StatusServiceUnavailable)
	e.Clerk.ClearFaults()
	waitStatus(t, e.BaseURL+"/readyz", http.StatusOK)
}

// TestAccessAndAuditLogs: one JSON request line per request with request id,
// route, status, duration, client and user when known; an audit event for
// each security-relevant action.
func TestAccessAndAuditLogs(t *testing.T) {
	t.Parallel()
	e := e2etest.Start(t, e2etest.Options{})
	c := e.Register()
	e.Login(c, testflow.Choices{})
	session := e.Initialize(c.AccessToken)
	e.CallTool(c.AccessToken, session, "get-user-info")
	if _, err := http.PostForm(e.BaseURL+"/revoke", url.Values{"token": {c.RefreshToken}, "client_id": {c.ID}}); err != nil {
		t.Fatal(err)
	}
	user := e.Clerk.Users()[0].ID

	var requests, audits []map[string]any
	sc := bufio.NewScanner(strings.NewReader(e.Logs.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			t.Fatalf("log line is not JSON: %s", sc.Text())
		}
		switch line["msg"] {
		case "request":
			requests = append(requests, line)
		case "audit":
			audits = append(audits, line)
		}
	}
	find := func(route string) map[string]any {
		for _, l := range requests {
			if l["route"] == route {
				return l
			}
		}
		t.Fatalf("no request line for %s", route)
		return nil
	}
	for _, route := range []string{"/register", "/authorize", "/token", "/mcp", "/revoke"} {
		l := find(route)
		for _, k := range []string{"request_id", "route", "method", "status", "duration_ms"} {
			if l[k] == nil || l[k] == "" {
				t.Errorf("%s request line lacks %s: %v", route, k, l)
			}
		}
	}
	if l := find("/token"); l["client_id"] != c.ID {
		t.Errorf("/token line client_id = %v, want %s", l["client_id"], c.ID)
	}
	if l := find("/mcp"); l["user_id"] != user || l["client_id"] != c.ID {
		t.Errorf("/mcp line user/client = %v/%v", l["user_id"], l["client_id"])
	}
	events := map[string]bool{}
	for _, a := range audits {
		if a["request_id"] == nil {
			t.Errorf("audit event without request id: %v", a)
		}
		events[a["event"].(string)] = true
	}
	for _, want := range []string{"client_registered", "consent_approved", "authorization_code_issued", "tokens_issued", "grant_revoked"} {
		if !events[want] {
			t.Errorf("no audit event %s (have %v)", want, events)
		}
	}
}

// TestRedisOutage: with Redis gone every endpoint answers a clean 503 (or a
// 4xx for requests that are bad anyway), never a 500 or a hang, and the
// product recovers by itself when Redis is back. This Redis restarts empty
// (no persistence), so clients get the standard signals: 401 at /mcp
// (sign in again) and 401 invalid_client at /token (register again).
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	e := e2etest.Start(t, e2etest.Options{Redis: testredis.Start(t)})
	c := e.Register()
	e.Login(c, testflow.Choices{})
	session := e.Initialize(c.AccessToken)

	e.Redis.Stop(t)
	check := func(what string, status int) {
		t.Helper()
		if status >= 500 && status != http.StatusServiceUnavailable || status == 0 {
			t.Errorf("%s with Redis down: %d", what, status)
		}
	}
	// The grant-liveness cache lasts about a second; past it, /mcp must say 503.
	var last int
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		last = e.MCP(c.AccessToken, session, "tools/list", map[string]any{}).Status
		check("/mcp", last)
		if last == http.StatusServiceUnavailable {
			break
		}
	}
	if last != http.StatusServiceUnavailable {
		t.Errorf("/mcp with Redis down ended at %d, want 503", last)
	}
	resp, err := http.Post(e.BaseURL+"/register", "application/json", strings.NewReader(`{"redirect_uris":["http://127.0.0.1:9/cb"]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	check("/register", resp.StatusCode)
	status, out := e.Refresh(c, c.RefreshToken)
	check("/token refresh", status)
	if status == http.StatusServiceUnavailable && out["error"] != "temporarily_unavailable" {
		t.Errorf("/token 503 error code %v", out["error"])
	}
	resp, err = http.Get(e.AuthorizeURL(c, e2etest.NewPKCE(), "state-12345678", nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	check("/authorize", resp.StatusCode)

	// Redis is back (empty: no persistence in this test server). The old
	// access token's grant is gone: 401, the re-login signal; the old client
	// is gone: 401 invalid_client, the re-register signal; a new client works.
	e.Redis.Restart(t)
	waitStatus(t, e.BaseURL+"/readyz", http.StatusOK)
	if r := e.MCP(c.AccessToken, session, "tools/list", map[string]any{}); r.Status != http.StatusUnauthorized {
		t.Errorf("old token after an empty Redis restart: %d", r.Status)
	}
	if status, out := e.Refresh(c, c.RefreshToken); status != http.StatusUnauthorized || out["error"] != "invalid_client" {
		t.Errorf("old client after an empty Redis restart: %d %v", status, out)
	}
	c2 := e.Register()
	e.Login(c2, testflow.Choices{})
	if r := e.MCP(c2.AccessToken, "", "initialize", map[string]any{"protocolVersion": "2025-11-25", "capabilities": map[string]any{},
		"clientInfo": map[string]any{"name": "after", "version": "1"}}); r.Status != http.StatusOK {
		t.Errorf("new sign-in after the restart: %d %s", r.Status, r.Body)
	}
}
