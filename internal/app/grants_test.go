package app_test

// Security properties of the refresh-token and authorization-code lifecycle
// (RFC 9700 §2.2.2, §4.14; RFC 6749 §4.1.2), proven against the whole product:
// real Redis, the fake Clerk, the proxy as one HTTP server. Each test fails if
// the property it names breaks. The shared helpers of the security_*_test.go
// files live here too.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testclock"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
)

// --- helpers shared by the security tests ---

// secHTTP never follows redirects, so tests see exactly what the proxy answers.
var secHTTP = &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
	return http.ErrUseLastResponse
}}

// secResponse is a fully read HTTP answer.
type secResponse struct {
	Status int
	Header http.Header
	Body   string
}

// JSON decodes the body as an object (nil when it is not one).
func (r secResponse) JSON() map[string]any {
	var m map[string]any
	if json.Unmarshal([]byte(r.Body), &m) != nil {
		return nil
	}
	return m
}

func secDo(t *testing.T, req *http.Request) secResponse {
	t.Helper()
	resp, err := secHTTP.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return secResponse{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}
}

// postForm posts a form with optional extra headers.
func postForm(t *testing.T, u string, form url.Values, header map[string]string) secResponse {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return secDo(t, req)
}

// get issues a GET with optional extra headers.
func get(t *testing.T, u string, header map[string]string) secResponse {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return secDo(t, req)
}

// registerRaw runs DCR for a public client and returns the whole answer.
func registerRaw(t *testing.T, baseURL string, redirectURIs []string, header map[string]string) secResponse {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"client_name": "security test client", "redirect_uris": redirectURIs, "token_endpoint_auth_method": "none",
		"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
	})
	req, _ := http.NewRequest(http.MethodPost, baseURL+"/register", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return secDo(t, req)
}

// wantOAuthError asserts an RFC 6749 JSON error answer.
func wantOAuthError(t *testing.T, what string, r secResponse, status int, code string) {
	t.Helper()
	m := r.JSON()
	if r.Status != status || m == nil || m["error"] != code || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") ||
		r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("%s: got %d %s (Content-Type %q, Cache-Control %q), want %d error=%s",
			what, r.Status, r.Body, r.Header.Get("Content-Type"), r.Header.Get("Cache-Control"), status, code)
	}
}

// mcpInit sends an MCP initialize with token and returns the status.
func mcpInit(e *e2etest.Env, token string) int {
	return e.MCP(token, "", "initialize", map[string]any{
		"protocolVersion": "2025-11-25", "capabilities": map[string]any{},
		"clientInfo": map[string]any{"name": "security-test", "version": "1"},
	}).Status
}

// clerkRevocations counts revocation calls the fake Clerk received.
func clerkRevocations(e *e2etest.Env) int { return e.Clerk.Stats()["/oauth/token/revoke"] }

// clerkTokens records every token Clerk hands the proxy (the proxy's Clerk
// HTTP client goes through it), so a test can ask Clerk itself whether the
// tokens behind a revoked grant are really dead.
type clerkTokens struct {
	mu      sync.Mutex
	access  []string
	refresh []string
}

func (c *clerkTokens) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || r.URL.Path != "/oauth/token" || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return resp, nil
	}
	var ts struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if json.Unmarshal(body, &ts) == nil {
		c.mu.Lock()
		if ts.AccessToken != "" {
			c.access = append(c.access, ts.AccessToken)
		}
		if ts.RefreshToken != "" {
			c.refresh = append(c.refresh, ts.RefreshToken)
		}
		c.mu.Unlock()
	}
	return resp, nil
}

// options returns environment options whose Clerk calls are recorded by c.
func (c *clerkTokens) options(o e2etest.Options) e2etest.Options {
	o.ClerkHTTPClient = &http.Client{Timeout: 10 * time.Second, Transport: c}
	return o
}

