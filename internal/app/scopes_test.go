package app_test

// Scope hygiene (MCP 2026-07-28, SEP-2207): clients that omit scope get the
// configured defaults; offline_access is advertised by the authorization
// server only; a challenge names every scope the call needs at once.

import (
	"bytes"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
)

// challengeScope returns the scope parameter of a WWW-Authenticate challenge.
func challengeScope(t *testing.T, chal string) []string {
	t.Helper()
	i := strings.Index(chal, `scope="`)
	if i < 0 {
		t.Fatalf("no scope in the challenge %q", chal)
	}
	rest := chal[i+len(`scope="`):]
	return strings.Fields(rest[:strings.Index(rest, `"`)])
}

func listOf(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// TestScopeDefaultsWhenOmitted: an authorization request without scope, or
// with only offline_access, from a client whose registration named no scope,
// gets the configured default scopes (SCOPES_SUPPORTED), never an empty or
// offline_access-only grant.
func TestScopeDefaultsWhenOmitted(t *testing.T) {
	e := e2etest.Start(t, e2etest.Options{Env: map[string]string{"SCOPES_SUPPORTED": "openid email mcp:read"}})
	for name, extra := range map[string]url.Values{
		"scope omitted":       nil,
		"scope empty":         {"scope": {""}},
		"only offline_access": {"scope": {"offline_access"}},
	} {
		t.Run(name, func(t *testing.T) {
			c := e.Register()
			p := e2etest.NewPKCE()
			final, err := testflow.NewBrowser().Authorize(t.Context(), e.AuthorizeURL(c, p, "state-scope-1234", extra), c.RedirectURI, testflow.Choices{})
			if err != nil {
				t.Fatal(err)
			}
			st, out := e.Token(url.Values{"grant_type": {"authorization_code"}, "code": {final.Query().Get("code")},
				"redirect_uri": {c.RedirectURI}, "code_verifier": {p.Verifier}, "client_id": {c.ID}})
			if st != http.StatusOK || out["scope"] != "openid email mcp:read" {
				t.Fatalf("token: %d scope %q, want the defaults \"openid email mcp:read\"", st, out["scope"])
			}
		})
	}
}

// TestOfflineAccessOnlyInASMetadata: offline_access is in the authorization
// server's scopes_supported (every grant gets a refresh token), and nowhere a
// resource speaks: not the protected-resource metadata, not a 401 or a 403
// challenge, even when the operator lists it in SCOPES_SUPPORTED.
func TestOfflineAccessOnlyInASMetadata(t *testing.T) {
	const tool = "get-clerk-user-profile"
	for name, env := range map[string]map[string]string{
		"default configuration":              {"TOOL_SCOPES": tool + "=profile:read"},
		"offline_access in SCOPES_SUPPORTED": {"TOOL_SCOPES": tool + "=profile:read offline_access", "SCOPES_SUPPORTED": "openid profile email offline_access"},
	} {
		t.Run(name, func(t *testing.T) {
			e := e2etest.Start(t, e2etest.Options{Env: env})
			for _, doc := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
				if got := listOf(get(t, e.BaseURL+doc, nil).JSON()["scopes_supported"]); !slices.Contains(got, "offline_access") {
					t.Errorf("%s scopes_supported %v lacks offline_access", doc, got)
				}
			}
			for _, doc := range []string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"} {
				if got := listOf(get(t, e.BaseURL+doc, nil).JSON()["scopes_supported"]); slices.Contains(got, "offline_access") || len(got) == 0 {
					t.Errorf("%s scopes_supported %v", doc, got)
				}
			}
			r := e.MCP("", "", "initialize", map[string]any{})
			if got := challengeScope(t, r.Header.Get("WWW-Authenticate")); r.Status != http.StatusUnauthorized || slices.Contains(got, "offline_access") {
				t.Errorf("401 challenge: %d scope %v", r.Status, got)
			}
			r = e.MCP("not-a-token", "", "initialize", map[string]any{})
			if got := challengeScope(t, r.Header.Get("WWW-Authenticate")); slices.Contains(got, "offline_access") {
				t.Errorf("invalid_token challenge scope %v", got)
			}
			c := e.Register()
			e.Login(c, testflow.Choices{})
			r, _ = e.CallTool(c.AccessToken, e.Initialize(c.AccessToken), tool)
			if got := challengeScope(t, r.Header.Get("WWW-Authenticate")); r.Status != http.StatusForbidden || slices.Contains(got, "offline_access") ||
				!slices.Contains(got, "profile:read") {
				t.Errorf("403 challenge: %d scope %v", r.Status, got)
			}
		})
	}
}

// TestChallengeNamesEveryScopeAtOnce: a call without a token to a tool that
// needs more than the baseline is challenged with the baseline and the tool's
// scopes together, so one authorization suffices; a batch calling two such
// tools with a token holding neither gets one 403 naming both.
func TestChallengeNamesEveryScopeAtOnce(t *testing.T) {
	e := e2etest.Start(t, e2etest.Options{Env: map[string]string{
		"TOOL_SCOPES": "get-clerk-user-profile=profile:read;get-user-greeting=greet:write",
	}})
	r := e.MCP("", "", "tools/call", map[string]any{"name": "get-clerk-user-profile", "arguments": map[string]any{}})
	got := challengeScope(t, r.Header.Get("WWW-Authenticate"))
	for _, want := range []string{"openid", "profile", "email", "profile:read"} {
		if !slices.Contains(got, want) {
			t.Errorf("401 challenge for a scoped tool names %v, lacks %q", got, want)
		}
	}
	if slices.Contains(got, "greet:write") {
		t.Errorf("401 challenge names a scope of a tool not called: %v", got)
	}
	// A call to an unscoped tool asks for the baseline only.
	r = e.MCP("", "", "tools/call", map[string]any{"name": "get-user-info", "arguments": map[string]any{}})
	if got := challengeScope(t, r.Header.Get("WWW-Authenticate")); !slices.Equal(got, []string{"openid", "profile", "email"}) {
		t.Errorf("401 challenge for an unscoped tool: %v", got)
	}

	c := e.Register()
	e.Login(c, testflow.Choices{})
	session := e.Initialize(c.AccessToken)
	batch := `[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-clerk-user-profile","arguments":{}}},` +
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get-user-greeting","arguments":{}}}]`
	req, _ := http.NewRequest(http.MethodPost, e.BaseURL+"/mcp", bytes.NewReader([]byte(batch)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+c.AccessToken)
	req.Header.Set("Mcp-Session-Id", session)
	resp := secDo(t, req)
	got = challengeScope(t, resp.Header.Get("WWW-Authenticate"))
	if resp.Status != http.StatusForbidden || !slices.Contains(got, "profile:read") || !slices.Contains(got, "greet:write") {
		t.Fatalf("batch of two scoped tools: %d scope %v, want a 403 naming both tool scopes", resp.Status, got)
	}
	for _, held := range strings.Fields(c.Scope) {
		if !slices.Contains(got, held) {
			t.Errorf("403 challenge %v drops the held scope %q", got, held)
		}
	}
}
