package proxy

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/seal"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
)

// authorize sends an authorization request for c (extra as in
// authorizeQuery) and returns the answer.
func (e *asEnv) authorize(t *testing.T, c asClient, extra url.Values) *http.Response {
	t.Helper()
	return e.do(t, http.MethodGet, "/authorize?"+e.authorizeQuery(c, newPKCE(), extra).Encode(), nil, nil)
}

// TestAuthorizeLocalErrors: until the client and its redirect URI are known
// good, every error is a local page: no Location, nothing stored.
func TestAuthorizeLocalErrors(t *testing.T) {
	t.Parallel()
	e := newAS(t)
	c := e.register(t, nil)
	two := e.register(t, map[string]any{"redirect_uris": []string{asRedirect, "https://app.example/cb"}})
	for _, tc := range []struct {
		name   string
		client asClient
		extra  url.Values
	}{
		{"no client_id", c, url.Values{"client_id": nil}},
		{"empty client_id", c, url.Values{"client_id": {""}}},
		{"unknown client", c, url.Values{"client_id": {"mcp_nobody"}}},
		{"unregistered redirect_uri", c, url.Values{"redirect_uri": {"http://127.0.0.1:7777/other"}}},
		{"redirect_uri of another scheme", c, url.Values{"redirect_uri": {"https://127.0.0.1:7777/callback"}}},
		{"no redirect_uri, two registered", two, url.Values{"redirect_uri": nil}},
		{"empty redirect_uri", c, url.Values{"redirect_uri": {""}}},
		{"duplicated parameter", c, url.Values{"state": {"a", "b"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.authorize(t, tc.client, tc.extra)
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
				t.Fatalf("%d Location %q, want a local 400 page", resp.StatusCode, resp.Header.Get("Location"))
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Fatalf("Content-Type %q", ct)
			}
		})
	}
}

// TestAuthorizeRedirectedErrors: once client and redirect URI are good, the
// other errors go back to the client (a loopback redirect is trusted) with
// state and iss, and nothing is stored.
func TestAuthorizeRedirectedErrors(t *testing.T) {
	t.Parallel()
	e := newAS(t)
	c := e.register(t, nil)
	for _, tc := range []struct {
		name  string
		extra url.Values
		code  string
	}{
		{"no response_type", url.Values{"response_type": nil}, "invalid_request"},
		{"response_type token", url.Values{"response_type": {"token"}}, "unsupported_response_type"},
		{"no code_challenge", url.Values{"code_challenge": nil}, "invalid_request"},
		{"plain PKCE", url.Values{"code_challenge_method": {"plain"}}, "invalid_request"},
		{"PKCE method left out", url.Values{"code_challenge_method": nil}, "invalid_request"},
		{"challenge not 43 characters", url.Values{"code_challenge": {"short"}}, "invalid_request"},
		{"challenge not base64url", url.Values{"code_challenge": {strings.Repeat("+", 43)}}, "invalid_request"},
		{"another resource", url.Values{"resource": {"https://other.example/mcp"}}, "invalid_target"},
		{"resource with a fragment", url.Values{"resource": {e.url + "/mcp#x"}}, "invalid_target"},
		{"scope not offered", url.Values{"scope": {"openid admin"}}, "invalid_scope"},
		{"prompt=none", url.Values{"prompt": {"none"}}, "consent_required"},
		{"state over 1024 characters", url.Values{"state": {strings.Repeat("s", 1025)}}, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.authorize(t, c, tc.extra)
			loc := resp.Header.Get("Location")
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("%d, want 302 to the client", resp.StatusCode)
			}
			if tc.name == "state over 1024 characters" {
				// The state is still echoed: the client must be able to match the answer.
				u, _ := url.Parse(loc)
				if u.Query().Get("error") != tc.code || u.Query().Get("state") != tc.extra.Get("state") {
					t.Fatalf("Location %q", loc)
				}
				return
			}
			e.wantRedirectError(t, loc, c.RedirectURI, tc.code)
		})
	}
}