// wantDeadAtClerk asks the fake Clerk about every token it issued to the
// proxy: access tokens must introspect inactive, refresh tokens must no
// longer refresh.
func (c *clerkTokens) wantDeadAtClerk(t *testing.T, e *e2etest.Env) {
	t.Helper()
	c.mu.Lock()
	access, refresh := append([]string(nil), c.access...), append([]string(nil), c.refresh...)
	c.mu.Unlock()
	if len(access) == 0 || len(refresh) == 0 {
		t.Fatalf("recorded %d Clerk access and %d refresh tokens; the test needs both", len(access), len(refresh))
	}
	basic := func(r *http.Request) *http.Request {
		r.SetBasicAuth(e2etest.ClerkClientID, e2etest.ClerkClientSecret)
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return r
	}
	for i, tok := range access {
		req, _ := http.NewRequest(http.MethodPost, e.Clerk.URL+"/oauth/token_info", strings.NewReader(url.Values{"token": {tok}}.Encode()))
		if r := secDo(t, basic(req)); r.Status != http.StatusOK || r.JSON()["active"] != false {
			t.Errorf("Clerk access token %d is still active at Clerk: %d %s", i, r.Status, r.Body)
		}
	}
	for i, tok := range refresh {
		req, _ := http.NewRequest(http.MethodPost, e.Clerk.URL+"/oauth/token",
			strings.NewReader(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok}}.Encode()))
		if r := secDo(t, basic(req)); r.Status == http.StatusOK {
			t.Errorf("Clerk refresh token %d still refreshes at Clerk", i)
		}
	}
}

// redisFor is a go-redis client on the environment's Redis.
func redisFor(t *testing.T, e *e2etest.Env) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(e.Redis.URL)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// signedInOnClock starts the product on a test clock and signs a registered
// client in; its access token works at /mcp.
func signedInOnClock(t *testing.T) (*testclock.Clock, *e2etest.Env, *e2etest.Client) {
	t.Helper()
	clock := testclock.New(time.Now())
	e := e2etest.Start(t, e2etest.Options{Now: clock.Now})
	c := e.Register()
	e.Login(c, testflow.Choices{})
	if s := mcpInit(e, c.AccessToken); s != http.StatusOK {
		t.Fatalf("access token after sign-in: /mcp answered %d", s)
	}
	return clock, e, c
}

// pair is one token response.
type pair struct{ access, refresh string }

func refreshOK(t *testing.T, e *e2etest.Env, c *e2etest.Client, rt string) pair {
	t.Helper()
	status, out := e.Refresh(c, rt)
	at, _ := out["access_token"].(string)
	nrt, _ := out["refresh_token"].(string)
	if status != http.StatusOK || at == "" || nrt == "" {
		t.Fatalf("refresh: %d %v", status, out)
	}
	return pair{at, nrt}
}

// wantGrantRevoked asserts that every access and refresh token of a grant is
// dead and that Clerk's tokens behind it were revoked at Clerk.
func wantGrantRevoked(t *testing.T, e *e2etest.Env, c *e2etest.Client, revocationsBefore int, access []string, refresh []string) {
	t.Helper()
	for i, at := range access {
		if s := mcpInit(e, at); s != http.StatusUnauthorized {
			t.Errorf("access token %d of the revoked grant: /mcp answered %d, want 401", i, s)
		}
	}
	for i, rt := range refresh {
		status, out := e.Refresh(c, rt)
		if status != http.StatusBadRequest || out["error"] != "invalid_grant" {
			t.Errorf("refresh token %d of the revoked grant: %d %v, want 400 invalid_grant", i, status, out)
		}
	}
	if got := clerkRevocations(e); got <= revocationsBefore {
		t.Errorf("Clerk's tokens were not revoked at Clerk (revocation calls %d -> %d)", revocationsBefore, got)
	}
}

// --- 1. refresh tokens ---

