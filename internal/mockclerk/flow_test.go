package mockclerk_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mockclerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testflow"
)

const (
	clientID     = "mockTestClient01"
	clientSecret = "secret with spaces&symbols=+/"
	redirectURI  = "http://127.0.0.1:5555/cb"
	secretKey    = "sk_test_mock_backend_key"
)

// clock is a movable time source for expiry tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func start(t *testing.T, mod func(*mockclerk.Config)) *mockclerk.Running {
	t.Helper()
	cfg := mockclerk.Config{ClientID: clientID, ClientSecret: clientSecret, RedirectURIs: []string{redirectURI}, SecretKey: secretKey}
	if mod != nil {
		mod(&cfg)
	}
	r, err := mockclerk.Listen("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func oauthConfig(r *mockclerk.Running, scopes ...string) *oauth2.Config {
	return &oauth2.Config{ClientID: clientID, ClientSecret: clientSecret, RedirectURL: redirectURI, Scopes: scopes,
		Endpoint: oauth2.Endpoint{AuthURL: r.URL + "/oauth/authorize", TokenURL: r.URL + "/oauth/token", AuthStyle: oauth2.AuthStyleInHeader}}
}

// signIn walks the browser from authURL through the sign-in form (choosing
// userID when set) and returns the redirect the fake sent it to.
func signIn(t *testing.T, authURL, userID string) url.Values {
	t.Helper()
	b := testflow.NewBrowser()
	final, err := b.Authorize(context.Background(), authURL, redirectURI, testflow.Choices{UserID: userID})
	if err != nil {
		t.Fatalf("sign-in: %v", err)
	}
	return final.Query()
}

// login runs the whole code flow with x/oauth2 and PKCE.
func login(t *testing.T, r *mockclerk.Running, scopes ...string) *oauth2.Token {
	t.Helper()
	conf := oauthConfig(r, scopes...)
	verifier := oauth2.GenerateVerifier()
	q := signIn(t, conf.AuthCodeURL("state-12345678", oauth2.S256ChallengeOption(verifier)), "")
	tok, err := conf.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return tok
}

func postForm(t *testing.T, target string, form url.Values, basic bool) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(clientSecret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, resp.Header
}

func getJSON(t *testing.T, target string, header http.Header) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, target, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func keys(m map[string]any) []string {
	var k []string
	for x := range m {
		k = append(k, x)
	}
	sort.Strings(k)
	return k
}

func TestDiscoverySplit(t *testing.T) {
	r := start(t, nil)
	_, as := getJSON(t, r.URL+"/.well-known/oauth-authorization-server", nil)
	_, oidcDoc := getJSON(t, r.URL+"/.well-known/openid-configuration", nil)
	for _, k := range []string{"introspection_endpoint", "userinfo_endpoint", "registration_endpoint"} {
		if _, ok := as[k]; ok {
			t.Errorf("RFC 8414 document has %s", k)
		}
	}
	if oidcDoc["introspection_endpoint"] != r.URL+"/oauth/token_info" || oidcDoc["userinfo_endpoint"] != r.URL+"/oauth/userinfo" {
		t.Errorf("OIDC document endpoints: %v", oidcDoc)
	}
	if _, ok := oidcDoc["registration_endpoint"]; ok {
		t.Error("OIDC document has registration_endpoint")
	}
	if as["issuer"] != r.URL || as["revocation_endpoint"] != r.URL+"/oauth/token/revoke" {
		t.Errorf("AS metadata: %v", as)
	}
	_, jwks := getJSON(t, r.URL+"/.well-known/jwks.json", nil)
	key := jwks["keys"].([]any)[0].(map[string]any)
	if !strings.HasPrefix(key["kid"].(string), "ins_") || key["alg"] != "RS256" || key["kty"] != "RSA" || key["use"] != "sig" {
		t.Errorf("jwks: %v", key)
	}
	dcr := start(t, func(c *mockclerk.Config) { c.DCR = true })
	if _, as := getJSON(t, dcr.URL+"/.well-known/oauth-authorization-server", nil); as["registration_endpoint"] != dcr.URL+"/oauth/register" {
		t.Errorf("DCR on: registration_endpoint missing: %v", as)
	}
}

