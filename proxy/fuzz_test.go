package proxy

// Fuzz targets for the authorization server's parsers of outside input: the
// DCR body, the authorization request, the token request with its client
// authentication (HTTP Basic decoding), the consent form and Client ID
// Metadata Documents. Each drives the real handler through the real router
// (or the real fetcher) and checks invariants a bug would break, not only the
// absence of panics. Seed corpora are committed under testdata/fuzz/<Target>/.
//
//	go test -run='^$' -fuzz='^FuzzRegister$' -fuzztime=20s ./proxy
//
// (likewise FuzzAuthorize, FuzzTokenRequest, FuzzConsentForm, FuzzCIMDDocument).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/clerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/seal"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/tokens"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store/memstore"
)

const (
	fzIssuer      = "https://as.example"
	fzClerkAuth   = "https://clerk.example/oauth/authorize"
	fzPublicID    = "mcp_fuzzPublicClient0000"
	fzBasicID     = "mcp_fuzzBasicClient00000"
	fzPostID      = "mcp_fuzzPostClient000000"
	fzBasicSec    = "fuzz-basic-secret-0123456789abcdefghijklmnop"
	fzPostSec     = "fuzz-post-secret-0123456789abcdefghijklmnopq"
	fzTxn         = "fuzzTransaction0123456789abcdefghijklmnopqr"
	fzCSRFNonce   = "fuzzCsrfNonce0123456789abcdefghijklmnopqrst"
	fzProxySecret = "fuzz-proxy-secret-0123456789abcdef0123456789"
)

// fzRedirects are the public client's registered redirect URIs.
var fzRedirects = []string{"http://127.0.0.1:7777/callback", "https://app.example/cb", "cursor://oauth/callback"}

// Error vocabularies (RFC 6749 §4.1.2.1 and §5.2, RFC 7591 §3.2.2, RFC 8707
// §2 invalid_target, OIDC consent_required).
var (
	fzAuthorizeErrors = []string{"invalid_request", "unauthorized_client", "access_denied", "unsupported_response_type",
		"invalid_scope", "server_error", "temporarily_unavailable", "invalid_target", "consent_required"}
	fzTokenErrors = []string{"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
		"unsupported_grant_type", "invalid_scope", "invalid_target"}
	fzRegisterErrors = []string{"invalid_redirect_uri", "invalid_client_metadata"}
)

// fzClerk stands in for Clerk: the fuzzed handlers never get past consent.
type fzClerk struct{}

func (fzClerk) AuthCodeURL(state, _, _ string) string {
	return fzClerkAuth + "?state=" + url.QueryEscape(state)
}
func (fzClerk) Exchange(context.Context, string, string, string) (clerk.TokenSet, *clerk.IDClaims, error) {
	return clerk.TokenSet{}, nil, errors.New("fuzz: no exchange")
}
func (fzClerk) Revoke(context.Context, string, string) error { return nil }
func (fzClerk) UserInfo(context.Context, string) (clerk.UserInfo, error) {
	return clerk.UserInfo{}, errors.New("fuzz: no userinfo")
}

type fzEnv struct {
	s  *Server
	h  http.Handler
	st *memstore.Store
}

// newFzEnv builds an authorization server over an in-memory store with three
// registered clients (public, client_secret_basic, client_secret_post).
func newFzEnv(tb testing.TB, mods ...func(*Config, *Deps)) *fzEnv {
	tb.Helper()
	st := memstore.New(memstore.Options{})
	keys, err := tokens.NewEphemeralKeySet(nil)
	if err != nil {
		tb.Fatal(err)
	}
	cfg := Config{
		Issuer: fzIssuer, Resource: fzIssuer + "/mcp", Scopes: []string{"openid", "profile", "email"},
		AccessTokenTTL: time.Hour, RefreshTokenTTL: 24 * time.Hour, RefreshGrace: time.Minute, ClientIdleTTL: time.Hour,
	}
	deps := Deps{Store: st, Clerk: fzClerk{}, Keys: keys, Secret: []byte(fzProxySecret)}
	for _, m := range mods {
		m(&cfg, &deps)
	}
	s, err := New(cfg, deps)
	if err != nil {
		tb.Fatal(err)
	}
	grants := []string{"authorization_code", "refresh_token"}
	for _, c := range []store.Client{
		{ID: fzPublicID, RedirectURIs: fzRedirects, TokenEndpointAuthMethod: authNone, GrantTypes: grants, ResponseTypes: []string{"code"}},
		{ID: fzBasicID, SecretHash: seal.Hash(fzBasicSec), RedirectURIs: fzRedirects[1:2], TokenEndpointAuthMethod: authBasic, GrantTypes: grants, ResponseTypes: []string{"code"}},
		{ID: fzPostID, SecretHash: seal.Hash(fzPostSec), RedirectURIs: fzRedirects[1:2], TokenEndpointAuthMethod: authPost, GrantTypes: grants, ResponseTypes: []string{"code"}},
	} {
		if err := st.CreateClient(context.Background(), c, 0); err != nil {
			tb.Fatal(err)
		}
	}
	r := chi.NewRouter()
	s.Mount(r)
	return &fzEnv{s: s, h: r, st: st}
}

