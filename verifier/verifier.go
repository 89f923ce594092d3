// Package verifier decides whether a bearer token presented at /mcp is good,
// and who it stands for. It is the hot path, so every step is cached:
//
//  1. the proxy's own JWT (signature, iss, aud, exp), cached in-process by the
//     token's hash until it expires;
//  2. the grant behind it is still live (store lookup, cached about a second,
//     dropped at once when this replica revokes it);
//  3. Clerk's access token behind the grant is introspected at Clerk
//     (active, issued to our Clerk application, required scopes), cached
//     in-process and in the shared store for a bounded TTL, with concurrent
//     misses collapsed into one call (singleflight);
//  4. userinfo enriches the identity, and when the token names an
//     organisation and a Backend API is configured, the user's role and
//     permissions there are added (cached per user the same way); either
//     failing is logged, never fatal;
//  5. an expired Clerk token is refreshed once for all replicas (a store lock)
//     before continuing.
//
// Errors: ErrInvalidToken (answer 401) or ErrUnavailable (answer 503, never
// a 200 and never a 500).
package verifier

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/clerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/clientid"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/metrics"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/seal"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/tokens"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/ttlcache"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/vault"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/mcpserver/toolpolicy"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
)

// Errors returned by Verify.
var (
	ErrInvalidToken = errors.New("invalid token")
	ErrUnavailable  = errors.New("verification temporarily unavailable")
)

// Clerk is what the verifier needs from the Clerk client.
type Clerk interface {
	Introspect(ctx context.Context, token string) (clerk.Introspection, error)
	UserInfo(ctx context.Context, accessToken string) (clerk.UserInfo, error)
	Refresh(ctx context.Context, refreshToken string) (clerk.TokenSet, error)
}

// Orgs looks up a user's organisation memberships (Clerk's Backend API).
type Orgs interface {
	OrgMemberships(ctx context.Context, userID string) ([]clerk.OrgMembership, error)
}

// Store is the part of the store the verifier uses.
type Store interface {
	GetGrant(ctx context.Context, id string) (store.Grant, error)
	GetClient(ctx context.Context, id string) (store.Client, error)
	UpdateGrant(ctx context.Context, id string, ttl time.Duration, fn func(*store.Grant) error) (store.Grant, error)
	DeleteGrant(ctx context.Context, id string) error
	GetCache(ctx context.Context, key string) ([]byte, error)
	SetCache(ctx context.Context, key string, value []byte, ttl time.Duration) error
	DeleteCache(ctx context.Context, key string) error
	TryLock(ctx context.Context, name string, ttl time.Duration) (func(context.Context) error, bool, error)
}

// Config tunes the verifier.
type Config struct {
	Issuer   string
	Resource string
	// Resources are the other protected resources whose tokens this
	// verifier also accepts (gateway upstreams mounted at their own paths,
	// one audience each). Identity.Resource says which one a token is for;
	// the endpoint serving a resource refuses the others' tokens.
	Resources      []string
	ClerkClientID  string
	RequiredScopes []string // scopes Clerk's token must carry
	// IntrospectionTTL bounds how long Clerk's "active" answer is trusted.
	IntrospectionTTL time.Duration
	UserinfoTTL      time.Duration
	// GrantTTL is how long a grant lookup is trusted in-process; it bounds how
	// late another replica notices a revocation.
	GrantTTL time.Duration
	// RefreshSkew refreshes Clerk's token this long before it expires.
	RefreshSkew time.Duration
	// RefreshWait is how long a request waits for another replica's refresh.
	RefreshWait time.Duration
	// RefreshTimeout bounds one Clerk refresh call (CLERK_TIMEOUT); the
	// refresh lock's lease is derived from it.
	RefreshTimeout time.Duration
	Leeway         time.Duration
	// OrgsNeeded says whether identities need the organisation role and
	// permissions (a tool rule or tool depends on them); asked per request
	// because rules may be attached while serving. Nil: whenever Deps.Orgs
	// is set. The lookup is cached for UserinfoTTL.
	OrgsNeeded func() bool
}

