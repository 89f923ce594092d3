package proxy

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/clerkmcp/upstreamauth"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/httpx"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/oautherr"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/verifier"
)

// RFC 8693 token exchange: an upstream behind the gateway that needs the
// user's own Clerk access token (to call another API as the user) presents
// the identity assertion the gateway sent it as subject_token, authenticating
// as a confidential client the operator allowed (TOKEN_EXCHANGE_CLIENTS),
// and receives the user's live Clerk access token: refreshed if needed,
// only while the grant behind the assertion is alive, never a refresh token.
// The assertion is short-lived (60 s) and reused by the gateway for up to
// 30 s, so it is not single-use; each assertion (jti) may be exchanged at
// most maxExchangesPerAssertion times. Every exchange, granted or refused
// after client authentication, is audited.
const (
	grantTypeTokenExchange   = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeJWT             = "urn:ietf:params:oauth:token-type:jwt"
	tokenTypeAccessToken     = "urn:ietf:params:oauth:token-type:access_token"
	maxExchangesPerAssertion = 20
)

// ClerkTokens hands out a grant's live Clerk access token
// (verifier.Verifier.ClerkToken).
type ClerkTokens interface {
	ClerkToken(ctx context.Context, grantID, userID, clientID string) (string, time.Time, error)
}

// exchangeResponse is RFC 8693 §2.2.1.
type exchangeResponse struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in,omitempty"`
}

// exchangeGrant implements RFC 8693 §2.1 for one subject token type (the
// gateway's identity assertion, a JWT) and one issued type (Clerk's access
// token). It writes the answer itself.
func (s *Server) exchangeGrant(w http.ResponseWriter, r *http.Request, client store.Client, p params) *oauthError {
	// Only clients the operator named, and only confidential ones: the
	// answer is a credential for another API, so holding an assertion (which
	// every request to the upstream carries) is not enough.
	if !slices.Contains(s.cfg.Exchange.Clients, client.ID) || client.TokenEndpointAuthMethod == "none" {
		s.audit(r, "token_exchange_refused", "client_id", client.ID, "reason", "client_not_allowed")
		return oautherr.New(http.StatusBadRequest, oautherr.UnauthorizedClient, "this client may not use token exchange")
	}
	if p.has("actor_token") || p.has("actor_token_type") {
		return errInvalidRequest("delegation (actor_token) is not supported")
	}
	if t := p.get("requested_token_type"); t != "" && t != tokenTypeAccessToken {
		return errInvalidRequest("requested_token_type must be " + tokenTypeAccessToken)
	}
	// The issued token is Clerk's: a target, if named, must be Clerk.
	for _, k := range []string{"audience", "resource"} {
		if v := p.get(k); v != "" && !slices.Contains(s.cfg.Exchange.Targets, strings.TrimSuffix(v, "/")) {
			return errInvalidTarget("the issued token is Clerk's: " + k + " must be " + strings.Join(s.cfg.Exchange.Targets, " or "))
		}
	}
	if p.get("subject_token_type") != tokenTypeJWT {
		return errInvalidRequest("subject_token_type must be " + tokenTypeJWT + " (the X-Clerk-MCP-Assertion the gateway sent)")
	}
	c, oe := s.exchangeSubject(p.get("subject_token"))
	if oe != nil {
		s.audit(r, "token_exchange_refused", "client_id", client.ID, "reason", oe.Description)
		return oe
	}
	refuse := func(reason string, oe *oauthError) *oauthError {
		s.audit(r, "token_exchange_refused", "client_id", client.ID, "user_id", c.Subject, "grant_id", c.SessionID, "jti", c.ID, "reason", reason)
		return oe
	}
	n, _, err := s.store.Hit(r.Context(), "exchange:"+c.ID, time.Unix(c.Expiry, 0).Sub(s.now())+time.Minute)
	if err != nil {
		s.storeError(r, "exchange_replay", err)
		return errUnavailable("the authorization server is temporarily unavailable")
	}
	if n > maxExchangesPerAssertion {
		return refuse("assertion_exchanged_too_often", errInvalidRequest("this assertion was exchanged too often; use a newer one"))
	}
	token, expires, err := s.exchange.ClerkToken(r.Context(), c.SessionID, c.Subject, c.ClientID)
	switch {
	case errors.Is(err, verifier.ErrUnavailable):
		return errUnavailable("Clerk or the store cannot be reached; retry shortly")
	case err != nil:
		return refuse("grant_not_alive", errInvalidRequest("the user's sign-in behind this assertion has ended"))
	}
	httpx.SetUser(r.Context(), c.Subject)
	s.audit(r, "token_exchanged", "client_id", client.ID, "user_id", c.Subject, "grant_id", c.SessionID,
		"mcp_client_id", c.ClientID, "audience", c.Audience, "jti", c.ID)
	s.metrics.TokensIssued.WithLabelValues("token_exchange").Inc()
	resp := exchangeResponse{AccessToken: token, IssuedTokenType: tokenTypeAccessToken, TokenType: "Bearer"}
	if !expires.IsZero() {
		resp.ExpiresIn = max(int64(expires.Sub(s.now()).Seconds()), 1)
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// exchangeSubject verifies the subject token: an identity assertion this
// proxy signed, unexpired, for one of its upstreams, naming a grant.
func (s *Server) exchangeSubject(tok string) (upstreamauth.Claims, *oauthError) {
	var c upstreamauth.Claims
	if tok == "" {
		return c, errInvalidRequest("subject_token is required")
	}
	if err := s.keys.VerifyJWT(tok, upstreamauth.Type, &c); err != nil {
		return c, errInvalidRequest("subject_token is not an identity assertion of this server")
	}
	now := s.now().Unix()
	switch {
	case c.Issuer != s.cfg.Issuer:
		return c, errInvalidRequest("subject_token was issued by another server")
	case !slices.Contains(s.cfg.Exchange.Audiences, c.Audience):
		return c, errInvalidRequest("subject_token is not for an upstream of this gateway")
	case c.Expiry == 0 || now > c.Expiry+5 || c.NotBefore > now+5:
		return c, errInvalidRequest("subject_token has expired")
	case c.Subject == "" || c.SessionID == "" || c.ClientID == "" || c.ID == "":
		return c, errInvalidRequest("subject_token lacks sub, sid, client_id or jti")
	}
	return c, nil
}
