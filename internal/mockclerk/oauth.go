package mockclerk

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Clerk's built-in scopes (wire facts §13).
var knownScopes = []string{"openid", "profile", "email", "public_metadata", "private_metadata", "offline_access", "user:org:read"}

// codeTTL is Clerk's authorization-code lifetime: 10 minutes, single use.
const codeTTL = 10 * time.Minute

// authRequest is a validated authorization request waiting for sign-in.
type authRequest struct {
	ClientID, RedirectURI, State, Challenge, Nonce, Resource string
	Scopes                                                   []string
	Created                                                  time.Time
}

// codeGrant is an issued authorization code.
type codeGrant struct {
	authRequest
	UserID  string
	Expires time.Time
}

// tokenRecord is an issued access or refresh token.
type tokenRecord struct {
	GrantID, UserID, ClientID, OrgID, Resource string
	Scopes                                     []string
	IssuedAt, Expires                          time.Time // Expires zero: never (refresh tokens)
	Revoked                                    bool
	JWT                                        bool
	Nonce                                      string
}

func (t *tokenRecord) active(now time.Time) bool {
	return !t.Revoked && (t.Expires.IsZero() || now.Before(t.Expires))
}

// dcrClient is a client registered through /oauth/register.
type dcrClient struct {
	ID, Secret, Name, AuthMethod string
	RedirectURIs, Scopes         []string
	Created                      time.Time
}

func (s *Server) routes() {
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /.well-known/oauth-authorization-server", s.handleASMetadata)
	s.mux.HandleFunc("GET /.well-known/openid-configuration", s.handleOIDCConfiguration)
	s.mux.HandleFunc("GET /.well-known/jwks.json", s.handleJWKS)
	s.mux.HandleFunc("/oauth/authorize", s.handleAuthorize)
	s.mux.HandleFunc("/sign-in", s.handleSignIn)
	s.mux.HandleFunc("/oauth/token", s.handleToken)
	s.mux.HandleFunc("/oauth/token_info", s.handleTokenInfo)
	s.mux.HandleFunc("/oauth/token/revoke", s.handleRevoke)
	s.mux.HandleFunc("/oauth/userinfo", s.handleUserInfo)
	s.mux.HandleFunc("/oauth/register", s.handleRegister)
	s.bapiRoutes()
	s.adminRoutes()
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeClerkError(w, http.StatusNotFound, "resource_not_found", "not found")
	})
}

// metadata is §2a; the OIDC document (§2b) adds introspection and userinfo
// and drops registration_endpoint.
func (s *Server) metadata() map[string]any {
	iss := s.cfg.Issuer
	return map[string]any{
		"issuer": iss, "authorization_endpoint": iss + "/oauth/authorize", "token_endpoint": iss + "/oauth/token",
		"revocation_endpoint": iss + "/oauth/token/revoke", "jwks_uri": iss + "/.well-known/jwks.json",
		"response_types_supported": []string{"code"}, "grant_types_supported": []string{"authorization_code", "refresh_token"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "none", "client_secret_post"},
		"scopes_supported":                      knownScopes, "subject_types_supported": []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"claims_supported":                      []string{"sub", "iss", "aud", "exp", "iat", "email", "name", "org_id"},
		"service_documentation":                 "https://clerk.com/docs", "ui_locales_supported": []string{"en"},
		"op_tos_uri": "https://clerk.com/legal/standard-terms", "code_challenge_methods_supported": []string{"S256"},
	}
}

func (s *Server) handleASMetadata(w http.ResponseWriter, _ *http.Request) {
	m := s.metadata()
	if s.cfg.DCR {
		m["registration_endpoint"] = s.cfg.Issuer + "/oauth/register"
	}
	writeJSON(w, http.StatusOK, m)
}

func (s *Server) handleOIDCConfiguration(w http.ResponseWriter, _ *http.Request) {
	m := s.metadata()
	// Fix: FAPI's OpenIDConfiguration schema (additionalProperties: false)
	// has no service_documentation, ui_locales_supported or op_tos_uri;
	// those belong to the RFC 8414 document only (wire facts §2b).
	delete(m, "service_documentation")
	delete(m, "ui_locales_supported")
	delete(m, "op_tos_uri")
	m["introspection_endpoint"] = s.cfg.Issuer + "/oauth/token_info"
	m["userinfo_endpoint"] = s.cfg.Issuer + "/oauth/userinfo"
	m["response_modes_supported"] = []string{"query", "form_post"}
	m["backchannel_logout_supported"] = false
	m["frontchannel_logout_supported"] = false
	writeJSON(w, http.StatusOK, m)
}

