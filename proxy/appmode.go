package proxy

// AUTH_MODE=app: the proxy stays the authorization server (DCR, consent,
// its own tokens), but the user signs in through the team's own web app,
// where they already have a Clerk session, instead of a Clerk OAuth
// application. After consent the browser goes to
// APP_URL/auth/mcp?state=…&callback_url=BASE_URL/callback&client_name=…; the
// app sends it back to /callback?clerk_token=…&state=… (or error=
// access_denied). /callback is a path of its own, beside Clerk's
// /oauth/callback, which app mode does not serve.
//
// The state is the upstream state of proxy mode: 256 random bits naming a
// single-use server-side record (10 minutes, consumed atomically, sealed under
// the state) and bound to the approving browser by a cookie. The session
// token is verified without a network call (the instance JWKS: signature,
// iss, exp, nbf, azp among the app's origins), then the Backend API session
// is the source of truth: it must be active and belong to the token's user.
// The grant is bound to that session; the verifier ends the grant when the
// session ends.

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/clerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/httpx"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/oautherr"
)

// AppConfig is app mode's configuration; URL empty means proxy mode.
type AppConfig struct {
	URL string // APP_URL: the app serves URL + "/auth/mcp"
	// AuthorizedParties are the azp values a session token may carry: the
	// app's origin.
	AuthorizedParties []string
}

// AppClerk is what app mode needs from Clerk (clerk.Client).
type AppClerk interface {
	VerifySessionToken(ctx context.Context, token string, allowedParties []string, now time.Time, leeway time.Duration) (clerk.SessionClaims, error)
	Session(ctx context.Context, sessionID string) (clerk.Session, error)
}

// AppCallbackPath is where the team's app sends the browser back.
const AppCallbackPath = "/callback"

// sessionTokenLeeway is the clock skew allowed on a session token, which
// Clerk makes live only 60 s.
const sessionTokenLeeway = 5 * time.Second

func (s *Server) appMode() bool { return s.cfg.App.URL != "" }

var (
	pageBadSessionToken = errorPage{status: http.StatusBadRequest, Code: oautherr.AccessDenied,
		Title: "Your sign-in could not be verified", Message: "The app that signed you in sent a session this server does not accept, so nothing was shared.",
		Hint: "Go back to your MCP client and connect again. If it keeps happening, tell the app's developer."}
	pageClerkUnavailable = errorPage{status: http.StatusServiceUnavailable, Code: oautherr.TemporarilyUnavailable,
		Title: "Temporarily unavailable", Message: "Clerk could not be reached to verify your sign-in.",
		Hint: "Go back to your MCP client and connect again in a moment."}
)

// appSignInURL is where the browser goes after consent in app mode.
func (s *Server) appSignInURL(r *http.Request, req authRequest, state string) string {
	name := req.ClientID
	if c, err := s.store.GetClient(r.Context(), req.ClientID); err == nil && c.Name != "" {
		name = c.Name
	}
	q := url.Values{"state": {state}, "callback_url": {s.cfg.Issuer + AppCallbackPath}, "client_name": {name}}
	return s.cfg.App.URL + "/auth/mcp?" + q.Encode()
}

// handleAppCallback is the team app's redirect back: state and browser
// binding as in proxy mode (resumeUpstream, which also turns the app's
// error=access_denied into the client's), then the session token and the
// session, then the proxy's own code for the MCP client. A token or session
// that does not pass is a 400 page naming no reason (the log has it).
func (s *Server) handleAppCallback(w http.ResponseWriter, r *http.Request) {
	p, up, ok := s.resumeUpstream(w, r, "app")
	if !ok {
		return
	}
	req := up.Request
	tok := p.get("clerk_token")
	if tok == "" {
		s.renderError(w, r, pageBadSessionToken.with("The app sent no clerk_token."))
		return
	}
	claims, err := s.sessions.VerifySessionToken(r.Context(), tok, s.cfg.App.AuthorizedParties, s.now(), sessionTokenLeeway)
	if err == nil {
		err = s.checkSession(r.Context(), claims)
	}
	if err != nil {
		if errors.Is(err, clerk.ErrUnavailable) || clerk.IsTransient(err) || clerk.IsRejected(err) {
			// Clerk did not answer, or refused the proxy's secret key: not
			// the user's fault either way.
			s.log.WarnContext(r.Context(), "cannot verify the app's Clerk session", "err", err, "client_id", req.ClientID)
			s.renderError(w, r, pageClerkUnavailable)
			return
		}
		s.audit(r, "app_session_refused", "client_id", req.ClientID, "reason", err.Error())
		s.renderError(w, r, pageBadSessionToken)
		return
	}
	httpx.SetUser(r.Context(), claims.Subject)
	code, oe := s.issueCode(r, req, claims.Subject, clerk.TokenSet{}, claims.SessionID)
	if oe != nil {
		s.redirectError(w, r, req.RedirectURI, req.State, oe)
		return
	}
	s.audit(r, "authorization_code_issued", "client_id", req.ClientID, "user_id", claims.Subject)
	s.redirectToClient(w, r, req.RedirectURI, req.State, url.Values{"code": {code}})
}

// errSessionNotActive: the Backend API says the session is over, or is
// someone else's.
var errSessionNotActive = errors.New("the Clerk session is not active or belongs to another user")

// checkSession asks the Backend API, the source of truth, about the session.
func (s *Server) checkSession(ctx context.Context, c clerk.SessionClaims) error {
	sess, err := s.sessions.Session(ctx, c.SessionID)
	if err != nil {
		return err
	}
	if !sess.Active() || sess.UserID != c.Subject {
		return errSessionNotActive
	}
	return nil
}
