package mockclerk_test

// Tests of the Backend API (bapi.go). Helpers are in mockclerk_test.go.

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mockclerk"
)

func TestBackendAPI(t *testing.T) {
	t.Parallel()
	// Opaque tokens: the verify call's revocation cases need revocable tokens
	// (Clerk cannot revoke JWT access tokens).
	r := start(t, func(c *mockclerk.Config) { c.AccessTokenTTL = time.Hour; c.TokenFormat = "opaque" })
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
