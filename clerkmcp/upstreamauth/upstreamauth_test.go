package upstreamauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/clerkmcp/upstreamauth"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/tokens"
)

// TestVerify signs assertions with a real proxy key set served as a JWKS and
// checks what the helper accepts: the genuine one, and nothing forged,
// expired, for another audience or issuer, or of another type.
func TestVerify(t *testing.T) {
	ks, err := tokens.NewEphemeralKeySet(nil)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := tokens.NewEphemeralKeySet(nil) // an attacker's keys
	var fetches atomic.Int64
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		_ = json.NewEncoder(w).Encode(ks.JWKS())
	}))
	t.Cleanup(jwks.Close)
	now := time.Unix(1_800_000_000, 0)
	const iss, aud = "https://mcp.example.com", "http://127.0.0.1:3000/mcp"
	claims := func(mod func(*upstreamauth.Claims)) upstreamauth.Claims {
		c := upstreamauth.Claims{Issuer: iss, Subject: "user_1", Audience: aud, Email: "a@example.com", ClientID: "c1", Scope: "openid email",
			ID: "j1", IssuedAt: now.Unix(), NotBefore: now.Unix(), Expiry: now.Add(60 * time.Second).Unix()}
		if mod != nil {
			mod(&c)
		}
		return c
	}
	sign := func(ks *tokens.KeySet, typ string, c upstreamauth.Claims) string {
		tok, err := ks.SignJWT(typ, c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	// A forgery by another key that claims the genuine key's kid.
	genuine := sign(ks, upstreamauth.Type, claims(nil))
	forged := sign(other, upstreamauth.Type, claims(nil))
	forgedSameKID := genuineHeader(genuine) + "." + strings.Split(forged, ".")[1] + "." + strings.Split(forged, ".")[2]
	accessToken, _ := ks.Sign(tokens.AccessClaims{Issuer: iss, Subject: "user_1", Audience: aud, ClientID: "c1", GrantID: "g", ID: "j",
		IssuedAt: now.Unix(), NotBefore: now.Unix(), Expiry: now.Add(time.Minute).Unix()})

	for _, tc := range []struct {
		name  string
		token string
		at    time.Time
		ok    bool
	}{
		{"genuine", genuine, now, true},
		{"genuine near expiry", genuine, now.Add(59 * time.Second), true},
		{"expired", genuine, now.Add(2 * time.Minute), false},
		{"not yet valid", genuine, now.Add(-time.Minute), false},
		{"forged by another key", forged, now, false},
		{"forged with the genuine kid", forgedSameKID, now, false},
		{"wrong audience", sign(ks, upstreamauth.Type, claims(func(c *upstreamauth.Claims) { c.Audience = "http://other/mcp" })), now, false},
		{"wrong issuer", sign(ks, upstreamauth.Type, claims(func(c *upstreamauth.Claims) { c.Issuer = "https://evil.example" })), now, false},
		{"too long a lifetime", sign(ks, upstreamauth.Type, claims(func(c *upstreamauth.Claims) { c.Expiry = now.Add(time.Hour).Unix() })), now, false},
		{"no subject", sign(ks, upstreamauth.Type, claims(func(c *upstreamauth.Claims) { c.Subject = "" })), now, false},
		{"an access token, not an assertion", accessToken, now, false},
		{"garbage", "not.a.jwt", now, false},
		{"empty", "", now, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := upstreamauth.New(upstreamauth.Config{Issuer: iss, Audience: aud, JWKSURL: jwks.URL, Now: func() time.Time { return tc.at }})
			c, err := v.Verify(context.Background(), tc.token)
			if tc.ok && (err != nil || c.Subject != "user_1" || c.Email != "a@example.com" || strings.Join(c.Scopes(), ",") != "openid,email") {
				t.Fatalf("refused or wrong claims: %+v %v", c, err)
			}
			if !tc.ok && !errors.Is(err, upstreamauth.ErrInvalid) {
				t.Fatalf("accepted (err %v)", err)
			}
		})
	}

	// Unknown kids do not turn into a JWKS fetch each.
	v := upstreamauth.New(upstreamauth.Config{Issuer: iss, Audience: aud, JWKSURL: jwks.URL, Now: func() time.Time { return now }})
	before := fetches.Load()
	for range 20 {
		_, _ = v.Verify(context.Background(), forged)
	}
	if n := fetches.Load() - before; n != 1 {
		t.Errorf("%d JWKS fetches for 20 unknown-kid assertions, want 1", n)
	}
	req := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	req.Header.Set(upstreamauth.Header, genuine)
	if c, err := v.VerifyRequest(req); err != nil || c.Subject != "user_1" {
		t.Errorf("VerifyRequest: %v", err)
	}
}

func genuineHeader(tok string) string { return strings.Split(tok, ".")[0] }