// Identity is who a verified request acts for.
type Identity struct {
	UserID   string    `json:"userId"`
	ClientID string    `json:"client_id"`
	Scopes   []string  `json:"scopes"`
	GrantID  string    `json:"-"`
	Expires  time.Time `json:"-"`
	// Resource is the protected resource (RFC 8707) the token was issued
	// for, its aud; empty when the token names none (Clerk's own tokens).
	Resource string `json:"-"`

	Email         string `json:"email,omitempty"`
	EmailVerified bool   `json:"email_verified,omitempty"`
	Name          string `json:"name,omitempty"`
	Picture       string `json:"picture,omitempty"`
	Username      string `json:"username,omitempty"`
	OrgID         string `json:"org_id,omitempty"`
	OrgName       string `json:"org_name,omitempty"`
	OrgSlug       string `json:"org_slug,omitempty"`
	// OrgRole and OrgPermissions are the user's role and permissions in the
	// active organisation (OrgID), when known (Clerk's OAuth tokens do not
	// carry them; the Backend API does).
	OrgRole        string   `json:"org_role,omitempty"`
	OrgPermissions []string `json:"org_permissions,omitempty"`
	// OrgRoleUnknown: the role and permissions were needed but Clerk's
	// Backend API did not answer, so they are empty for this request.
	OrgRoleUnknown bool `json:"-"`

	ClerkScopes []string `json:"-"`
	// Enriched says whether userinfo was available for this request.
	Enriched bool `json:"-"`
	// UserInfo is Clerk's userinfo answer, when available.
	UserInfo *clerk.UserInfo `json:"-"`
	// ClerkToken is the live Clerk access token (for tools that call Clerk
	// as the user). Never logged, never returned to clients.
	ClerkToken string `json:"-"`
}

// Verifier verifies bearer tokens. Safe for concurrent use.
type Verifier struct {
	cfg     Config
	keys    *tokens.KeySet
	store   Store
	clerk   Clerk
	vault   *vault.Vault
	metrics *metrics.Metrics
	log     *slog.Logger
	now     func() time.Time

	jwts   *ttlcache.Cache[string, verifiedJWT] // by the token's signature (jwtKey)
	seed   maphash.Seed
	grants *ttlcache.Cache[string, store.Grant]
	intro  *ttlcache.Cache[string, clerk.Introspection]
	info   *ttlcache.Cache[string, clerk.UserInfo]
	orgs   *ttlcache.Cache[string, []clerk.OrgMembership]
	orgAPI Orgs
	// marked remembers "grant id/refresh generation" pairs this replica has
	// recorded as in use, so the hot path writes to the store once per
	// rotation, not once per request.
	marked *ttlcache.Cache[string, struct{}]
	// opened holds each grant's Clerk token set as last opened from its
	// sealed bytes (see open).
	opened *ttlcache.Cache[string, *openedTokens]
	flight singleflight.Group
	// sessions and live serve grants bound to a Clerk session (appmode.go).
	sessions SessionChecker
	live     *ttlcache.Cache[string, struct{}]
	uses     UseRecorder
}

// Deps are the verifier's collaborators.
type Deps struct {
	Keys  *tokens.KeySet
	Store Store
	Clerk Clerk
	// Orgs, when set, gives identities their organisation role and
	// permissions (Clerk's OAuth tokens carry only org_id).
	Orgs    Orgs
	Secret  []byte
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	Now     func() time.Time
	// Sessions answers for Clerk sessions (app mode; nil otherwise).
	Sessions SessionChecker
	// Uses, when set, is told each time a token of a live grant is presented (the
	// "last used" of /account and /admin; internal/lastused).
	Uses UseRecorder
}

// UseRecorder notes a grant's use; it must be cheap (it is on every request).
type UseRecorder interface{ Used(grantID string) }

// New builds a verifier.
func New(cfg Config, d Deps) (*Verifier, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Metrics == nil {
		d.Metrics = metrics.New()
	}
	if cfg.GrantTTL == 0 {
		cfg.GrantTTL = time.Second
	}
	if cfg.RefreshSkew == 0 {
		cfg.RefreshSkew = 30 * time.Second
	}
	if cfg.RefreshWait == 0 {
		cfg.RefreshWait = 10 * time.Second
	}
	if cfg.RefreshTimeout == 0 {
		cfg.RefreshTimeout = 10 * time.Second
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = 5 * time.Second
	}
	v, err := vault.New(d.Secret, nil)
	if err != nil {
		return nil, err
	}
	return &Verifier{
		cfg: cfg, keys: d.Keys, store: d.Store, clerk: d.Clerk, vault: v, metrics: d.Metrics, log: d.Logger, now: d.Now,
		sessions: d.Sessions, live: ttlcache.New[string, struct{}](100_000, d.Now),
		jwts:   ttlcache.New[string, verifiedJWT](100_000, d.Now),
		seed:   maphash.MakeSeed(),
		grants: ttlcache.New[string, store.Grant](100_000, d.Now),
		intro:  ttlcache.New[string, clerk.Introspection](100_000, d.Now),
		info:   ttlcache.New[string, clerk.UserInfo](100_000, d.Now),
		orgs:   ttlcache.New[string, []clerk.OrgMembership](100_000, d.Now),
		orgAPI: d.Orgs, uses: d.Uses,
		marked: ttlcache.New[string, struct{}](100_000, d.Now),
		opened: ttlcache.New[string, *openedTokens](100_000, d.Now),
	}, nil
}