// TestCodeFlowWithOAuth2AndOIDC: x/oauth2 (PKCE, client_secret_basic with
// characters that need §2.3.1 encoding) and go-oidc (discovery, ID token).
func TestCodeFlowWithOAuth2AndOIDC(t *testing.T) {
	r := start(t, nil)
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, r.URL)
	if err != nil {
		t.Fatal(err)
	}
	conf := oauthConfig(r, "openid", "profile", "email", "offline_access")
	conf.Endpoint = provider.Endpoint()
	conf.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	verifier := oauth2.GenerateVerifier()
	q := signIn(t, conf.AuthCodeURL("state-12345678", oauth2.S256ChallengeOption(verifier), oidc.Nonce("nonce-abc")), "")
	if q.Get("state") != "state-12345678" || q.Get("code") == "" {
		t.Fatalf("redirect: %v", q)
	}
	tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.AccessToken, "oat_") || tok.RefreshToken == "" || tok.ExpiresIn != 86400 {
		t.Errorf("token: %+v", tok)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: clientID}).Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Email, Nonce, Name string
	}
	_ = idt.Claims(&claims)
	user := r.Users()[0]
	if idt.Subject != user.ID || claims.Email != user.Email || claims.Nonce != "nonce-abc" || claims.Name == "" {
		t.Errorf("id token: sub=%s %+v", idt.Subject, claims)
	}
	// The raw answer: lowercase bearer, as Clerk sends it.
	q = signIn(t, conf.AuthCodeURL("state-12345678"), "")
	status, out, _ := postForm(t, r.URL+"/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
		"redirect_uri": {redirectURI}, "client_id": {clientID}, "client_secret": {clientSecret}}, false)
	if status != http.StatusOK || out["token_type"] != "bearer" {
		t.Errorf("client_secret_post exchange: %d %v", status, out)
	}
}

func TestAuthorizeValidation(t *testing.T) {
	r := start(t, nil)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	base := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirectURI}, "state": {"state-12345678"}, "scope": {"openid email"}}
	for _, tc := range []struct {
		name      string
		change    url.Values
		status    int
		errorCode string // "" = no redirect expected
	}{
		{"unknown client", url.Values{"client_id": {"nope"}}, 401, ""},
		{"unregistered redirect", url.Values{"redirect_uri": {"http://127.0.0.1:5555/other"}}, 400, ""},
		{"plain pkce", url.Values{"code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"plain"}}, 302, "invalid_request"},
		{"short state without pkce", url.Values{"state": {"short"}}, 302, "invalid_state"},
		{"unknown scope", url.Values{"scope": {"openid admin"}}, 302, "invalid_scope"},
		{"token flow", url.Values{"response_type": {"token"}}, 302, "unsupported_response_type"},
		{"duplicated parameter", url.Values{"state": {"state-12345678", "state-87654321"}}, 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := url.Values{}
			for k, v := range base {
				q[k] = v
			}
			for k, v := range tc.change {
				q[k] = v
			}
			resp, err := noRedirect.Get(r.URL + "/oauth/authorize?" + q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			loc, _ := url.Parse(resp.Header.Get("Location"))
			switch {
			case resp.StatusCode != tc.status:
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			case tc.errorCode == "" && resp.Header.Get("Location") != "":
				t.Errorf("redirected to %s", loc)
			case tc.errorCode != "" && (!strings.HasPrefix(loc.String(), redirectURI) || loc.Query().Get("error") != tc.errorCode):
				t.Errorf("redirect %s, want error %s", loc, tc.errorCode)
			}
		})
	}
}

func TestCodeIsSingleUse(t *testing.T) {
	r := start(t, nil)
	conf := oauthConfig(r, "email")
	verifier := oauth2.GenerateVerifier()
	code := signIn(t, conf.AuthCodeURL("state-12345678", oauth2.S256ChallengeOption(verifier)), "").Get("code")
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier)); err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d of 50 concurrent redemptions won, want 1", wins)
	}
	// A wrong verifier spends the code; the right one is then too late.
	code = signIn(t, conf.AuthCodeURL("state-12345678", oauth2.S256ChallengeOption(verifier)), "").Get("code")
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}, "code_verifier": {oauth2.GenerateVerifier()}}
	if status, out, _ := postForm(t, r.URL+"/oauth/token", form, true); status != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("wrong verifier: %d %v", status, out)
	}
	form.Set("code_verifier", verifier)
	if status, out, _ := postForm(t, r.URL+"/oauth/token", form, true); status != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("spent code: %d %v", status, out)
	}
	// Wrong secret: 401 invalid_client.
	req, _ := http.NewRequest(http.MethodPost, r.URL+"/oauth/token", strings.NewReader("grant_type=authorization_code&code=x&redirect_uri=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, "wrong")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong secret: %d", resp.StatusCode)
	}
}