// params reads a request's parameters: the query for GET, an urlencoded
// form for POST. Repeated parameters are refused (RFC 6749 §3.1).
func params(r *http.Request) (url.Values, string) {
	var v url.Values
	switch r.Method {
	case http.MethodGet:
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return nil, "the query string is malformed"
		}
		v = q
	case http.MethodPost:
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/x-www-form-urlencoded" {
			return nil, "the body must be application/x-www-form-urlencoded"
		}
		if err := r.ParseForm(); err != nil {
			return nil, "the form body is malformed or too large"
		}
		v = r.PostForm
	default:
		return nil, "method not allowed"
	}
	for k, vs := range v {
		if len(vs) > 1 {
			return nil, "the parameter " + k + " is repeated"
		}
	}
	return v, ""
}

// client finds the OAuth application or a DCR client: secret "" means public.
func (s *Server) client(id string) (secret string, redirects []string, ok bool) {
	if id == "" {
		return "", nil, false
	}
	if id == s.cfg.ClientID {
		return s.cfg.ClientSecret, s.cfg.RedirectURIs, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.st.clients[id]
	return c.Secret, c.RedirectURIs, ok
}

// clientScopes are the scopes a client may be granted and its default when
// the request has no scope. Fix: a DCR client used to be granted any built-in
// scope and "profile email" by default; Clerk grants an app only the scopes
// enabled on it and gives DCR clients their registered (default) scopes, so
// "openid" is refused for a client registered with the defaults (wire facts
// §4, §12, §13).
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

// handleAuthorize validates the request (§4) and shows the sign-in form.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	p, bad := params(r)
	if bad != "" {
		s.page(w, http.StatusBadRequest, "Invalid request", bad)
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
	state := p.Get("state")
	fail := func(code, desc string) { redirectError(w, r, redirect, state, code, desc) }
	if p.Get("response_type") != "code" {
		fail("unsupported_response_type", "only response_type=code is supported")
		return
	}
	challenge, method := p.Get("code_challenge"), p.Get("code_challenge_method")
	switch {
	case challenge != "" && method != "S256":
		fail("invalid_request", "code_challenge_method must be S256")
		return
	case challenge == "" && method != "":
		fail("invalid_request", "code_challenge is missing")
		return
	case challenge != "" && (len(challenge) < 43 || len(challenge) > 128):
		fail("invalid_request", "code_challenge must be 43 to 128 characters")
		return
	case challenge == "" && secret == "":
		// Fix: PKCE is required for public clients (wire facts §4, §12);
		// without this a public DCR client could redeem a code with its
		// client_id alone.
		fail("invalid_request", "code_challenge is required for public clients")
		return
	case challenge == "" && len(state) < 8:
		fail("invalid_state", "state must be at least 8 characters")
		return
	}
	allowed, defaults := s.clientScopes(p.Get("client_id"))
	scopes := strings.Fields(p.Get("scope"))
	if p.Get("scope") == "" {
		scopes = defaults
	}
	for _, sc := range scopes {
		if !slices.Contains(knownScopes, sc) || !slices.Contains(allowed, sc) {
			fail("invalid_scope", "the scope "+sc+" is not allowed for this application")
			return
		}
	}
	req := authRequest{ClientID: p.Get("client_id"), RedirectURI: redirect, State: state, Challenge: challenge,
		Nonce: p.Get("nonce"), Resource: p.Get("resource"), Scopes: dedupe(scopes), Created: s.cfg.Now()}
	id := randomToken(24)
	s.mu.Lock()
	s.st.pending[id] = req
	s.mu.Unlock()
	s.signInPage(w, id, req)
}

// handleSignIn takes the sign-in form: it signs the chosen user in and sends
// the browser back with a code (consent is implied for the first-party app).
func (s *Server) handleSignIn(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		s.page(w, http.StatusMethodNotAllowed, "Method not allowed", "Submit the sign-in form.")
		return
	}
	p, bad := params(r)
	if bad != "" {
		s.page(w, http.StatusBadRequest, "Invalid request", bad)
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
	uid := p.Get("user_id")
	if uid == "" {
		uid = s.cfg.Users[0].ID
	}
	u, ok := s.user(uid)
	if !ok {
		s.page(w, http.StatusBadRequest, "Unknown user", "Pick one of the listed users.")
		return
	}
	if p.Get("action") == "deny" {
		redirectError(w, r, req.RedirectURI, req.State, "access_denied", "the user denied the request")
		return
	}
	code := randomToken(32)
	s.mu.Lock()
	s.st.codes[code] = &codeGrant{authRequest: req, UserID: u.ID, Expires: s.cfg.Now().Add(codeTTL)}
	s.mu.Unlock()
	s.log.Info("signed in", "user_id", u.ID, "client_id", req.ClientID)
	q := url.Values{"code": {code}}
	if req.State != "" {
		q.Set("state", req.State)
	}
	http.Redirect(w, r, appendQuery(req.RedirectURI, q), http.StatusFound)
}

func redirectError(w http.ResponseWriter, r *http.Request, redirect, state, code, desc string) {
	q := url.Values{"error": {code}, "error_description": {desc}}
	if state != "" {
		q.Set("state", state)
	}
	http.Redirect(w, r, appendQuery(redirect, q), http.StatusFound)
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

// clientAuth authenticates the caller of /oauth/token: HTTP Basic (RFC 6749
// §2.3.1, id and secret form-urlencoded) or client_secret_post, treated the
// same; a public DCR client sends its client_id only.
func (s *Server) clientAuth(r *http.Request, p url.Values, requireSecret bool) (string, bool) {
	id, secret, basic := r.BasicAuth()
	if basic {
		if p.Get("client_secret") != "" {
			return "", false
		}
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return "", false
		}
	} else {
		id, secret = p.Get("client_id"), p.Get("client_secret")
	}
	want, _, ok := s.client(id)
	if !ok {
		return "", false
	}
	if want == "" { // public client
		return id, !requireSecret && secret == ""
	}
	return id, subtle.ConstantTimeCompare([]byte(secret), []byte(want)) == 1
}

// handleToken is §5: authorization_code and refresh_token grants.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "use POST")
		return
	}
	p, bad := params(r)
	if bad != "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", bad)
		return
	}
	clientID, ok := s.clientAuth(r, p, false)
	if !ok {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client",
			"Client authentication failed (e.g., unknown client, no client authentication included, or unsupported authentication method).")
		return
	}
	switch p.Get("grant_type") {
	case "authorization_code":
		s.codeGrant(w, p, clientID)
	case "refresh_token":
		s.refreshGrant(w, p, clientID)
	case "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "grant_type is missing")
	default:
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", "the grant type is not supported")
	}
}

