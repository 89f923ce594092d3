package mockclerk_test

// Tests of the fake Clerk over real HTTP, against the wire facts in
// shared/reference/clerk-wire-facts.md (§2–13, §17). Shared helpers live
// here; the admin API is in admin_test.go, the malformed-request table in
// malformed_test.go and the fuzz target in fuzz_test.go.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mockclerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testclock"
)

const (
	clientID = "mockTestClient01"
	// clientSecret needs RFC 6749 §2.3.1 form-urlencoding inside HTTP Basic
	// (space, '&', '=', '+', '/', ':' and '%').
	clientSecret = "s3cret with spaces&symbols=+/:%"
	redirectURI  = "http://127.0.0.1:5555/cb"
	secretKey    = "sk_test_mock_backend_key"
	goodState    = "state-12345678"
)

// start runs a fake Clerk on a free loopback port for the test.
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

// noRedirect is a browser that stops at every redirect.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// reply is a response read in full.
type reply struct {
	Status int
	Header http.Header
	Body   []byte
	JSON   map[string]any // nil unless the body is a JSON object
}

func do(t *testing.T, c *http.Client, req *http.Request) reply {
	t.Helper()
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	rep := reply{Status: resp.StatusCode, Header: resp.Header, Body: body}
	var m map[string]any
	if json.Unmarshal(body, &m) == nil {
		rep.JSON = m
	}
	return rep
}

// auth decorates a request with credentials.
type auth func(*http.Request)

// basic is client_secret_basic done right: id and secret form-urlencoded
// first (RFC 6749 §2.3.1), as x/oauth2's AuthStyleInHeader does.
func basic(id, secret string) auth {
	return func(r *http.Request) { r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret)) }
}

func header(v string) auth { return func(r *http.Request) { r.Header.Set("Authorization", v) } }

func bearer(token string) auth { return header("Bearer " + token) }

var appBasic = basic(clientID, clientSecret)

func postForm(t *testing.T, target string, form url.Values, a auth) reply {
	t.Helper()
	return postFormWith(t, nil, target, form, a)
}

func postFormWith(t *testing.T, c *http.Client, target string, form url.Values, a auth) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if a != nil {
		a(req)
	}
	return do(t, c, req)
}

func get(t *testing.T, target string, a auth) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a != nil {
		a(req)
	}
	return do(t, nil, req)
}

func postJSON(t *testing.T, target, body string, a auth) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if a != nil {
		a(req)
	}
	return do(t, nil, req)
}

func sortedKeys(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }

func keysAre(m map[string]any, want ...string) bool {
	slices.Sort(want)
	return slices.Equal(sortedKeys(m), want)
}

// wantOAuthError checks an RFC 6749 error answer: status, JSON
// {"error","error_description"}.
func wantOAuthError(t *testing.T, rep reply, status int, code string) {
	t.Helper()
	if rep.Status != status || rep.JSON == nil || rep.JSON["error"] != code || rep.JSON["error_description"] == nil ||
		!strings.HasPrefix(rep.Header.Get("Content-Type"), "application/json") {
		t.Errorf("want %d %s, got %d %s", status, code, rep.Status, rep.Body)
	}
}

// wantClerkError checks Clerk's envelope (§11):
// {"errors":[{message,long_message,code,meta}],"clerk_trace_id"}.
func wantClerkError(t *testing.T, rep reply, status int, code string) {
	t.Helper()
	errs, _ := rep.JSON["errors"].([]any)
	trace, _ := rep.JSON["clerk_trace_id"].(string)
	if rep.Status != status || len(errs) != 1 || trace == "" || !keysAre(rep.JSON, "errors", "clerk_trace_id") {
		t.Errorf("want %d Clerk envelope, got %d %s", status, rep.Status, rep.Body)
		return
	}
	e, _ := errs[0].(map[string]any)
	for _, k := range []string{"message", "long_message", "code"} {
		if s, _ := e[k].(string); s == "" {
			t.Errorf("envelope error lacks %s: %s", k, rep.Body)
		}
	}
	if e["code"] != code {
		t.Errorf("envelope code %v, want %s", e["code"], code)
	}
}

// ---- the sign-in page, read as a browser would ----

var (
	formRe   = regexp.MustCompile(`(?is)<form\b([^>]*)>(.*?)</form>`)
	inputRe  = regexp.MustCompile(`(?is)<(?:input|button)\b([^>]*)>`)
	attrRe   = regexp.MustCompile(`([a-zA-Z_-]+)(?:\s*=\s*"([^"]*)")?`)
	tagAttrs = func(s string) map[string]string {
		out := map[string]string{}
		for _, m := range attrRe.FindAllStringSubmatch(s, -1) {
			out[strings.ToLower(m[1])] = html.UnescapeString(m[2])
		}
		return out
	}
)

// signInForm is the fake's sign-in form: radio inputs user_id (the first
// checked), a hidden request, posted to /sign-in.
type signInForm struct {
	Method, Action string
	Request        string
	Users          []string
	Checked        []string
	Submit         url.Values // the submit button's name=value
}

func parseSignInForm(t *testing.T, page string) signInForm {
	t.Helper()
	forms := formRe.FindAllStringSubmatch(page, -1)
	if len(forms) != 1 {
		t.Fatalf("want one form on the sign-in page, found %d:\n%s", len(forms), page)
	}
	fa := tagAttrs(forms[0][1])
	f := signInForm{Method: strings.ToLower(fa["method"]), Action: fa["action"], Submit: url.Values{}}
	for _, m := range inputRe.FindAllStringSubmatch(forms[0][2], -1) {
		a := tagAttrs(m[1])
		_, checked := a["checked"]
		switch {
		case a["type"] == "hidden" && a["name"] == "request":
			f.Request = a["value"]
		case a["type"] == "radio" && a["name"] == "user_id":
			f.Users = append(f.Users, a["value"])
			if checked {
				f.Checked = append(f.Checked, a["value"])
			}
		case a["type"] == "submit" && a["name"] != "":
			f.Submit.Set(a["name"], a["value"])
		}
	}
	return f
}

// signIn walks the browser from authURL through the sign-in form (choosing
// userID when set, else the preselected user) and returns the query of the
// redirect to redirect.
func signIn(t *testing.T, authURL, redirect, userID string) url.Values {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, authURL, nil)
	page := do(t, noRedirect, req)
	if page.Status != http.StatusOK || !strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("authorize: %d %s %s", page.Status, page.Header.Get("Location"), page.Body)
	}
	f := parseSignInForm(t, string(page.Body))
	if f.Method != "post" || f.Action != "/sign-in" || f.Request == "" || len(f.Users) == 0 ||
		len(f.Checked) != 1 || f.Checked[0] != f.Users[0] {
		t.Fatalf("sign-in form: %+v", f)
	}
	form := url.Values{"request": {f.Request}, "user_id": {f.Checked[0]}}
	if userID != "" {
		if !slices.Contains(f.Users, userID) {
			t.Fatalf("user %s is not offered: %v", userID, f.Users)
		}
		form.Set("user_id", userID)
	}
	for k, v := range f.Submit {
		form[k] = v
	}
	base, _ := url.Parse(authURL)
	action, _ := base.Parse(f.Action)
	post, _ := http.NewRequest(http.MethodPost, action.String(), strings.NewReader(form.Encode()))
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rep := do(t, noRedirect, post)
	loc, err := url.Parse(rep.Header.Get("Location"))
	if rep.Status != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), redirect+"?") {
		t.Fatalf("sign-in: %d Location %q, want a 302 to %s", rep.Status, rep.Header.Get("Location"), redirect)
	}
	return loc.Query()
}

// authorizeURL is r's authorize endpoint with the app's defaults overridden
// by extra (an empty value deletes the parameter).
func authorizeURL(r *mockclerk.Running, extra url.Values) string {
	q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirectURI}, "state": {goodState}, "scope": {"openid email"}}
	for k, v := range extra {
		if len(v) == 1 && v[0] == "" {
			q.Del(k)
		} else {
			q[k] = v
		}
	}
	return r.URL + "/oauth/authorize?" + q.Encode()
}

