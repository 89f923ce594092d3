package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/httpx"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/oautherr"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/seal"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/secevents"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
)

const maxRegistrationBytes = 32 << 10

// Auth methods at the token endpoint.
const (
	authNone   = "none"
	authBasic  = "client_secret_basic"
	authPost   = "client_secret_post"
	authJWTKey = "private_key_jwt" // CIMD documents only
)

// registrationRequest is the subset of RFC 7591 §2 metadata the proxy uses.
// Unknown fields (application_type extensions, resource, software_id...) are
// ignored as §2 requires.
type registrationRequest struct {
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod *string  `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ClientName              string   `json:"client_name"`
	ClientURI               string   `json:"client_uri"`
	LogoURI                 string   `json:"logo_uri"`
	Scope                   string   `json:"scope"`
	ApplicationType         string   `json:"application_type"`
}

// handleRegister implements RFC 7591 §3 dynamic client registration.
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	allowCORS(w)
	if s.cfg.DCRDisabled {
		s.writeError(w, r, "register", oautherr.New(http.StatusForbidden, oautherr.AccessDenied,
			"dynamic client registration is closed on this server; it accepts only clients registered by its operator and allowlisted client ID metadata documents"))
		return
	}
	req, oerr := decodeRegistration(w, r)
	if oerr != nil {
		s.writeError(w, r, "register", oerr)
		return
	}
	c, oerr := s.clientFromRegistration(req)
	if oerr != nil {
		s.writeError(w, r, "register", oerr)
		return
	}
	var err error
	if c.ID, err = seal.Token(s.rand, 16); err != nil {
		s.writeError(w, r, "register", errServer("could not register the client"))
		return
	}
	c.ID = "mcp_" + c.ID
	var secret string
	if c.TokenEndpointAuthMethod != authNone {
		// 256 bits from crypto/rand, returned once, stored hashed.
		if secret, err = seal.Token(s.rand, 32); err != nil {
			s.writeError(w, r, "register", errServer("could not register the client"))
			return
		}
		c.SecretHash = seal.Hash(secret)
	}
	regToken, err := seal.Token(s.rand, 32)
	if err != nil {
		s.writeError(w, r, "register", errServer("could not register the client"))
		return
	}
	c.RegistrationTokenHash = seal.Hash(regToken)
	c.CreatedAt = s.now().UTC()
	if err := s.store.CreateClient(r.Context(), c, s.cfg.ClientIdleTTL); err != nil {
		s.storeError(r, "create_client", err)
		s.writeError(w, r, "register", errUnavailable("registration storage is unavailable, try again"))
		return
	}
	httpx.SetClient(r.Context(), c.ID)
	s.metrics.Registrations.Inc()
	s.audit(r, "client_registered", "client_id", c.ID, "client_name", c.Name, "auth_method", c.TokenEndpointAuthMethod,
		"redirect_uris", c.RedirectURIs)
	resp := s.registrationResponse(c)
	if secret != "" {
		resp["client_secret"] = secret
		resp["client_secret_expires_at"] = 0
	}
	resp["registration_access_token"] = regToken
	writeJSON(w, http.StatusCreated, resp)
}

func decodeRegistration(w http.ResponseWriter, r *http.Request) (registrationRequest, *oauthError) {
	var req registrationRequest
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return req, errMetadata(oautherr.InvalidClientMetadata, "the registration body must be application/json")
	}
	body, berr := httpx.ReadBody(w, r, maxRegistrationBytes)
	if berr != nil {
		return req, oautherr.New(berr.Status, oautherr.InvalidClientMetadata, berr.Description)
	}
	if !utf8.Valid(body) {
		return req, errMetadata(oautherr.InvalidClientMetadata, "the registration body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		return req, errMetadata(oautherr.InvalidClientMetadata, "the registration body is not a JSON object with RFC 7591 fields of the right types")
	}
	// Only whitespace may follow the object. (dec.More() is not enough: it
	// reports false for a stray "}" or "]", so `{...}}` would be accepted.)
	if len(bytes.TrimLeft(body[dec.InputOffset():], " \t\r\n")) > 0 {
		return req, errMetadata(oautherr.InvalidClientMetadata, "the registration body has trailing data")
	}
	return req, nil
}

// clientFromRegistration validates RFC 7591 metadata and applies the §2
// defaults (response_types [code], token_endpoint_auth_method
// client_secret_basic). An omitted grant_types means authorization_code AND
// refresh_token, not §2's bare authorization_code: MCP clients that omit it
// still expect to refresh, and issuing a refresh token they may not use
// helps no one.
func (s *Server) clientFromRegistration(req registrationRequest) (store.Client, *oauthError) {
	c := store.Client{TokenEndpointAuthMethod: authBasic}
	if len(req.RedirectURIs) == 0 {
		return c, errMetadata(oautherr.InvalidRedirectURI, "redirect_uris is required")
	}
	if len(req.RedirectURIs) > maxRedirectURIs {
		return c, errMetadata(oautherr.InvalidRedirectURI, "too many redirect_uris (at most 20)")
	}
	for _, u := range req.RedirectURIs {
		if err := validateRedirectURI(u); err != nil {
			return c, errMetadata(oautherr.InvalidRedirectURI, err.Error())
		}
		if !redirectAllowed(s.cfg.AllowedRedirects, u) {
			return c, errMetadata(oautherr.InvalidRedirectURI, "a redirect URI is not in this server's allowlist")
		}
	}
	c.RedirectURIs = slices.Compact(slices.Clone(req.RedirectURIs))
	appType, err := applicationType(req.ApplicationType, c.RedirectURIs)
	if err != nil {
		code := oautherr.InvalidRedirectURI
		if req.ApplicationType != appWeb {
			code = oautherr.InvalidClientMetadata
		}
		return c, errMetadata(code, err.Error())
	}
	c.ApplicationType = appType
	if req.TokenEndpointAuthMethod != nil {
		switch m := *req.TokenEndpointAuthMethod; m {
		case authNone, authBasic, authPost:
			c.TokenEndpointAuthMethod = m
		default:
			return c, errMetadata(oautherr.InvalidClientMetadata, "token_endpoint_auth_method must be none, client_secret_basic or client_secret_post (private_key_jwt is for clients identified by a metadata document, whose keys it publishes)")
		}
	}
	c.GrantTypes = req.GrantTypes
	if len(c.GrantTypes) == 0 {
		c.GrantTypes = []string{"authorization_code", "refresh_token"}
	}
	for _, g := range c.GrantTypes {
		if g != "authorization_code" && g != "refresh_token" {
			return c, errMetadata(oautherr.InvalidClientMetadata, "grant_types may only contain authorization_code and refresh_token")
		}
	}
	c.ResponseTypes = req.ResponseTypes
	if len(c.ResponseTypes) == 0 {
		c.ResponseTypes = []string{"code"}
	}
	for _, rt := range c.ResponseTypes {
		if rt != "code" {
			return c, errMetadata(oautherr.InvalidClientMetadata, "response_types may only contain code")
		}
	}
	// RFC 7591 §2.1: the code response type goes with the authorization_code grant.
	if !slices.Contains(c.GrantTypes, "authorization_code") {
		return c, errMetadata(oautherr.InvalidClientMetadata, "grant_types must include authorization_code to use response type code")
	}
	c.GrantTypes = slices.Compact(c.GrantTypes)
	c.ResponseTypes = slices.Compact(c.ResponseTypes)
	if len(req.ClientName) > 200 {
		return c, errMetadata(oautherr.InvalidClientMetadata, "client_name is longer than 200 characters")
	}
	c.Name = strings.TrimSpace(req.ClientName)
	for _, v := range []string{req.ClientURI, req.LogoURI} {
		if v == "" {
			continue
		}
		if u, err := url.Parse(v); err != nil || u.Scheme != "https" || u.Host == "" || len(v) > 1000 {
			return c, errMetadata(oautherr.InvalidClientMetadata, "client_uri and logo_uri must be https URLs of at most 1000 characters")
		}
	}
	c.URI, c.LogoURI = req.ClientURI, req.LogoURI
	// Unknown scopes are dropped rather than refused (RFC 7591 §2 lets the
	// server replace the requested scope); offline_access is implicit since
	// every grant gets a refresh token.
	c.Scope = strings.Join(s.offeredScopes(req.Scope), " ")
	return c, nil
}

// registrationResponse is the RFC 7591 §3.2.1 body (also RFC 7592 §3).
func (s *Server) registrationResponse(c store.Client) map[string]any {
	resp := map[string]any{
		"client_id":                  c.ID,
		"client_id_issued_at":        c.CreatedAt.Unix(),
		"redirect_uris":              c.RedirectURIs,
		"grant_types":                c.GrantTypes,
		"response_types":             c.ResponseTypes,
		"token_endpoint_auth_method": c.TokenEndpointAuthMethod,
		"registration_client_uri":    s.cfg.Issuer + "/register/" + url.PathEscape(c.ID),
	}
	if c.Name != "" {
		resp["client_name"] = c.Name
	}
	if c.URI != "" {
		resp["client_uri"] = c.URI
	}
	if c.LogoURI != "" {
		resp["logo_uri"] = c.LogoURI
	}
	if c.Scope != "" {
		resp["scope"] = c.Scope
	}
	if c.ApplicationType != "" {
		resp["application_type"] = c.ApplicationType
	}
	return resp
}

// registrationClient authenticates an RFC 7592 request by its registration
// access token; any failure is 401 without saying which part failed.
func (s *Server) registrationClient(w http.ResponseWriter, r *http.Request) (store.Client, bool) {
	id := chi.URLParam(r, "client_id")
	token, ok := bearerToken(r)
	c, err := s.store.GetClient(r.Context(), id)
	if !ok || err != nil || !seal.EqualHash(token, c.RegistrationTokenHash) {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.storeError(r, "get_client", err)
			s.writeError(w, r, "register", errUnavailable("registration storage is unavailable, try again"))
			return c, false
		}
		e := oautherr.New(http.StatusUnauthorized, oautherr.InvalidToken, "unknown client or wrong registration access token")
		e.Challenge = `Bearer error="invalid_token"`
		s.writeError(w, r, "register", e)
		return c, false
	}
	return c, true
}

// handleRegistrationRead implements RFC 7592 §2.1.
func (s *Server) handleRegistrationRead(w http.ResponseWriter, r *http.Request) {
	c, ok := s.registrationClient(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, s.registrationResponse(c))
}

// handleRegistrationDelete implements RFC 7592 §2.3: the client is gone and
// its grants die with it. The registration goes first, so no new grant can
// be made for it (clientid.Gone: the verifier and introspection refuse tokens
// of a client that is no longer registered; refresh fails client
// authentication); then every grant found through the client index is ended
// and its Clerk tokens are revoked at Clerk.
func (s *Server) handleRegistrationDelete(w http.ResponseWriter, r *http.Request) {
	c, ok := s.registrationClient(w, r)
	if !ok {
		return
	}
	if err := s.store.DeleteClient(r.Context(), c.ID); err != nil {
		s.storeError(r, "delete_client", err)
		s.writeError(w, r, "register", errUnavailable("registration storage is unavailable, try again"))
		return
	}
	n, err := s.revokeClientGrants(r, c.ID, "client_deleted")
	// The registration is gone either way, so its grants are already refused
	// everywhere; a store failure only leaves Clerk tokens to expire there.
	s.audit(r, "client_deleted", "client_id", c.ID, "grants_revoked", n, "complete", err == nil)
	w.WriteHeader(http.StatusNoContent)
}

// bearerToken reads "Authorization: Bearer <token>" (scheme case-insensitive).
func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// storeError logs and counts a storage failure; callers answer 503.
func (s *Server) storeError(r *http.Request, op string, err error) {
	s.metrics.StoreError(r.Context(), s.log, op, err, "request_id", httpx.RequestID(r.Context()))
}

// audit writes one security event (registration, consent, token, reuse,
// revocation) to the log and, unless it is routine, to the shared log of
// recent security events (secevents); never a secret.
func (s *Server) audit(r *http.Request, event string, attrs ...any) {
	rid := httpx.RequestID(r.Context())
	s.log.InfoContext(r.Context(), "audit", append([]any{"audit", true, "event", event, "request_id", rid}, attrs...)...)
	if s.secEvents != nil && !routineEvent(event, attrs) {
		s.secEvents.Record(secevents.FromAttrs(s.now(), event, rid, attrs...))
	}
}

// routineEvent is an audit event too frequent and unremarkable for the
// operator's recent security events: a normal sign-in or token issue, a
// registration (with open registration every new connection of Claude or
// Cursor makes one, and a flood of them shows as rate_limited), a gateway's
// token exchange (one per upstream call that needs Clerk's token), or an
// operator reading a list.
func routineEvent(event string, attrs []any) bool {
	switch event {
	case "tokens_issued", "authorization_code_issued", "consent_approved", "account_signed_in",
		"client_registered", "token_exchanged":
		return true
	case "admin_action":
		for i := 0; i+1 < len(attrs); i += 2 {
			if attrs[i] == "action" {
				a, _ := attrs[i+1].(string)
				return strings.HasPrefix(a, "list_") || strings.HasPrefix(a, "view_")
			}
		}
	}
	return false
}