// TestRefreshGraceWindowRevokesNothing extends TestRefreshGraceWindow: the
// previous refresh token replayed later in the window (clock moved, not just
// an immediate retry) still gets a working pair, and nothing at all is
// revoked: not the earlier access token, not the rotated refresh token, not
// Clerk's tokens.
func TestRefreshGraceWindowRevokesNothing(t *testing.T) {
	t.Parallel()
	clock := testclock.New(time.Now())
	e := e2etest.Start(t, e2etest.Options{Now: clock.Now}) // REFRESH_GRACE defaults to 60s
	c := e.Register()
	e.Login(c, testflow.Choices{})
	firstAccess, rt0 := c.AccessToken, c.RefreshToken
	revocations := clerkRevocations(e)

	p1 := refreshOK(t, e, c, rt0)
	clock.Advance(50 * time.Second) // still inside the 60s window
	p2 := refreshOK(t, e, c, rt0)
	if p2.refresh != p1.refresh {
		t.Fatalf("a grace replay must answer with the current refresh token, got a different one")
	}
	for name, at := range map[string]string{"first": firstAccess, "rotation": p1.access, "grace replay": p2.access} {
		if s := mcpInit(e, at); s != http.StatusOK {
			t.Errorf("%s access token after a grace replay: /mcp answered %d", name, s)
		}
	}
	if got := clerkRevocations(e); got != revocations {
		t.Errorf("a grace replay revoked Clerk tokens (%d -> %d)", revocations, got)
	}
	p3 := refreshOK(t, e, c, p1.refresh) // the chain goes on
	if s := mcpInit(e, p3.access); s != http.StatusOK {
		t.Errorf("access token after the next rotation: %d", s)
	}
}

// TestRefreshReuseRevokesGrant: outside the grace window, or for an older
// generation, or with the window disabled (REFRESH_GRACE=0), presenting a
// rotated refresh token is reuse: the whole grant dies (every access token at
// /mcp, every refresh token at /token) and Clerk's tokens are revoked at Clerk.
func TestRefreshReuseRevokesGrant(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		env     map[string]string
		advance time.Duration // between the rotation and the replay
		older   bool          // replay a token two generations back
	}{
		{name: "previous token after the window", advance: 61 * time.Second},
		{name: "older generation inside the window", older: true},
		{name: "previous token with grace disabled", env: map[string]string{"REFRESH_GRACE": "0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := testclock.New(time.Now())
			clerk := &clerkTokens{}
			e := e2etest.Start(t, clerk.options(e2etest.Options{Now: clock.Now, Env: tc.env}))
			c := e.Register()
			e.Login(c, testflow.Choices{})
			access, refresh := []string{c.AccessToken}, []string{c.RefreshToken}
			replay := c.RefreshToken
			p := refreshOK(t, e, c, c.RefreshToken)
			access, refresh = append(access, p.access), append(refresh, p.refresh)
			if tc.older {
				p = refreshOK(t, e, c, p.refresh)
				access, refresh = append(access, p.access), append(refresh, p.refresh)
			}
			// The grant is healthy before the replay.
			if s := mcpInit(e, p.access); s != http.StatusOK {
				t.Fatalf("latest access token before the replay: %d", s)
			}
			clock.Advance(tc.advance)
			revocations := clerkRevocations(e)

			status, out := e.Refresh(c, replay)
			if status != http.StatusBadRequest || out["error"] != "invalid_grant" {
				t.Fatalf("replayed refresh token: %d %v, want 400 invalid_grant", status, out)
			}
			wantGrantRevoked(t, e, c, revocations, access, refresh)
			clerk.wantDeadAtClerk(t, e)
		})
	}
}

// TestRefreshLostAnswerKeepsSession is the Claude pattern
// (anthropics/claude-code#65036): the client refreshes, loses the answer, and
// hours later retries with the refresh token it still holds. Its successor
// was never used, so this is no theft: the retry gets that same successor and
// a working access token, nothing is revoked, and the chain goes on.
func TestRefreshLostAnswerKeepsSession(t *testing.T) {
	clock, e, c := signedInOnClock(t)
	revocations := clerkRevocations(e)

	lost := refreshOK(t, e, c, c.RefreshToken) // the answer never reaches the client
	clock.Advance(5 * time.Hour)               // far beyond REFRESH_GRACE
	retry := refreshOK(t, e, c, c.RefreshToken)
	if retry.refresh != lost.refresh {
		t.Fatalf("the retry must get the successor that was lost, got another token")
	}
	if s := mcpInit(e, retry.access); s != http.StatusOK {
		t.Fatalf("access token from the retry: /mcp answered %d", s)
	}
	// Once the successor's access token is in use, the chain moves on from it.
	next := refreshOK(t, e, c, retry.refresh)
	if s := mcpInit(e, next.access); s != http.StatusOK {
		t.Fatalf("access token after the next rotation: %d", s)
	}
	if got := clerkRevocations(e); got != revocations {
		t.Errorf("the lost answer cost the user their session (Clerk revocations %d -> %d)", revocations, got)
	}
}

