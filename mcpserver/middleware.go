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
// session id for authentication) and enforces the tool policy: per-tool
// scopes (403 step-up) and organisation rules (a JSON-RPC error). Without a
// token the request is refused with a 401 challenge, unless some tool is
// public and the request only does what an anonymous client may (see
// anonymousMay).
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, present := bearer(r)
		if !present {
			s.anonymous(w, r, next)
			return
		}
		id, err := s.verifier.Verify(r.Context(), token)
		switch {
		case errors.Is(err, verifier.ErrUnavailable):
			s.unavailable(w)
			return
		case err != nil:
			// A token that is present but bad is refused outright, public
			// tools or not: the client believes it is signed in and must learn
			// otherwise, not be served as someone anonymous.
			s.log.InfoContext(r.Context(), "bearer token refused", "reason", err.Error(), "request_id", httpx.RequestID(r.Context()))
			s.challenge(w, http.StatusUnauthorized, oautherr.InvalidToken, "the access token is invalid, expired or revoked", s.scopesToAuthorize(w, r))
			return
		}
		httpx.SetClient(r.Context(), id.ClientID)
		httpx.SetUser(r.Context(), id.UserID)
		if !s.sessionUsable(w, r, id.UserID) {
			return
		}
		if r.Method == http.MethodPost && !s.policyBehind {
			// Which tools the body calls is read only when a rule depends on it
			// or the 2026-07-28 headers must be checked: this is the hot path.
			parse := s.policy.DependsOnTool() || mcpwire.NeedsHeaderCheck(r.Header)
			msgs, batch, ok := readMessages(w, r, parse) // unparseable: mcp-go answers the parse error
			if !ok {
				return
			}
			if missing := without(s.toolScopes(msgs), id.Scopes); len(missing) > 0 {
				s.StepUp(w, id.Scopes, missing)
				return
			}
			if refused := s.orgRefusals(msgs, batch, id); len(refused) > 0 {
				s.log.InfoContext(r.Context(), "tool call refused: organisation role or permission missing",
					"org_id", id.OrgID, "org_role", id.OrgRole, "request_id", httpx.RequestID(r.Context()))
				oautherr.WriteJSON(w, http.StatusOK, mcpwire.Responses(batch, refused))
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey, id)))
	})
}

// readMessages reads a POST body (bounded), leaves it readable again for
// mcp-go and, when parse is set, returns its JSON-RPC messages (none when
// it is not JSON-RPC).
// A body that cannot be read, or whose 2026-07-28 headers disagree with it,
// is answered here (4xx) and ok is false.
func readMessages(w http.ResponseWriter, r *http.Request, parse bool) (msgs []mcpwire.Message, batch, ok bool) {
	body, berr := httpx.ReadBody(w, r, maxMCPBody)
	if berr != nil {
		oautherr.Write(w, oautherr.New(berr.Status, oautherr.InvalidRequest, berr.Description))
		return nil, false, false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if !parse {
		return nil, false, true
	}
	msgs, batch, err := mcpwire.Parse(body)
	if err != nil {
		return nil, false, true
	}
	// MCP 2026-07-28 (SEP-2243): what routes on the Mcp-Method / Mcp-Name
	// headers must see what the body does; the policy checks after this read
	// the body, so a mismatch is refused before them.
	if err := mcpwire.CheckHeaders(r.Header, msgs, batch); err != nil {
		oautherr.WriteJSON(w, http.StatusBadRequest, mcpwire.Error{ID: msgs[0].ID, Code: mcpwire.HeaderMismatchCode, Message: err.Error()}.Response())
		return nil, false, false
	}
	return msgs, batch, true
}

// sessionUsable checks the request's session id, if any, against the
// principal making the request (a user id, or anonymousPrincipal) and
// answers 404 or 503 itself when it is not usable.
func (s *Server) sessionUsable(w http.ResponseWriter, r *http.Request, principal string) bool {
	sid := r.Header.Get("Mcp-Session-Id")
	if sid == "" {
		return true
	}
	// A session id is only good for the principal it was issued to, whatever
	// the method: mcp-go validates it on POST but not when a GET opens the
	// server-to-client stream, which would let another user attach to (and
	// read) someone else's session. Same answer as an unknown session (404),
	// so ids of other users cannot be told apart.
	if !s.sessions.owns(principal, sid) {
		oautherr.Write(w, oautherr.New(http.StatusNotFound, oautherr.InvalidRequest, "unknown MCP session"))
		return false
	}
	// Checked here rather than only in mcp-go's Validate, which cannot
	// answer 503 (it turns any error into 404, telling the client to abandon
	// its session) and is skipped for GET. A terminated session is still
	// refused by Validate.
	if _, err := s.sessions.terminated(r.Context(), sid); err != nil {
		s.metrics.StoreError(r.Context(), s.log, "get_session", err, "request_id", httpx.RequestID(r.Context()))
		s.unavailable(w)
		return false
	}
	return true
}

// StepUp answers 403 insufficient_scope for a tool call that needs the
// scopes missing, asking for those held plus the missing ones (a
// re-authorization then loses nothing). The gateway answers its own policy
// refusals through it, so both endpoints challenge alike.
func (s *Server) StepUp(w http.ResponseWriter, held, missing []string) {
	need := append(slices.Clone(held), missing...)
	s.challenge(w, http.StatusForbidden, oautherr.InsufficientScope, "this tool needs the scope "+strings.Join(missing, " "), need)
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
	challenge := s.challengeHeader(code, desc, scopes)
	if code == "" {
		code, desc = oautherr.Unauthorized, "this MCP server requires OAuth authorization; see the WWW-Authenticate header"
	}
	e := oautherr.New(status, code, desc)
	e.Challenge = challenge
	oautherr.Write(w, e)
}

// challengeHeader is the WWW-Authenticate value of a challenge; the Apps
// SDK path (signInResult) carries the very same string in the tool result.
func (s *Server) challengeHeader(code oautherr.Code, desc string, scopes []string) string {
	scopes = without(scopes, []string{offlineAccess})
	parts := []string{`resource_metadata="` + s.PRMURL() + `"`}
	if len(scopes) > 0 {
		parts = append(parts, `scope="`+strings.Join(scopes, " ")+`"`)
	}
	if code != "" {
		parts = append(parts, `error="`+string(code)+`"`, `error_description="`+desc+`"`)
	}
	return "Bearer " + strings.Join(parts, ", ")
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
	if r.Method != http.MethodPost || len(s.policy.Scopes()) == 0 {
		return s.cfg.Scopes
	}
	body, berr := httpx.ReadBody(w, r, maxMCPBody)
	if berr != nil {
		return s.cfg.Scopes
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	msgs, _, _ := mcpwire.Parse(body)
	return s.scopesFor(msgs)
}

// scopesFor is the baseline plus the scopes of the tools msgs call.
func (s *Server) scopesFor(msgs []mcpwire.Message) []string {
	need := slices.Clone(s.cfg.Scopes)
	return append(need, without(s.toolScopes(msgs), need)...)
}

// toolScopes returns the scopes the tools msgs call need, once each.
func (s *Server) toolScopes(msgs []mcpwire.Message) []string {
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
