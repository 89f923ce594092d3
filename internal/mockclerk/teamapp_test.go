package mockclerk_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/clerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mockclerk"
)

// TestTeamApp: the team app's page signs a user in and returns to the
// callback with a session token that verifies against the instance JWKS
// (azp = the app's origin) and names a session the Backend API reports
// active until it is revoked; Deny returns access_denied; the state comes
// back unchanged either way.
func TestTeamApp(t *testing.T) {
	ck := start(t, nil)
	cl := clerk.New(context.Background(), clerk.Config{Issuer: ck.URL, SecretKey: secretKey, APIURL: ck.URL})
	const cb = "http://127.0.0.1:5556/callback?keep=1"
	page := get(t, ck.URL+mockclerk.TeamAppPath+"/auth/mcp?"+url.Values{"state": {goodState}, "callback_url": {cb}, "client_name": {"Claude"}}.Encode(), nil)
	if page.Status != http.StatusOK || !strings.Contains(string(page.Body), "Connect Claude") {
		t.Fatalf("team app page: %d %s", page.Status, page.Body)
	}
	decide := func(action string) *url.URL {
		t.Helper()
		form := url.Values{"state": {goodState}, "callback_url": {cb}, "action": {action}}
		req, _ := http.NewRequest(http.MethodPost, ck.URL+mockclerk.TeamAppPath+"/auth/mcp", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r := do(t, noRedirect, req)
		loc, err := url.Parse(r.Header.Get("Location"))
		if r.Status != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), "http://127.0.0.1:5556/callback?") ||
			loc.Query().Get("state") != goodState || loc.Query().Get("keep") != "1" {
			t.Fatalf("%s: %d %q", action, r.Status, r.Header.Get("Location"))
		}
		return loc
	}
	if loc := decide("deny"); loc.Query().Get("error") != "access_denied" || loc.Query().Get("clerk_token") != "" {
		t.Fatalf("deny: %s", loc)
	}
	tok := decide("approve").Query().Get("clerk_token")
	ctx := context.Background()
	claims, err := cl.VerifySessionToken(ctx, tok, []string{ck.URL}, time.Now(), 5*time.Second)
	if err != nil || claims.Subject != mockclerk.DefaultUsers()[0].ID {
		t.Fatalf("session token: %+v %v", claims, err)
	}
	if _, err := cl.VerifySessionToken(ctx, tok, []string{"https://elsewhere.example"}, time.Now(), 5*time.Second); !errors.Is(err, clerk.ErrBadSessionToken) {
		t.Fatalf("azp of another origin: %v", err)
	}
	if _, err := cl.VerifySessionToken(ctx, tok, []string{ck.URL}, time.Now().Add(2*time.Minute), 5*time.Second); !errors.Is(err, clerk.ErrBadSessionToken) {
		t.Fatalf("after 60 s: %v, want expired", err)
	}
	sess, err := cl.Session(ctx, claims.SessionID)
	if err != nil || !sess.Active() || sess.UserID != claims.Subject {
		t.Fatalf("session %+v %v", sess, err)
	}
	ck.RevokeSession(claims.SessionID)
	if sess, err := cl.Session(ctx, claims.SessionID); err != nil || sess.Active() || sess.Status != "revoked" {
		t.Fatalf("revoked session %+v %v", sess, err)
	}
	if sess, err := cl.Session(ctx, "sess_unknown"); err != nil || sess.Active() {
		t.Fatalf("unknown session %+v %v", sess, err)
	}
	// An access token of the same instance is not a session token.
	if _, err := clerk.ParseSessionToken(strings.Replace(tok, strings.Split(tok, ".")[0], "eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCJ9", 1)); !errors.Is(err, clerk.ErrBadSessionToken) {
		t.Fatalf("typ at+jwt taken as a session token: %v", err)
	}
	other := start(t, nil)
	otherTok, err := other.NewSession(mockclerk.DefaultUsers()[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.VerifySessionToken(ctx, otherTok, []string{other.URL, ck.URL}, time.Now(), 5*time.Second); !errors.Is(err, clerk.ErrBadSessionToken) {
		t.Fatalf("another instance's session token: %v", err)
	}
}