func (e *fzEnv) client(id string) (store.Client, bool) {
	c, err := e.st.GetClient(context.Background(), id)
	return c, err == nil
}

// serve runs one request through the router.
func (e *fzEnv) serve(method, path, rawQuery string, header http.Header, body []byte) *httptest.ResponseRecorder {
	if header == nil {
		header = http.Header{}
	}
	req := &http.Request{
		Method: method, URL: &url.URL{Path: path, RawQuery: rawQuery}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: header, Host: "as.example", RemoteAddr: "192.0.2.1:4711", RequestURI: path,
		Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)),
	}
	req = req.WithContext(context.Background())
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec
}

// fzJSONError checks an RFC 6749 JSON error answer and returns its code.
func fzJSONError(t *testing.T, rec *httptest.ResponseRecorder, vocabulary []string) (code, desc string) {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error answer %d has Content-Type %q", rec.Code, ct)
	}
	if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("error answer %d has Cache-Control %q", rec.Code, cc)
	}
	var body map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("error answer %d is not a JSON object of strings: %q", rec.Code, rec.Body.String())
	}
	if !slices.Contains(vocabulary, body["error"]) {
		t.Fatalf("error code %q (status %d) is not in the vocabulary %v", body["error"], rec.Code, vocabulary)
	}
	return body["error"], body["error_description"]
}