// TestRefreshThiefAfterClientMovedOn: once the legitimate client has used
// the successor (its access token at /mcp, or the successor itself at
// /token), the previous refresh token is spent: a thief presenting it
// revokes the whole family. Within REFRESH_GRACE of the rotation the previous
// token is still answered (a retry racing the first use), and with
// REFRESH_GRACE=0 there is no leniency at all.
func TestRefreshThiefAfterClientMovedOn(t *testing.T) {
	for _, tc := range []struct {
		name       string
		env        map[string]string
		useFirst   bool // the first access token was used before the rotation (the grant cache then holds "used" for it)
		useAccess  bool // the client used the successor's access token at /mcp
		useRefresh bool // the client used the successor at /token
		advance    time.Duration
		revoked    bool
	}{
		{name: "successor's access token used, thief hours later", useAccess: true, advance: 3 * time.Hour, revoked: true},
		{name: "successor refreshed, thief hours later", useRefresh: true, advance: 3 * time.Hour, revoked: true},
		{name: "successor's access token used while the grant cache predates the rotation, thief hours later", useFirst: true, useAccess: true,
			advance: 3 * time.Hour, revoked: true},
		{name: "successor's access token used, replay within REFRESH_GRACE", useAccess: true, advance: 30 * time.Second},
		{name: "REFRESH_GRACE=0, successor unused", env: map[string]string{"REFRESH_GRACE": "0"}, revoked: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := testclock.New(time.Now())
			e := e2etest.Start(t, e2etest.Options{Now: clock.Now, Env: tc.env})
			c := e.Register()
			e.Login(c, testflow.Choices{})
			stolen := c.RefreshToken
			if tc.useFirst {
				// Used, and used again once the grant cache has lapsed: the
				// replica's cached grant now says "generation 1, used".
				for i := range 2 {
					clock.Advance(time.Duration(i) * 2 * time.Second)
					if s := mcpInit(e, c.AccessToken); s != http.StatusOK {
						t.Fatalf("first access token: %d", s)
					}
				}
			}
			p := refreshOK(t, e, c, c.RefreshToken)
			access, refresh := []string{c.AccessToken, p.access}, []string{p.refresh}
			if tc.useAccess {
				if s := mcpInit(e, p.access); s != http.StatusOK {
					t.Fatalf("successor's access token: %d", s)
				}
			}
			if tc.useRefresh {
				p = refreshOK(t, e, c, p.refresh)
				access, refresh = append(access, p.access), append(refresh, p.refresh)
			}
			clock.Advance(tc.advance)
			revocations := clerkRevocations(e)
			status, out := e.Refresh(c, stolen)
			if !tc.revoked {
				if status != http.StatusOK {
					t.Fatalf("replay within REFRESH_GRACE: %d %v, want 200", status, out)
				}
				return
			}
			if status != http.StatusBadRequest || out["error"] != "invalid_grant" {
				t.Fatalf("the thief's refresh: %d %v, want 400 invalid_grant", status, out)
			}
			wantGrantRevoked(t, e, c, revocations, access, refresh)
		})
	}
}

