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
const liveFor = time.Second

var errForeignSession = errors.New("session id does not belong to this user")

// sessionManagers resolves a SessionIdManager bound to the request's user.
type sessionManagers struct {
	signer *seal.Signer
	store  store.Cache
	live   *ttlcache.Cache[string, struct{}] // session ids recently seen not terminated
}

// ResolveSessionIdManager implements server.SessionIdManagerResolver.
func (m *sessionManagers) ResolveSessionIdManager(r *http.Request) server.SessionIdManager {
	userID, ctx := "", context.Background()
	if r != nil {
		ctx = r.Context()
		if id, ok := IdentityFrom(ctx); ok {
			userID = id.UserID
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
	return nonce + "." + base64.RawURLEncoding.EncodeToString(u.m.signer.MAC("mcp-session", u.userID, nonce))
}

func (u *userSessions) owned(id string) bool { return u.m.owns(u.userID, id) }

// owns reports whether session id was generated for userID.
func (m *sessionManagers) owns(userID, id string) bool {
	nonce, mac, ok := strings.Cut(id, ".")
	if !ok || userID == "" || len(id) > 128 {
		return false
	}
	got, err := base64.RawURLEncoding.DecodeString(mac)
	return err == nil && seal.Equal(got, m.signer.MAC("mcp-session", userID, nonce))
}

func (u *userSessions) key(id string) string { return "mcp-session-terminated:" + seal.HashHex(id) }

func (u *userSessions) Validate(id string) (bool, error) {
	if !u.owned(id) {
		return false, errForeignSession
	}
	if u.m.store == nil {
		return false, nil
	}
	if _, ok := u.m.live.Get(id); ok {
		return false, nil
	}
	if _, err := u.m.store.GetCache(u.ctx, u.key(id)); err == nil {
		return true, nil
	}
	u.m.live.Set(id, struct{}{}, time.Now().Add(liveFor))
	return false, nil
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
		_ = u.m.store.SetCache(u.ctx, u.key(id), []byte{1}, terminatedTTL)
	}
	return false, nil
}