// FuzzRegister: RFC 7591 registration bodies. A 201 only for a JSON object
// whose redirect URIs all satisfy the redirect rules; the answer echoes them,
// the secret is returned once and stored only hashed; everything else is a
// 400/413 with an RFC 7591 error code.
func FuzzRegister(f *testing.F) {
	for _, s := range []string{
		`{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"none","client_name":"x"}`,
		`{"redirect_uris":["http://127.0.0.1:3000/cb"],"grant_types":["authorization_code","refresh_token"],"response_types":["code"]}`,
		`{"redirect_uris":["cursor://a/b"],"token_endpoint_auth_method":"client_secret_post","scope":"openid profile admin"}`,
		`{"redirect_uris":["https://good@evil.example/"]}`,
		`{"redirect_uris":["javascript:alert(1)"]}`,
		`{"redirect_uris":"https://app.example/cb"}`,
		`{"redirect_uris":[null]}`,
		`[{"redirect_uris":["https://app.example/cb"]}]`,
		`{"redirect_uris":["https://app.example/cb"]} {}`,
		`{"redirect_uris":["https://app.example/cb"],"grant_types":["refresh_token"]}`,
		`{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"private_key_jwt"}`,
		`{"redirect_uris":["https://app.example/cb"],"logo_uri":"javascript:x","client_uri":"http://x"}`,
		`{"REDIRECT_URIS":["https://app.example/cb"]}`,
		`{"redirect_uris":["https://app.example/cb","https://app.example/cb"]}`,
		`{"redirect_uris":["https://app.example/a/%2E%2E/b"]}`,
		`{"redirect_uris":`, `null`, `{}`, ``, "\xff\xfe",
	} {
		f.Add(s, true)
	}
	f.Add(`{"redirect_uris":["https://app.example/cb"]}`, false)
	e := newFzEnv(f)
	f.Fuzz(func(t *testing.T, body string, jsonType bool) {
		h := http.Header{"Content-Type": {"application/json"}}
		if !jsonType {
			h.Set("Content-Type", "text/plain")
		}
		rec := e.serve(http.MethodPost, "/register", "", h, []byte(body))
		if rec.Code != http.StatusCreated {
			if rec.Code != http.StatusBadRequest && !(rec.Code == http.StatusRequestEntityTooLarge && len(body) > maxRegistrationBytes) {
				t.Fatalf("status %d for %q", rec.Code, body)
			}
			_, desc := fzJSONError(t, rec, fzRegisterErrors)
			if len(desc) > 200 {
				t.Fatalf("error_description reflects input: %q", desc)
			}
			return
		}
		if !jsonType || !strings.HasPrefix(strings.TrimLeft(body, " \t\r\n"), "{") {
			t.Fatalf("registered from a body that is not a JSON object: %q", body)
		}
		var req registrationRequest
		_ = json.Unmarshal([]byte(body), &req)
		var resp struct {
			ClientID      string   `json:"client_id"`
			Secret        string   `json:"client_secret"`
			RegToken      string   `json:"registration_access_token"`
			RedirectURIs  []string `json:"redirect_uris"`
			AuthMethod    string   `json:"token_endpoint_auth_method"`
			GrantTypes    []string `json:"grant_types"`
			ResponseTypes []string `json:"response_types"`
			ClientURI     string   `json:"client_uri"`
			LogoURI       string   `json:"logo_uri"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatalf("201 body: %v", err)
		}
		if !strings.HasPrefix(resp.ClientID, "mcp_") || len(resp.RegToken) < 43 {
			t.Fatalf("bad client_id or registration token: %+v", resp)
		}
		if len(resp.RedirectURIs) == 0 || !slices.Equal(resp.RedirectURIs, slices.Compact(slices.Clone(req.RedirectURIs))) {
			t.Fatalf("redirect_uris not echoed: sent %q got %q", req.RedirectURIs, resp.RedirectURIs)
		}
		for _, u := range resp.RedirectURIs {
			if err := validateRedirectURI(u); err != nil {
				t.Fatalf("registered a redirect URI that breaks the rules: %q (%v)", u, err)
			}
		}
		switch resp.AuthMethod {
		case authNone:
			if resp.Secret != "" {
				t.Fatal("a public client got a secret")
			}
		case authBasic, authPost:
			if len(resp.Secret) < 43 {
				t.Fatalf("confidential client secret too short: %d", len(resp.Secret))
			}
		default:
			t.Fatalf("auth method %q", resp.AuthMethod)
		}
		if !slices.Contains(resp.GrantTypes, "authorization_code") || slices.ContainsFunc(resp.GrantTypes, func(g string) bool {
			return g != "authorization_code" && g != "refresh_token"
		}) || !slices.Equal(resp.ResponseTypes, []string{"code"}) {
			t.Fatalf("inconsistent grant/response types: %v %v", resp.GrantTypes, resp.ResponseTypes)
		}
		for _, u := range []string{resp.ClientURI, resp.LogoURI} {
			if u != "" && !strings.HasPrefix(u, "https://") {
				t.Fatalf("accepted non-https client/logo URI %q", u)
			}
		}
		c, ok := e.client(resp.ClientID)
		if !ok {
			t.Fatal("registered client not stored")
		}
		raw, _ := json.Marshal(c)
		if resp.Secret != "" && (!seal.EqualHash(resp.Secret, c.SecretHash) || bytes.Contains(raw, []byte(resp.Secret))) {
			t.Fatal("client secret not stored as its hash only")
		}
		if !seal.EqualHash(resp.RegToken, c.RegistrationTokenHash) || bytes.Contains(raw, []byte(resp.RegToken)) {
			t.Fatal("registration access token not stored as its hash only")
		}
		_ = e.st.DeleteClient(context.Background(), resp.ClientID) // keep memory flat
	})
}

// FuzzAuthorize: authorization requests (query strings). /authorize never
// answers 5xx, only redirects to a redirect URI registered by the named
// client (with iss, state echoed once, an RFC 6749 error code), and starts a
// consent only for response_type=code with an S256 PKCE challenge and no
// repeated parameter.
func FuzzAuthorize(f *testing.F) {
	good := url.Values{"response_type": {"code"}, "client_id": {fzPublicID}, "redirect_uri": {fzRedirects[0]},
		"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"},
		"state": {"xyz"}, "resource": {fzIssuer + "/mcp"}, "scope": {"openid profile"}}
	f.Add(good.Encode())
	for k, v := range map[string]string{
		"redirect_uri": "https://good.example@evil.example/cb", "code_challenge_method": "plain", "response_type": "token",
		"resource": "https://other.example/mcp", "scope": "admin", "client_id": "mcp_unknown", "state": "a\r\nSet-Cookie: x=y",
		"code_challenge": "short", "prompt": "none",
	} {
		q := url.Values{}
		for kk, vv := range good {
			q[kk] = vv
		}
		q.Set(k, v)
		f.Add(q.Encode())
	}
	f.Add(good.Encode() + "&state=again")
	f.Add(strings.Replace(good.Encode(), "7777", "5555", 1))
	f.Add(strings.Replace(good.Encode(), "127.0.0.1", "localhost", 1))
	f.Add("client_id=" + fzPublicID + "&redirect_uri=cursor%3A%2F%2Foauth%2Fcallback&response_type=code")
	f.Add("client_id=" + fzBasicID + "&response_type=code&code_challenge_method=S256&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
	f.Add("%zz")
	f.Add("")
	e := newFzEnv(f)
	f.Fuzz(func(t *testing.T, raw string) {
		rec := e.serve(http.MethodGet, "/authorize", raw, nil, nil)
		loc := rec.Header().Get("Location")
		switch rec.Code {
		case http.StatusBadRequest:
			if loc != "" {
				t.Fatalf("a local error page must not redirect: %q", loc)
			}
			return
		case http.StatusFound:
		default:
			t.Fatalf("status %d for %q", rec.Code, raw)
		}
		// Anything redirected was a well-formed request from a known client.
		v, err := url.ParseQuery(raw)
		if err != nil {
			t.Fatalf("redirected a malformed query %q", raw)
		}
		for k, vals := range v {
			if len(vals) != 1 {
				t.Fatalf("redirected a request repeating %q", k)
			}
		}
		c, ok := e.client(v.Get("client_id"))
		if !ok {
			t.Fatalf("redirected for unknown client %q", v.Get("client_id"))
		}
		if ru := v.Get("redirect_uri"); ru != "" && (!matchRedirectURI(c.RedirectURIs, ru) || validateRedirectURI(ru) != nil) {
			t.Fatalf("redirected although redirect_uri %q is not registered", ru)
		}
		if strings.HasPrefix(loc, "/consent?txn=") {
			if v.Get("response_type") != "code" || v.Get("code_challenge_method") != "S256" || !validChallenge(v.Get("code_challenge")) {
				t.Fatalf("consent started without code + S256 PKCE: %q", raw)
			}
			return
		}
		u, err := url.Parse(loc)
		if err != nil {
			t.Fatalf("unparseable Location %q", loc)
		}
		target := *u
		target.RawQuery = ""
		if !matchRedirectURI(c.RedirectURIs, target.String()) {
			t.Fatalf("redirected to %q, not a registered redirect URI of %s", loc, c.ID)
		}
		q := u.Query()
		if len(q["iss"]) != 1 || q.Get("iss") != fzIssuer || len(q["state"]) > 1 || q.Get("state") != v.Get("state") || q.Has("code") || q.Has("code_challenge") {
			t.Fatalf("bad error redirect %q for %q", loc, raw)
		}
		if !slices.Contains(fzAuthorizeErrors, q.Get("error")) {
			t.Fatalf("error %q not in the RFC 6749 vocabulary", q.Get("error"))
		}
	})
}

// FuzzTokenRequest: token requests (form body + Authorization header). No
// forged request ever gets tokens; errors are RFC 6749 §5.2 codes with
// no-store; invalid_client is 401 (with a Basic challenge when Basic was
// used); an error past client authentication proves the client
// authenticated with exactly its registered method and secret; no secret is
// ever echoed.
func FuzzTokenRequest(f *testing.F) {
	basic := func(id, secret string) string {
		r, _ := http.NewRequest(http.MethodPost, "/", nil)
		r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
		return r.Header.Get("Authorization")
	}
	verifier := "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	for _, s := range []struct{ body, auth string }{
		{"grant_type=authorization_code&code=abc&code_verifier=" + verifier + "&client_id=" + fzPublicID, ""},
		{"grant_type=authorization_code&code=abc&code_verifier=" + verifier, basic(fzBasicID, fzBasicSec)},
		{"grant_type=refresh_token&refresh_token=abcdefghijklmnopqrstuv." + strings.Repeat("A", 43), basic(fzBasicID, fzBasicSec)},
		{"grant_type=refresh_token&refresh_token=x&client_id=" + fzPostID + "&client_secret=" + fzPostSec, ""},
		{"grant_type=password&username=a&password=b&client_id=" + fzPublicID, ""},
		{"grant_type=authorization_code&grant_type=authorization_code&client_id=" + fzPublicID, ""},
		{"grant_type=authorization_code&code=abc&client_id=" + fzBasicID + "&client_secret=wrong", ""},
		{"grant_type=authorization_code&code=abc", basic(fzBasicID, "wrong")},
		{"grant_type=authorization_code&code=abc&client_secret=" + fzBasicSec, basic(fzBasicID, fzBasicSec)},
		{"grant_type=authorization_code&code=abc", basic(fzPublicID, "")},
		{"grant_type=authorization_code&code=abc", "Basic !!!notbase64"},
		{"grant_type=authorization_code&code=abc", "Basic Og=="},
		{"grant_type=authorization_code&code=abc", "Basic " + "JXp6OiV6eg=="}, // "%zz:%zz"
		{"grant_type=authorization_code&code=abc&client_id=" + fzPublicID, "Digest x"},
		{"grant_type=refresh_token&refresh_token=a&scope=openid+admin&client_id=" + fzPublicID, ""},
		{"%zz", ""}, {"", ""}, {"client_id=%ff", ""},
		{"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=a.b.c&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt", basic(fzBasicID, fzBasicSec)},
		{"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=x&subject_token_type=x&audience=y&actor_token=z", basic(fzBasicID, fzBasicSec)},
		{"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=a.b.c&client_id=" + fzPublicID, ""},
	} {
		f.Add(s.body, s.auth)
	}
	// Token exchange on: no forged subject token gets the (fake) Clerk token.
	e := newFzEnv(f, withExchange)
	f.Fuzz(func(t *testing.T, body, auth string) {
		h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
		if auth != "" {
			h.Set("Authorization", auth)
		}
		rec := e.serve(http.MethodPost, "/token", "", h, []byte(body))
		if rec.Code == http.StatusOK {
			t.Fatalf("tokens issued for a forged request: %q %q", body, auth)
		}
		code, desc := fzJSONError(t, rec, fzTokenErrors)
		switch {
		case rec.Code == http.StatusRequestEntityTooLarge && len(body) > maxFormBytes:
		case rec.Code == http.StatusUnauthorized && code == "invalid_client":
		case rec.Code == http.StatusBadRequest && code != "invalid_client":
		default:
			t.Fatalf("status %d with error %q", rec.Code, code)
		}
		// The request as the server reads it.
		req := &http.Request{Header: h}
		bid, bsec, hasBasic := req.BasicAuth()
		if rec.Code == http.StatusUnauthorized && hasBasic && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Basic ") {
			t.Fatal("invalid_client for a Basic request without a Basic challenge")
		}
		for _, secret := range []string{fzBasicSec, fzPostSec, bsec} {
			if len(secret) >= 8 && (strings.Contains(desc, secret) || strings.Contains(rec.Body.String(), secret)) {
				t.Fatalf("error echoes a secret: %q", rec.Body.String())
			}
		}
		postAuth := map[string]bool{"invalid_grant": true, "unsupported_grant_type": true, "unauthorized_client": true, "invalid_scope": true, "invalid_target": true}
		if !postAuth[code] {
			return
		}
		form, _ := url.ParseQuery(body)
		id, secret := form.Get("client_id"), form.Get("client_secret")
		if hasBasic {
			id, _ = url.QueryUnescape(bid)
			secret, _ = url.QueryUnescape(bsec)
		}
		legit := id == fzPublicID && secret == "" ||
			id == fzBasicID && hasBasic && secret == fzBasicSec ||
			id == fzPostID && !hasBasic && secret == fzPostSec
		if !legit {
			t.Fatalf("error %q means client %q authenticated, with secret %q (basic %v)", code, id, secret, hasBasic)
		}
	})
}

// FuzzConsentForm: consent decisions (form body + CSRF cookie). A decision is
// taken only with the CSRF token derived from this browser's cookie and the
// transaction; approval sets an HttpOnly binding cookie and goes to Clerk,
// denial goes to the registered redirect URI with access_denied; nothing else
// redirects and nothing is ever a 5xx.
func FuzzConsentForm(f *testing.F) {
	e := newFzEnv(f)
	csrf := e.s.csrfToken(fzCSRFNonce, fzTxn)
	for _, s := range []struct{ body, cookie string }{
		{"txn=" + fzTxn + "&csrf_token=" + csrf + "&action=approve", fzCSRFNonce},
		{"txn=" + fzTxn + "&csrf_token=" + csrf + "&action=deny", fzCSRFNonce},
		{"txn=" + fzTxn + "&csrf_token=" + csrf + "&action=approve", "other-nonce-0123456789abcdefghijklmnopqrstu"},
		{"txn=" + fzTxn + "&csrf_token=" + csrf + "&action=approve&action=deny", fzCSRFNonce},
		{"txn=" + fzTxn + "&csrf_token=" + csrf + "&action=maybe", fzCSRFNonce},
		{"txn=" + fzTxn + "&csrf_token=&action=approve", ""},
		{"txn=other&csrf_token=" + csrf + "&action=approve", fzCSRFNonce},
		{"%zz", fzCSRFNonce}, {"", ""},
	} {
		f.Add(s.body, s.cookie)
	}
	req := authRequest{ClientID: fzPublicID, RedirectURI: fzRedirects[0], State: "st", CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		Scopes: []string{"openid"}, Resource: fzIssuer + "/mcp"}
	rawReq, _ := json.Marshal(req)
	f.Fuzz(func(t *testing.T, body, cookie string) {
		// A live transaction for every input (a decision consumes it).
		_ = e.st.PutTicket(context.Background(), store.KindTransaction, seal.HashHex(fzTxn), rawReq, time.Hour)
		h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
		if cookie != "" {
			h.Set("Cookie", "cmp_csrf="+cookie)
		}
		rec := e.serve(http.MethodPost, "/consent", "", h, []byte(body))
		switch rec.Code {
		case http.StatusBadRequest, http.StatusForbidden:
			if rec.Header().Get("Location") != "" {
				t.Fatal("an error page redirects")
			}
			return
		case http.StatusRequestEntityTooLarge:
			if len(body) <= maxFormBytes {
				t.Fatalf("413 for %d bytes", len(body))
			}
			return
		case http.StatusFound:
		default:
			t.Fatalf("status %d for %q", rec.Code, body)
		}
		form, _ := url.ParseQuery(body)
		nonce := ""
		if c, err := (&http.Request{Header: h}).Cookie("cmp_csrf"); err == nil {
			nonce = c.Value
		}
		if form.Get("txn") != fzTxn || !seal.Equal([]byte(form.Get("csrf_token")), []byte(e.s.csrfToken(nonce, fzTxn))) {
			t.Fatalf("decision taken without the CSRF token of this browser: %q cookie %q", body, cookie)
		}
		loc := rec.Header().Get("Location")
		switch form.Get("action") {
		case "approve":
			bound := slices.ContainsFunc(rec.Result().Cookies(), func(c *http.Cookie) bool {
				return strings.HasPrefix(c.Name, "cmp_bind_") && c.HttpOnly && c.Value != ""
			})
			if !strings.HasPrefix(loc, fzClerkAuth+"?") || !bound {
				t.Fatalf("approval: Location %q, binding cookie %v", loc, bound)
			}
		case "deny":
			u, err := url.Parse(loc)
			if err != nil || !strings.HasPrefix(loc, fzRedirects[0]+"?") || u.Query().Get("error") != "access_denied" || u.Query().Get("iss") != fzIssuer {
				t.Fatalf("denial: Location %q", loc)
			}
		default:
			t.Fatalf("redirected for action %q", form.Get("action"))
		}
	})
}

// fzDocTransport answers every request with one canned response.
type fzDocTransport struct {
	body []byte
	cc   string
}

func (d *fzDocTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}, "Cache-Control": {d.cc}},
		Body: io.NopCloser(bytes.NewReader(d.body)), Request: r}, nil
}

// FuzzCIMDDocument: client metadata documents. An accepted document names
// itself, lists 1-20 redirect URIs that satisfy the redirect rules, uses no
// shared secret (none, or private_key_jwt with its keys published once), and is cached for 0 or 1 min-24 h; a refused one is errCIMD
// with a short message that never reflects the document.
func FuzzCIMDDocument(f *testing.F) {
	const id = "https://client.example/oauth/metadata.json"
	for _, s := range []string{
		`{"client_id":"` + id + `","client_name":"C","redirect_uris":["http://127.0.0.1:3000/cb"],"token_endpoint_auth_method":"none"}`,
		`{"client_id":"` + id + `","redirect_uris":["https://c.example/cb"],"grant_types":["authorization_code","refresh_token"],"logo_uri":"http://x"}`,
		`{"client_id":"` + id + `","redirect_uris":["https://c.example/cb"],"token_endpoint_auth_method":"client_secret_basic"}`,
		`{"client_id":"` + id + `","redirect_uris":["https://c.example/cb"],"token_endpoint_auth_method":"private_key_jwt"}`,
		`{"client_id":"` + id + `","redirect_uris":["https://c.example/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks_uri":"https://c.example/jwks.json"}`,
		`{"client_id":"` + id + `","redirect_uris":["https://c.example/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks":{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}}`,
		`{"client_id":"https://evil.example/x","redirect_uris":["https://c.example/cb"]}`,
		`{"client_id":"` + id + `","redirect_uris":[]}`,
		`{"client_id":"` + id + `","redirect_uris":["javascript:alert(1)"]}`,
		`{"client_id":"` + id + `","redirect_uris":["https://c.example/cb"],"grant_types":["client_credentials"]}`,
		`{"client_id":"` + id + `","redirect_uris":["https://c.example/cb"],"client_name":"` + strings.Repeat("n", 300) + `"}`,
		`[]`, `null`, `{`, ``,
	} {
		f.Add([]byte(s), "max-age=600")
	}
	f.Add([]byte(`{"client_id":"`+id+`","redirect_uris":["https://c.example/cb"]}`), "no-store")
	f.Add([]byte(`{"client_id":"`+id+`","redirect_uris":["https://c.example/cb"]}`), "max-age=99999999999999999")
	tr := &fzDocTransport{}
	fetcher := newCIMDFetcher(CIMDConfig{Enabled: true}, nil, &http.Client{Transport: tr}, time.Now, nil)
	f.Fuzz(func(t *testing.T, body []byte, cc string) {
		tr.body, tr.cc = body, cc
		c, ttl, err := fetcher.fetch(context.Background(), id)
		if err != nil {
			if !errors.Is(err, errCIMD) || len(err.Error()) > 300 {
				t.Fatalf("refusal %q", err)
			}
			if len(body) > 20 && strings.Contains(err.Error(), string(body)) {
				t.Fatal("refusal reflects the document")
			}
			return
		}
		if len(body) > cimdMaxBytes {
			t.Fatalf("accepted a %d-byte document", len(body))
		}
		if c.ID != id || !c.Metadata || len(c.SecretHash) != 0 {
			t.Fatalf("accepted client %+v", c)
		}
		// A public client keeps no keys; a signing one publishes them in
		// exactly one way, an https jwks_uri or an inline set with a usable key.
		switch c.TokenEndpointAuthMethod {
		case authNone:
			if c.JWKSURI != "" || c.JWKS != "" {
				t.Fatalf("public client kept keys: %q %q", c.JWKSURI, c.JWKS)
			}
		case authJWTKey:
			if (c.JWKSURI == "") == (c.JWKS == "") || (c.JWKSURI != "" && !strings.HasPrefix(c.JWKSURI, "https://")) {
				t.Fatalf("private_key_jwt client with keys %q / %q", c.JWKSURI, c.JWKS)
			}
			if _, err := parseJWKS([]byte(c.JWKS)); c.JWKS != "" && err != nil {
				t.Fatalf("accepted an unusable inline key set: %v", err)
			}
		default:
			t.Fatalf("accepted auth method %q", c.TokenEndpointAuthMethod)
		}
		if len(c.RedirectURIs) == 0 || len(c.RedirectURIs) > maxRedirectURIs {
			t.Fatalf("%d redirect URIs", len(c.RedirectURIs))
		}
		for _, u := range c.RedirectURIs {
			if err := validateRedirectURI(u); err != nil {
				t.Fatalf("accepted redirect URI %q: %v", u, err)
			}
		}
		for _, g := range c.GrantTypes {
			if g != "authorization_code" && g != "refresh_token" {
				t.Fatalf("grant type %q", g)
			}
		}
		if len(c.Name) > 200 || (c.LogoURI != "" && !strings.HasPrefix(c.LogoURI, "https://")) {
			t.Fatalf("name/logo not sanitised: %q %q", c.Name, c.LogoURI)
		}
		if ttl != 0 && (ttl < cimdMinTTL || ttl > cimdMaxTTL) {
			t.Fatalf("cache TTL %v", ttl)
		}
	})
}
