package proxy

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/oautherr"
)

// oauthError is the product's one error value (see oautherr): handlers
// return it, writeError writes, logs and counts it.
type oauthError = oautherr.Error

func errInvalidRequest(desc string) *oauthError {
	return oautherr.New(http.StatusBadRequest, oautherr.InvalidRequest, desc)
}

// errInvalidClient is 401 invalid_client; basic adds the Basic challenge RFC
// 6749 §5.2 requires when the client tried HTTP Basic.
func errInvalidClient(desc string, basic bool) *oauthError {
	e := oautherr.New(http.StatusUnauthorized, oautherr.InvalidClient, desc)
	if basic {
		e.Challenge = oautherr.BasicChallenge
	}
	return e
}

func errInvalidGrant(desc string) *oauthError {
	return oautherr.New(http.StatusBadRequest, oautherr.InvalidGrant, desc)
}

func errInvalidScope(desc string) *oauthError {
	return oautherr.New(http.StatusBadRequest, oautherr.InvalidScope, desc)
}

// errInvalidTarget is RFC 8707 §2's error for a resource this server does not serve.
func errInvalidTarget(desc string) *oauthError {
	return oautherr.New(http.StatusBadRequest, oautherr.InvalidTarget, desc)
}

func errServer(desc string) *oauthError {
	return oautherr.New(http.StatusInternalServerError, oautherr.ServerError, desc)
}

func errUnavailable(desc string) *oauthError {
	return oautherr.New(http.StatusServiceUnavailable, oautherr.TemporarilyUnavailable, desc)
}

func errMetadata(code oautherr.Code, desc string) *oauthError {
	return oautherr.New(http.StatusBadRequest, code, desc)
}

// writeError writes e as RFC 6749 JSON with Cache-Control: no-store, counts
// it, and logs it: server-side errors at WARN, client errors at DEBUG (the
// access log already has their status), each with its cause.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, endpoint string, e *oauthError) {
	level := slog.LevelDebug
	if e.Status >= 500 {
		level = slog.LevelWarn
	}
	if s.log.Enabled(r.Context(), level) {
		attrs := []any{"endpoint", endpoint, "error", e.Code, "description", e.Description}
		if e.Cause != nil {
			attrs = append(attrs, "cause", e.Cause.Error())
		}
		s.log.Log(r.Context(), level, "oauth error", attrs...)
	}
	s.metrics.OAuthErrors.WithLabelValues(endpoint, string(e.Code)).Inc()
	oautherr.Write(w, e)
}

// writeJSON writes v as JSON, never cached (tokens and errors must not be).
func writeJSON(w http.ResponseWriter, status int, v any) { oautherr.WriteJSON(w, status, v) }

// redirectError sends an authorization error back to a redirect URI that has
// already been validated (RFC 6749 §4.1.2.1), with state and iss (RFC 9207).
func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, redirectURI, state string, e *oauthError) {
	s.metrics.OAuthErrors.WithLabelValues("authorize", string(e.Code)).Inc()
	s.redirectToClient(w, r, redirectURI, state, errorParams(e))
}

// errorParams are an authorization error response's parameters.
func errorParams(e *oauthError) url.Values {
	q := url.Values{"error": {string(e.Code)}}
	if e.Description != "" {
		q.Set("error_description", e.Description)
	}
	return q
}

// earlyError answers an authorization error found before the user has
// signed in: at /authorize, or a denial on the consent page. RFC 9700
// §4.11.2: with registration open to anyone, an error redirect to a URI the
// client chose for itself would make this server an open redirector for
// phishing. So the browser is sent on by itself only to a trusted redirect
// URI (see redirectTrusted); otherwise the page says what happened and
// offers the way back to the app, and the user decides.
func (s *Server) earlyError(w http.ResponseWriter, r *http.Request, redirectURI, state string, e *oauthError) {
	if s.redirectTrusted(redirectURI) {
		s.redirectError(w, r, redirectURI, state, e)
		return
	}
	back, err := s.clientRedirectURL(redirectURI, state, errorParams(e))
	if err != nil {
		s.renderError(w, r, pageBadRedirect)
		return
	}
	page := pageAppRequest
	if e.Code == oautherr.AccessDenied {
		page = pageDenied
	}
	page.Code, page.ReturnURL, page.ReturnHost = e.Code, back, hostOf(redirectURI)
	s.renderError(w, r, page.with(e.Description))
}

// redirectToClient sends the browser to a validated redirect URI with params
// plus state and iss (each exactly once), with 302 (never 307: the body of a
// POST must not follow, RFC 9700 §4.12).
func (s *Server) redirectToClient(w http.ResponseWriter, r *http.Request, redirectURI, state string, params url.Values) {
	u, err := s.clientRedirectURL(redirectURI, state, params)
	if err != nil {
		s.renderError(w, r, pageBadRedirect)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, u, http.StatusFound)
}

// clientRedirectURL is a validated redirect URI with params, state and iss
// appended to its query.
func (s *Server) clientRedirectURL(redirectURI, state string, params url.Values) (string, error) {
	u, err := url.Parse(redirectURI)
	if err != nil {
		return "", err
	}
	add := url.Values{}
	for k, v := range params {
		add[k] = v
	}
	if state != "" {
		add.Set("state", state)
	}
	add.Set("iss", s.cfg.Issuer)
	u.RawQuery = appendQuery(u.RawQuery, add)
	return u.String(), nil
}

// appendQuery adds params to the query of a registered redirect URI. That
// query "MUST be retained" (RFC 6749 §3.1.2): its pairs are kept byte for
// byte (a decode and re-encode would reorder them, rewrite "flag" as "flag="
// and silently drop pairs Go cannot parse, such as "a=1;b=2"). Only pairs
// named like a parameter of this response, or state, are left out, so each
// of those appears exactly once.
func appendQuery(rawQuery string, params url.Values) string {
	var kept []string
	for _, pair := range strings.Split(rawQuery, "&") {
		name, _, _ := strings.Cut(pair, "=")
		if n, err := url.QueryUnescape(name); pair == "" || err == nil && (n == "state" || params.Has(n)) {
			continue
		}
		kept = append(kept, pair)
	}
	return strings.Join(append(kept, params.Encode()), "&")
}
