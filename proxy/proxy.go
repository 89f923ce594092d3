// Package proxy is clerk-mcp-proxy's OAuth 2.1 authorization server. MCP
// clients discover it (RFC 8414), register with it (RFC 7591), and run the
// authorization-code flow with PKCE S256 against it; it shows its own consent
// page, sends the browser to Clerk through one confidential Clerk OAuth
// application, keeps Clerk's tokens sealed in a grant, and issues its own
// tokens: a short-lived ES256 JWT access token bound to the MCP resource and
// a rotating opaque refresh token. It also serves revocation (RFC 7009) and
// introspection (RFC 7662) of its own tokens, and the pages for people: the
// connected apps (/account) and the operator console (/admin, beside the
// JSON operator API).
//
// One file per endpoint; each handler's doc comment names the RFC section it
// implements.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/clerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/httpx"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/metrics"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/seal"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/secevents"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/svix"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/tokens"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/vault"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
)

// Lifetimes fixed by the security design (not configurable on purpose).
const (
	transactionTTL = 15 * time.Minute // authorize -> consent decision
	upstreamTTL    = 10 * time.Minute // consent -> Clerk callback (RFC 9700 §4.7: short-lived state)
	codeTTL        = 5 * time.Minute  // proxy authorization code
	maxRetired     = 32               // refresh generations remembered for reuse detection
)

// Config is what the authorization server needs to know about itself.
type Config struct {
	Issuer   string // BASE_URL
	Resource string // BASE_URL/mcp, the default resource
	// Resources are the other protected resources this server issues
	// tokens for (gateway upstreams at their own paths, BASE_URL/<path>):
	// a client names one with RFC 8707's resource parameter and its tokens
	// carry it as their audience, so no other resource accepts them.
	Resources        []string
	Scopes           []string // every scope a client may request
	DefaultScopes    []string // granted when a request names none
	AccessTokenTTL   time.Duration
	RefreshTokenTTL  time.Duration
	RefreshGrace     time.Duration
	ClientIdleTTL    time.Duration
	AllowedRedirects []string // optional allowlist patterns
	SecureCookies    bool
	TrustedProxies   []*net.IPNet
	RateLimits       RateLimits
	CIMD             CIMDConfig
	// DCRDisabled closes RFC 7591 registration (DCR_ENABLED=false): only
	// clients registered before, and metadata-document clients the admission
	// policy admits, may connect ("pre-registered only").
	DCRDisabled bool
	ServiceName string // shown on pages
	// App, when App.URL is set, is AUTH_MODE=app (appmode.go).
	App AppConfig
	// AdminToken is the bearer token of the operator API (ADMIN_TOKEN);
	// empty: the API is not served.
	AdminToken string
	// WebhookSecret is CLERK_WEBHOOK_SECRET (whsec_…); empty: POST
	// /webhooks/clerk is not served.
	WebhookSecret string
	// AdminOrgID (ADMIN_ORG_ID) opens the operator console pages under
	// /admin to Clerk users holding AdminOrgRole (ADMIN_ORG_ROLE) in that
	// organisation; empty: the pages are not served.
	AdminOrgID, AdminOrgRole string
	// Exchange configures RFC 8693 token exchange (exchange.go); no
	// Clients: the grant type is not offered.
	Exchange ExchangeConfig
}

// ExchangeConfig says who may exchange which identity assertions.
type ExchangeConfig struct {
	// Clients are the client ids (confidential clients: the upstreams)
	// allowed to exchange (TOKEN_EXCHANGE_CLIENTS).
	Clients []string
	// Audiences are the upstream URLs whose assertions may be exchanged.
	Audiences []string
	// Targets are the values a request's audience or resource may name
	// (Clerk's issuer and API), without a trailing slash.
	Targets []string
}

// RateLimits are per-client-IP requests per minute (Register, Token,
// Authorize), and requests in progress at once (InFlight); 0 disables one.
type RateLimits struct{ Register, Token, Authorize, InFlight int }

// Clerk is the part of the Clerk client the authorization server uses.
type Clerk interface {
	AuthCodeURL(state, verifier, nonce string) string
	Exchange(ctx context.Context, code, verifier, nonce string) (clerk.TokenSet, *clerk.IDClaims, error)
	Revoke(ctx context.Context, token, hint string) error
	UserInfo(ctx context.Context, accessToken string) (clerk.UserInfo, error)
}

