package proxy

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/seal"
)

// TestRegister: RFC 7591. The answer echoes the metadata with §2's
// defaults; a confidential client gets its secret once, and the store
// keeps only its hash.
func TestRegister(t *testing.T) {
	t.Parallel()
	e := newAS(t)
	for _, tc := range []struct {
		name       string
		meta       map[string]any
		method     string
		grants     []string
		scope      string
		withSecret bool
	}{
		{"public", map[string]any{"token_endpoint_auth_method": "none"}, authNone, []string{"authorization_code", "refresh_token"}, "", false},
		{"method omitted: client_secret_basic", map[string]any{"token_endpoint_auth_method": nil}, authBasic, []string{"authorization_code", "refresh_token"}, "", true},
		{"client_secret_post", map[string]any{"token_endpoint_auth_method": authPost}, authPost, []string{"authorization_code", "refresh_token"}, "", true},
		{"code grant only", map[string]any{"grant_types": []string{"authorization_code"}, "token_endpoint_auth_method": "none"}, authNone, []string{"authorization_code"}, "", false},
		{"unknown fields ignored, scopes not offered dropped", map[string]any{"software_id": "x", "resource": 7, "scope": "openid admin email", "token_endpoint_auth_method": "none"},
			authNone, []string{"authorization_code", "refresh_token"}, "openid email", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			meta := map[string]any{"redirect_uris": []string{asRedirect, asRedirect, "cursor://oauth/cb"}, "client_name": "  Notes  "}
			for k, v := range tc.meta {
				if v == nil {
					delete(meta, k)
					continue
				}
				meta[k] = v
			}
			status, out := e.registerRaw(t, meta)
			secret, _ := out["client_secret"].(string)
			id, _ := out["client_id"].(string)
			if status != http.StatusCreated || !strings.HasPrefix(id, "mcp_") || out["token_endpoint_auth_method"] != tc.method ||
				(secret != "") != tc.withSecret || out["client_name"] != "Notes" || out["registration_access_token"] == "" ||
				out["registration_client_uri"] != e.url+"/register/"+id {
				t.Fatalf("%d %v", status, out)
			}
			// Echoed as registered, a repeated URI once.
			if got := fmt.Sprint(out["redirect_uris"]); got != fmt.Sprint([]string{asRedirect, "cursor://oauth/cb"}) {
				t.Fatalf("redirect_uris %v", got)
			}
			c, err := e.st.GetClient(context.Background(), id)
			if err != nil || !slices.Equal(c.GrantTypes, tc.grants) || c.Scope != tc.scope {
				t.Fatalf("stored %+v %v", c, err)
			}
			if tc.withSecret && (!seal.EqualHash(secret, c.SecretHash) || strings.Contains(string(c.SecretHash), secret)) {
				t.Fatal("the stored secret is not the hash of the one returned")
			}
		})
	}
}

// TestRegisterRefusals: RFC 7591 §3.2.2. Anything but a JSON object of
// valid metadata is a 400 with the RFC's error code, and nothing is stored.
func TestRegisterRefusals(t *testing.T) {
	t.Parallel()
	e := newAS(t)
	good := `{"redirect_uris":["` + asRedirect + `"],"token_endpoint_auth_method":"none"}`
	for _, tc := range []struct {
		name, contentType, body, code string
	}{
		{"form body", "application/x-www-form-urlencoded", "redirect_uris=" + asRedirect, "invalid_client_metadata"},
		{"no content type", "", good, "invalid_client_metadata"},
		{"not JSON", "application/json", "{redirect_uris", "invalid_client_metadata"},
		{"a JSON array", "application/json", "[" + good + "]", "invalid_client_metadata"},
		{"trailing data", "application/json", good + "}", "invalid_client_metadata"},
		{"not UTF-8", "application/json", `{"client_name":"` + "\xff" + `","redirect_uris":["` + asRedirect + `"]}`, "invalid_client_metadata"},
		{"a field of the wrong type", "application/json", `{"redirect_uris":"` + asRedirect + `"}`, "invalid_client_metadata"},
		{"no redirect_uris", "application/json", `{"token_endpoint_auth_method":"none"}`, "invalid_redirect_uri"},
		{"http off loopback", "application/json", `{"redirect_uris":["http://app.example/cb"]}`, "invalid_redirect_uri"},
		{"a fragment", "application/json", `{"redirect_uris":["https://app.example/cb#x"]}`, "invalid_redirect_uri"},
		{"unknown auth method", "application/json", `{"redirect_uris":["` + asRedirect + `"],"token_endpoint_auth_method":"private_key_jwt"}`, "invalid_client_metadata"},
		{"implicit grant", "application/json", `{"redirect_uris":["` + asRedirect + `"],"grant_types":["implicit"]}`, "invalid_client_metadata"},
		{"refresh without code", "application/json", `{"redirect_uris":["` + asRedirect + `"],"grant_types":["refresh_token"]}`, "invalid_client_metadata"},
		{"token response type", "application/json", `{"redirect_uris":["` + asRedirect + `"],"response_types":["token"]}`, "invalid_client_metadata"},
		{"http logo", "application/json", `{"redirect_uris":["` + asRedirect + `"],"logo_uri":"http://app.example/logo.png"}`, "invalid_client_metadata"},
		{"long client_name", "application/json", `{"redirect_uris":["` + asRedirect + `"],"client_name":"` + strings.Repeat("n", 201) + `"}`, "invalid_client_metadata"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.contentType != "" {
				h.Set("Content-Type", tc.contentType)
			}
			resp := e.do(t, http.MethodPost, "/register", h, []byte(tc.body))
			wantOAuthError(t, resp, decode(t, resp), http.StatusBadRequest, tc.code)
		})
	}
}

