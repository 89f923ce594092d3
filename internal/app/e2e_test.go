package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mockclerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/tokens"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store/redisstore"
)

// TestEndToEnd drives the whole product as an MCP client would: DCR, the
// authorization request, the consent form, the fake Clerk's sign-in, the
// callback, the code exchange, MCP calls as the signed-in user, refresh, and
// revocation.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	e := e2etest.Start(t, e2etest.Options{})
	user := e.Clerk.Users()[0]

	// Without a token: 401 with a challenge naming the PRM.
	r := e.MCP("", "", "initialize", map[string]any{})
	if r.Status != http.StatusUnauthorized || !strings.Contains(r.Header.Get("WWW-Authenticate"), `resource_metadata="`+e.BaseURL+`/.well-known/oauth-protected-resource/mcp"`) {
		t.Fatalf("no token: %d %q", r.Status, r.Header.Get("WWW-Authenticate"))
	}

	c := e.Register()
	e.Login(c, testflow.Choices{})
	if c.AccessToken == "" || c.RefreshToken == "" {
		t.Fatalf("tokens missing: %+v", c)
	}
	session := e.Initialize(c.AccessToken)
	resp, info := e.CallTool(c.AccessToken, session, "get-user-info")
	if resp.Status != http.StatusOK || info["userId"] != user.ID || info["email"] != user.Email || info["client_id"] != c.ID {
		t.Fatalf("get-user-info: %d %s", resp.Status, resp.Body)
	}
	if info["org_id"] != user.Org.ID || info["org_role"] != user.Org.Role {
		t.Errorf("org fields: %v", info)
	}
	if _, greet := e.CallTool(c.AccessToken, session, "get-user-greeting"); !strings.Contains(greet["greeting"].(string), user.FirstName) {
		t.Errorf("greeting: %v", greet)
	}
	if _, prof := e.CallTool(c.AccessToken, session, "get-clerk-user-profile"); prof["source"] != "backend_api" {
		t.Errorf("profile: %v", prof)
	}

	// Refresh rotates; the new pair works.
	status, out := e.Refresh(c, c.RefreshToken)
	if status != http.StatusOK || out["refresh_token"] == c.RefreshToken {
		t.Fatalf("refresh: %d %v", status, out)
	}
	c.AccessToken, c.RefreshToken = out["access_token"].(string), out["refresh_token"].(string)
	if r := e.MCP(c.AccessToken, session, "tools/list", map[string]any{}); r.Status != http.StatusOK {
		t.Fatalf("after refresh: %d %s", r.Status, r.Body)
	}

	// Revoke the refresh token: the grant ends, the access token is refused,
	// and Clerk's refresh token is revoked at Clerk.
	before := e.Clerk.Stats()["/oauth/token/revoke"]
	rv, err := http.PostForm(e.BaseURL+"/revoke", url.Values{"token": {c.RefreshToken}, "client_id": {c.ID}})
	if err != nil || rv.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %v %v", err, rv.StatusCode)
	}
	if r := e.MCP(c.AccessToken, session, "tools/list", map[string]any{}); r.Status != http.StatusUnauthorized ||
		!strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("after revoke: %d %q", r.Status, r.Header.Get("WWW-Authenticate"))
	}
	if got := e.Clerk.Stats()["/oauth/token/revoke"]; got <= before {
		t.Errorf("Clerk revoke not called (%d -> %d)", before, got)
	}
	if status, _ := e.Refresh(c, c.RefreshToken); status != http.StatusBadRequest {
		t.Errorf("refresh after revoke: %d", status)
	}
}

