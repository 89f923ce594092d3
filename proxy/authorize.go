package proxy

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/httpx"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/oautherr"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/seal"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
)

// authRequest is a validated authorization request. It travels from
// /authorize through the consent page and Clerk to the authorization code.
type authRequest struct {
	ClientID    string `json:"client_id"`
	RedirectURI string `json:"redirect_uri"`
	// RedirectExplicit: the request named redirect_uri, so /token must repeat
	// it (RFC 6749 §4.1.3).
	RedirectExplicit bool      `json:"redirect_explicit,omitempty"`
	State            string    `json:"state,omitempty"`
	CodeChallenge    string    `json:"code_challenge"`
	Scopes           []string  `json:"scopes"`
	Resource         string    `json:"resource"`
	CreatedAt        time.Time `json:"created_at"`
}

// handleAuthorize implements RFC 6749 §4.1.1 with the OAuth 2.1 and MCP
// profile: PKCE S256 required, RFC 8707 resource checked, errors before the
// redirect URI is validated rendered locally (§4.1.2.1), later ones sent back
// to the client with state and iss (RFC 9207).
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	var p params
	var oerr *oauthError
	if r.Method == http.MethodPost {
		p, oerr = readForm(w, r)
	} else {
		p, oerr = readQuery(r)
	}
	if oerr != nil {
		// Nothing is validated yet: the only safe answer is local.
		s.renderError(w, r, pageBadRequest.withError(oerr))
		return
	}
	client, page := s.authorizeClient(r, p.get("client_id"))
	if page != nil {
		s.renderError(w, r, *page)
		return
	}
	httpx.SetClient(r.Context(), client.ID)
	redirectURI, page := s.authorizeRedirect(client, p)
	if page != nil {
		s.renderError(w, r, *page)
		return
	}
	state := p.get("state")
	req, oerr := s.validateAuthorizeParams(client, p)
	if oerr != nil {
		s.earlyError(w, r, redirectURI, state, oerr)
		return
	}
	req.ClientID, req.RedirectURI, req.State, req.CreatedAt = client.ID, redirectURI, state, s.now().UTC()
	req.RedirectExplicit = p.has("redirect_uri")
	if !client.Metadata && s.cfg.ClientIdleTTL > 0 {
		// Use keeps a registration alive (idle expiry).
		_ = s.store.TouchClient(r.Context(), client.ID, s.cfg.ClientIdleTTL)
	}
	txn, err := seal.Token(s.rand, 32)
	if err != nil {
		s.earlyError(w, r, redirectURI, state, errServer("could not start the authorization"))
		return
	}
	if oerr := s.putTicket(r, "put_transaction", store.KindTransaction, seal.HashHex(txn), req, transactionTTL, nil); oerr != nil {
		s.earlyError(w, r, redirectURI, state, oerr)
		return
	}
	s.metrics.Authorizations.Inc()
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/consent?txn="+url.QueryEscape(txn), http.StatusFound)
}

// authorizeClient finds the client; failures are pages, never redirects.
func (s *Server) authorizeClient(r *http.Request, clientID string) (store.Client, *errorPage) {
	if clientID == "" {
		p := pageBadRequest.with("The request has no client_id.")
		return store.Client{}, &p
	}
	c, err := s.lookupClient(r.Context(), clientID)
	switch {
	case err == nil:
		return c, nil
	case errors.Is(err, store.ErrNotFound):
		p := pageUnknownClient
		return c, &p
	case errors.Is(err, errCIMD):
		p := pageBadClientMetadata.with(err.Error())
		return c, &p
	default:
		s.storeError(r, "get_client", err)
		p := pageUnavailable
		return c, &p
	}
}

// authorizeRedirect picks the redirect URI: the one requested if it matches a
// registered one (exactly, or loopback with another port), or the only
// registered one when none was requested (RFC 6749 §3.1.2.3). Either way the
// operator's allowlist applies: a client registered before it was tightened,
// or a metadata document (never checked at /register), must not escape it by
// leaving redirect_uri out.
func (s *Server) authorizeRedirect(c store.Client, p params) (string, *errorPage) {
	requested := p.get("redirect_uri")
	switch {
	case requested == "" && len(c.RedirectURIs) == 1 && !p.has("redirect_uri"):
		requested = c.RedirectURIs[0]
	case requested == "":
		page := pageBadRedirect.with("The request has no redirect_uri and the client registered more than one.")
		return "", &page
	case !matchRedirectURI(c.RedirectURIs, requested) || validateRedirectURI(requested) != nil:
		page := pageBadRedirect
		return "", &page
	}
	if !redirectAllowed(s.cfg.AllowedRedirects, requested) {
		page := pageBadRedirect.with("This server only accepts redirects to an allowlist of addresses, and this one is not on it.")
		return "", &page
	}
	return requested, nil
}

