package proxy

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/clientid"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/oautherr"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/seal"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/tokens"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
)

// tokenInfo is what the proxy knows about one of its own tokens.
type tokenInfo struct {
	kind   string // "access_token" or "refresh_token"
	grant  store.Grant
	claims tokens.AccessClaims // access tokens only
}

// identifyToken finds the live grant behind an access or refresh token of
// this server; ok is false for anything unknown, expired or revoked, and for
// tokens of a client whose registration is gone.
func (s *Server) identifyToken(r *http.Request, token string) (tokenInfo, bool, error) {
	if gid, ok := tokens.ParseRefreshToken(token); ok {
		g, err := s.liveGrant(r, gid)
		if err != nil || g.ID == "" {
			return tokenInfo{}, false, err
		}
		h := seal.Hash(token)
		rc := g.Refresh
		live := seal.Equal(h, rc.Current) || s.previousInGrace(rc, h, s.now())
		known := live || spent(rc, h)
		if !g.Active || !known {
			return tokenInfo{}, false, nil
		}
		return tokenInfo{kind: "refresh_token", grant: g}, live, nil
	}
	claims, err := s.keys.Verify(token, tokens.Expectations{Issuer: s.cfg.Issuer, Audience: s.cfg.Resource, Audiences: s.cfg.Resources, Now: s.now(), Leeway: 5 * time.Second})
	if err != nil {
		return tokenInfo{}, false, nil
	}
	g, err := s.liveGrant(r, claims.GrantID)
	if err != nil || g.ID == "" {
		return tokenInfo{}, false, err
	}
	if !g.Active || g.ClientID != claims.ClientID {
		return tokenInfo{}, false, nil
	}
	return tokenInfo{kind: "access_token", grant: g, claims: claims}, true, nil
}

// liveGrant returns grant gid, or a zero grant when it or its client's
// registration is gone; err only for a storage failure.
func (s *Server) liveGrant(r *http.Request, gid string) (store.Grant, error) {
	g, err := s.store.GetGrant(r.Context(), gid)
	if err != nil {
		return store.Grant{}, ignoreNotFound(err)
	}
	if gone, err := clientid.Gone(r.Context(), s.store, g.ClientID); err != nil || gone {
		return store.Grant{}, err
	}
	return g, nil
}

func ignoreNotFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// revoke implements RFC 7009. Revoking either token of a grant ends the
// grant (its access tokens stop working on every replica) and revokes Clerk's
// tokens at Clerk. Unknown tokens and tokens of other clients get 200 too
// (§2.2), without effect for the latter.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request, client store.Client, p params) *oauthError {
	token := p.get("token")
	if token == "" {
		return errInvalidRequest("token is required")
	}
	if hint := p.get("token_type_hint"); hint != "" && hint != "access_token" && hint != "refresh_token" {
		return oautherr.New(http.StatusBadRequest, oautherr.UnsupportedTokenType, "token_type_hint must be access_token or refresh_token")
	}
	info, _, err := s.identifyToken(r, token)
	if err != nil {
		s.storeError(r, "identify_token", err)
		return errUnavailable("the authorization server is temporarily unavailable").WithCause(err)
	}
	if info.grant.ID != "" && info.grant.ClientID == client.ID && !s.revokeGrant(r, info.grant.ID, "revoked_by_client") {
		// §2.2: on a 503 the client must assume the token still exists and
		// may retry; a 200 here would tell it the grant ended when it may not
		// have.
		return errUnavailable("the authorization server is temporarily unavailable")
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	return nil
}

// introspect implements RFC 7662 for the proxy's own tokens, so other
// resource servers can rely on this authorization server. Callers must be
// confidential clients (§2.1: the endpoint requires authorization).
func (s *Server) introspect(w http.ResponseWriter, r *http.Request, client store.Client, p params) *oauthError {
	if client.TokenEndpointAuthMethod == authNone {
		_, hasBasic := bearerlessBasic(r)
		return errInvalidClient("introspection requires a confidential client", hasBasic)
	}
	token := p.get("token")
	if token == "" {
		return errInvalidRequest("token is required")
	}
	info, active, err := s.identifyToken(r, token)
	if err != nil {
		s.storeError(r, "identify_token", err)
		return errUnavailable("the authorization server is temporarily unavailable").WithCause(err)
	}
	// A refresh token is only ever shown to this server by the client it was
	// issued to; resource servers never hold one. To anyone else it is
	// inactive (RFC 7662 §2.2 lets the answer depend on the caller), so a
	// stolen refresh token cannot be checked for liveness, user and scope
	// without being spent.
	if info.kind == "refresh_token" && info.grant.ClientID != client.ID {
		active = false
	}
	if !active {
		writeJSON(w, http.StatusOK, map[string]any{"active": false})
		return nil
	}
	g := info.grant
	resp := map[string]any{
		"active":     true,
		"client_id":  g.ClientID,
		"sub":        g.UserID,
		"iss":        s.cfg.Issuer,
		"aud":        s.grantResource(g),
		"token_type": info.kind,
	}
	if info.kind == "access_token" {
		resp["scope"] = info.claims.Scope
		resp["exp"] = info.claims.Expiry
		resp["iat"] = info.claims.IssuedAt
		resp["nbf"] = info.claims.NotBefore
		resp["jti"] = info.claims.ID
		resp["token_type"] = "Bearer"
	} else {
		resp["scope"] = strings.Join(g.Scopes, " ")
		if !g.ExpiresAt.IsZero() {
			resp["exp"] = g.ExpiresAt.Unix()
		}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func bearerlessBasic(r *http.Request) (string, bool) {
	id, _, ok := r.BasicAuth()
	return id, ok
}