// codeFor signs the default user in and returns the code.
func codeFor(t *testing.T, r *mockclerk.Running, extra url.Values) string {
	t.Helper()
	q := signIn(t, authorizeURL(r, extra), redirectURI, "")
	if q.Get("code") == "" || q.Get("error") != "" {
		t.Fatalf("no code: %v", q)
	}
	return q.Get("code")
}

func redeem(t *testing.T, r *mockclerk.Running, code string, extra url.Values, a auth) reply {
	t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}}
	for k, v := range extra {
		form[k] = v
	}
	return postForm(t, r.URL+"/oauth/token", form, a)
}

func oauthConfig(r *mockclerk.Running, scopes ...string) *oauth2.Config {
	return &oauth2.Config{ClientID: clientID, ClientSecret: clientSecret, RedirectURL: redirectURI, Scopes: scopes,
		Endpoint: oauth2.Endpoint{AuthURL: r.URL + "/oauth/authorize", TokenURL: r.URL + "/oauth/token", AuthStyle: oauth2.AuthStyleInHeader}}
}

// login runs the code flow with x/oauth2 and PKCE as userID ("" = the
// preselected user).
func login(t *testing.T, r *mockclerk.Running, userID string, scopes ...string) *oauth2.Token {
	t.Helper()
	conf := oauthConfig(r, scopes...)
	verifier := oauth2.GenerateVerifier()
	q := signIn(t, conf.AuthCodeURL(goodState, oauth2.S256ChallengeOption(verifier)), redirectURI, userID)
	tok, err := conf.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return tok
}

func jwtPart(t *testing.T, token string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWT: %.40s", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// ---- discovery (§2) ----

func TestDiscoverySplit(t *testing.T) {
	t.Parallel()
	// §2a: FAPI OAuth2AuthorizationServerMetadata, additionalProperties false.
	asRequired := []string{"issuer", "authorization_endpoint", "token_endpoint", "revocation_endpoint", "jwks_uri",
		"response_types_supported", "grant_types_supported", "token_endpoint_auth_methods_supported", "scopes_supported",
		"subject_types_supported", "id_token_signing_alg_values_supported", "claims_supported", "code_challenge_methods_supported"}
	asAllowed := append([]string{"registration_endpoint", "service_documentation", "ui_locales_supported", "op_tos_uri",
		"client_id_metadata_document_supported"}, asRequired...)
	// §2b: FAPI OpenIDConfiguration, additionalProperties false.
	oidcRequired := []string{"issuer", "authorization_endpoint", "token_endpoint", "revocation_endpoint", "introspection_endpoint",
		"userinfo_endpoint", "jwks_uri", "scopes_supported", "response_types_supported", "response_modes_supported",
		"grant_types_supported", "subject_types_supported", "id_token_signing_alg_values_supported",
		"token_endpoint_auth_methods_supported", "claims_supported", "code_challenge_methods_supported",
		"backchannel_logout_supported", "frontchannel_logout_supported"}
	oidcAllowed := append([]string{"end_session_endpoint"}, oidcRequired...)

	for _, dcr := range []bool{false, true} {
		t.Run(map[bool]string{false: "dcr off", true: "dcr on"}[dcr], func(t *testing.T) {
			r := start(t, func(c *mockclerk.Config) { c.DCR = dcr })
			as := get(t, r.URL+"/.well-known/oauth-authorization-server", nil)
			od := get(t, r.URL+"/.well-known/openid-configuration", nil)
			if as.Status != 200 || od.Status != 200 || as.JSON == nil || od.JSON == nil {
				t.Fatalf("discovery: %d %d", as.Status, od.Status)
			}
			for _, doc := range []struct {
				name              string
				m                 map[string]any
				required, allowed []string
			}{{"RFC 8414", as.JSON, asRequired, asAllowed}, {"OIDC", od.JSON, oidcRequired, oidcAllowed}} {
				for _, k := range doc.required {
					if _, ok := doc.m[k]; !ok {
						t.Errorf("%s document lacks required %s", doc.name, k)
					}
				}
				for k := range doc.m {
					if !slices.Contains(doc.allowed, k) {
						t.Errorf("%s document has %s, which Clerk's schema does not allow", doc.name, k)
					}
				}
				if doc.m["issuer"] != r.URL {
					t.Errorf("%s issuer %v, want %s", doc.name, doc.m["issuer"], r.URL)
				}
				for k, path := range map[string]string{"authorization_endpoint": "/oauth/authorize", "token_endpoint": "/oauth/token",
					"revocation_endpoint": "/oauth/token/revoke", "jwks_uri": "/.well-known/jwks.json"} {
					if doc.m[k] != r.URL+path {
						t.Errorf("%s %s = %v", doc.name, k, doc.m[k])
					}
				}
				if !jsonEqual(doc.m["code_challenge_methods_supported"], []string{"S256"}) ||
					!jsonEqual(doc.m["id_token_signing_alg_values_supported"], []string{"RS256"}) ||
					!jsonEqual(doc.m["response_types_supported"], []string{"code"}) ||
					!jsonEqual(doc.m["grant_types_supported"], []string{"authorization_code", "refresh_token"}) {
					t.Errorf("%s document values: %v", doc.name, doc.m)
				}
			}
			// The split: introspection and userinfo only in the OIDC
			// document, registration only in RFC 8414 and only with DCR.
			for _, k := range []string{"introspection_endpoint", "userinfo_endpoint"} {
				if _, ok := as.JSON[k]; ok {
					t.Errorf("RFC 8414 document has %s", k)
				}
			}
			if od.JSON["introspection_endpoint"] != r.URL+"/oauth/token_info" || od.JSON["userinfo_endpoint"] != r.URL+"/oauth/userinfo" {
				t.Errorf("OIDC introspection/userinfo: %v %v", od.JSON["introspection_endpoint"], od.JSON["userinfo_endpoint"])
			}
			if _, ok := od.JSON["registration_endpoint"]; ok {
				t.Error("OIDC document has registration_endpoint")
			}
			reg, ok := as.JSON["registration_endpoint"]
			if dcr && reg != r.URL+"/oauth/register" || !dcr && ok {
				t.Errorf("DCR %v: registration_endpoint %v", dcr, reg)
			}
		})
	}

	t.Run("jwks", func(t *testing.T) {
		r := start(t, nil)
		rep := get(t, r.URL+"/.well-known/jwks.json", nil)
		var jwks struct {
			Keys []map[string]string `json:"keys"`
		}
		if rep.Status != 200 || json.Unmarshal(rep.Body, &jwks) != nil || len(jwks.Keys) != 1 {
			t.Fatalf("jwks: %d %s", rep.Status, rep.Body)
		}
		k := jwks.Keys[0]
		if !regexp.MustCompile(`^ins_[A-Za-z0-9]+$`).MatchString(k["kid"]) || k["alg"] != "RS256" || k["use"] != "sig" ||
			k["kty"] != "RSA" || k["e"] != "AQAB" || k["n"] == "" {
			t.Errorf("key: %v", k)
		}
	})
}

// jwksKid is the kid of r's one signing key, read over HTTP.
func jwksKid(t *testing.T, r *mockclerk.Running) string {
	t.Helper()
	var jwks struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(get(t, r.URL+"/.well-known/jwks.json", nil).Body, &jwks); err != nil || len(jwks.Keys) != 1 {
		t.Fatalf("jwks: %v", err)
	}
	return jwks.Keys[0].Kid
}

func jsonEqual(got any, want []string) bool {
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(want)
	return string(a) == string(b)
}

// ---- the authorization-code flow (§4, §5, §10) ----

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
		if !strings.HasPrefix(tok.AccessToken, "oat_") || strings.Count(tok.AccessToken, ".") != 0 {
			t.Errorf("default access token is not opaque oat_: %s", tok.AccessToken)
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

// TestClientAuthentication: client_secret_basic and client_secret_post are
// treated the same (§5); anything else is 401 invalid_client.
func TestClientAuthentication(t *testing.T) {
	t.Parallel()
	r := start(t, nil)
	post := url.Values{"client_id": {clientID}, "client_secret": {clientSecret}}
	for _, tc := range []struct {
		name   string
		form   url.Values
		auth   auth
		status int
	}{
		{"basic, secret form-urlencoded (RFC 6749 §2.3.1)", nil, appBasic, 200},
		{"client_secret_post", post, nil, 200},
		{"basic, secret not encoded", nil, func(r *http.Request) { r.SetBasicAuth(clientID, clientSecret) }, 401},
		{"basic, wrong secret", nil, basic(clientID, "wrong"), 401},
		{"basic, unknown client", nil, basic("someoneElse0001", clientSecret), 401},
		{"post, wrong secret", url.Values{"client_id": {clientID}, "client_secret": {"wrong"}}, nil, 401},
		{"post, no secret", url.Values{"client_id": {clientID}}, nil, 401},
		{"basic and post at once", post, appBasic, 401},
		{"no credentials", nil, nil, 401},
		{"bearer instead of basic", nil, bearer("x"), 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := redeem(t, r, codeFor(t, r, nil), tc.form, tc.auth)
			if tc.status == 200 {
				if rep.Status != 200 || rep.JSON["access_token"] == nil {
					t.Errorf("%d %s", rep.Status, rep.Body)
				}
				return
			}
			wantOAuthError(t, rep, tc.status, "invalid_client")
		})
	}
}

// TestTokenErrors: the token endpoint's statuses and bodies as FAPI lists
// them (OAuth.TokenError400 / 401) and as captured from real instances
// (wire facts §5): fosite's invalid_client wording, with its "does not
// exist" hint only for an unknown client.
func TestTokenErrors(t *testing.T) {
	t.Parallel()
	r := start(t, nil)
	const generic = "Client authentication failed (e.g., unknown client, no client authentication included, or unsupported authentication method)."
	for _, tc := range []struct {
		name   string
		form   url.Values
		auth   auth
		status int
		code   string
		desc   string // exact error_description, when set
	}{
		{"unknown client", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}}, basic("someoneElse0001", "s"), 401, "invalid_client",
			generic + " The requested OAuth 2.0 Client does not exist."},
		{"no credentials", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}}, nil, 401, "invalid_client",
			generic + " The requested OAuth 2.0 Client does not exist."},
		{"wrong secret", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}}, basic(clientID, "wrong"), 401, "invalid_client", generic},
		{"unsupported grant type", url.Values{"grant_type": {"client_credentials"}}, appBasic, 401, "unsupported_grant_type", ""},
		{"password grant", url.Values{"grant_type": {"password"}, "username": {"a"}, "password": {"b"}}, appBasic, 401, "unsupported_grant_type", ""},
		{"no grant_type", url.Values{"code": {"x"}}, appBasic, 400, "invalid_request", ""},
		{"no code", url.Values{"grant_type": {"authorization_code"}, "redirect_uri": {redirectURI}}, appBasic, 400, "invalid_request", ""},
		{"no refresh_token", url.Values{"grant_type": {"refresh_token"}}, appBasic, 400, "invalid_request", ""},
		{"unknown code", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "redirect_uri": {redirectURI}}, appBasic, 401, "invalid_grant", ""},
		{"unknown refresh token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}, appBasic, 401, "invalid_grant", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := postForm(t, r.URL+"/oauth/token", tc.form, tc.auth)
			wantOAuthError(t, rep, tc.status, tc.code)
			if tc.desc != "" && rep.JSON["error_description"] != tc.desc {
				t.Errorf("error_description %q, want %q", rep.JSON["error_description"], tc.desc)
			}
		})
	}
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

