// Package seal owns the proxy's symmetric cryptography: keys derived from
// PROXY_SECRET with HKDF, AES-256-GCM sealing with associated data (so a
// ciphertext moved to another record fails to open), HMAC signing of small
// values (cookies, CSRF tokens) and the hashing of tokens before storage.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// ErrOpen is returned for any ciphertext that fails to authenticate. It
// deliberately says nothing more.
var ErrOpen = errors.New("seal: message authentication failed")

// Purposes for derived keys. A key derived for one purpose is never used for
// another.
const (
	PurposeGrant   = "clerk-mcp-proxy grant tokens v1"
	PurposeKeySet  = "clerk-mcp-proxy signing keys v1"
	PurposeCookie  = "clerk-mcp-proxy cookies v1"
	PurposeRefresh = "clerk-mcp-proxy refresh chain v1"
	PurposeSession = "clerk-mcp-proxy mcp sessions v1"
)

// DeriveKey derives a 32-byte key for purpose from the master secret.
func DeriveKey(master []byte, purpose string) []byte {
	k, err := hkdf.Key(sha256.New, master, nil, purpose, 32)
	if err != nil {
		// Only possible for absurd lengths; 32 bytes of SHA-256 output cannot fail.
		panic(fmt.Sprintf("seal: hkdf: %v", err))
	}
	return k
}

// Box seals and opens with one AES-256-GCM key.
type Box struct {
	aead cipher.AEAD
	rand io.Reader
}

// NewBox returns a Box for a 32-byte key. random may be nil (crypto/rand).
func NewBox(key []byte, random io.Reader) (*Box, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	if random == nil {
		random = rand.Reader
	}
	return &Box{aead: aead, rand: random}, nil
}

// Seal encrypts plaintext bound to ad; the output is nonce || ciphertext.
func (b *Box) Seal(plaintext, ad []byte) ([]byte, error) {
	nonce := make([]byte, b.aead.NonceSize(), b.aead.NonceSize()+len(plaintext)+b.aead.Overhead())
	if _, err := io.ReadFull(b.rand, nonce); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	return b.aead.Seal(nonce, nonce, plaintext, ad), nil
}

// Open reverses Seal; any tampering, a wrong key or a wrong ad gives ErrOpen.
func (b *Box) Open(sealed, ad []byte) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < n+b.aead.Overhead() {
		return nil, ErrOpen
	}
	out, err := b.aead.Open(nil, sealed[:n], sealed[n:], ad)
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}

// SealWithSecret seals plaintext under a key derived from secret (a token the
// store never sees), so only the holder of secret can open it.
func SealWithSecret(secret string, plaintext, ad []byte, random io.Reader) ([]byte, error) {
	box, err := NewBox(DeriveKey([]byte(secret), PurposeRefresh), random)
	if err != nil {
		return nil, err
	}
	return box.Seal(plaintext, ad)
}

// OpenWithSecret reverses SealWithSecret.
func OpenWithSecret(secret string, sealed, ad []byte) ([]byte, error) {
	box, err := NewBox(DeriveKey([]byte(secret), PurposeRefresh), nil)
	if err != nil {
		return nil, err
	}
	return box.Open(sealed, ad)
}

// Hash is the SHA-256 of a token: what the store keeps instead of it.
func Hash(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// HashHex is Hash as lowercase hex, for use as a store id.
func HashHex(token string) string { return hex.EncodeToString(Hash(token)) }

// Equal compares two byte strings in constant time.
func Equal(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// EqualHash reports whether token hashes to h, in constant time.
func EqualHash(token string, h []byte) bool { return len(h) > 0 && Equal(Hash(token), h) }

// Token returns a URL-safe random string of n bytes of entropy (n >= 32 gives
// the 256 bits required for refresh tokens and secrets).
func Token(random io.Reader, n int) (string, error) {
	if random == nil {
		random = rand.Reader
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(random, b); err != nil {
		return "", fmt.Errorf("seal: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Signer MACs small values with HMAC-SHA256.
type Signer struct{ key []byte }

// NewSigner returns a Signer with key.
func NewSigner(key []byte) *Signer { return &Signer{key: key} }

// MAC returns the HMAC of the parts, each length-prefixed so that ("ab","c")
// and ("a","bc") differ.
func (s *Signer) MAC(parts ...string) []byte {
	m := hmac.New(sha256.New, s.key)
	for _, p := range parts {
		fmt.Fprintf(m, "%d:", len(p))
		io.WriteString(m, p)
	}
	return m.Sum(nil)
}

// Sign returns value.signature, URL-safe.
func (s *Signer) Sign(value string) string {
	return value + "." + base64.RawURLEncoding.EncodeToString(s.MAC(value))
}

// Verify checks a Sign output and returns the value.
func (s *Signer) Verify(signed string) (string, bool) {
	i := lastDot(signed)
	if i < 0 {
		return "", false
	}
	value, sig := signed[:i], signed[i+1:]
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return "", false
	}
	return value, hmac.Equal(got, s.MAC(value))
}

func lastDot(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '.' {
			return i
		}
	}
	return -1
}
