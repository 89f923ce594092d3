package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/httpx"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mcpwire"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/oautherr"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/verifier"
)

// maxMCPBody bounds one MCP POST; the tools here take tiny arguments.
const maxMCPBody = 4 << 20

type ctxKey int

const identityKey ctxKey = iota

// IdentityFrom returns the verified identity of the request.
func IdentityFrom(ctx context.Context) (*verifier.Identity, bool) {
	id, ok := ctx.Value(identityKey).(*verifier.Identity)
	return id, ok && id != nil
}

// guard applies the MCP transport's DNS-rebinding rule before anything else:
// the Host must be this server's and an Origin, when a browser sends one,
// must be this server's origin or an allowed one.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hosts[normalizeHost(r.Host, r.TLS != nil)] {
			oautherr.Write(w, oautherr.New(http.StatusForbidden, oautherr.InvalidRequest, "the Host header does not name this server"))
			return
		}
		if o := r.Header.Get("Origin"); o != "" && !s.origins[strings.ToLower(o)] {
			oautherr.Write(w, oautherr.New(http.StatusForbidden, oautherr.InvalidRequest, "requests from this Origin are not allowed"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// normalizeHost lowercases and drops a default port so "host:443" and "host"
// compare equal.
func normalizeHost(host string, tls bool) string {
	host = strings.ToLower(host)
	if strings.HasSuffix(host, ":443") && tls || strings.HasSuffix(host, ":80") && !tls {
		host = host[:strings.LastIndex(host, ":")]
	}
	return host
}

// authenticate verifies the bearer token on every request (MCP: never trust a
// session id for authentication) and enforces per-tool scopes.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, present := bearer(r)
		if !present {
			s.challenge(w, http.StatusUnauthorized, "", "", s.scopesToAuthorize(w, r))
			return
		}
		id, err := s.verifier.Verify(r.Context(), token)
		switch {
		case errors.Is(err, verifier.ErrUnavailable):
			s.unavailable(w)
			return
		case err != nil:
			s.log.InfoContext(r.Context(), "bearer token refused", "reason", err.Error(), "request_id", httpx.RequestID(r.Context()))
			s.challenge(w, http.StatusUnauthorized, oautherr.InvalidToken, "the access token is invalid, expired or revoked", s.scopesToAuthorize(w, r))
			return
		}
		httpx.SetClient(r.Context(), id.ClientID)
		httpx.SetUser(r.Context(), id.UserID)
		// A session id is only good for the user it was issued to, whatever
		// the method: mcp-go validates it on POST but not when a GET opens
		// the server-to-client stream, which would let another user attach
		// to (and read) someone else's session. Same answer as an unknown
		// session (404), so ids of other users cannot be told apart.
		sid := r.Header.Get("Mcp-Session-Id")
		if sid != "" && !s.sessions.owns(id.UserID, sid) {
			oautherr.Write(w, oautherr.New(http.StatusNotFound, oautherr.InvalidRequest, "unknown MCP session"))
			return
		}
		if sid != "" {
			// Checked here rather than only in mcp-go's Validate, which
			// cannot answer 503 (it turns any error into 404, telling the
			// client to abandon its session) and is skipped for GET. A
			// terminated session is still refused by Validate.
			if _, err := s.sessions.terminated(r.Context(), sid); err != nil {
				s.metrics.StoreError(r.Context(), s.log, "get_session", err, "request_id", httpx.RequestID(r.Context()))
				s.unavailable(w)
				return
			}
		}
		if r.Method == http.MethodPost {
			body, berr := httpx.ReadBody(w, r, maxMCPBody)
			if berr != nil {
				oautherr.Write(w, oautherr.New(berr.Status, oautherr.InvalidRequest, berr.Description))
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			if missing := without(s.toolScopes(body), id.Scopes); len(missing) > 0 {
				need := append(slices.Clone(id.Scopes), missing...)
				s.challenge(w, http.StatusForbidden, oautherr.InsufficientScope, "this tool needs the scope "+strings.Join(missing, " "), need)
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey, id)))
	})
}

// unavailable answers 503: what the request needs (Clerk, Redis) cannot be
// reached; the client should retry.
func (s *Server) unavailable(w http.ResponseWriter) {
	e := oautherr.New(http.StatusServiceUnavailable, oautherr.TemporarilyUnavailable, "the identity provider cannot be reached right now; retry shortly")
	e.RetryAfter = 5
	oautherr.Write(w, e)
}

