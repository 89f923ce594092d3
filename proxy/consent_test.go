package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
)

// consentForm takes browser b to the consent page of an authorization
// request for c and returns the page's form (txn, csrf_token) and body.
func (e *asEnv) consentForm(t *testing.T, b *testflow.Browser, c asClient) (url.Values, string) {
	t.Helper()
	loc := e.authorize(t, c, nil).Header.Get("Location")
	resp := e.inBrowser(t, b, loc, nil)
	body := bodyOf(resp)
	form, ok := testflow.ParseForm(body)
	if resp.StatusCode != http.StatusOK || !ok {
		t.Fatalf("consent page: %d %s", resp.StatusCode, body)
	}
	return form.Values(), body
}

// decide submits a consent form with action from browser b.
func (e *asEnv) decide(t *testing.T, b *testflow.Browser, form url.Values, action string) *http.Response {
	t.Helper()
	form = cloneValues(form)
	form.Set("action", action)
	return e.inBrowser(t, b, "/consent", form)
}

// TestConsentPage: the page names the client and where it will send the
// browser, and a reload shows the same CSRF token (it is derived from the
// browser's cookie and the transaction, not stored: FastMCP #4814).
func TestConsentPage(t *testing.T) {
	t.Parallel()
	e := newAS(t)
	c := e.register(t, map[string]any{"client_name": "Acme Notes"})
	b := testflow.NewBrowser()
	form, body := e.consentForm(t, b, c)
	for _, want := range []string{"Acme Notes", "127.0.0.1:7777", `value="approve"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the consent page does not show %q", want)
		}
	}
	again := e.inBrowser(t, b, "/consent?txn="+url.QueryEscape(form.Get("txn")), nil)
	reload, _ := testflow.ParseForm(bodyOf(again))
	if got := reload.Values().Get("csrf_token"); got == "" || got != form.Get("csrf_token") {
		t.Fatalf("reloaded CSRF token %q, first %q", got, form.Get("csrf_token"))
	}
	for _, txn := range []string{"", "unknown-transaction", strings.Repeat("t", 129)} {
		resp := e.do(t, http.MethodGet, "/consent?txn="+txn, nil, nil)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("consent page for txn %.10q: %d, want 400", txn, resp.StatusCode)
		}
	}
}

// TestConsentNamesTheResource: with several protected resources
// (UPSTREAMS) the page says which one the access is for; with one, the
// line would only repeat the service's name and is left out.
func TestConsentNamesTheResource(t *testing.T) {
	t.Parallel()
	for _, several := range []bool{false, true} {
		e := newAS(t, func(c *Config, _ *Deps) {
			if several {
				c.Resources = []string{c.Issuer + "/docs/mcp"}
			}
		})
		c := e.register(t, map[string]any{"client_name": "Acme Notes"})
		_, body := e.consentForm(t, testflow.NewBrowser(), c)
		if shown := strings.Contains(body, "Access to the MCP server at <code>"+e.url+"/mcp</code>"); shown != several {
			t.Errorf("several resources %v: the page names the resource: %v", several, shown)
		}
	}
}

// TestConsentDecisionRefusals: a decision without the browser's CSRF pair,
// or saying neither approve nor deny, is refused and leaves the
// transaction for the real decision.
func TestConsentDecisionRefusals(t *testing.T) {
	t.Parallel()
	e := newAS(t)
	c := e.register(t, nil)
	b := testflow.NewBrowser()
	form, _ := e.consentForm(t, b, c)
	for _, tc := range []struct {
		name    string
		browser *testflow.Browser
		change  url.Values
		action  string
		status  int
	}{
		{"no CSRF token", b, url.Values{"csrf_token": {""}}, "approve", http.StatusForbidden},
		{"wrong CSRF token", b, url.Values{"csrf_token": {"AAAA" + form.Get("csrf_token")[4:]}}, "approve", http.StatusForbidden},
		{"another browser (no CSRF cookie)", testflow.NewBrowser(), nil, "approve", http.StatusForbidden},
		{"no transaction", b, url.Values{"txn": {""}}, "approve", http.StatusForbidden},
		{"neither approve nor deny", b, nil, "maybe", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := cloneValues(form)
			for k, v := range tc.change {
				f[k] = v
			}
			if resp := e.decide(t, tc.browser, f, tc.action); resp.StatusCode != tc.status || resp.Header.Get("Location") != "" {
				t.Fatalf("%d Location %q, want %d", resp.StatusCode, resp.Header.Get("Location"), tc.status)
			}
		})
	}
	if resp := e.decide(t, b, form, "approve"); resp.StatusCode != http.StatusFound {
		t.Fatalf("the real decision after the refusals: %d", resp.StatusCode)
	}
}

// TestConsentDecision: deny goes back to the client as access_denied;
// approve goes to Clerk with a fresh state (never the client's) and binds the
// flow to this browser with a cookie. Either way the transaction is spent.
func TestConsentDecision(t *testing.T) {
	t.Parallel()
	e := newAS(t)
	c := e.register(t, nil)
	for _, action := range []string{"deny", "approve"} {
		t.Run(action, func(t *testing.T) {
			b := testflow.NewBrowser()
			form, _ := e.consentForm(t, b, c)
			resp := e.decide(t, b, form, action)
			loc := resp.Header.Get("Location")
			if action == "deny" {
				e.wantRedirectError(t, loc, c.RedirectURI, "access_denied")
			} else {
				u, err := url.Parse(loc)
				if resp.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc, e.clerkAuthorize+"?") {
					t.Fatalf("%d Location %q, want Clerk's authorization endpoint", resp.StatusCode, loc)
				}
				if st := u.Query().Get("state"); st == "" || st == asState || u.Query().Get("code_challenge_method") != "S256" {
					t.Fatalf("Clerk request %q: want our own state and PKCE", loc)
				}
				if len(resp.Cookies()) != 1 || !strings.HasPrefix(resp.Cookies()[0].Name, "cmp_bind_") || !resp.Cookies()[0].HttpOnly {
					t.Fatalf("binding cookie: %v", resp.Cookies())
				}
			}
			if again := e.decide(t, b, form, action); again.StatusCode != http.StatusBadRequest || again.Header.Get("Location") != "" {
				t.Fatalf("second decision: %d %q, want 400 (transaction spent)", again.StatusCode, again.Header.Get("Location"))
			}
		})
	}
}
