package mockclerk

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/oautherr"
)

// Clerk's built-in scopes (wire facts §13).
var knownScopes = []string{"openid", "profile", "email", "public_metadata", "private_metadata", "offline_access", scopeOrgRead}

// scopeOrgRead ties tokens to an organization the user picks (org_id).
const scopeOrgRead = "user:org:read"

// codeTTL is Clerk's authorization-code lifetime: 10 minutes, single use.
const codeTTL = 10 * time.Minute

// authRequest is a validated authorization request waiting for sign-in.
type authRequest struct {
	ClientID, RedirectURI, State, Challenge, Nonce, Resource string
	ResponseMode                                             string // "query" or "form_post"
	Scopes                                                   []string
	Created                                                  time.Time
}

// codeGrant is an issued authorization code.
type codeGrant struct {
	authRequest
	UserID  string
	OrgID   string // the organization picked at sign-in ("": none)
	Expires time.Time
}

// tokenRecord is an issued access or refresh token.
type tokenRecord struct {
	ID                                         string // Backend API id: the JWT's jti, or "oat_" + 32 hex
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
	s.teamAppRoutes()
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
	// FAPI's OpenIDConfiguration schema (additionalProperties: false)
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

// Clerk's invalid_client descriptions are fosite's: the generic sentence,
// plus a hint when the client does not exist (wire facts §5, real bodies).
const clientAuthFailed = "Client authentication failed (e.g., unknown client, no client authentication included, or unsupported authentication method)."

var (
	errClientAuth    = errors.New(clientAuthFailed)
	errUnknownClient = errors.New(clientAuthFailed + " The requested OAuth 2.0 Client does not exist.")
)

// clientAuth authenticates the caller of /oauth/token: HTTP Basic (RFC 6749
// §2.3.1, id and secret form-urlencoded) or client_secret_post, treated the
// same; a public DCR client sends its client_id only. The error is the
// invalid_client description to answer.
func (s *Server) clientAuth(r *http.Request, p url.Values, requireSecret bool) (string, error) {
	id, secret, basic := r.BasicAuth()
	if basic {
		if p.Get("client_secret") != "" {
			return "", errClientAuth // two methods at once
		}
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return "", errClientAuth
		}
	} else {
		id, secret = p.Get("client_id"), p.Get("client_secret")
	}
	want, _, ok := s.client(id)
	switch {
	case !ok:
		return "", errUnknownClient
	case want == "" && (requireSecret || secret != ""): // public client
		return "", errClientAuth
	case want != "" && subtle.ConstantTimeCompare([]byte(secret), []byte(want)) != 1:
		return "", errClientAuth
	}
	return id, nil
}

// handleToken is §5: authorization_code and refresh_token grants.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeOAuthError(w, http.StatusMethodNotAllowed, oautherr.InvalidRequest, "use POST")
		return
	}
	p, bad := params(r)
	if bad != "" {
		writeOAuthError(w, http.StatusBadRequest, oautherr.InvalidRequest, bad)
		return
	}
	clientID, err := s.clientAuth(r, p, false)
	if err != nil {
		writeOAuthError(w, http.StatusUnauthorized, oautherr.InvalidClient, err.Error())
		return
	}
	switch p.Get("grant_type") {
	case "authorization_code":
		s.codeGrant(w, p, clientID)
	case "refresh_token":
		s.refreshGrant(w, p, clientID)
	case "":
		writeOAuthError(w, http.StatusBadRequest, oautherr.InvalidRequest, "grant_type is missing")
	default:
		// FAPI lists unsupported_grant_type under OAuth.TokenError401 only.
		writeOAuthError(w, http.StatusUnauthorized, oautherr.UnsupportedGrantType, "the grant type is not supported")
	}
}

func (s *Server) codeGrant(w http.ResponseWriter, p url.Values, clientID string) {
	if p.Get("code") == "" {
		writeOAuthError(w, http.StatusBadRequest, oautherr.InvalidRequest, "code is missing")
		return
	}
	s.mu.Lock()
	c, ok := s.st.codes[p.Get("code")]
	delete(s.st.codes, p.Get("code")) // single use, even when the checks below fail
	s.mu.Unlock()
	if status, desc := s.checkCode(c, ok, p, clientID); status != 0 {
		writeOAuthError(w, status, oautherr.InvalidGrant, desc)
		return
	}
	u, _ := s.user(c.UserID)
	s.issue(w, u, c.OrgID, clientID, c.Scopes, randomToken(16), c.Nonce, nonEmpty(p.Get("resource"), c.Resource))
}