// challenge writes 401/403 with a WWW-Authenticate Bearer challenge naming
// the protected-resource metadata (RFC 9728 §5.1) and the scopes to ask for
// (for step-up: the ones already held plus the missing ones, so a
// re-authorization loses nothing).
// With no code (no token was sent), the challenge carries no error (RFC 6750
// §3.1) and the body says what to do.
func (s *Server) challenge(w http.ResponseWriter, status int, code oautherr.Code, desc string, scopes []string) {
	scopes = without(scopes, []string{offlineAccess})
	parts := []string{`resource_metadata="` + s.PRMURL() + `"`}
	if len(scopes) > 0 {
		parts = append(parts, `scope="`+strings.Join(scopes, " ")+`"`)
	}
	if code != "" {
		parts = append(parts, `error="`+string(code)+`"`, `error_description="`+desc+`"`)
	} else {
		code, desc = oautherr.Unauthorized, "this MCP server requires OAuth authorization; see the WWW-Authenticate header"
	}
	e := oautherr.New(status, code, desc)
	e.Challenge = "Bearer " + strings.Join(parts, ", ")
	oautherr.Write(w, e)
}

// bearer extracts an RFC 6750 §2.1 bearer token. present is true when the
// request tried to authenticate at all (even badly), so a malformed header
// gets error="invalid_token" instead of a bare challenge.
func bearer(r *http.Request) (token string, present bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", true
	}
	return strings.TrimSpace(tok), true
}

// offlineAccess asks the authorization server for a refresh token; it says
// nothing about this resource, so it appears in the authorization server's
// metadata only, never in the protected-resource metadata or a challenge
// (MCP 2026-07-28, SEP-2207: a client would otherwise ask for it everywhere).
const offlineAccess = "offline_access"

// without returns the scopes of list not in drop, in order.
func without(list, drop []string) []string {
	var out []string
	for _, sc := range list {
		if !slices.Contains(drop, sc) {
			out = append(out, sc)
		}
	}
	return out
}

// scopesToAuthorize is what a 401 challenge asks for: the baseline scopes
// plus those of every tool the request calls, so a client that authorizes
// with them gets a token for the whole call at once, not a 403 step-up right
// after signing in (MCP 2026-07-28: a challenge names every scope the
// operation needs). An unreadable body just gets the baseline: it is refused
// for its missing token anyway.
func (s *Server) scopesToAuthorize(w http.ResponseWriter, r *http.Request) []string {
	if r.Method != http.MethodPost || len(s.cfg.ToolScopes) == 0 {
		return s.cfg.Scopes
	}
	body, berr := httpx.ReadBody(w, r, maxMCPBody)
	if berr != nil {
		return s.cfg.Scopes
	}
	need := slices.Clone(s.cfg.Scopes)
	return append(need, without(s.toolScopes(body), need)...)
}

// toolScopes finds tools/call requests in a JSON-RPC body (single or batch)
// and returns the scopes those tools need, once each.
func (s *Server) toolScopes(body []byte) []string {
	if len(s.cfg.ToolScopes) == 0 {
		return nil
	}
	msgs, _, err := mcpwire.Parse(body)
	if err != nil {
		return nil
	}
	var need []string
	for _, name := range mcpwire.ToolCalls(msgs) {
		for _, sc := range s.policy.Rule(name).Scopes {
			if !slices.Contains(need, sc) {
				need = append(need, sc)
			}
		}
	}
	return need
}

// handlePRM serves RFC 9728 protected-resource metadata. resource is the MCP
// URL exactly and authorization_servers names the issuer byte for byte
// (strict clients compare both as strings).
func (s *Server) handlePRM(w http.ResponseWriter, r *http.Request) {
	prm := map[string]any{
		"resource":                 s.cfg.Resource,
		"authorization_servers":    []string{s.cfg.Issuer},
		"scopes_supported":         without(s.cfg.Scopes, []string{offlineAccess}),
		"bearer_methods_supported": []string{"header"},
		"resource_name":            s.cfg.ServiceName,
		"jwks_uri":                 s.cfg.Issuer + "/.well-known/jwks.json",
	}
	if as := s.cfg.AuthorizationServer; as != "" && as != s.cfg.Issuer {
		// Another server issues the tokens (clerk mode): name it, and
		// publish no key set, since this server signs nothing.
		prm["authorization_servers"] = []string{as}
		delete(prm, "jwks_uri")
	}
	body, _ := json.Marshal(prm)
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(body)
}

func prmPreflight(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Access-Control-Allow-Methods", "GET, OPTIONS")
	w.Header().Set("Access-Control-Allow-Headers", "MCP-Protocol-Version, Content-Type")
	w.WriteHeader(http.StatusNoContent)
}
