package app_test

// A registered redirect URI's query through the whole product (real Redis,
// the fake Clerk, the proxy as served): kept at the redirect, matched at the
// token endpoint, and the grant's resource held at refresh.

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
)

// TestRegisteredQueryAndRefreshResource: a client whose registered
// redirect URI carries a query gets it back as registered (RFC 6749 §3.1.2)
// with code, state and iss once each, redeems the code with that exact URI,
// and a refresh naming another resource is invalid_target (RFC 8707) without
// rotating the refresh token.
func TestRegisteredQueryAndRefreshResource(t *testing.T) {
	t.Parallel()
	e := e2etest.Start(t, e2etest.Options{})
	const redirect = "http://127.0.0.1:7777/callback?tenant=a;b&flag"
	c := e.Register(redirect)
	p := e2etest.NewPKCE()
	const state = "state-review-1234 &="
	final, err := testflow.NewBrowser().Authorize(context.Background(), e.AuthorizeURL(c, p, state, nil), "http://127.0.0.1:7777/", testflow.Choices{})
	if err != nil {
		t.Fatal(err)
	}
	raw := final.String()
	if !strings.HasPrefix(raw, redirect+"&") {
		t.Fatalf("the registered query was not kept: %q", raw)
	}
	q, _ := url.ParseQuery(strings.TrimPrefix(raw, redirect+"&"))
	if len(q["code"]) != 1 || len(q["state"]) != 1 || len(q["iss"]) != 1 || q.Get("state") != state || q.Get("iss") != e.BaseURL || len(q) != 3 {
		t.Fatalf("authorization response %q: want code, state and iss once each", raw)
	}
	status, out := e.Token(url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {redirect},
		"code_verifier": {p.Verifier}, "client_id": {c.ID}, "resource": {e.BaseURL + "/mcp"}})
	if status != http.StatusOK {
		t.Fatalf("token: %d %v", status, out)
	}
	refresh, _ := out["refresh_token"].(string)

	r := postForm(t, e.BaseURL+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {c.ID},
		"resource": {"https://other.example/mcp"}}, nil)
	wantOAuthError(t, "refresh for another resource", r, http.StatusBadRequest, "invalid_target")
	r = postForm(t, e.BaseURL+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {c.ID},
		"resource": {e.BaseURL + "/mcp"}}, nil)
	if r.Status != http.StatusOK || r.JSON()["refresh_token"] == refresh {
		t.Fatalf("refresh for our resource after the refusal: %d %s", r.Status, r.Body)
	}
	if st := mcpInit(e, r.JSON()["access_token"].(string)); st != http.StatusOK {
		t.Fatalf("the refreshed access token at /mcp: %d", st)
	}
}