// TestCodeRedemption: codes are single use (§4), bound to the verifier and
// the redirect URI (§5), and live 10 minutes.
func TestCodeRedemption(t *testing.T) {
	t.Parallel()
	clk := testclock.New(time.Now().Truncate(time.Second))
	r := start(t, func(c *mockclerk.Config) { c.Now = clk.Now })
	pkce := func() (verifier string, extra url.Values) {
		v := oauth2.GenerateVerifier()
		return v, url.Values{"code_challenge": {oauth2.S256ChallengeFromVerifier(v)}, "code_challenge_method": {"S256"}}
	}

	t.Run("50 concurrent redemptions, one winner", func(t *testing.T) {
		v, extra := pkce()
		code := codeFor(t, r, extra)
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}, "code_verifier": {v}}.Encode()
		statuses := make([]int, 50)
		bodies := make([]map[string]any, 50)
		var wg sync.WaitGroup
		for i := range 50 {
			wg.Go(func() {
				req, _ := http.NewRequest(http.MethodPost, r.URL+"/oauth/token", strings.NewReader(form))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				appBasic(req)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				defer resp.Body.Close()
				statuses[i] = resp.StatusCode
				_ = json.NewDecoder(resp.Body).Decode(&bodies[i])
			})
		}
		wg.Wait()
		wins := 0
		for i, s := range statuses {
			switch {
			case s == 200:
				wins++
			case s != 401 || bodies[i]["error"] != "invalid_grant": // a spent code is an invalid one
				t.Errorf("loser %d: %d %v", i, s, bodies[i])
			}
		}
		if wins != 1 {
			t.Fatalf("%d of 50 concurrent redemptions won, want exactly 1", wins)
		}
	})

	// Statuses as FAPI lists them: OAuth.TokenError401 has "Invalid
	// code_verifier for PKCE flow" and "Invalid or expired authorization
	// code" (a spent code), OAuth.TokenError400 "Invalid redirect_uri".
	for _, tc := range []struct {
		name   string
		first  url.Values // changes to the first, failing, redemption
		status int        // of that first redemption
	}{
		{"wrong verifier", url.Values{"code_verifier": {oauth2.GenerateVerifier()}}, 401},
		{"no verifier", url.Values{"code_verifier": nil}, 401},
		{"redirect_uri mismatch", url.Values{"redirect_uri": {"http://127.0.0.1:5555/other"}}, 400},
		{"no redirect_uri", url.Values{"redirect_uri": nil}, 400},
	} {
		t.Run(tc.name+" fails and spends the code", func(t *testing.T) {
			v, extra := pkce()
			code := codeFor(t, r, extra)
			good := url.Values{"code_verifier": {v}}
			bad := url.Values{"code_verifier": {v}, "redirect_uri": {redirectURI}}
			for k, val := range tc.first {
				bad[k] = val
			}
			form := url.Values{"grant_type": {"authorization_code"}, "code": {code}}
			for k, val := range bad {
				if val != nil {
					form[k] = val
				}
			}
			wantOAuthError(t, postForm(t, r.URL+"/oauth/token", form, appBasic), tc.status, "invalid_grant")
			wantOAuthError(t, redeem(t, r, code, good, appBasic), 401, "invalid_grant")
		})
	}

	t.Run("verifier without a challenge", func(t *testing.T) {
		wantOAuthError(t, redeem(t, r, codeFor(t, r, nil), url.Values{"code_verifier": {oauth2.GenerateVerifier()}}, appBasic), 401, "invalid_grant")
	})

	t.Run("confidential client without PKCE", func(t *testing.T) {
		if rep := redeem(t, r, codeFor(t, r, nil), nil, appBasic); rep.Status != 200 {
			t.Errorf("%d %s", rep.Status, rep.Body)
		}
	})

	t.Run("unknown code", func(t *testing.T) {
		wantOAuthError(t, redeem(t, r, "not-a-code", nil, appBasic), 401, "invalid_grant")
	})

	t.Run("missing code: invalid_request, nothing spent", func(t *testing.T) {
		wantOAuthError(t, redeem(t, r, "", nil, appBasic), 400, "invalid_request")
	})

	t.Run("code lives 10 minutes", func(t *testing.T) {
		alive, dead := codeFor(t, r, nil), codeFor(t, r, nil)
		clk.Advance(10 * time.Minute)
		if rep := redeem(t, r, alive, nil, appBasic); rep.Status != 200 {
			t.Errorf("at 10 minutes: %d %s", rep.Status, rep.Body)
		}
		clk.Advance(time.Second)
		// OAuth.TokenError400: "Expired authorization code".
		wantOAuthError(t, redeem(t, r, dead, nil, appBasic), 400, "invalid_grant")
	})
}

