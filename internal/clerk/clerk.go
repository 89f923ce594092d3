// Package clerk is the proxy's client for Clerk, its upstream identity
// provider: discovery (go-oidc, falling back to Clerk's documented paths), the
// browser sign-in through ONE confidential OAuth application (x/oauth2 with
// client_secret_basic and PKCE), ID-token verification, RFC 7662
// introspection at /oauth/token_info, userinfo, revocation and the Backend
// API user lookups.
//
// Every call is timed and reported through Config.Observe so the operator
// sees Clerk's latency and failures, and errors are classified: Transient
// (network, 5xx, 429: try again, answer 503) versus permanent (Clerk said no).
package clerk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Endpoint names used in metrics and errors.
const (
	EPDiscovery  = "discovery"
	EPToken      = "token"
	EPIntrospect = "token_info"
	EPUserinfo   = "userinfo"
	EPRevoke     = "revoke"
	EPUsers      = "bapi_users"
)

// maxBody caps what is read from Clerk; its documents are small.
const maxBody = 1 << 20

// Config configures the client.
type Config struct {
	Issuer       string // Frontend API origin
	ClientID     string
	ClientSecret string
	SecretKey    string // optional sk_..., Backend API
	APIURL       string // Backend API base
	RedirectURL  string // BASE_URL/oauth/callback
	Scopes       []string
	HTTPClient   *http.Client // its Timeout bounds every call
	Logger       *slog.Logger
	// Observe, when set, receives every call's endpoint, outcome ("ok",
	// "error", "unavailable") and duration.
	Observe func(endpoint, outcome string, d time.Duration)
}

// Endpoints are Clerk's OAuth endpoints.
type Endpoints struct {
	Authorize, Token, Introspect, Userinfo, Revoke, JWKS string
}

// FallbackEndpoints are Clerk's documented paths under issuer.
func FallbackEndpoints(issuer string) Endpoints {
	return Endpoints{
		Authorize:  issuer + "/oauth/authorize",
		Token:      issuer + "/oauth/token",
		Introspect: issuer + "/oauth/token_info",
		Userinfo:   issuer + "/oauth/userinfo",
		Revoke:     issuer + "/oauth/token/revoke",
		JWKS:       issuer + "/.well-known/jwks.json",
	}
}

// Client talks to Clerk. It is safe for concurrent use.
type Client struct {
	cfg       Config
	ep        Endpoints
	discover  bool // true when the endpoints came from discovery
	oauth     *oauth2.Config
	verifier  *oidc.IDTokenVerifier
	keys      *oidc.RemoteKeySet // the instance's JWKS, cached by kid
	httpc     *http.Client
	log       *slog.Logger
	observe   func(string, string, time.Duration)
	discovery string
}

// New builds a client. It tries discovery once; when Clerk cannot be reached
// the documented paths are used so the proxy still starts (readiness reports
// Clerk as unreachable until it answers).
func New(ctx context.Context, cfg Config) *Client {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		cfg:       cfg,
		httpc:     cfg.HTTPClient,
		log:       cfg.Logger,
		observe:   cfg.Observe,
		discovery: cfg.Issuer + "/.well-known/openid-configuration",
	}
	if c.observe == nil {
		c.observe = func(string, string, time.Duration) {}
	}
	c.ep = FallbackEndpoints(cfg.Issuer)
	octx := oidc.ClientContext(ctx, c.httpc)
	start := time.Now()
	provider, err := oidc.NewProvider(octx, cfg.Issuer)
	if err == nil {
		c.observe(EPDiscovery, "ok", time.Since(start))
		var extra struct {
			Introspection string `json:"introspection_endpoint"`
			Revocation    string `json:"revocation_endpoint"`
			Userinfo      string `json:"userinfo_endpoint"`
			JWKS          string `json:"jwks_uri"`
		}
		_ = provider.Claims(&extra)
		ep := provider.Endpoint()
		c.ep.Authorize, c.ep.Token = ep.AuthURL, ep.TokenURL
		c.ep.Introspect = nonEmpty(extra.Introspection, c.ep.Introspect)
		c.ep.Revoke = nonEmpty(extra.Revocation, c.ep.Revoke)
		c.ep.Userinfo = nonEmpty(extra.Userinfo, c.ep.Userinfo)
		c.ep.JWKS = nonEmpty(extra.JWKS, c.ep.JWKS)
		c.discover = true
	} else {
		c.observe(EPDiscovery, "unavailable", time.Since(start))
		c.log.Warn("clerk discovery failed; using Clerk's documented endpoint paths", "issuer", cfg.Issuer, "err", err)
	}
	c.keys = oidc.NewRemoteKeySet(octx, c.ep.JWKS)
	c.verifier = oidc.NewVerifier(cfg.Issuer, c.keys, &oidc.Config{ClientID: cfg.ClientID, SupportedSigningAlgs: []string{oidc.RS256}})
	c.oauth = &oauth2.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		RedirectURL:  cfg.RedirectURL,
		Scopes:       cfg.Scopes,
		// client_secret_basic: advertised by every Clerk metadata variant.
		Endpoint: oauth2.Endpoint{AuthURL: c.ep.Authorize, TokenURL: c.ep.Token, AuthStyle: oauth2.AuthStyleInHeader},
	}
	return c
}

