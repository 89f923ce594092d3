package proxy

import (
	"net/http"
	"net/url"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/clerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/httpx"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/oautherr"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/seal"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
)

// codeRecord is what a proxy authorization code stands for.
type codeRecord struct {
	GrantID          string   `json:"grant_id"`
	ClientID         string   `json:"client_id"`
	RedirectURI      string   `json:"redirect_uri"`
	RedirectExplicit bool     `json:"redirect_explicit,omitempty"`
	CodeChallenge    string   `json:"code_challenge"`
	Scopes           []string `json:"scopes"`
	Resource         string   `json:"resource"`
}

// handleCallback is Clerk's redirect back to the proxy (RFC 6749 §4.1.2 from
// the client side). It consumes the upstream state once, checks that the same
// browser approved the consent, exchanges Clerk's code (x/oauth2,
// client_secret_basic, PKCE), verifies the ID token, stores the grant and
// sends the MCP client its own code. Every failure after the state is known
// goes back to the client as an OAuth error, so the client never hangs.
func (s *Server) handleCallback(w http.ResponseWriter, r *http.Request) {
	p, up, ok := s.resumeUpstream(w, r, "clerk")
	if !ok {
		return
	}
	req := up.Request
	if up.Account {
		s.finishAccountSignIn(w, r, p, up)
		return
	}
	code := p.get("code")
	if code == "" {
		s.redirectError(w, r, req.RedirectURI, req.State, errServer("the identity provider returned no authorization code"))
		return
	}
	tokens, claims, err := s.clerk.Exchange(r.Context(), code, up.Verifier, up.Nonce)
	if err != nil {
		s.log.WarnContext(r.Context(), "clerk code exchange failed", "err", err, "client_id", req.ClientID)
		// Clerk may have issued tokens before the exchange failed (an ID
		// token that does not verify): nothing will use them, so end them.
		s.revokeUpstream(r, tokens, "client_id", req.ClientID)
		oe := errServer("the identity provider did not complete the sign-in")
		if clerk.IsTransient(err) {
			oe = &oauthError{Code: oautherr.TemporarilyUnavailable, Description: "the identity provider is unavailable; try again"}
		}
		s.redirectError(w, r, req.RedirectURI, req.State, oe)
		return
	}
	userID := s.signedInUser(r, tokens, claims, nil)
	if userID == "" {
		s.revokeUpstream(r, tokens, "client_id", req.ClientID)
		s.redirectError(w, r, req.RedirectURI, req.State, errServer("the identity provider did not say who signed in"))
		return
	}
	httpx.SetUser(r.Context(), userID)
	clientCode, oe := s.issueCode(r, req, userID, tokens, "")
	if oe != nil {
		s.revokeUpstream(r, tokens, "client_id", req.ClientID)
		s.redirectError(w, r, req.RedirectURI, req.State, oe)
		return
	}
	s.audit(r, "authorization_code_issued", "client_id", req.ClientID, "user_id", userID)
	s.redirectToClient(w, r, req.RedirectURI, req.State, url.Values{"code": {clientCode}})
}

// resumeUpstream is how both sign-in callbacks begin (Clerk's
// /oauth/callback, the team app's /callback): it consumes the upstream state
// once, checks that the same browser approved the consent, and sends an
// error the sign-in reported back to the MCP client. ok is false when an
// answer was written; from names the sign-in in logs.
func (s *Server) resumeUpstream(w http.ResponseWriter, r *http.Request, from string) (params, upstreamRequest, bool) {
	var up upstreamRequest
	p, oerr := readQuery(r)
	if oerr != nil {
		s.renderError(w, r, pageBadRequest.withError(oerr))
		return params{}, up, false
	}
	state := p.get("state")
	if state == "" || len(state) > 128 {
		s.renderError(w, r, pageExpired)
		return params{}, up, false
	}
	raw, err := s.store.ConsumeTicket(r.Context(), store.KindUpstreamState, seal.HashHex(state), 0)
	if err == nil {
		// Sealed under the state itself (startUpstream); a ticket that does
		// not open is treated like an unknown one.
		if raw, err = seal.OpenWithSecret(state, raw, []byte(upstreamTicketAD)); err != nil {
			raw, err = nil, store.ErrNotFound
		}
	}
	up, outcome := readTicket[upstreamRequest](s, r, "consume_upstream_state", raw, err, nil)
	if s.ticketPageShown(w, r, outcome) {
		return params{}, up, false
	}
	req := up.Request
	httpx.SetClient(r.Context(), req.ClientID)
	// The binding cookie proves this browser approved the consent; without it
	// a victim could be walked through someone else's authorization.
	cookieName := bindingCookie(state)
	binding := s.cookie(r, cookieName)
	s.setCookie(w, cookieName, "", -1)
	if binding == "" || !seal.EqualHash(binding, up.BindingHash) {
		s.audit(r, "consent_binding_mismatch", "client_id", req.ClientID)
		s.renderError(w, r, pageSessionMismatch)
		return params{}, up, false
	}
	if up.Account {
		// A sign-in to /account, not an authorization: no client to send an
		// error to (finishAccountSignIn answers it).
		return p, up, true
	}
	if e := p.get("error"); e != "" {
		code := oautherr.ServerError
		if oautherr.Code(e) == oautherr.AccessDenied {
			code = oautherr.AccessDenied
		}
		s.log.WarnContext(r.Context(), "the sign-in returned an authorization error", "from", from, "error", safeCode(e), "client_id", req.ClientID)
		s.redirectError(w, r, req.RedirectURI, req.State, &oauthError{Code: code, Description: "sign-in at the identity provider did not complete"})
		return params{}, up, false
	}
	return p, up, true
}

// issueCode creates the (not yet active) grant holding Clerk's tokens and a
// single-use proxy code pointing at it. A grant whose code is never redeemed
// expires with the code.
// session, when not empty, binds the grant to a Clerk session (app mode).
func (s *Server) issueCode(r *http.Request, req authRequest, userID string, upstream clerk.TokenSet, session string) (string, *oauthError) {
	gid, err := seal.Token(s.rand, 16)
	if err != nil {
		return "", errServer("could not issue a code")
	}
	code, err := seal.Token(s.rand, 32)
	if err != nil {
		return "", errServer("could not issue a code")
	}
	sealed, err := s.vault.Seal(gid, upstream)
	if err != nil {
		return "", errServer("could not issue a code")
	}
	now := s.now().UTC()
	g := store.Grant{ID: gid, UserID: userID, ClientID: req.ClientID, Scopes: req.Scopes, Resource: req.Resource,
		CreatedAt: now, Upstream: sealed, UpstreamExpiresAt: upstream.ExpiresAt(now), ClerkSession: session}
	if err := s.store.CreateGrant(r.Context(), g, codeTTL+time.Minute); err != nil {
		s.storeError(r, "create_grant", err)
		return "", errUnavailable("the authorization server is temporarily unavailable")
	}
	rec := codeRecord{GrantID: gid, ClientID: req.ClientID, RedirectURI: req.RedirectURI, RedirectExplicit: req.RedirectExplicit,
		CodeChallenge: req.CodeChallenge, Scopes: req.Scopes, Resource: req.Resource}
	if oerr := s.putTicket(r, "put_code", store.KindCode, seal.HashHex(code), rec, codeTTL, nil); oerr != nil {
		return "", oerr
	}
	return code, nil
}

// safeCode keeps only a short RFC 6749 error-code-shaped value for logs.
func safeCode(s string) string {
	if len(s) > 40 {
		return "(long)"
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c == '_') {
			return "(invalid)"
		}
	}
	return s
}
