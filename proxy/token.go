package proxy

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/httpx"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/oautherr"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/seal"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/tokens"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
)

// tokenResponse is RFC 6749 §5.1.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
}

// clientHandler serves a client-authenticated endpoint once clientEndpoint
// has read its form and authenticated its client. It writes its own success
// answer and returns any error for clientEndpoint to write.
type clientHandler func(w http.ResponseWriter, r *http.Request, client store.Client, p params) *oauthError

// clientEndpoint is the one opening of the endpoints where a client
// authenticates (/token, /revoke, /introspect: RFC 6749 §2.3 and §3.2, RFC
// 7009 §2.1, RFC 7662 §2.1): it reads the form, authenticates the client,
// names it in the access log, and writes, logs and counts any error.
func (s *Server) clientEndpoint(endpoint string, h clientHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, oerr := readForm(w, r)
		var client store.Client
		if oerr == nil {
			client, oerr = s.authenticateClient(r, p)
		}
		if oerr == nil {
			httpx.SetClient(r.Context(), client.ID)
			oerr = h(w, r, client, p)
		}
		if oerr != nil {
			s.writeError(w, r, endpoint, oerr)
		}
	}
}

// token implements RFC 6749 §3.2 for the authorization_code (§4.1.3, with
// RFC 7636 §4.6) and refresh_token (§6) grants, and RFC 8693 token exchange
// when enabled (exchange.go).
func (s *Server) token(w http.ResponseWriter, r *http.Request, client store.Client, p params) *oauthError {
	grantType := p.get("grant_type")
	var resp tokenResponse
	var oerr *oauthError
	switch grantType {
	case "authorization_code":
		resp, oerr = s.codeGrant(r, client, p)
	case "refresh_token":
		if !slices.Contains(client.GrantTypes, "refresh_token") && len(client.GrantTypes) > 0 && !client.Metadata {
			return oautherr.New(http.StatusBadRequest, oautherr.UnauthorizedClient, "this client did not register the refresh_token grant")
		}
		resp, oerr = s.refreshGrant(r, client, p)
	case grantTypeTokenExchange:
		if len(s.cfg.Exchange.Clients) > 0 {
			return s.exchangeGrant(w, r, client, p) // RFC 8693: its own answer
		}
		return oautherr.New(http.StatusBadRequest, oautherr.UnsupportedGrantType, "token exchange is not enabled (TOKEN_EXCHANGE_CLIENTS)")
	case "":
		return errInvalidRequest("grant_type is required")
	default:
		return oautherr.New(http.StatusBadRequest, oautherr.UnsupportedGrantType, "only authorization_code and refresh_token are supported")
	}
	if oerr != nil {
		return oerr
	}
	if !client.Metadata && s.cfg.ClientIdleTTL > 0 {
		_ = s.store.TouchClient(r.Context(), client.ID, s.cfg.ClientIdleTTL)
	}
	s.metrics.TokensIssued.WithLabelValues(grantType).Inc()
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// authenticateClient implements RFC 6749 §2.3.1: HTTP Basic (form-urlencoded
// id and secret) or client_secret_post, exactly the method the client
// registered, and none for public clients. One method per request.
func (s *Server) authenticateClient(r *http.Request, p params) (store.Client, *oauthError) {
	basicID, basicSecret, hasBasic := r.BasicAuth()
	if hasBasic {
		var err1, err2 error
		basicID, err1 = url.QueryUnescape(basicID)
		basicSecret, err2 = url.QueryUnescape(basicSecret)
		if err1 != nil || err2 != nil || basicID == "" {
			return store.Client{}, errInvalidClient("malformed HTTP Basic credentials", true)
		}
	} else if r.Header.Get("Authorization") != "" && !strings.HasPrefix(strings.ToLower(r.Header.Get("Authorization")), "bearer ") {
		// The client tried header authentication (malformed Basic, Digest...):
		// RFC 6749 §5.2 wants a 401 with a WWW-Authenticate challenge, and
		// Basic is the scheme this server takes.
		return store.Client{}, errInvalidClient("unsupported or malformed Authorization header; use HTTP Basic or form parameters", true)
	}
	bodyID, bodySecret := p.get("client_id"), p.get("client_secret")
	if p.has("client_assertion") || p.has("client_assertion_type") {
		if hasBasic || p.has("client_secret") {
			return store.Client{}, errInvalidRequest("use one client authentication method, not both")
		}
		return s.authenticateAssertion(r, p)
	}
	if hasBasic && p.has("client_secret") {
		return store.Client{}, errInvalidRequest("use one client authentication method, not both")
	}
	if hasBasic && bodyID != "" && bodyID != basicID {
		return store.Client{}, errInvalidClient("client_id does not match the HTTP Basic credentials", true)
	}
	id := bodyID
	if hasBasic {
		id = basicID
	}
	if id == "" {
		return store.Client{}, errInvalidClient("client authentication is required (client_id)", false)
	}
	client, oerr := s.findClient(r, id, hasBasic)
	if oerr != nil {
		return client, oerr
	}
	switch client.TokenEndpointAuthMethod {
	case authNone:
		// Some clients (Cursor) send Basic with an empty secret for public
		// clients; that carries no credential and is accepted as none.
		if bodySecret != "" || basicSecret != "" {
			return client, errInvalidClient("this client is public (token_endpoint_auth_method none) and must not send a secret", hasBasic)
		}
	case authJWTKey:
		return client, errInvalidClient("this client must authenticate with private_key_jwt (client_assertion, RFC 7523)", hasBasic)
	case authBasic, authPost:
		secret, method := bodySecret, authPost
		if hasBasic {
			secret, method = basicSecret, authBasic
		}
		if method != client.TokenEndpointAuthMethod {
			return client, errInvalidClient("this client must authenticate with "+client.TokenEndpointAuthMethod, hasBasic)
		}
		if !seal.EqualHash(secret, client.SecretHash) {
			return client, errInvalidClient("client authentication failed", hasBasic)
		}
	default:
		return client, errInvalidClient("this client's authentication method is not supported at the token endpoint", hasBasic)
	}
	return client, nil
}

// findClient looks up the client a request authenticates as; basic says
// whether it tried HTTP Basic (for the challenge).
func (s *Server) findClient(r *http.Request, id string, basic bool) (store.Client, *oauthError) {
	client, err := s.lookupClient(r.Context(), id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, errCIMD) {
			// 401 invalid_client is the signal MCP clients use to register again.
			return client, errInvalidClient("unknown client; register again", basic)
		}
		s.storeError(r, "get_client", err)
		return client, errUnavailable("the authorization server is temporarily unavailable")
	}
	return client, nil
}

