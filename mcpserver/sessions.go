package mcpserver

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/seal"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/ttlcache"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
)

// Session ids are "<random>.<MAC(user id, random)>": any replica can check
// one without shared state, and an id is worthless to any user but the one
// who created it (MCP security best practices: bind sessions to the user).
// Terminated ids are remembered in the shared cache for a day.

const terminatedTTL = 24 * time.Hour

// liveFor is how long this replica trusts "not terminated" without asking
// the shared store again, as the verifier does for grants: a termination on
// another replica takes effect here within it, and the hot path skips a
// Redis round trip per request.
//
// When the store cannot answer (Redis down), the session fails closed: the
// request is refused with 503, exactly as when the grant behind the token
// cannot be read, and nothing is cached. Failing open would serve a session
// its user may have ended on another replica, and buys nothing: the grant
// check on the same request needs Redis too.
const liveFor = time.Second

var errForeignSession = errors.New("session id does not belong to this user")

// sessionManagers resolves a SessionIdManager bound to the request's user.
type sessionManagers struct {
	signer *seal.Signer
	// resource is the path of the protected resource the sessions belong
	// to: with several mounts (gateway upstreams), a session id of one is
	// refused at the others, as a token for one is. The path, not the URL,
	// so that replicas reached under different host names agree.
	resource string
	store    store.Cache
	live     *ttlcache.Cache[string, struct{}] // session ids recently seen not terminated
	// owners remembers whose each recently checked session id is: a MAC
	// check per request (twice: the middleware's and mcp-go's Validate)
	// was a twentieth of the hot path, for an answer that never changes.
	owners *ttlcache.Cache[string, string]
	now    func() time.Time
}

// ownerTTL bounds how long an id's checked owner is remembered unused; the
// answer itself cannot go stale (the MAC is a pure function of the id).
const ownerTTL = 10 * time.Minute

// ResolveSessionIdManager implements server.SessionIdManagerResolver.
func (m *sessionManagers) ResolveSessionIdManager(r *http.Request) server.SessionIdManager {
	userID, ctx := "", context.Background()
	if r != nil {
		ctx = r.Context()
		if id, ok := IdentityFrom(ctx); ok {
			userID = id.UserID
		} else if isAnonymous(ctx) {
			userID = anonymousPrincipal
		}
	}
	return &userSessions{m: m, userID: userID, ctx: ctx}
}

type userSessions struct {
	m      *sessionManagers
	userID string
	ctx    context.Context
}

func (u *userSessions) Generate() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	nonce := base64.RawURLEncoding.EncodeToString(b)
	return nonce + "." + base64.RawURLEncoding.EncodeToString(u.m.mac(u.userID, nonce))
}

func (u *userSessions) owned(id string) bool { return u.m.owns(u.userID, id) }

// mac binds a session nonce to its principal: a user id, or
// anonymousPrincipal under a label of its own.
func (m *sessionManagers) mac(principal, nonce string) []byte {
	if principal == anonymousPrincipal {
		return m.signer.MAC("mcp-session-anonymous", m.resource, nonce)
	}
	return m.signer.MAC("mcp-session", m.resource, principal, nonce)
}

// owns reports whether session id was generated for userID (a user id or
// anonymousPrincipal).
func (m *sessionManagers) owns(userID, id string) bool {
	nonce, mac, ok := strings.Cut(id, ".")
	if !ok || userID == "" || len(id) > maxSessionID {
		return false
	}
	if owner, ok := m.owners.Get(id); ok {
		return owner == userID
	}
	got, err := base64.RawURLEncoding.DecodeString(mac)
	if err != nil || !seal.Equal(got, m.mac(userID, nonce)) {
		return false
	}
	m.owners.Set(id, userID, m.now().Add(ownerTTL))
	return true
}

// maxSessionID bounds the ids owns will MAC. Room for an upstream's id
// wrapped by BindSession (base64url of up to 256 bytes plus the MAC); the
// built-in server's own ids are 68 bytes.
const maxSessionID = 420

// maxUpstreamSessionID is the longest upstream session id BindSession wraps.
const maxUpstreamSessionID = 256

// BindSession wraps a session id minted by an upstream MCP server (gateway
// mode) into an id bound to userID. It has the shape of the built-in
// server's ids, "<nonce>.<MAC(user, nonce)>", with the upstream id
// (base64url) as the nonce, so the middleware's ownership check applies to
// it unchanged and any replica can verify it without shared state: another
// user presenting it gets the same 404 as for an unknown session. ok is
// false for an id too long to wrap.
func (s *Server) BindSession(userID, upstreamID string) (string, bool) {
	if upstreamID == "" || len(upstreamID) > maxUpstreamSessionID || userID == "" {
		return "", false
	}
	nonce := base64.RawURLEncoding.EncodeToString([]byte(upstreamID))
	return nonce + "." + base64.RawURLEncoding.EncodeToString(s.sessions.mac(userID, nonce)), true
}

// UpstreamSession unwraps an id made by BindSession for userID; ok is false
// for an id of another user, a forged one, or one that wraps nothing.
func (s *Server) UpstreamSession(userID, id string) (string, bool) {
	if !s.sessions.owns(userID, id) {
		return "", false
	}
	nonce, _, _ := strings.Cut(id, ".")
	raw, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(raw) == 0 {
		return "", false
	}
	return string(raw), true
}

func terminatedKey(id string) string { return "mcp-session-terminated:" + seal.HashHex(id) }

// terminated reports whether session id was ended. A store error is returned
// as such, never read as "not terminated" (fail closed, see liveFor).
func (m *sessionManagers) terminated(ctx context.Context, id string) (bool, error) {
	if m.store == nil {
		return false, nil
	}
	if _, ok := m.live.Get(id); ok {
		return false, nil
	}
	_, err := m.store.GetCache(ctx, terminatedKey(id))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrNotFound):
		m.live.Set(id, struct{}{}, m.now().Add(liveFor))
		return false, nil
	default:
		return false, err
	}
}

// Validate answers mcp-go. The middleware has already checked the session
// (and answered 503 if the store failed), so this is normally a cache hit; a
// store failure here still refuses the session (mcp-go answers 404).
func (u *userSessions) Validate(id string) (bool, error) {
	if !u.owned(id) {
		return false, errForeignSession
	}
	return u.m.terminated(u.ctx, id)
}

func (u *userSessions) Terminate(id string) (bool, error) {
	if u.userID == "" {
		// Server-side cleanup (no request): nothing to record.
		return false, nil
	}
	if !u.owned(id) {
		return true, nil // not allowed: someone else's session
	}
	if u.m.store != nil {
		u.m.live.Delete(id)
		// Unrecorded, the session would live on at every replica: say so
		// (mcp-go answers 500) rather than confirm an ending that did not happen.
		if err := u.m.store.SetCache(u.ctx, terminatedKey(id), []byte{1}, terminatedTTL); err != nil {
			return false, err
		}
	}
	return false, nil
}
