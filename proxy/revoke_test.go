package proxy

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/tokens"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
)

// TestRevoke: RFC 7009. Either token of a grant ends the whole grant (and
// Clerk's tokens at Clerk); another client's token, or an unknown one, gets
// 200 and changes nothing (§2.2).
func TestRevoke(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		which   string // "access" or "refresh"
		byOther bool
		hint    string
		ends    bool
	}{
		{"refresh token", "refresh", false, "", true},
		{"access token", "access", false, "access_token", true},
		{"access token with the other hint", "access", false, "refresh_token", true},
		{"another client's refresh token", "refresh", true, "", false},
		{"another client's access token", "access", true, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newAS(t)
			c := e.register(t, nil)
			access, refresh := e.login(t, c)
			by := c
			if tc.byOther {
				by = e.register(t, nil)
			}
			token := map[string]string{"access": access, "refresh": refresh}[tc.which]
			form := url.Values{"token": {token}}
			if tc.hint != "" {
				form.Set("token_type_hint", tc.hint)
			}
			revokedAtClerk := e.clerk.Stats()["/oauth/token/revoke"]
			if resp, out := e.post(t, "/revoke", by, form); resp.StatusCode != http.StatusOK || len(out) != 0 {
				t.Fatalf("revoke: %d %v", resp.StatusCode, out)
			}
			rs := e.introspector(t)
			if e.active(t, rs, access) == tc.ends {
				t.Fatalf("access token active after revocation: %v, want %v", !tc.ends, !tc.ends)
			}
			status, _ := e.refresh(t, c, refresh, nil)
			if (status == http.StatusOK) == tc.ends {
				t.Fatalf("refresh after revocation: %d", status)
			}
			if n := e.clerk.Stats()["/oauth/token/revoke"] - revokedAtClerk; (n == 2) != tc.ends {
				t.Fatalf("%d Clerk tokens revoked at Clerk", n)
			}
		})
	}
}

// TestRevokeRefusals: a request that is not a revocation is an error; an
// unknown token is not (RFC 7009 §2.2).
func TestRevokeRefusals(t *testing.T) {
	t.Parallel()
	e := newAS(t)
	c := e.register(t, nil)
	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
		code   string
	}{
		{"no token", url.Values{}, http.StatusBadRequest, "invalid_request"},
		{"unknown hint", url.Values{"token": {"x"}, "token_type_hint": {"id_token"}}, http.StatusBadRequest, "unsupported_token_type"},
		{"unknown token", url.Values{"token": {"x"}}, http.StatusOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, out := e.post(t, "/revoke", c, tc.form)
			if tc.code == "" {
				if resp.StatusCode != tc.status {
					t.Fatalf("%d %v", resp.StatusCode, out)
				}
				return
			}
			wantOAuthError(t, resp, out, tc.status, tc.code)
		})
	}
	resp, out := e.post(t, "/revoke", asClient{ID: "mcp_nobody"}, url.Values{"token": {"x"}})
	wantOAuthError(t, resp, out, http.StatusUnauthorized, "invalid_client")
}

// TestIntrospect: RFC 7662 for confidential clients. An access token's
// answer carries its claims; a public client may not ask.
func TestIntrospect(t *testing.T) {
	t.Parallel()
	e := newAS(t)
	c := e.register(t, nil)
	access, _ := e.login(t, c)
	resp, out := e.post(t, "/introspect", e.introspector(t), url.Values{"token": {access}})
	if resp.StatusCode != http.StatusOK || out["active"] != true || out["client_id"] != c.ID || out["sub"] != e.clerk.Users()[0].ID ||
		out["aud"] != e.url+"/mcp" || out["iss"] != e.url || out["token_type"] != "Bearer" || out["scope"] != "openid profile email" {
		t.Fatalf("%d %v", resp.StatusCode, out)
	}
	resp, out = e.post(t, "/introspect", c, url.Values{"token": {access}})
	wantOAuthError(t, resp, out, http.StatusUnauthorized, "invalid_client")
	resp, out = e.post(t, "/introspect", e.introspector(t), url.Values{})
	wantOAuthError(t, resp, out, http.StatusBadRequest, "invalid_request")
	e.clock.Advance(time.Hour + time.Minute)
	if e.active(t, e.introspector(t), access) {
		t.Fatal("an expired access token introspects as active")
	}
}

// TestIntrospectRefreshTokenOnlyByItsClient: another client (any
// self-registered confidential client) learns nothing about a refresh token
// that is not its own; its owner does, and access tokens stay introspectable
// by any authenticated resource server.
func TestIntrospectRefreshTokenOnlyByItsClient(t *testing.T) {
	t.Parallel()
	e := newAS(t)
	owner := e.register(t, map[string]any{"token_endpoint_auth_method": authBasic})
	other := e.register(t, map[string]any{"token_endpoint_auth_method": authPost})
	access, refresh := e.login(t, owner)
	for _, tc := range []struct {
		name   string
		token  string
		by     asClient
		active bool
	}{
		{"refresh token, another client", refresh, other, false},
		{"refresh token, its own client", refresh, owner, true},
		{"access token, another client", access, other, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, out := e.post(t, "/introspect", tc.by, url.Values{"token": {tc.token}})
			if resp.StatusCode != http.StatusOK || out["active"] != tc.active {
				t.Fatalf("%d %v, want active=%v", resp.StatusCode, out, tc.active)
			}
			if !tc.active && len(out) != 1 {
				t.Fatalf("an inactive answer says more than active: %v", out)
			}
		})
	}
}

// TestTokensDieWithTheirClient: once a client's registration is gone (RFC
// 7592 delete, idle expiry, a lost store), its tokens introspect as inactive,
// though the grant record still sits in the store.
func TestTokensDieWithTheirClient(t *testing.T) {
	t.Parallel()
	e := newAS(t)
	c := e.register(t, nil)
	rs := e.introspector(t)
	access, refresh := e.login(t, c)
	if !e.active(t, rs, access) {
		t.Fatal("a live client's access token must introspect as active (else this test proves nothing)")
	}
	if err := e.st.DeleteClient(context.Background(), c.ID); err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"access": access, "refresh": refresh} {
		if e.active(t, rs, tok) {
			t.Errorf("%s token of a deleted client is active", name)
		}
	}
}

// deleteFails is the real store whose grant deletions fail, as when Redis
// goes away between reading a grant and deleting it.
type deleteFails struct{ store.Store }

func (deleteFails) DeleteGrant(context.Context, string) error {
	return errors.New("connection refused")
}

// TestRevokeStoreFailure: when the grant could not be deleted the answer is
// 503, which RFC 7009 §2.2 tells the client to read as "the token still
// exists, retry" — never the 200 that would say the grant had ended.
func TestRevokeStoreFailure(t *testing.T) {
	t.Parallel()
	var real store.Store
	e := newAS(t, func(_ *Config, d *Deps) { real, d.Store = d.Store, deleteFails{d.Store} })
	c := e.register(t, nil)
	_, refresh := e.login(t, c)
	resp, out := e.post(t, "/revoke", c, url.Values{"token": {refresh}})
	if resp.StatusCode != http.StatusServiceUnavailable || out["error"] != "temporarily_unavailable" {
		t.Fatalf("revoke with the deletion failing: %d %v, want 503 temporarily_unavailable", resp.StatusCode, out)
	}
	gid, _ := tokens.ParseRefreshToken(refresh)
	if g, err := real.GetGrant(context.Background(), gid); err != nil || !g.Active {
		t.Fatalf("the grant after the failed revocation: %+v %v, want it still there", g, err)
	}
}
