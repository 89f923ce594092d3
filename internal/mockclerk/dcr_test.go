package mockclerk_test

// Tests of dynamic client registration (dcr.go). Helpers are in
// mockclerk_test.go.

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mockclerk"
	"golang.org/x/oauth2"
)

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
