package app_test

// AUTH_MODE=app end to end: the proxy keeps its own AS, consent and tokens;
// the user signs in through the team's app (the fake Clerk's /team-app),
// which calls back /callback with a Clerk session token; the grant lives
// while that Clerk session does.

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/clerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mockclerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
)

const appRedirect = "http://127.0.0.1:43210/callback"

// startAppMode runs the proxy in app mode with the fake's team app as
// APP_URL and no Clerk OAuth application at all.
func startAppMode(t *testing.T, env map[string]string) *e2etest.Env {
	t.Helper()
	all := map[string]string{"AUTH_MODE": "app", "APP_URL": e2etest.ClerkURLVar + mockclerk.TeamAppPath,
		"CLERK_CLIENT_ID": "", "CLERK_CLIENT_SECRET": ""}
	for k, v := range env {
		all[k] = v
	}
	return e2etest.Start(t, e2etest.Options{Env: all})
}

// TestAppModeFlow: register at the proxy, consent, sign in at the team app,
// the code and tokens are the proxy's own, the tools see the user; ending
// the Clerk session ends the grant.
func TestAppModeFlow(t *testing.T) {
	t.Parallel()
	// Session answers are not cached, so the revocation shows at once.
	e := startAppMode(t, map[string]string{"INTROSPECTION_CACHE_TTL": "0"})
	c := e.Register(appRedirect)
	e.Login(c, testflow.Choices{})
	session := e.Initialize(c.AccessToken)
	resp, info := e.CallTool(c.AccessToken, session, "get-user-info")
	alice := mockclerk.DefaultUsers()[0]
	if resp.Status != http.StatusOK || info["userId"] != alice.ID || info["client_id"] != c.ID {
		t.Fatalf("get-user-info: %d %s", resp.Status, resp.Body)
	}
	stats := e.Clerk.Stats()
	if stats["/oauth/authorize"] != 0 || stats["/oauth/token"] != 0 || stats["/oauth/token_info"] != 0 || countPrefix(stats, "/v1/sessions/") == 0 {
		t.Fatalf("app mode must use the team app and the Backend API session, not Clerk OAuth: %v", stats)
	}
	// Refresh works on the proxy's own tokens.
	if status, out := e.Refresh(c, c.RefreshToken); status != http.StatusOK {
		t.Fatalf("refresh: %d %v", status, out)
	}
	for _, u := range []string{"/oauth/callback?code=x&state=12345678"} {
		if r, err := http.Get(e.BaseURL + u); err != nil || r.StatusCode != http.StatusNotFound {
			t.Fatalf("%s in app mode: %v, want 404", u, r.StatusCode)
		}
	}
	e.Clerk.RevokeUser(alice.ID) // ends the user's Clerk sessions
	if r := e.MCP(c.AccessToken, session, "tools/list", map[string]any{}); r.Status != http.StatusUnauthorized {
		t.Fatalf("after the Clerk session ended: %d, want 401", r.Status)
	}
	if !strings.Contains(e.Logs.String(), `"reason":"clerk_session_ended"`) {
		t.Fatal("no audit line for the grant ended with the session")
	}
}

func countPrefix(m map[string]int, prefix string) int {
	n := 0
	for k, v := range m {
		if strings.HasPrefix(k, prefix) {
			n += v
		}
	}
	return n
}

// toTeamApp walks a browser from /authorize through the proxy's consent to
// the team app and returns the browser (holding the binding cookie) and the
// team app URL it was sent to, with the state and callback_url.
func toTeamApp(t *testing.T, e *e2etest.Env, c *e2etest.Client) (*testflow.Browser, *url.URL) {
	t.Helper()
	b := testflow.NewBrowser()
	u, err := b.Authorize(context.Background(), e.AuthorizeURL(c, e2etest.NewPKCE(), "state-12345678", nil),
		e.Clerk.URL+mockclerk.TeamAppPath+"/auth/mcp", testflow.Choices{})
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("callback_url") != e.BaseURL+"/callback" || q.Get("state") == "" || q.Get("client_name") == "" {
		t.Fatalf("team app URL %s", u)
	}
	return b, u
}

