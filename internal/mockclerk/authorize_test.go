package mockclerk_test

// Tests of the authorization endpoint (authorize.go): the code flow driven
// by x/oauth2, request validation, form_post. Helpers are in mockclerk_test.go.

import (
	"context"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mockclerk"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// TestAuthorizationCodeFlow drives the fake with x/oauth2 (PKCE S256,
// client_secret_basic with a secret that needs §2.3.1 encoding) and go-oidc
// (discovery, JWKS, ID token, nonce).
func TestAuthorizationCodeFlow(t *testing.T) {
	t.Parallel()
	r := start(t, nil)
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, r.URL)
	if err != nil {
		t.Fatal(err)
	}
	idVerifier := provider.Verifier(&oidc.Config{ClientID: clientID})
	users := r.Users()

	t.Run("x/oauth2 and go-oidc", func(t *testing.T) {
		conf := oauthConfig(r, "openid", "profile", "email", "offline_access")
		conf.Endpoint = provider.Endpoint()
		conf.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
		verifier := oauth2.GenerateVerifier()
		q := signIn(t, conf.AuthCodeURL(goodState, oauth2.S256ChallengeOption(verifier), oidc.Nonce("nonce-abc-123")), redirectURI, "")
		if q.Get("state") != goodState || q.Get("code") == "" || len(q) != 2 {
			t.Fatalf("redirect query: %v", q)
		}
		tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Count(tok.AccessToken, ".") != 2 {
			t.Errorf("default access token is not a JWT (new Clerk applications issue JWTs): %s", tok.AccessToken)
		}
		if tok.TokenType != "bearer" || tok.ExpiresIn != 86400 || tok.RefreshToken == "" || tok.Extra("scope") != "openid profile email offline_access" {
			t.Errorf("token: type %q expires_in %d refresh %q scope %v", tok.TokenType, tok.ExpiresIn, tok.RefreshToken, tok.Extra("scope"))
		}
		raw, _ := tok.Extra("id_token").(string)
		idt, err := idVerifier.Verify(ctx, raw)
		if err != nil {
			t.Fatalf("ID token: %v", err)
		}
		var claims struct {
			Email         string `json:"email"`
			EmailVerified bool   `json:"email_verified"`
			Name          string `json:"name"`
		}
		if err := idt.Claims(&claims); err != nil {
			t.Fatal(err)
		}
		if idt.Subject != users[0].ID || idt.Nonce != "nonce-abc-123" || idt.Issuer != r.URL ||
			claims.Email != users[0].Email || !claims.EmailVerified || claims.Name != users[0].Name() {
			t.Errorf("ID token: sub %s nonce %s iss %s %+v", idt.Subject, idt.Nonce, idt.Issuer, claims)
		}
		if h := jwtPart(t, raw, 0); h["alg"] != "RS256" || !strings.HasPrefix(h["kid"].(string), "ins_") {
			t.Errorf("ID token header: %v", h)
		}
		// Every JWT Clerk signs carries the token-category header (2026); go-oidc
		// verified this one above with it.
		for name, jwt := range map[string]string{"ID token": raw, "access token": tok.AccessToken} {
			if cat, _ := jwtPart(t, jwt, 0)["cat"].(string); !strings.HasPrefix(cat, "cl_") {
				t.Errorf("%s has no cat header: %v", name, jwtPart(t, jwt, 0))
			}
		}
	})

	t.Run("another user chosen on the form", func(t *testing.T) {
		conf := oauthConfig(r, "openid", "email")
		verifier := oauth2.GenerateVerifier()
		q := signIn(t, conf.AuthCodeURL(goodState, oauth2.S256ChallengeOption(verifier), oidc.Nonce("n-2")), redirectURI, users[1].ID)
		tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		idt, err := idVerifier.Verify(ctx, tok.Extra("id_token").(string))
		if err != nil || idt.Subject != users[1].ID {
			t.Fatalf("ID token for %s: %v %v", users[1].ID, idt, err)
		}
	})

	t.Run("raw JSON answer", func(t *testing.T) {
		code := codeFor(t, r, url.Values{"scope": {"email profile offline_access"}})
		// client_secret_post this time, redirect_uri repeated as required.
		rep := redeem(t, r, code, url.Values{"client_id": {clientID}, "client_secret": {clientSecret}}, nil)
		if rep.Status != 200 || !strings.HasPrefix(rep.Header.Get("Content-Type"), "application/json") || rep.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("exchange: %d %v %s", rep.Status, rep.Header, rep.Body)
		}
		// OAuth.Token has additionalProperties false; no id_token without openid.
		if !keysAre(rep.JSON, "access_token", "token_type", "expires_in", "refresh_token", "scope") {
			t.Errorf("keys: %v", sortedKeys(rep.JSON))
		}
		if !strings.Contains(string(rep.Body), `"token_type":"bearer"`) || !strings.Contains(string(rep.Body), `"expires_in":86400`) ||
			rep.JSON["scope"] != "email profile offline_access" {
			t.Errorf("raw body: %s", rep.Body)
		}
	})

	t.Run("no refresh token without offline_access", func(t *testing.T) {
		rep := redeem(t, r, codeFor(t, r, url.Values{"scope": {"openid email"}}), nil, appBasic)
		if rep.Status != 200 || !keysAre(rep.JSON, "access_token", "token_type", "expires_in", "scope", "id_token") {
			t.Errorf("%d %v", rep.Status, sortedKeys(rep.JSON))
		}
	})

	t.Run("default scope is profile email", func(t *testing.T) {
		rep := redeem(t, r, codeFor(t, r, url.Values{"scope": {""}}), nil, appBasic)
		if rep.Status != 200 || rep.JSON["scope"] != "profile email" {
			t.Errorf("%d %s", rep.Status, rep.Body)
		}
	})

	t.Run("custom access token TTL", func(t *testing.T) {
		r := start(t, func(c *mockclerk.Config) { c.AccessTokenTTL = 90 * time.Second })
		rep := redeem(t, r, codeFor(t, r, nil), nil, appBasic)
		if rep.Status != 200 || rep.JSON["expires_in"] != float64(90) {
			t.Errorf("%d %s", rep.Status, rep.Body)
		}
	})
}

