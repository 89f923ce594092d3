package mockclerk

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Clerk's prompt values (FAPI /oauth/authorize enum).
var knownPrompts = []string{"none", "login", "consent"}

// handleAuthorize validates the request (§4) and shows the sign-in form.
// Errors about the client or the redirect URI stay on a local page (no
// redirect to an unvalidated URI); the others go back to the redirect URI in
// the requested response mode.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	p, ok := s.pageParams(w, r, http.MethodGet, http.MethodPost)
	if !ok {
		return
	}
	secret, redirects, ok := s.client(p.Get("client_id"))
	if !ok {
		s.page(w, http.StatusUnauthorized, "Unknown application", "Client authentication failed: the requested OAuth 2.0 client does not exist.")
		return
	}
	redirect := p.Get("redirect_uri")
	if redirect == "" && len(redirects) == 1 {
		redirect = redirects[0]
	}
	if !slices.Contains(redirects, redirect) {
		s.page(w, http.StatusBadRequest, "Invalid redirect URI", "The redirect_uri is not registered for this application.")
		return
	}
	req := authRequest{ClientID: p.Get("client_id"), RedirectURI: redirect, State: p.Get("state"),
		Challenge: p.Get("code_challenge"), Nonce: p.Get("nonce"), Resource: p.Get("resource"),
		ResponseMode: nonEmpty(p.Get("response_mode"), "query"), Created: s.cfg.Now()}
	if code, desc := s.checkAuthorize(p, &req, secret == ""); code != "" {
		deliver(w, r, req, url.Values{"error": {code}, "error_description": {desc}})
		return
	}
	id := randomToken(24)
	s.mu.Lock()
	s.st.pending[id] = req
	s.mu.Unlock()
	s.signInPage(w, id, req)
}

// pageParams reads a browser endpoint's parameters; a wrong method (405)
// or a malformed request (400) gets a local page and ok false.
func (s *Server) pageParams(w http.ResponseWriter, r *http.Request, methods ...string) (url.Values, bool) {
	if !slices.Contains(methods, r.Method) {
		w.Header().Set("Allow", strings.Join(methods, ", "))
		s.page(w, http.StatusMethodNotAllowed, "Method not allowed", "Use "+strings.Join(methods, " or ")+".")
		return nil, false
	}
	p, bad := params(r)
	if bad != "" {
		s.page(w, http.StatusBadRequest, "Invalid request", bad)
		return nil, false
	}
	return p, true
}

// checkAuthorize runs the checks whose failures go back to the client, and
// fills in the granted scopes. It returns an OAuth error code and
// description, or "" when the request is good.
func (s *Server) checkAuthorize(p url.Values, req *authRequest, public bool) (code, desc string) {
	if req.ResponseMode != "query" && req.ResponseMode != "form_post" {
		// An unknown mode cannot carry its own error: answer in the default.
		req.ResponseMode = "query"
		return "invalid_request", "response_mode must be query or form_post"
	}
	if p.Get("response_type") != "code" {
		return "unsupported_response_type", "only response_type=code is supported"
	}
	if code, desc := checkPKCE(req.Challenge, p.Get("code_challenge_method"), public); code != "" {
		return code, desc
	}
	if code, desc := checkState(req.State, req.Challenge != ""); code != "" {
		return code, desc
	}
	if code, desc := checkPrompt(p.Get("prompt")); code != "" {
		return code, desc
	}
	req.Scopes, code, desc = s.grantableScopes(req.ClientID, p.Get("scope"))
	return code, desc
}

// checkPKCE: S256 only; required for public clients (wire facts §4, §12),
// without which a public DCR client could redeem a code with its client_id
// alone.
func checkPKCE(challenge, method string, public bool) (code, desc string) {
	switch {
	case challenge != "" && method != "S256":
		return "invalid_request", "code_challenge_method must be S256"
	case challenge == "" && method != "":
		return "invalid_request", "code_challenge is missing"
	case challenge != "" && (len(challenge) < 43 || len(challenge) > 128):
		return "invalid_request", "code_challenge must be 43 to 128 characters"
	case challenge == "" && public:
		return "invalid_request", "code_challenge is required for public clients"
	}
	return "", ""
}

// checkState: FAPI gives state minLength 8 whenever it is sent, and lets it
// be omitted only with PKCE; a short one is refused even with PKCE.
func checkState(state string, pkce bool) (code, desc string) {
	switch {
	case state == "" && !pkce:
		return "invalid_state", "state is required (at least 8 characters) unless PKCE is used"
	case state != "" && len(state) < 8:
		return "invalid_state", "state must be at least 8 characters"
	}
	return "", ""
}