// checkCode validates a code redemption. The statuses follow FAPI's token
// errors: OAuth.TokenError401 lists an invalid code and an invalid
// code_verifier, OAuth.TokenError400 an expired code and a redirect_uri
// mismatch.
func (s *Server) checkCode(c *codeGrant, found bool, p url.Values, clientID string) (status int, desc string) {
	switch {
	case !found:
		return http.StatusUnauthorized, "the authorization code is invalid or was already used"
	case s.cfg.Now().After(c.Expires):
		return http.StatusBadRequest, "the authorization code has expired"
	case c.ClientID != clientID:
		return http.StatusUnauthorized, "the authorization code was issued to another client"
	case p.Get("redirect_uri") != c.RedirectURI:
		return http.StatusBadRequest, "the redirect_uri does not match the authorization request"
	case c.Challenge != "" && !pkceMatches(p.Get("code_verifier"), c.Challenge):
		return http.StatusUnauthorized, "the code_verifier does not match the code_challenge"
	case c.Challenge == "" && p.Get("code_verifier") != "":
		return http.StatusUnauthorized, "a code_verifier was sent but the authorization request had no code_challenge"
	}
	return 0, ""
}

func pkceMatches(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	return subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(challenge)) == 1
}

// refreshGrant rotates the refresh token. An invalid, rotated or revoked one
// is 401 invalid_grant (FAPI OAuth.TokenError401: "Invalid or expired
// refresh token"; it used to be 400); a scope beyond the grant is refused
// without spending the token.
func (s *Server) refreshGrant(w http.ResponseWriter, p url.Values, clientID string) {
	if p.Get("refresh_token") == "" {
		writeOAuthError(w, http.StatusBadRequest, oautherr.InvalidRequest, "refresh_token is missing")
		return
	}
	now := s.cfg.Now()
	var scopes []string
	within := false
	s.mu.Lock()
	t, ok := s.st.refresh[p.Get("refresh_token")]
	valid := ok && t.active(now) && t.ClientID == clientID
	if valid {
		scopes, within = narrowScopes(t.Scopes, p.Get("scope"))
		t.Revoked = within // rotation: the presented token dies now
	}
	s.mu.Unlock()
	switch {
	case !valid:
		writeOAuthError(w, http.StatusUnauthorized, oautherr.InvalidGrant, "the refresh token is invalid, expired or revoked")
	case !within:
		writeOAuthError(w, http.StatusBadRequest, oautherr.InvalidScope, "the requested scope exceeds the original grant")
	default:
		u, _ := s.user(t.UserID)
		orgID := t.OrgID
		if !slices.Contains(scopes, scopeOrgRead) {
			orgID = "" // narrowed away
		}
		s.issue(w, u, orgID, clientID, scopes, t.GrantID, t.Nonce, t.Resource)
	}
}

// narrowScopes is the scope of a refreshed token: the grant's, or the
// requested subset of it (false when the request exceeds the grant).
func narrowScopes(granted []string, requested string) ([]string, bool) {
	want := strings.Fields(requested)
	if len(want) == 0 {
		return granted, true
	}
	return dedupe(want), hasAll(granted, want)
}

