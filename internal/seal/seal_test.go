package seal

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestBoxRoundTripAndAD(t *testing.T) {
	box, err := NewBox(DeriveKey([]byte(strings.Repeat("m", 32)), PurposeGrant), nil)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := box.Seal([]byte("clerk token"), []byte("grant-1"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("clerk token")) {
		t.Fatal("plaintext visible in ciphertext")
	}
	got, err := box.Open(sealed, []byte("grant-1"))
	if err != nil || string(got) != "clerk token" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := box.Open(sealed, []byte("grant-2")); !errors.Is(err, ErrOpen) {
		t.Fatalf("wrong AD must fail, got %v", err)
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := box.Open(sealed, []byte("grant-1")); !errors.Is(err, ErrOpen) {
		t.Fatalf("tampering must fail, got %v", err)
	}
	if _, err := box.Open([]byte("short"), nil); !errors.Is(err, ErrOpen) {
		t.Fatalf("short input must fail, got %v", err)
	}
}

func TestDeriveKeySeparatesPurposes(t *testing.T) {
	m := []byte(strings.Repeat("m", 32))
	if bytes.Equal(DeriveKey(m, PurposeGrant), DeriveKey(m, PurposeCookie)) {
		t.Fatal("purposes must give different keys")
	}
	if !bytes.Equal(DeriveKey(m, PurposeGrant), DeriveKey(m, PurposeGrant)) {
		t.Fatal("derivation must be deterministic")
	}
}

func TestSealWithSecret(t *testing.T) {
	s, err := SealWithSecret("previous-refresh-token", []byte("next"), []byte("g"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := OpenWithSecret("previous-refresh-token", s, []byte("g")); err != nil || string(got) != "next" {
		t.Fatalf("OpenWithSecret = %q %v", got, err)
	}
	if _, err := OpenWithSecret("another-token", s, []byte("g")); err == nil {
		t.Fatal("another secret must not open it")
	}
}

func TestSigner(t *testing.T) {
	s := NewSigner([]byte("k"))
	signed := s.Sign("value.with.dots")
	if v, ok := s.Verify(signed); !ok || v != "value.with.dots" {
		t.Fatalf("Verify = %q %v", v, ok)
	}
	for _, bad := range []string{"", "nodot", signed + "x", "other." + strings.Split(signed, ".")[3]} {
		if _, ok := s.Verify(bad); ok {
			t.Errorf("Verify(%q) accepted", bad)
		}
	}
	if bytes.Equal(s.MAC("ab", "c"), s.MAC("a", "bc")) {
		t.Fatal("MAC parts must be length-prefixed")
	}
}

func TestTokenAndHash(t *testing.T) {
	a, _ := Token(nil, 32)
	b, _ := Token(nil, 32)
	if a == b || len(a) != 43 {
		t.Fatalf("tokens %q %q", a, b)
	}
	if !EqualHash(a, Hash(a)) || EqualHash(b, Hash(a)) || EqualHash(a, nil) {
		t.Fatal("EqualHash")
	}
}
