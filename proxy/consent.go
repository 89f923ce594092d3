package proxy

import (
	"encoding/base64"
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

// upstreamRequest is what waits for Clerk's callback after consent: the
// client's request plus the proxy's own PKCE verifier and nonce for Clerk, and
// the hash of the browser binding cookie.
type upstreamRequest struct {
	Request     authRequest `json:"request"`
	Verifier    string      `json:"verifier"`
	Nonce       string      `json:"nonce"`
	BindingHash []byte      `json:"binding_hash"`
	// Account marks a sign-in to one of the pages for people (no MCP
	// client); Return is the page to go back to (signInPages).
	Account bool   `json:"account,omitempty"`
	Return  string `json:"return,omitempty"`
}

// Cookie names: the __Host- prefix over https pins cookies to this origin
// (no Domain, Path=/, Secure). Plain http (local development) cannot use it.
func (s *Server) cookieName(base string) string {
	if s.cfg.SecureCookies {
		return "__Host-" + base
	}
	return base
}

func (s *Server) setCookie(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name: s.cookieName(name), Value: value, Path: "/", MaxAge: int(maxAge / time.Second),
		HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteLaxMode,
	})
}

func (s *Server) cookie(r *http.Request, name string) string {
	c, err := r.Cookie(s.cookieName(name))
	if err != nil {
		return ""
	}
	return c.Value
}

// csrfToken is derived, not stored: HMAC(cookie nonce, transaction). Reloading
// or prefetching the consent page yields the same token, so a second render
// never invalidates the first (FastMCP #4814).
func (s *Server) csrfToken(nonce, txn string) string {
	return base64.RawURLEncoding.EncodeToString(s.cookies.MAC("csrf", nonce, txn))
}

// handleConsentPage shows which client asks for what, before anything is sent
// to Clerk (MCP spec: proxies with a static upstream client MUST obtain
// consent per dynamically registered client; the confused-deputy defence).
func (s *Server) handleConsentPage(w http.ResponseWriter, r *http.Request) {
	txn := r.URL.Query().Get("txn")
	req, ok := s.peekTransaction(w, r, txn)
	if !ok {
		return
	}
	client, err := s.lookupClient(r.Context(), req.ClientID)
	if err != nil {
		s.renderError(w, r, pageUnknownClient)
		return
	}
	httpx.SetClient(r.Context(), client.ID)
	nonce := s.cookie(r, "cmp_csrf")
	if len(nonce) < 32 {
		if nonce, err = seal.Token(s.rand, 32); err != nil {
			s.renderError(w, r, pageUnavailable)
			return
		}
		s.setCookie(w, "cmp_csrf", nonce, transactionTTL)
	}
	s.renderPage(w, http.StatusOK, s.pages.consent, s.consentView(client, req, txn, s.csrfToken(nonce, txn)))
}

func (s *Server) peekTransaction(w http.ResponseWriter, r *http.Request, txn string) (authRequest, bool) {
	var req authRequest
	if txn == "" || len(txn) > 128 {
		s.renderError(w, r, pageExpired)
		return req, false
	}
	raw, err := s.store.PeekTicket(r.Context(), store.KindTransaction, seal.HashHex(txn))
	req, outcome := readTicket[authRequest](s, r, "peek_transaction", raw, err, nil)
	return req, !s.ticketPageShown(w, r, outcome)
}

type consentView struct {
	Service, ClientName, ClientID, Initial, LogoURI string
	RedirectURI, RedirectHost, RedirectScheme       string
	LocalRedirect, CustomScheme, Verified           bool
	// OnlyLoopback: a metadata-document client whose every redirect URI is
	// loopback. Its "verified" host proves nothing about who receives the
	// code: any program on the user's machine may claim that document (MCP
	// 2026-07-28 authorization security considerations: warn).
	OnlyLoopback bool
	VerifiedHost string
	// Resource is the protected resource the access is for, shown when
	// this server fronts more than one (UPSTREAMS): the user approves
	// access to one server, not to all of them.
	Resource  string
	Scopes    []string
	Txn, CSRF string
}

func (s *Server) consentView(c store.Client, req authRequest, txn, csrf string) consentView {
	v := consentView{Service: s.cfg.ServiceName, ClientID: c.ID, ClientName: c.Name, LogoURI: c.LogoURI,
		RedirectURI: req.RedirectURI, Txn: txn, CSRF: csrf}
	if len(s.cfg.Resources) > 0 {
		v.Resource = req.Resource
	}
	if u, err := url.Parse(req.RedirectURI); err == nil {
		v.RedirectScheme, v.RedirectHost = u.Scheme, hostOf(req.RedirectURI)
		if u.Scheme == "http" || u.Scheme == "https" {
			v.LocalRedirect = isLoopbackHost(u.Hostname())
		} else {
			v.CustomScheme = true
		}
	}
	if c.Metadata {
		// A CIMD client_id is an https URL whose host vouches for the document.
		if u, err := url.Parse(c.ID); err == nil {
			v.Verified, v.VerifiedHost = true, u.Host
		}
		v.OnlyLoopback = !slices.ContainsFunc(c.RedirectURIs, func(uri string) bool {
			u, err := url.Parse(uri)
			return err != nil || !isLoopbackHost(u.Hostname())
		})
	}
	if v.ClientName == "" {
		v.ClientName = "An unnamed app"
	}
	v.Initial = strings.ToUpper(string([]rune(v.ClientName)[:1]))
	for _, sc := range req.Scopes {
		v.Scopes = append(v.Scopes, describeScope(sc))
	}
	if len(v.Scopes) == 0 {
		v.Scopes = []string{"Use " + s.cfg.ServiceName + " as you"}
	}
	// Offline access is always part of a grant: say so.
	v.Scopes = append(v.Scopes, "Stay connected until you disconnect it (refresh access)")
	return v
}

