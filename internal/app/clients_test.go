package app_test

// Registration hygiene: per-IP rate limits shared by replicas through Redis,
// X-Forwarded-For believed only from trusted proxies, idle expiry of DCR
// clients, RFC 7592 read/delete, the redirect-URI allowlist, and what a
// client that lost its registration is told.

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testredis"
)

// rateLimitedEndpoint sends one request to an endpoint; any answer counts
// against the caller's budget.
type rateLimitedEndpoint struct {
	name string
	send func(t *testing.T, base string, header map[string]string) secResponse
}

var rateLimitedEndpoints = []rateLimitedEndpoint{
	{"register", func(t *testing.T, base string, h map[string]string) secResponse {
		return registerRaw(t, base, []string{"http://127.0.0.1:7777/callback"}, h)
	}},
	{"token", func(t *testing.T, base string, h map[string]string) secResponse {
		return postForm(t, base+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {"mcp_unknown"}}, h)
	}},
	{"authorize", func(t *testing.T, base string, h map[string]string) secResponse {
		return get(t, base+"/authorize?client_id=mcp_unknown", h)
	}},
}

// want429 asserts a rate-limit answer: 429, a Retry-After in whole seconds
// within the one-minute window, and an RFC 6749 JSON error.
func want429(t *testing.T, what string, r secResponse) {
	t.Helper()
	wantOAuthError(t, what, r, http.StatusTooManyRequests, "temporarily_unavailable")
	if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 || s > 60 {
		t.Fatalf("%s: Retry-After %q, want 1-60 seconds", what, r.Header.Get("Retry-After"))
	}
}

// TestRateLimitsSharedAcrossReplicas: two replicas on one Redis with the
// same prefix share each endpoint's per-IP budget; every endpoint has its own
// budget; the request over it gets 429 on both replicas.
func TestRateLimitsSharedAcrossReplicas(t *testing.T) {
	t.Parallel()
	rs := testredis.Start(t)
	prefix := fmt.Sprintf("rl%d:", time.Now().UnixNano())
	env := map[string]string{"RATE_LIMIT_REGISTER": "3", "RATE_LIMIT_TOKEN": "3", "RATE_LIMIT_AUTHORIZE": "3"}
	a := e2etest.Start(t, e2etest.Options{Redis: rs, Prefix: prefix, Env: env})
	b := e2etest.Start(t, e2etest.Options{Redis: rs, Prefix: prefix, Env: env})
	for _, ep := range rateLimitedEndpoints {
		// Three requests spread over the replicas use up the shared budget.
		for i, base := range []string{a.BaseURL, b.BaseURL, a.BaseURL} {
			if r := ep.send(t, base, nil); r.Status == http.StatusTooManyRequests {
				t.Fatalf("%s request %d refused within the budget: %s", ep.name, i+1, r.Body)
			}
		}
		want429(t, ep.name+" on replica b", ep.send(t, b.BaseURL, nil))
		want429(t, ep.name+" on replica a", ep.send(t, a.BaseURL, nil))
	}
}

// TestRateLimitClientIP: X-Forwarded-For decides the client IP only when
// the direct peer is in TRUSTED_PROXIES; then each forwarded client has its
// own budget and entries a client prepends itself buy nothing. From an
// untrusted peer the header is ignored, so rotating it does not escape the
// limit.
func TestRateLimitClientIP(t *testing.T) {
	t.Parallel()
	xff := func(v string) map[string]string { return map[string]string{"X-Forwarded-For": v} }
	redirects := []string{"http://127.0.0.1:7777/callback"}

	t.Run("trusted peer", func(t *testing.T) {
		e := e2etest.Start(t, e2etest.Options{Env: map[string]string{"RATE_LIMIT_REGISTER": "2", "TRUSTED_PROXIES": "127.0.0.1/32"}})
		for i := range 2 {
			if r := registerRaw(t, e.BaseURL, redirects, xff("203.0.113.7")); r.Status != http.StatusCreated {
				t.Fatalf("client .7 request %d: %d %s", i+1, r.Status, r.Body)
			}
		}
		want429(t, "client .7 over its budget", registerRaw(t, e.BaseURL, redirects, xff("203.0.113.7")))
		want429(t, "client .7 prepending a forged hop", registerRaw(t, e.BaseURL, redirects, xff("198.51.100.99, 203.0.113.7")))
		if r := registerRaw(t, e.BaseURL, redirects, xff("203.0.113.8")); r.Status != http.StatusCreated {
			t.Fatalf("client .8 has its own budget: %d %s", r.Status, r.Body)
		}
	})
	t.Run("untrusted peer", func(t *testing.T) {
		e := e2etest.Start(t, e2etest.Options{Env: map[string]string{"RATE_LIMIT_REGISTER": "2"}})
		for i, ip := range []string{"203.0.113.7", "203.0.113.8"} {
			if r := registerRaw(t, e.BaseURL, redirects, xff(ip)); r.Status != http.StatusCreated {
				t.Fatalf("request %d: %d %s", i+1, r.Status, r.Body)
			}
		}
		want429(t, "a new X-Forwarded-For from an untrusted peer", registerRaw(t, e.BaseURL, redirects, xff("203.0.113.9")))
	})
}

