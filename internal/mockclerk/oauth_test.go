package mockclerk_test

// Tests of the token family (oauth.go): client authentication, token errors,
// codes, refresh, introspection, userinfo, revocation and token formats.
// Helpers are in mockclerk_test.go.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mockclerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testclock"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

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
	// Opaque: the revocation cases need revocable access tokens.
	r := start(t, func(c *mockclerk.Config) { c.Now = clk.Now; c.AccessTokenTTL = time.Hour; c.TokenFormat = "opaque" })
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
	// Opaque: the revoked-token case needs a revocable access token.
	r := start(t, func(c *mockclerk.Config) { c.Now = clk.Now; c.AccessTokenTTL = time.Hour; c.TokenFormat = "opaque" })
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
	opaque := start(t, func(c *mockclerk.Config) { c.TokenFormat = "opaque" })
	jwt := start(t, nil) // the default, as new Clerk applications
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
	for _, format := range []string{"opaque"} {
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

// TestOrganizationPicker: with user:org:read the sign-in page offers the
// organizations (a plain radio group; its default is the user's own, as
// before the picker existed) and the personal account; the choice is the
// org_id of introspection and userinfo. A user cannot pick an organization
// they are not a member of.
func TestOrganizationPicker(t *testing.T) {
	t.Parallel()
	r := start(t, nil)
	users := r.Users()
	alice, bob, carol := users[0], users[1], users[2]
	withOrgs := url.Values{"scope": {"openid email user:org:read"}, "code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())},
		"code_challenge_method": {"S256"}}
	page, _ := signInPost(t, authorizeURL(r, withOrgs), alice.ID, nil)
	for _, want := range []string{`name="org_id" value="" checked`, `name="org_id" value="` + alice.Org.ID + `"`, `name="org_id" value="none"`} {
		if !strings.Contains(string(page.Body), want) {
			t.Errorf("the picker lacks %s", want)
		}
	}
	if page, _ := signInPost(t, authorizeURL(r, nil), alice.ID, nil); strings.Contains(string(page.Body), `name="org_id"`) {
		t.Error("a picker without user:org:read")
	}
	for _, tc := range []struct {
		name    string
		user    mockclerk.User
		choice  string
		status  int
		wantOrg string
	}{
		{"default: the member's own org", carol, "", http.StatusFound, carol.Org.ID},
		{"member picks the org", carol, carol.Org.ID, http.StatusFound, carol.Org.ID},
		{"member picks the personal account", carol, "none", http.StatusFound, ""},
		{"user without an org, default", bob, "", http.StatusFound, ""},
		{"user picks an org they are not in", bob, alice.Org.ID, http.StatusBadRequest, ""},
		{"unknown org", alice, "org_nope", http.StatusBadRequest, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := oauthConfig(r, "openid", "email", "user:org:read")
			verifier := oauth2.GenerateVerifier()
			_, rep := signInPost(t, conf.AuthCodeURL(goodState, oauth2.S256ChallengeOption(verifier)), tc.user.ID, url.Values{"org_id": {tc.choice}})
			if rep.Status != tc.status {
				t.Fatalf("sign-in: %d, want %d", rep.Status, tc.status)
			}
			if tc.status != http.StatusFound {
				return
			}
			loc, _ := url.Parse(rep.Header.Get("Location"))
			tok, err := conf.Exchange(context.Background(), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatal(err)
			}
			intro := postForm(t, r.URL+"/oauth/token_info", url.Values{"token": {tok.AccessToken}}, appBasic)
			req, _ := http.NewRequest(http.MethodGet, r.URL+"/oauth/userinfo", nil)
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			info := do(t, noRedirect, req)
			gotIntro, _ := intro.JSON["org_id"].(string)
			gotInfo, _ := info.JSON["org_id"].(string)
			if gotIntro != tc.wantOrg || gotInfo != tc.wantOrg {
				t.Fatalf("org_id: introspection %q, userinfo %q, want %q", gotIntro, gotInfo, tc.wantOrg)
			}
		})
	}
}
