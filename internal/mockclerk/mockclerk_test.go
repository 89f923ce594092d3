package mockclerk_test

// Tests of the fake Clerk over real HTTP, against the wire facts in
// shared/reference/clerk-wire-facts.md (§2–13, §17), one file per file
// tested: discovery (mockclerk.go) and the shared helpers here; authorize_test,
// oauth_test, bapi_test, dcr_test, admin_test; the malformed-request table in
// malformed_test.go and the fuzz targets in fuzz_test.go.

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
	"testing"

	"golang.org/x/oauth2"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mockclerk"
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
	_, rep := signInPost(t, authURL, userID, nil)
	loc, err := url.Parse(rep.Header.Get("Location"))
	if rep.Status != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), redirect+"?") {
		t.Fatalf("sign-in: %d Location %q, want a 302 to %s", rep.Status, rep.Header.Get("Location"), redirect)
	}
	return loc.Query()
}

// signInPost loads the sign-in page of authURL and submits it for userID
// (default: the preselected user) with extra fields; it returns the page and
// the answer to the submission.
func signInPost(t *testing.T, authURL, userID string, extra url.Values) (page, answer reply) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, authURL, nil)
	page = do(t, noRedirect, req)
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
	for k, v := range extra {
		form[k] = v
	}
	base, _ := url.Parse(authURL)
	action, _ := base.Parse(f.Action)
	post, _ := http.NewRequest(http.MethodPost, action.String(), strings.NewReader(form.Encode()))
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return page, do(t, noRedirect, post)
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
