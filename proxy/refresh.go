package proxy

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/clerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/httpx"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/seal"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/tokens"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
)

// Outcomes of presenting a refresh token, decided inside one atomic grant
// update so concurrent refreshes on any replica agree.
var (
	errRefreshUnknown = errors.New("refresh token not recognised")
	errRefreshReuse   = errors.New("refresh token reuse")
	errRefreshGrace   = errors.New("previous refresh token replayed while in grace")
	errRefreshParams  = errors.New("refresh asks for scopes beyond the grant or another resource")
)

// refreshGrant implements RFC 6749 §6 with rotation on every use (OAuth 2.1
// §4.3.1, RFC 9700 §4.14.2):
//
//   - the current token rotates: a new refresh token, the old one becomes
//     "previous";
//   - the previous token stays usable until its successor is first used (at
//     /token, or at /mcp through an access token issued with it), and for
//     REFRESH_GRACE after the rotation in any case: it gets the same new
//     refresh token back (sealed under a key only the previous token
//     derives) and a fresh access token, and nothing is revoked. A client
//     that lost the answer to a refresh and retries hours later, or that
//     refreshes from two places, keeps its session;
//   - the previous token once its successor is in use and the window has
//     passed, or any older generation, is a replay by someone holding a
//     stolen token: the whole grant is revoked;
//   - anything else is simply invalid (a forged token cannot revoke a grant).
//
// REFRESH_GRACE=0 turns the leniency off altogether (strict rotation).
func (s *Server) refreshGrant(r *http.Request, client store.Client, p params) (tokenResponse, *oauthError) {
	presented := p.get("refresh_token")
	if presented == "" {
		return tokenResponse{}, errInvalidRequest("refresh_token is required")
	}
	gid, ok := tokens.ParseRefreshToken(presented)
	if !ok {
		return tokenResponse{}, errInvalidGrant("the refresh token is invalid")
	}
	next, err := tokens.NewRefreshToken(gid, s.rand)
	if err != nil {
		return tokenResponse{}, errServer("could not issue tokens")
	}
	// RFC 8707 §2.2: a refresh may name the resource again, and it must be
	// the one the grant is for (MCP clients send it on every token request);
	// anything else is invalid_target, never silently a token for another
	// resource (checked against the grant, below).
	var resourceErr *oauthError
	now := s.now().UTC()
	h := seal.Hash(presented)
	var graceToken string
	g, err := s.store.UpdateGrant(r.Context(), gid, s.cfg.RefreshTokenTTL, func(g *store.Grant) error {
		if !g.Active || g.ClientID != client.ID {
			return errRefreshUnknown
		}
		rc := &g.Refresh
		// A widening scope or a foreign resource is refused before anything
		// rotates: a refused refresh must leave the presented token current
		// (RFC 6749 §6), or its next use, after the grace window, would read
		// as reuse and end the grant. (Only for tokens that would get an
		// answer: reuse of an old token is still reuse, whatever it asks for.)
		_, scopeErr := narrowScopes(g.Scopes, p.get("scope"))
		if res := p.get("resource"); res != "" && !sameResource(res, s.grantResource(*g)) {
			resourceErr = errInvalidTarget("resource does not match the authorization")
		}
		inGrace := s.previousInGrace(*rc, h, now)
		if (scopeErr != nil || resourceErr != nil) && (seal.Equal(h, rc.Current) || inGrace) {
			return errRefreshParams
		}
		switch {
		case seal.Equal(h, rc.Current):
			sealed, err := seal.SealWithSecret(presented, []byte(next), []byte(gid), s.rand)
			if err != nil {
				return err
			}
			if len(rc.Previous) > 0 {
				rc.Retired = append(rc.Retired, rc.Previous)
				if len(rc.Retired) > maxRetired {
					rc.Retired = rc.Retired[len(rc.Retired)-maxRetired:]
				}
			}
			rc.Previous, rc.Current = rc.Current, seal.Hash(next)
			rc.CurrentSealedForPrevious = sealed
			rc.RotatedAt = now
			rc.Generation++
			rc.CurrentUsed = false
			g.ExpiresAt = now.Add(s.cfg.RefreshTokenTTL)
			return nil
		case inGrace:
			current, err := seal.OpenWithSecret(presented, rc.CurrentSealedForPrevious, []byte(gid))
			if err != nil {
				return errRefreshUnknown
			}
			graceToken = string(current)
			return errRefreshGrace // nothing to write
		case spent(*rc, h):
			return errRefreshReuse
		default:
			return errRefreshUnknown
		}
	})
	switch {
	case err == nil:
		s.metrics.Refreshes.Inc()
	case errors.Is(err, errRefreshGrace):
		s.metrics.GraceHits.Inc()
		s.audit(r, "refresh_grace_replay", "client_id", client.ID, "grant_id", gid)
		if g, err = s.store.GetGrant(r.Context(), gid); err != nil {
			return tokenResponse{}, errInvalidGrant("the refresh token is invalid or expired")
		}
		next = graceToken
	case errors.Is(err, errRefreshReuse):
		s.metrics.ReuseDetections.WithLabelValues("refresh_token").Inc()
		s.audit(r, "refresh_token_reuse_detected", "client_id", client.ID, "grant_id", gid)
		s.revokeGrant(r, gid, "refresh_reuse")
		return tokenResponse{}, errInvalidGrant("the refresh token was already used; the session is revoked, sign in again")
	case errors.Is(err, errRefreshParams) && resourceErr != nil:
		return tokenResponse{}, resourceErr
	case errors.Is(err, errRefreshParams):
		return tokenResponse{}, errInvalidScope("a refresh cannot add scopes that were not granted")
	case errors.Is(err, errRefreshUnknown), errors.Is(err, store.ErrNotFound):
		return tokenResponse{}, errInvalidGrant("the refresh token is invalid or expired")
	default:
		s.storeError(r, "rotate_refresh", err)
		return tokenResponse{}, errUnavailable("the authorization server is temporarily unavailable")
	}
	httpx.SetUser(r.Context(), g.UserID)
	scopes, oe := narrowScopes(g.Scopes, p.get("scope"))
	if oe != nil {
		return tokenResponse{}, oe
	}
	resp, oe := s.tokenPair(g, scopes, next)
	if oe == nil {
		s.audit(r, "tokens_issued", "grant_type", "refresh_token", "client_id", client.ID, "user_id", g.UserID)
	}
	return resp, oe
}