// TestRefresh: rotation, offline_access, narrowing and widening (§5).
func TestRefresh(t *testing.T) {
	t.Parallel()
	r := start(t, nil)
	refresh := func(t *testing.T, rt, scope string, a auth, extra url.Values) reply {
		t.Helper()
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
		if scope != "" {
			form.Set("scope", scope)
		}
		for k, v := range extra {
			form[k] = v
		}
		return postForm(t, r.URL+"/oauth/token", form, a)
	}

	t.Run("rotation", func(t *testing.T) {
		tok := login(t, r, "", "openid", "email", "offline_access")
		first := refresh(t, tok.RefreshToken, "", appBasic, nil)
		rt, _ := first.JSON["refresh_token"].(string)
		if first.Status != 200 || rt == "" || rt == tok.RefreshToken || first.JSON["access_token"] == tok.AccessToken ||
			first.JSON["id_token"] == nil || first.JSON["token_type"] != "bearer" || first.JSON["scope"] != "openid email offline_access" {
			t.Fatalf("refresh: %d %s", first.Status, first.Body)
		}
		// FAPI OAuth.TokenError401: "Invalid or expired refresh token".
		wantOAuthError(t, refresh(t, tok.RefreshToken, "", appBasic, nil), 401, "invalid_grant")
		// Clerk's test client style: post credentials and redirect_uri.
		second := refresh(t, rt, "", nil, url.Values{"client_id": {clientID}, "client_secret": {clientSecret}, "redirect_uri": {redirectURI}})
		if second.Status != 200 || second.JSON["refresh_token"] == rt {
			t.Fatalf("second refresh: %d %s", second.Status, second.Body)
		}
		wantOAuthError(t, refresh(t, rt, "", appBasic, nil), 401, "invalid_grant")
	})

	t.Run("x/oauth2 token source refreshes", func(t *testing.T) {
		conf := oauthConfig(r, "email", "offline_access")
		tok := login(t, r, "", "email", "offline_access")
		tok.Expiry = time.Now().Add(-time.Hour) // force a refresh
		fresh, err := conf.TokenSource(context.Background(), tok).Token()
		if err != nil || fresh.AccessToken == tok.AccessToken || fresh.RefreshToken == tok.RefreshToken {
			t.Fatalf("refresh through x/oauth2: %v %+v", err, fresh)
		}
	})

	t.Run("narrowing allowed, widening refused", func(t *testing.T) {
		tok := login(t, r, "", "openid", "email", "profile", "offline_access")
		wantOAuthError(t, refresh(t, tok.RefreshToken, "openid email profile offline_access public_metadata", appBasic, nil), 400, "invalid_scope")
		wantOAuthError(t, refresh(t, tok.RefreshToken, "admin", appBasic, nil), 400, "invalid_scope")
		narrow := refresh(t, tok.RefreshToken, "email offline_access", appBasic, nil)
		if narrow.Status != 200 || narrow.JSON["scope"] != "email offline_access" || narrow.JSON["id_token"] != nil {
			t.Fatalf("narrowing: %d %s", narrow.Status, narrow.Body)
		}
		info := postForm(t, r.URL+"/oauth/token_info", url.Values{"token": {narrow.JSON["access_token"].(string)}}, appBasic)
		if info.JSON["scope"] != "email offline_access" {
			t.Errorf("narrowed token introspects as %v", info.JSON["scope"])
		}
	})

	t.Run("refresh token of another user's grant is not mixed up", func(t *testing.T) {
		bob := r.Users()[1]
		tok := login(t, r, bob.ID, "email", "offline_access")
		rep := refresh(t, tok.RefreshToken, "", appBasic, nil)
		info := postForm(t, r.URL+"/oauth/token_info", url.Values{"token": {rep.JSON["access_token"].(string)}}, appBasic)
		if info.JSON["sub"] != bob.ID {
			t.Errorf("refreshed token sub %v, want %s", info.JSON["sub"], bob.ID)
		}
	})

	t.Run("no refresh token without offline_access", func(t *testing.T) {
		if tok := login(t, r, "", "openid", "email"); tok.RefreshToken != "" {
			t.Errorf("refresh token %q", tok.RefreshToken)
		}
	})

	t.Run("access token is not a refresh token", func(t *testing.T) {
		tok := login(t, r, "", "email", "offline_access")
		wantOAuthError(t, refresh(t, tok.AccessToken, "", appBasic, nil), 401, "invalid_grant")
		// A missing parameter is a malformed request (OAuth.TokenError400).
		wantOAuthError(t, refresh(t, "", "", appBasic, nil), 400, "invalid_request")
	})
}

// ---- introspection (§7) ----

