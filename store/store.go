// Package store owns every piece of state clerk-mcp-proxy keeps: registered
// clients, single-use tickets (authorization transactions, upstream states,
// authorization codes), grants holding the sealed Clerk tokens and the refresh
// token chain, the shared signing key set, short-lived caches, locks,
// rate-limit counters and a bounded log of recent security events.
//
// Two backends implement Store: store/redisstore (production; any number of
// replicas share it) and store/memstore (the dev mode and unit tests). Both pass
// the one conformance suite in store/storetest, which is the executable
// definition of the semantics documented here.
//
// The store never sees a secret in the clear: callers pass hashes of codes and
// tokens as ids, and seal upstream tokens and private keys before handing them
// over. Values are opaque bytes or plain records; nothing here interprets them.
package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Backends return them (possibly wrapped) so callers can use
// errors.Is.
var (
	// ErrNotFound: the record does not exist or has expired.
	ErrNotFound = errors.New("store: not found")
	// ErrAlreadyExists: a create found a record under the same id.
	ErrAlreadyExists = errors.New("store: already exists")
	// ErrSpent: a single-use ticket was consumed before. The previous value is
	// returned alongside so the caller can react (e.g. revoke what it issued).
	ErrSpent = errors.New("store: ticket already consumed")
	// ErrConflict: an optimistic update kept losing to concurrent writers.
	ErrConflict = errors.New("store: too much contention")
)

// Store is everything the proxy needs. Consumers should depend on the narrow
// interfaces below, not on Store.
type Store interface {
	Clients
	Tickets
	Grants
	GrantIndex
	KeySets
	Cache
	Locker
	Counters
	Events
	// Ping reports whether the backend is reachable (readiness).
	Ping(ctx context.Context) error
	// Close releases connections. The store is unusable afterwards.
	Close() error
}