// validateAuthorizeParams checks everything after client and redirect URI.
func (s *Server) validateAuthorizeParams(c store.Client, p params) (authRequest, *oauthError) {
	var req authRequest
	if rt := p.get("response_type"); rt != "code" {
		if rt == "" {
			return req, errInvalidRequest("response_type is required")
		}
		return req, oautherr.New(http.StatusBadRequest, oautherr.UnsupportedResponseType, "only response_type=code is supported")
	}
	if len(p.get("state")) > 1024 {
		return req, errInvalidRequest("state is longer than 1024 characters")
	}
	// PKCE (RFC 7636, required by OAuth 2.1 and MCP): S256 only; a missing
	// method means plain, which is refused.
	challenge, method := p.get("code_challenge"), p.get("code_challenge_method")
	switch {
	case challenge == "":
		return req, errInvalidRequest("code_challenge is required (PKCE with S256)")
	case method != "S256":
		return req, errInvalidRequest("code_challenge_method must be S256")
	case !validChallenge(challenge):
		return req, errInvalidRequest("code_challenge must be the 43-character base64url SHA-256 of the code_verifier")
	}
	req.CodeChallenge = challenge
	resource, oerr := s.checkResource(p)
	if oerr != nil {
		return req, oerr
	}
	req.Resource = resource
	scopes, oerr := s.requestedScopes(c, p.get("scope"))
	if oerr != nil {
		return req, oerr
	}
	req.Scopes = scopes
	if prompt := p.get("prompt"); slices.Contains(strings.Fields(prompt), "none") {
		// Every authorization passes the consent page, so nothing is silent.
		return req, oautherr.New(http.StatusBadRequest, oautherr.ConsentRequired, "this server always asks for consent")
	}
	return req, nil
}

// checkResource implements RFC 8707 §2: a resource, if sent, must be one of
// this server's protected resources (the MCP endpoint, or an upstream
// mounted at its own path); none means the MCP endpoint. A query is
// tolerated (ChatGPT appends one) but not a fragment. The canonical URI is
// what the grant records and its tokens name as their audience.
func (s *Server) checkResource(p params) (string, *oauthError) {
	raw := p.get("resource")
	if raw == "" {
		return s.cfg.Resource, nil
	}
	for _, res := range s.resources() {
		if sameResource(raw, res) {
			return res, nil
		}
	}
	if len(s.cfg.Resources) == 0 {
		return "", errInvalidTarget("resource must be " + s.cfg.Resource)
	}
	return "", errInvalidTarget("resource must be one of " + strings.Join(s.resources(), " "))
}

// resources is every protected resource this server issues tokens for.
func (s *Server) resources() []string { return append([]string{s.cfg.Resource}, s.cfg.Resources...) }

// grantResource is the resource g's tokens are for (grants made before
// resources were recorded are for the MCP endpoint).
func (s *Server) grantResource(g store.Grant) string {
	if g.Resource == "" {
		return s.cfg.Resource
	}
	return g.Resource
}

// sameResource compares a requested resource with ours: scheme and host
// case-insensitively, path exactly (a trailing slash tolerated), query
// ignored, fragment refused.
func sameResource(requested, ours string) bool {
	u, err := url.Parse(requested)
	if err != nil || u.Fragment != "" || strings.Contains(requested, "#") || u.User != nil {
		return false
	}
	o, err := url.Parse(ours)
	if err != nil {
		return false
	}
	return strings.EqualFold(u.Scheme, o.Scheme) && strings.EqualFold(u.Host, o.Host) &&
		strings.TrimSuffix(u.EscapedPath(), "/") == strings.TrimSuffix(o.EscapedPath(), "/")
}

// requestedScopes resolves the scope parameter: every scope must be one this
// server offers (offline_access is accepted and implicit: grants always get
// a refresh token); none means the client's registered scope or the default.
// The registered scope is filtered too: a metadata document's scope is the
// client's own text, and a registration may predate a narrower SCOPES
// setting; the server never grants a scope it does not offer (RFC 6749 §3.3).
func (s *Server) requestedScopes(c store.Client, scope string) ([]string, *oauthError) {
	var out []string
	for _, sc := range strings.Fields(scope) {
		if sc == "offline_access" {
			continue
		}
		if !s.hasScope(sc) {
			return nil, errInvalidScope("the scope " + quoteScope(sc) + " is not offered by this server")
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	if len(out) == 0 {
		out = s.offeredScopes(c.Scope)
	}
	if len(out) == 0 {
		return slices.Clone(s.cfg.DefaultScopes), nil
	}
	return out, nil
}

func quoteScope(s string) string {
	if len(s) > 64 || !validParamText(s) {
		return "(invalid)"
	}
	return "'" + s + "'"
}

// validChallenge: an S256 challenge is BASE64URL(SHA-256), 43 characters.
func validChallenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	for i := 0; i < len(c); i++ {
		ch := c[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_') {
			return false
		}
	}
	return true
}
