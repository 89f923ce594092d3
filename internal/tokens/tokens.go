// Package tokens owns the formats of the tokens the proxy issues to MCP
// clients: the ES256 signing key set shared by all replicas through the
// store, access tokens as JWTs (RFC 9068 profile) and opaque refresh tokens.
//
// A refresh token is "<grant id>.<256 random bits>": the grant id lets the
// proxy find the grant (and tell a stale generation from a forgery) without
// an index, and only the token's SHA-256 hash is ever stored.
package tokens

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/seal"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
)

// AccessTokenType is the JWT typ header of proxy access tokens (RFC 9068 §2.1).
const AccessTokenType = "at+jwt"

// ErrInvalid covers every reason a token is not acceptable. Callers answer
// invalid_token without detail; the wrapped cause is for logs only.
var ErrInvalid = errors.New("tokens: invalid token")

// KeySet is the proxy's signing key set; the first key signs, all verify.
type KeySet struct {
	keys    []jose.JSONWebKey // private
	public  jose.JSONWebKeySet
	signer  jose.Signer
	byKID   map[string]*ecdsa.PublicKey
	signKID string
}

// LoadKeySet returns the key set shared through st, creating it on first use.
// Racing replicas converge on the same set (GetOrCreateKeySet). The private
// keys are sealed at rest with a key derived from the master secret.
func LoadKeySet(ctx context.Context, st store.KeySets, master []byte, random io.Reader) (*KeySet, error) {
	box, err := seal.NewBox(seal.DeriveKey(master, seal.PurposeKeySet), random)
	if err != nil {
		return nil, err
	}
	candidate, err := newKey(random)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal([]jose.JSONWebKey{candidate})
	if err != nil {
		return nil, err
	}
	sealed, err := box.Seal(raw, []byte("keyset"))
	if err != nil {
		return nil, err
	}
	stored, err := st.GetOrCreateKeySet(ctx, sealed)
	if err != nil {
		return nil, fmt.Errorf("tokens: load signing keys: %w", err)
	}
	plain, err := box.Open(stored, []byte("keyset"))
	if err != nil {
		return nil, errors.New("tokens: the stored signing keys cannot be opened: PROXY_SECRET differs from the one that created them")
	}
	var keys []jose.JSONWebKey
	if err := json.Unmarshal(plain, &keys); err != nil {
		return nil, fmt.Errorf("tokens: decode signing keys: %w", err)
	}
	return newKeySet(keys)
}

// NewEphemeralKeySet makes a fresh in-memory key set (tests, dev mode).
func NewEphemeralKeySet(random io.Reader) (*KeySet, error) {
	k, err := newKey(random)
	if err != nil {
		return nil, err
	}
	return newKeySet([]jose.JSONWebKey{k})
}

func newKey(random io.Reader) (jose.JSONWebKey, error) {
	if random == nil {
		random = rand.Reader
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), random)
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("tokens: generate key: %w", err)
	}
	kid, err := seal.Token(random, 12)
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	return jose.JSONWebKey{Key: priv, KeyID: kid, Algorithm: string(jose.ES256), Use: "sig"}, nil
}

func newKeySet(keys []jose.JSONWebKey) (*KeySet, error) {
	if len(keys) == 0 {
		return nil, errors.New("tokens: empty key set")
	}
	ks := &KeySet{keys: keys, byKID: map[string]*ecdsa.PublicKey{}, signKID: keys[0].KeyID}
	for _, k := range keys {
		priv, ok := k.Key.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("tokens: key %q is not an ECDSA private key", k.KeyID)
		}
		ks.byKID[k.KeyID] = &priv.PublicKey
		ks.public.Keys = append(ks.public.Keys, k.Public())
	}
	// Passing the JWK (not the raw key) makes go-jose put its kid in the header.
	opts := (&jose.SignerOptions{}).WithType(AccessTokenType)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: keys[0]}, opts)
	if err != nil {
		return nil, fmt.Errorf("tokens: signer: %w", err)
	}
	ks.signer = signer
	return ks, nil
}