func (s *Server) codeGrant(w http.ResponseWriter, p url.Values, clientID string) {
	s.mu.Lock()
	c, ok := s.st.codes[p.Get("code")]
	delete(s.st.codes, p.Get("code")) // single use, even when the checks below fail
	s.mu.Unlock()
	now := s.cfg.Now()
	switch {
	case !ok || now.After(c.Expires):
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "the authorization code is invalid, expired or was already used")
	case c.ClientID != clientID:
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "the authorization code was issued to another client")
	case p.Get("redirect_uri") != c.RedirectURI:
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "the redirect_uri does not match the authorization request")
	case c.Challenge != "" && !pkceMatches(p.Get("code_verifier"), c.Challenge):
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "the code_verifier does not match the code_challenge")
	case c.Challenge == "" && p.Get("code_verifier") != "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "a code_verifier was sent but the authorization request had no code_challenge")
	default:
		u, _ := s.user(c.UserID)
		resource := c.Resource
		if p.Get("resource") != "" {
			resource = p.Get("resource")
		}
		s.issue(w, u, clientID, c.Scopes, randomToken(16), c.Nonce, resource)
	}
}

func pkceMatches(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	return subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(challenge)) == 1
}

func (s *Server) refreshGrant(w http.ResponseWriter, p url.Values, clientID string) {
	now := s.cfg.Now()
	s.mu.Lock()
	t, ok := s.st.refresh[p.Get("refresh_token")]
	valid := ok && t.active(now) && t.ClientID == clientID
	if valid {
		t.Revoked = true // rotation: the presented token dies now
	}
	s.mu.Unlock()
	if !valid {
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "the refresh token is invalid, expired or revoked")
		return
	}
	scopes := t.Scopes
	if sc := p.Get("scope"); sc != "" {
		scopes = strings.Fields(sc)
		for _, x := range scopes {
			if !slices.Contains(t.Scopes, x) {
				s.mu.Lock()
				t.Revoked = false // a refused request does not spend the token
				s.mu.Unlock()
				writeOAuthError(w, http.StatusBadRequest, "invalid_scope", "the requested scope exceeds the original grant")
				return
			}
		}
	}
	u, _ := s.user(t.UserID)
	s.issue(w, u, clientID, scopes, t.GrantID, t.Nonce, t.Resource)
}