// TestClientIdleExpiry: a DCR client lives CLIENT_IDLE_TTL in Redis; using
// it at /authorize or /token starts the period again; once it expires the
// client is unknown (401 invalid_client at /token, a local page at /authorize).
func TestClientIdleExpiry(t *testing.T) {
	t.Parallel()
	e := e2etest.Start(t, e2etest.Options{Env: map[string]string{"CLIENT_IDLE_TTL": "1h"}})
	rdb := redisFor(t, e)
	ctx := context.Background()
	c := e.Register()
	key := e.Prefix + "client:{" + c.ID + "}"
	ttl := func() time.Duration {
		t.Helper()
		d, err := rdb.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := ttl(); d <= 59*time.Minute || d > time.Hour {
		t.Fatalf("a new registration expires in %v, want CLIENT_IDLE_TTL (1h)", d)
	}
	// Pretend most of the idle period has passed, then use the client.
	age := func() {
		t.Helper()
		if err := rdb.PExpire(ctx, key, 30*time.Second).Err(); err != nil {
			t.Fatal(err)
		}
	}
	age()
	if r := get(t, e.AuthorizeURL(c, e2etest.NewPKCE(), "state-idle-1234", nil), nil); r.Status != http.StatusFound {
		t.Fatalf("authorize: %d %s", r.Status, r.Body)
	}
	if d := ttl(); d <= 59*time.Minute {
		t.Fatalf("/authorize did not extend the registration (expires in %v)", d)
	}
	e.Login(c, testflow.Choices{})
	age()
	p := refreshOK(t, e, c, c.RefreshToken)
	if d := ttl(); d <= 59*time.Minute {
		t.Fatalf("/token did not extend the registration (expires in %v)", d)
	}

	// Idle past the period: the registration is gone.
	if err := rdb.PExpire(ctx, key, time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if n, _ := rdb.Exists(ctx, key).Result(); n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Redis did not expire the client")
		}
	}
	tok := postForm(t, e.BaseURL+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {p.refresh}, "client_id": {c.ID}}, nil)
	wantOAuthError(t, "token for an expired client", tok, http.StatusUnauthorized, "invalid_client")
	r := get(t, e.AuthorizeURL(c, e2etest.NewPKCE(), "state-idle-1234", nil), nil)
	if r.Status != http.StatusBadRequest || r.Header.Get("Location") != "" || !strings.Contains(r.Body, "not registered") {
		t.Fatalf("authorize for an expired client: %d %q", r.Status, r.Header.Get("Location"))
	}
}

// TestRegistrationManagement: RFC 7592. The registration answer names the
// client's configuration URL and an access token for it; the token reads and
// deletes that client only; after a delete the client is gone everywhere.
func TestRegistrationManagement(t *testing.T) {
	t.Parallel()
	e := e2etest.Start(t, e2etest.Options{})
	reg := func() (id, uri, token string) {
		t.Helper()
		r := registerRaw(t, e.BaseURL, []string{"http://127.0.0.1:7777/callback"}, nil)
		m := r.JSON()
		id, _ = m["client_id"].(string)
		uri, _ = m["registration_client_uri"].(string)
		token, _ = m["registration_access_token"].(string)
		if r.Status != http.StatusCreated || id == "" || token == "" || uri != e.BaseURL+"/register/"+url.PathEscape(id) {
			t.Fatalf("registration: %d %s", r.Status, r.Body)
		}
		return id, uri, token
	}
	id, uri, token := reg()
	_, otherURI, otherToken := reg()
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }
	del := func(u, tok string) secResponse {
		req, _ := http.NewRequest(http.MethodDelete, u, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		return secDo(t, req)
	}

	if r := get(t, uri, bearer(token)); r.Status != http.StatusOK || r.JSON()["client_id"] != id {
		t.Fatalf("read with the registration token: %d %s", r.Status, r.Body)
	}
	for name, tok := range map[string]string{"no token": "", "wrong token": token + "x", "another client's token": otherToken} {
		var h map[string]string
		if tok != "" {
			h = bearer(tok)
		}
		r := get(t, uri, h)
		wantOAuthError(t, "read with "+name, r, http.StatusUnauthorized, "invalid_token")
		if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("read with %s: no Bearer challenge", name)
		}
		wantOAuthError(t, "delete with "+name, del(uri, tok), http.StatusUnauthorized, "invalid_token")
	}
	if r := get(t, uri, bearer(token)); r.Status != http.StatusOK {
		t.Fatalf("a refused delete removed the client: %d", r.Status)
	}

	if r := del(uri, token); r.Status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	wantOAuthError(t, "read after delete", get(t, uri, bearer(token)), http.StatusUnauthorized, "invalid_token")
	tok := postForm(t, e.BaseURL+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {id}}, nil)
	wantOAuthError(t, "token after delete", tok, http.StatusUnauthorized, "invalid_client")
	r := get(t, e.AuthorizeURL(&e2etest.Client{ID: id, RedirectURI: "http://127.0.0.1:7777/callback"}, e2etest.NewPKCE(), "state-del-1234", nil), nil)
	if r.Status != http.StatusBadRequest || r.Header.Get("Location") != "" {
		t.Fatalf("authorize after delete: %d %q", r.Status, r.Header.Get("Location"))
	}
	if r := get(t, otherURI, bearer(otherToken)); r.Status != http.StatusOK {
		t.Fatalf("deleting one client affected another: %d", r.Status)
	}
}