// GrantEvents is told when a grant ends so in-process caches drop it at once
// (other replicas notice within their short grant-cache TTL).
type GrantEvents interface {
	GrantRevoked(grantID string)
}

// Deps are the collaborators of the server.
type Deps struct {
	Store   store.Store
	Clerk   Clerk
	Keys    *tokens.KeySet
	Secret  []byte // PROXY_SECRET
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	Events  GrantEvents
	Now     func() time.Time
	Rand    io.Reader
	// HTTPClient fetches client metadata documents (CIMD); nil builds the
	// SSRF-guarded default.
	HTTPClient *http.Client
	// Sessions verifies the team app's Clerk sessions (app mode only).
	Sessions AppClerk
	// Exchange hands out grants' live Clerk tokens for RFC 8693 token
	// exchange (the verifier); required when Config.Exchange.Clients is set.
	Exchange ClerkTokens
	// Roles answers the operator console's access check (AdminOrgID).
	Roles OrgRoles
	// SecEvents, when set, keeps recent security events for the operator
	// console and GET /admin/api/events.
	SecEvents SecurityEvents
	// LastUsed, when set, tells when a grant was last used.
	LastUsed LastUsed
}

// OrgRoles looks up a Clerk user's role in an organisation ("" when not a
// member).
type OrgRoles interface {
	OrgRole(ctx context.Context, userID, orgID string) (string, error)
}

// SecurityEvents is the shared log of recent security events.
type SecurityEvents interface {
	Record(e secevents.Event)
	Recent(ctx context.Context, n int) ([]secevents.Event, error)
}

// LastUsed reads a grant's coarse last-use time (internal/lastused).
type LastUsed interface {
	LastUsed(ctx context.Context, grantID string) (time.Time, bool)
}

// Server is the authorization server.
type Server struct {
	cfg      Config
	store    store.Store
	clerk    Clerk
	keys     *tokens.KeySet
	vault    *vault.Vault
	pages    *pages
	cookies  *seal.Signer
	metrics  *metrics.Metrics
	log      *slog.Logger
	events   GrantEvents
	now      func() time.Time
	rand     io.Reader
	cimd     *cimdFetcher
	inFlight *httpx.InFlight
	sessions AppClerk
	exchange ClerkTokens
	// webhookSecret verifies Clerk webhooks; nil when they are off.
	webhookSecret *svix.Secret
	roles         OrgRoles
	secEvents     SecurityEvents
	lastUsed      LastUsed
}

// New builds the server.
func New(cfg Config, d Deps) (*Server, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Metrics == nil {
		d.Metrics = metrics.New()
	}
	for _, reason := range AssertionFailureReasons {
		// Pre-created at 0 so the first refusal shows in rate() (see metrics).
		d.Metrics.ClientAssertionFailures.WithLabelValues(reason)
	}
	if cfg.App.URL != "" && d.Sessions == nil {
		return nil, errors.New("proxy: app mode needs Deps.Sessions")
	}
	if cfg.AdminOrgID != "" && (d.Roles == nil || cfg.App.URL != "") {
		return nil, errors.New("proxy: the operator console (AdminOrgID) needs Deps.Roles and the Clerk OAuth application's sign-in (not app mode)")
	}
	if cfg.AdminOrgRole == "" {
		cfg.AdminOrgRole = "org:admin"
	}
	if len(cfg.DefaultScopes) == 0 {
		cfg.DefaultScopes = cfg.Scopes
	}
	if cfg.ServiceName == "" {
		cfg.ServiceName = "MCP server"
	}
	v, err := vault.New(d.Secret, d.Rand)
	if err != nil {
		return nil, err
	}
	pg, err := parsePages()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		store:    d.Store,
		clerk:    d.Clerk,
		keys:     d.Keys,
		vault:    v,
		pages:    pg,
		cookies:  seal.NewSigner(seal.DeriveKey(d.Secret, seal.PurposeCookie)),
		metrics:  d.Metrics,
		log:      d.Logger,
		events:   d.Events,
		now:      d.Now,
		rand:     d.Rand,
		inFlight: httpx.NewInFlight(cfg.RateLimits.InFlight),
		sessions: d.Sessions,
		roles:    d.Roles, secEvents: d.SecEvents, lastUsed: d.LastUsed,
		exchange: d.Exchange,
	}
	if len(cfg.Exchange.Clients) > 0 && d.Exchange == nil {
		return nil, errors.New("proxy: token exchange needs Deps.Exchange")
	}
	s.cimd = newCIMDFetcher(cfg.CIMD, d.Store, d.HTTPClient, d.Now, d.Logger)
	if cfg.WebhookSecret != "" {
		sec, err := svix.ParseSecret(cfg.WebhookSecret)
		if err != nil {
			return nil, fmt.Errorf("proxy: CLERK_WEBHOOK_SECRET: %w", err)
		}
		s.webhookSecret = &sec
	}
	return s, nil
}