// JWKS is the public half, served at /.well-known/jwks.json.
func (ks *KeySet) JWKS() jose.JSONWebKeySet { return ks.public }

// AccessClaims are the claims of a proxy access token.
type AccessClaims struct {
	Issuer    string `json:"iss"`
	Subject   string `json:"sub"`       // Clerk user id
	Audience  string `json:"aud"`       // the MCP resource
	ClientID  string `json:"client_id"` // the MCP client
	Scope     string `json:"scope"`
	ID        string `json:"jti"`
	GrantID   string `json:"gid"` // the grant behind the token; revoking it kills the token
	IssuedAt  int64  `json:"iat"`
	NotBefore int64  `json:"nbf"`
	Expiry    int64  `json:"exp"`
}

// Scopes splits Scope.
func (c AccessClaims) Scopes() []string { return strings.Fields(c.Scope) }

// ExpiresAt is Expiry as a time.
func (c AccessClaims) ExpiresAt() time.Time { return time.Unix(c.Expiry, 0) }

// Sign serializes claims as a signed JWT.
func (ks *KeySet) Sign(c AccessClaims) (string, error) {
	s, err := jwt.Signed(ks.signer).Claims(c).Serialize()
	if err != nil {
		return "", fmt.Errorf("tokens: sign: %w", err)
	}
	return s, nil
}

// Expectations are what a verified access token must say.
type Expectations struct {
	Issuer   string
	Audience string
	Now      time.Time
	Leeway   time.Duration
}

// Verify checks signature (ES256 by a key of this set), typ, iss, aud, exp and
// nbf, and returns the claims. Any failure is ErrInvalid wrapping the reason.
func (ks *KeySet) Verify(token string, want Expectations) (AccessClaims, error) {
	var c AccessClaims
	if strings.Count(token, ".") != 2 || len(token) > 8192 {
		return c, fmt.Errorf("%w: not a JWT", ErrInvalid)
	}
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return c, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if len(tok.Headers) != 1 {
		return c, fmt.Errorf("%w: multiple signatures", ErrInvalid)
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, AccessTokenType) {
		return c, fmt.Errorf("%w: typ %q", ErrInvalid, typ)
	}
	key, ok := ks.byKID[h.KeyID]
	if !ok {
		return c, fmt.Errorf("%w: unknown kid", ErrInvalid)
	}
	if err := tok.Claims(key, &c); err != nil {
		return c, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	now := want.Now.Unix()
	leeway := int64(want.Leeway / time.Second)
	switch {
	case c.Issuer != want.Issuer:
		return c, fmt.Errorf("%w: issuer", ErrInvalid)
	case c.Audience != want.Audience:
		return c, fmt.Errorf("%w: audience", ErrInvalid)
	case c.Expiry == 0 || now > c.Expiry+leeway:
		return c, fmt.Errorf("%w: expired", ErrInvalid)
	case c.NotBefore > now+leeway:
		return c, fmt.Errorf("%w: not yet valid", ErrInvalid)
	case c.Subject == "" || c.GrantID == "" || c.ClientID == "":
		return c, fmt.Errorf("%w: missing claims", ErrInvalid)
	}
	return c, nil
}

// NewRefreshToken returns a fresh refresh token for grant gid.
func NewRefreshToken(gid string, random io.Reader) (string, error) {
	secret, err := seal.Token(random, 32)
	if err != nil {
		return "", err
	}
	return gid + "." + secret, nil
}

// ParseRefreshToken returns the grant id a refresh token names. It checks the
// shape only; the token's hash decides whether it is valid.
func ParseRefreshToken(token string) (gid string, ok bool) {
	gid, secret, found := strings.Cut(token, ".")
	if !found || len(gid) < 16 || len(gid) > 64 || len(secret) < 43 || len(secret) > 64 || strings.Contains(secret, ".") {
		return "", false
	}
	if !isBase64URL(gid) || !isBase64URL(secret) {
		return "", false
	}
	return gid, true
}

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