// previousInGrace reports whether h is the hash of the refresh token rotated
// out last, presented while it is still in grace: its successor not yet used,
// or within REFRESH_GRACE of the rotation (a retry racing the successor's
// first use). Answered (refreshGrant) and live (identifyToken), not reuse.
func (s *Server) previousInGrace(rc store.RefreshChain, h []byte, now time.Time) bool {
	return seal.Equal(h, rc.Previous) && s.cfg.RefreshGrace > 0 &&
		(!rc.CurrentUsed || now.Sub(rc.RotatedAt) <= s.cfg.RefreshGrace)
}

// spent reports whether h is the hash of a refresh token of this grant that
// has been rotated out (the previous one or an older generation).
func spent(rc store.RefreshChain, h []byte) bool {
	return seal.Equal(h, rc.Previous) || slices.ContainsFunc(rc.Retired, func(old []byte) bool { return seal.Equal(h, old) })
}

// narrowScopes applies RFC 6749 §6: a refresh may ask for fewer scopes, never
// more. The grant (and so the refresh token) keeps its scopes.
func narrowScopes(granted []string, requested string) ([]string, *oauthError) {
	if strings.TrimSpace(requested) == "" {
		return granted, nil
	}
	var out []string
	for _, sc := range strings.Fields(requested) {
		if sc == "offline_access" {
			continue
		}
		if !slices.Contains(granted, sc) {
			return nil, errInvalidScope("a refresh cannot add scopes that were not granted")
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	if len(out) == 0 {
		return granted, nil
	}
	return out, nil
}

// revokeGrant ends a grant: its record goes (so every access token issued
// from it fails on every replica within the verifier's grant-cache TTL, and
// at once on this one) and Clerk's tokens are revoked at Clerk.
// False when the store failed and the grant may still be alive.
func (s *Server) revokeGrant(r *http.Request, gid, reason string) bool {
	if gid == "" {
		return true
	}
	g, err := s.store.GetGrant(r.Context(), gid)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.storeError(r, "get_grant", err)
	}
	g.ID = gid
	return s.endGrant(r, g, reason)
}

// endGrant deletes grant g (read by the caller) and revokes its Clerk tokens;
// false when the store failed and the grant may still be alive.
func (s *Server) endGrant(r *http.Request, g store.Grant, reason string) bool {
	gid := g.ID
	if err := s.store.DeleteGrant(r.Context(), gid); err != nil {
		s.storeError(r, "delete_grant", err)
		return false
	}
	if s.events != nil {
		s.events.GrantRevoked(gid)
	}
	s.metrics.Revocations.WithLabelValues(reason).Inc()
	s.audit(r, "grant_revoked", "grant_id", gid, "reason", reason, "client_id", g.ClientID, "user_id", g.UserID)
	if len(g.Upstream) == 0 {
		return true
	}
	ts, err := s.vault.Open(gid, g.Upstream)
	if err != nil {
		return true
	}
	s.revokeUpstream(r, ts, "grant_id", gid)
	return true
}

// endGrants ends every grant in gs (found through the grant index) and
// reports how many ended; err when the store failed for any of them, so the
// caller can answer 503 and be retried (ending a grant twice is harmless).
func (s *Server) endGrants(r *http.Request, gs []store.Grant, reason string) (int, error) {
	n := 0
	for _, g := range gs {
		if !s.endGrant(r, g, reason) {
			return n, errGrantStore
		}
		n++
	}
	return n, nil
}

// errGrantStore: ending a grant failed in the store (already logged).
var errGrantStore = errors.New("proxy: the store failed while ending grants")

// revokeUpstream revokes Clerk's tokens at Clerk: best effort and bounded,
// since the proxy has already let go of them locally. logAttrs say whose
// they were.
func (s *Server) revokeUpstream(r *http.Request, ts clerk.TokenSet, logAttrs ...any) {
	ctx := r.Context()
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	for _, t := range []struct{ token, hint string }{{ts.RefreshToken, "refresh_token"}, {ts.AccessToken, "access_token"}} {
		if t.token == "" {
			continue
		}
		if err := s.clerk.Revoke(cctx, t.token, t.hint); err != nil {
			s.log.WarnContext(ctx, "revoking a Clerk token failed", append([]any{"token_type", t.hint, "err", err}, logAttrs...)...)
		}
	}
}
