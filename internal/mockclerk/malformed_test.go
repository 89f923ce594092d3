package mockclerk_test

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mockclerk"
)

// TestMalformedRequests: garbage gets a 4xx, never a 5xx, and the body kind
// the endpoint family uses (RFC 6749 JSON on the token endpoints, Clerk's
// envelope on userinfo and the Backend API, a local page on the browser
// endpoints).
func TestMalformedRequests(t *testing.T) {
	t.Parallel()
	r := start(t, func(c *mockclerk.Config) { c.DCR = true })
	tok := login(t, r, "", "email")
	const form = "application/x-www-form-urlencoded"
	big := strings.Repeat("a", 65<<10) // over the 64 KiB body cap
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	okBasic := "Basic " + b64(url.QueryEscape(clientID)+":"+url.QueryEscape(clientSecret))
	sk := "Bearer " + secretKey

	type kind int
	const (
		anyBody kind = iota
		oauthJSON
		clerkJSON
		htmlPage
	)
	cases := []struct {
		name                              string
		method, path, ctype, body, authzn string
		want                              kind
	}{
		// /oauth/token
		{"token: GET", "GET", "/oauth/token", "", "", okBasic, oauthJSON},
		{"token: PUT", "PUT", "/oauth/token", form, "grant_type=authorization_code", okBasic, oauthJSON},
		{"token: JSON body", "POST", "/oauth/token", "application/json", `{"grant_type":"authorization_code"}`, okBasic, oauthJSON},
		{"token: no content type", "POST", "/oauth/token", "", "grant_type=authorization_code", okBasic, oauthJSON},
		{"token: multipart", "POST", "/oauth/token", "multipart/form-data; boundary=x", "--x--", okBasic, oauthJSON},
		{"token: bad media type", "POST", "/oauth/token", "application/x-www-form-urlencoded; =", "grant_type=x", okBasic, oauthJSON},
		{"token: duplicated grant_type", "POST", "/oauth/token", form, "grant_type=authorization_code&grant_type=refresh_token", okBasic, oauthJSON},
		{"token: duplicated code", "POST", "/oauth/token", form, "grant_type=authorization_code&code=a&code=b&redirect_uri=" + url.QueryEscape(redirectURI), okBasic, oauthJSON},
		{"token: duplicated client_id (post)", "POST", "/oauth/token", form, "grant_type=authorization_code&client_id=a&client_id=b&client_secret=x", "", oauthJSON},
		{"token: invalid percent-encoding", "POST", "/oauth/token", form, "grant_type=%zz", okBasic, oauthJSON},
		{"token: truncated percent-encoding", "POST", "/oauth/token", form, "grant_type=authorization_code&code=%4", okBasic, oauthJSON},
		{"token: invalid percent-encoding in the query", "POST", "/oauth/token?x=%zz", form, "grant_type=authorization_code", okBasic, oauthJSON},
		{"token: body over 64 KiB", "POST", "/oauth/token", form, "grant_type=authorization_code&code=" + big, okBasic, oauthJSON},
		{"token: unsupported grant", "POST", "/oauth/token", form, "grant_type=password&username=a&password=b", okBasic, oauthJSON},
		{"token: client_credentials", "POST", "/oauth/token", form, "grant_type=client_credentials", okBasic, oauthJSON},
		{"token: no grant_type", "POST", "/oauth/token", form, "code=x", okBasic, oauthJSON},
		{"token: empty body", "POST", "/oauth/token", form, "", okBasic, oauthJSON},
		{"token: Basic not base64", "POST", "/oauth/token", form, "grant_type=authorization_code", "Basic !!!notbase64", oauthJSON},
		{"token: Basic without colon", "POST", "/oauth/token", form, "grant_type=authorization_code", "Basic " + b64("nocolon"), oauthJSON},
		{"token: Basic bad percent-encoding", "POST", "/oauth/token", form, "grant_type=authorization_code", "Basic " + b64("%zz:%zz"), oauthJSON},
		{"token: Basic empty", "POST", "/oauth/token", form, "grant_type=authorization_code", "Basic ", oauthJSON},
		{"token: Basic empty secret", "POST", "/oauth/token", form, "grant_type=authorization_code", "Basic " + b64(clientID+":"), oauthJSON},
		{"token: Basic NUL bytes", "POST", "/oauth/token", form, "grant_type=authorization_code", "Basic " + b64("\x00:\x00"), oauthJSON},
		{"token: Basic huge", "POST", "/oauth/token", form, "grant_type=authorization_code", "Basic " + b64(strings.Repeat("x", 8000)+":y"), oauthJSON},
		{"token: scheme only", "POST", "/oauth/token", form, "grant_type=authorization_code", "Basic", oauthJSON},
		// /oauth/token_info and /oauth/token/revoke
		{"token_info: GET", "GET", "/oauth/token_info", "", "", okBasic, oauthJSON},
		{"token_info: no token", "POST", "/oauth/token_info", form, "token=", okBasic, oauthJSON},
		{"token_info: duplicated token", "POST", "/oauth/token_info", form, "token=a&token=b", okBasic, oauthJSON},
		{"token_info: JSON body", "POST", "/oauth/token_info", "application/json", `{"token":"x"}`, okBasic, oauthJSON},
		{"token_info: invalid percent-encoding", "POST", "/oauth/token_info", form, "token=%G0", okBasic, oauthJSON},
		{"token_info: body over 64 KiB", "POST", "/oauth/token_info", form, "token=" + big, okBasic, oauthJSON},
		{"token_info: garbage Basic", "POST", "/oauth/token_info", form, "token=x", "Basic ::::", oauthJSON},
		{"token_info: bearer", "POST", "/oauth/token_info", form, "token=x", "Bearer " + tok.AccessToken, oauthJSON},
		{"token_info: duplicated scope", "POST", "/oauth/token_info", form, "token=x&scope=email&scope=profile", okBasic, oauthJSON},
		{"revoke: GET", "GET", "/oauth/token/revoke", "", "", okBasic, oauthJSON},
		{"revoke: text/plain", "POST", "/oauth/token/revoke", "text/plain", "token=x", okBasic, oauthJSON},
		{"revoke: no Basic", "POST", "/oauth/token/revoke", form, "token=x", "", oauthJSON},
		{"revoke: duplicated token", "POST", "/oauth/token/revoke", form, "token=x&token=y", okBasic, oauthJSON},
		{"revoke: body over 64 KiB", "POST", "/oauth/token/revoke", form, "token=" + big, okBasic, oauthJSON},
		// /oauth/userinfo
		{"userinfo: DELETE", "DELETE", "/oauth/userinfo", "", "", "Bearer " + tok.AccessToken, clerkJSON},
		{"userinfo: Basic", "GET", "/oauth/userinfo", "", "", okBasic, clerkJSON},
		{"userinfo: garbage bearer", "GET", "/oauth/userinfo", "", "", "Bearer ~%%%", clerkJSON},
		{"userinfo: forged JWT", "GET", "/oauth/userinfo", "", "", "Bearer eyJhbGciOiJSUzI1NiJ9.eyJqdGkiOiJvYXRfeCJ9.c2ln", clerkJSON},
		{"userinfo: big body, bad token", "POST", "/oauth/userinfo", form, big, "Bearer nope", clerkJSON},
		// Browser endpoints
		{"authorize: invalid percent-encoding", "GET", "/oauth/authorize?client_id=%zz", "", "", "", htmlPage},
		{"authorize: duplicated client_id", "GET", "/oauth/authorize?client_id=" + clientID + "&client_id=" + clientID, "", "", "", htmlPage},
		{"authorize: PUT", "PUT", "/oauth/authorize", form, "client_id=" + clientID, "", htmlPage},
		{"authorize: DELETE", "DELETE", "/oauth/authorize?client_id=" + clientID, "", "", "", htmlPage},
		{"authorize: duplicated response_mode", "GET", "/oauth/authorize?client_id=" + clientID + "&response_mode=query&response_mode=form_post", "", "", "", htmlPage},
		{"authorize: POST text/plain", "POST", "/oauth/authorize", "text/plain", "client_id=" + clientID, "", htmlPage},
		{"authorize: POST over 64 KiB", "POST", "/oauth/authorize", form, "client_id=" + big, "", htmlPage},
		{"sign-in: GET", "GET", "/sign-in", "", "", "", htmlPage},
		{"sign-in: unknown request", "POST", "/sign-in", form, "request=unknown&user_id=x", "", htmlPage},
		{"sign-in: invalid percent-encoding", "POST", "/sign-in", form, "request=%zz", "", htmlPage},
		{"sign-in: duplicated request", "POST", "/sign-in", form, "request=a&request=b", "", htmlPage},
		{"sign-in: JSON", "POST", "/sign-in", "application/json", `{"request":"a"}`, "", htmlPage},
		{"sign-in: over 64 KiB", "POST", "/sign-in", form, "request=" + big, "", htmlPage},
		// /oauth/register (DCR on)
		{"register: GET", "GET", "/oauth/register", "", "", "", oauthJSON},
		{"register: truncated JSON", "POST", "/oauth/register", "application/json", `{`, "", oauthJSON},
		{"register: form body", "POST", "/oauth/register", form, "redirect_uris=http://x/cb", "", oauthJSON},
		{"register: wrong types", "POST", "/oauth/register", "application/json", `{"redirect_uris":"http://x/cb"}`, "", oauthJSON},
		{"register: over 64 KiB", "POST", "/oauth/register", "application/json", `{"redirect_uris":["http://x/cb"],"client_name":"` + big + `"}`, "", oauthJSON},
		// Backend API
		{"bapi: no key", "GET", "/v1/users/user_x", "", "", "", clerkJSON},
		{"bapi: garbage key", "GET", "/v1/users/user_x", "", "", "Bearer sk_\u00e9\u00e9", clerkJSON},
		{"bapi: user POST", "POST", "/v1/users/user_x", "application/json", `{}`, sk, anyBody},
		{"verify: truncated JSON", "POST", "/oauth_applications/access_tokens/verify", "application/json", `{`, sk, clerkJSON},
		{"verify: form body", "POST", "/oauth_applications/access_tokens/verify", form, "access_token=x", sk, clerkJSON},
		{"verify: wrong type", "POST", "/oauth_applications/access_tokens/verify", "application/json", `{"access_token":1}`, sk, clerkJSON},
		{"verify: over 64 KiB", "POST", "/oauth_applications/access_tokens/verify", "application/json", `{"access_token":"` + big + `"}`, sk, clerkJSON},
		{"verify: GET", "GET", "/oauth_applications/access_tokens/verify", "", "", sk, anyBody},
		{"verify: empty object", "POST", "/oauth_applications/access_tokens/verify", "application/json", `{}`, sk, clerkJSON},
		{"verify: null", "POST", "/oauth_applications/access_tokens/verify", "application/json", `null`, sk, clerkJSON},
		{"bapi jwks: no key", "GET", "/v1/jwks", "", "", "", clerkJSON},
		// Admin API and unknown paths
		{"admin: faults GET", "GET", "/__admin/faults", "", "", "", anyBody},
		{"admin: faults garbage", "POST", "/__admin/faults", "application/json", "\x00\x01", "", anyBody},
		{"admin: stats DELETE", "DELETE", "/__admin/stats", "", "", "", anyBody},
		{"unknown path", "GET", "/nope", "", "", "", clerkJSON},
		{"well-known POST", "POST", "/.well-known/openid-configuration", form, "", "", anyBody},
		{"unknown well-known", "GET", "/.well-known/unknown", "", "", "", clerkJSON},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequest(c.method, r.URL+c.path, strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			if c.ctype != "" {
				req.Header.Set("Content-Type", c.ctype)
			}
			if c.authzn != "" {
				req.Header["Authorization"] = []string{c.authzn}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			rep := reply{Status: resp.StatusCode, Header: resp.Header, Body: body}
			if rep.Status < 400 || rep.Status >= 500 {
				t.Fatalf("status %d, want 4xx: %.200s", rep.Status, body)
			}
			ct := resp.Header.Get("Content-Type")
			switch c.want {
			case oauthJSON:
				if !strings.HasPrefix(ct, "application/json") || !strings.Contains(string(body), `"error":"`) {
					t.Errorf("want an RFC 6749 JSON error, got %s %.200s", ct, body)
				}
			case clerkJSON:
				if !strings.HasPrefix(ct, "application/json") || !strings.Contains(string(body), `"errors":[`) || !strings.Contains(string(body), `"clerk_trace_id"`) {
					t.Errorf("want Clerk's envelope, got %s %.200s", ct, body)
				}
			case htmlPage:
				if !strings.HasPrefix(ct, "text/html") || resp.Header.Get("Location") != "" {
					t.Errorf("want a local page, got %s Location %q", ct, resp.Header.Get("Location"))
				}
			}
		})
	}
	// Nothing above hurt the server.
	if rep := get(t, r.URL+"/oauth/userinfo", bearer(tok.AccessToken)); rep.Status != 200 {
		t.Errorf("after the garbage: %d", rep.Status)
	}
}