// Client is a registered OAuth client (RFC 7591 or a Client ID Metadata
// Document). Secrets are stored only as SHA-256 hashes.
type Client struct {
	ID                      string   `json:"id"`
	SecretHash              []byte   `json:"secret_hash,omitempty"`
	RegistrationTokenHash   []byte   `json:"registration_token_hash,omitempty"` // RFC 7592
	Name                    string   `json:"name,omitempty"`
	URI                     string   `json:"uri,omitempty"`
	LogoURI                 string   `json:"logo_uri,omitempty"`
	RedirectURIs            []string `json:"redirect_uris"`
	GrantTypes              []string `json:"grant_types,omitempty"`
	ResponseTypes           []string `json:"response_types,omitempty"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	Scope                   string   `json:"scope,omitempty"`
	ApplicationType         string   `json:"application_type,omitempty"`
	Metadata                bool     `json:"metadata_document,omitempty"` // fetched from a CIMD URL
	// JWKSURI and JWKS are where a private_key_jwt client (CIMD only)
	// publishes its public keys: a URL, or the JSON Web Key Set inline.
	JWKSURI   string    `json:"jwks_uri,omitempty"`
	JWKS      string    `json:"jwks,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Clients holds registered clients. A ttl of 0 means no expiry.
type Clients interface {
	// CreateClient stores c; ErrAlreadyExists when c.ID is taken.
	CreateClient(ctx context.Context, c Client, ttl time.Duration) error
	// PutClient creates or replaces c (CIMD documents are re-fetched).
	PutClient(ctx context.Context, c Client, ttl time.Duration) error
	// GetClient returns the client or ErrNotFound.
	GetClient(ctx context.Context, id string) (Client, error)
	// TouchClient resets the client's expiry to ttl from now (idle expiry);
	// ErrNotFound when it is gone.
	TouchClient(ctx context.Context, id string, ttl time.Duration) error
	// DeleteClient removes the client; deleting a missing client is not an error.
	DeleteClient(ctx context.Context, id string) error
}

// Kind names a family of single-use tickets. Each kind has its own key space.
type Kind string

// Ticket kinds used by the proxy.
const (
	KindTransaction   Kind = "txn"   // an authorization request waiting for consent
	KindUpstreamState Kind = "state" // a consented request waiting for Clerk's callback
	KindCode          Kind = "code"  // a proxy authorization code waiting for /token
	KindAssertion     Kind = "jti"   // a client assertion's jti, kept until the assertion expires (replay guard)
	KindWebhook       Kind = "whk"   // a webhook delivery's svix-id, kept while its timestamp is accepted (replay guard)
)

// Tickets are short-lived, single-use records. ids are opaque; callers hash
// anything secret before using it as an id.
type Tickets interface {
	// PutTicket stores value under (kind, id) for ttl; ErrAlreadyExists when
	// the id is live or spent.
	PutTicket(ctx context.Context, kind Kind, id string, value []byte, ttl time.Duration) error
	// PeekTicket reads a live ticket without consuming it; ErrNotFound otherwise.
	PeekTicket(ctx context.Context, kind Kind, id string) ([]byte, error)
	// ConsumeTicket atomically reads and deletes a live ticket: of any number of
	// concurrent callers exactly one gets the value. When keepSpent > 0 a spent
	// marker holding the value stays for keepSpent; consuming it again returns
	// (value, ErrSpent). Unknown or expired: (nil, ErrNotFound).
	ConsumeTicket(ctx context.Context, kind Kind, id string, keepSpent time.Duration) ([]byte, error)
}

// Grant is one user's authorization of one client: the sealed Clerk tokens
// behind it and the chain of the proxy refresh tokens issued for it. Deleting
// a grant revokes everything issued from it.
type Grant struct {
	ID        string    `json:"id"`
	UserID    string    `json:"user_id"`
	ClientID  string    `json:"client_id"`
	Scopes    []string  `json:"scopes"`
	Resource  string    `json:"resource,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is the end of the grant's life (the refresh-token lifetime);
	// zero means no absolute end.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// Upstream is the sealed Clerk token set (AES-GCM, grant id as AAD).
	Upstream []byte `json:"upstream"`
	// UpstreamExpiresAt is when the Clerk access token expires.
	UpstreamExpiresAt time.Time `json:"upstream_expires_at,omitzero"`
	// Refresh is the proxy's refresh-token chain.
	Refresh RefreshChain `json:"refresh"`
	// Active is false until the authorization code is redeemed.
	Active bool `json:"active"`
	// ClerkSession, in AUTH_MODE=app, is the Clerk session the grant is
	// bound to (sess_…): the grant lives while the session is active.
	ClerkSession string `json:"clerk_session,omitempty"`
	// Version is maintained by the store: it changes on every successful
	// update. Callers must not set it.
	Version int64 `json:"version"`
}

// RefreshChain records which refresh tokens of a grant are current, which one
// was just replaced (grace window) and which ones are retired (reuse detection).
// All values are SHA-256 hashes or sealed bytes, never tokens.
type RefreshChain struct {
	Current   []byte    `json:"current,omitempty"`
	Previous  []byte    `json:"previous,omitempty"`
	RotatedAt time.Time `json:"rotated_at,omitzero"`
	// CurrentSealedForPrevious is the current token sealed under a key derived
	// from the previous token, so a grace-window replay of the previous token
	// can be answered with the same current token (idempotent rotation).
	CurrentSealedForPrevious []byte `json:"current_sealed_for_previous,omitempty"`
	// Retired holds hashes of older generations (bounded by the caller).
	Retired [][]byte `json:"retired,omitempty"`
	// Generation counts rotations.
	Generation int64 `json:"generation"`
	// CurrentUsed records that the current token, or an access token issued
	// together with it (same Generation), has been used: from then on the
	// previous token is spent (the proxy's refresh rule, see SECURITY.md).
	CurrentUsed bool `json:"current_used,omitempty"`
}

// Grants holds grants. Updates are compare-and-swap on Version so concurrent
// writers on any replica never lose each other's changes.
type Grants interface {
	// CreateGrant stores g for ttl (0 = no expiry); ErrAlreadyExists on a taken id.
	CreateGrant(ctx context.Context, g Grant, ttl time.Duration) error
	// GetGrant returns the grant or ErrNotFound.
	GetGrant(ctx context.Context, id string) (Grant, error)
	// UpdateGrant applies fn to the current grant and stores the result
	// atomically, retrying fn on concurrent modification (fn must be free of
	// side effects it cannot repeat). An error from fn aborts the update and is
	// returned as is. ttl > 0 resets the expiry; 0 keeps it. Returns the stored
	// grant, ErrNotFound, or ErrConflict after too many lost races.
	UpdateGrant(ctx context.Context, id string, ttl time.Duration, fn func(g *Grant) error) (Grant, error)
	// DeleteGrant removes the grant; deleting a missing grant is not an error.
	DeleteGrant(ctx context.Context, id string) error
}

// GrantIndex finds grants by the user and by the client they were made for,
// so a user's grants can be listed and ended together (connected apps, a
// deleted Clerk user) and a client can be revoked everywhere.
//
// The index never misses a live grant: CreateGrant indexes the grant before
// (or, in memory, together with) storing it, every update with a ttl keeps
// the index alive at least as long as the grant, and DeleteGrant removes the
// grant before its index entries. What can lag is the other direction (an
// index entry whose grant has expired or was deleted half-way); listings skip
// and prune such entries, so callers only ever see live grants.
type GrantIndex interface {
	// ListGrantsByUser returns every live grant of userID, active or not, in
	// no particular order; none is not an error.
	ListGrantsByUser(ctx context.Context, userID string) ([]Grant, error)
	// ListGrantsByClient returns every live grant made for clientID.
	ListGrantsByClient(ctx context.Context, clientID string) ([]Grant, error)
	// ListGrantClients returns the ids of clients that hold live grants (a
	// Client ID Metadata Document client has no stored registration to find
	// them by). An id may occasionally be listed whose grants have all just
	// ended; ListGrantsByClient then returns none.
	ListGrantClients(ctx context.Context) ([]string, error)
	// ListClients returns every live client record: registrations and cached
	// metadata documents. It walks the whole key space on Redis, so it is for
	// operators, never for a request path.
	ListClients(ctx context.Context) ([]Client, error)
}

// KeySets holds the proxy's signing key set, shared by all replicas. The value
// is sealed by the caller.
type KeySets interface {
	// GetOrCreateKeySet stores candidate if no key set exists yet and returns
	// whichever value is stored afterwards, so racing replicas agree.
	GetOrCreateKeySet(ctx context.Context, candidate []byte) ([]byte, error)
	// SwapKeySet replaces old with next if the stored value still equals old
	// (key rotation); returns the stored value afterwards and whether it swapped.
	SwapKeySet(ctx context.Context, old, next []byte) ([]byte, bool, error)
}

// Cache is a shared key-value cache with mandatory expiry (introspection
// results, userinfo, client metadata documents).
type Cache interface {
	GetCache(ctx context.Context, key string) ([]byte, error) // ErrNotFound on miss
	SetCache(ctx context.Context, key string, value []byte, ttl time.Duration) error
	DeleteCache(ctx context.Context, key string) error
}

// Locker hands out leases so one replica at a time does a piece of work
// (e.g. refreshing a Clerk token).
type Locker interface {
	// TryLock takes the lease name for ttl. ok is false when someone else holds
	// it. release frees the lease only if it is still ours.
	TryLock(ctx context.Context, name string, ttl time.Duration) (release func(context.Context) error, ok bool, err error)
}

// Counters are fixed-window counters for rate limits shared by replicas.
type Counters interface {
	// Hit adds one to the counter name, whose window starts at its first hit
	// and lasts window, and returns the count so far and the time left in the
	// window.
	Hit(ctx context.Context, name string, window time.Duration) (count int64, resetIn time.Duration, err error)
}

// Events is a bounded log of recent security events shared by every replica
// (the operator console's "recent events"). Entries are opaque bytes that
// never hold a secret.
type Events interface {
	// AppendEvent adds value as the newest entry, keeps at most max entries
	// (the oldest are dropped) and lets the whole log expire ttl after this
	// append, so an idle deployment keeps no old events forever.
	AppendEvent(ctx context.Context, value []byte, max int, ttl time.Duration) error
	// RecentEvents returns up to n entries, newest first; none is not an
	// error.
	RecentEvents(ctx context.Context, n int) ([][]byte, error)
}
