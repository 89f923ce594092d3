package proxy

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// oauthError is an RFC 6749 §5.2 error as a value. Handlers return it; one
// helper writes it. Description is shown to clients, so it never carries a
// secret, a token or an internal error text.
type oauthError struct {
	Code        string
	Description string
	Status      int
	// basicChallenge adds WWW-Authenticate: Basic (RFC 6749 §5.2: an
	// invalid_client answer to a Basic-authenticated request must carry it).
	basicChallenge bool
}

func (e *oauthError) Error() string { return e.Code + ": " + e.Description }

func errInvalidRequest(desc string) *oauthError {
	return &oauthError{Code: "invalid_request", Description: desc, Status: http.StatusBadRequest}
}

func errInvalidClient(desc string, basic bool) *oauthError {
	return &oauthError{Code: "invalid_client", Description: desc, Status: http.StatusUnauthorized, basicChallenge: basic}
}

func errInvalidGrant(desc string) *oauthError {
	return &oauthError{Code: "invalid_grant", Description: desc, Status: http.StatusBadRequest}
}

func errInvalidScope(desc string) *oauthError {
	return &oauthError{Code: "invalid_scope", Description: desc, Status: http.StatusBadRequest}
}

// errInvalidTarget is RFC 8707 §2's error for a resource this server does not serve.
func errInvalidTarget(desc string) *oauthError {
	return &oauthError{Code: "invalid_target", Description: desc, Status: http.StatusBadRequest}
}

func errServer(desc string) *oauthError {
	return &oauthError{Code: "server_error", Description: desc, Status: http.StatusInternalServerError}
}

func errUnavailable(desc string) *oauthError {
	return &oauthError{Code: "temporarily_unavailable", Description: desc, Status: http.StatusServiceUnavailable}
}

func errMetadata(code, desc string) *oauthError {
	return &oauthError{Code: code, Description: desc, Status: http.StatusBadRequest}
}

// writeError writes e as RFC 6749 JSON with Cache-Control: no-store.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, endpoint string, e *oauthError) {
	if e.basicChallenge {
		w.Header().Set("WWW-Authenticate", `Basic realm="clerk-mcp-proxy", charset="UTF-8"`)
	}
	if e.Status >= 500 {
		s.log.WarnContext(r.Context(), "oauth server-side error", "endpoint", endpoint, "error", e.Code, "description", e.Description)
	}
	s.metrics.OAuthErrors.WithLabelValues(endpoint, e.Code).Inc()
	writeJSON(w, e.Status, map[string]string{"error": e.Code, "error_description": e.Description})
}

// writeJSON writes v as JSON, never cached (tokens and errors must not be).
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":"server_error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// redirectError sends an authorization error back to a redirect URI that has
// already been validated (RFC 6749 §4.1.2.1), with state and iss (RFC 9207).
func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, redirectURI, state string, e *oauthError) {
	s.metrics.OAuthErrors.WithLabelValues("authorize", e.Code).Inc()
	s.redirectToClient(w, r, redirectURI, state, errorParams(e))
}

// errorParams are an authorization error response's parameters.
func errorParams(e *oauthError) url.Values {
	q := url.Values{"error": {e.Code}}
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
		s.renderError(w, r, http.StatusBadRequest, pageBadRedirect)
		return
	}
	page, status := pageAppRequest, http.StatusBadRequest
	if e.Code == "access_denied" {
		page, status = pageDenied, http.StatusOK
	}
	page.Code, page.ReturnURL, page.ReturnHost = e.Code, back, hostOf(redirectURI)
	s.renderError(w, r, status, page.with(e.Description))
}

// redirectToClient sends the browser to a validated redirect URI with params
// plus state and iss (each exactly once), with 302 (never 307: the body of a
// POST must not follow, RFC 9700 §4.12).
func (s *Server) redirectToClient(w http.ResponseWriter, r *http.Request, redirectURI, state string, params url.Values) {
	u, err := s.clientRedirectURL(redirectURI, state, params)
	if err != nil {
		s.renderError(w, r, http.StatusBadRequest, pageBadRedirect)
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
