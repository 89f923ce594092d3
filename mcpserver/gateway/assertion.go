package gateway

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/clerkmcp/upstreamauth"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/ttlcache"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/verifier"
)

// Signer signs the identity assertion with the proxy's keys
// (tokens.KeySet.SignJWT), so the upstream verifies it with the proxy's
// /.well-known/jwks.json.
type Signer interface {
	SignJWT(typ string, claims any) (string, error)
}

// Assertion lifetimes: an assertion lives assertionTTL and is reused for
// requests of the same grant and identity until reuseMargin before it
// expires, so the upstream always gets one with at least that long to live
// (room for a slow hop and clock skew) and the gateway signs about once per
// user per half minute instead of once per request.
const (
	assertionTTL = upstreamauth.MaxLifetime
	reuseMargin  = 30 * time.Second
)

// assertions signs and caches identity assertions.
type assertions struct {
	signer   Signer
	issuer   string
	audience string
	now      func() time.Time
	cache    *ttlcache.Cache[string, string]
}

func newAssertions(s Signer, issuer, audience string, now func() time.Time) *assertions {
	return &assertions{signer: s, issuer: issuer, audience: audience, now: now,
		cache: ttlcache.New[string, string](100_000, now)}
}

// get returns an assertion for id: a cached one when one for the same grant
// says exactly what id says (a changed email, organisation or scope gets a
// new one at once), else a freshly signed one.
func (a *assertions) get(id *verifier.Identity) (string, error) {
	c := upstreamauth.Claims{
		Issuer: a.issuer, Subject: id.UserID, Audience: a.audience,
		Email: id.Email, Name: id.Name, OrgID: id.OrgID, OrgRole: id.OrgRole, OrgPermissions: id.OrgPermissions,
		Scope: strings.Join(id.Scopes, " "), ClientID: id.ClientID, SessionID: id.GrantID,
	}
	key := strings.Join([]string{id.GrantID, c.Subject, c.Email, c.Name, c.OrgID, c.OrgRole,
		strings.Join(c.OrgPermissions, " "), c.Scope, c.ClientID}, "\x00")
	if tok, ok := a.cache.Get(key); ok {
		return tok, nil
	}
	now := a.now()
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	c.ID = base64.RawURLEncoding.EncodeToString(jti)
	c.IssuedAt, c.NotBefore, c.Expiry = now.Unix(), now.Unix(), now.Add(assertionTTL).Unix()
	tok, err := a.signer.SignJWT(upstreamauth.Type, c)
	if err != nil {
		return "", err
	}
	a.cache.Set(key, tok, now.Add(assertionTTL-reuseMargin))
	return tok, nil
}
