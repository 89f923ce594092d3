// Package upstreamauth is for MCP servers behind clerk-mcp-proxy in gateway
// mode: it verifies the identity assertion the gateway sends with every
// forwarded request (header X-Clerk-MCP-Assertion), so the upstream knows
// which Clerk user is calling and that the call came through the gateway.
//
//	v := upstreamauth.New(upstreamauth.Config{
//		Issuer:   "https://mcp.example.com",        // the proxy's BASE_URL
//		Audience: "http://127.0.0.1:3000/mcp",      // this server's UPSTREAM_MCP_URL
//	})
//	claims, err := v.VerifyRequest(r)               // or v.Verify(ctx, token)
//
// The assertion is an ES256 JWT (typ "clerk-mcp-assertion+jwt") signed with
// the proxy's keys, published at ISSUER/.well-known/jwks.json, which this
// package fetches and caches (re-fetched when an unknown kid appears, at most
// once per MinRefresh). It lives at most 60 seconds and the gateway reuses
// one for the same user and grant for part of that: jti names the
// assertion, not a request, so do not treat it as single-use.
//
// The package depends only on the standard library and go-jose.
package upstreamauth

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Header is the request header carrying the assertion.
const Header = "X-Clerk-MCP-Assertion"

// Type is the assertion's JWT typ header; it keeps an assertion from being
// mistaken for an access token and the other way round.
const Type = "clerk-mcp-assertion+jwt"

// MaxLifetime is the longest exp - iat the gateway issues.
const MaxLifetime = 60 * time.Second

// Claims are what the gateway asserts about the caller.
type Claims struct {
	Issuer         string   `json:"iss"`
	Subject        string   `json:"sub"` // Clerk user id
	Audience       string   `json:"aud"` // the upstream's MCP URL
	Email          string   `json:"email,omitempty"`
	Name           string   `json:"name,omitempty"`
	OrgID          string   `json:"org_id,omitempty"`
	OrgRole        string   `json:"org_role,omitempty"`
	OrgPermissions []string `json:"org_permissions,omitempty"`
	Scope          string   `json:"scope,omitempty"` // space-separated scopes granted to the MCP client
	ClientID       string   `json:"client_id"`       // the MCP client (e.g. Claude, Cursor)
	// SessionID is an opaque reference to the user's grant: the same for
	// every assertion of one sign-in of one client. The proxy reads it back
	// when the upstream presents the assertion for RFC 8693 token exchange.
	SessionID string `json:"sid,omitempty"`
	ID        string `json:"jti"`
	IssuedAt  int64  `json:"iat"`
	NotBefore int64  `json:"nbf"`
	Expiry    int64  `json:"exp"`
}

// Scopes splits Scope.
func (c Claims) Scopes() []string { return strings.Fields(c.Scope) }

// Config says what a valid assertion must say.
type Config struct {
	Issuer   string // the proxy's BASE_URL, exactly
	Audience string // this server's URL as the gateway is configured with it (UPSTREAM_MCP_URL)
	// JWKSURL defaults to Issuer + "/.well-known/jwks.json".
	JWKSURL    string
	HTTPClient *http.Client     // default: 10 s timeout
	Leeway     time.Duration    // clock skew allowed; default 5 s
	MinRefresh time.Duration    // least time between two JWKS fetches; default 30 s
	Now        func() time.Time // default time.Now
}

// ErrInvalid wraps every reason an assertion is refused.
var ErrInvalid = errors.New("upstreamauth: invalid assertion")

// Verifier checks assertions. Safe for concurrent use.
type Verifier struct {
	cfg     Config
	mu      sync.Mutex
	keys    map[string]*ecdsa.PublicKey
	fetched time.Time
}

// New returns a verifier; keys are fetched on first use.
func New(cfg Config) *Verifier {
	if cfg.JWKSURL == "" {
		cfg.JWKSURL = strings.TrimRight(cfg.Issuer, "/") + "/.well-known/jwks.json"
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = 5 * time.Second
	}
	if cfg.MinRefresh == 0 {
		cfg.MinRefresh = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Verifier{cfg: cfg, keys: map[string]*ecdsa.PublicKey{}}
}

// VerifyRequest verifies the assertion in r's Header.
func (v *Verifier) VerifyRequest(r *http.Request) (Claims, error) {
	tok := r.Header.Get(Header)
	if tok == "" {
		return Claims{}, fmt.Errorf("%w: no %s header", ErrInvalid, Header)
	}
	return v.Verify(r.Context(), tok)
}

// Verify checks the signature (ES256, a key of the issuer's JWKS), typ, iss,
// aud, exp, nbf and the lifetime, and returns the claims.
func (v *Verifier) Verify(ctx context.Context, token string) (Claims, error) {
	var c Claims
	if len(token) > 16<<10 {
		return c, fmt.Errorf("%w: too long", ErrInvalid)
	}
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return c, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if len(tok.Headers) != 1 {
		return c, fmt.Errorf("%w: not one signature", ErrInvalid)
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != Type {
		return c, fmt.Errorf("%w: typ %q", ErrInvalid, typ)
	}
	key, err := v.key(ctx, h.KeyID)
	if err != nil {
		return c, err
	}
	if err := tok.Claims(key, &c); err != nil {
		return c, fmt.Errorf("%w: signature: %v", ErrInvalid, err)
	}
	now := v.cfg.Now()
	leeway := int64(v.cfg.Leeway / time.Second)
	switch {
	case c.Issuer != v.cfg.Issuer:
		return c, fmt.Errorf("%w: issuer %q", ErrInvalid, c.Issuer)
	case c.Audience != v.cfg.Audience:
		return c, fmt.Errorf("%w: audience %q", ErrInvalid, c.Audience)
	case c.Expiry == 0 || now.Unix() > c.Expiry+leeway:
		return c, fmt.Errorf("%w: expired", ErrInvalid)
	case c.NotBefore > now.Unix()+leeway:
		return c, fmt.Errorf("%w: not yet valid", ErrInvalid)
	case c.Expiry-c.IssuedAt > int64(MaxLifetime/time.Second):
		return c, fmt.Errorf("%w: lifetime over %s", ErrInvalid, MaxLifetime)
	case c.Subject == "":
		return c, fmt.Errorf("%w: no subject", ErrInvalid)
	}
	return c, nil
}

// key returns the public key for kid, fetching the JWKS when kid is unknown
// (the proxy rotated or another replica published a key) but no more often
// than MinRefresh, so forged kids cannot make this server hammer the proxy.
func (v *Verifier) key(ctx context.Context, kid string) (*ecdsa.PublicKey, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if k, ok := v.keys[kid]; ok {
		return k, nil
	}
	if !v.fetched.IsZero() && v.cfg.Now().Sub(v.fetched) < v.cfg.MinRefresh {
		return nil, fmt.Errorf("%w: unknown kid", ErrInvalid)
	}
	v.fetched = v.cfg.Now()
	keys, err := v.fetch(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: key set unavailable: %v", ErrInvalid, err)
	}
	v.keys = keys
	if k, ok := v.keys[kid]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("%w: unknown kid", ErrInvalid)
}

func (v *Verifier) fetch(ctx context.Context) (map[string]*ecdsa.PublicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.cfg.JWKSURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := v.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return nil, err
	}
	out := map[string]*ecdsa.PublicKey{}
	for _, k := range set.Keys {
		if pub, ok := k.Key.(*ecdsa.PublicKey); ok && k.KeyID != "" {
			out[k.KeyID] = pub
		}
	}
	return out, nil
}
