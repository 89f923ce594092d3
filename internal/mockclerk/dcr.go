package mockclerk

import (
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/oautherr"
)

// registration is an RFC 7591 registration request (wire facts §12).
// grant_types and response_types are not in FAPI's request schema, yet
// ChatGPT, Claude and the MCP SDKs send them and register at Clerk: they are
// checked against what Clerk supports. Any other member is ignored, as RFC
// 7591 §2 requires: real MCP clients send members of their own.
type registration struct {
	RedirectURIs  []string `json:"redirect_uris"`
	AuthMethod    string   `json:"token_endpoint_auth_method"`
	Name          string   `json:"client_name"`
	ClientURI     string   `json:"client_uri"`
	LogoURI       string   `json:"logo_uri"`
	Scope         string   `json:"scope"`
	GrantTypes    []string `json:"grant_types"`
	ResponseTypes []string `json:"response_types"`
}

// check returns the RFC 7591 error code and description, "" when the
// request is good; it fills in the default auth method.
func (g *registration) check() (code, desc string) {
	if len(g.RedirectURIs) == 0 {
		return "invalid_redirect_uri", "redirect_uris is required"
	}
	for _, ru := range g.RedirectURIs {
		if u, err := url.Parse(ru); err != nil || u.Scheme == "" || u.Fragment != "" {
			return "invalid_redirect_uri", "each redirect URI must be absolute, without fragment"
		}
	}
	g.AuthMethod = nonEmpty(g.AuthMethod, "client_secret_basic")
	switch {
	case !slices.Contains([]string{"client_secret_basic", "client_secret_post", "none"}, g.AuthMethod):
		return "invalid_client_metadata", "unsupported token_endpoint_auth_method"
	case len(g.Name) > 256 || len(g.Scope) > 1024 || len(g.LogoURI) > 1024:
		return "invalid_client_metadata", "a field is too long"
	case !hasAll([]string{"authorization_code", "refresh_token"}, g.GrantTypes):
		return "invalid_client_metadata", "grant_types may only hold authorization_code and refresh_token"
	case !hasAll([]string{"code"}, g.ResponseTypes):
		return "invalid_client_metadata", "response_types may only hold code"
	}
	return "", ""
}

// handleRegister is §12: RFC 7591 behind the DCR flag (422 when off).
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeOAuthError(w, http.StatusMethodNotAllowed, oautherr.InvalidRequest, "use POST")
		return
	}
	if !s.cfg.DCR {
		writeClerkError(w, http.StatusUnprocessableEntity, "dynamic_client_registration_disabled",
			"Dynamic client registration is not enabled for this instance.")
		return
	}
	var req registration
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/json" || json.NewDecoder(r.Body).Decode(&req) != nil {
		writeOAuthError(w, http.StatusBadRequest, oautherr.InvalidClientMetadata, "the body must be a JSON client metadata document")
		return
	}
	if code, desc := req.check(); code != "" {
		writeOAuthError(w, http.StatusBadRequest, oautherr.Code(code), desc)
		return
	}
	c := s.registerClient(req)
	out := map[string]any{"client_id": c.ID, "client_id_issued_at": c.Created.Unix(), "client_secret_expires_at": 0,
		"client_name": c.Name, "redirect_uris": c.RedirectURIs, "grant_types": []string{"authorization_code", "refresh_token"},
		"response_types": []string{"code"}, "scope": strings.Join(c.Scopes, " "), "token_endpoint_auth_method": c.AuthMethod}
	if c.Secret != "" {
		out["client_secret"] = c.Secret
	}
	writeJSON(w, http.StatusCreated, out)
}

// registerClient stores a checked registration: Clerk's default scopes
// when none were asked for, the client_id as the name when none was given,
// a secret unless the client is public.
func (s *Server) registerClient(req registration) dcrClient {
	c := dcrClient{ID: randomAlnum(16), Name: req.Name, AuthMethod: req.AuthMethod, RedirectURIs: req.RedirectURIs,
		Scopes: strings.Fields(nonEmpty(req.Scope, "email offline_access profile")), Created: s.cfg.Now()}
	c.Name = nonEmpty(c.Name, c.ID)
	if c.AuthMethod != "none" {
		c.Secret = randomAlnum(32)
	}
	s.mu.Lock()
	s.st.clients[c.ID] = c
	s.mu.Unlock()
	return c
}
