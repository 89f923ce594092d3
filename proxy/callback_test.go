package proxy

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mockclerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
)

// signedIn walks browser b through consent and Clerk's sign-in for c and
// returns the callback URL Clerk sends it to, not yet visited.
func (e *asEnv) signedIn(t *testing.T, b *testflow.Browser, c asClient) *url.URL {
	t.Helper()
	return e.browse(t, b, c, newPKCE(), e.url+"/oauth/callback", testflow.Choices{})
}

// callback visits the callback with query from browser b.
func (e *asEnv) callback(t *testing.T, b *testflow.Browser, query url.Values) *http.Response {
	t.Helper()
	return e.inBrowser(t, b, "/oauth/callback?"+query.Encode(), nil)
}

// TestCallbackIssuesCode: Clerk's redirect, in the browser that approved,
// gets the client a single-use code for a grant that is not active until
// the code is redeemed, for the user who signed in at Clerk.
func TestCallbackIssuesCode(t *testing.T) {
	t.Parallel()
	e := newAS(t)
	c := e.register(t, nil)
	b := testflow.NewBrowser()
	cb := e.signedIn(t, b, c)
	resp := e.callback(t, b, cb.Query())
	loc, _ := url.Parse(resp.Header.Get("Location"))
	code := loc.Query().Get("code")
	if resp.StatusCode != http.StatusFound || code == "" || loc.Query().Get("state") != asState || loc.Query().Get("iss") != e.url {
		t.Fatalf("%d Location %q", resp.StatusCode, loc)
	}
	grants := e.st.grants(t, c.ID)
	if len(grants) != 1 || grants[0].Active || grants[0].UserID != e.clerk.Users()[0].ID {
		t.Fatalf("grants %+v: want one inactive grant of the first seeded user", grants)
	}
	if again := e.callback(t, b, cb.Query()); again.StatusCode != http.StatusBadRequest || again.Header.Get("Location") != "" {
		t.Fatalf("the callback replayed: %d %q, want a 400 page", again.StatusCode, again.Header.Get("Location"))
	}
}

// TestCallbackRefusals: what can go wrong once Clerk sends the browser back.
// Before the flow is known good (unknown state, another browser) the answer
// is a local page; after, the client gets an OAuth error, so it never hangs.
func TestCallbackRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		query   func(cb url.Values) url.Values
		other   bool             // visit from a browser that did not approve
		fault   *mockclerk.Fault // Clerk's token endpoint misbehaves
		status  int
		errCode string // the error sent to the client; "" for a page
	}{
		{name: "unknown state", query: func(cb url.Values) url.Values { cb.Set("state", "forged-state"); return cb }, status: http.StatusBadRequest},
		{name: "no state", query: func(cb url.Values) url.Values { cb.Del("state"); return cb }, status: http.StatusBadRequest},
		{name: "another browser", other: true, status: http.StatusForbidden},
		{name: "Clerk says access_denied", query: func(cb url.Values) url.Values { return url.Values{"state": cb["state"], "error": {"access_denied"}} },
			status: http.StatusFound, errCode: "access_denied"},
		{name: "Clerk says something else", query: func(cb url.Values) url.Values { return url.Values{"state": cb["state"], "error": {"<script>"}} },
			status: http.StatusFound, errCode: "server_error"},
		{name: "no code", query: func(cb url.Values) url.Values { cb.Del("code"); return cb }, status: http.StatusFound, errCode: "server_error"},
		{name: "Clerk refuses the code", query: func(cb url.Values) url.Values { cb.Set("code", "not-a-clerk-code"); return cb },
			status: http.StatusFound, errCode: "server_error"},
		{name: "Clerk unavailable", fault: &mockclerk.Fault{Endpoint: "/oauth/token", Status: http.StatusServiceUnavailable, Count: 1},
			status: http.StatusFound, errCode: "temporarily_unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newAS(t)
			c := e.register(t, nil)
			b := testflow.NewBrowser()
			q := e.signedIn(t, b, c).Query()
			if tc.query != nil {
				q = tc.query(q)
			}
			if tc.other {
				b = testflow.NewBrowser()
			}
			if tc.fault != nil {
				e.clerk.SetFault(*tc.fault)
			}
			resp := e.callback(t, b, q)
			if resp.StatusCode != tc.status {
				t.Fatalf("%d, want %d", resp.StatusCode, tc.status)
			}
			if tc.errCode == "" {
				if loc := resp.Header.Get("Location"); loc != "" {
					t.Fatalf("a page was due, got a redirect to %q", loc)
				}
			} else {
				e.wantRedirectError(t, resp.Header.Get("Location"), c.RedirectURI, tc.errCode)
			}
			if grants := e.st.grants(t, c.ID); len(grants) != 0 {
				t.Fatalf("a refused callback stored %d grants", len(grants))
			}
		})
	}
}