// codeGrant redeems an authorization code (RFC 6749 §4.1.3). The code is
// consumed atomically before anything else is checked: a code is good for one
// attempt only, and a replay revokes everything issued from it (RFC 6749
// §4.1.2, OIDF oidcc-codereuse).
func (s *Server) codeGrant(r *http.Request, client store.Client, p params) (tokenResponse, *oauthError) {
	code, verifier := p.get("code"), p.get("code_verifier")
	if code == "" {
		return tokenResponse{}, errInvalidRequest("code is required")
	}
	if verifier == "" {
		return tokenResponse{}, errInvalidRequest("code_verifier is required (PKCE)")
	}
	raw, err := s.store.ConsumeTicket(r.Context(), store.KindCode, seal.HashHex(code), codeTTL)
	// A record without its client or grant is the store's fault, not the
	// client's: there is no client id to compare with (it would read as
	// "issued to another client") and no grant to end.
	rec, outcome := readTicket(s, r, "consume_code", raw, err, func(c *codeRecord) bool { return c.GrantID != "" && c.ClientID != "" })
	switch outcome {
	case ticketSpent:
		s.metrics.ReuseDetections.WithLabelValues("authorization_code").Inc()
		s.audit(r, "authorization_code_reused", "client_id", client.ID, "grant_id", rec.GrantID)
		if rec.GrantID != "" {
			s.revokeGrant(r, rec.GrantID, "code_reuse")
		}
		return tokenResponse{}, errInvalidGrant("the authorization code was already used; tokens issued from it are revoked")
	case ticketUnknown:
		return tokenResponse{}, errInvalidGrant("the authorization code is invalid or expired")
	case ticketUnavailable:
		return tokenResponse{}, errUnavailable("the authorization server is temporarily unavailable")
	}
	// From here the code is spent: a failed check also ends its grant.
	fail := func(oe *oauthError) (tokenResponse, *oauthError) {
		s.revokeGrant(r, rec.GrantID, "failed_code_redemption")
		return tokenResponse{}, oe
	}
	if rec.ClientID != client.ID {
		return fail(errInvalidGrant("the authorization code was issued to another client"))
	}
	if (rec.RedirectExplicit || p.has("redirect_uri")) && p.get("redirect_uri") != rec.RedirectURI {
		return fail(errInvalidGrant("redirect_uri does not match the authorization request"))
	}
	if !verifyPKCE(verifier, rec.CodeChallenge) {
		return fail(errInvalidGrant("code_verifier does not match the code_challenge"))
	}
	if res := p.get("resource"); res != "" && !sameResource(res, rec.Resource) {
		return fail(errInvalidTarget("resource does not match the authorization request"))
	}
	refresh, err := tokens.NewRefreshToken(rec.GrantID, s.rand)
	if err != nil {
		return fail(errServer("could not issue tokens"))
	}
	g, err := s.store.UpdateGrant(r.Context(), rec.GrantID, s.cfg.RefreshTokenTTL, func(g *store.Grant) error {
		if g.Active || g.ClientID != client.ID {
			return errGrantState
		}
		g.Active = true
		g.ExpiresAt = s.now().Add(s.cfg.RefreshTokenTTL).UTC()
		g.Refresh = store.RefreshChain{Current: seal.Hash(refresh), RotatedAt: s.now().UTC(), Generation: 1}
		return nil
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, errGrantState) {
			return fail(errInvalidGrant("the authorization code is invalid or expired"))
		}
		s.storeError(r, "activate_grant", err)
		return fail(errUnavailable("the authorization server is temporarily unavailable"))
	}
	httpx.SetUser(r.Context(), g.UserID)
	resp, oe := s.tokenPair(g, g.Scopes, refresh)
	if oe == nil {
		s.audit(r, "tokens_issued", "grant_type", "authorization_code", "client_id", client.ID, "user_id", g.UserID)
	}
	return resp, oe
}