// TestTokensDieWithTheirClient: deleting a registration (RFC 7592) ends
// its grants: once the in-process grant cache (about a second) has lapsed,
// the access token is refused at /mcp, and the refresh token gets
// invalid_client. Every grant of the client, found through the client
// index, is ended and its Clerk tokens are revoked at Clerk; another
// client's grant lives on.
func TestTokensDieWithTheirClient(t *testing.T) {
	t.Parallel()
	clock, e, c := signedInOnClock(t)
	second := *c
	e.Login(&second, testflow.Choices{}) // a second grant of the same client
	other := e.Register()
	e.Login(other, testflow.Choices{})
	before := clerkRevocations(e)

	req, _ := http.NewRequest(http.MethodDelete, c.RegistrationURI, nil)
	req.Header.Set("Authorization", "Bearer "+c.RegistrationToken)
	if r := secDo(t, req); r.Status != http.StatusNoContent {
		t.Fatalf("delete the registration: %d %s", r.Status, r.Body)
	}
	// Two grants, each with a Clerk access and refresh token.
	if got := clerkRevocations(e) - before; got != 4 {
		t.Errorf("Clerk revocation calls after the delete: %d, want 4", got)
	}
	clock.Advance(2 * time.Second)
	for _, tok := range []string{c.AccessToken, second.AccessToken} {
		if s := mcpInit(e, tok); s != http.StatusUnauthorized {
			t.Fatalf("an access token of a deleted client at /mcp: %d, want 401", s)
		}
	}
	if s := mcpInit(e, other.AccessToken); s != http.StatusOK {
		t.Fatalf("another client's access token after the delete: %d, want 200", s)
	}
	tok := postForm(t, e.BaseURL+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {c.RefreshToken}, "client_id": {c.ID}}, nil)
	wantOAuthError(t, "refresh of a deleted client", tok, http.StatusUnauthorized, "invalid_client")
}

// TestRedirectAllowlist: ALLOWED_REDIRECT_URIS is enforced at /register
// and again at /authorize, so a client registered before the operator
// tightened the list (here: by a replica without it, on the same Redis) can
// no longer send codes to a URI outside it.
func TestRedirectAllowlist(t *testing.T) {
	t.Parallel()
	rs := testredis.Start(t)
	prefix := fmt.Sprintf("al%d:", time.Now().UnixNano())
	open := e2etest.Start(t, e2etest.Options{Redis: rs, Prefix: prefix})
	strict := e2etest.Start(t, e2etest.Options{Redis: rs, Prefix: prefix, Env: map[string]string{
		"ALLOWED_REDIRECT_URIS": "http://127.0.0.1/callback,https://app.example.com/oauth/*",
	}})

	for _, uris := range [][]string{{"https://evil.example/cb"}, {"http://127.0.0.1:7777/callback", "https://evil.example/cb"}, {"https://app.example.com/other"}} {
		wantOAuthError(t, fmt.Sprintf("register %v", uris), registerRaw(t, strict.BaseURL, uris, nil), http.StatusBadRequest, "invalid_redirect_uri")
	}
	for _, uris := range [][]string{{"http://127.0.0.1:7777/callback"}, {"https://app.example.com/oauth/cb"}} {
		if r := registerRaw(t, strict.BaseURL, uris, nil); r.Status != http.StatusCreated {
			t.Fatalf("register %v: %d %s", uris, r.Status, r.Body)
		}
	}

	r := registerRaw(t, open.BaseURL, []string{"https://evil.example/cb", "http://127.0.0.1:7777/callback"}, nil)
	if r.Status != http.StatusCreated {
		t.Fatalf("register without an allowlist: %d %s", r.Status, r.Body)
	}
	old := &e2etest.Client{ID: r.JSON()["client_id"].(string), RedirectURI: "https://evil.example/cb"}
	p := e2etest.NewPKCE()
	if r := get(t, open.AuthorizeURL(old, p, "state-allow-1234", nil), nil); r.Status != http.StatusFound {
		t.Fatalf("control: without the allowlist the URI is accepted: %d", r.Status)
	}
	if r := get(t, strict.AuthorizeURL(old, p, "state-allow-1234", nil), nil); r.Status != http.StatusBadRequest || r.Header.Get("Location") != "" {
		t.Fatalf("authorize to a URI outside the allowlist: %d %q, want a local 400 page", r.Status, r.Header.Get("Location"))
	}
	old.RedirectURI = "http://127.0.0.1:7777/callback"
	if r := get(t, strict.AuthorizeURL(old, p, "state-allow-1234", nil), nil); r.Status != http.StatusFound ||
		!strings.HasPrefix(r.Header.Get("Location"), "/consent") {
		t.Fatalf("authorize to an allowed URI: %d %q", r.Status, r.Header.Get("Location"))
	}
}