// TestConcurrentRefresh: 20 refreshes racing with the same token against
// real Redis. Every answer is a working pair or a clean 400 invalid_grant in
// JSON (never a 5xx), the race revokes nothing, and afterwards the grant is
// intact: the refresh token handed out still rotates and the access tokens
// work at /mcp.
func TestConcurrentRefresh(t *testing.T) {
	t.Parallel()
	e := e2etest.Start(t, e2etest.Options{})
	c := e.Register()
	e.Login(c, testflow.Choices{})
	revocations := clerkRevocations(e)

	const n = 20
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {c.RefreshToken}, "client_id": {c.ID}}
	answers := make([]secResponse, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			answers[i] = postFormNoFatal(e.BaseURL+"/token", form)
		}()
	}
	close(start)
	wg.Wait()

	issued := map[string]bool{}
	var accessTokens []string
	for i, a := range answers {
		m := a.JSON()
		switch {
		case a.Status == http.StatusOK && m != nil && m["access_token"] != nil && m["refresh_token"] != nil && m["token_type"] == "Bearer":
			issued[m["refresh_token"].(string)] = true
			accessTokens = append(accessTokens, m["access_token"].(string))
		case a.Status == http.StatusBadRequest && m != nil && m["error"] == "invalid_grant" &&
			strings.HasPrefix(a.Header.Get("Content-Type"), "application/json"):
		default:
			t.Fatalf("concurrent refresh %d: %d %q (want a token pair or 400 invalid_grant)", i, a.Status, a.Body)
		}
	}
	if len(accessTokens) == 0 {
		t.Fatal("no concurrent refresh succeeded")
	}
	if len(issued) != 1 {
		t.Fatalf("racing refreshes of one token issued %d different refresh tokens; one rotation must win and the rest get it back", len(issued))
	}
	if got := clerkRevocations(e); got != revocations {
		t.Fatalf("the race revoked Clerk tokens (%d -> %d)", revocations, got)
	}
	for i, at := range accessTokens {
		if s := mcpInit(e, at); s != http.StatusOK {
			t.Fatalf("access token %d from the race: /mcp answered %d", i, s)
		}
	}
	var latest string
	for rt := range issued {
		latest = rt
	}
	next := refreshOK(t, e, c, latest)
	if s := mcpInit(e, next.access); s != http.StatusOK {
		t.Fatalf("access token after the race's rotation: %d", s)
	}
	refreshOK(t, e, c, next.refresh)
}

// postFormNoFatal is postForm for goroutines (no t.Fatal off the test goroutine).
func postFormNoFatal(u string, form url.Values) secResponse {
	resp, err := secHTTP.PostForm(u, form)
	if err != nil {
		return secResponse{Status: -1, Body: err.Error()}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return secResponse{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}
}

// --- 2. authorization code replay ---

// TestCodeReplayRevokesEverything extends TestTokenFailures: a second
// redemption of a code gets invalid_grant AND kills everything the first
// redemption issued: the access token at /mcp, the refresh token at /token
// (also after a rotation), and Clerk's tokens at Clerk (OIDF
// oidcc-codereuse-30seconds).
func TestCodeReplayRevokesEverything(t *testing.T) {
	t.Parallel()
	clock := testclock.New(time.Now())
	clerk := &clerkTokens{}
	e := e2etest.Start(t, clerk.options(e2etest.Options{Now: clock.Now}))
	c := e.Register()
	p := e2etest.NewPKCE()
	code := e.SignIn(c, p, testflow.Choices{})
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {c.RedirectURI},
		"client_id": {c.ID}, "code_verifier": {p.Verifier}}
	status, first := e.Token(form)
	if status != http.StatusOK {
		t.Fatalf("first redemption: %d %v", status, first)
	}
	at, rt := first["access_token"].(string), first["refresh_token"].(string)
	rotated := refreshOK(t, e, c, rt)
	if s := mcpInit(e, rotated.access); s != http.StatusOK {
		t.Fatalf("tokens before the replay: %d", s)
	}
	clock.Advance(30 * time.Second)
	revocations := clerkRevocations(e)

	if status, out := e.Token(form); status != http.StatusBadRequest || out["error"] != "invalid_grant" {
		t.Fatalf("replayed code: %d %v, want 400 invalid_grant", status, out)
	}
	wantGrantRevoked(t, e, c, revocations, []string{at, rotated.access}, []string{rt, rotated.refresh})
	clerk.wantDeadAtClerk(t, e)
}

