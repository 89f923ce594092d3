package mockclerk

import (
	"crypto/subtle"
	"encoding/json"
	"mime"
	"net/http"
	"strings"
	"time"
)

// Backend API (wire facts §11) on the same origin: user records,
// organization memberships and OAuth access-token verification, all behind
// "Authorization: Bearer sk_…".
func (s *Server) bapiRoutes() {
	// GET /v1/jwks: the instance keys through the Backend API (§10).
	s.mux.HandleFunc("GET /v1/jwks", s.bapi(s.handleJWKS))
	s.mux.HandleFunc("GET /v1/users/{id}", s.bapi(s.handleUser))
	s.mux.HandleFunc("GET /v1/users/{id}/organization_memberships", s.bapi(s.handleMemberships))
	s.mux.HandleFunc("POST /oauth_applications/access_tokens/verify", s.bapi(s.handleVerify))
	s.mux.HandleFunc("POST /v1/oauth_applications/access_tokens/verify", s.bapi(s.handleVerify))
}

func (s *Server) bapi(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		scheme, key, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "bearer") || subtle.ConstantTimeCompare([]byte(key), []byte(s.cfg.SecretKey)) != 1 {
			writeClerkError(w, http.StatusUnauthorized, "authentication_invalid", "The provided Clerk Secret Key is invalid.")
			return
		}
		h(w, r)
	}
}

func (s *Server) handleUser(w http.ResponseWriter, r *http.Request) {
	u, ok := s.user(r.PathValue("id"))
	if !ok {
		writeClerkError(w, http.StatusNotFound, "resource_not_found", "User not found")
		return
	}
	emailID := "idn_" + strings.TrimPrefix(u.ID, "user_")
	public, private, unsafe := u.metadata()
	writeJSON(w, http.StatusOK, map[string]any{
		"id": u.ID, "object": "user", "first_name": u.FirstName, "last_name": u.LastName, "username": u.Username,
		"image_url": u.ImageURL, "has_image": u.ImageURL != "", "primary_email_address_id": emailID,
		"email_addresses": []map[string]any{{"id": emailID, "object": "email_address", "email_address": u.Email,
			"verification": map[string]any{"status": "verified", "strategy": "email_code"}}},
		"public_metadata": public, "private_metadata": private, "unsafe_metadata": unsafe, "banned": false, "locked": false,
		"created_at": int64(1700000000000), "updated_at": int64(1700000000000), "last_sign_in_at": int64(1700000000000),
	})
}

func (s *Server) handleMemberships(w http.ResponseWriter, r *http.Request) {
	u, ok := s.user(r.PathValue("id"))
	if !ok {
		writeClerkError(w, http.StatusNotFound, "resource_not_found", "User not found")
		return
	}
	data := []map[string]any{}
	if u.Org != nil {
		perms := u.Org.Permissions
		if perms == nil {
			perms = []string{}
		}
		data = append(data, map[string]any{"object": "organization_membership", "id": "orgmem_" + strings.TrimPrefix(u.ID, "user_"),
			"role": u.Org.Role, "permissions": perms,
			"organization": map[string]any{"object": "organization", "id": u.Org.ID, "name": u.Org.Name, "slug": u.Org.Slug}})
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "total_count": len(data)})
}

// handleVerify is POST /oauth_applications/access_tokens/verify (with or
// without /v1, wire facts §11).
func (s *Server) handleVerify(w http.ResponseWriter, r *http.Request) {
	var body struct {
		AccessToken string `json:"access_token"`
		Secret      string `json:"secret"` // deprecated alias
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/json" || json.NewDecoder(r.Body).Decode(&body) != nil {
		writeClerkError(w, http.StatusBadRequest, "form_param_missing", "a JSON body with access_token is required")
		return
	}
	token := nonEmpty(body.AccessToken, body.Secret)
	if token == "" {
		// A body without a token is a bad request, not a token not found.
		writeClerkError(w, http.StatusBadRequest, "form_param_missing", "access_token is required")
		return
	}
	t, ok := s.lookup(token)
	if !ok || !strings.HasPrefix(token, "oat_") && !t.JWT || t.Expires.IsZero() {
		writeClerkError(w, http.StatusNotFound, "resource_not_found", "OAuth token not found")
		return
	}
	s.mu.Lock()
	rec := *t
	s.mu.Unlock()
	now := s.cfg.Now()
	if rec.JWT && !now.Before(rec.Expires) {
		writeJSON(w, http.StatusOK, map[string]any{"active": false})
		return
	}
	writeJSON(w, http.StatusOK, verifyAnswer(rec, now))
}

// verifyAnswer is the 200 body for a known token. An opaque token's id is its
// own "oat_" + 32 hex id, as the BAPI pattern says, never the token itself
// (the secret is not echoed).
func verifyAnswer(rec tokenRecord, now time.Time) map[string]any {
	typ := "oauth:access_token"
	if rec.JWT {
		typ = "oauth_token"
	}
	reason := any(nil)
	if rec.Revoked {
		reason = "revoked"
	}
	out := map[string]any{"object": "clerk_idp_oauth_access_token", "type": typ, "id": rec.ID,
		"client_id": rec.ClientID, "subject": rec.UserID, "scopes": rec.Scopes, "revoked": rec.Revoked,
		"revocation_reason": reason, "expired": !now.Before(rec.Expires), "expiration": rec.Expires.UnixMilli(),
		"created_at": rec.IssuedAt.UnixMilli(), "updated_at": rec.IssuedAt.UnixMilli()}
	if rec.Resource != "" {
		// The verify answer gains aud (clerk_go#21943, wire facts §11),
		// like a JWT's claim: only when an RFC 8707 resource was granted.
		// /oauth/token_info never has it (FAPI schema).
		out["aud"] = rec.Resource
	}
	return out
}
