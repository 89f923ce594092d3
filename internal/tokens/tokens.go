// Package tokens owns the formats of the tokens the proxy issues to MCP
// clients: the ES256 signing key set shared by all replicas through the
// store, access tokens as JWTs (RFC 9068 profile) and opaque refresh tokens.
//
// A refresh token is "<grant id>.<256 random bits>": the grant id lets the
// proxy find the grant (and tell a stale generation from a forgery) without
// an index, and only the token's SHA-256 hash is ever stored.
package tokens

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
//
// A set loaded from the store stays in step with it: the store can lose the
// set (a Redis flush or a failover to an empty replica) while replicas keep
// running, and a replica started afterwards would then sign with keys the
// others do not know. So the set re-syncs (re-publishing its keys when the
// store lost them, merging when another replica published different ones)
// at most every syncEvery when it signs, and every syncUnknownKID when it
// meets an unknown kid.
type KeySet struct {
	cur  atomic.Pointer[keyState]
	sync *keySync // nil for an ephemeral set
}

// keyState is one immutable generation of the set.
type keyState struct {
	keys    []jose.JSONWebKey // private
	public  jose.JSONWebKeySet
	signer  jose.Signer
	byKID   map[string]*ecdsa.PublicKey
	signKID string
}

// Sync limits: a set re-checks the store at most every syncEvery when
// signing, and at most every syncUnknownKID for tokens with an unknown kid
// (so garbage tokens cannot turn into Redis load); it keeps maxKeys keys.
const (
	syncEvery      = 5 * time.Second
	syncUnknownKID = 2 * time.Second
	syncTimeout    = 3 * time.Second
	maxKeys        = 8
)

// keySync keeps a KeySet in step with the store.
type keySync struct {
	st     store.KeySets
	box    *seal.Box
	log    func(msg string, args ...any)
	now    func() time.Time
	mu     sync.Mutex
	raw    []byte    // the stored value last seen
	synced time.Time // when the store was last read
}

func (ks *KeySet) state() *keyState { return ks.cur.Load() }

// LoadOptions are LoadKeySet's optional collaborators.
type LoadOptions struct {
	Random io.Reader        // default crypto/rand
	Logger *slog.Logger     // hears of re-syncs with the store
	Now    func() time.Time // paces the re-syncs; default time.Now
}

// LoadKeySet returns the key set shared through st, creating it on first use.
// Racing replicas converge on the same set (GetOrCreateKeySet). The private
// keys are sealed at rest with a key derived from the master secret.
func LoadKeySet(ctx context.Context, st store.KeySets, master []byte, o LoadOptions) (*KeySet, error) {
	box, err := seal.NewBox(seal.DeriveKey(master, seal.PurposeKeySet), o.Random)
	if err != nil {
		return nil, err
	}
	candidate, err := newKey(o.Random)
	if err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	ks := &KeySet{sync: &keySync{st: st, box: box, log: o.Logger.Warn, now: o.Now}}
	ks.sync.mu.Lock()
	defer ks.sync.mu.Unlock()
	if err := ks.adopt(ctx, []jose.JSONWebKey{candidate}, nil); err != nil {
		return nil, err
	}
	return ks, nil
}

// syncIfOlder re-syncs when the store was last read more than age ago.
// Errors are logged, not returned: the keys in hand still work, and a later
// call tries again. A sync already under way is not waited for: requests
// must not queue behind Redis I/O, and the keys in hand serve meanwhile.
func (ks *KeySet) syncIfOlder(age time.Duration) {
	if ks.sync == nil || !ks.sync.mu.TryLock() {
		return
	}
	defer ks.sync.mu.Unlock()
	if ks.sync.now().Sub(ks.sync.synced) < age {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), syncTimeout)
	defer cancel()
	keys := ks.state().keys
	if err := ks.adopt(ctx, keys, keys); err != nil {
		ks.sync.log("signing keys: could not sync with the store; using the keys in hand", "err", err)
	}
}

