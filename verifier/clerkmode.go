package verifier

// AUTH_MODE=clerk: Clerk is the authorization server and /mcp receives
// Clerk-issued access tokens. The hot path is the proxy mode's machinery
// (the same introspection and userinfo caches, the same singleflight, the
// same 503 when Clerk cannot answer); only what is verified differs:
//
//   - an opaque "oat_…" token is introspected (Clerk's /oauth/token_info with
//     our credentials, or the Backend API verify call with the secret key);
//   - a JWT access token (typ at+jwt) is verified locally first (RS256
//     against the instance JWKS, iss, exp, nbf), refused without a Clerk call
//     when that or the local policy fails, and then still introspected,
//     through the cache, so a revoked grant stops working within the cache
//     TTL even though the JWT itself has not expired;
//   - then the policy: active, a client this server accepts, the audience
//     when Clerk put one in, the required scopes.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/clerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/seal"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/ttlcache"
)

// ClerkTokens is what clerk mode needs beyond the verifier's Clerk: local
// verification of JWT access tokens (clerk.Client).
type ClerkTokens interface {
	VerifyAccessJWT(ctx context.Context, token string, now time.Time, leeway time.Duration) (clerk.AccessClaims, error)
}

// ClerkModeConfig is clerk mode's policy.
type ClerkModeConfig struct {
	// Resource is this MCP server's URL (BASE_URL/mcp). When a token carries
	// an audience (Clerk adds aud only when the client sent an RFC 8707
	// resource), it must name this resource.
	Resource string
	// AllowedClients are the Clerk OAuth client ids whose tokens are
	// accepted. Empty: any client of this Clerk instance. With dynamic
	// client registration every MCP client registers its own client id at
	// Clerk, so a fixed list only suits pre-registered applications.
	AllowedClients []string
	// RequiredScopes must all be granted to the token.
	RequiredScopes []string
}

// ClerkMode verifies Clerk-issued access tokens. It implements the same
// Verify as the proxy mode's Verifier and returns the same *Identity, so
// /mcp, the tools and the tool policy work unchanged.
type ClerkMode struct {
	v    *Verifier
	cfg  ClerkModeConfig
	jwts ClerkTokens
	// verified caches a verified JWT's claims by the token's hash until it
	// expires: the signature is checked once per token, not per request.
	verified *ttlcache.Cache[string, clerk.AccessClaims]
}

// NewClerkMode builds clerk mode's verifier on top of v's caches.
func NewClerkMode(v *Verifier, cfg ClerkModeConfig, jwts ClerkTokens) *ClerkMode {
	return &ClerkMode{v: v, cfg: cfg, jwts: jwts, verified: ttlcache.New[string, clerk.AccessClaims](100_000, v.now)}
}

// Verify runs clerk mode's hot path for one bearer token.
func (m *ClerkMode) Verify(ctx context.Context, token string) (*Identity, error) {
	id, err := m.verify(ctx, token)
	m.v.countOutcome(err)
	return id, err
}

func (m *ClerkMode) verify(ctx context.Context, token string) (*Identity, error) {
	var jwt *clerk.AccessClaims
	switch {
	case clerk.LooksLikeJWT(token):
		c, err := m.accessJWT(ctx, token)
		if err != nil {
			return nil, err
		}
		// Refuse what the token itself shows to be out of policy before
		// asking Clerk anything.
		if err := m.gate(c.ClientID, c.Audience, c.Scopes()); err != nil {
			return nil, err
		}
		jwt = &c
	case strings.HasPrefix(token, "oat_"):
	default:
		// Neither of Clerk's access-token formats: no call to Clerk.
		return nil, fmt.Errorf("%w: not a Clerk access token", ErrInvalidToken)
	}
	tok := newClerkToken(token)
	in, err := m.v.introspection(ctx, tok)
	if err != nil {
		return nil, err
	}
	if !in.Active {
		return nil, errInactive
	}
	if in.Subject == "" {
		return nil, fmt.Errorf("%w: Clerk's answer names no user", ErrInvalidToken)
	}
	if err := m.gate(in.ClientID, in.Audience, in.Scopes()); err != nil {
		return nil, err
	}
	id := &Identity{UserID: in.Subject, ClientID: in.ClientID, Scopes: in.Scopes(), ClerkScopes: in.Scopes(),
		OrgID: in.OrgID, ClerkToken: token}
	if in.Expiry > 0 {
		id.Expires = time.Unix(in.Expiry, 0)
	}
	if jwt != nil {
		// Clerk's answer and the signed token must describe one grant.
		if jwt.Subject != in.Subject || jwt.ClientID != in.ClientID {
			return nil, fmt.Errorf("%w: Clerk's answer does not match the token", ErrInvalidToken)
		}
		id.Expires = time.Unix(jwt.Expiry, 0)
		if id.OrgID == "" {
			id.OrgID = jwt.OrgID
		}
	}
	m.v.enrich(ctx, id, tok)
	return id, nil
}

// accessJWT verifies a JWT access token locally, cached by hash until exp.
func (m *ClerkMode) accessJWT(ctx context.Context, token string) (clerk.AccessClaims, error) {
	key := seal.HashHex(token)
	leeway := m.v.cfg.Leeway
	if c, ok := m.verified.Get(key); ok {
		m.v.metrics.CacheLookup("jwt", true)
		if m.v.now().After(time.Unix(c.Expiry, 0).Add(leeway)) {
			return c, fmt.Errorf("%w: expired", ErrInvalidToken)
		}
		return c, nil
	}
	m.v.metrics.CacheLookup("jwt", false)
	// Concurrent first uses of one token verify it once (and fetch the key
	// set once).
	res, err, _ := m.v.flight.Do("clerkjwt:"+key, func() (any, error) {
		return m.jwts.VerifyAccessJWT(context.WithoutCancel(ctx), token, m.v.now(), leeway)
	})
	c, _ := res.(clerk.AccessClaims)
	if err != nil {
		if errors.Is(err, clerk.ErrUnavailable) {
			m.v.log.WarnContext(ctx, "Clerk's key set cannot be fetched", "err", err)
			return c, fmt.Errorf("%w: Clerk key set", ErrUnavailable)
		}
		return c, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	m.verified.Set(key, c, time.Unix(c.Expiry, 0).Add(leeway))
	return c, nil
}

// gate is clerk mode's policy on a token's client, audience and scopes.
func (m *ClerkMode) gate(clientID string, aud, scopes []string) error {
	if clientID == "" {
		return fmt.Errorf("%w: the token names no client", ErrInvalidToken)
	}
	if len(m.cfg.AllowedClients) > 0 && !slices.Contains(m.cfg.AllowedClients, clientID) {
		return fmt.Errorf("%w: Clerk's token was issued to a client this server does not accept", ErrInvalidToken)
	}
	if len(aud) > 0 && !slices.Contains(aud, m.cfg.Resource) {
		return fmt.Errorf("%w: the token's audience is another resource", ErrInvalidToken)
	}
	for _, s := range m.cfg.RequiredScopes {
		if !slices.Contains(scopes, s) {
			return fmt.Errorf("%w: the token lacks the scope %s", ErrInvalidToken, s)
		}
	}
	return nil
}