func TestIntrospection(t *testing.T) {
	t.Parallel()
	clk := testclock.New(time.Now().Truncate(time.Second))
	r := start(t, func(c *mockclerk.Config) { c.Now = clk.Now; c.AccessTokenTTL = time.Hour })
	alice, bob := r.Users()[0], r.Users()[1]
	if alice.Org == nil || bob.Org != nil {
		t.Fatal("seeded users changed: the first should have an org, the second none")
	}
	info := func(t *testing.T, token string, a auth) reply {
		t.Helper()
		return postForm(t, r.URL+"/oauth/token_info", url.Values{"token": {token}}, a)
	}
	inactive := func(t *testing.T, rep reply) {
		t.Helper()
		if rep.Status != 200 || strings.TrimSpace(string(rep.Body)) != `{"active":false}` {
			t.Errorf("want exactly {\"active\":false}, got %d %s", rep.Status, rep.Body)
		}
	}

	t.Run("client authentication", func(t *testing.T) {
		tok := login(t, r, "", "email")
		wantOAuthError(t, info(t, tok.AccessToken, nil), 401, "invalid_client")
		wantOAuthError(t, info(t, tok.AccessToken, basic(clientID, "wrong")), 401, "invalid_client")
		wantOAuthError(t, info(t, tok.AccessToken, bearer(tok.AccessToken)), 401, "invalid_client")
		post := postForm(t, r.URL+"/oauth/token_info", url.Values{"token": {tok.AccessToken}, "client_id": {clientID}, "client_secret": {clientSecret}}, nil)
		wantOAuthError(t, post, 401, "invalid_client")
		if rep := info(t, tok.AccessToken, appBasic); rep.Status != 200 || rep.JSON["active"] != true {
			t.Errorf("with Basic: %d %s", rep.Status, rep.Body)
		}
	})

	for _, tc := range []struct {
		name   string
		user   mockclerk.User
		scopes []string
		orgID  string
	}{
		{"minimal", alice, []string{"email", "offline_access"}, ""},
		{"org member with user:org:read", alice, []string{"email", "user:org:read"}, alice.Org.ID},
		{"user without org, user:org:read", bob, []string{"profile", "user:org:read"}, ""},
		{"openid only", bob, []string{"openid"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := login(t, r, tc.user.ID, tc.scopes...)
			rep := info(t, tok.AccessToken, appBasic)
			want := []string{"active", "client_id", "iat", "scope", "sub"}
			if tc.orgID != "" {
				want = append(want, "org_id")
			}
			if rep.Status != 200 || !keysAre(rep.JSON, want...) {
				t.Fatalf("%d keys %v, want %v", rep.Status, sortedKeys(rep.JSON), want)
			}
			if rep.JSON["active"] != true || rep.JSON["client_id"] != clientID || rep.JSON["sub"] != tc.user.ID ||
				rep.JSON["scope"] != strings.Join(tc.scopes, " ") || rep.JSON["iat"] != float64(clk.Now().Unix()) ||
				tc.orgID != "" && rep.JSON["org_id"] != tc.orgID {
				t.Errorf("answer: %s", rep.Body)
			}
		})
	}

	// FAPI token_info: scope is "the granted scopes for the token to check
	// against"; a token lacking one is inactive.
	t.Run("scope parameter", func(t *testing.T) {
		tok := login(t, r, "", "openid", "email", "offline_access")
		for _, tc := range []struct {
			scope  string
			active bool
		}{
			{"", true},
			{"email", true},
			{"openid email", true},
			{"email  offline_access", true},
			{"profile", false},
			{"email profile", false},
			{"admin", false},
		} {
			rep := postForm(t, r.URL+"/oauth/token_info", url.Values{"token": {tok.AccessToken}, "scope": {tc.scope}}, appBasic)
			if !tc.active {
				inactive(t, rep)
			} else if rep.Status != 200 || rep.JSON["active"] != true {
				t.Errorf("scope %q: %d %s", tc.scope, rep.Status, rep.Body)
			}
		}
	})

	t.Run("refresh tokens introspect too", func(t *testing.T) {
		tok := login(t, r, "", "email", "offline_access")
		if rep := info(t, tok.RefreshToken, appBasic); rep.JSON["active"] != true || rep.JSON["sub"] != alice.ID {
			t.Errorf("%s", rep.Body)
		}
	})

	t.Run("unknown", func(t *testing.T) {
		for _, tok := range []string{"oat_UNKNOWN", "x", "a.b.c", "eyJhbGciOiJub25lIn0.e30."} {
			inactive(t, info(t, tok, appBasic))
		}
	})

	t.Run("expired", func(t *testing.T) {
		tok := login(t, r, "", "email", "offline_access")
		clk.Advance(time.Hour - time.Second)
		if rep := info(t, tok.AccessToken, appBasic); rep.JSON["active"] != true {
			t.Fatalf("a second before expiry: %s", rep.Body)
		}
		clk.Advance(time.Second)
		inactive(t, info(t, tok.AccessToken, appBasic))
		// Refresh tokens do not expire.
		if rep := info(t, tok.RefreshToken, appBasic); rep.JSON["active"] != true {
			t.Errorf("refresh token after the access TTL: %s", rep.Body)
		}
	})

	t.Run("revoked through /oauth/token/revoke", func(t *testing.T) {
		tok := login(t, r, "", "email", "offline_access")
		other := login(t, r, "", "email", "offline_access")
		if rep := postForm(t, r.URL+"/oauth/token/revoke", url.Values{"token": {tok.AccessToken}}, appBasic); rep.Status != 200 {
			t.Fatalf("revoke: %d %s", rep.Status, rep.Body)
		}
		inactive(t, info(t, tok.AccessToken, appBasic))
		if rep := info(t, other.AccessToken, appBasic); rep.JSON["active"] != true {
			t.Errorf("another grant's token went too: %s", rep.Body)
		}
		// Revoking the refresh token ends its grant's access tokens.
		if rep := postForm(t, r.URL+"/oauth/token/revoke", url.Values{"token": {other.RefreshToken}, "token_type_hint": {"refresh_token"}}, appBasic); rep.Status != 200 {
			t.Fatalf("revoke refresh: %d", rep.Status)
		}
		inactive(t, info(t, other.RefreshToken, appBasic))
		inactive(t, info(t, other.AccessToken, appBasic))
	})

	t.Run("revoked through RevokeUser", func(t *testing.T) {
		a := login(t, r, alice.ID, "email", "offline_access")
		b := login(t, r, bob.ID, "email", "offline_access")
		r.RevokeUser(alice.ID)
		inactive(t, info(t, a.AccessToken, appBasic))
		inactive(t, info(t, a.RefreshToken, appBasic))
		for _, tok := range []string{b.AccessToken, b.RefreshToken} {
			if rep := info(t, tok, appBasic); rep.JSON["active"] != true {
				t.Errorf("another user's token went too: %s", rep.Body)
			}
		}
		wantOAuthError(t, postForm(t, r.URL+"/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {a.RefreshToken}}, appBasic), 401, "invalid_grant")
	})
}

// ---- userinfo (§9) ----

func TestUserInfo(t *testing.T) {
	t.Parallel()
	clk := testclock.New(time.Now().Truncate(time.Second))
	r := start(t, func(c *mockclerk.Config) { c.Now = clk.Now; c.AccessTokenTTL = time.Hour })
	alice, bob := r.Users()[0], r.Users()[1]
	base := []string{"object", "instance_id", "user_id", "sub"}
	for _, tc := range []struct {
		name   string
		user   mockclerk.User
		scopes []string
		extra  []string
	}{
		{"openid only", alice, []string{"openid"}, nil},
		{"email", alice, []string{"email"}, []string{"email", "email_verified"}},
		{"profile", alice, []string{"profile"}, []string{"name", "given_name", "family_name", "picture", "preferred_username", "username"}},
		{"public_metadata", alice, []string{"public_metadata"}, []string{"public_metadata", "unsafe_metadata"}},
		{"private_metadata", alice, []string{"private_metadata"}, []string{"private_metadata"}},
		{"user:org:read with an org", alice, []string{"user:org:read"}, []string{"org_id", "org_name", "org_slug"}},
		{"user:org:read without an org", bob, []string{"email", "user:org:read"}, []string{"email", "email_verified"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := login(t, r, tc.user.ID, tc.scopes...)
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				req, _ := http.NewRequest(method, r.URL+"/oauth/userinfo", nil)
				req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
				rep := do(t, nil, req)
				want := append(slices.Clone(base), tc.extra...)
				if rep.Status != 200 || !keysAre(rep.JSON, want...) {
					t.Fatalf("%s: %d keys %v, want %v", method, rep.Status, sortedKeys(rep.JSON), want)
				}
				kid := jwksKid(t, r)
				if rep.JSON["object"] != "oauth_user_info" || rep.JSON["sub"] != tc.user.ID || rep.JSON["user_id"] != tc.user.ID ||
					rep.JSON["instance_id"] != kid {
					t.Errorf("%s: %s", method, rep.Body)
				}
				if slices.Contains(tc.extra, "email") && (rep.JSON["email"] != tc.user.Email || rep.JSON["email_verified"] != true) {
					t.Errorf("email: %s", rep.Body)
				}
				if slices.Contains(tc.extra, "given_name") && (rep.JSON["given_name"] != tc.user.FirstName || rep.JSON["preferred_username"] != tc.user.Username) {
					t.Errorf("profile: %s", rep.Body)
				}
				if slices.Contains(tc.extra, "org_id") && (rep.JSON["org_id"] != tc.user.Org.ID || rep.JSON["org_slug"] != tc.user.Org.Slug) {
					t.Errorf("org: %s", rep.Body)
				}
			}
		})
	}

	t.Run("bad tokens get Clerk's envelope", func(t *testing.T) {
		tok := login(t, r, "", "email", "offline_access")
		revoked := login(t, r, "", "email")
		postForm(t, r.URL+"/oauth/token/revoke", url.Values{"token": {revoked.AccessToken}}, appBasic)
		for name, a := range map[string]auth{
			"unknown token":        bearer("oat_BOGUS"),
			"no Authorization":     nil,
			"empty bearer":         header("Bearer "),
			"basic":                appBasic,
			"refresh token":        bearer(tok.RefreshToken),
			"revoked access token": bearer(revoked.AccessToken),
		} {
			t.Run(name, func(t *testing.T) {
				wantClerkError(t, get(t, r.URL+"/oauth/userinfo", a), 401, "authentication_invalid")
			})
		}
		clk.Advance(time.Hour)
		wantClerkError(t, get(t, r.URL+"/oauth/userinfo", bearer(tok.AccessToken)), 401, "authentication_invalid")
	})
}

// ---- revocation (§8) and token formats (§6) ----

func TestRevocation(t *testing.T) {
	t.Parallel()
	opaque := start(t, nil)
	jwt := start(t, func(c *mockclerk.Config) { c.TokenFormat = "jwt" })
	revoke := func(t *testing.T, r *mockclerk.Running, token string, a auth) reply {
		t.Helper()
		return postForm(t, r.URL+"/oauth/token/revoke", url.Values{"token": {token}}, a)
	}

	t.Run("opaque access token: 200 with an empty body", func(t *testing.T) {
		tok := login(t, opaque, "", "email")
		rep := revoke(t, opaque, tok.AccessToken, appBasic)
		if rep.Status != 200 || len(rep.Body) != 0 {
			t.Errorf("%d %q", rep.Status, rep.Body)
		}
		if rep := revoke(t, opaque, tok.AccessToken, appBasic); rep.Status != 200 {
			t.Errorf("second revocation: %d", rep.Status)
		}
	})

	t.Run("unknown token: 200 (RFC 7009)", func(t *testing.T) {
		if rep := revoke(t, opaque, "oat_UNKNOWN", appBasic); rep.Status != 200 {
			t.Errorf("%d %s", rep.Status, rep.Body)
		}
	})

	t.Run("Basic required", func(t *testing.T) {
		tok := login(t, opaque, "", "email")
		wantOAuthError(t, revoke(t, opaque, tok.AccessToken, nil), 401, "invalid_client")
		wantOAuthError(t, revoke(t, opaque, tok.AccessToken, basic(clientID, "nope")), 401, "invalid_client")
		if rep := postForm(t, opaque.URL+"/oauth/token_info", url.Values{"token": {tok.AccessToken}}, appBasic); rep.JSON["active"] != true {
			t.Errorf("a refused revocation revoked: %s", rep.Body)
		}
	})

	t.Run("another client's token is not revoked", func(t *testing.T) {
		r := start(t, func(c *mockclerk.Config) { c.DCR = true })
		reg := postJSON(t, r.URL+"/oauth/register", `{"redirect_uris":["http://127.0.0.1:7777/cb"]}`, nil)
		other := basic(reg.JSON["client_id"].(string), reg.JSON["client_secret"].(string))
		tok := login(t, r, "", "email", "offline_access")
		for _, token := range []string{tok.AccessToken, tok.RefreshToken} {
			if rep := revoke(t, r, token, other); rep.Status != 200 {
				t.Errorf("%d %s", rep.Status, rep.Body)
			}
			if rep := postForm(t, r.URL+"/oauth/token_info", url.Values{"token": {token}}, appBasic); rep.JSON["active"] != true {
				t.Errorf("another client revoked the app's token: %s", rep.Body)
			}
		}
	})

	t.Run("JWT access token: 400 unsupported_token_type", func(t *testing.T) {
		tok := login(t, jwt, "", "email", "offline_access")
		wantOAuthError(t, revoke(t, jwt, tok.AccessToken, appBasic), 400, "unsupported_token_type")
		if rep := postForm(t, jwt.URL+"/oauth/token_info", url.Values{"token": {tok.AccessToken}}, appBasic); rep.JSON["active"] != true {
			t.Errorf("JWT after a refused revocation: %s", rep.Body)
		}
		// Its refresh token is opaque and can be revoked.
		if rep := revoke(t, jwt, tok.RefreshToken, appBasic); rep.Status != 200 {
			t.Errorf("JWT-mode refresh token: %d %s", rep.Status, rep.Body)
		}
	})
}

func TestJWTAccessTokens(t *testing.T) {
	t.Parallel()
	r := start(t, func(c *mockclerk.Config) { c.TokenFormat = "jwt" })
	ctx := context.Background()
	keySet := oidc.NewRemoteKeySet(ctx, r.URL+"/.well-known/jwks.json")
	alice := r.Users()[0]

	for _, tc := range []struct {
		name     string
		scopes   []string
		resource string
		want     []string
	}{
		{"no resource: no aud", []string{"email", "profile"}, "", []string{"client_id", "exp", "iat", "iss", "jti", "nbf", "scope", "sub"}},
		{"resource: aud", []string{"email"}, "https://mcp.example.com/mcp", []string{"aud", "client_id", "exp", "iat", "iss", "jti", "nbf", "scope", "sub"}},
		{"user:org:read: org_id", []string{"email", "user:org:read"}, "", []string{"client_id", "exp", "iat", "iss", "jti", "nbf", "org_id", "scope", "sub"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := oauthConfig(r, tc.scopes...)
			v := oauth2.GenerateVerifier()
			opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(v)}
			if tc.resource != "" {
				opts = append(opts, oauth2.SetAuthURLParam("resource", tc.resource))
			}
			q := signIn(t, conf.AuthCodeURL(goodState, opts...), redirectURI, "")
			tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := keySet.VerifySignature(ctx, tok.AccessToken); err != nil {
				t.Fatalf("signature against the JWKS: %v", err)
			}
			h := jwtPart(t, tok.AccessToken, 0)
			kid, _ := h["kid"].(string)
			if h["typ"] != "at+jwt" || h["alg"] != "RS256" || !strings.HasPrefix(kid, "ins_") || kid != jwksKid(t, r) {
				t.Errorf("header: %v", h)
			}
			c := jwtPart(t, tok.AccessToken, 1)
			if !keysAre(c, tc.want...) {
				t.Errorf("claims %v, want %v", sortedKeys(c), tc.want)
			}
			jti, _ := c["jti"].(string)
			iat, _ := c["iat"].(float64)
			if c["client_id"] != clientID || c["iss"] != r.URL || c["sub"] != alice.ID || !strings.HasPrefix(jti, "oat_") ||
				c["nbf"] != iat-10 || c["exp"] != iat+86401 || c["scope"] != strings.Join(tc.scopes, " ") {
				t.Errorf("claims: %v", c)
			}
			if tc.resource != "" && c["aud"] != tc.resource {
				t.Errorf("aud %v, want %s", c["aud"], tc.resource)
			}
			if slices.Contains(tc.scopes, "user:org:read") && c["org_id"] != alice.Org.ID {
				t.Errorf("org_id %v", c["org_id"])
			}
			// The other endpoints take the JWT too.
			if rep := postForm(t, r.URL+"/oauth/token_info", url.Values{"token": {tok.AccessToken}}, appBasic); rep.JSON["active"] != true || rep.JSON["sub"] != alice.ID {
				t.Errorf("token_info: %s", rep.Body)
			}
			if rep := get(t, r.URL+"/oauth/userinfo", bearer(tok.AccessToken)); rep.Status != 200 || rep.JSON["sub"] != alice.ID {
				t.Errorf("userinfo: %d %s", rep.Status, rep.Body)
			}
			verify := postJSON(t, r.URL+"/oauth_applications/access_tokens/verify", `{"access_token":"`+tok.AccessToken+`"}`, bearer(secretKey))
			if verify.Status != 200 || verify.JSON["id"] != jti || verify.JSON["type"] != "oauth_token" || verify.JSON["subject"] != alice.ID {
				t.Errorf("Backend API verify: %d %s", verify.Status, verify.Body)
			}
		})
	}

	t.Run("a JWT signed by another key is unknown", func(t *testing.T) {
		other := start(t, func(c *mockclerk.Config) { c.TokenFormat = "jwt" })
		tok := login(t, other, "", "email")
		if rep := postForm(t, r.URL+"/oauth/token_info", url.Values{"token": {tok.AccessToken}}, appBasic); strings.TrimSpace(string(rep.Body)) != `{"active":false}` {
			t.Errorf("foreign JWT: %s", rep.Body)
		}
	})
}