// TestLostRegistration: Redis loses everything (FLUSHDB) while a client
// keeps its old client_id. /token answers 401 invalid_client (the signal to
// register again), /authorize a local page (no redirect) saying the app is not
// registered and should be added again; registering again works.
func TestLostRegistration(t *testing.T) {
	t.Parallel()
	e := e2etest.Start(t, e2etest.Options{Redis: testredis.Start(t)})
	c := e.Register()
	e.Login(c, testflow.Choices{})
	if err := redisFor(t, e).FlushDB(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}

	tok := postForm(t, e.BaseURL+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {c.RefreshToken}, "client_id": {c.ID}}, nil)
	wantOAuthError(t, "refresh with a lost registration", tok, http.StatusUnauthorized, "invalid_client")
	tok = postForm(t, e.BaseURL+"/token", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "client_id": {c.ID},
		"code_verifier": {e2etest.NewPKCE().Verifier}, "redirect_uri": {c.RedirectURI}}, nil)
	wantOAuthError(t, "code exchange with a lost registration", tok, http.StatusUnauthorized, "invalid_client")

	authz := e.AuthorizeURL(c, e2etest.NewPKCE(), "state-lost-1234", nil)
	page := get(t, authz, map[string]string{"Accept": "text/html,application/xhtml+xml"})
	if page.Status != http.StatusBadRequest || page.Header.Get("Location") != "" || !strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("authorize with a lost registration: %d %q %q", page.Status, page.Header.Get("Location"), page.Header.Get("Content-Type"))
	}
	if !strings.Contains(page.Body, "not registered") || !strings.Contains(page.Body, "register afresh") {
		t.Fatalf("the page must say the app is unknown and should register again:\n%s", page.Body)
	}
	js := get(t, authz, map[string]string{"Accept": "application/json"})
	wantOAuthError(t, "authorize (JSON) with a lost registration", js, http.StatusBadRequest, "invalid_client")
	if js.JSON()["registration_endpoint"] != e.BaseURL+"/register" {
		t.Errorf("the JSON answer should name the registration endpoint: %s", js.Body)
	}

	again := e.Register()
	e.Login(again, testflow.Choices{})
	if s := mcpInit(e, again.AccessToken); s != http.StatusOK {
		t.Fatalf("after registering again: %d", s)
	}
}

// TestNativeClientPrivateUseScheme: Cursor registers as a native app with
// cursor://anysphere.cursor-mcp/oauth/callback (a private-use scheme, RFC
// 8252 §7.1). The whole flow works: the code is sent to that URI and the
// token it buys calls a tool. A web client cannot register the same URI.
func TestNativeClientPrivateUseScheme(t *testing.T) {
	t.Parallel()
	e := e2etest.Start(t, e2etest.Options{Redis: testredis.Start(t)})
	const cursor = "cursor://anysphere.cursor-mcp/oauth/callback"
	c := e.RegisterClient(e2etest.ClientOptions{Name: "Cursor", RedirectURIs: []string{cursor}, ApplicationType: "native"})
	e.Login(c, testflow.Choices{})
	if c.AccessToken == "" {
		t.Fatal("no access token for the native client")
	}
	session := e.Initialize(c.AccessToken)
	if res, _ := e.CallTool(c.AccessToken, session, "get-user-info"); res.Status != http.StatusOK {
		t.Fatalf("tool call with the native client's token: %d", res.Status)
	}
	if _, err := e.TryRegisterClient(e2etest.ClientOptions{RedirectURIs: []string{cursor}, ApplicationType: "web"}); err == nil {
		t.Fatal("a web client registered a private-use scheme redirect")
	}
}