func TestRefreshRotationAndScopes(t *testing.T) {
	r := start(t, nil)
	tok := login(t, r, "openid", "email", "profile", "offline_access")
	refresh := func(rt, scope string) (int, map[string]any) {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
		if scope != "" {
			form.Set("scope", scope)
		}
		status, out, _ := postForm(t, r.URL+"/oauth/token", form, true)
		return status, out
	}
	if status, out := refresh(tok.RefreshToken, "openid profile email admin"); status != 400 || out["error"] != "invalid_scope" {
		t.Fatalf("widening: %d %v", status, out)
	}
	status, out := refresh(tok.RefreshToken, "email offline_access")
	if status != 200 || out["scope"] != "email offline_access" || out["refresh_token"] == tok.RefreshToken {
		t.Fatalf("narrowing refresh: %d %v", status, out)
	}
	if status, out := refresh(tok.RefreshToken, ""); status != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("rotated-out refresh token: %d %v", status, out)
	}
	if status, _ := refresh(out["refresh_token"].(string), ""); status != 200 {
		t.Fatalf("new refresh token: %d", status)
	}
	if tok := login(t, r, "email"); tok.RefreshToken != "" {
		t.Error("a refresh token without offline_access")
	}
}

func TestIntrospection(t *testing.T) {
	clk := &clock{now: time.Now()}
	r := start(t, func(c *mockclerk.Config) { c.Now = clk.Now; c.AccessTokenTTL = time.Minute })
	info := func(token string, basic bool) (int, map[string]any) {
		status, out, _ := postForm(t, r.URL+"/oauth/token_info", url.Values{"token": {token}}, basic)
		return status, out
	}
	orgTok := login(t, r, "email", "offline_access", "user:org:read")
	if status, _ := info(orgTok.AccessToken, false); status != http.StatusUnauthorized {
		t.Fatalf("without Basic: %d", status)
	}
	status, out := info(orgTok.AccessToken, true)
	if status != 200 || strings.Join(keys(out), ",") != "active,client_id,iat,org_id,scope,sub" || out["org_id"] != r.Users()[0].Org.ID {
		t.Fatalf("active answer: %d %v", status, out)
	}
	plain := login(t, r, "email", "offline_access")
	if _, out := info(plain.AccessToken, true); strings.Join(keys(out), ",") != "active,client_id,iat,scope,sub" || out["client_id"] != clientID {
		t.Fatalf("minimal answer: %v", out)
	}
	if _, out := info(plain.RefreshToken, true); out["active"] != true {
		t.Errorf("refresh tokens introspect too: %v", out)
	}
	for name, tok := range map[string]string{"unknown": "oat_unknown", "empty-ish": "x"} {
		if _, out := info(tok, true); len(out) != 1 || out["active"] != false {
			t.Errorf("%s: %v", name, out)
		}
	}
	// Revoked through RFC 7009, through RevokeUser, and expired.
	if status, _, _ := postForm(t, r.URL+"/oauth/token/revoke", url.Values{"token": {plain.AccessToken}}, true); status != 200 {
		t.Fatalf("revoke: %d", status)
	}
	if _, out := info(plain.AccessToken, true); out["active"] != false {
		t.Errorf("revoked: %v", out)
	}
	r.RevokeUser(r.Users()[0].ID)
	if _, out := info(orgTok.RefreshToken, true); out["active"] != false {
		t.Errorf("after RevokeUser: %v", out)
	}
	fresh := login(t, r, "email")
	clk.Add(2 * time.Minute)
	if _, out := info(fresh.AccessToken, true); out["active"] != false {
		t.Errorf("expired: %v", out)
	}
}