// TestNoOpenRedirectBeforeSignIn: RFC 9700 §4.11.2. Registration is open
// to anyone, so an error found before the user signed in (a bad request at
// /authorize, or a denial on the consent page) goes back by itself only to a
// redirect URI that reaches an app on the user's machine (loopback) or one
// the operator's allowlist names. To an https URI a client registered for
// itself, the user gets a page with the way back as a link.
func TestNoOpenRedirectBeforeSignIn(t *testing.T) {
	t.Parallel()
	const web = "https://app.example/cb"
	href := regexp.MustCompile(`<a [^>]*href="([^"]+)"`) // a link, not the page's stylesheet
	// wantError checks an error response URL: the error, state and iss, once each.
	wantError := func(what, raw, prefix, code, state, iss string) {
		t.Helper()
		u, err := url.Parse(raw)
		q := u.Query()
		if err != nil || !strings.HasPrefix(raw, prefix) || q.Get("error") != code || len(q["state"]) != 1 || q.Get("state") != state ||
			q.Get("iss") != iss || q.Has("code") {
			t.Errorf("%s: the way back is %q, want %s with error=%s, state and iss", what, raw, prefix, code)
		}
	}
	// linkOn returns the way back offered on an error page.
	linkOn := func(what, body string) string {
		t.Helper()
		m := href.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("%s: the page offers no way back to the app:\n%s", what, body)
		}
		return html.UnescapeString(m[1])
	}

	e := e2etest.Start(t, e2etest.Options{})
	loop, webc := e.Register(), e.Register(web)
	bad := url.Values{"scope": {"openid admin:all"}}

	r := get(t, e.AuthorizeURL(loop, e2etest.NewPKCE(), "state-loop-1234", bad), nil)
	if r.Status != http.StatusFound {
		t.Fatalf("bad scope, loopback redirect: %d, want 302", r.Status)
	}
	wantError("bad scope, loopback", r.Header.Get("Location"), loop.RedirectURI, "invalid_scope", "state-loop-1234", e.BaseURL)

	r = get(t, e.AuthorizeURL(webc, e2etest.NewPKCE(), "state-web-12345", bad), map[string]string{"Accept": "text/html"})
	if r.Status != http.StatusBadRequest || r.Header.Get("Location") != "" {
		t.Fatalf("bad scope, https redirect: %d Location %q, want a 400 page", r.Status, r.Header.Get("Location"))
	}
	wantError("bad scope, https", linkOn("bad scope page", r.Body), web, "invalid_scope", "state-web-12345", e.BaseURL)

	final, err := testflow.NewBrowser().Authorize(context.Background(), e.AuthorizeURL(loop, e2etest.NewPKCE(), "state-deny-1234", nil),
		loop.RedirectURI, testflow.Choices{Consent: "deny"})
	if err != nil {
		t.Fatalf("deny, loopback redirect: %v", err)
	}
	wantError("deny, loopback", final.String(), loop.RedirectURI, "access_denied", "state-deny-1234", e.BaseURL)

	b := testflow.NewBrowser()
	_, err = b.Authorize(context.Background(), e.AuthorizeURL(webc, e2etest.NewPKCE(), "state-deny-5678", nil), web, testflow.Choices{Consent: "deny"})
	if !errors.Is(err, testflow.ErrNoRedirect) {
		t.Fatalf("deny, https redirect: %v, want the flow to stop on a page", err)
	}
	var denied string
	for u, body := range b.Pages {
		if strings.HasSuffix(strings.SplitN(u, "?", 2)[0], "/consent") && strings.Contains(body, "Access denied") {
			denied = body
		}
	}
	wantError("deny, https", linkOn("denial page", denied), web, "access_denied", "state-deny-5678", e.BaseURL)

	// The operator trusts the https URI: errors go back by themselves again.
	trusted := e2etest.Start(t, e2etest.Options{Env: map[string]string{"ALLOWED_REDIRECT_URIS": web + ",http://127.0.0.1/callback"}})
	tc := trusted.Register(web)
	r = get(t, trusted.AuthorizeURL(tc, e2etest.NewPKCE(), "state-trusted-12", bad), nil)
	if r.Status != http.StatusFound {
		t.Fatalf("bad scope, allowlisted https redirect: %d, want 302", r.Status)
	}
	wantError("bad scope, allowlisted", r.Header.Get("Location"), web, "invalid_scope", "state-trusted-12", trusted.BaseURL)
}