func TestOpaqueAccessTokens(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"", "opaque"} {
		r := start(t, func(c *mockclerk.Config) { c.TokenFormat = format })
		seen := map[string]bool{}
		for range 3 {
			tok := login(t, r, "", "email")
			if !regexp.MustCompile(`^oat_[A-Za-z0-9]{16,}$`).MatchString(tok.AccessToken) || seen[tok.AccessToken] {
				t.Errorf("format %q: access token %q", format, tok.AccessToken)
			}
			seen[tok.AccessToken] = true
		}
	}
}

// ---- Backend API (§11) ----

func TestBackendAPI(t *testing.T) {
	t.Parallel()
	r := start(t, func(c *mockclerk.Config) { c.AccessTokenTTL = time.Hour })
	alice, bob := r.Users()[0], r.Users()[1]
	sk := bearer(secretKey)
	tok := login(t, r, alice.ID, "email", "offline_access")
	verifyBody := `{"access_token":"` + tok.AccessToken + `"}`

	t.Run("the secret key is required", func(t *testing.T) {
		type call struct{ name, method, path, body string }
		calls := []call{
			{"user", "GET", "/v1/users/" + alice.ID, ""},
			{"memberships", "GET", "/v1/users/" + alice.ID + "/organization_memberships", ""},
			{"verify", "POST", "/oauth_applications/access_tokens/verify", verifyBody},
			{"verify /v1", "POST", "/v1/oauth_applications/access_tokens/verify", verifyBody},
			{"jwks", "GET", "/v1/jwks", ""},
		}
		for _, c := range calls {
			for name, a := range map[string]auth{
				"none": nil, "wrong key": bearer("sk_test_wrong"), "basic": header("Basic " + base64.StdEncoding.EncodeToString([]byte(secretKey+":"))),
				"key without scheme": header(secretKey), "access token": bearer(tok.AccessToken),
			} {
				t.Run(c.name+"/"+name, func(t *testing.T) {
					req, _ := http.NewRequest(c.method, r.URL+c.path, strings.NewReader(c.body))
					req.Header.Set("Content-Type", "application/json")
					if a != nil {
						a(req)
					}
					wantClerkError(t, do(t, nil, req), 401, "authentication_invalid")
				})
			}
		}
	})

	t.Run("user", func(t *testing.T) {
		rep := get(t, r.URL+"/v1/users/"+alice.ID, sk)
		addrs, _ := rep.JSON["email_addresses"].([]any)
		if rep.Status != 200 || len(addrs) != 1 {
			t.Fatalf("%d %s", rep.Status, rep.Body)
		}
		first, _ := addrs[0].(map[string]any)
		primary, _ := rep.JSON["primary_email_address_id"].(string)
		if rep.JSON["id"] != alice.ID || rep.JSON["object"] != "user" || rep.JSON["first_name"] != alice.FirstName ||
			rep.JSON["last_name"] != alice.LastName || first["email_address"] != alice.Email || primary == "" || first["id"] != primary {
			t.Errorf("%s", rep.Body)
		}
		wantClerkError(t, get(t, r.URL+"/v1/users/user_nobody", sk), 404, "resource_not_found")
	})

	t.Run("metadata agrees with userinfo", func(t *testing.T) {
		user := get(t, r.URL+"/v1/users/"+alice.ID, sk)
		info := get(t, r.URL+"/oauth/userinfo", bearer(login(t, r, alice.ID, "public_metadata", "private_metadata").AccessToken))
		for _, k := range []string{"public_metadata", "private_metadata", "unsafe_metadata"} {
			a, _ := json.Marshal(user.JSON[k])
			b, _ := json.Marshal(info.JSON[k])
			if user.JSON[k] == nil || string(a) != string(b) {
				t.Errorf("%s: Backend API %s, userinfo %s", k, a, b)
			}
		}
	})

	t.Run("jwks", func(t *testing.T) {
		rep := get(t, r.URL+"/v1/jwks", sk)
		if fapi := get(t, r.URL+"/.well-known/jwks.json", nil); rep.Status != 200 || string(rep.Body) != string(fapi.Body) {
			t.Errorf("GET /v1/jwks: %d %s, want the instance JWKS %s", rep.Status, rep.Body, fapi.Body)
		}
	})

	t.Run("organization memberships", func(t *testing.T) {
		rep := get(t, r.URL+"/v1/users/"+alice.ID+"/organization_memberships", sk)
		data, _ := rep.JSON["data"].([]any)
		if rep.Status != 200 || len(data) != 1 || rep.JSON["total_count"] != float64(1) {
			t.Fatalf("%d %s", rep.Status, rep.Body)
		}
		m := data[0].(map[string]any)
		org, _ := m["organization"].(map[string]any)
		if m["role"] != alice.Org.Role || org["id"] != alice.Org.ID || org["slug"] != alice.Org.Slug {
			t.Errorf("membership: %v", m)
		}
		if rep := get(t, r.URL+"/v1/users/"+bob.ID+"/organization_memberships", sk); rep.Status != 200 || rep.JSON["total_count"] != float64(0) ||
			!strings.Contains(string(rep.Body), `"data":[]`) {
			t.Errorf("no org: %d %s", rep.Status, rep.Body)
		}
		wantClerkError(t, get(t, r.URL+"/v1/users/user_nobody/organization_memberships", sk), 404, "resource_not_found")
	})

	t.Run("verify", func(t *testing.T) {
		for _, path := range []string{"/oauth_applications/access_tokens/verify", "/v1/oauth_applications/access_tokens/verify"} {
			rep := postJSON(t, r.URL+path, verifyBody, sk)
			// The id is the token's own (BAPI pattern ^oat_[0-9a-f]{32}$),
			// not the token: the answer never echoes the secret.
			id, _ := rep.JSON["id"].(string)
			if rep.Status != 200 || rep.JSON["object"] != "clerk_idp_oauth_access_token" ||
				!regexp.MustCompile(`^oat_[0-9a-f]{32}$`).MatchString(id) || strings.Contains(string(rep.Body), tok.AccessToken) ||
				rep.JSON["subject"] != alice.ID || rep.JSON["client_id"] != clientID || rep.JSON["revoked"] != false ||
				rep.JSON["expired"] != false || !jsonEqual(rep.JSON["scopes"], []string{"email", "offline_access"}) {
				t.Errorf("%s: %d %s", path, rep.Status, rep.Body)
			}
		}
		// The deprecated "secret" alias.
		if rep := postJSON(t, r.URL+"/oauth_applications/access_tokens/verify", `{"secret":"`+tok.AccessToken+`"}`, sk); rep.Status != 200 {
			t.Errorf("secret alias: %d", rep.Status)
		}
		for _, tc := range []struct {
			name, body string
			status     int
			code       string
		}{
			{"unknown token", `{"access_token":"oat_UNKNOWN"}`, 404, "resource_not_found"},
			{"refresh token", `{"access_token":"` + tok.RefreshToken + `"}`, 404, "resource_not_found"},
			{"empty", `{}`, 400, "form_param_missing"},
			{"empty string", `{"access_token":""}`, 400, "form_param_missing"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantClerkError(t, postJSON(t, r.URL+"/oauth_applications/access_tokens/verify", tc.body, sk), tc.status, tc.code)
			})
		}
		other := login(t, r, bob.ID, "email")
		postForm(t, r.URL+"/oauth/token/revoke", url.Values{"token": {other.AccessToken}}, appBasic)
		if rep := postJSON(t, r.URL+"/oauth_applications/access_tokens/verify", `{"access_token":"`+other.AccessToken+`"}`, sk); rep.Status != 200 ||
			rep.JSON["revoked"] != true || rep.JSON["subject"] != bob.ID {
			t.Errorf("revoked: %d %s", rep.Status, rep.Body)
		}
	})
}