// GrantRevoked drops a revoked grant, and the Clerk tokens opened from it,
// from this replica's caches at once.
func (v *Verifier) GrantRevoked(grantID string) {
	v.grants.Delete(grantID)
	v.opened.Delete(grantID)
}

// Verify runs the whole hot path for one bearer token.
func (v *Verifier) Verify(ctx context.Context, token string) (*Identity, error) {
	id, err := v.verify(ctx, token)
	v.countOutcome(err)
	return id, err
}

// countOutcome reports a verification's outcome, the same for every mode.
func (v *Verifier) countOutcome(err error) {
	outcome := "ok"
	switch {
	case errors.Is(err, ErrUnavailable):
		outcome = "unavailable"
	case err != nil:
		outcome = "invalid"
	}
	v.metrics.VerifierOutcome(outcome)
}

func (v *Verifier) verify(ctx context.Context, token string) (*Identity, error) {
	claims, err := v.proxyClaims(token)
	if err != nil {
		return nil, err
	}
	g, err := v.grant(ctx, claims.GrantID)
	if err != nil {
		return nil, err
	}
	if !g.Active || g.ClientID != claims.ClientID || g.UserID != claims.Subject {
		return nil, fmt.Errorf("%w: grant does not match the token", ErrInvalidToken)
	}
	if v.uses != nil {
		v.uses.Used(g.ID)
	}
	// A token newer than the cached grant means the cached copy predates a
	// rotation (its flag is about the previous generation): the store decides.
	if rc := g.Refresh; claims.RefreshGen > rc.Generation || claims.RefreshGen == rc.Generation && !rc.CurrentUsed {
		v.markRefreshUsed(ctx, g.ID, claims.RefreshGen)
	}
	if g.ClerkSession != "" {
		return v.verifySessionGrant(ctx, g, claims)
	}
	o, err := v.open(g)
	if err != nil {
		return nil, fmt.Errorf("%w: the grant's Clerk tokens cannot be opened", ErrInvalidToken)
	}
	ts, tok := o.ts, o.token
	if !g.UpstreamExpiresAt.IsZero() && !v.now().Add(v.cfg.RefreshSkew).Before(g.UpstreamExpiresAt) {
		if ts, err = v.refreshUpstream(ctx, g, ts); err != nil {
			return nil, err
		}
		tok = newClerkToken(ts.AccessToken)
	}
	in, err := v.introspect(ctx, tok)
	if errors.Is(err, errInactive) && ts.RefreshToken != "" {
		// Clerk says no before we expected: the token may have expired early
		// or been rotated; one refresh decides (a revoked session fails it).
		if ts, err = v.refreshUpstream(ctx, g, ts); err != nil {
			return nil, err
		}
		tok = newClerkToken(ts.AccessToken)
		in, err = v.introspect(ctx, tok)
	}
	if err != nil {
		return nil, err
	}
	if in.Subject != "" && in.Subject != g.UserID {
		return nil, fmt.Errorf("%w: Clerk's token belongs to another user", ErrInvalidToken)
	}
	id := &Identity{
		UserID: g.UserID, ClientID: claims.ClientID, Scopes: claims.Scopes(), GrantID: g.ID, Resource: claims.Audience,
		Expires: claims.ExpiresAt(), OrgID: in.OrgID, ClerkScopes: in.Scopes(), ClerkToken: ts.AccessToken,
	}
	v.enrich(ctx, id, tok)
	return id, nil
}

// clerkToken is a Clerk access token with its hash, which names it in the
// caches (never the token itself): hashed once per token, not per lookup.
type clerkToken struct{ value, hash string }

func newClerkToken(t string) clerkToken { return clerkToken{value: t, hash: seal.HashHex(t)} }

// openedTokens is a grant's Clerk token set opened from the sealed bytes
// it came from.
type openedTokens struct {
	sealed []byte
	ts     clerk.TokenSet
	token  clerkToken
}

// openedTTL bounds how long an opened token set stays in memory unused. It
// is only ever served for the very bytes it was opened from, so its age
// decides nothing: revocation is the grant lookup's business, and a refresh
// (new sealed bytes) is opened anew.
const openedTTL = time.Minute