// TestAppModeCallbackRefusals: what /callback answers for each thing that
// may be wrong with what comes back from the app. Refusals are 4xx pages
// (the state is spent); the app's access_denied goes to the client.
func TestAppModeCallbackRefusals(t *testing.T) {
	t.Parallel()
	e := startAppMode(t, nil)
	other := startAppMode(t, nil) // another Clerk instance
	c := e.Register(appRedirect)
	alice := mockclerk.DefaultUsers()[0].ID
	fresh := func() string {
		tok, err := e.Clerk.NewSession(alice)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	mint := func(ck *mockclerk.Running, azp string, iat time.Time) string {
		tok, err := ck.SessionToken("sess_"+strings.Repeat("Z", 27), alice, azp, iat)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	otherTok, err := other.Clerk.NewSession(alice)
	if err != nil {
		t.Fatal(err)
	}
	revokedTok := fresh()
	for _, tc := range []struct {
		name   string
		query  func(state string) url.Values
		status int
		// clientError, when set, is the error the client must get (a 302).
		clientError string
	}{
		{"good", func(s string) url.Values { return url.Values{"state": {s}, "clerk_token": {fresh()}} }, http.StatusFound, ""},
		{"access denied in the app", func(s string) url.Values { return url.Values{"state": {s}, "error": {"access_denied"}} }, http.StatusFound, "access_denied"},
		{"tampered state", func(s string) url.Values { return url.Values{"state": {s + "x"}, "clerk_token": {fresh()}} }, http.StatusBadRequest, ""},
		{"no state", func(string) url.Values { return url.Values{"clerk_token": {fresh()}} }, http.StatusBadRequest, ""},
		{"no token", func(s string) url.Values { return url.Values{"state": {s}} }, http.StatusBadRequest, ""},
		{"junk token", func(s string) url.Values { return url.Values{"state": {s}, "clerk_token": {"junk"}} }, http.StatusBadRequest, ""},
		{"another instance's token", func(s string) url.Values { return url.Values{"state": {s}, "clerk_token": {otherTok}} }, http.StatusBadRequest, ""},
		{"expired token", func(s string) url.Values {
			return url.Values{"state": {s}, "clerk_token": {mint(e.Clerk, e.Clerk.URL, time.Now().Add(-5*time.Minute))}}
		}, http.StatusBadRequest, ""},
		{"token minted for another origin", func(s string) url.Values {
			return url.Values{"state": {s}, "clerk_token": {mint(e.Clerk, "https://evil.example", time.Now())}}
		}, http.StatusBadRequest, ""},
		{"session unknown to Clerk", func(s string) url.Values {
			return url.Values{"state": {s}, "clerk_token": {mint(e.Clerk, e.Clerk.URL, time.Now())}}
		}, http.StatusBadRequest, ""},
		{"session revoked", func(s string) url.Values {
			e.Clerk.RevokeSession(sessionOf(t, revokedTok))
			return url.Values{"state": {s}, "clerk_token": {revokedTok}}
		}, http.StatusBadRequest, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, u := toTeamApp(t, e, c)
			cb := e.BaseURL + "/callback?" + tc.query(u.Query().Get("state")).Encode()
			resp, err := b.HTTP.Get(cb)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("%d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status != http.StatusFound {
				// Each refusal says which half failed, never why in detail.
				want := "Your sign-in could not be verified"
				if strings.Contains(tc.name, "state") {
					want = "This sign-in link has expired"
				}
				if !strings.Contains(string(body), want) || strings.Contains(string(body), "eyJ") {
					t.Fatalf("page %q lacks %q (or echoes a token)", body, want)
				}
				return
			}
			loc, _ := url.Parse(resp.Header.Get("Location"))
			if !strings.HasPrefix(loc.String(), appRedirect) || loc.Query().Get("state") != "state-12345678" {
				t.Fatalf("redirect %s", loc)
			}
			if got := loc.Query().Get("error"); got != tc.clientError || tc.clientError == "" && loc.Query().Get("code") == "" {
				t.Fatalf("redirect %s, want error %q", loc, tc.clientError)
			}
			// Replay: the same callback again is refused, the state is spent.
			again, err := b.HTTP.Get(cb)
			if err != nil {
				t.Fatal(err)
			}
			again.Body.Close()
			if again.StatusCode != http.StatusBadRequest {
				t.Fatalf("replayed callback: %d, want 400", again.StatusCode)
			}
		})
	}
}

// sessionOf reads the sid of one of the fake's session tokens.
func sessionOf(t *testing.T, tok string) string {
	t.Helper()
	c, err := clerk.ParseSessionToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	return c.SessionID
}

// TestAppModeSDKClient: the official TypeScript SDK client's whole flow
// (e2e/sdk-client.mjs: discovery, DCR, PKCE, consent, sign-in, tools,
// refresh, step-up) in app mode, the browser part signing in at the team
// app.
func TestAppModeSDKClient(t *testing.T) {
	t.Parallel()
	node, script := nodeScript(t, "sdk-client.mjs")
	e := startAppMode(t, map[string]string{"TOOL_SCOPES": "get-clerk-user-profile=profile:read"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, script, e.BaseURL, "get-clerk-user-profile").CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("sdk-client.mjs in app mode: %v", err)
	}
	if n := countPrefix(e.Clerk.Stats(), mockclerk.TeamAppPath+"/auth/mcp"); n < 2 {
		t.Fatalf("the team app was visited %d times, want the sign-in and the step-up", n)
	}
}

// TestAppModeChromium: the app-mode sign-in in real Chromium, allow and
// deny (e2e/browser-app.mjs); screenshots of the consent and team-app pages
// go to e2e/artifacts/app-mode/.
func TestAppModeChromium(t *testing.T) {
	t.Parallel()
	node, script := nodeScript(t, "browser-app.mjs")
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("needs chromium (bash scripts/deps)")
	}
	art, err := filepath.Abs("../../e2e/artifacts/app-mode")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(art, 0o755); err != nil {
		t.Fatal(err)
	}
	e := startAppMode(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, script, e.BaseURL, art).CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("browser-app.mjs: %v", err)
	}
}
