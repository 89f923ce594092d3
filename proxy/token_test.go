package proxy

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/seal"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/tokens"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
)

// TestCorruptCodeRecord proves an authorization code whose stored record is
// unreadable is answered as an invalid code (and logged as a store fault),
// not as a code "issued to another client": the record's empty client id
// used to be compared with the caller's, blaming the client for the store.
func TestCorruptCodeRecord(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, record string }{
		{"not JSON", "{not json"},
		{"JSON null", "null"},
		{"no grant or client", "{}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newAS(t)
			c := e.register(t, nil)
			code := "corrupt-code-0123456789abcdef"
			if err := e.st.PutTicket(context.Background(), store.KindCode, seal.HashHex(code), []byte(tc.record), codeTTL); err != nil {
				t.Fatal(err)
			}
			resp, body := e.exchange(t, c, code, newPKCE())
			wantOAuthError(t, resp, body, http.StatusBadRequest, "invalid_grant")
			if body["error_description"] != "the authorization code is invalid or expired" {
				t.Fatalf("%v", body)
			}
		})
	}
}

// TestCodeExchange: a code redeemed by its client with its verifier gives a
// Bearer access token for the MCP resource and a refresh token, never
// cached, and activates the grant.
func TestCodeExchange(t *testing.T) {
	t.Parallel()
	e := newAS(t)
	for _, method := range []string{authNone, authBasic, authPost} {
		t.Run(method, func(t *testing.T) {
			c := e.register(t, map[string]any{"token_endpoint_auth_method": method})
			p := newPKCE()
			resp, out := e.exchange(t, c, e.code(t, c, p), p)
			if resp.StatusCode != http.StatusOK || out["token_type"] != "Bearer" || out["expires_in"] != float64(3600) ||
				out["scope"] != "openid profile email" || out["refresh_token"] == "" || resp.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("%d %v %v", resp.StatusCode, resp.Header, out)
			}
			claims, err := e.s.keys.Verify(out["access_token"].(string), tokens.Expectations{Issuer: e.url, Audience: e.url + "/mcp", Now: e.clock.Now()})
			if err != nil || claims.ClientID != c.ID || claims.Subject != e.clerk.Users()[0].ID {
				t.Fatalf("access token: %+v %v", claims, err)
			}
			if g := e.st.grants(t, c.ID); len(g) != 1 || !g[0].Active || g[0].ID != claims.GrantID {
				t.Fatalf("grant after the exchange: %+v", g)
			}
		})
	}
}

// TestCodeRedemptionFailures: the code is spent by the first attempt,
// whatever its outcome; a failed check also ends the grant it stood for, and
// a second use of a spent code revokes everything issued from it.
func TestCodeRedemptionFailures(t *testing.T) {
	t.Parallel()
	e := newAS(t)
	owner := e.register(t, nil)
	other := e.register(t, nil)
	for _, tc := range []struct {
		name   string
		by     asClient
		change url.Values
		code   string
	}{
		{"another client", other, nil, "invalid_grant"},
		{"wrong verifier", owner, url.Values{"code_verifier": {oauth2.GenerateVerifier()}}, "invalid_grant"},
		{"verifier too short", owner, url.Values{"code_verifier": {"abc"}}, "invalid_grant"},
		{"another redirect_uri", owner, url.Values{"redirect_uri": {"http://127.0.0.1:7777/other"}}, "invalid_grant"},
		{"redirect_uri left out after being named", owner, url.Values{"redirect_uri": nil}, "invalid_grant"},
		{"another resource", owner, url.Values{"resource": {"https://other.example/mcp"}}, "invalid_target"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPKCE()
			code := e.code(t, owner, p)
			form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {p.verifier},
				"redirect_uri": {owner.RedirectURI}, "resource": {e.url + "/mcp"}}
			for k, v := range tc.change {
				if v == nil {
					form.Del(k)
				} else {
					form[k] = v
				}
			}
			resp, out := e.post(t, "/token", tc.by, form)
			wantOAuthError(t, resp, out, http.StatusBadRequest, tc.code)
			resp, out = e.exchange(t, owner, code, p)
			wantOAuthError(t, resp, out, http.StatusBadRequest, "invalid_grant")
		})
	}
	t.Run("replay after success", func(t *testing.T) {
		p := newPKCE()
		code := e.code(t, owner, p)
		resp, first := e.exchange(t, owner, code, p)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("first redemption: %d %v", resp.StatusCode, first)
		}
		resp, out := e.exchange(t, owner, code, p)
		wantOAuthError(t, resp, out, http.StatusBadRequest, "invalid_grant")
		if st, out := e.refresh(t, owner, first["refresh_token"].(string), nil); st != http.StatusBadRequest {
			t.Fatalf("the replayed code's refresh token still works: %d %v", st, out)
		}
	})
	for _, tc := range []struct{ name, code, verifier string }{
		{"unknown code", "no-such-code", oauth2.GenerateVerifier()},
		{"no code", "", oauth2.GenerateVerifier()},
		{"no verifier", "some-code", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, out := e.exchange(t, owner, tc.code, pkce{verifier: tc.verifier})
			want := "invalid_grant"
			if tc.code == "" || tc.verifier == "" {
				want = "invalid_request"
			}
			wantOAuthError(t, resp, out, http.StatusBadRequest, want)
		})
	}
}

