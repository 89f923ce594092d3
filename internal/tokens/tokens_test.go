package tokens

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

func claims(now time.Time) AccessClaims {
	return AccessClaims{Issuer: "https://as", Subject: "user_1", Audience: "https://as/mcp", ClientID: "c1", Scope: "openid",
		ID: "j", GrantID: "g1234567890123456", IssuedAt: now.Unix(), NotBefore: now.Unix(), Expiry: now.Add(time.Minute).Unix()}
}

func TestSignVerify(t *testing.T) {
	ks, err := NewEphemeralKeySet(nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	tok, err := ks.Sign(claims(now))
	if err != nil {
		t.Fatal(err)
	}
	want := Expectations{Issuer: "https://as", Audience: "https://as/mcp", Now: now, Leeway: 5 * time.Second}
	got, err := ks.Verify(tok, want)
	if err != nil || got.Subject != "user_1" || got.GrantID == "" {
		t.Fatalf("Verify = %+v, %v", got, err)
	}
	if len(ks.JWKS().Keys) != 1 || !ks.JWKS().Keys[0].IsPublic() {
		t.Fatal("JWKS must hold one public key")
	}
	cases := map[string]Expectations{
		"issuer":   {Issuer: "https://other", Audience: want.Audience, Now: now},
		"audience": {Issuer: want.Issuer, Audience: "https://as/other", Now: now},
		"expired":  {Issuer: want.Issuer, Audience: want.Audience, Now: now.Add(2 * time.Minute)},
		"nbf":      {Issuer: want.Issuer, Audience: want.Audience, Now: now.Add(-time.Minute)},
	}
	for name, exp := range cases {
		if _, err := ks.Verify(tok, exp); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: want ErrInvalid, got %v", name, err)
		}
	}
	other, _ := NewEphemeralKeySet(nil)
	if _, err := other.Verify(tok, want); !errors.Is(err, ErrInvalid) {
		t.Errorf("another key set must refuse: %v", err)
	}
	parts := strings.Split(tok, ".")
	for _, bad := range []string{"", "a.b", parts[0] + "." + parts[1] + ".AAAA", "x.y.z", parts[0] + ".e30." + parts[2]} {
		if _, err := ks.Verify(bad, want); !errors.Is(err, ErrInvalid) {
			t.Errorf("Verify(%q) = %v", bad, err)
		}
	}
}

func TestRefreshTokenShape(t *testing.T) {
	rt, err := NewRefreshToken("abcdefghijklmnopqrstuv", nil)
	if err != nil {
		t.Fatal(err)
	}
	gid, ok := ParseRefreshToken(rt)
	if !ok || gid != "abcdefghijklmnopqrstuv" {
		t.Fatalf("ParseRefreshToken(%q) = %q %v", rt, gid, ok)
	}
	for _, bad := range []string{"", "nodot", "short.x", "abcdefghijklmnopqrstuv." + strings.Repeat("a", 10), "a.b.c", "abcdefghijklmnop!rstuv." + strings.Repeat("a", 43)} {
		if _, ok := ParseRefreshToken(bad); ok {
			t.Errorf("ParseRefreshToken(%q) accepted", bad)
		}
	}
}

// fixedKeySet is the same key set in every process: fuzz workers are separate
// processes, and a seed token signed by the coordinator's key must verify in
// them too, or the fuzzer never explores mutations of a valid token.
func fixedKeySet(t testing.TB) *KeySet {
	t.Helper()
	d := make([]byte, 32)
	d[31] = 7
	priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := newKeySet([]jose.JSONWebKey{{Key: priv, KeyID: "fuzz-key", Algorithm: string(jose.ES256), Use: "sig"}})
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func FuzzVerify(f *testing.F) {
	ks := fixedKeySet(f)
	now := time.Unix(1_800_000_000, 0)
	tok, err := ks.Sign(claims(now))
	if err != nil {
		f.Fatal(err)
	}
	if _, err := ks.Verify(tok, Expectations{Issuer: "https://as", Audience: "https://as/mcp", Now: now}); err != nil {
		f.Fatalf("the seed token does not verify: %v", err)
	}
	f.Add(tok)
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ks.Verify(s, Expectations{Issuer: "https://as", Audience: "https://as/mcp", Now: now})
		// Only the signed token may pass; an accepted variant (say, other
		// base64 padding bits) must carry exactly the signed claims.
		if err == nil && c != claims(now) {
			t.Fatalf("accepted forged token %q with claims %+v", s, c)
		}
		_, _ = ParseRefreshToken(s)
	})
}
