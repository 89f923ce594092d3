package proxy

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/clerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/seal"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
)

// The "connected apps" page: a user signs in with the same Clerk application
// as the MCP flow and sees, and can end, the grants MCP clients hold for
// them. The sign-in goes through the same upstream state, browser binding and
// callback as an authorization (upstreamRequest.Account), then the Clerk
// tokens are revoked at once (only the identity was needed) and a signed
// session cookie remembers the user for accountSessionTTL.

const (
	accountCookie     = "cmp_account"
	accountSessionTTL = time.Hour
	reasonDisconnect  = "disconnected_by_user"
)

// accountSession is a signed-in user of the account page. Nonce keys the
// CSRF token of every form.
type accountSession struct {
	UserID string
	Nonce  string
}

// session reads and checks the session cookie; ok is false when there is
// none, its signature fails, or it has expired.
func (s *Server) accountSession(r *http.Request) (accountSession, bool) {
	v, ok := s.cookies.Verify(s.cookie(r, accountCookie))
	if !ok {
		return accountSession{}, false
	}
	parts := strings.Split(v, "|")
	if len(parts) != 4 || parts[0] != "account-v1" {
		return accountSession{}, false
	}
	exp, err := strconv.ParseInt(parts[3], 10, 64)
	if err != nil || !s.now().Before(time.Unix(exp, 0)) || parts[1] == "" || parts[2] == "" {
		return accountSession{}, false
	}
	return accountSession{UserID: parts[1], Nonce: parts[2]}, true
}

func (s *Server) startAccountSession(w http.ResponseWriter, userID string) error {
	nonce, err := seal.Token(s.rand, 32)
	if err != nil {
		return err
	}
	exp := s.now().Add(accountSessionTTL).Unix()
	s.setCookie(w, accountCookie, s.cookies.Sign(strings.Join([]string{"account-v1", userID, nonce, strconv.FormatInt(exp, 10)}, "|")), accountSessionTTL)
	return nil
}

// csrf is the token every form of the page carries: a MAC of the session's
// nonce, so it needs no storage and dies with the session.
func (a accountSession) csrf(s *Server) string {
	return base64.RawURLEncoding.EncodeToString(s.cookies.MAC("account-csrf", a.Nonce))
}

// signInPages are the pages a sign-in may return to (a stored value, but
// only these are ever redirected to).
var signInPages = []string{"/account", "/admin"}

// signedIn is the one sign-in of the pages for people (/account, /admin):
// the signed-in user, or, when there is none, the answer has been written:
// a redirect to Clerk's sign-in, which comes back to page.
func (s *Server) signedIn(w http.ResponseWriter, r *http.Request, page string) (accountSession, bool) {
	if sess, ok := s.accountSession(r); ok {
		return sess, true
	}
	clerkURL, state, binding, oerr := s.startUpstream(r, authRequest{}, page)
	if oerr != nil {
		s.renderError(w, r, pageUnavailable)
		return accountSession{}, false
	}
	s.setCookie(w, bindingCookie(state), binding, upstreamTTL)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, clerkURL, http.StatusFound)
	return accountSession{}, false
}

// handleAccount shows the user's grants, or starts the Clerk sign-in.
func (s *Server) handleAccount(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.signedIn(w, r, "/account")
	if !ok {
		return
	}
	gs, err := s.store.ListGrantsByUser(r.Context(), sess.UserID)
	if err != nil {
		s.storeError(r, "list_grants", err)
		s.renderError(w, r, pageUnavailable)
		return
	}
	slices.SortFunc(gs, func(a, b store.Grant) int { return b.CreatedAt.Compare(a.CreatedAt) })
	view := accountView{Service: s.cfg.ServiceName, UserID: sess.UserID, CSRF: sess.csrf(s), Disconnected: r.URL.Query().Get("disconnected")}
	for _, g := range gs {
		if !g.Active {
			continue // a sign-in still in progress
		}
		view.Grants = append(view.Grants, s.accountGrant(r, g))
	}
	s.renderPage(w, http.StatusOK, s.pages.account, view)
}

type accountView struct {
	Service, UserID, CSRF, Disconnected string
	Grants                              []accountGrantView
}

type accountGrantView struct {
	GrantID, ClientName, Initial, LogoURI, RedirectHost, Scopes, Created, LastUsed string
}

// pageTime is how the pages show a time.
func pageTime(t time.Time) string { return t.UTC().Format("2 Jan 2006 15:04 UTC") }

// lastUsedText is a grant's last use as the pages show it: to the minute,
// from internal/lastused.
func (s *Server) lastUsedText(r *http.Request, grantID string) string {
	if s.lastUsed != nil {
		if t, ok := s.lastUsed.LastUsed(r.Context(), grantID); ok {
			return pageTime(t)
		}
	}
	return "not yet"
}