// open returns grant g's Clerk token set. Decrypting and decoding it was a
// tenth of the hot path's CPU, for the same bytes on every request, so the
// result is kept per grant and reused while g carries the same sealed bytes.
func (v *Verifier) open(g store.Grant) (*openedTokens, error) {
	if o, ok := v.opened.Get(g.ID); ok && bytes.Equal(o.sealed, g.Upstream) {
		return o, nil
	}
	ts, err := v.vault.Open(g.ID, g.Upstream)
	if err != nil {
		return nil, err
	}
	// Only the access and refresh tokens are needed here; Clerk's ID token
	// (the larger part) would be kept per grant for nothing.
	ts = clerk.TokenSet{AccessToken: ts.AccessToken, RefreshToken: ts.RefreshToken}
	o := &openedTokens{sealed: g.Upstream, ts: ts, token: newClerkToken(ts.AccessToken)}
	v.opened.Set(g.ID, o, v.now().Add(openedTTL))
	return o, nil
}

// enrich adds Clerk's userinfo to id when Clerk answers (never fatal), then
// the organisation role. Every mode fills the identity the same way, so
// tools and the tool policy see the same fields.
func (v *Verifier) enrich(ctx context.Context, id *Identity, clerkToken clerkToken) {
	if ui, ok := v.userinfo(ctx, clerkToken); ok {
		id.fill(ui)
	}
	v.orgRole(ctx, id)
}

// fill copies a profile into the identity.
func (id *Identity) fill(ui clerk.UserInfo) {
	id.Enriched, id.UserInfo = true, &ui
	id.Email, id.EmailVerified, id.Name, id.Picture, id.Username = ui.Email, ui.EmailVerified, ui.Name, ui.Picture, ui.PreferredUsername
	if id.Name == "" {
		id.Name = strings.TrimSpace(ui.GivenName + " " + ui.FamilyName)
	}
	if ui.OrgID != "" {
		id.OrgID, id.OrgName, id.OrgSlug = ui.OrgID, ui.OrgName, ui.OrgSlug
	}
}

// orgRole fills the identity's role and permissions in its active
// organisation from the Backend API. A failure leaves them empty: the
// request goes on, and only tools that require a role or permission are
// refused (fail closed for them, open for the rest).
func (v *Verifier) orgRole(ctx context.Context, id *Identity) {
	if id.OrgID == "" || v.orgAPI == nil || v.cfg.OrgsNeeded != nil && !v.cfg.OrgsNeeded() {
		return
	}
	ms, err := cached(ctx, v, "org_memberships", v.orgs, "orgmemberships:"+id.UserID, func(ctx context.Context) ([]clerk.OrgMembership, error) {
		return v.orgAPI.OrgMemberships(ctx, id.UserID)
	})
	if err != nil {
		v.log.WarnContext(ctx, "Clerk organization memberships unavailable; organization-gated tools are refused for this request", "err", err)
		id.OrgRoleUnknown = true
		return
	}
	for _, m := range ms {
		if m.Organization.ID == id.OrgID {
			id.OrgRole, id.OrgPermissions = m.Role, slices.Clone(m.Permissions)
			if id.OrgName == "" {
				id.OrgName, id.OrgSlug = m.Organization.Name, m.Organization.Slug
			}
		}
	}
}

// OrgRole is userID's role in orgID ("" when not a member), from the
// Backend API through the same caches as identities' roles (the operator
// console's access check).
func (v *Verifier) OrgRole(ctx context.Context, userID, orgID string) (string, error) {
	if v.orgAPI == nil {
		return "", errors.New("verifier: no Backend API (CLERK_SECRET_KEY) to look up organisation roles")
	}
	ms, err := cached(ctx, v, "org_memberships", v.orgs, "orgmemberships:"+userID, func(ctx context.Context) ([]clerk.OrgMembership, error) {
		return v.orgAPI.OrgMemberships(ctx, userID)
	})
	if err != nil {
		return "", err
	}
	for _, m := range ms {
		if m.Organization.ID == orgID {
			return m.Role, nil
		}
	}
	return "", nil
}