// TestClientAuthentication: RFC 6749 §2.3.1 at the token endpoint. Exactly
// the registered method; a client that tried header authentication gets 401
// with a Basic challenge (§5.2).
func TestClientAuthentication(t *testing.T) {
	t.Parallel()
	e := newAS(t)
	public := e.register(t, nil)
	basic := e.register(t, map[string]any{"token_endpoint_auth_method": authBasic})
	post := e.register(t, map[string]any{"token_endpoint_auth_method": authPost})
	for _, tc := range []struct {
		name      string
		auth      string // Authorization header
		form      url.Values
		status    int
		code      string
		challenge bool
	}{
		{"nobody", "", nil, http.StatusUnauthorized, "invalid_client", false},
		{"unknown client", "", url.Values{"client_id": {"mcp_nobody"}}, http.StatusUnauthorized, "invalid_client", false},
		{"public client with a secret", "", url.Values{"client_id": {public.ID}, "client_secret": {"x"}}, http.StatusUnauthorized, "invalid_client", false},
		{"public client, Basic with an empty secret (Cursor)", basicAuth(public.ID, ""), nil, http.StatusBadRequest, "invalid_grant", false},
		{"basic client, wrong secret", basicAuth(basic.ID, "wrong"), nil, http.StatusUnauthorized, "invalid_client", true},
		{"basic client, secret in the form", "", url.Values{"client_id": {basic.ID}, "client_secret": {basic.Secret}}, http.StatusUnauthorized, "invalid_client", false},
		{"post client, Basic", basicAuth(post.ID, post.Secret), nil, http.StatusUnauthorized, "invalid_client", true},
		{"post client, no secret", "", url.Values{"client_id": {post.ID}}, http.StatusUnauthorized, "invalid_client", false},
		{"two methods at once", basicAuth(basic.ID, basic.Secret), url.Values{"client_secret": {basic.Secret}}, http.StatusBadRequest, "invalid_request", false},
		{"client_id differs from Basic", basicAuth(basic.ID, basic.Secret), url.Values{"client_id": {post.ID}}, http.StatusUnauthorized, "invalid_client", true},
		{"Basic not form-encoded", "Basic " + base64.StdEncoding.EncodeToString([]byte("%zz:x")), nil, http.StatusUnauthorized, "invalid_client", true},
		{"Digest", `Digest username="x"`, nil, http.StatusUnauthorized, "invalid_client", true},
		{"basic client, right secret", basicAuth(basic.ID, basic.Secret), nil, http.StatusBadRequest, "invalid_grant", false},
		{"post client, right secret", "", url.Values{"client_id": {post.ID}, "client_secret": {post.Secret}}, http.StatusBadRequest, "invalid_grant", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{"grant_type": {"authorization_code"}, "code": {"unknown"}, "code_verifier": {oauth2.GenerateVerifier()}}
			for k, v := range tc.form {
				form[k] = v
			}
			h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
			if tc.auth != "" {
				h.Set("Authorization", tc.auth)
			}
			resp := e.do(t, http.MethodPost, "/token", h, []byte(form.Encode()))
			wantOAuthError(t, resp, decode(t, resp), tc.status, tc.code)
			if got := resp.Header.Get("WWW-Authenticate"); tc.challenge != strings.HasPrefix(got, "Basic") {
				t.Fatalf("WWW-Authenticate %q, want a Basic challenge: %v", got, tc.challenge)
			}
		})
	}
}

// TestGrantTypes: only authorization_code and refresh_token, and refresh
// only for a client that registered it.
func TestGrantTypes(t *testing.T) {
	t.Parallel()
	e := newAS(t)
	c := e.register(t, nil)
	codeOnly := e.register(t, map[string]any{"grant_types": []string{"authorization_code"}})
	for _, tc := range []struct {
		name   string
		by     asClient
		grant  []string
		status int
		code   string
	}{
		{"no grant_type", c, nil, http.StatusBadRequest, "invalid_request"},
		{"password", c, []string{"password"}, http.StatusBadRequest, "unsupported_grant_type"},
		{"client_credentials", c, []string{"client_credentials"}, http.StatusBadRequest, "unsupported_grant_type"},
		{"grant_type twice", c, []string{"refresh_token", "refresh_token"}, http.StatusBadRequest, "invalid_request"},
		{"refresh by a client without it", codeOnly, []string{"refresh_token"}, http.StatusBadRequest, "unauthorized_client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, out := e.post(t, "/token", tc.by, url.Values{"grant_type": tc.grant, "refresh_token": {"x"}})
			wantOAuthError(t, resp, out, tc.status, tc.code)
		})
	}
}

func TestVerifyPKCE(t *testing.T) {
	t.Parallel()
	// RFC 7636 Appendix B.
	verifier := "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	challenge := "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	if !verifyPKCE(verifier, challenge) {
		t.Fatal("RFC 7636 example must verify")
	}
	for _, bad := range []string{"", "short", verifier + "x", strings.Repeat("a", 129), verifier[:42] + "!"} {
		if verifyPKCE(bad, challenge) {
			t.Errorf("verifier %q accepted", bad)
		}
	}
	if !validChallenge(challenge) || validChallenge(challenge+"=") || validChallenge("plain") {
		t.Error("validChallenge")
	}
}