// issue answers a token response: access token (opaque or JWT), refresh
// token when offline_access was granted, ID token when openid was.
func (s *Server) issue(w http.ResponseWriter, u User, orgID, clientID string, scopes []string, grantID, nonce, resource string) {
	now := s.cfg.Now()
	rec := &tokenRecord{GrantID: grantID, UserID: u.ID, ClientID: clientID, Scopes: scopes, IssuedAt: now,
		Expires: now.Add(s.cfg.AccessTokenTTL), Resource: resource, Nonce: nonce, OrgID: orgID}
	jti := "oat_" + strings.ToUpper(randomAlnum(32)) // the store key: the opaque token or the JWT's jti
	rec.JWT = s.cfg.TokenFormat == "jwt"
	rec.ID = jti
	if !rec.JWT {
		// The Backend API id of an opaque token is not the token itself:
		// "oat_" + 32 hex (BAPI pattern, wire facts §6).
		rec.ID = "oat_" + randomHex(16)
	}
	access, err := s.accessToken(rec, jti)
	if err != nil {
		writeOAuthError(w, http.StatusInternalServerError, oautherr.ServerError, "signing failed")
		return
	}
	resp := map[string]any{"access_token": access, "token_type": "bearer", "expires_in": int64(s.cfg.AccessTokenTTL / time.Second),
		"scope": strings.Join(scopes, " ")}
	if slices.Contains(scopes, "openid") {
		idt, err := s.idToken(u, clientID, scopes, nonce, rec.OrgID, now)
		if err != nil {
			writeOAuthError(w, http.StatusInternalServerError, oautherr.ServerError, "signing failed")
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

// accessToken is the opaque jti itself, or an RS256 JWT (typ at+jwt) with
// the claims seen on a real instance: exp iat+TTL+1, nbf iat-10, no aud
// unless a resource was sent (wire facts §6).
func (s *Server) accessToken(rec *tokenRecord, jti string) (string, error) {
	if !rec.JWT {
		return jti, nil
	}
	claims := map[string]any{"client_id": rec.ClientID, "exp": rec.Expires.Unix() + 1, "iat": rec.IssuedAt.Unix(), "iss": s.cfg.Issuer,
		"jti": jti, "nbf": rec.IssuedAt.Unix() - 10, "scope": strings.Join(rec.Scopes, " "), "sub": rec.UserID}
	if rec.OrgID != "" {
		claims["org_id"] = rec.OrgID
	}
	if rec.Resource != "" {
		claims["aud"] = rec.Resource
	}
	return s.sign("at+jwt", catOAuthToken, claims)
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
	return s.sign("JWT", catOAuthToken, c)
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
	public, private, unsafe := u.metadata()
	if slices.Contains(scopes, "public_metadata") {
		c["public_metadata"], c["unsafe_metadata"] = public, unsafe
	}
	if slices.Contains(scopes, "private_metadata") {
		c["private_metadata"] = private
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
// (introspection and revocation) and returns its id.
func (s *Server) basicClient(w http.ResponseWriter, r *http.Request) (string, bool) {
	if _, _, ok := r.BasicAuth(); !ok {
		writeOAuthError(w, http.StatusUnauthorized, oautherr.InvalidClient, "Client authentication failed: HTTP Basic credentials are required.")
		return "", false
	}
	id, err := s.clientAuth(r, url.Values{}, true)
	if err != nil {
		writeOAuthError(w, http.StatusUnauthorized, oautherr.InvalidClient, err.Error())
		return "", false
	}
	return id, true
}

// namedToken is what introspection and revocation share: the authenticated
// caller, its form and the token it names (rec nil when unknown).
type namedToken struct {
	client string
	form   url.Values
	rec    *tokenRecord
}

// tokenRequest reads a POST from a Basic-authenticated client naming a
// token; ok is false when an error was written.
func (s *Server) tokenRequest(w http.ResponseWriter, r *http.Request) (namedToken, bool) {
	if r.Method != http.MethodPost {
		writeOAuthError(w, http.StatusMethodNotAllowed, oautherr.InvalidRequest, "use POST")
		return namedToken{}, false
	}
	client, ok := s.basicClient(w, r)
	if !ok {
		return namedToken{}, false
	}
	p, bad := params(r)
	if bad != "" || p.Get("token") == "" {
		writeOAuthError(w, http.StatusBadRequest, oautherr.InvalidRequest, nonEmpty(bad, "token is missing"))
		return namedToken{}, false
	}
	t, _ := s.lookup(p.Get("token"))
	return namedToken{client: client, form: p, rec: t}, true
}

// handleTokenInfo is §7: RFC 7662 with Clerk's minimal answer. The optional
// scope parameter is "the granted scopes for the token to check against"
// (FAPI): a token lacking one of them is inactive. Any authenticated client
// of the instance may introspect any token, a token of another client
// included, and the answer names that token's own client_id: that is what
// fosite's NewIntrospectionRequest does (it authenticates the caller, then
// introspects without comparing clients), and Clerk's AS is believed to be
// fosite (docs/clerk-wire-findings.md). So a resource server must check
// client_id itself.
func (s *Server) handleTokenInfo(w http.ResponseWriter, r *http.Request) {
	req, ok := s.tokenRequest(w, r)
	if !ok {
		return
	}
	t := req.rec
	s.mu.Lock()
	active := t != nil && t.active(s.cfg.Now())
	s.mu.Unlock()
	if !active || !hasAll(t.Scopes, strings.Fields(req.form.Get("scope"))) {
		writeJSON(w, http.StatusOK, map[string]any{"active": false})
		return
	}
	out := map[string]any{"active": true, "client_id": t.ClientID, "iat": t.IssuedAt.Unix(), "scope": strings.Join(t.Scopes, " "), "sub": t.UserID}
	if t.OrgID != "" {
		out["org_id"] = t.OrgID
	}
	writeJSON(w, http.StatusOK, out)
}

func hasAll(have, want []string) bool {
	for _, x := range want {
		if !slices.Contains(have, x) {
			return false
		}
	}
	return true
}

// handleRevoke is §8: RFC 7009 at /oauth/token/revoke. Revoking a refresh
// token also ends the access tokens of its grant. A token issued to another
// client is treated as unknown (200, nothing revoked), so one client cannot
// revoke another's tokens.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	req, ok := s.tokenRequest(w, r)
	if !ok {
		return
	}
	t := req.rec
	switch {
	case t == nil || t.ClientID != req.client:
	case t.JWT && !t.Expires.IsZero():
		writeOAuthError(w, http.StatusBadRequest, oautherr.UnsupportedTokenType, "JWT access tokens cannot be revoked")
		return
	default:
		s.revoke(t)
	}
	w.WriteHeader(http.StatusOK)
}

// revoke ends t and, for a refresh token, its grant's access tokens.
func (s *Server) revoke(t *tokenRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t.Revoked = true
	if !t.Expires.IsZero() {
		return
	}
	for _, a := range s.st.access {
		if a.GrantID == t.GrantID {
			a.Revoked = true
		}
	}
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
	// instance_id is the instance ID itself, "ins_" prefix included, which is
	// also the JWKS kid (wire facts §10).
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