// accountGrant describes one grant by its client, as the consent page did.
func (s *Server) accountGrant(r *http.Request, g store.Grant) accountGrantView {
	v := accountGrantView{GrantID: g.ID, ClientName: g.ClientID, Scopes: strings.Join(g.Scopes, ", "),
		Created: pageTime(g.CreatedAt), LastUsed: s.lastUsedText(r, g.ID)}
	if c, err := s.lookupClient(r.Context(), g.ClientID); err == nil {
		cv := s.consentView(c, authRequest{ClientID: c.ID, RedirectURI: firstOf(c.RedirectURIs)}, "", "")
		v.ClientName, v.Initial, v.LogoURI, v.RedirectHost = cv.ClientName, cv.Initial, cv.LogoURI, cv.RedirectHost
	}
	if v.Initial == "" && v.ClientName != "" {
		v.Initial = strings.ToUpper(v.ClientName[:1])
	}
	return v
}

func firstOf(xs []string) string {
	if len(xs) == 0 {
		return ""
	}
	return xs[0]
}

// accountForm checks a form of the page: a live session and its CSRF token.
// On failure the answer has been written.
func (s *Server) accountForm(w http.ResponseWriter, r *http.Request) (accountSession, params, bool) {
	sess, ok := s.accountSession(r)
	if !ok {
		s.renderError(w, r, pageFormCSRF.with("Your session has ended; open the page again to sign in."))
		return sess, params{}, false
	}
	p, oerr := readForm(w, r)
	if oerr != nil {
		s.renderError(w, r, pageBadRequest.withError(oerr))
		return sess, p, false
	}
	if !seal.Equal([]byte(p.get("csrf_token")), []byte(sess.csrf(s))) {
		s.renderError(w, r, pageFormCSRF)
		return sess, p, false
	}
	return sess, p, true
}

// handleAccountSignOut ends the page's session (the cookie; nothing is
// stored server-side).
func (s *Server) handleAccountSignOut(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := s.accountForm(w, r); !ok {
		return
	}
	s.setCookie(w, accountCookie, "", -1)
	s.renderError(w, r, pageSignedOut)
}

var pageSignedOut = errorPage{status: http.StatusOK, Title: "Signed out",
	Message: "You are signed out of this server's pages. Your connected apps keep working.",
	Hint:    "Open the page again to sign in."}

// handleAccountDisconnect ends one of the signed-in user's grants. The CSRF
// token must match the session, and the grant must be the user's own: one
// user can never end another's (a CIMD client id shared by every install
// is thus only disconnected for this user).
func (s *Server) handleAccountDisconnect(w http.ResponseWriter, r *http.Request) {
	sess, p, ok := s.accountForm(w, r)
	if !ok {
		return
	}
	g, err := s.store.GetGrant(r.Context(), p.get("grant_id"))
	if errors.Is(err, store.ErrNotFound) || (err == nil && g.UserID != sess.UserID) {
		s.renderError(w, r, pageBadRequest.with("This app is not connected to your account (any more)."))
		return
	}
	if err != nil || !s.endGrant(r, g, reasonDisconnect) {
		if err != nil {
			s.storeError(r, "get_grant", err)
		}
		s.renderError(w, r, pageUnavailable)
		return
	}
	name := s.accountGrant(r, g).ClientName
	http.Redirect(w, r, "/account?disconnected="+url.QueryEscape(name), http.StatusSeeOther)
}

// finishAccountSignIn completes the account page's Clerk sign-in at the
// callback: learn who signed in, drop Clerk's tokens, start the session.
func (s *Server) finishAccountSignIn(w http.ResponseWriter, r *http.Request, p params, up upstreamRequest) {
	code := p.get("code")
	if p.get("error") != "" || code == "" {
		s.renderError(w, r, pageDenied.with("The sign-in did not complete."))
		return
	}
	tokens, claims, err := s.clerk.Exchange(r.Context(), code, up.Verifier, up.Nonce)
	userID := s.signedInUser(r, tokens, claims, err)
	// The page needs the identity only; Clerk's tokens are not kept.
	s.revokeUpstream(r, tokens, "purpose", "account_sign_in")
	if userID == "" {
		s.renderError(w, r, pageUnavailable.with("The identity provider did not complete the sign-in."))
		return
	}
	if err := s.startAccountSession(w, userID); err != nil {
		s.renderError(w, r, pageUnavailable)
		return
	}
	s.audit(r, "account_signed_in", "user_id", userID)
	back := "/account"
	if slices.Contains(signInPages, up.Return) {
		back = up.Return
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// signedInUser is the Clerk user behind an exchange: the ID token's subject,
// or userinfo's when Clerk sent no ID token; "" when the exchange failed.
func (s *Server) signedInUser(r *http.Request, tokens clerk.TokenSet, claims *clerk.IDClaims, err error) string {
	if err != nil {
		return ""
	}
	if claims != nil && claims.Subject != "" {
		return claims.Subject
	}
	if ui, err := s.clerk.UserInfo(r.Context(), tokens.AccessToken); err == nil {
		return ui.Subject
	}
	return ""
}