// Mount registers the authorization server's routes.
func (s *Server) Mount(r chi.Router) {
	r.Get("/.well-known/oauth-authorization-server", s.handleMetadata)
	r.Get("/.well-known/openid-configuration", s.handleOpenIDConfiguration)
	r.Get("/.well-known/jwks.json", s.handleJWKS)
	r.Method(http.MethodGet, StylesheetPath, s.pages.css)
	// Preflight per document, not "/.well-known/*": a wildcard route would
	// turn a GET of an unknown document into 405 instead of 404.
	for _, doc := range []string{"oauth-authorization-server", "openid-configuration", "jwks.json"} {
		r.Options("/.well-known/"+doc, preflight)
	}

	r.Group(func(r chi.Router) {
		r.Use(s.limitInFlight)
		r.With(s.rateLimit("register", s.cfg.RateLimits.Register)).Post("/register", s.handleRegister)
		r.Get("/register/{client_id}", s.handleRegistrationRead)
		r.Delete("/register/{client_id}", s.handleRegistrationDelete)

		r.With(s.rateLimit("authorize", s.cfg.RateLimits.Authorize)).Get("/authorize", s.handleAuthorize)
		r.With(s.rateLimit("authorize", s.cfg.RateLimits.Authorize)).Post("/authorize", s.handleAuthorize)
		r.Get("/consent", s.handleConsentPage)
		r.Post("/consent", s.handleConsentDecision)
		if s.appMode() {
			r.Get(AppCallbackPath, s.handleAppCallback)
		} else {
			r.Get("/oauth/callback", s.handleCallback)
			// Connected apps: the user signs in with the Clerk OAuth
			// application, which app mode does not have. Each signed-out visit
			// stores an upstream state, as /authorize does: the same budget
			// bounds both.
			r.With(s.rateLimit("authorize", s.cfg.RateLimits.Authorize)).Get("/account", s.handleAccount)
			r.Post("/account/disconnect", s.handleAccountDisconnect)
			r.Post("/account/signout", s.handleAccountSignOut)
		}

		// /revoke and /introspect authenticate clients like /token, and so may
		// fetch a client metadata document for an https client_id (failures are
		// not cached): unthrottled, they would let anyone make this server send
		// unbounded requests to any public host. They share the token budget
		// (each with its own counter).
		r.With(s.rateLimit("token", s.cfg.RateLimits.Token)).Post("/token", withCORS(s.clientEndpoint("token", s.token)))
		r.With(s.rateLimit("revoke", s.cfg.RateLimits.Token)).Post("/revoke", withCORS(s.clientEndpoint("revoke", s.revoke)))
		r.With(s.rateLimit("introspect", s.cfg.RateLimits.Token)).Post("/introspect", s.clientEndpoint("introspect", s.introspect))
	})
	s.mountAdmin(r)
	s.mountWebhooks(r)
	r.Options("/register", preflight)
	r.Options("/token", preflight)
	r.Options("/revoke", preflight)
}

// preflight answers CORS preflight for the endpoints browser-based MCP
// clients call directly (discovery, registration, token).
func preflight(w http.ResponseWriter, r *http.Request) {
	allowCORS(w)
	w.Header().Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type, MCP-Protocol-Version")
	w.Header().Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
}

func allowCORS(w http.ResponseWriter) { w.Header().Set("Access-Control-Allow-Origin", "*") }

// withCORS lets browser-based clients read h's answers, errors included.
func withCORS(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		allowCORS(w)
		h(w, r)
	}
}

// hasScope reports whether s is a scope clients may request.
func (s *Server) hasScope(scope string) bool { return slices.Contains(s.cfg.Scopes, scope) }

// offeredScopes keeps the scopes of a space-separated list that this server
// offers, once each, in order; the others are dropped.
func (s *Server) offeredScopes(scope string) []string {
	var out []string
	for _, sc := range strings.Fields(scope) {
		if s.hasScope(sc) && !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out
}
