package app_test

// The MCP endpoint's transport rules: the DNS-rebinding defence (Origin and
// Host checked before anything else) and Mcp-Session-Id bound to the user who
// created the session.

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
)

// mcpWith sends one JSON-RPC request to /mcp with the given method, host
// override and headers.
func mcpWith(t *testing.T, e *e2etest.Env, httpMethod, host string, header map[string]string, rpcMethod string) secResponse {
	t.Helper()
	var body *bytes.Reader
	if httpMethod == http.MethodPost {
		b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": rpcMethod, "params": map[string]any{
			"protocolVersion": "2025-11-25", "capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "sec", "version": "1"},
		}})
		body = bytes.NewReader(b)
	} else {
		body = bytes.NewReader(nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, httpMethod, e.BaseURL+"/mcp", body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	if host != "" {
		req.Host = host
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := secHTTP.Do(req)
	if err != nil {
		t.Fatalf("%s /mcp: %v", httpMethod, err)
	}
	defer resp.Body.Close()
	// A stream that opened is a success; read only what is there.
	buf := make([]byte, 4096)
	n, _ := resp.Body.Read(buf)
	return secResponse{Status: resp.StatusCode, Header: resp.Header, Body: string(buf[:n])}
}

// TestMCPOriginAndHost: a browser request whose Origin is neither BASE_URL
// nor in ALLOWED_ORIGINS is refused with 403 even with a valid token, and so is
// a Host that is not BASE_URL's (a rebound DNS name pointing at the proxy);
// the proxy's own origin and an allowed origin work.
func TestMCPOriginAndHost(t *testing.T) {
	t.Parallel()
	e := e2etest.Start(t, e2etest.Options{Env: map[string]string{"ALLOWED_ORIGINS": "https://inspector.example.com"}})
	c := e.Register()
	e.Login(c, testflow.Choices{})
	auth := "Bearer " + c.AccessToken
	u, _ := url.Parse(e.BaseURL)
	_, port, _ := strings.Cut(u.Host, ":")

	for _, origin := range []string{"", e.BaseURL, "https://inspector.example.com", "HTTPS://Inspector.Example.com"} {
		if r := mcpWith(t, e, http.MethodPost, "", map[string]string{"Authorization": auth, "Origin": origin}, "initialize"); r.Status != http.StatusOK {
			t.Errorf("Origin %q: %d %s", origin, r.Status, r.Body)
		}
	}
	for _, origin := range []string{"https://evil.example", "null", "http://127.0.0.1:1", "https://inspector.example.com.evil.example",
		strings.Replace(e.BaseURL, "http://", "https://", 1)} {
		for _, token := range []string{auth, ""} {
			r := mcpWith(t, e, http.MethodPost, "", map[string]string{"Authorization": token, "Origin": origin}, "initialize")
			if r.Status != http.StatusForbidden {
				t.Errorf("Origin %q (token %v): %d, want 403", origin, token != "", r.Status)
			}
		}
	}
	for _, host := range []string{"evil.example", "evil.example:" + port, "localhost:" + port, "127.0.0.1:1", "inspector.example.com"} {
		r := mcpWith(t, e, http.MethodPost, host, map[string]string{"Authorization": auth}, "initialize")
		if r.Status < 400 || r.Status >= 500 {
			t.Errorf("Host %q: %d, want refused with 4xx", host, r.Status)
		}
	}
}

// TestMCPSessionBoundToUser: user A's Mcp-Session-Id is worthless with
// user B's valid token (POST, GET stream and DELETE are all refused), and B's
// attempts leave A's session working.
func TestMCPSessionBoundToUser(t *testing.T) {
	t.Parallel()
	e := e2etest.Start(t, e2etest.Options{})
	users := e.Clerk.Users()
	if len(users) < 2 {
		t.Fatal("the fake Clerk needs two seeded users")
	}
	alice, bob := e.Register(), e.Register()
	e.Login(alice, testflow.Choices{UserID: users[0].ID})
	e.Login(bob, testflow.Choices{UserID: users[1].ID})

	session := e.Initialize(alice.AccessToken)
	if r, info := e.CallTool(alice.AccessToken, session, "get-user-info"); r.Status != http.StatusOK || info["userId"] != users[0].ID {
		t.Fatalf("alice in her session: %d %s", r.Status, r.Body)
	}
	bobSession := e.Initialize(bob.AccessToken)
	if r, info := e.CallTool(bob.AccessToken, bobSession, "get-user-info"); r.Status != http.StatusOK || info["userId"] != users[1].ID {
		t.Fatalf("bob signed in as %v, want %s: %d %s", info["userId"], users[1].ID, r.Status, r.Body)
	}

	refused := func(what string, status int) {
		t.Helper()
		if status < 400 || status >= 500 {
			t.Errorf("%s: %d, want 404 or another 4xx", what, status)
		}
	}
	r, _ := e.CallTool(bob.AccessToken, session, "get-user-info")
	refused("bob's token with alice's session (tools/call)", r.Status)
	refused("bob's token with alice's session (tools/list)", e.MCP(bob.AccessToken, session, "tools/list", map[string]any{}).Status)
	h := map[string]string{"Authorization": "Bearer " + bob.AccessToken, "Mcp-Session-Id": session}
	refused("bob's token with alice's session (GET stream)", mcpWith(t, e, http.MethodGet, "", h, "").Status)
	refused("bob's token deleting alice's session", mcpWith(t, e, http.MethodDelete, "", h, "").Status)

	if r, info := e.CallTool(alice.AccessToken, session, "get-user-info"); r.Status != http.StatusOK || info["userId"] != users[0].ID {
		t.Fatalf("alice's session after bob's attempts: %d %s", r.Status, r.Body)
	}
}