// TestRegistrationManagement: RFC 7592 read and delete, authenticated by the
// registration access token alone; after delete the client and its tokens
// are gone.
func TestRegistrationManagement(t *testing.T) {
	t.Parallel()
	e := newAS(t)
	c := e.register(t, nil)
	access, _ := e.login(t, c)
	path := "/register/" + c.ID
	bearer := func(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }
	for _, tc := range []struct {
		name   string
		method string
		header http.Header
		status int
	}{
		{"read, no token", http.MethodGet, nil, http.StatusUnauthorized},
		{"read, wrong token", http.MethodGet, bearer("wrong"), http.StatusUnauthorized},
		{"delete, wrong token", http.MethodDelete, bearer("wrong"), http.StatusUnauthorized},
		{"read", http.MethodGet, bearer(c.RegistrationToken), http.StatusOK},
		{"delete", http.MethodDelete, bearer(c.RegistrationToken), http.StatusNoContent},
		{"read after delete", http.MethodGet, bearer(c.RegistrationToken), http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.do(t, tc.method, path, tc.header, nil)
			out := decode(t, resp)
			if resp.StatusCode != tc.status {
				t.Fatalf("%d %v, want %d", resp.StatusCode, out, tc.status)
			}
			switch tc.status {
			case http.StatusUnauthorized:
				if out["error"] != "invalid_token" || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "invalid_token") {
					t.Fatalf("%v %v", out, resp.Header)
				}
			case http.StatusOK:
				if out["client_id"] != c.ID || out["client_secret"] != nil || out["registration_access_token"] != nil {
					t.Fatalf("read answer %v", out)
				}
			}
		})
	}
	if e.active(t, e.introspector(t), access) {
		t.Fatal("an access token of a deleted client is active")
	}
}

// TestRegisterApplicationType: SEP-837. A web client registers https
// redirects on real hosts only; a native client may use loopback and
// private-use schemes (Cursor's cursor://anysphere.cursor-mcp/oauth/callback
// included); a client that says nothing keeps the pre-SEP-837 rules and is
// recorded by what its redirects are.
func TestRegisterApplicationType(t *testing.T) {
	t.Parallel()
	e := newAS(t)
	const cursor = "cursor://anysphere.cursor-mcp/oauth/callback"
	for _, tc := range []struct {
		name     string
		appType  any
		uris     []string
		status   int
		recorded string // application_type answered and stored, or the error code
	}{
		{"native with cursor scheme", "native", []string{cursor}, http.StatusCreated, "native"},
		{"native with loopback", "native", []string{"http://127.0.0.1:33418/callback"}, http.StatusCreated, "native"},
		{"native with https", "native", []string{"https://app.example.com/cb"}, http.StatusCreated, "native"},
		{"web with https", "web", []string{"https://app.example.com/cb"}, http.StatusCreated, "web"},
		{"web with loopback", "web", []string{"http://localhost:3000/cb"}, http.StatusBadRequest, "invalid_redirect_uri"},
		{"web with https loopback", "web", []string{"https://127.0.0.1/cb"}, http.StatusBadRequest, "invalid_redirect_uri"},
		{"web with cursor scheme", "web", []string{"https://app.example.com/cb", cursor}, http.StatusBadRequest, "invalid_redirect_uri"},
		{"omitted, cursor scheme", nil, []string{cursor}, http.StatusCreated, "native"},
		{"omitted, https only", nil, []string{"https://app.example.com/cb"}, http.StatusCreated, "web"},
		{"unknown type", "browser", []string{"https://app.example.com/cb"}, http.StatusBadRequest, "invalid_client_metadata"},
		{"not a string", 7, []string{"https://app.example.com/cb"}, http.StatusBadRequest, "invalid_client_metadata"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			meta := map[string]any{"redirect_uris": tc.uris, "token_endpoint_auth_method": "none"}
			if tc.appType != nil {
				meta["application_type"] = tc.appType
			}
			status, out := e.registerRaw(t, meta)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %v", status, tc.status, out)
			}
			if status != http.StatusCreated {
				if out["error"] != tc.recorded || out["error_description"] == "" {
					t.Fatalf("error %v, want %s", out, tc.recorded)
				}
				return
			}
			c, err := e.st.GetClient(context.Background(), out["client_id"].(string))
			if out["application_type"] != tc.recorded || err != nil || c.ApplicationType != tc.recorded {
				t.Fatalf("answered %v, stored %q (%v), want %s", out["application_type"], c.ApplicationType, err, tc.recorded)
			}
		})
	}
}
