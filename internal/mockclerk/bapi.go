package mockclerk

import (
	"crypto/subtle"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// Backend API (wire facts §11) on the same origin: user records,
// organization memberships and OAuth access-token verification, all behind
// "Authorization: Bearer sk_…".
func (s *Server) bapiRoutes() {
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
	writeJSON(w, http.StatusOK, map[string]any{
		"id": u.ID, "object": "user", "first_name": u.FirstName, "last_name": u.LastName, "username": u.Username,
		"image_url": u.ImageURL, "has_image": u.ImageURL != "", "primary_email_address_id": emailID,
		"email_addresses": []map[string]any{{"id": emailID, "object": "email_address", "email_address": u.Email,
			"verification": map[string]any{"status": "verified", "strategy": "email_code"}}},
		"public_metadata": map[string]any{"plan": "pro"}, "private_metadata": map[string]any{"internal": true},
		"unsafe_metadata": map[string]any{}, "banned": false, "locked": false,
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
	id := token
	typ := "oauth:access_token"
	if rec.JWT {
		claims, _ := s.parseOwnJWT(token)
		id, _ = claims["jti"].(string)
		typ = "oauth_token"
	}
	reason := any(nil)
	if rec.Revoked {
		reason = "revoked"
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "clerk_idp_oauth_access_token", "type": typ, "id": id,
		"client_id": rec.ClientID, "subject": rec.UserID, "scopes": rec.Scopes, "revoked": rec.Revoked,
		"revocation_reason": reason, "expired": !now.Before(rec.Expires), "expiration": rec.Expires.UnixMilli(),
		"created_at": rec.IssuedAt.UnixMilli(), "updated_at": rec.IssuedAt.UnixMilli()})
}

// handleRegister is §12: RFC 7591 behind the DCR flag (422 when off).
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "use POST")
		return
	}
	if !s.cfg.DCR {
		writeClerkError(w, http.StatusUnprocessableEntity, "dynamic_client_registration_disabled",
			"Dynamic client registration is not enabled for this instance.")
		return
	}
	var req struct {
		RedirectURIs []string `json:"redirect_uris"`
		AuthMethod   string   `json:"token_endpoint_auth_method"`
		Name         string   `json:"client_name"`
		ClientURI    string   `json:"client_uri"`
		LogoURI      string   `json:"logo_uri"`
		Scope        string   `json:"scope"`
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields() // Clerk's schema has additionalProperties: false
	if mt != "application/json" || dec.Decode(&req) != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_client_metadata", "the body must be a JSON client metadata document")
		return
	}
	if len(req.RedirectURIs) == 0 {
		writeOAuthError(w, http.StatusBadRequest, "invalid_redirect_uri", "redirect_uris is required")
		return
	}
	for _, ru := range req.RedirectURIs {
		if u, err := url.Parse(ru); err != nil || u.Scheme == "" || u.Fragment != "" {
			writeOAuthError(w, http.StatusBadRequest, "invalid_redirect_uri", "each redirect URI must be absolute, without fragment")
			return
		}
	}
	switch req.AuthMethod {
	case "":
		req.AuthMethod = "client_secret_basic"
	case "client_secret_basic", "client_secret_post", "none":
	default:
		writeOAuthError(w, http.StatusBadRequest, "invalid_client_metadata", "unsupported token_endpoint_auth_method")
		return
	}
	if len(req.Name) > 256 || len(req.Scope) > 1024 || len(req.LogoURI) > 1024 {
		writeOAuthError(w, http.StatusBadRequest, "invalid_client_metadata", "a field is too long")
		return
	}
	c := dcrClient{ID: randomAlnum(16), Name: req.Name, AuthMethod: req.AuthMethod, RedirectURIs: req.RedirectURIs,
		Scopes: strings.Fields(nonEmpty(req.Scope, "email offline_access profile")), Created: s.cfg.Now()}
	if c.Name == "" {
		c.Name = c.ID
	}
	if c.AuthMethod != "none" {
		c.Secret = randomAlnum(32)
	}
	s.mu.Lock()
	s.st.clients[c.ID] = c
	s.mu.Unlock()
	out := map[string]any{"client_id": c.ID, "client_id_issued_at": c.Created.Unix(), "client_secret_expires_at": 0,
		"client_name": c.Name, "redirect_uris": c.RedirectURIs, "grant_types": []string{"authorization_code", "refresh_token"},
		"response_types": []string{"code"}, "scope": strings.Join(c.Scopes, " "), "token_endpoint_auth_method": c.AuthMethod}
	if c.Secret != "" {
		out["client_secret"] = c.Secret
	}
	writeJSON(w, http.StatusCreated, out)
}