// TestAuthorizeErrorToUntrustedRedirectIsAPage: an https redirect URI anyone
// could have registered is not redirected to on an error before sign-in
// (RFC 9700 §4.11.2); the page offers the way back instead.
func TestAuthorizeErrorToUntrustedRedirectIsAPage(t *testing.T) {
	t.Parallel()
	e := newAS(t)
	c := e.register(t, map[string]any{"redirect_uris": []string{"https://app.example/cb"}})
	resp := e.authorize(t, c, url.Values{"scope": {"admin"}})
	body := bodyOf(resp)
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.Contains(body, "https://app.example/cb?") {
		t.Fatalf("%d Location %q, want a page linking back to the app", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestAuthorizeStartsConsent: a good request, by GET or by POST, stores one
// transaction holding the validated request and sends the browser to the
// consent page.
func TestAuthorizeStartsConsent(t *testing.T) {
	t.Parallel()
	e := newAS(t)
	c := e.register(t, nil)
	p := newPKCE()
	for _, tc := range []struct {
		name     string
		extra    url.Values
		scopes   []string
		explicit bool
	}{
		{"all parameters", url.Values{"scope": {"openid email offline_access email"}}, []string{"openid", "email"}, true},
		{"no scope, no resource, no redirect_uri", url.Values{"resource": nil, "redirect_uri": nil}, []string{"openid", "profile", "email"}, false},
	} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			t.Run(tc.name+" "+method, func(t *testing.T) {
				q := e.authorizeQuery(c, p, tc.extra).Encode()
				var resp *http.Response
				if method == http.MethodGet {
					resp = e.do(t, method, "/authorize?"+q, nil, nil)
				} else {
					resp = e.do(t, method, "/authorize", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, []byte(q))
				}
				if resp.StatusCode != http.StatusFound || resp.Header.Get("Cache-Control") != "no-store" {
					t.Fatalf("%d %v", resp.StatusCode, resp.Header)
				}
				req := e.transaction(t, resp.Header.Get("Location"))
				want := authRequest{ClientID: c.ID, RedirectURI: c.RedirectURI, RedirectExplicit: tc.explicit, State: asState,
					CodeChallenge: p.challenge, Scopes: tc.scopes, Resource: e.url + "/mcp", CreatedAt: req.CreatedAt}
				if !slices.Equal(req.Scopes, want.Scopes) || req.ClientID != want.ClientID || req.RedirectURI != want.RedirectURI ||
					req.RedirectExplicit != want.RedirectExplicit || req.State != want.State || req.CodeChallenge != want.CodeChallenge || req.Resource != want.Resource {
					t.Fatalf("transaction %+v\n want %+v", req, want)
				}
			})
		}
	}
}

// transaction reads the authorization request a /consent redirect carries.
func (e *asEnv) transaction(t *testing.T, loc string) authRequest {
	t.Helper()
	txn, ok := strings.CutPrefix(loc, "/consent?txn=")
	if !ok {
		t.Fatalf("not a consent redirect: %q", loc)
	}
	raw, err := e.st.PeekTicket(context.Background(), store.KindTransaction, seal.HashHex(txn))
	var req authRequest
	if err != nil || json.Unmarshal(raw, &req) != nil {
		t.Fatalf("transaction: %v", err)
	}
	return req
}

// TestAuthorizeAllowlistWithoutRedirectURI: ALLOWED_REDIRECT_URIS holds at
// /authorize also when the request leaves redirect_uri out and the client's
// only registered URI is used (a client registered before the list was
// tightened, or a metadata document, which /register never saw).
func TestAuthorizeAllowlistWithoutRedirectURI(t *testing.T) {
	t.Parallel()
	e := newAS(t, func(c *Config, _ *Deps) { c.AllowedRedirects = []string{"https://good.example/cb"} })
	for _, c := range []store.Client{
		{ID: "mcp_outside", RedirectURIs: []string{"https://evil.example/cb"}, TokenEndpointAuthMethod: authNone},
		{ID: "mcp_inside", RedirectURIs: []string{"https://good.example/cb"}, TokenEndpointAuthMethod: authNone},
	} {
		if err := e.st.CreateClient(context.Background(), c, 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, client, redirect string
		consent                bool
	}{
		{"outside, redirect_uri named", "mcp_outside", "https://evil.example/cb", false},
		{"outside, redirect_uri omitted", "mcp_outside", "", false},
		{"inside, redirect_uri named", "mcp_inside", "https://good.example/cb", true},
		{"inside, redirect_uri omitted", "mcp_inside", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var extra url.Values
			if tc.redirect == "" {
				extra = url.Values{"redirect_uri": nil}
			}
			resp := e.authorize(t, asClient{ID: tc.client, RedirectURI: tc.redirect}, extra)
			loc := resp.Header.Get("Location")
			if tc.consent {
				if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "/consent?") {
					t.Fatalf("allowed URI: %d %q", resp.StatusCode, loc)
				}
				return
			}
			if resp.StatusCode != http.StatusBadRequest || loc != "" {
				t.Fatalf("URI outside the allowlist: %d %q, want a local 400 page", resp.StatusCode, loc)
			}
		})
	}
}

// TestRegisteredScopeOnlyOffered: with no scope in the request the client's
// registered scope is used, but only the scopes this server offers: a
// metadata document (or a registration older than the SCOPES setting) must
// not put other scopes into the grant and its access tokens.
func TestRegisteredScopeOnlyOffered(t *testing.T) {
	t.Parallel()
	e := newAS(t)
	for _, tc := range []struct {
		scope string
		want  []string
	}{
		{"openid admin", []string{"openid"}},
		{"admin superuser", []string{"openid", "profile", "email"}}, // nothing offered: the default
		{"email email profile", []string{"email", "profile"}},
		{"", []string{"openid", "profile", "email"}},
	} {
		t.Run(tc.scope, func(t *testing.T) {
			id := "mcp_scope" + strings.ReplaceAll(tc.scope, " ", "_")
			c := store.Client{ID: id, RedirectURIs: []string{"https://app.example/cb"}, TokenEndpointAuthMethod: authNone, Scope: tc.scope, Metadata: true}
			if err := e.st.CreateClient(context.Background(), c, 0); err != nil {
				t.Fatal(err)
			}
			resp := e.authorize(t, asClient{ID: id}, url.Values{"redirect_uri": nil})
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("authorize: %d", resp.StatusCode)
			}
			if got := e.transaction(t, resp.Header.Get("Location")).Scopes; !slices.Equal(got, tc.want) {
				t.Fatalf("granted scopes %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSameResource(t *testing.T) {
	t.Parallel()
	ours := "https://mcp.example.com/mcp"
	for _, tc := range []struct {
		req string
		ok  bool
	}{
		{ours, true},
		{"https://mcp.example.com/mcp/", true},
		{"HTTPS://MCP.example.com/mcp", true},
		{"https://mcp.example.com/mcp?kb_name=x", true},
		{"https://mcp.example.com/mcp#x", false},
		{"https://mcp.example.com/", false},
		{"https://mcp.example.com/mcp-other", false},
		{"https://evil.example.com/mcp", false},
		{"https://u@mcp.example.com/mcp", false},
	} {
		if got := sameResource(tc.req, ours); got != tc.ok {
			t.Errorf("sameResource(%q) = %v, want %v", tc.req, got, tc.ok)
		}
	}
}
