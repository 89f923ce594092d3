package app_test

// AUTH_MODE=clerk end to end: the proxy in front of the real fake Clerk
// with DCR on, a real redis-server, and the official TypeScript SDK client
// registering and signing in at Clerk.

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mockclerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
)

// startClerkMode runs the proxy in clerk mode; env adds to its environment.
func startClerkMode(t *testing.T, format string, env map[string]string) *e2etest.Env {
	t.Helper()
	all := map[string]string{"AUTH_MODE": "clerk"}
	for k, v := range env {
		all[k] = v
	}
	return e2etest.Start(t, e2etest.Options{Env: all, Clerk: func(c *mockclerk.Config) {
		c.DCR, c.TokenFormat = true, format
	}})
}

// TestClerkModeSDKClient: the official TypeScript SDK client, both of
// Clerk's token formats (e2e/sdk-clerk-mode.mjs says what it checks).
func TestClerkModeSDKClient(t *testing.T) {
	node, script := nodeScript(t, "sdk-clerk-mode.mjs")
	for _, format := range []string{"jwt", "opaque"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			e := startClerkMode(t, format, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, node, script, e.BaseURL, e.Clerk.URL, format).CombinedOutput()
			t.Logf("%s", out)
			if err != nil {
				t.Fatalf("sdk-clerk-mode.mjs: %v", err)
			}
			stats := e.Clerk.Stats()
			t.Logf("fake Clerk calls: %v", stats)
			if n := stats["/oauth/token_info"]; n != 1 {
				t.Fatalf("%d introspections for one token over a whole session, want 1 (cached)", n)
			}
		})
	}
}

// TestClerkModeEndpoints: the proxy's authorization-server endpoints are
// not served in clerk mode, and the protected-resource metadata sends
// clients to Clerk.
func TestClerkModeEndpoints(t *testing.T) {
	t.Parallel()
	e := startClerkMode(t, "jwt", nil)
	for _, p := range []string{"/register", "/authorize?client_id=x", "/consent", "/oauth/callback?code=x&state=y", "/token", "/revoke",
		"/introspect", "/.well-known/oauth-authorization-server", "/.well-known/openid-configuration", "/.well-known/jwks.json"} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			req, _ := http.NewRequest(method, e.BaseURL+p, strings.NewReader(""))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), `"not_found"`) {
				t.Errorf("%s %s: %d %s, want 404 not_found", method, p, resp.StatusCode, body)
			}
		}
	}
	resp, err := http.Get(e.BaseURL + "/.well-known/oauth-protected-resource/mcp")
	if err != nil {
		t.Fatal(err)
	}
	var prm map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&prm)
	resp.Body.Close()
	as, _ := prm["authorization_servers"].([]any)
	if len(as) != 1 || as[0] != e.Clerk.URL || prm["resource"] != e.BaseURL+"/mcp" || prm["jwks_uri"] != nil {
		t.Fatalf("protected-resource metadata %v: want Clerk %s as the only authorization server and no jwks_uri", prm, e.Clerk.URL)
	}
	if _, ok := prm["scopes_supported"].([]any); !ok {
		t.Fatalf("scopes_supported %v", prm["scopes_supported"])
	}
	if s := strings.Join(toStrings(prm["scopes_supported"]), " "); s != "profile email" {
		t.Fatalf("scopes_supported %q, want Clerk's DCR scopes", s)
	}
}

// TestClerkModeBadTokens: what /mcp answers for tokens it must refuse (401
// invalid_token with a challenge naming the metadata) and when Clerk cannot
// answer (503, never 401: the client's token may be fine).
func TestClerkModeBadTokens(t *testing.T) {
	t.Parallel()
	e := startClerkMode(t, "opaque", map[string]string{"CLERK_ALLOWED_CLIENT_IDS": ""})
	other := startClerkMode(t, "jwt", nil) // another Clerk instance
	ctx := context.Background()
	tokenAt := func(env *e2etest.Env, resource string) (string, testflow.ClerkClient) {
		c, err := testflow.RegisterAtClerk(ctx, env.Clerk.URL, "email offline_access profile")
		if err != nil {
			t.Fatal(err)
		}
		tok, err := testflow.ClerkToken(ctx, env.Clerk.URL, c, "profile email", resource)
		if err != nil {
			t.Fatal(err)
		}
		return tok, c
	}
	good, _ := tokenAt(e, e.BaseURL+"/mcp")
	otherInstance, _ := tokenAt(other, other.BaseURL+"/mcp")
	revoked, _ := tokenAt(e, e.BaseURL+"/mcp")

	if r := e.MCP(good, "", "initialize", map[string]any{"protocolVersion": "2025-11-25", "capabilities": map[string]any{}}); r.Status != http.StatusOK {
		t.Fatalf("a good Clerk token: %d %s", r.Status, r.Body)
	}
	for _, tc := range []struct{ name, tok string }{
		{"junk", "junk"},
		{"another instance's JWT", otherInstance},
		{"opaque lookalike", "oat_" + strings.Repeat("A", 32)},
		{"revoked at Clerk", revoked},
	} {
		if tc.tok == revoked {
			e.Clerk.RevokeUser(mockclerk.DefaultUsers()[0].ID)
		}
		r := e.MCP(tc.tok, "", "initialize", map[string]any{})
		if r.Status != http.StatusUnauthorized || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("%s: %d %q, want 401 invalid_token", tc.name, r.Status, r.Header.Get("WWW-Authenticate"))
		}
		if strings.Contains(string(r.Body), tc.tok) {
			t.Errorf("%s: the answer echoes the token", tc.name)
		}
	}
	fresh, _ := tokenAt(e, e.BaseURL+"/mcp")
	e.Clerk.SetFault(mockclerk.Fault{Endpoint: "/oauth/token_info", Status: 503})
	if r := e.MCP(fresh, "", "initialize", map[string]any{}); r.Status != http.StatusServiceUnavailable {
		t.Errorf("Clerk down: %d, want 503", r.Status)
	}
}

// nodeScript finds node and one of e2e/'s scripts, or skips the test when
// the SDK is not installed (bash scripts/deps installs it).
func nodeScript(t *testing.T, name string) (node, script string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if _, serr := os.Stat("../../e2e/node_modules/@modelcontextprotocol/sdk"); err != nil || serr != nil {
		t.Skip("needs node and e2e/node_modules (bash scripts/deps)")
	}
	script, err = filepath.Abs("../../e2e/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return node, script
}