// TestAuthorizeValidation: §4 — errors about the client or the redirect URI
// stay on a local page; the others go back to the redirect URI.
func TestAuthorizeValidation(t *testing.T) {
	t.Parallel()
	r := start(t, nil)
	challenge := oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())
	for _, tc := range []struct {
		name   string
		change url.Values
		status int
		errStr string // the error code in the redirect; "" with 302 never happens
	}{
		{"unknown client", url.Values{"client_id": {"nope"}}, 401, ""},
		{"no client", url.Values{"client_id": {""}}, 401, ""},
		{"unregistered redirect_uri", url.Values{"redirect_uri": {"http://127.0.0.1:5555/other"}}, 400, ""},
		{"redirect_uri differing in port", url.Values{"redirect_uri": {"http://127.0.0.1:5556/cb"}}, 400, ""},
		{"duplicated parameter", url.Values{"state": {goodState, "state-87654321"}}, 400, ""},
		{"plain PKCE", url.Values{"code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"plain"}}, 302, "invalid_request"},
		{"challenge without method", url.Values{"code_challenge": {challenge}}, 302, "invalid_request"},
		{"method without challenge", url.Values{"code_challenge_method": {"S256"}}, 302, "invalid_request"},
		{"short state without PKCE", url.Values{"state": {"short"}}, 302, "invalid_state"},
		{"no state without PKCE", url.Values{"state": {""}}, 302, "invalid_state"},
		// FAPI: state has minLength 8 whenever it is sent; PKCE only makes
		// it optional.
		{"short state with PKCE", url.Values{"state": {"short"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}, 302, "invalid_state"},
		{"unknown scope", url.Values{"scope": {"openid admin"}}, 302, "invalid_scope"},
		{"unknown response_mode", url.Values{"response_mode": {"fragment"}}, 302, "invalid_request"},
		{"unknown prompt", url.Values{"prompt": {"select_account"}}, 302, "invalid_request"},
		{"prompt none with another", url.Values{"prompt": {"none login"}}, 302, "invalid_request"},
		// No browser session at the fake: prompt=none cannot succeed.
		{"prompt none", url.Values{"prompt": {"none"}}, 302, "login_required"},
		{"response_type token", url.Values{"response_type": {"token"}}, 302, "unsupported_response_type"},
		{"no response_type", url.Values{"response_type": {""}}, 302, "unsupported_response_type"},
		// Accepted: the sign-in page.
		{"valid", nil, 200, ""},
		{"no state with PKCE", url.Values{"state": {""}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}, 200, ""},
		{"prompt login consent", url.Values{"prompt": {"login consent"}}, 200, ""},
		{"response_mode query", url.Values{"response_mode": {"query"}}, 200, ""},
		{"response_mode form_post", url.Values{"response_mode": {"form_post"}}, 200, ""},
		{"no redirect_uri, one registered", url.Values{"redirect_uri": {""}}, 200, ""},
		{"all built-in scopes", url.Values{"scope": {"openid profile email public_metadata private_metadata offline_access user:org:read"}}, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, authorizeURL(r, tc.change), nil)
			rep := do(t, noRedirect, req)
			if rep.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", rep.Status, tc.status, rep.Header.Get("Location"))
			}
			loc := rep.Header.Get("Location")
			if tc.status != http.StatusFound {
				if loc != "" {
					t.Errorf("redirected to %s", loc)
				}
				if !strings.HasPrefix(rep.Header.Get("Content-Type"), "text/html") {
					t.Errorf("not a local page: %s", rep.Header.Get("Content-Type"))
				}
				return
			}
			u, err := url.Parse(loc)
			if err != nil || !strings.HasPrefix(loc, redirectURI+"?") || u.Query().Get("error") != tc.errStr ||
				u.Query().Get("code") != "" || u.Query().Get("error_description") == "" {
				t.Fatalf("redirect %s, want error %s", loc, tc.errStr)
			}
			wantState := goodState
			if v, ok := tc.change["state"]; ok {
				wantState = v[0]
			}
			if got, ok := u.Query()["state"]; wantState == "" && ok || wantState != "" && (len(got) != 1 || got[0] != wantState) {
				t.Errorf("state not echoed as %q: %s", wantState, loc)
			}
		})
	}

	t.Run("other methods: 405 on a local page", func(t *testing.T) {
		for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch} {
			req, _ := http.NewRequest(m, authorizeURL(r, nil), nil)
			rep := do(t, noRedirect, req)
			if rep.Status != http.StatusMethodNotAllowed || rep.Header.Get("Location") != "" ||
				!strings.HasPrefix(rep.Header.Get("Content-Type"), "text/html") || rep.Header.Get("Allow") != "GET, POST" {
				t.Errorf("%s: %d %v", m, rep.Status, rep.Header)
			}
		}
	})

	t.Run("POST form", func(t *testing.T) {
		u, _ := url.Parse(authorizeURL(r, nil))
		req, _ := http.NewRequest(http.MethodPost, r.URL+"/oauth/authorize", strings.NewReader(u.RawQuery))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rep := do(t, noRedirect, req)
		if rep.Status != 200 || parseSignInForm(t, string(rep.Body)).Request == "" {
			t.Errorf("POST authorize: %d", rep.Status)
		}
	})

	t.Run("sign-in request is single use", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, authorizeURL(r, nil), nil)
		f := parseSignInForm(t, string(do(t, noRedirect, req).Body))
		form := url.Values{"request": {f.Request}, "user_id": {f.Users[0]}}
		if rep := postFormWith(t, noRedirect, r.URL+"/sign-in", form, nil); rep.Status != http.StatusFound {
			t.Fatalf("first post: %d", rep.Status)
		}
		if rep := postFormWith(t, noRedirect, r.URL+"/sign-in", form, nil); rep.Status != http.StatusBadRequest || rep.Header.Get("Location") != "" {
			t.Errorf("replayed sign-in: %d %s", rep.Status, rep.Header.Get("Location"))
		}
	})

	t.Run("unknown user on the form", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, authorizeURL(r, nil), nil)
		f := parseSignInForm(t, string(do(t, noRedirect, req).Body))
		rep := postFormWith(t, noRedirect, r.URL+"/sign-in", url.Values{"request": {f.Request}, "user_id": {"user_nobody"}}, nil)
		if rep.Status != http.StatusBadRequest || rep.Header.Get("Location") != "" {
			t.Errorf("%d %s", rep.Status, rep.Header.Get("Location"))
		}
	})
}