func TestUserInfoByScope(t *testing.T) {
	r := start(t, nil)
	ui := func(token string) (int, map[string]any) {
		return getJSON(t, r.URL+"/oauth/userinfo", http.Header{"Authorization": {"Bearer " + token}})
	}
	user := r.Users()[0]
	_, emailOnly := ui(login(t, r, "email").AccessToken)
	if emailOnly["email"] != user.Email || emailOnly["name"] != nil || emailOnly["object"] != "oauth_user_info" || emailOnly["sub"] != user.ID {
		t.Errorf("email scope: %v", emailOnly)
	}
	_, profile := ui(login(t, r, "profile", "user:org:read").AccessToken)
	if profile["email"] != nil || profile["given_name"] != user.FirstName || profile["org_slug"] != user.Org.Slug {
		t.Errorf("profile scope: %v", profile)
	}
	status, out := ui("oat_bogus")
	errs, _ := out["errors"].([]any)
	if status != 401 || len(errs) != 1 || out["clerk_trace_id"] == nil || errs[0].(map[string]any)["code"] != "authentication_invalid" {
		t.Errorf("bad token: %d %v", status, out)
	}
}

func TestJWTAccessTokens(t *testing.T) {
	r := start(t, func(c *mockclerk.Config) { c.TokenFormat = "jwt" })
	tok := login(t, r, "email", "offline_access")
	parts := strings.Split(tok.AccessToken, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %s", tok.AccessToken)
	}
	var header, claims map[string]any
	h, _ := base64.RawURLEncoding.DecodeString(parts[0])
	c, _ := base64.RawURLEncoding.DecodeString(parts[1])
	_ = json.Unmarshal(h, &header)
	_ = json.Unmarshal(c, &claims)
	if header["typ"] != "at+jwt" || header["alg"] != "RS256" || !strings.HasPrefix(header["kid"].(string), "ins_") {
		t.Errorf("header: %v", header)
	}
	if strings.Join(keys(claims), ",") != "client_id,exp,iat,iss,jti,nbf,scope,sub" || !strings.HasPrefix(claims["jti"].(string), "oat_") ||
		claims["nbf"].(float64) != claims["iat"].(float64)-10 || claims["iss"] != r.URL {
		t.Errorf("claims: %v", claims)
	}
	if status, out, _ := postForm(t, r.URL+"/oauth/token/revoke", url.Values{"token": {tok.AccessToken}}, true); status != 400 || out["error"] != "unsupported_token_type" {
		t.Errorf("revoke JWT: %d %v", status, out)
	}
	// With a resource, aud appears.
	conf := oauthConfig(r, "email")
	v := oauth2.GenerateVerifier()
	q := signIn(t, conf.AuthCodeURL("state-12345678", oauth2.S256ChallengeOption(v), oauth2.SetAuthURLParam("resource", "https://mcp.example.com/mcp")), "")
	tok2, err := conf.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok2.AccessToken, ".")[1])
	if !strings.Contains(string(c2), `"aud":"https://mcp.example.com/mcp"`) {
		t.Errorf("no aud with resource: %s", c2)
	}
}