// describeScope turns a scope into words a person understands.
func describeScope(scope string) string {
	switch scope {
	case "openid":
		return "Confirm who you are (your user ID)"
	case "profile":
		return "See your name, username and profile picture"
	case "email":
		return "See your email address"
	case "user:org:read":
		return "See your active organization and role"
	default:
		return "Use the “" + scope + "” permission"
	}
}

// handleConsentDecision takes the approve/deny form. The CSRF token must match
// the browser's cookie (double submit), and the transaction is consumed
// atomically so one decision is taken once. Approval then binds the flow to
// this browser with a cookie that the Clerk callback checks again.
func (s *Server) handleConsentDecision(w http.ResponseWriter, r *http.Request) {
	p, oerr := readForm(w, r)
	if oerr != nil {
		s.renderError(w, r, pageBadRequest.withError(oerr))
		return
	}
	txn, action := p.get("txn"), p.get("action")
	nonce := s.cookie(r, "cmp_csrf")
	if txn == "" || nonce == "" || !seal.Equal([]byte(p.get("csrf_token")), []byte(s.csrfToken(nonce, txn))) {
		s.renderError(w, r, pageCSRF)
		return
	}
	if action != "approve" && action != "deny" {
		s.renderError(w, r, pageBadRequest.with("The form must say approve or deny."))
		return
	}
	raw, err := s.store.ConsumeTicket(r.Context(), store.KindTransaction, seal.HashHex(txn), 0)
	req, outcome := readTicket[authRequest](s, r, "consume_transaction", raw, err, nil)
	if s.ticketPageShown(w, r, outcome) {
		return
	}
	httpx.SetClient(r.Context(), req.ClientID)
	if action == "deny" {
		s.metrics.Consents.WithLabelValues("denied").Inc()
		s.audit(r, "consent_denied", "client_id", req.ClientID)
		s.earlyError(w, r, req.RedirectURI, req.State, &oauthError{Code: oautherr.AccessDenied, Description: "the user denied the request"})
		return
	}
	s.metrics.Consents.WithLabelValues("approved").Inc()
	s.audit(r, "consent_approved", "client_id", req.ClientID, "scopes", strings.Join(req.Scopes, " "))
	clerkURL, state, binding, oerr := s.startUpstream(r, req, "")
	if oerr != nil {
		s.redirectError(w, r, req.RedirectURI, req.State, oerr)
		return
	}
	s.setCookie(w, bindingCookie(state), binding, upstreamTTL)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, clerkURL, http.StatusFound)
}

// upstreamTicketAD is the associated data of sealed upstream tickets.
const upstreamTicketAD = "clerk-mcp-proxy upstream ticket v1"

// bindingCookie names the per-flow binding cookie after the upstream state, so
// several sign-ins in one browser do not overwrite each other.
func bindingCookie(state string) string { return "cmp_bind_" + seal.HashHex(state)[:16] }

// startUpstream stores the consented request under a fresh upstream state
// (single use, 10 minutes) with the proxy's own PKCE verifier and nonce, and
// returns Clerk's sign-in URL, the state and the browser binding value. The
// client's resource is not forwarded: Clerk's token is only for the proxy.
// page is "" for an authorization, else the page a sign-in returns to.
func (s *Server) startUpstream(r *http.Request, req authRequest, page string) (clerkURL, state, binding string, oerr *oauthError) {
	var err error
	up := upstreamRequest{Request: req, Account: page != "", Return: page}
	for _, dst := range []*string{&state, &binding, &up.Verifier, &up.Nonce} {
		if *dst, err = seal.Token(s.rand, 32); err != nil {
			return "", "", "", errServer("could not start the sign-in")
		}
	}
	up.BindingHash = seal.Hash(binding)
	// The ticket holds the proxy's PKCE verifier and nonce for Clerk. It is
	// sealed under a key derived from the upstream state, which only the
	// browser's redirect carries (the store keys the ticket by its hash), so
	// nothing in a Redis dump can redeem Clerk's code (SECURITY.md: nothing
	// readable at rest).
	sealUnderState := func(raw []byte) ([]byte, error) {
		return seal.SealWithSecret(state, raw, []byte(upstreamTicketAD), s.rand)
	}
	if oerr := s.putTicket(r, "put_upstream_state", store.KindUpstreamState, seal.HashHex(state), up, upstreamTTL, sealUnderState); oerr != nil {
		return "", "", "", oerr
	}
	if s.appMode() {
		return s.appSignInURL(r, req, state), state, binding, nil
	}
	return s.clerk.AuthCodeURL(state, up.Verifier, up.Nonce), state, binding, nil
}
