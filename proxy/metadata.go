package proxy

import (
	"encoding/json"
	"net/http"
	"slices"
)

// metadata is the RFC 8414 authorization server metadata document.
func (s *Server) metadata() map[string]any {
	iss := s.cfg.Issuer
	m := map[string]any{
		"issuer":                                        iss,
		"authorization_endpoint":                        iss + "/authorize",
		"token_endpoint":                                iss + "/token",
		"registration_endpoint":                         iss + "/register",
		"revocation_endpoint":                           iss + "/revoke",
		"introspection_endpoint":                        iss + "/introspect",
		"jwks_uri":                                      iss + "/.well-known/jwks.json",
		"scopes_supported":                              s.scopesSupported(),
		"response_types_supported":                      []string{"code"},
		"response_modes_supported":                      []string{"query"},
		"grant_types_supported":                         []string{"authorization_code", "refresh_token"},
		"token_endpoint_auth_methods_supported":         []string{"none", "client_secret_basic", "client_secret_post"},
		"revocation_endpoint_auth_methods_supported":    []string{"none", "client_secret_basic", "client_secret_post"},
		"introspection_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"code_challenge_methods_supported":              []string{"S256"},
		// RFC 9207: every authorization response carries iss.
		"authorization_response_iss_parameter_supported": true,
		"client_id_metadata_document_supported":          s.cfg.CIMD.Enabled,
		"service_documentation":                          "https://github.com/clerk-mcp-proxy/clerk-mcp-proxy#readme",
	}
	if s.cfg.DCRDisabled {
		delete(m, "registration_endpoint")
	}
	if s.cfg.CIMD.Enabled {
		// private_key_jwt is for metadata-document clients (ChatGPT's); every
		// client-authenticated endpoint takes it, and the algorithms are the
		// ones authenticateAssertion accepts.
		algs := assertionAlgNames()
		for _, k := range []string{"token_endpoint", "revocation_endpoint", "introspection_endpoint"} {
			m[k+"_auth_methods_supported"] = append(m[k+"_auth_methods_supported"].([]string), authJWTKey)
			m[k+"_auth_signing_alg_values_supported"] = algs
		}
	}
	if len(s.cfg.Exchange.Clients) > 0 {
		m["grant_types_supported"] = []string{"authorization_code", "refresh_token", grantTypeTokenExchange}
	}
	return m
}

// scopesSupported is every scope a client may request, plus offline_access:
// every grant gets a refresh token, and the authorization server's metadata is
// the one place that scope is advertised (MCP 2026-07-28, SEP-2207; the
// protected-resource metadata and challenges leave it out).
func (s *Server) scopesSupported() []string {
	if s.hasScope("offline_access") {
		return s.cfg.Scopes
	}
	return append(slices.Clone(s.cfg.Scopes), "offline_access")
}

// handleMetadata serves RFC 8414 §3 metadata.
func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request) {
	serveDiscovery(w, s.metadata())
}

// handleOpenIDConfiguration serves the same document at the OIDC discovery
// path, which clients try as well; OIDC clients also require jwks_uri,
// subject_types_supported and id_token_signing_alg_values_supported.
func (s *Server) handleOpenIDConfiguration(w http.ResponseWriter, r *http.Request) {
	m := s.metadata()
	m["subject_types_supported"] = []string{"public"}
	m["id_token_signing_alg_values_supported"] = []string{"ES256"}
	serveDiscovery(w, m)
}

// handleJWKS publishes the public signing keys so resource servers can verify
// the proxy's access tokens themselves.
func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	serveDiscovery(w, s.keys.JWKS())
}

// serveDiscovery writes a public, cacheable JSON document with CORS open, so
// browser-based clients (e.g. the Inspector) can read it.
func serveDiscovery(w http.ResponseWriter, v any) {
	body, _ := json.Marshal(v)
	allowCORS(w)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}