// adopt makes the stored set current, first storing offer if the store has
// none. mine are the keys this replica has signed with: when the stored set
// lacks some of them (the store lost them and another replica stored its
// own) it stores the union, so that tokens signed by any replica verify on
// all of them; the stored set's first key signs. Callers hold ks.sync.mu.
func (ks *KeySet) adopt(ctx context.Context, offer, mine []jose.JSONWebKey) error {
	sy := ks.sync
	sy.synced = sy.now()
	for range 5 {
		sealed, err := sy.sealKeys(offer)
		if err != nil {
			return err
		}
		raw, err := sy.st.GetOrCreateKeySet(ctx, sealed)
		if err != nil {
			return fmt.Errorf("tokens: load signing keys: %w", err)
		}
		if bytes.Equal(raw, sy.raw) {
			return nil
		}
		stored, err := sy.openKeys(raw)
		if err != nil {
			return err
		}
		merged, missing := union(stored, mine)
		if !missing {
			st, err := newKeyState(stored)
			if err != nil {
				return err
			}
			ks.cur.Store(st)
			sy.raw = raw
			return nil
		}
		next, err := sy.sealKeys(merged)
		if err != nil {
			return err
		}
		_, swapped, err := sy.st.SwapKeySet(ctx, raw, next)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("tokens: merge signing keys: %w", err)
		}
		if swapped {
			sy.log("signing keys: the store had lost this replica's keys; stored the union of both sets", "keys", len(merged))
		}
		// Swapped or not (another replica changed the set meanwhile), read
		// the store again: the next round adopts or merges what is there.
	}
	return errors.New("tokens: the signing keys in the store keep changing")
}

// union is stored followed by the keys of mine it lacks (stored's first key
// keeps signing), capped at maxKeys; missing says whether any were added.
func union(stored, mine []jose.JSONWebKey) (out []jose.JSONWebKey, missing bool) {
	out = append(out, stored...)
	for _, k := range mine {
		if !slices.ContainsFunc(out, func(o jose.JSONWebKey) bool { return o.KeyID == k.KeyID }) {
			out, missing = append(out, k), true
		}
	}
	if len(out) > maxKeys {
		out = append(out[:1], out[len(out)-maxKeys+1:]...)
	}
	return out, missing
}

func (sy *keySync) sealKeys(keys []jose.JSONWebKey) ([]byte, error) {
	raw, err := json.Marshal(keys)
	if err != nil {
		return nil, err
	}
	return sy.box.Seal(raw, []byte("keyset"))
}

func (sy *keySync) openKeys(sealed []byte) ([]jose.JSONWebKey, error) {
	plain, err := sy.box.Open(sealed, []byte("keyset"))
	if err != nil {
		return nil, errors.New("tokens: the stored signing keys cannot be opened: PROXY_SECRET differs from the one that created them")
	}
	var keys []jose.JSONWebKey
	if err := json.Unmarshal(plain, &keys); err != nil {
		return nil, fmt.Errorf("tokens: decode signing keys: %w", err)
	}
	return keys, nil
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
	st, err := newKeyState(keys)
	if err != nil {
		return nil, err
	}
	ks := &KeySet{}
	ks.cur.Store(st)
	return ks, nil
}