// proxyClaims verifies the proxy's own JWT, cached by jwtKey.
func (v *Verifier) proxyClaims(token string) (tokens.AccessClaims, error) {
	sig, sum := v.jwtKey(token)
	if e, ok := v.jwts.Get(sig); ok && e.sum == sum {
		v.metrics.CacheLookup("jwt", true)
		if v.now().Unix() > e.claims.Expiry+int64(v.cfg.Leeway/time.Second) {
			return e.claims, fmt.Errorf("%w: expired", ErrInvalidToken)
		}
		return e.claims, nil
	}
	v.metrics.CacheLookup("jwt", false)
	c, err := v.keys.Verify(token, tokens.Expectations{Issuer: v.cfg.Issuer, Audience: v.cfg.Resource, Audiences: v.cfg.Resources, Now: v.now(), Leeway: v.cfg.Leeway})
	if err != nil {
		return c, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	exp := time.Unix(c.Expiry, 0).Add(v.cfg.Leeway)
	if limit := v.now().Add(jwtCacheFor); limit.Before(exp) {
		exp = limit
	}
	// A copy: the signature is a slice of the request's header, which the
	// cache must not keep alive.
	v.jwts.Set(strings.Clone(sig), verifiedJWT{claims: c, sum: sum}, exp)
	return c, nil
}

// verifiedJWT is a verified token's claims with the sum of the whole token
// (jwtKey) that must match for the entry to serve.
type verifiedJWT struct {
	claims tokens.AccessClaims
	sum    uint64
}

// jwtKey names a token in the verified-JWT cache: by its signature, unique
// to the token and short (86 characters for ES256, where the token has
// several hundred), and by a 64-bit hash of the whole token under this
// process's random seed. A hit takes the very same token: the same
// signature and the same sum, which without the seed cannot be aimed at.
// Hashing the whole token with SHA-256 was 1-2% of the hot path's CPU, and
// keying by the whole token would keep hundreds of bytes per cached token.
func (v *Verifier) jwtKey(token string) (sig string, sum uint64) {
	return token[strings.LastIndexByte(token, '.')+1:], maphash.String(v.seed, token)
}

// jwtCacheFor bounds how long a verified JWT is remembered, whatever its
// exp: a token abandoned after a refresh or a revocation stops costing
// memory after this long, not after its whole lifetime (ACCESS_TOKEN_TTL),
// and a token in use is verified again (one signature check) this often.
const jwtCacheFor = 5 * time.Minute

// grant loads the grant, trusting an in-process copy for GrantTTL.
func (v *Verifier) grant(ctx context.Context, gid string) (store.Grant, error) {
	if g, ok := v.grants.Get(gid); ok {
		v.metrics.CacheLookup("grant", true)
		return g, nil
	}
	v.metrics.CacheLookup("grant", false)
	res, err, _ := v.flight.Do("grant:"+gid, func() (any, error) {
		// A detached context, as in introspect: the lookup is shared, so the
		// first caller disconnecting must not fail everyone waiting on it.
		// The store client's own timeouts bound it.
		ctx := context.WithoutCancel(ctx)
		g, err := v.store.GetGrant(ctx, gid)
		if err != nil {
			return g, err
		}
		if gone, err := clientid.Gone(ctx, v.store, g.ClientID); err != nil {
			return g, err
		} else if gone {
			return g, errClientGone
		}
		v.grants.Set(gid, g, v.now().Add(v.cfg.GrantTTL))
		return g, nil
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return store.Grant{}, fmt.Errorf("%w: the grant was revoked or has expired", ErrInvalidToken)
		}
		if errors.Is(err, errClientGone) {
			return store.Grant{}, fmt.Errorf("%w: the client's registration was deleted or has expired", ErrInvalidToken)
		}
		v.metrics.StoreError(ctx, v.log, "get_grant", err)
		return store.Grant{}, fmt.Errorf("%w: storage", ErrUnavailable)
	}
	return res.(store.Grant), nil
}

// markRefreshUsed records in the grant that the refresh token of generation
// gen reached its client: an access token issued together with it is in use.
// That ends the previous refresh token's grace (proxy/refresh.go), so a thief
// replaying it from now on revokes the grant. Once per grant and generation
// on this replica (the write is a compare-and-swap, so replicas racing each
// other agree). Best effort: on a store failure the previous token stays in
// grace a little longer and the next request tries again.
func (v *Verifier) markRefreshUsed(ctx context.Context, gid string, gen int64) {
	key := gid + "/" + strconv.FormatInt(gen, 10)
	if _, ok := v.marked.Get(key); ok {
		return
	}
	_, _, _ = v.flight.Do("used:"+key, func() (any, error) {
		_, err := v.store.UpdateGrant(context.WithoutCancel(ctx), gid, 0, func(g *store.Grant) error {
			if g.Refresh.Generation != gen || g.Refresh.CurrentUsed {
				return errNothingToMark // rotated again since, or already recorded
			}
			g.Refresh.CurrentUsed = true
			return nil
		})
		switch {
		case err == nil, errors.Is(err, errNothingToMark), errors.Is(err, store.ErrNotFound):
			// The grant's cached copy may still say unused; marked keeps
			// this replica from writing again until it expires.
			v.marked.Set(key, struct{}{}, v.now().Add(markedTTL))
		default:
			v.metrics.StoreError(ctx, v.log, "mark_refresh_used", err)
		}
		return nil, nil
	})
}

// markedTTL outlives the grant cache's copy, which is what could still say
// "unused" after the write.
const markedTTL = time.Minute

var errNothingToMark = errors.New("nothing to mark")

// errClientGone: the grant outlived its client's registration.
var errClientGone = errors.New("client registration gone")

// errInactive: Clerk answered that the token is not active.
var errInactive = fmt.Errorf("%w: Clerk reports the token inactive", ErrInvalidToken)

// introspect asks Clerk about its access token, through the caches, and
// applies the proxy's gate.
func (v *Verifier) introspect(ctx context.Context, clerkToken clerkToken) (clerk.Introspection, error) {
	in, err := v.introspection(ctx, clerkToken)
	if err != nil {
		return in, err
	}
	return in, v.gate(in)
}

// introspection is Clerk's answer about a token: from this replica's cache,
// the shared store's, or one call per token however many requests miss at
// once (singleflight). Only active answers are cached. It applies no policy:
// each mode gates the answer with its own rules.
func (v *Verifier) introspection(ctx context.Context, clerkToken clerkToken) (clerk.Introspection, error) {
	key := "intro:" + clerkToken.hash
	if in, ok := v.intro.Get(key); ok {
		v.metrics.CacheLookup("introspection", true)
		return in, nil
	}
	v.metrics.CacheLookup("introspection", false)
	res, err, _ := v.flight.Do(key, func() (any, error) {
		if in, ok := v.intro.Get(key); ok {
			return in, nil
		}
		if raw, err := v.store.GetCache(ctx, key); err == nil {
			var in clerk.Introspection
			if json.Unmarshal(raw, &in) == nil {
				v.intro.Set(key, in, v.now().Add(min(v.cfg.IntrospectionTTL, 5*time.Second)))
				return in, nil
			}
		}
		// A detached context: one caller giving up must not fail the others
		// sharing this call.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		in, err := v.clerk.Introspect(cctx, clerkToken.value)
		if err != nil {
			return in, err
		}
		if in.Active && v.cfg.IntrospectionTTL > 0 {
			exp := v.now().Add(v.cfg.IntrospectionTTL)
			if in.Expiry > 0 && time.Unix(in.Expiry, 0).Before(exp) {
				exp = time.Unix(in.Expiry, 0)
			}
			v.intro.Set(key, in, exp)
			if ttl := exp.Sub(v.now()); ttl > 0 {
				raw, _ := json.Marshal(in)
				_ = v.store.SetCache(cctx, key, raw, ttl)
			}
		}
		return in, nil
	})
	if err != nil {
		if clerk.IsTransient(err) {
			v.log.WarnContext(ctx, "Clerk introspection unavailable", "err", err)
			return clerk.Introspection{}, fmt.Errorf("%w: Clerk introspection", ErrUnavailable)
		}
		v.log.ErrorContext(ctx, "Clerk introspection refused the proxy's request (check CLERK_CLIENT_ID/SECRET)", "err", err)
		return clerk.Introspection{}, fmt.Errorf("%w: Clerk introspection", ErrUnavailable)
	}
	return res.(clerk.Introspection), nil
}

// gate applies the introspection rules: active, issued to our Clerk
// application (aud when present, else client_id), required scopes present.
func (v *Verifier) gate(in clerk.Introspection) error {
	if !in.Active {
		return errInactive
	}
	ours := slices.Contains(in.Audience, v.cfg.ClerkClientID) || in.ClientID == v.cfg.ClerkClientID
	if !ours {
		return fmt.Errorf("%w: Clerk's token was issued to another application", ErrInvalidToken)
	}
	have := in.Scopes()
	for _, s := range v.cfg.RequiredScopes {
		if !slices.Contains(have, s) {
			return fmt.Errorf("%w: Clerk's token lacks the scope %s", ErrInvalidToken, s)
		}
	}
	return nil
}

// userinfo fetches Clerk's userinfo through the caches; failure is not fatal.
func (v *Verifier) userinfo(ctx context.Context, clerkToken clerkToken) (clerk.UserInfo, bool) {
	return v.profile(ctx, "userinfo:"+clerkToken.hash, func(ctx context.Context) (clerk.UserInfo, error) {
		return v.clerk.UserInfo(ctx, clerkToken.value)
	})
}

// profile is the user's profile under key through the caches (see cached),
// fetched with fetch; failure is not fatal.
func (v *Verifier) profile(ctx context.Context, key string, fetch func(context.Context) (clerk.UserInfo, error)) (clerk.UserInfo, bool) {
	ui, err := cached(ctx, v, "userinfo", v.info, key, fetch)
	if err != nil {
		v.log.WarnContext(ctx, "Clerk profile lookup failed; continuing without profile enrichment", "err", err)
		return clerk.UserInfo{}, false
	}
	return ui, true
}

// cached answers a Clerk lookup that enriches identities (userinfo,
// organisation memberships) from the in-process cache, then the shared
// store, then Clerk, for UserinfoTTL; concurrent misses for one key make one
// call (singleflight). Failures are returned, not cached.
func cached[T any](ctx context.Context, v *Verifier, kind string, mem *ttlcache.Cache[string, T], key string, fetch func(context.Context) (T, error)) (T, error) {
	if val, ok := mem.Get(key); ok {
		v.metrics.CacheLookup(kind, true)
		return val, nil
	}
	v.metrics.CacheLookup(kind, false)
	res, err, _ := v.flight.Do(key, func() (any, error) {
		// A caller that missed the cache just before the previous call
		// finished finds its answer here instead of calling again.
		if val, ok := mem.Get(key); ok {
			return val, nil
		}
		if raw, err := v.store.GetCache(ctx, key); err == nil {
			var val T
			if json.Unmarshal(raw, &val) == nil {
				// Another replica fetched it; trust it here only briefly so
				// its expiry in the store stays the bound.
				mem.Set(key, val, v.now().Add(min(v.cfg.UserinfoTTL, 5*time.Second)))
				return val, nil
			}
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		val, err := fetch(cctx)
		if err != nil {
			return val, err
		}
		if v.cfg.UserinfoTTL > 0 {
			mem.Set(key, val, v.now().Add(v.cfg.UserinfoTTL))
			raw, _ := json.Marshal(val)
			_ = v.store.SetCache(cctx, key, raw, v.cfg.UserinfoTTL)
		}
		return val, nil
	})
	if err != nil {
		var zero T
		return zero, err
	}
	return res.(T), nil
}

// refreshUpstream gets a fresh Clerk token for g. One replica refreshes
// (store lock), the others wait for its result in the store; in-process
// callers share one attempt (singleflight).
func (v *Verifier) refreshUpstream(ctx context.Context, g store.Grant, stale clerk.TokenSet) (clerk.TokenSet, error) {
	res, err, _ := v.flight.Do("refresh:"+g.ID, func() (any, error) {
		return v.refreshLocked(context.WithoutCancel(ctx), g, stale)
	})
	if err != nil {
		return clerk.TokenSet{}, err
	}
	return res.(clerk.TokenSet), nil
}

// refreshStoreTime is what the refresh lock's holder may spend on the store
// after Clerk answers (saving the new tokens), and refreshLeaseMargin what
// the lease outlasts the holder's deadline by (the lock's own round trip).
const (
	refreshStoreTime   = 5 * time.Second
	refreshLeaseMargin = 5 * time.Second
)

func (v *Verifier) refreshLocked(ctx context.Context, g store.Grant, stale clerk.TokenSet) (clerk.TokenSet, error) {
	// A wall-clock deadline: waiting is real time, whatever clock dates tokens.
	deadline := time.Now().Add(v.cfg.RefreshWait)
	// The lock holder works under a deadline that ends before the lock's
	// lease does. Were the lease to lapse first (a slow Clerk with a long
	// CLERK_TIMEOUT), another replica would take the lock and refresh with
	// the refresh token Clerk has just rotated: Clerk answers invalid_grant
	// and the grant ends.
	hold := v.cfg.RefreshTimeout + refreshStoreTime
	work := ctx
	var release func(context.Context) error
	defer func() {
		if release != nil {
			_ = release(ctx)
		}
	}()
	for {
		// Someone may have refreshed already: read the grant fresh. Once the
		// lock is ours, read it once more: another replica may have refreshed
		// and released the lock since the last read, and Clerk rotates
		// refresh tokens, so refreshing with the older one would be refused
		// and end the grant.
		cur, ts, err := v.upstream(work, g.ID)
		if err != nil {
			return clerk.TokenSet{}, err
		}
		if ts.AccessToken != stale.AccessToken {
			v.grants.Set(cur.ID, cur, v.now().Add(v.cfg.GrantTTL))
			return ts, nil
		}
		if release != nil {
			return v.doRefresh(work, cur, ts)
		}
		if ts.RefreshToken == "" {
			return clerk.TokenSet{}, fmt.Errorf("%w: Clerk's token expired and Clerk issued no refresh token (request offline_access)", ErrInvalidToken)
		}
		rel, ok, err := v.store.TryLock(ctx, "clerk-refresh:"+g.ID, hold+refreshLeaseMargin)
		if err != nil {
			v.metrics.StoreError(ctx, v.log, "lock_upstream_refresh", err)
			return clerk.TokenSet{}, fmt.Errorf("%w: storage", ErrUnavailable)
		}
		if ok {
			release = rel
			var cancel context.CancelFunc
			work, cancel = context.WithTimeout(ctx, hold)
			defer cancel()
			continue
		}
		if time.Now().After(deadline) {
			return clerk.TokenSet{}, fmt.Errorf("%w: waiting for another replica's Clerk refresh", ErrUnavailable)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// upstream reads grant gid and opens its Clerk tokens.
func (v *Verifier) upstream(ctx context.Context, gid string) (store.Grant, clerk.TokenSet, error) {
	cur, err := v.store.GetGrant(ctx, gid)
	if errors.Is(err, store.ErrNotFound) {
		v.grants.Delete(gid)
		return cur, clerk.TokenSet{}, fmt.Errorf("%w: the grant was revoked", ErrInvalidToken)
	}
	if err != nil {
		v.metrics.StoreError(ctx, v.log, "get_grant", err)
		return cur, clerk.TokenSet{}, fmt.Errorf("%w: storage", ErrUnavailable)
	}
	ts, err := v.vault.Open(cur.ID, cur.Upstream)
	if err != nil {
		return cur, clerk.TokenSet{}, fmt.Errorf("%w: the grant's Clerk tokens cannot be opened", ErrInvalidToken)
	}
	return cur, ts, nil
}

// doRefresh refreshes at Clerk while holding the lock and stores the result.
func (v *Verifier) doRefresh(ctx context.Context, g store.Grant, ts clerk.TokenSet) (clerk.TokenSet, error) {
	fresh, err := v.clerk.Refresh(ctx, ts.RefreshToken)
	if err != nil {
		if clerk.SessionEnded(err) {
			// Clerk ended the session (revoked, user deleted): so does the grant.
			v.metrics.UpstreamRefreshes.WithLabelValues("rejected").Inc()
			v.log.InfoContext(ctx, "audit", "audit", true, "event", "grant_revoked", "grant_id", g.ID, "reason", "clerk_refresh_rejected", "user_id", g.UserID)
			_ = v.store.DeleteGrant(ctx, g.ID)
			v.grants.Delete(g.ID)
			v.metrics.Revocations.WithLabelValues("clerk_refresh_rejected").Inc()
			return clerk.TokenSet{}, fmt.Errorf("%w: Clerk refused to refresh the session", ErrInvalidToken)
		}
		if clerk.IsRejected(err) {
			// Clerk refused the proxy itself: every user would be signed out
			// if grants ended over it, so they stay and the request waits.
			v.log.ErrorContext(ctx, "Clerk refused the proxy's refresh request (check CLERK_CLIENT_ID/SECRET)", "err", err)
		}
		v.metrics.UpstreamRefreshes.WithLabelValues("unavailable").Inc()
		return clerk.TokenSet{}, fmt.Errorf("%w: Clerk refresh", ErrUnavailable)
	}
	if fresh.RefreshToken == "" {
		fresh.RefreshToken = ts.RefreshToken
	}
	sealed, err := v.vault.Seal(g.ID, fresh)
	if err != nil {
		return clerk.TokenSet{}, fmt.Errorf("%w: sealing", ErrUnavailable)
	}
	updated, err := v.store.UpdateGrant(ctx, g.ID, 0, func(cur *store.Grant) error {
		cur.Upstream, cur.UpstreamExpiresAt = sealed, fresh.ExpiresAt(v.now())
		return nil
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return clerk.TokenSet{}, fmt.Errorf("%w: the grant was revoked", ErrInvalidToken)
		}
		v.metrics.StoreError(ctx, v.log, "update_upstream_tokens", err)
		return clerk.TokenSet{}, fmt.Errorf("%w: storage", ErrUnavailable)
	}
	v.metrics.UpstreamRefreshes.WithLabelValues("ok").Inc()
	v.grants.Set(g.ID, updated, v.now().Add(v.cfg.GrantTTL))
	return fresh, nil
}

// Subject is the identity as the tool policy sees it.
func (id *Identity) Subject() toolpolicy.Subject {
	if id == nil {
		return toolpolicy.Subject{}
	}
	return toolpolicy.Subject{Authenticated: true, Scopes: id.Scopes, OrgID: id.OrgID, OrgRole: id.OrgRole,
		OrgPermissions: id.OrgPermissions}
}
