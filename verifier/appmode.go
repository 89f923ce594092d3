package verifier

// AUTH_MODE=app: a grant is bound to the Clerk session the user signed in
// with through the team's app, and holds no Clerk OAuth token. The hot path
// checks that session instead of introspecting a token: the Backend API's
// GET /v1/sessions/{id}, an active answer trusted for INTROSPECTION_CACHE_TTL
// in-process and in the shared store, concurrent misses sharing one call.
// A session that is over (revoked, ended, expired, removed) ends the grant.
// The profile (email, name, picture) comes from the Backend API's user.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/clerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/tokens"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
)

// SessionChecker answers for Clerk sessions and users (clerk.Client).
type SessionChecker interface {
	Session(ctx context.Context, sessionID string) (clerk.Session, error)
	User(ctx context.Context, userID string) (map[string]any, error)
}

// verifySessionGrant finishes the hot path for a session-bound grant.
func (v *Verifier) verifySessionGrant(ctx context.Context, g store.Grant, claims tokens.AccessClaims) (*Identity, error) {
	live, err := v.sessionLive(ctx, g.ClerkSession, g.UserID)
	if err != nil {
		return nil, err
	}
	if !live {
		v.log.InfoContext(ctx, "audit", "audit", true, "event", "grant_revoked", "grant_id", g.ID, "reason", "clerk_session_ended", "user_id", g.UserID)
		if err := v.store.DeleteGrant(context.WithoutCancel(ctx), g.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			v.metrics.StoreError(ctx, v.log, "delete_grant", err)
		}
		v.grants.Delete(g.ID)
		v.metrics.Revocations.WithLabelValues("clerk_session_ended").Inc()
		return nil, fmt.Errorf("%w: the Clerk session behind the grant has ended", ErrInvalidToken)
	}
	id := &Identity{UserID: g.UserID, ClientID: claims.ClientID, Scopes: claims.Scopes(), GrantID: g.ID, Expires: claims.ExpiresAt(), Resource: claims.Audience}
	// No OAuth token for userinfo here: the profile comes from the Backend
	// API's user record, cached like userinfo, never fatal.
	if ui, ok := v.profile(ctx, "bapiuser:"+g.UserID, func(ctx context.Context) (clerk.UserInfo, error) {
		u, err := v.sessions.User(ctx, g.UserID)
		return clerk.ProfileFromUser(u), err
	}); ok {
		id.fill(ui)
	}
	v.orgRole(ctx, id)
	return id, nil
}

// sessionLive reports whether the session is active and userID's, through
// the caches (only "live" is cached: an ended session is looked at once).
func (v *Verifier) sessionLive(ctx context.Context, sid, userID string) (bool, error) {
	key := "session:" + sid
	if _, ok := v.live.Get(key); ok {
		v.metrics.CacheLookup("session", true)
		return true, nil
	}
	v.metrics.CacheLookup("session", false)
	if v.sessions == nil {
		return false, fmt.Errorf("%w: no Clerk session checker configured", ErrUnavailable)
	}
	res, err, _ := v.flight.Do(key, func() (any, error) {
		if _, ok := v.live.Get(key); ok { // filled by the call that just ended
			return true, nil
		}
		if _, err := v.store.GetCache(ctx, key); err == nil {
			v.live.Set(key, struct{}{}, v.now().Add(min(v.cfg.IntrospectionTTL, 5*time.Second)))
			return true, nil
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		s, err := v.sessions.Session(cctx, sid)
		if err != nil {
			return false, err
		}
		live := s.Active() && s.UserID == userID
		if live && v.cfg.IntrospectionTTL > 0 {
			v.live.Set(key, struct{}{}, v.now().Add(v.cfg.IntrospectionTTL))
			_ = v.store.SetCache(cctx, key, []byte("1"), v.cfg.IntrospectionTTL)
		}
		return live, nil
	})
	if err != nil {
		if clerk.IsTransient(err) {
			v.log.WarnContext(ctx, "Clerk sessions unavailable", "err", err)
		} else {
			v.log.ErrorContext(ctx, "Clerk refused the proxy's session lookup (check CLERK_SECRET_KEY)", "err", err)
		}
		return false, fmt.Errorf("%w: Clerk session lookup", ErrUnavailable)
	}
	return res.(bool), nil
}