// TestRefreshReplayRevokesGrant: with no grace window, presenting a rotated
// refresh token is a replay; the whole grant dies.
func TestRefreshReplayRevokesGrant(t *testing.T) {
	t.Parallel()
	e := e2etest.Start(t, e2etest.Options{Env: map[string]string{"REFRESH_GRACE": "0"}})
	c := e.Register()
	e.Login(c, testflow.Choices{})
	old := c.RefreshToken
	status, out := e.Refresh(c, old)
	if status != http.StatusOK {
		t.Fatalf("refresh: %d %v", status, out)
	}
	newAccess := out["access_token"].(string)
	if status, out := e.Refresh(c, old); status != http.StatusBadRequest || out["error"] != "invalid_grant" {
		t.Fatalf("old refresh token: %d %v", status, out)
	}
	if r := e.MCP(newAccess, "", "initialize", map[string]any{}); r.Status != http.StatusUnauthorized {
		t.Fatalf("tokens of a replayed grant must die: %d", r.Status)
	}
	if status, _ := e.Refresh(c, out["refresh_token"].(string)); status != http.StatusBadRequest {
		t.Fatalf("new refresh token of a replayed grant must die: %d", status)
	}
}

// TestRefreshGraceWindow: the previous token within the window gets the same
// new refresh token back, and nothing is revoked.
func TestRefreshGraceWindow(t *testing.T) {
	t.Parallel()
	e := e2etest.Start(t, e2etest.Options{})
	c := e.Register()
	e.Login(c, testflow.Choices{})
	old := c.RefreshToken
	s1, o1 := e.Refresh(c, old)
	s2, o2 := e.Refresh(c, old)
	if s1 != http.StatusOK || s2 != http.StatusOK || o1["refresh_token"] != o2["refresh_token"] {
		t.Fatalf("grace replay: %d %v / %d %v", s1, o1, s2, o2)
	}
	if r := e.MCP(o2["access_token"].(string), "", "initialize", map[string]any{
		"protocolVersion": "2025-11-25", "capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "x", "version": "1"},
	}); r.Status != http.StatusOK {
		t.Fatalf("grace access token: %d %s", r.Status, r.Body)
	}
	if s3, _ := e.Refresh(c, o1["refresh_token"].(string)); s3 != http.StatusOK {
		t.Fatalf("the rotated token must keep working: %d", s3)
	}
}