// errGrantState aborts a grant update whose preconditions no longer hold.
var errGrantState = errors.New("grant is not in the expected state")

// verifyPKCE implements RFC 7636 §4.6 for S256, in constant time.
func verifyPKCE(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	for i := 0; i < len(verifier); i++ {
		c := verifier[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	sum := sha256.Sum256([]byte(verifier))
	return seal.Equal([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(challenge))
}

// tokenPair mints an access token for g with scopes and returns the response.
func (s *Server) tokenPair(g store.Grant, scopes []string, refresh string) (tokenResponse, *oauthError) {
	now := s.now()
	jti, err := seal.Token(s.rand, 16)
	if err != nil {
		return tokenResponse{}, errServer("could not issue tokens")
	}
	scope := strings.Join(scopes, " ")
	at, err := s.keys.Sign(tokens.AccessClaims{
		Issuer: s.cfg.Issuer, Subject: g.UserID, Audience: s.grantResource(g), ClientID: g.ClientID,
		Scope: scope, ID: jti, GrantID: g.ID, RefreshGen: g.Refresh.Generation, IssuedAt: now.Unix(), NotBefore: now.Unix(),
		Expiry: now.Add(s.cfg.AccessTokenTTL).Unix(),
	})
	if err != nil {
		return tokenResponse{}, errServer("could not issue tokens")
	}
	return tokenResponse{AccessToken: at, TokenType: "Bearer", ExpiresIn: int64(s.cfg.AccessTokenTTL.Seconds()),
		RefreshToken: refresh, Scope: scope}, nil
}