// parseFormPost reads a response_mode=form_post page: one form posting
// hidden fields to action.
func parseFormPost(t *testing.T, rep reply) (action string, fields url.Values) {
	t.Helper()
	forms := formRe.FindAllStringSubmatch(string(rep.Body), -1)
	if rep.Status != http.StatusOK || !strings.HasPrefix(rep.Header.Get("Content-Type"), "text/html") ||
		rep.Header.Get("Location") != "" || len(forms) != 1 {
		t.Fatalf("want a 200 page with one form, got %d %v %s", rep.Status, rep.Header, rep.Body)
	}
	fa := tagAttrs(forms[0][1])
	if strings.ToLower(fa["method"]) != "post" {
		t.Errorf("form method %q", fa["method"])
	}
	fields = url.Values{}
	for _, m := range inputRe.FindAllStringSubmatch(forms[0][2], -1) {
		if a := tagAttrs(m[1]); a["type"] == "hidden" {
			fields.Add(a["name"], a["value"])
		}
	}
	return fa["action"], fields
}

// TestFormPostResponseMode: response_mode=form_post (advertised in the OIDC
// document, §2b) answers 200 with a page that posts the code or the error,
// and the state, to the redirect URI (FAPI /oauth/authorize 200).
func TestFormPostResponseMode(t *testing.T) {
	t.Parallel()
	r := start(t, nil)
	formPost := url.Values{"response_mode": {"form_post"}}

	t.Run("code", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, authorizeURL(r, formPost), nil)
		f := parseSignInForm(t, string(do(t, noRedirect, req).Body))
		rep := postFormWith(t, noRedirect, r.URL+"/sign-in", url.Values{"request": {f.Request}, "user_id": {f.Users[0]}}, nil)
		action, fields := parseFormPost(t, rep)
		if action != redirectURI || fields.Get("state") != goodState || fields.Get("code") == "" || len(fields) != 2 {
			t.Fatalf("form_post: action %q fields %v", action, fields)
		}
		if got := redeem(t, r, fields.Get("code"), nil, appBasic); got.Status != 200 {
			t.Errorf("redeeming the posted code: %d %s", got.Status, got.Body)
		}
	})

	for _, tc := range []struct {
		name          string
		change        url.Values
		errStr, state string
	}{
		{"error", url.Values{"prompt": {"none"}}, "login_required", goodState},
		{"error with a short state", url.Values{"state": {"short"}}, "invalid_state", "short"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			change := url.Values{"response_mode": {"form_post"}}
			maps.Copy(change, tc.change)
			req, _ := http.NewRequest(http.MethodGet, authorizeURL(r, change), nil)
			action, fields := parseFormPost(t, do(t, noRedirect, req))
			if action != redirectURI || fields.Get("error") != tc.errStr || fields.Get("error_description") == "" ||
				fields.Get("state") != tc.state || fields.Get("code") != "" {
				t.Errorf("form_post error: action %q fields %v", action, fields)
			}
		})
	}
}