func TestAuthorizeFailures(t *testing.T) {
	t.Parallel()
	e := e2etest.Start(t, e2etest.Options{})
	c := e.Register("http://127.0.0.1:7777/callback")
	p := e2etest.NewPKCE()
	get := func(u string) *http.Response {
		t.Helper()
		cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := cl.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	// Unregistered redirect and unknown client: a local page, no redirect.
	for name, u := range map[string]string{
		"bad redirect":   e.AuthorizeURL(c, p, "state-12345678", url.Values{"redirect_uri": {"https://evil.example/cb"}}),
		"userinfo trick": e.AuthorizeURL(c, p, "state-12345678", url.Values{"redirect_uri": {"http://127.0.0.1:7777@evil.example/callback"}}),
		"unknown client": e.AuthorizeURL(&e2etest.Client{ID: "mcp_nope", RedirectURI: c.RedirectURI}, p, "state-12345678", nil),
	} {
		resp := get(u)
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Errorf("%s: %d location=%q", name, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	// Missing or plain PKCE: an error sent back to the (valid) redirect URI.
	for name, extra := range map[string]url.Values{
		"no pkce":      {"code_challenge": {""}},
		"plain pkce":   {"code_challenge_method": {"plain"}},
		"bad resource": {"resource": {"https://other.example/mcp"}},
		"bad scope":    {"scope": {"admin:everything"}},
		"token flow":   {"response_type": {"token"}},
	} {
		resp := get(e.AuthorizeURL(c, p, "state-12345678", extra))
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), c.RedirectURI) ||
			loc.Query().Get("error") == "" || loc.Query().Get("state") != "state-12345678" || loc.Query().Get("iss") != e.BaseURL {
			t.Errorf("%s: %d %s", name, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	// Loopback port relaxation (RFC 8252 §7.3).
	resp := get(e.AuthorizeURL(c, p, "state-12345678", url.Values{"redirect_uri": {"http://127.0.0.1:45678/callback"}}))
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "/consent") {
		t.Errorf("loopback port: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp = get(e.AuthorizeURL(c, p, "state-12345678", url.Values{"redirect_uri": {"http://localhost:7777/callback"}}))
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("localhost is not 127.0.0.1: %d", resp.StatusCode)
	}
}

func TestTokenFailures(t *testing.T) {
	t.Parallel()
	e := e2etest.Start(t, e2etest.Options{})
	c := e.Register()
	p := e2etest.NewPKCE()
	code := e.SignIn(c, p, testflow.Choices{})
	base := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {c.RedirectURI}, "client_id": {c.ID}}
	wrong := url.Values{}
	for k, v := range base {
		wrong[k] = v
	}
	wrong.Set("code_verifier", e2etest.NewPKCE().Verifier)
	if status, out := e.Token(wrong); status != http.StatusBadRequest || out["error"] != "invalid_grant" {
		t.Fatalf("wrong verifier: %d %v", status, out)
	}
	// The code was spent by the failed attempt: the right verifier is too late.
	base.Set("code_verifier", p.Verifier)
	if status, out := e.Token(base); status != http.StatusBadRequest || out["error"] != "invalid_grant" {
		t.Fatalf("code after failed attempt: %d %v", status, out)
	}

	// Code replay revokes what the first redemption issued.
	c2 := e.Register()
	p2 := e2etest.NewPKCE()
	code2 := e.SignIn(c2, p2, testflow.Choices{})
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code2}, "redirect_uri": {c2.RedirectURI}, "client_id": {c2.ID}, "code_verifier": {p2.Verifier}}
	status, first := e.Token(form)
	if status != http.StatusOK {
		t.Fatalf("first redemption: %d %v", status, first)
	}
	if status, out := e.Token(form); status != http.StatusBadRequest || out["error"] != "invalid_grant" {
		t.Fatalf("replay: %d %v", status, out)
	}
	if r := e.MCP(first["access_token"].(string), "", "initialize", map[string]any{}); r.Status != http.StatusUnauthorized {
		t.Fatalf("access token from a replayed code must die: %d", r.Status)
	}

	// Unknown client at /token: 401 invalid_client (the re-register signal).
	if status, out := e.Token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {"mcp_gone"}}); status != http.StatusUnauthorized || out["error"] != "invalid_client" {
		t.Fatalf("unknown client: %d %v", status, out)
	}
}