// issue answers a token response: access token (opaque or JWT), refresh
// token when offline_access was granted, ID token when openid was.
func (s *Server) issue(w http.ResponseWriter, u User, clientID string, scopes []string, grantID, nonce, resource string) {
	now := s.cfg.Now()
	rec := &tokenRecord{GrantID: grantID, UserID: u.ID, ClientID: clientID, Scopes: scopes, IssuedAt: now,
		Expires: now.Add(s.cfg.AccessTokenTTL), Resource: resource, Nonce: nonce}
	if u.Org != nil && slices.Contains(scopes, "user:org:read") {
		rec.OrgID = u.Org.ID
	}
	jti := "oat_" + strings.ToUpper(randomAlnum(32))
	access := jti
	if s.cfg.TokenFormat == "jwt" {
		rec.JWT = true
		claims := map[string]any{"client_id": clientID, "exp": rec.Expires.Unix() + 1, "iat": now.Unix(), "iss": s.cfg.Issuer,
			"jti": jti, "nbf": now.Unix() - 10, "scope": strings.Join(scopes, " "), "sub": u.ID}
		if rec.OrgID != "" {
			claims["org_id"] = rec.OrgID
		}
		if resource != "" {
			claims["aud"] = resource
		}
		var err error
		if access, err = s.sign("at+jwt", claims); err != nil {
			writeOAuthError(w, http.StatusInternalServerError, "server_error", "signing failed")
			return
		}
	}
	resp := map[string]any{"access_token": access, "token_type": "bearer", "expires_in": int64(s.cfg.AccessTokenTTL / time.Second),
		"scope": strings.Join(scopes, " ")}
	if slices.Contains(scopes, "openid") {
		idt, err := s.idToken(u, clientID, scopes, nonce, rec.OrgID, now)
		if err != nil {
			writeOAuthError(w, http.StatusInternalServerError, "server_error", "signing failed")
			return
		}
		resp["id_token"] = idt
	}
	s.mu.Lock()
	s.st.access[jti] = rec
	if slices.Contains(scopes, "offline_access") {
		refresh := randomAlnum(48)
		r := *rec
		r.Expires = time.Time{} // Clerk's refresh tokens do not expire
		s.st.refresh[refresh] = &r
		resp["refresh_token"] = refresh
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) idToken(u User, clientID string, scopes []string, nonce, orgID string, now time.Time) (string, error) {
	c := map[string]any{"iss": s.cfg.Issuer, "sub": u.ID, "aud": clientID, "exp": now.Add(24 * time.Hour).Unix(),
		"iat": now.Unix(), "jti": randomAlnum(20)}
	if nonce != "" {
		c["nonce"] = nonce
	}
	for k, v := range s.userClaims(u, scopes, orgID) {
		c[k] = v
	}
	return s.sign("JWT", c)
}

// userClaims are the scope-dependent user fields of userinfo and the ID token.
func (s *Server) userClaims(u User, scopes []string, orgID string) map[string]any {
	c := map[string]any{}
	if slices.Contains(scopes, "email") {
		c["email"], c["email_verified"] = u.Email, true
	}
	if slices.Contains(scopes, "profile") {
		c["name"], c["given_name"], c["family_name"] = u.Name(), u.FirstName, u.LastName
		c["picture"], c["preferred_username"], c["username"] = u.ImageURL, u.Username, u.Username
	}
	if slices.Contains(scopes, "public_metadata") {
		c["public_metadata"], c["unsafe_metadata"] = map[string]any{"plan": "pro"}, map[string]any{}
	}
	if slices.Contains(scopes, "private_metadata") {
		c["private_metadata"] = map[string]any{}
	}
	if orgID != "" && u.Org != nil {
		c["org_id"], c["org_name"], c["org_slug"] = u.Org.ID, u.Org.Name, u.Org.Slug
	}
	return c
}

// lookup finds an access or refresh token (a JWT by its jti).
func (s *Server) lookup(token string) (*tokenRecord, bool) {
	key := token
	if strings.Count(token, ".") == 2 {
		claims, ok := s.parseOwnJWT(token)
		if !ok {
			return nil, false
		}
		key, _ = claims["jti"].(string)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.st.access[key]; ok {
		return t, true
	}
	t, ok := s.st.refresh[key]
	return t, ok
}

// basicClient requires HTTP Basic credentials of a known confidential client
// (introspection and revocation).
func (s *Server) basicClient(w http.ResponseWriter, r *http.Request) bool {
	if _, _, ok := r.BasicAuth(); !ok {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed: HTTP Basic credentials are required.")
		return false
	}
	if _, ok := s.clientAuth(r, url.Values{}, true); !ok {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed (e.g., unknown client, no client authentication included, or unsupported authentication method).")
		return false
	}
	return true
}

// tokenRequest reads what introspection and revocation share: a POST from
// a Basic-authenticated client naming a token. proceed is false when an
// error was written.
func (s *Server) tokenRequest(w http.ResponseWriter, r *http.Request) (t *tokenRecord, found, proceed bool) {
	if r.Method != http.MethodPost {
		writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "use POST")
		return nil, false, false
	}
	if !s.basicClient(w, r) {
		return nil, false, false
	}
	p, bad := params(r)
	if bad != "" || p.Get("token") == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", nonEmpty(bad, "token is missing"))
		return nil, false, false
	}
	t, found = s.lookup(p.Get("token"))
	return t, found, true
}

