package tokens

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testclock"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store/memstore"
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

// losableStore is a key-set store whose contents can be lost, as Redis loses
// them on a flush or a failover to an empty replica.
type losableStore struct {
	mu sync.Mutex
	st *memstore.Store
}

func (l *losableStore) cur() *memstore.Store { l.mu.Lock(); defer l.mu.Unlock(); return l.st }
func (l *losableStore) lose() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.st = memstore.New(memstore.Options{})
}
func (l *losableStore) GetOrCreateKeySet(ctx context.Context, c []byte) ([]byte, error) {
	return l.cur().GetOrCreateKeySet(ctx, c)
}
func (l *losableStore) SwapKeySet(ctx context.Context, old, next []byte) ([]byte, bool, error) {
	return l.cur().SwapKeySet(ctx, old, next)
}

// TestKeySetsConvergeAfterTheStoreLosesThem: replicas share one set; when the
// store loses it and a replica started afterwards creates another, the sets
// converge on their union, so tokens signed by either replica before or after
// verify on both.
func TestKeySetsConvergeAfterTheStoreLosesThem(t *testing.T) {
	ctx := context.Background()
	st := &losableStore{st: memstore.New(memstore.Options{})}
	clock := testclock.New(time.Unix(1_800_000_000, 0))
	secret := []byte("0123456789abcdef0123456789abcdef")
	load := func() *KeySet {
		t.Helper()
		ks, err := LoadKeySet(ctx, st, secret, LoadOptions{Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		return ks
	}
	want := Expectations{Issuer: "https://as", Audience: "https://as/mcp", Now: clock.Now(), Leeway: time.Hour}
	sign := func(ks *KeySet) string {
		t.Helper()
		tok, err := ks.Sign(claims(clock.Now()))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	verifies := func(ks *KeySet, tok string) bool { _, err := ks.Verify(tok, want); return err == nil }

	a, b := load(), load()
	if ta := sign(a); !verifies(b, ta) {
		t.Fatal("two replicas loading from one store must share the set")
	}

	st.lose()
	c := load() // started after the loss: a set of its own
	beforeA := sign(a)
	if verifies(c, beforeA) {
		t.Fatal("before any re-sync the new replica cannot know the old key (else this test proves nothing)")
	}

	clock.Advance(syncEvery + time.Second)
	afterA := sign(a) // a re-syncs before signing: finds c's set, stores the union
	for name, ks := range map[string]*KeySet{"a": a, "b": b, "c": c} {
		for tokName, tok := range map[string]string{"a before": beforeA, "a after": afterA, "c": sign(c)} {
			if !verifies(ks, tok) {
				t.Errorf("replica %s refuses the token signed by %s the re-sync", name, tokName)
			}
		}
	}
	if got := len(a.JWKS().Keys); got != 2 {
		t.Errorf("a publishes %d keys, want the union of 2", got)
	}
	if a.state().signKID != c.state().signKID {
		t.Error("after converging, every replica must sign with the stored set's first key")
	}
}

// TestUnknownKIDResyncIsPaced: tokens with unknown kids (garbage, or keys of
// another deployment) cannot make a replica read the store more often than
// syncUnknownKID.
func TestUnknownKIDResyncIsPaced(t *testing.T) {
	ctx := context.Background()
	counted := &countingKeySets{losableStore: losableStore{st: memstore.New(memstore.Options{})}}
	clock := testclock.New(time.Unix(1_800_000_000, 0))
	ks, err := LoadKeySet(ctx, counted, []byte("0123456789abcdef0123456789abcdef"), LoadOptions{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	foreign := fixedKeySet(t)
	tok, _ := foreign.Sign(claims(clock.Now()))
	want := Expectations{Issuer: "https://as", Audience: "https://as/mcp", Now: clock.Now()}
	reads := counted.reads()
	for range 100 {
		if _, err := ks.Verify(tok, want); !errors.Is(err, ErrInvalid) {
			t.Fatalf("a foreign key's token verified: %v", err)
		}
	}
	if got := counted.reads() - reads; got != 0 {
		t.Fatalf("100 unknown-kid tokens within the pace read the store %d times, want 0", got)
	}
	clock.Advance(syncUnknownKID)
	for range 100 {
		_, _ = ks.Verify(tok, want)
	}
	if got := counted.reads() - reads; got != 1 {
		t.Fatalf("100 unknown-kid tokens after the pace read the store %d times, want 1", got)
	}
}

type countingKeySets struct {
	losableStore
	mu sync.Mutex
	n  int
}

func (c *countingKeySets) GetOrCreateKeySet(ctx context.Context, cand []byte) ([]byte, error) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return c.losableStore.GetOrCreateKeySet(ctx, cand)
}
func (c *countingKeySets) reads() int { c.mu.Lock(); defer c.mu.Unlock(); return c.n }