// TestWrongAudienceToken: a token signed by the proxy's own key but for
// another resource is refused.
func TestWrongAudienceToken(t *testing.T) {
	t.Parallel()
	e := e2etest.Start(t, e2etest.Options{})
	c := e.Register()
	e.Login(c, testflow.Choices{})
	st, err := redisstore.New(context.Background(), redisstore.Options{URL: e.Redis.URL, Prefix: e.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ks, err := tokens.LoadKeySet(context.Background(), st, []byte(e2etest.ProxySecret), tokens.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := ks.Verify(c.AccessToken, tokens.Expectations{Issuer: e.BaseURL, Audience: e.BaseURL + "/mcp", Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	claims.Audience = "https://other.example/mcp"
	forged, _ := ks.Sign(claims)
	if r := e.MCP(forged, "", "initialize", map[string]any{}); r.Status != http.StatusUnauthorized {
		t.Fatalf("wrong audience: %d", r.Status)
	}
	if r := e.MCP(c.RefreshToken, "", "initialize", map[string]any{}); r.Status != http.StatusUnauthorized {
		t.Fatalf("a refresh token is not an access token: %d", r.Status)
	}
}

// TestClerkSideFailures covers the upstream's failure modes on the hot path.
func TestClerkSideFailures(t *testing.T) {
	t.Parallel()
	e := e2etest.Start(t, e2etest.Options{})
	c := e.Register()
	e.Login(c, testflow.Choices{})

	// Clerk down with nothing cached: 503, never 200 or 500.
	e.Clerk.SetFault(mockclerk.Fault{Endpoint: "/oauth/token_info", Status: http.StatusServiceUnavailable})
	if r := e.MCP(c.AccessToken, "", "initialize", map[string]any{}); r.Status != http.StatusServiceUnavailable {
		t.Fatalf("Clerk down: %d %s", r.Status, r.Body)
	}
	e.Clerk.ClearFaults()

	// userinfo failing: the tool still answers (without enrichment).
	e.Clerk.SetFault(mockclerk.Fault{Endpoint: "/oauth/userinfo", Status: http.StatusInternalServerError})
	session := e.Initialize(c.AccessToken)
	if r, info := e.CallTool(c.AccessToken, session, "get-user-info"); r.Status != http.StatusOK || info["userId"] != e.Clerk.Users()[0].ID {
		t.Fatalf("userinfo down: %d %s", r.Status, r.Body)
	}
	e.Clerk.ClearFaults()

	// The session revoked at Clerk: introspection says inactive and the
	// refresh fails, so the proxy's token is refused.
	c2 := e.Register()
	e.Login(c2, testflow.Choices{})
	e.Clerk.RevokeUser(e.Clerk.Users()[0].ID)
	if r := e.MCP(c2.AccessToken, "", "initialize", map[string]any{}); r.Status != http.StatusUnauthorized {
		t.Fatalf("revoked at Clerk: %d %s", r.Status, r.Body)
	}
}

// TestClerkSlow: Clerk slower than CLERK_TIMEOUT counts as unavailable. /mcp
// answers 503 (never a hang, a 200 or a 500) and works again once Clerk
// does; a sign-in whose code exchange times out goes back to the client as
// temporarily_unavailable with state and iss. Clerk slow within the timeout
// only makes the request slower.
func TestClerkSlow(t *testing.T) {
	t.Parallel()
	e := e2etest.Start(t, e2etest.Options{Env: map[string]string{"CLERK_TIMEOUT": "1s"}})
	status := func(c *e2etest.Client) int {
		return e.MCP(c.AccessToken, "", "initialize", map[string]any{}).Status
	}
	slow := e.Register()
	e.Login(slow, testflow.Choices{})
	e.Clerk.SetFault(mockclerk.Fault{Endpoint: "/oauth/token_info", DelayMS: 300, Count: 1})
	if s := status(slow); s != http.StatusOK {
		t.Fatalf("Clerk slow within the timeout: %d", s)
	}

	stuck := e.Register() // a fresh Clerk token: nothing cached for it
	e.Login(stuck, testflow.Choices{})
	e.Clerk.SetFault(mockclerk.Fault{Endpoint: "/oauth/token_info", Timeout: true})
	if s := status(stuck); s != http.StatusServiceUnavailable {
		t.Fatalf("Clerk past the timeout: %d, want 503", s)
	}
	e.Clerk.ClearFaults()
	if s := status(stuck); s != http.StatusOK {
		t.Fatalf("Clerk back: %d", s)
	}

	e.Clerk.SetFault(mockclerk.Fault{Endpoint: "/oauth/token", Timeout: true})
	c := e.Register()
	final, err := testflow.NewBrowser().Authorize(context.Background(), e.AuthorizeURL(c, e2etest.NewPKCE(), "state-slow-1234", nil),
		c.RedirectURI, testflow.Choices{})
	if err != nil {
		t.Fatalf("sign-in with Clerk's token endpoint stuck: %v", err)
	}
	if q := final.Query(); q.Get("error") != "temporarily_unavailable" || q.Get("state") != "state-slow-1234" || q.Get("iss") != e.BaseURL {
		t.Fatalf("sign-in with Clerk's token endpoint stuck went back as %s", final)
	}
}

// TestIntrospectionSingleflight: 1,000 concurrent first uses of a fresh
// token (issue #17's goal 3) make exactly one introspection call; later
// ones within the TTL make none.
func TestIntrospectionSingleflight(t *testing.T) {
	t.Parallel()
	e := e2etest.Start(t, e2etest.Options{})
	c := e.Register()
	e.Login(c, testflow.Choices{})
	e.Clerk.Reset()
	// Slow introspection so the first wave of requests overlaps the one
	// call in flight; 200 connections at most, so the rest queue behind
	// them (1,000 sockets at once would test the machine's limits).
	e.Clerk.SetFault(mockclerk.Fault{Endpoint: "/oauth/token_info", DelayMS: 300})
	e.HTTP = &http.Client{Transport: &http.Transport{MaxConnsPerHost: 200, MaxIdleConnsPerHost: 200},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	const uses = 1000
	var wg sync.WaitGroup
	statuses := make(chan int, uses)
	for i := 0; i < uses; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- e.MCP(c.AccessToken, "", "ping", map[string]any{}).Status
		}()
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s == http.StatusUnauthorized || s >= 500 {
			t.Fatalf("concurrent request got %d", s)
		}
	}
	if n := e.Clerk.Stats()["/oauth/token_info"]; n != 1 {
		t.Fatalf("introspection calls for %d concurrent requests = %d, want 1", uses, n)
	}
	e.Clerk.ClearFaults()
	for i := 0; i < 20; i++ {
		e.MCP(c.AccessToken, "", "ping", map[string]any{})
	}
	if n := e.Clerk.Stats()["/oauth/token_info"]; n != 1 {
		t.Fatalf("introspection calls after cached requests = %d, want 1", n)
	}
}

// TestUpstreamRefresh: when Clerk's token expires the proxy refreshes it once
// and the request goes on.
func TestUpstreamRefresh(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := e2etest.Start(t, e2etest.Options{Now: clock, Clerk: func(c *mockclerk.Config) { c.AccessTokenTTL = time.Minute }})
	c := e.Register()
	e.Login(c, testflow.Choices{})
	session := e.Initialize(c.AccessToken)
	before := e.Clerk.Stats()["/oauth/token"]
	mu.Lock()
	now = now.Add(2 * time.Minute) // Clerk's token is now expired for the proxy
	mu.Unlock()
	if r, info := e.CallTool(c.AccessToken, session, "get-user-info"); r.Status != http.StatusOK || info["userId"] == nil {
		t.Fatalf("after Clerk expiry: %d %s", r.Status, r.Body)
	}
	if got := e.Clerk.Stats()["/oauth/token"]; got != before+1 {
		t.Fatalf("Clerk token refreshes = %d, want 1", got-before)
	}
	if r, _ := e.CallTool(c.AccessToken, session, "get-user-info"); r.Status != http.StatusOK {
		t.Fatalf("second call: %d", r.Status)
	}
	if got := e.Clerk.Stats()["/oauth/token"]; got != before+1 {
		t.Fatalf("refreshed again: %d", got-before)
	}
}

func TestMetadataDocuments(t *testing.T) {
	t.Parallel()
	e := e2etest.Start(t, e2etest.Options{})
	for path, check := range map[string]func(map[string]any) bool{
		"/.well-known/oauth-authorization-server": func(m map[string]any) bool {
			return m["issuer"] == e.BaseURL && m["authorization_response_iss_parameter_supported"] == true &&
				strings.Contains(strings.Join(toStrings(m["code_challenge_methods_supported"]), " "), "S256")
		},
		"/.well-known/openid-configuration": func(m map[string]any) bool {
			return m["issuer"] == e.BaseURL && m["jwks_uri"] != nil && m["subject_types_supported"] != nil
		},
		"/.well-known/oauth-protected-resource/mcp": func(m map[string]any) bool {
			return m["resource"] == e.BaseURL+"/mcp" && toStrings(m["authorization_servers"])[0] == e.BaseURL
		},
		"/.well-known/oauth-protected-resource": func(m map[string]any) bool { return m["resource"] == e.BaseURL+"/mcp" },
		"/.well-known/jwks.json":                func(m map[string]any) bool { return len(m["keys"].([]any)) == 1 },
	} {
		resp, err := http.Get(e.BaseURL + path)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "*" || !check(m) {
			t.Errorf("%s: %d %v", path, resp.StatusCode, m)
		}
	}
	for _, path := range []string{"/.well-known/unknown", "/.well-known/oauth-authorization-server/tenant", "/.well-known/openid-configuration/x"} {
		resp, err := http.Get(e.BaseURL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", path, resp.StatusCode)
		}
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}