// Endpoints returns the endpoints in use.
func (c *Client) Endpoints() Endpoints { return c.ep }

// Discovered reports whether the endpoints came from Clerk's discovery document.
func (c *Client) Discovered() bool { return c.discover }

// AuthCodeURL is where the browser goes to sign in at Clerk, with the proxy's
// own state and PKCE verifier.
func (c *Client) AuthCodeURL(state, verifier, nonce string) string {
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if nonce != "" {
		opts = append(opts, oidc.Nonce(nonce))
	}
	return c.oauth.AuthCodeURL(state, opts...)
}

// TokenSet is what Clerk's token endpoint returned.
type TokenSet struct {
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	// ExpiresIn is Clerk's expires_in (seconds). Callers date the expiry on
	// their own clock with ExpiresAt, so an injected clock stays consistent.
	ExpiresIn int64  `json:"expires_in,omitempty"`
	Scope     string `json:"scope,omitempty"`
	IDToken   string `json:"id_token,omitempty"`
}

// IDClaims are the identity claims read from a verified ID token.
type IDClaims struct {
	Subject       string `json:"sub"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
	Name          string `json:"name"`
	Picture       string `json:"picture"`
	Nonce         string `json:"nonce"`
	OrgID         string `json:"org_id"`
}

// Exchange redeems Clerk's authorization code. When Clerk returned an ID
// token it is verified (issuer, audience, signature, expiry, nonce); if that
// fails, Clerk's tokens come back with the error so the caller can revoke
// them.
func (c *Client) Exchange(ctx context.Context, code, verifier, nonce string) (TokenSet, *IDClaims, error) {
	start := time.Now()
	tok, err := c.oauth.Exchange(oidc.ClientContext(ctx, c.httpc), code, oauth2.VerifierOption(verifier))
	c.done(EPToken, start, err)
	if err != nil {
		return TokenSet{}, nil, classifyOAuth(err)
	}
	ts := tokenSet(tok)
	if ts.IDToken == "" {
		return ts, nil, nil
	}
	idt, err := c.verifier.Verify(oidc.ClientContext(ctx, c.httpc), ts.IDToken)
	if err != nil {
		return ts, nil, fmt.Errorf("clerk: id token: %w", err)
	}
	var claims IDClaims
	if err := idt.Claims(&claims); err != nil {
		return ts, nil, fmt.Errorf("clerk: id token claims: %w", err)
	}
	if nonce != "" && claims.Nonce != nonce {
		return ts, nil, errors.New("clerk: id token nonce mismatch")
	}
	return ts, &claims, nil
}

// Refresh trades a Clerk refresh token for a new token set. Clerk may rotate
// the refresh token; when it returns none the old one stays.
func (c *Client) Refresh(ctx context.Context, refreshToken string) (TokenSet, error) {
	start := time.Now()
	src := c.oauth.TokenSource(oidc.ClientContext(ctx, c.httpc), &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Unix(1, 0)})
	tok, err := src.Token()
	c.done(EPToken, start, err)
	if err != nil {
		return TokenSet{}, classifyOAuth(err)
	}
	return tokenSet(tok), nil
}

func tokenSet(tok *oauth2.Token) TokenSet {
	ts := TokenSet{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, Expiry: tok.Expiry, ExpiresIn: tok.ExpiresIn}
	if s, ok := tok.Extra("scope").(string); ok {
		ts.Scope = s
	}
	if s, ok := tok.Extra("id_token").(string); ok {
		ts.IDToken = s
	}
	return ts
}

// ExpiresAt is when the access token expires, counted from now on the
// caller's clock when Clerk sent expires_in.
func (t TokenSet) ExpiresAt(now time.Time) time.Time {
	if t.ExpiresIn > 0 {
		return now.Add(time.Duration(t.ExpiresIn) * time.Second)
	}
	return t.Expiry
}

// Introspection is Clerk's RFC 7662 answer. Clerk's is minimal (active,
// client_id, iat, scope, sub, org_id); aud and exp are read when present.
type Introspection struct {
	Active   bool     `json:"active"`
	ClientID string   `json:"client_id"`
	Subject  string   `json:"sub"`
	Scope    string   `json:"scope"`
	IssuedAt int64    `json:"iat"`
	Expiry   int64    `json:"exp"`
	OrgID    string   `json:"org_id"`
	Audience audience `json:"aud"`
}

// Scopes splits Scope.
func (i Introspection) Scopes() []string { return strings.Fields(i.Scope) }

// Introspect asks Clerk whether an access token is active (POST
// /oauth/token_info with HTTP Basic client credentials).
func (c *Client) Introspect(ctx context.Context, token string) (Introspection, error) {
	var out Introspection
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	err := c.call(ctx, EPIntrospect, http.MethodPost, c.ep.Introspect, c.basic, form, &out)
	return out, err
}

// UserInfo is Clerk's /oauth/userinfo answer; fields depend on granted scopes.
type UserInfo struct {
	Subject           string         `json:"sub"`
	UserID            string         `json:"user_id"`
	Email             string         `json:"email"`
	EmailVerified     bool           `json:"email_verified"`
	Name              string         `json:"name"`
	GivenName         string         `json:"given_name"`
	FamilyName        string         `json:"family_name"`
	Picture           string         `json:"picture"`
	PreferredUsername string         `json:"preferred_username"`
	PublicMetadata    map[string]any `json:"public_metadata,omitempty"`
	OrgID             string         `json:"org_id"`
	OrgName           string         `json:"org_name"`
	OrgSlug           string         `json:"org_slug"`
}

// UserInfo fetches the signed-in user's claims with the Clerk access token.
func (c *Client) UserInfo(ctx context.Context, accessToken string) (UserInfo, error) {
	var out UserInfo
	auth := func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+accessToken) }
	err := c.call(ctx, EPUserinfo, http.MethodGet, c.ep.Userinfo, auth, nil, &out)
	return out, err
}

// Revoke revokes a Clerk token (RFC 7009 at /oauth/token/revoke). Clerk
// cannot revoke JWT access tokens (unsupported_token_type); that is not an
// error here since revoking the refresh token ends the session.
func (c *Client) Revoke(ctx context.Context, token, hint string) error {
	form := url.Values{"token": {token}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	err := c.call(ctx, EPRevoke, http.MethodPost, c.ep.Revoke, c.basic, form, nil)
	var ae *APIError
	if errors.As(err, &ae) && ae.Code == "unsupported_token_type" {
		return nil
	}
	return err
}

// HasBackendAPI reports whether a secret key was configured.
func (c *Client) HasBackendAPI() bool { return c.cfg.SecretKey != "" }

// User fetches GET /v1/users/{id} from the Backend API as raw JSON fields.
func (c *Client) User(ctx context.Context, userID string) (map[string]any, error) {
	var out map[string]any
	err := c.call(ctx, EPUsers, http.MethodGet, c.cfg.APIURL+"/v1/users/"+url.PathEscape(userID), c.bearerSecret, nil, &out)
	return out, err
}

// OrgMembership is one of a user's organization memberships.
type OrgMembership struct {
	Role         string   `json:"role"`
	Permissions  []string `json:"permissions"`
	Organization struct {
		ID   string `json:"id"`
		Name string `json:"name"`
		Slug string `json:"slug"`
	} `json:"organization"`
}

// OrgMemberships fetches GET /v1/users/{id}/organization_memberships.
func (c *Client) OrgMemberships(ctx context.Context, userID string) ([]OrgMembership, error) {
	var out struct {
		Data []OrgMembership `json:"data"`
	}
	err := c.call(ctx, EPUsers, http.MethodGet, c.cfg.APIURL+"/v1/users/"+url.PathEscape(userID)+"/organization_memberships", c.bearerSecret, nil, &out)
	return out.Data, err
}

// Ping fetches the discovery document: readiness of the upstream.
func (c *Client) Ping(ctx context.Context) error {
	return c.call(ctx, EPDiscovery, http.MethodGet, c.discovery, func(*http.Request) {}, nil, nil)
}

func (c *Client) basic(r *http.Request) {
	// RFC 6749 §2.3.1: the id and secret are form-urlencoded before Basic.
	r.SetBasicAuth(url.QueryEscape(c.cfg.ClientID), url.QueryEscape(c.cfg.ClientSecret))
}

func (c *Client) bearerSecret(r *http.Request) {
	r.Header.Set("Authorization", "Bearer "+c.cfg.SecretKey)
}

// APIError is a non-2xx answer from Clerk.
type APIError struct {
	Endpoint string
	Status   int
	Code     string // OAuth "error" or the first Clerk envelope code
}

func (e *APIError) Error() string {
	return fmt.Sprintf("clerk %s: HTTP %d %s", e.Endpoint, e.Status, e.Code)
}

// Transient reports whether the call may succeed if tried again.
func (e *APIError) Transient() bool { return e.Status >= 500 || e.Status == http.StatusTooManyRequests }

// ErrUnavailable wraps network failures and timeouts.
var ErrUnavailable = errors.New("clerk unavailable")

// IsTransient reports whether err means Clerk could not answer (as opposed to
// answering no).
func IsTransient(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Transient()
	}
	return errors.Is(err, ErrUnavailable)
}

// IsRejected reports whether Clerk answered with a permanent error (any
// non-transient status: invalid_grant, but also invalid_client,
// unauthorized_client, a 404, ...). SessionEnded is the narrower question of
// whether the user's session is over.
func IsRejected(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && !ae.Transient()
}

// SessionEnded reports whether Clerk refused a refresh because the session
// behind it is over (invalid_grant: revoked, expired, the user deleted). Any
// other refusal (invalid_client after a secret rotation, say) is the proxy's
// configuration, not the user's session, and must not end grants.
func SessionEnded(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && !ae.Transient() && ae.Code == "invalid_grant"
}

func (c *Client) call(ctx context.Context, endpoint, method, target string, auth func(*http.Request), form url.Values, out any) error {
	start := time.Now()
	err := c.do(ctx, endpoint, method, target, auth, form, out)
	c.done(endpoint, start, err)
	return err
}

// callBody POSTs a JSON body (the Backend API's calls).
func (c *Client) callBody(ctx context.Context, endpoint, target string, auth func(*http.Request), body []byte, out any) error {
	start := time.Now()
	err := c.send(ctx, endpoint, http.MethodPost, target, auth, strings.NewReader(string(body)), out)
	c.done(endpoint, start, err)
	return err
}

func (c *Client) do(ctx context.Context, endpoint, method, target string, auth func(*http.Request), form url.Values, out any) error {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	return c.send(ctx, endpoint, method, target, func(r *http.Request) {
		if form != nil {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		auth(r)
	}, body, out)
}

func (c *Client) send(ctx context.Context, endpoint, method, target string, auth func(*http.Request), body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return fmt.Errorf("clerk %s: %w", endpoint, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "clerk-mcp-proxy")
	auth(req)
	resp, err := c.httpc.Do(req)
	if err != nil {
		cause := "network error"
		var ue *url.Error
		if errors.As(err, &ue) && ue.Timeout() {
			cause = "timeout"
		}
		return fmt.Errorf("clerk %s: %w: %s", endpoint, ErrUnavailable, cause)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("clerk %s: %w: reading response", endpoint, ErrUnavailable)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &APIError{Endpoint: endpoint, Status: resp.StatusCode, Code: errorCode(raw)}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return &APIError{Endpoint: endpoint, Status: http.StatusBadGateway, Code: "malformed_response"}
	}
	return nil
}

// errorCode reads either an OAuth error body or Clerk's error envelope.
func errorCode(raw []byte) string {
	var body struct {
		Error  string `json:"error"`
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	if json.Unmarshal(raw, &body) != nil {
		return ""
	}
	if body.Error != "" {
		return body.Error
	}
	if len(body.Errors) > 0 {
		return body.Errors[0].Code
	}
	return ""
}

func (c *Client) done(endpoint string, start time.Time, err error) {
	outcome := "ok"
	switch {
	case err == nil:
	case IsTransient(err) || isOAuthTransient(err):
		outcome = "unavailable"
	default:
		outcome = "error"
	}
	c.observe(endpoint, outcome, time.Since(start))
}

// classifyOAuth turns x/oauth2 errors into APIError / ErrUnavailable.
func classifyOAuth(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := http.StatusBadGateway
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		return &APIError{Endpoint: EPToken, Status: status, Code: re.ErrorCode}
	}
	return fmt.Errorf("clerk token: %w", ErrUnavailable)
}

func isOAuthTransient(err error) bool {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.Response == nil || re.Response.StatusCode >= 500 || re.Response.StatusCode == http.StatusTooManyRequests
	}
	return true
}

func nonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// audience accepts aud as a string or an array.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*a = audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	*a = l
	return nil
}
