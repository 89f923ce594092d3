package app_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
)

// accountBrowser signs user in to the connected-apps page in a fresh browser
// and returns it with the page's HTML.
func accountBrowser(t *testing.T, e *e2etest.Env, user string) (*testflow.Browser, string) {
	t.Helper()
	b := signInAt(t, e, "/account", user)
	return b, accountPage(t, e, b)
}

// signInAt opens a page for people (/account, /admin) in a fresh browser,
// which is sent to Clerk's sign-in, signs in as user and comes back.
func signInAt(t *testing.T, e *e2etest.Env, path, user string) *testflow.Browser {
	t.Helper()
	b := testflow.NewBrowser()
	resp, err := b.HTTP.Get(e.BaseURL + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	clerkURL := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(clerkURL, e.Clerk.URL) {
		t.Fatalf("%s without a session: %d to %q, want a redirect to Clerk's sign-in", path, resp.StatusCode, clerkURL)
	}
	back, err := b.Authorize(context.Background(), clerkURL, e.BaseURL+path, testflow.Choices{UserID: user})
	if err != nil || back.Path != path {
		t.Fatalf("sign-in at %s: %v %v", path, back, err)
	}
	return b
}

func accountPage(t *testing.T, e *e2etest.Env, b *testflow.Browser) string {
	t.Helper()
	resp, err := b.HTTP.Get(e.BaseURL + "/account")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Frame-Options") != "DENY" ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Fatalf("/account: %d %v", resp.StatusCode, resp.Header)
	}
	return string(body)
}

func disconnect(t *testing.T, e *e2etest.Env, c *http.Client, grantID, csrf string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.BaseURL+"/account/disconnect", strings.NewReader(url.Values{"grant_id": {grantID}, "csrf_token": {csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestAccountPage: a user signs in to /account with Clerk and sees only
// their own grants; Disconnect (CSRF-protected, own grants only) ends the
// grant: the client's next MCP request is refused within the grant-cache
// delay and its Clerk tokens are revoked at Clerk. The same client's grant
// for another user lives on (a shared CIMD client id is disconnected per
// user).
func TestAccountPage(t *testing.T) {
	t.Parallel()
	w := newGrantsWorld(t, map[string]string{"ADMIN_TOKEN": adminToken})
	aliceAGrant := grantID(t, w.e, w.alice, w.aliceA.ID)
	bobAGrant := grantID(t, w.e, w.bob, w.aliceA.ID)

	b, page := accountBrowser(t, w.e, w.alice)
	if !strings.Contains(page, "Client A") || !strings.Contains(page, "Client B") || !strings.Contains(page, "127.0.0.1") {
		t.Fatalf("Alice's page lacks her apps:\n%s", page)
	}
	if strings.Contains(page, bobAGrant) || strings.Contains(page, w.bob) {
		t.Fatalf("Alice's page shows Bob's grant:\n%s", page)
	}
	form, ok := testflow.ParseForm(page)
	csrf := form.Values().Get("csrf_token")
	if !ok || len(csrf) < 32 || form.Action != "/account/disconnect" {
		t.Fatalf("no CSRF-protected disconnect form: %+v", form)
	}

	before := clerkRevocations(w.e)
	for _, bad := range []struct {
		name   string
		client *http.Client
		grant  string
		csrf   string
		want   int
	}{
		{"no CSRF token", b.HTTP, aliceAGrant, "", http.StatusForbidden},
		{"wrong CSRF token", b.HTTP, aliceAGrant, csrf + "x", http.StatusForbidden},
		{"no session (another browser)", testflow.NewBrowser().HTTP, aliceAGrant, csrf, http.StatusForbidden},
		{"another user's grant", b.HTTP, bobAGrant, csrf, http.StatusBadRequest},
	} {
		if got := disconnect(t, w.e, bad.client, bad.grant, bad.csrf); got != bad.want {
			t.Errorf("%s: %d, want %d", bad.name, got, bad.want)
		}
	}
	if got := clerkRevocations(w.e); got != before {
		t.Fatalf("refused disconnects revoked Clerk tokens (%d -> %d)", before, got)
	}

	if got := disconnect(t, w.e, b.HTTP, aliceAGrant, csrf); got != http.StatusSeeOther {
		t.Fatalf("disconnect: %d, want 303", got)
	}
	if got := clerkRevocations(w.e) - before; got != 2 {
		t.Errorf("Clerk revocation calls after the disconnect: %d, want 2", got)
	}
	w.refusedSoon(t, "the disconnected app", w.aliceA.AccessToken)
	for _, c := range []*e2etest.Client{w.aliceB, w.bobA} {
		if s := mcpInit(w.e, c.AccessToken); s != http.StatusOK {
			t.Errorf("a disconnect ended another grant: /mcp %d", s)
		}
	}
	if page := accountPage(t, w.e, b); strings.Contains(page, aliceAGrant) || !strings.Contains(page, "Client B") {
		t.Errorf("the page after the disconnect:\n%s", page)
	}

	_, bobPage := accountBrowser(t, w.e, w.bob)
	if !strings.Contains(bobPage, bobAGrant) || strings.Contains(bobPage, w.alice) {
		t.Errorf("Bob's page:\n%s", bobPage)
	}

	// Sign out: CSRF-protected; afterwards the page asks for a sign-in again.
	signOut := func(csrf string) int {
		req, _ := http.NewRequest(http.MethodPost, w.e.BaseURL+"/account/signout", strings.NewReader(url.Values{"csrf_token": {csrf}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := b.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := signOut(csrf + "x"); s != http.StatusForbidden {
		t.Errorf("sign-out with a wrong CSRF token: %d, want 403", s)
	}
	accountPage(t, w.e, b) // still signed in
	if s := signOut(csrf); s != http.StatusOK {
		t.Errorf("sign-out: %d, want 200", s)
	}
	resp, err := b.HTTP.Get(w.e.BaseURL + "/account")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Errorf("/account after sign-out: %d, want a redirect to sign in", resp.StatusCode)
	}
}