// handleTokenInfo is §7: RFC 7662 with Clerk's minimal answer.
func (s *Server) handleTokenInfo(w http.ResponseWriter, r *http.Request) {
	t, ok, proceed := s.tokenRequest(w, r)
	if !proceed {
		return
	}
	s.mu.Lock()
	active := ok && t.active(s.cfg.Now())
	s.mu.Unlock()
	if !active {
		writeJSON(w, http.StatusOK, map[string]any{"active": false})
		return
	}
	out := map[string]any{"active": true, "client_id": t.ClientID, "iat": t.IssuedAt.Unix(), "scope": strings.Join(t.Scopes, " "), "sub": t.UserID}
	if t.OrgID != "" {
		out["org_id"] = t.OrgID
	}
	writeJSON(w, http.StatusOK, out)
}

// handleRevoke is §8: RFC 7009 at /oauth/token/revoke. Revoking a refresh
// token also ends the access tokens of its grant.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	t, ok, proceed := s.tokenRequest(w, r)
	if !proceed {
		return
	}
	if ok && t.JWT && !t.Expires.IsZero() {
		writeOAuthError(w, http.StatusBadRequest, "unsupported_token_type", "JWT access tokens cannot be revoked")
		return
	}
	if ok {
		s.mu.Lock()
		t.Revoked = true
		if t.Expires.IsZero() { // a refresh token: its grant's access tokens go too
			for _, a := range s.st.access {
				if a.GrantID == t.GrantID {
					a.Revoked = true
				}
			}
		}
		s.mu.Unlock()
	}
	w.WriteHeader(http.StatusOK)
}

// handleUserInfo is §9: bearer access token, fields by scope, Clerk's error
// envelope on failure.
func (s *Server) handleUserInfo(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		writeClerkError(w, http.StatusMethodNotAllowed, "request_method_not_allowed", "use GET or POST")
		return
	}
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(token) == "" {
		writeClerkError(w, http.StatusUnauthorized, "authentication_invalid", "an OAuth access token is required")
		return
	}
	t, ok := s.lookup(strings.TrimSpace(token))
	s.mu.Lock()
	active := ok && t.active(s.cfg.Now()) && !t.Expires.IsZero()
	s.mu.Unlock()
	if !active {
		writeClerkError(w, http.StatusUnauthorized, "authentication_invalid", "the access token is invalid, expired or revoked")
		return
	}
	u, _ := s.user(t.UserID)
	// Fix: instance_id is the instance ID itself, prefix included, which is
	// also the JWKS kid (wire facts §10); it used to drop the "ins_" prefix.
	out := map[string]any{"object": "oauth_user_info", "instance_id": s.kid, "user_id": u.ID, "sub": u.ID}
	for k, v := range s.userClaims(u, t.Scopes, t.OrgID) {
		out[k] = v
	}
	writeJSON(w, http.StatusOK, out)
}

func nonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
