package app_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
)

// TestInsufficientScopeStepUp: a tool that needs a scope the token lacks
// (TOOL_SCOPES) answers 403 with an RFC 6750 §3.1 challenge
// (error="insufficient_scope", scope= the scopes held plus the missing one,
// resource_metadata), other tools keep working with the same token, and
// after the client re-authorizes with the scope the challenge named, the tool
// answers.
func TestInsufficientScopeStepUp(t *testing.T) {
	t.Parallel()
	const tool, extra = "get-clerk-user-profile", "profile:read"
	e := e2etest.Start(t, e2etest.Options{Env: map[string]string{"TOOL_SCOPES": tool + "=" + extra}})
	c := e.Register()
	e.Login(c, testflow.Choices{})
	session := e.Initialize(c.AccessToken)

	r, _ := e.CallTool(c.AccessToken, session, tool)
	chal := r.Header.Get("WWW-Authenticate")
	if r.Status != http.StatusForbidden || !strings.HasPrefix(chal, `Bearer resource_metadata="`+e.BaseURL+`/.well-known/oauth-protected-resource/mcp"`) ||
		!strings.Contains(chal, `error="insufficient_scope"`) {
		t.Fatalf("tool without its scope: %d %q", r.Status, chal)
	}
	i := strings.Index(chal, `scope="`)
	if i < 0 {
		t.Fatalf("no scope in the challenge %q", chal)
	}
	scope := chal[i+len(`scope="`):]
	scope = scope[:strings.Index(scope, `"`)]
	held := strings.Fields(c.Scope)
	for _, s := range append(held, extra) {
		if !strings.Contains(" "+scope+" ", " "+s+" ") {
			t.Fatalf("challenge scope %q lacks %q (held %q)", scope, s, c.Scope)
		}
	}
	if r, info := e.CallTool(c.AccessToken, session, "get-user-info"); r.Status != http.StatusOK || info["userId"] == nil {
		t.Fatalf("a tool needing no extra scope: %d %s", r.Status, r.Body)
	}

	// Step up: authorize again asking for the scope the challenge named.
	p := e2etest.NewPKCE()
	final, err := testflow.NewBrowser().Authorize(context.Background(),
		e.AuthorizeURL(c, p, "state-stepup-1", url.Values{"scope": {scope}}), c.RedirectURI, testflow.Choices{})
	if err != nil || final.Query().Get("code") == "" {
		t.Fatalf("step-up sign-in: %v %v", err, final)
	}
	st, out := e.Token(url.Values{"grant_type": {"authorization_code"}, "code": {final.Query().Get("code")}, "redirect_uri": {c.RedirectURI},
		"code_verifier": {p.Verifier}, "client_id": {c.ID}})
	if st != http.StatusOK || !strings.Contains(" "+out["scope"].(string)+" ", " "+extra+" ") {
		t.Fatalf("step-up token: %d %v", st, out)
	}
	token := out["access_token"].(string)
	if r, _ := e.CallTool(token, e.Initialize(token), tool); r.Status != http.StatusOK {
		t.Fatalf("tool after step-up: %d %s", r.Status, r.Body)
	}
}