// checkPrompt: the FAPI enum is none, login and consent. The fake keeps no
// browser session between requests, so prompt=none (answer without showing
// anything) can only be login_required (OIDC Core §3.1.2.6).
func checkPrompt(prompt string) (code, desc string) {
	values := strings.Fields(prompt)
	for _, v := range values {
		if !slices.Contains(knownPrompts, v) {
			return "invalid_request", "prompt must be none, login or consent"
		}
	}
	switch {
	case slices.Contains(values, "none") && len(values) > 1:
		return "invalid_request", "prompt=none cannot be combined with other values"
	case slices.Contains(values, "none"):
		return "login_required", "the user is not signed in"
	}
	return "", ""
}

// grantableScopes resolves the requested scopes (the client's default when
// none are asked for) and refuses any the client may not have.
func (s *Server) grantableScopes(clientID, scope string) (scopes []string, code, desc string) {
	allowed, defaults := s.clientScopes(clientID)
	scopes = strings.Fields(scope)
	if len(scopes) == 0 {
		scopes = defaults
	}
	for _, sc := range scopes {
		if !slices.Contains(knownScopes, sc) || !slices.Contains(allowed, sc) {
			return nil, "invalid_scope", "the scope " + sc + " is not allowed for this application"
		}
	}
	return dedupe(scopes), "", ""
}

// clientScopes are the scopes a client may be granted and its default when
// the request has no scope. Clerk grants an app only the scopes enabled on
// it and gives DCR clients their registered (default) scopes, so "openid" is
// refused for a client registered with the defaults (wire facts §4, §12,
// §13).
func (s *Server) clientScopes(id string) (allowed, defaults []string) {
	if id != s.cfg.ClientID {
		s.mu.Lock()
		c, ok := s.st.clients[id]
		s.mu.Unlock()
		if ok {
			return c.Scopes, c.Scopes
		}
	}
	return knownScopes, []string{"profile", "email"}
}

// handleSignIn takes the sign-in form: it signs the chosen user in and sends
// the browser back with a code (consent is implied for the first-party app).
func (s *Server) handleSignIn(w http.ResponseWriter, r *http.Request) {
	p, ok := s.pageParams(w, r, http.MethodPost)
	if !ok {
		return
	}
	s.mu.Lock()
	req, ok := s.st.pending[p.Get("request")]
	delete(s.st.pending, p.Get("request"))
	s.mu.Unlock()
	if !ok || s.cfg.Now().Sub(req.Created) > codeTTL {
		s.page(w, http.StatusBadRequest, "Sign-in expired", "This sign-in was used or has expired. Start again from the application.")
		return
	}
	u, ok := s.user(nonEmpty(p.Get("user_id"), s.cfg.Users[0].ID))
	if !ok {
		s.page(w, http.StatusBadRequest, "Unknown user", "Pick one of the listed users.")
		return
	}
	if p.Get("action") == "deny" {
		deliver(w, r, req, url.Values{"error": {"access_denied"}, "error_description": {"the user denied the request"}})
		return
	}
	orgID, ok := chosenOrg(u, req.Scopes, p.Get("org_id"))
	if !ok {
		s.page(w, http.StatusBadRequest, "Not a member", "The chosen user is not a member of that organization.")
		return
	}
	code := randomToken(32)
	s.mu.Lock()
	s.st.codes[code] = &codeGrant{authRequest: req, UserID: u.ID, OrgID: orgID, Expires: s.cfg.Now().Add(codeTTL)}
	s.mu.Unlock()
	s.log.Info("signed in", "user_id", u.ID, "client_id", req.ClientID)
	deliver(w, r, req, url.Values{"code": {code}})
}

// chosenOrg is the organization the tokens are tied to: only with
// user:org:read; the picker's default ("") is the user's own organization,
// "none" the personal account, anything else must be the user's.
func chosenOrg(u User, scopes []string, choice string) (orgID string, ok bool) {
	if !slices.Contains(scopes, scopeOrgRead) || choice == "none" {
		return "", true
	}
	if choice == "" {
		if u.Org == nil {
			return "", true
		}
		return u.Org.ID, true
	}
	return choice, u.Org != nil && u.Org.ID == choice
}

// deliver sends an authorization response (a code or an error, with the
// state) to the validated redirect URI: a 302 with the query for
// response_mode=query, a 200 self-posting form for form_post (FAPI lists 200
// "for 'form_post' response mode"), as the OIDC document advertises.
func deliver(w http.ResponseWriter, r *http.Request, req authRequest, q url.Values) {
	if req.State != "" {
		q.Set("state", req.State)
	}
	if req.ResponseMode == "form_post" {
		formPostPage(w, req.RedirectURI, q)
		return
	}
	http.Redirect(w, r, appendQuery(req.RedirectURI, q), http.StatusFound)
}

func appendQuery(u string, q url.Values) string {
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + q.Encode()
}

func dedupe(in []string) []string {
	var out []string
	for _, s := range in {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