// ---- Dynamic Client Registration (§12) ----

func TestDynamicClientRegistration(t *testing.T) {
	t.Parallel()
	register := func(t *testing.T, r *mockclerk.Running, body string) reply {
		t.Helper()
		return postJSON(t, r.URL+"/oauth/register", body, nil)
	}

	t.Run("off: 422 with Clerk's envelope", func(t *testing.T) {
		r := start(t, nil)
		rep := register(t, r, `{"redirect_uris":["http://127.0.0.1:9/cb"]}`)
		errs, _ := rep.JSON["errors"].([]any)
		if rep.Status != 422 || len(errs) != 1 || rep.JSON["clerk_trace_id"] == nil {
			t.Errorf("%d %s", rep.Status, rep.Body)
		}
	})

	r := start(t, func(c *mockclerk.Config) { c.DCR = true })
	const dcrRedirect = "http://127.0.0.1:7777/callback"
	alnum := regexp.MustCompile(`^[A-Za-z0-9]+$`)

	t.Run("on: 201 with the RFC 7591 fields", func(t *testing.T) {
		rep := register(t, r, `{"redirect_uris":["`+dcrRedirect+`"],"client_name":"Claude"}`)
		if rep.Status != 201 || !strings.HasPrefix(rep.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("%d %s", rep.Status, rep.Body)
		}
		for _, k := range []string{"client_id", "client_id_issued_at", "client_secret_expires_at", "client_name", "redirect_uris",
			"grant_types", "response_types", "scope", "token_endpoint_auth_method", "client_secret"} {
			if _, ok := rep.JSON[k]; !ok {
				t.Errorf("lacks %s: %s", k, rep.Body)
			}
		}
		id, _ := rep.JSON["client_id"].(string)
		secret, _ := rep.JSON["client_secret"].(string)
		if !alnum.MatchString(id) || len(id) != 16 || !alnum.MatchString(secret) || len(secret) != 32 ||
			rep.JSON["client_secret_expires_at"] != float64(0) || rep.JSON["client_name"] != "Claude" ||
			rep.JSON["token_endpoint_auth_method"] != "client_secret_basic" || rep.JSON["scope"] != "email offline_access profile" ||
			!jsonEqual(rep.JSON["redirect_uris"], []string{dcrRedirect}) || !jsonEqual(rep.JSON["response_types"], []string{"code"}) ||
			!jsonEqual(rep.JSON["grant_types"], []string{"authorization_code", "refresh_token"}) {
			t.Errorf("%s", rep.Body)
		}
		if iat, _ := rep.JSON["client_id_issued_at"].(float64); iat <= 0 {
			t.Errorf("client_id_issued_at %v", rep.JSON["client_id_issued_at"])
		}
	})

	t.Run("client_name defaults to the client_id; none has no secret", func(t *testing.T) {
		rep := register(t, r, `{"redirect_uris":["`+dcrRedirect+`"],"token_endpoint_auth_method":"none"}`)
		if _, ok := rep.JSON["client_secret"]; rep.Status != 201 || ok || rep.JSON["client_name"] != rep.JSON["client_id"] ||
			rep.JSON["token_endpoint_auth_method"] != "none" {
			t.Errorf("%d %s", rep.Status, rep.Body)
		}
	})

	// What MCP clients send (grant_types, response_types and other RFC 7591
	// members outside FAPI's request schema): they register at Clerk, so
	// the supported values pass and unknown members are ignored (RFC 7591 §2).
	t.Run("an MCP client's registration", func(t *testing.T) {
		rep := register(t, r, `{"client_name":"Claude","redirect_uris":["`+dcrRedirect+`"],"grant_types":["authorization_code","refresh_token"],`+
			`"response_types":["code"],"token_endpoint_auth_method":"client_secret_post","software_id":"x","contacts":["a@example.com"]}`)
		if rep.Status != 201 || rep.JSON["token_endpoint_auth_method"] != "client_secret_post" || rep.JSON["client_secret"] == nil {
			t.Errorf("%d %s", rep.Status, rep.Body)
		}
		if _, echoed := rep.JSON["software_id"]; echoed {
			t.Errorf("an ignored member was echoed: %s", rep.Body)
		}
	})

	t.Run("bad metadata", func(t *testing.T) {
		for _, tc := range []struct{ body, code string }{
			{`{}`, "invalid_redirect_uri"},
			{`{"redirect_uris":[]}`, "invalid_redirect_uri"},
			{`{"redirect_uris":["/relative"]}`, "invalid_redirect_uri"},
			{`{"redirect_uris":["http://x/cb#frag"]}`, "invalid_redirect_uri"},
			{`{"redirect_uris":["http://x/cb"],"token_endpoint_auth_method":"private_key_jwt"}`, "invalid_client_metadata"},
			{`{"redirect_uris":["http://x/cb"],"grant_types":["client_credentials"]}`, "invalid_client_metadata"},
			{`{"redirect_uris":["http://x/cb"],"grant_types":"authorization_code"}`, "invalid_client_metadata"},
			{`{"redirect_uris":["http://x/cb"],"response_types":["token"]}`, "invalid_client_metadata"},
			{`{"redirect_uris":["http://x/cb"],"client_name":7}`, "invalid_client_metadata"},
			{`{"redirect_uris":["http://x/cb"],"client_name":"` + strings.Repeat("n", 257) + `"}`, "invalid_client_metadata"},
			{`[1]`, "invalid_client_metadata"},
		} {
			wantOAuthError(t, register(t, r, tc.body), 400, tc.code)
		}
	})

	// newClient registers a client; authURL is its authorization request.
	type dcr struct{ id, secret string }
	newClient := func(t *testing.T, body string) dcr {
		rep := register(t, r, body)
		if rep.Status != 201 {
			t.Fatalf("register: %d %s", rep.Status, rep.Body)
		}
		s, _ := rep.JSON["client_secret"].(string)
		return dcr{rep.JSON["client_id"].(string), s}
	}
	authURL := func(c dcr, q url.Values) string {
		v := url.Values{"response_type": {"code"}, "client_id": {c.id}, "redirect_uri": {dcrRedirect}, "state": {goodState}}
		for k, x := range q {
			v[k] = x
		}
		return r.URL + "/oauth/authorize?" + v.Encode()
	}
	token := func(t *testing.T, form url.Values, a auth) reply {
		t.Helper()
		return postForm(t, r.URL+"/oauth/token", form, a)
	}

	t.Run("confidential DCR client: default scopes, basic and post", func(t *testing.T) {
		c := newClient(t, `{"redirect_uris":["`+dcrRedirect+`"]}`)
		for name, a := range map[string]func(url.Values) auth{
			"basic": func(url.Values) auth { return basic(c.id, c.secret) },
			"post":  func(f url.Values) auth { f.Set("client_id", c.id); f.Set("client_secret", c.secret); return nil },
		} {
			t.Run(name, func(t *testing.T) {
				q := signIn(t, authURL(c, nil), dcrRedirect, "")
				form := url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {dcrRedirect}}
				rep := token(t, form, a(form))
				if rep.Status != 200 || rep.JSON["scope"] != "email offline_access profile" || rep.JSON["refresh_token"] == nil {
					t.Errorf("%d %s", rep.Status, rep.Body)
				}
			})
		}
		// Scopes outside the registration are refused at authorize.
		req, _ := http.NewRequest(http.MethodGet, authURL(c, url.Values{"scope": {"openid email"}}), nil)
		rep := do(t, noRedirect, req)
		loc, _ := url.Parse(rep.Header.Get("Location"))
		if rep.Status != 302 || loc == nil || loc.Query().Get("error") != "invalid_scope" {
			t.Errorf("openid for a default-scope DCR client: %d %s", rep.Status, rep.Header.Get("Location"))
		}
		// The app's code and refresh token are not the DCR client's.
		appRefresh := login(t, r, "", "email", "offline_access").RefreshToken
		wantOAuthError(t, token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {appRefresh}}, basic(c.id, c.secret)), 401, "invalid_grant")
		if rep := token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {appRefresh}}, appBasic); rep.Status != 200 {
			t.Errorf("the app's refresh token after another client tried it: %d %s", rep.Status, rep.Body)
		}
		appCode := codeFor(t, r, nil)
		wantOAuthError(t, token(t, url.Values{"grant_type": {"authorization_code"}, "code": {appCode}, "redirect_uri": {redirectURI}}, basic(c.id, c.secret)), 401, "invalid_grant")
		wantOAuthError(t, token(t, url.Values{"grant_type": {"authorization_code"}, "code": {"x"}}, basic(c.id, "wrong")), 401, "invalid_client")
	})

	t.Run("public DCR client: PKCE required", func(t *testing.T) {
		c := newClient(t, `{"redirect_uris":["`+dcrRedirect+`"],"token_endpoint_auth_method":"none","scope":"openid email offline_access"}`)
		req, _ := http.NewRequest(http.MethodGet, authURL(c, nil), nil)
		rep := do(t, noRedirect, req)
		loc, _ := url.Parse(rep.Header.Get("Location"))
		if rep.Status != 302 || loc == nil || loc.Query().Get("error") != "invalid_request" {
			t.Fatalf("public client without PKCE: %d %s", rep.Status, rep.Header.Get("Location"))
		}
		for name, a := range map[string]auth{"client_id in the body": nil, "basic with an empty secret": basic(c.id, "")} {
			t.Run(name, func(t *testing.T) {
				v := oauth2.GenerateVerifier()
				q := signIn(t, authURL(c, url.Values{"code_challenge": {oauth2.S256ChallengeFromVerifier(v)}, "code_challenge_method": {"S256"}}), dcrRedirect, "")
				form := url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {dcrRedirect}, "code_verifier": {v}}
				if a == nil {
					form.Set("client_id", c.id)
				}
				rep := token(t, form, a)
				if rep.Status != 200 || rep.JSON["scope"] != "openid email offline_access" || rep.JSON["id_token"] == nil {
					t.Errorf("%d %s", rep.Status, rep.Body)
				}
				wantOAuthError(t, token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rep.JSON["refresh_token"].(string)}, "client_id": {c.id}, "client_secret": {"guess"}}, nil), 401, "invalid_client")
			})
		}
		// A public client cannot introspect (Basic with a secret is required).
		wantOAuthError(t, postForm(t, r.URL+"/oauth/token_info", url.Values{"token": {"x"}}, basic(c.id, "")), 401, "invalid_client")
	})
}