func newKeyState(keys []jose.JSONWebKey) (*keyState, error) {
	if len(keys) == 0 {
		return nil, errors.New("tokens: empty key set")
	}
	ks := &keyState{keys: keys, byKID: map[string]*ecdsa.PublicKey{}, signKID: keys[0].KeyID}
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
func (ks *KeySet) JWKS() jose.JSONWebKeySet { return ks.state().public }

// AccessClaims are the claims of a proxy access token.
type AccessClaims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`       // Clerk user id
	Audience string `json:"aud"`       // the MCP resource
	ClientID string `json:"client_id"` // the MCP client
	Scope    string `json:"scope"`
	ID       string `json:"jti"`
	GrantID  string `json:"gid"` // the grant behind the token; revoking it kills the token
	// RefreshGen is the generation of the refresh token issued together with
	// this access token: its first use at /mcp tells the grant that refresh
	// token reached the client, which ends the previous one's grace.
	RefreshGen int64 `json:"rgen,omitempty"`
	IssuedAt   int64 `json:"iat"`
	NotBefore  int64 `json:"nbf"`
	Expiry     int64 `json:"exp"`
}

// Scopes splits Scope.
func (c AccessClaims) Scopes() []string { return strings.Fields(c.Scope) }

// ExpiresAt is Expiry as a time.
func (c AccessClaims) ExpiresAt() time.Time { return time.Unix(c.Expiry, 0) }

// Sign serializes claims as a signed JWT.
func (ks *KeySet) Sign(c AccessClaims) (string, error) {
	ks.syncIfOlder(syncEvery)
	s, err := jwt.Signed(ks.state().signer).Claims(c).Serialize()
	if err != nil {
		return "", fmt.Errorf("tokens: sign: %w", err)
	}
	return s, nil
}

// SignJWT signs arbitrary claims with the set's current key and the given
// typ header. It serves tokens that are not access tokens (the gateway's
// identity assertions to its upstream): their own typ keeps either from
// being taken for the other. It builds a signer per call, so callers on a
// hot path reuse what it returns for its lifetime.
func (ks *KeySet) SignJWT(typ string, claims any) (string, error) {
	ks.syncIfOlder(syncEvery)
	st := ks.state()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: st.keys[0]}, (&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
	if err != nil {
		return "", fmt.Errorf("tokens: signer: %w", err)
	}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("tokens: sign: %w", err)
	}
	return s, nil
}

// Expectations are what a verified access token must say.
type Expectations struct {
	Issuer   string
	Audience string
	// Audiences are further accepted audiences: the other protected
	// resources of this authorization server (gateway upstreams at their own
	// paths). The caller that serves one resource checks which it got.
	Audiences []string
	Now       time.Time
	Leeway    time.Duration
}

// Verify checks signature (ES256 by a key of this set), typ, iss, aud, exp and
// nbf, and returns the claims. Any failure is ErrInvalid wrapping the reason.
func (ks *KeySet) Verify(token string, want Expectations) (AccessClaims, error) {
	var c AccessClaims
	if err := ks.VerifyJWT(token, AccessTokenType, &c); err != nil {
		return c, err
	}
	now := want.Now.Unix()
	leeway := int64(want.Leeway / time.Second)
	switch {
	case c.Issuer != want.Issuer:
		return c, fmt.Errorf("%w: issuer", ErrInvalid)
	case c.Audience != want.Audience && !slices.Contains(want.Audiences, c.Audience):
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

// VerifyJWT checks that token is a JWT of type typ signed (ES256) by a key
// of this set and decodes its claims into claims; the caller checks what
// they say (iss, aud, exp...). It serves the tokens SignJWT makes (the
// gateway's identity assertions, presented back at RFC 8693 token
// exchange). Any failure is ErrInvalid wrapping the reason.
func (ks *KeySet) VerifyJWT(token, typ string, claims any) error {
	if strings.Count(token, ".") != 2 || len(token) > 8192 {
		return fmt.Errorf("%w: not a JWT", ErrInvalid)
	}
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if len(tok.Headers) != 1 {
		return fmt.Errorf("%w: multiple signatures", ErrInvalid)
	}
	h := tok.Headers[0]
	if got, _ := h.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(got, typ) {
		return fmt.Errorf("%w: typ %q", ErrInvalid, got)
	}
	key, ok := ks.state().byKID[h.KeyID]
	if !ok && ks.sync != nil {
		// Perhaps another replica's key this one has not seen yet.
		ks.syncIfOlder(syncUnknownKID)
		key, ok = ks.state().byKID[h.KeyID]
	}
	if !ok {
		return fmt.Errorf("%w: unknown kid", ErrInvalid)
	}
	if err := tok.Claims(key, claims); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
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