func TestBackendAPIAndDCR(t *testing.T) {
	r := start(t, nil)
	user := r.Users()[0]
	bearer := http.Header{"Authorization": {"Bearer " + secretKey}}
	if status, out := getJSON(t, r.URL+"/v1/users/"+user.ID, bearer); status != 200 || out["id"] != user.ID || out["object"] != "user" {
		t.Errorf("user: %d %v", status, out)
	}
	if status, out := getJSON(t, r.URL+"/v1/users/"+user.ID+"/organization_memberships", bearer); status != 200 ||
		out["data"].([]any)[0].(map[string]any)["role"] != user.Org.Role {
		t.Errorf("memberships: %d %v", status, out)
	}
	if status, out := getJSON(t, r.URL+"/v1/users/user_nobody", bearer); status != 404 || out["errors"] == nil {
		t.Errorf("unknown user: %d %v", status, out)
	}
	if status, out := getJSON(t, r.URL+"/v1/users/"+user.ID, http.Header{"Authorization": {"Bearer sk_test_wrong"}}); status != 401 || out["errors"] == nil {
		t.Errorf("bad key: %d %v", status, out)
	}
	tok := login(t, r, "email")
	req, _ := http.NewRequest(http.MethodPost, r.URL+"/oauth_applications/access_tokens/verify", strings.NewReader(`{"access_token":"`+tok.AccessToken+`"}`))
	req.Header = bearer.Clone()
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&v)
	resp.Body.Close()
	if resp.StatusCode != 200 || v["subject"] != user.ID || v["object"] != "clerk_idp_oauth_access_token" || v["revoked"] != false {
		t.Errorf("verify: %d %v", resp.StatusCode, v)
	}
	// DCR: 422 with Clerk's envelope when off, 201 when on.
	reg := func(r *mockclerk.Running) (int, map[string]any) {
		resp, err := http.Post(r.URL+"/oauth/register", "application/json", strings.NewReader(`{"redirect_uris":["http://127.0.0.1:9/cb"],"client_name":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out := map[string]any{}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if status, out := reg(r); status != 422 || out["errors"] == nil {
		t.Errorf("DCR off: %d %v", status, out)
	}
	if status, out := reg(start(t, func(c *mockclerk.Config) { c.DCR = true })); status != 201 || out["client_secret"] == nil ||
		out["scope"] != "email offline_access profile" || out["token_endpoint_auth_method"] != "client_secret_basic" {
		t.Errorf("DCR on: %d %v", status, out)
	}
}

func TestFaultsStatsAndReset(t *testing.T) {
	r := start(t, nil)
	tok := login(t, r, "email")
	admin := r.URL + "/__admin/"
	post := func(path, body string) int {
		resp, err := http.Post(admin+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if post("reset", "") != http.StatusNoContent {
		t.Fatal("reset")
	}
	if post("faults", `{"endpoint":"/oauth/token_info","status":503,"count":2}`) != 200 {
		t.Fatal("set fault")
	}
	var statuses []int
	for range 3 {
		s, _, _ := postForm(t, r.URL+"/oauth/token_info", url.Values{"token": {tok.AccessToken}}, true)
		statuses = append(statuses, s)
	}
	if !slices.Equal(statuses, []int{503, 503, 200}) {
		t.Errorf("count-limited fault: %v", statuses)
	}
	// Delay: it still answers (no timing assertion).
	r.SetFault(mockclerk.Fault{Endpoint: "/oauth/userinfo", DelayMS: 50})
	if s, _ := getJSON(t, r.URL+"/oauth/userinfo", http.Header{"Authorization": {"Bearer " + tok.AccessToken}}); s != 200 {
		t.Errorf("delayed userinfo: %d", s)
	}
	// Timeout: the client gives up.
	r.SetFault(mockclerk.Fault{Endpoint: "/oauth/token_info", Timeout: true})
	short := &http.Client{Timeout: 200 * time.Millisecond}
	if resp, err := short.Post(r.URL+"/oauth/token_info", "application/x-www-form-urlencoded", strings.NewReader("token=x")); err == nil {
		resp.Body.Close()
		t.Error("timeout fault answered")
	}
	req, _ := http.NewRequest(http.MethodDelete, admin+"faults", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("clear: %v", err)
	}
	if s, out, _ := postForm(t, r.URL+"/oauth/token_info", url.Values{"token": {tok.AccessToken}}, true); s != 200 || out["active"] != true {
		t.Errorf("after clear and reset the token is still active: %d %v", s, out)
	}
	_, stats := getJSON(t, admin+"stats", nil)
	if stats["/oauth/token_info"] != float64(5) || stats["/oauth/userinfo"] != float64(1) || stats["/__admin/stats"] != nil {
		t.Errorf("stats: %v", stats)
	}
	if post("faults", `{"endpoint":""}`) != 400 || post("faults", `not json`) != 400 {
		t.Error("bad fault requests accepted")
	}
}

// TestMalformedRequests: every endpoint answers garbage with a 4xx.
func TestMalformedRequests(t *testing.T) {
	r := start(t, nil)
	big := strings.Repeat("a", 70<<10)
	form := "application/x-www-form-urlencoded"
	cases := []struct{ method, path, ctype, body, auth string }{
		{"GET", "/oauth/token", "", "", ""},
		{"PUT", "/oauth/token", form, "grant_type=x", ""},
		{"POST", "/oauth/token", "application/json", `{"grant_type":"authorization_code"}`, ""},
		{"POST", "/oauth/token", form, "grant_type=authorization_code&grant_type=refresh_token", "basic"},
		{"POST", "/oauth/token", form, "grant_type=%zz", "basic"},
		{"POST", "/oauth/token", form, "grant_type=authorization_code&code=" + big, "basic"},
		{"POST", "/oauth/token", form, "grant_type=password", "basic"},
		{"POST", "/oauth/token", form, "grant_type=authorization_code", "Basic !!!notbase64"},
		{"POST", "/oauth/token", form, "grant_type=authorization_code", "Basic " + base64.StdEncoding.EncodeToString([]byte("%zz:%zz"))},
		{"POST", "/oauth/token_info", form, "token=", "basic"},
		{"POST", "/oauth/token_info", form, "token=a&token=b", "basic"},
		{"GET", "/oauth/token_info", "", "", "basic"},
		{"POST", "/oauth/token/revoke", "text/plain", "token=x", "basic"},
		{"POST", "/oauth/token/revoke", form, "token=x", ""},
		{"DELETE", "/oauth/userinfo", "", "", ""},
		{"GET", "/oauth/userinfo", "", "", "Basic abc"},
		{"GET", "/oauth/authorize?client_id=%zz", "", "", ""},
		{"POST", "/oauth/authorize", "text/plain", "client_id=x", ""},
		{"GET", "/sign-in", "", "", ""},
		{"POST", "/sign-in", form, "request=unknown", ""},
		{"POST", "/oauth/register", "application/json", "{", ""},
		{"GET", "/v1/users/x", "", "", ""},
		{"POST", "/oauth_applications/access_tokens/verify", "application/json", "{", "Bearer " + secretKey},
		{"GET", "/nope", "", "", ""},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, r.URL+c.path, strings.NewReader(c.body))
		if c.ctype != "" {
			req.Header.Set("Content-Type", c.ctype)
		}
		switch {
		case c.auth == "basic":
			req.SetBasicAuth(clientID, url.QueryEscape(clientSecret))
		case c.auth != "":
			req.Header.Set("Authorization", c.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Errorf("%s %s %.40q: %d", c.method, c.path, c.body, resp.StatusCode)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	err := mockclerk.Config{TokenFormat: "xml", Issuer: "ftp://x/y", AccessTokenTTL: -1,
		Users: []mockclerk.User{{ID: "bad"}}}.Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"client id", "client secret", "issuer", "token format", "TTL", "user 1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if _, err := mockclerk.Listen("127.0.0.1:0", mockclerk.Config{}); err == nil {
		t.Error("Listen with an empty config")
	}
}
