// Package config loads and validates clerk-mcp-proxy's configuration from the
// environment. Every problem is collected and reported at once, so an
// operator fixes a bad deployment in one round trip; secrets are never part of
// an error message or of the summary line.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/svix"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/mcpserver/gateway"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/mcpserver/toolpolicy"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store/redisstore"
)

// The authentication modes (AUTH_MODE).
const (
	// AuthProxy: the proxy is the authorization server in front of Clerk
	// (the default).
	AuthProxy = "proxy"
	// AuthClerk: Clerk is the authorization server; /mcp accepts
	// Clerk-issued access tokens and the proxy's OAuth endpoints are off.
	AuthClerk = "clerk"
	// AuthApp: the proxy is the authorization server, but users sign in
	// through the team's own web app's Clerk session (APP_URL).
	AuthApp = "app"
)

// Config is the effective configuration of the proxy.
type Config struct {
	// AuthMode is AUTH_MODE: AuthProxy or AuthClerk.
	AuthMode string
	// ClerkAllowedClients (CLERK_ALLOWED_CLIENT_IDS, clerk mode): the Clerk
	// OAuth client ids whose tokens /mcp accepts; empty accepts any client
	// of the Clerk instance.
	ClerkAllowedClients []string
	// AppURL (APP_URL, app mode): the team's web app, which serves
	// AppURL + "/auth/mcp" and calls back with clerk_token and state.
	AppURL string

	// Clerk, the upstream identity provider.
	ClerkIssuer       string   // Frontend API origin, e.g. https://your-app.clerk.accounts.dev
	ClerkClientID     string   // the one confidential Clerk OAuth application
	ClerkClientSecret string   //
	ClerkSecretKey    string   // optional sk_..., enables Backend API profile lookups
	ClerkAPIURL       string   // Backend API base, default https://api.clerk.com
	ClerkScopes       []string // scopes requested from Clerk at sign-in
	ClerkTimeout      time.Duration

	// The proxy itself.
	BaseURL    string // public origin; the issuer
	ListenAddr string
	// PprofAddr, when set, serves Go's runtime profiles (net/http/pprof)
	// on a listener of its own, never on ListenAddr (PPROF_ADDR).
	PprofAddr   string
	RedisURL    string
	RedisPrefix string
	// RedisWaitReplicas > 0: writes that must survive a Redis failover wait
	// for that many replicas (WAIT), at most RedisWaitTimeout each.
	RedisWaitReplicas int
	RedisWaitTimeout  time.Duration
	Secret            []byte // PROXY_SECRET, >= 32 bytes

	// Scopes offered to MCP clients.
	ScopesSupported []string            // baseline scopes (PRM, 401 challenge)
	ToolScopes      map[string][]string // extra scopes a tool needs (403 step-up)
	// Per-tool organisation rules and public tools (see ToolPolicy).
	ToolRoles       map[string][]string // TOOL_ROLES: the user's org role must be one of these
	ToolPermissions map[string][]string // TOOL_PERMISSIONS: org permissions the user must all hold
	PublicTools     []string            // PUBLIC_TOOLS: callable without a token

	// Gateway mode: /mcp forwards to an existing MCP server (see package
	// mcpserver/gateway) instead of serving the built-in tools.
	UpstreamURL         string        // UPSTREAM_MCP_URL; empty: built-in tools
	UpstreamTimeout     time.Duration // wait for the upstream's response headers
	UpstreamUserHeaders bool          // also send X-Forwarded-User / X-Forwarded-Email
	UpstreamClerkToken  bool          // also send the user's Clerk access token
	// MountedUpstreams are UPSTREAMS / UPSTREAMS_FILE as written; use
	// Upstreams() for them with their defaults.
	MountedUpstreams []Upstream
	// TokenExchangeClients (TOKEN_EXCHANGE_CLIENTS) are the confidential
	// clients (upstreams) allowed RFC 8693 token exchange at /token.
	TokenExchangeClients []string

	// Lifetimes.
	AccessTokenTTL   time.Duration
	RefreshTokenTTL  time.Duration
	RefreshGrace     time.Duration
	ClientIdleTTL    time.Duration
	IntrospectionTTL time.Duration
	UserinfoTTL      time.Duration
	// SessionIdleTTL (MCP_SESSION_IDLE_TTL) is how long a replica keeps an
	// idle MCP session's local state.
	SessionIdleTTL time.Duration

	// Hardening.
	AllowedRedirectURIs []string // optional patterns enforced at /register and /authorize
	AllowedOrigins      []string // Origin values accepted at /mcp besides BASE_URL's own
	TrustedProxies      []*net.IPNet
	RateLimitRegister   int // requests per minute per client IP; 0 disables
	RateLimitToken      int
	RateLimitAuthorize  int
	MaxInFlightPerIP    int // OAuth requests one client IP may have in progress at once; 0 disables
	CIMDEnabled         bool
	CIMDAllowed         []string // CIMD_ALLOWED_CLIENTS: only these client-id URLs or hosts
	CIMDDenied          []string // CIMD_DENIED_CLIENTS: never these
	DCREnabled          bool     // DCR_ENABLED=false: pre-registered clients only
	CIMDAllowLoopback   bool     // TEST ONLY: lets CIMD fetch from loopback/private hosts

	// Operator API and Clerk webhooks; each is off while its secret is unset.
	AdminToken    string // ADMIN_TOKEN: bearer token of /admin/api (>= 32 bytes)
	WebhookSecret string // CLERK_WEBHOOK_SECRET: the whsec_... secret of POST /webhooks/clerk
	// Operator console pages under /admin: Clerk users holding AdminOrgRole
	// in the organisation AdminOrgID; off while ADMIN_ORG_ID is unset.
	AdminOrgID   string // ADMIN_ORG_ID: org_...
	AdminOrgRole string // ADMIN_ORG_ROLE: default org:admin
	// The shared log of recent security events (/admin, GET /admin/api/events).
	SecurityEventsMax int           // SECURITY_EVENTS_MAX: entries kept
	SecurityEventsTTL time.Duration // SECURITY_EVENTS_TTL: the log expires this long after its last event

	// TryPage (TRY_PAGE) serves /try, an MCP client in the browser; on by
	// default in dev (unless it cannot work there), off in serve.
	TryPage bool

	// Operations.
	LogLevel        string // debug|info|warn|error
	LogFormat       string // json|text
	ShutdownTimeout time.Duration

	// Connection limits: how long a client may take to send its request.
	HeaderReadTimeout time.Duration // request line and headers
	BodyIdleTimeout   time.Duration // longest gap while a body is arriving
	BodyReadTimeout   time.Duration // a whole body
	IdleTimeout       time.Duration // a kept-alive connection between requests
}

// Issuer is the proxy's issuer identifier (RFC 8414): BASE_URL exactly.
func (c Config) Issuer() string { return c.BaseURL }

// Resource is the canonical URI of the protected MCP endpoint (RFC 8707, RFC 9728).
func (c Config) Resource() string { return c.BaseURL + "/mcp" }

// CallbackURL is the redirect URI the Clerk OAuth application must allow.
func (c Config) CallbackURL() string { return c.BaseURL + "/oauth/callback" }

// Secure reports whether the proxy is served over https (cookie attributes).
func (c Config) Secure() bool { return strings.HasPrefix(c.BaseURL, "https://") }

// AllScopes is every scope a client may request: the baseline plus tool
// scopes, and those of every upstream at its own path (one authorization
// server issues the tokens of every resource).
func (c Config) AllScopes() []string {
	all := slices.Clone(c.ScopesSupported)
	add := func(scopes ...string) {
		for _, s := range scopes {
			if !slices.Contains(all, s) {
				all = append(all, s)
			}
		}
	}
	toolScopes := []map[string][]string{c.ToolScopes}
	for _, u := range c.MountedUpstreams {
		add(u.Scopes...)
		toolScopes = append(toolScopes, u.ToolScopes)
	}
	for _, ts := range toolScopes {
		for _, tool := range sortedKeys(ts) {
			add(ts[tool]...)
		}
	}
	return all
}

// UpstreamURLs are the URLs of every upstream the gateway fronts: the
// audiences of its identity assertions.
func (c Config) UpstreamURLs() []string {
	var out []string
	if c.UpstreamURL != "" {
		out = append(out, c.UpstreamURL)
	}
	for _, u := range c.MountedUpstreams {
		out = append(out, u.URL)
	}
	return out
}

// Resources are the protected resources besides Resource(): the upstreams
// mounted at their own paths.
func (c Config) Resources() []string {
	var out []string
	for _, u := range c.MountedUpstreams {
		out = append(out, c.UpstreamResource(u.Path))
	}
	return out
}

// ClerkModeRequiredScopes are what a Clerk access token presented at /mcp
// in clerk mode must carry: the baseline scopes, offline_access aside.
func (c Config) ClerkModeRequiredScopes() []string { return withoutOfflineAccess(c.ScopesSupported) }

// withoutOfflineAccess drops offline_access, which asks for a refresh token
// and which Clerk may leave out of an access token's scope.
func withoutOfflineAccess(scopes []string) []string {
	var out []string
	for _, s := range scopes {
		if s != "offline_access" {
			out = append(out, s)
		}
	}
	return out
}

// ClerkRequiredScopes are the scopes a Clerk access token must carry to be
// accepted: what the proxy asked for, minus offline_access (which Clerk may
// leave out of an access token's scope).
func (c Config) ClerkRequiredScopes() []string { return withoutOfflineAccess(c.ClerkScopes) }

// Getenv reads one variable; os.Getenv satisfies it.
type Getenv func(string) string

// Defaults used when a variable is unset.
const (
	DefaultClerkAPIURL = "https://api.clerk.com"
	DefaultListenAddr  = ":8080"
	DefaultClerkScopes = "openid profile email offline_access"
	DefaultScopes      = "openid profile email"
	// DefaultClerkModeScopes is the baseline in clerk mode: the scopes
	// Clerk gives DCR clients, offline_access aside.
	DefaultClerkModeScopes = "profile email"
	DefaultRedisPrefix     = "cmp:"
)

// Problems is every configuration problem found, reported together.
type Problems []string

func (p Problems) Error() string {
	return "invalid configuration:\n  - " + strings.Join(p, "\n  - ")
}

// Mode says which required variables apply.
type Mode int

const (
	// ModeServe needs Clerk credentials, BASE_URL, REDIS_URL and PROXY_SECRET.
	ModeServe Mode = iota
	// ModeDev fills Clerk and the secret in itself; nothing is required.
	ModeDev
)

// Load reads the configuration. In ModeDev only the optional variables are read
// (the dev command supplies the rest itself). The error, if any, is Problems.
func Load(getenv Getenv, mode Mode) (Config, error) {
	l := loader{getenv: getenv}
	authMode := strings.ToLower(l.str("AUTH_MODE", AuthProxy))
	// In clerk mode the scopes are Clerk's own: a client registered at
	// Clerk by DCR gets "email offline_access profile" and is refused
	// openid, so the default baseline leaves openid out.
	defaultScopes := DefaultScopes
	if authMode == AuthClerk {
		defaultScopes = DefaultClerkModeScopes
	}
	c := Config{
		AuthMode:             authMode,
		AppURL:               strings.TrimSuffix(l.str("APP_URL", ""), "/"),
		ClerkAllowedClients:  l.list("CLERK_ALLOWED_CLIENT_IDS"),
		ClerkAPIURL:          l.str("CLERK_API_URL", DefaultClerkAPIURL),
		ClerkSecretKey:       l.str("CLERK_SECRET_KEY", ""),
		ClerkScopes:          l.fields("CLERK_SCOPES", DefaultClerkScopes),
		ClerkTimeout:         l.duration("CLERK_TIMEOUT", 10*time.Second),
		ListenAddr:           l.str("LISTEN_ADDR", DefaultListenAddr),
		PprofAddr:            l.str("PPROF_ADDR", ""),
		RedisPrefix:          l.str("REDIS_PREFIX", DefaultRedisPrefix),
		RedisWaitReplicas:    l.integer("REDIS_WAIT_REPLICAS", 0),
		RedisWaitTimeout:     l.duration("REDIS_WAIT_TIMEOUT", 100*time.Millisecond),
		ScopesSupported:      l.fields("SCOPES_SUPPORTED", defaultScopes),
		ToolScopes:           l.toolScopes("TOOL_SCOPES"),
		ToolRoles:            l.toolScopes("TOOL_ROLES"),
		ToolPermissions:      l.toolScopes("TOOL_PERMISSIONS"),
		PublicTools:          l.list("PUBLIC_TOOLS"),
		UpstreamURL:          l.str("UPSTREAM_MCP_URL", ""),
		UpstreamTimeout:      l.duration("UPSTREAM_TIMEOUT", 30*time.Second),
		UpstreamUserHeaders:  l.boolean("UPSTREAM_FORWARD_USER_HEADERS", false),
		UpstreamClerkToken:   l.boolean("UPSTREAM_FORWARD_CLERK_TOKEN", false),
		MountedUpstreams:     l.upstreams(),
		TokenExchangeClients: l.list("TOKEN_EXCHANGE_CLIENTS"),
		AccessTokenTTL:       l.duration("ACCESS_TOKEN_TTL", time.Hour),
		RefreshTokenTTL:      l.duration("REFRESH_TOKEN_TTL", 30*24*time.Hour),
		RefreshGrace:         l.duration("REFRESH_GRACE", 60*time.Second),
		ClientIdleTTL:        l.duration("CLIENT_IDLE_TTL", 90*24*time.Hour),
		IntrospectionTTL:     l.duration("INTROSPECTION_CACHE_TTL", 60*time.Second),
		UserinfoTTL:          l.duration("USERINFO_CACHE_TTL", 5*time.Minute),
		SessionIdleTTL:       l.duration("MCP_SESSION_IDLE_TTL", 5*time.Minute),
		AllowedRedirectURIs:  l.list("ALLOWED_REDIRECT_URIS"),
		AllowedOrigins:       l.list("ALLOWED_ORIGINS"),
		TrustedProxies:       l.cidrs("TRUSTED_PROXIES"),
		RateLimitRegister:    l.integer("RATE_LIMIT_REGISTER", 20),
		RateLimitToken:       l.integer("RATE_LIMIT_TOKEN", 120),
		RateLimitAuthorize:   l.integer("RATE_LIMIT_AUTHORIZE", 60),
		MaxInFlightPerIP:     l.integer("MAX_INFLIGHT_PER_IP", 32),
		CIMDEnabled:          l.boolean("CIMD_ENABLED", true),
		CIMDAllowed:          l.list("CIMD_ALLOWED_CLIENTS"),
		CIMDDenied:           l.list("CIMD_DENIED_CLIENTS"),
		DCREnabled:           l.boolean("DCR_ENABLED", true),
		CIMDAllowLoopback:    l.boolean("CIMD_ALLOW_LOOPBACK_FOR_TESTS", false),
		AdminToken:           l.str("ADMIN_TOKEN", ""),
		WebhookSecret:        l.str("CLERK_WEBHOOK_SECRET", ""),
		AdminOrgID:           l.str("ADMIN_ORG_ID", ""),
		AdminOrgRole:         l.str("ADMIN_ORG_ROLE", "org:admin"),
		SecurityEventsMax:    l.integer("SECURITY_EVENTS_MAX", 1000),
		SecurityEventsTTL:    l.duration("SECURITY_EVENTS_TTL", 7*24*time.Hour),
		LogLevel:             strings.ToLower(l.str("LOG_LEVEL", "info")),
		LogFormat:            strings.ToLower(l.str("LOG_FORMAT", "")),
		ShutdownTimeout:      l.duration("SHUTDOWN_TIMEOUT", 20*time.Second),
		HeaderReadTimeout:    l.duration("HEADER_READ_TIMEOUT", 10*time.Second),
		BodyIdleTimeout:      l.duration("BODY_IDLE_TIMEOUT", 10*time.Second),
		BodyReadTimeout:      l.duration("BODY_READ_TIMEOUT", 60*time.Second),
		IdleTimeout:          l.duration("IDLE_TIMEOUT", 120*time.Second),
	}
	// The page registers by DCR at this server: where there is no such
	// registration (clerk mode, DCR off) dev leaves it off rather than fail.
	c.TryPage = l.boolean("TRY_PAGE", mode == ModeDev && c.AuthMode != AuthClerk && c.DCREnabled)
	if mode == ModeServe {
		c.ClerkIssuer = l.clerkDomain(l.required("CLERK_DOMAIN"))
		if c.AuthMode == AuthClerk || c.AuthMode == AuthApp {
			// Either credential verifies Clerk's tokens (Validate
			// checks that one is there).
			c.ClerkClientID = l.str("CLERK_CLIENT_ID", "")
			c.ClerkClientSecret = l.str("CLERK_CLIENT_SECRET", "")
		} else {
			c.ClerkClientID = l.required("CLERK_CLIENT_ID")
			c.ClerkClientSecret = l.required("CLERK_CLIENT_SECRET")
		}
		c.BaseURL = l.origin("BASE_URL", l.required("BASE_URL"))
		c.RedisURL = l.required("REDIS_URL")
		c.Secret = []byte(l.required("PROXY_SECRET"))
	} else {
		c.BaseURL = l.origin("BASE_URL", l.str("BASE_URL", ""))
		c.Secret = []byte(l.str("PROXY_SECRET", ""))
	}
	l.problems = append(l.problems, c.Validate()...)
	if len(l.problems) > 0 {
		return c, l.problems
	}
	return c, nil
}

// RedisOptions are the options of the Redis store this configuration names
// (URL, prefix, the WAIT rule).
func (c Config) RedisOptions() redisstore.Options {
	return redisstore.Options{URL: c.RedisURL, Prefix: c.RedisPrefix, WaitReplicas: c.RedisWaitReplicas, WaitTimeout: c.RedisWaitTimeout}
}

// Validate checks the relations between fields; Load calls it, and the dev
// command calls it again after filling in what it generates.
func (c Config) Validate() Problems {
	var p Problems
	check := func(bad bool, msg string) {
		if bad {
			p = append(p, msg)
		}
	}
	switch c.AuthMode {
	case AuthProxy:
	case AuthClerk:
		check((c.ClerkClientID == "") != (c.ClerkClientSecret == ""), "AUTH_MODE=clerk: CLERK_CLIENT_ID and CLERK_CLIENT_SECRET go together")
		check(c.ClerkIssuer != "" && c.ClerkClientID == "" && c.ClerkSecretKey == "",
			"AUTH_MODE=clerk needs a way to verify Clerk's tokens: CLERK_CLIENT_ID and CLERK_CLIENT_SECRET (introspection at /oauth/token_info) or CLERK_SECRET_KEY (the Backend API verify call)")
	case AuthApp:
		check(c.ClerkIssuer != "" && c.AppURL == "", "AUTH_MODE=app needs APP_URL, the web app that serves /auth/mcp")
		check(c.AppURL != "" && !validAppURL(c.AppURL), fmt.Sprintf("APP_URL %q must be an absolute http(s) URL without query, fragment or userinfo", c.AppURL))
		check(c.ClerkIssuer != "" && c.ClerkSecretKey == "", "AUTH_MODE=app needs CLERK_SECRET_KEY: the Backend API is the source of truth for the app's Clerk sessions")
	default:
		p = append(p, fmt.Sprintf("AUTH_MODE must be proxy, clerk or app (got %q)", c.AuthMode))
	}
	check(c.AuthMode != AuthApp && c.AppURL != "", "APP_URL is set but only applies with AUTH_MODE=app")
	check(c.TryPage && c.AuthMode == AuthClerk, "TRY_PAGE does not apply with AUTH_MODE=clerk: the page signs in at this server's own /authorize and /token, which clerk mode does not serve")
	check(c.TryPage && !c.DCREnabled, "TRY_PAGE needs DCR_ENABLED=true: the page registers itself by Dynamic Client Registration")
	check(len(c.Secret) > 0 && len(c.Secret) < 32, fmt.Sprintf("PROXY_SECRET must be at least 32 bytes (got %d)", len(c.Secret)))
	if c.RedisURL != "" {
		// The Redis client's own parser, so what passes here is what it can
		// use; its errors never echo the URL (it may hold a password).
		if err := redisstore.CheckURL(c.RedisURL); err != nil {
			p = append(p, "REDIS_URL: "+err.Error())
		}
	}
	if err := redisstore.CheckWait(c.RedisWaitReplicas, c.RedisWaitTimeout); err != nil {
		p = append(p, "REDIS_WAIT_REPLICAS/REDIS_WAIT_TIMEOUT: "+strings.TrimPrefix(err.Error(), "redisstore: "))
	}
	check(c.ClerkSecretKey != "" && !strings.HasPrefix(c.ClerkSecretKey, "sk_"), "CLERK_SECRET_KEY must start with sk_")
	check(c.AdminToken != "" && len(c.AdminToken) < 32, fmt.Sprintf("ADMIN_TOKEN must be at least 32 bytes (got %d)", len(c.AdminToken)))
	if c.WebhookSecret != "" {
		if _, err := svix.ParseSecret(c.WebhookSecret); err != nil {
			p = append(p, "CLERK_WEBHOOK_SECRET: "+err.Error())
		}
	}
	if c.AdminOrgID != "" {
		check(!strings.HasPrefix(c.AdminOrgID, "org_"), "ADMIN_ORG_ID must be a Clerk organization id (org_...)")
		check(c.AuthMode != AuthProxy, "ADMIN_ORG_ID (the /admin pages) needs AUTH_MODE=proxy: operators sign in through the Clerk OAuth application")
		check(c.ClerkIssuer != "" && c.ClerkSecretKey == "", "ADMIN_ORG_ID needs CLERK_SECRET_KEY: operators' organization roles come from Clerk's Backend API")
		check(strings.TrimSpace(c.AdminOrgRole) == "", "ADMIN_ORG_ROLE must name a role (e.g. org:admin)")
	}
	check(c.SecurityEventsMax < 1 || c.SecurityEventsMax > 100_000, "SECURITY_EVENTS_MAX must be between 1 and 100000")
	check(c.SecurityEventsTTL < time.Minute, "SECURITY_EVENTS_TTL must be at least 1m")
	check(c.ClerkAPIURL != "" && !isHTTPURL(c.ClerkAPIURL), "CLERK_API_URL must be an http(s) URL")
	check(len(c.ScopesSupported) == 0, "SCOPES_SUPPORTED must name at least one scope")
	check(len(c.ClerkScopes) == 0, "CLERK_SCOPES must name at least one scope")
	check(c.AccessTokenTTL < 10*time.Second || c.AccessTokenTTL > 24*time.Hour, "ACCESS_TOKEN_TTL must be between 10s and 24h")
	check(c.RefreshTokenTTL < c.AccessTokenTTL, "REFRESH_TOKEN_TTL must not be shorter than ACCESS_TOKEN_TTL")
	check(c.RefreshGrace < 0 || c.RefreshGrace > 10*time.Minute, "REFRESH_GRACE must be between 0 and 10m")
	check(c.IntrospectionTTL < 0, "INTROSPECTION_CACHE_TTL must not be negative")
	check(c.UserinfoTTL < 0, "USERINFO_CACHE_TTL must not be negative")
	check(c.ClientIdleTTL < 0, "CLIENT_IDLE_TTL must not be negative")
	check(c.SessionIdleTTL < time.Minute || c.SessionIdleTTL > 24*time.Hour, "MCP_SESSION_IDLE_TTL must be between 1m and 24h")
	check(c.ClerkTimeout <= 0, "CLERK_TIMEOUT must be positive")
	check(c.ShutdownTimeout <= 0, "SHUTDOWN_TIMEOUT must be positive")
	if c.UpstreamURL != "" {
		// Loopback and private upstreams are allowed: an MCP server on the
		// same host or network, unreachable from outside, is the normal
		// deployment, and the URL comes from the operator, not a request.
		if _, err := gateway.ParseUpstream(c.UpstreamURL); err != nil {
			p = append(p, "UPSTREAM_MCP_URL: "+err.Error())
		}
	}
	// Every gateway request needs a signed-in user (the upstream is told who
	// calls); tools callable without one are not supported there yet.
	check(c.UpstreamURL != "" && len(c.PublicTools) > 0, "PUBLIC_TOOLS is not supported with UPSTREAM_MCP_URL (gateway mode): every gateway request needs a signed-in user")
	check(c.UpstreamTimeout <= 0 || c.UpstreamTimeout > time.Hour, "UPSTREAM_TIMEOUT must be positive and at most 1h")
	// Clerk issues the tokens in clerk mode and cannot bind one to one of
	// several resources of ours, so tokens for one upstream would open all.
	check(c.AuthMode == AuthClerk && len(c.MountedUpstreams) > 0, "UPSTREAMS/UPSTREAMS_FILE need AUTH_MODE=proxy or app: in clerk mode Clerk issues the tokens and cannot give each upstream its own audience")
	check(c.UpstreamURL == "" && (c.UpstreamUserHeaders || c.UpstreamClerkToken), "UPSTREAM_FORWARD_USER_HEADERS and UPSTREAM_FORWARD_CLERK_TOKEN need UPSTREAM_MCP_URL")
	if len(c.TokenExchangeClients) > 0 {
		check(c.AuthMode == AuthClerk, "TOKEN_EXCHANGE_CLIENTS needs AUTH_MODE=proxy: in clerk mode the clients hold Clerk's tokens already")
		check(len(c.UpstreamURLs()) == 0, "TOKEN_EXCHANGE_CLIENTS needs an upstream (UPSTREAM_MCP_URL or UPSTREAMS): only the gateway's identity assertions can be exchanged")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"HEADER_READ_TIMEOUT", c.HeaderReadTimeout}, {"BODY_IDLE_TIMEOUT", c.BodyIdleTimeout}, {"BODY_READ_TIMEOUT", c.BodyReadTimeout}, {"IDLE_TIMEOUT", c.IdleTimeout}} {
		// Zero would mean "wait for ever", the hole these settings close.
		check(d.v <= 0 || d.v > time.Hour, d.name+" must be positive and at most 1h")
	}
	check(c.BodyReadTimeout > 0 && c.BodyIdleTimeout > c.BodyReadTimeout, "BODY_IDLE_TIMEOUT must not be longer than BODY_READ_TIMEOUT")
	if c.PprofAddr != "" {
		_, _, err := net.SplitHostPort(c.PprofAddr)
		check(err != nil || c.PprofAddr == c.ListenAddr, "PPROF_ADDR must be a host:port listen address other than LISTEN_ADDR")
	}
	check(!slices.Contains([]string{"debug", "info", "warn", "error"}, c.LogLevel), "LOG_LEVEL must be debug, info, warn or error")
	check(!slices.Contains([]string{"", "json", "text"}, c.LogFormat), "LOG_FORMAT must be json or text")
	for _, s := range append(slices.Clone(c.ScopesSupported), c.ClerkScopes...) {
		check(!validScopeToken(s), fmt.Sprintf("scope %q has characters RFC 6749 §3.3 does not allow", s))
	}
	for tool, scopes := range c.ToolScopes {
		for _, s := range scopes {
			check(!validScopeToken(s), fmt.Sprintf("TOOL_SCOPES: scope %q of tool %q is not a valid scope token", s, tool))
		}
	}
	for tool, perms := range c.ToolPermissions {
		for _, s := range perms {
			check(!strings.HasPrefix(s, "org:"), fmt.Sprintf("TOOL_PERMISSIONS: %q of tool %q is not a Clerk permission key (org:...)", s, tool))
		}
	}
	for tool, roles := range c.ToolRoles {
		for _, s := range roles {
			check(!strings.HasPrefix(s, "org:"), fmt.Sprintf("TOOL_ROLES: %q of tool %q is not a Clerk role key (org:...)", s, tool))
		}
	}
	for _, p := range append(slices.Clone(c.CIMDAllowed), c.CIMDDenied...) {
		bad := strings.ContainsAny(p, " /") && !strings.HasPrefix(p, "https://")
		check(bad, fmt.Sprintf("CIMD_ALLOWED_CLIENTS/CIMD_DENIED_CLIENTS: %q is neither a host (chatgpt.com, *.example.com) nor an https URL pattern", p))
	}
	for _, o := range c.AllowedOrigins {
		check(!isHTTPURL(o), fmt.Sprintf("ALLOWED_ORIGINS: %q is not an http(s) origin", o))
	}
	for _, pat := range c.AllowedRedirectURIs {
		_, err := url.Parse(strings.ReplaceAll(pat, "*", "x"))
		check(err != nil, fmt.Sprintf("ALLOWED_REDIRECT_URIS: %q is not a URI pattern", pat))
	}
	return p
}

// Warnings are legal but risky settings, logged at start-up.
func (c Config) Warnings() []string {
	var w []string
	if !slices.Contains(c.ClerkScopes, "offline_access") {
		w = append(w, "CLERK_SCOPES lacks offline_access: Clerk may issue no refresh token, so sessions end when Clerk's access token expires")
	}
	if c.UpstreamURL != "" && c.UpstreamUserHeaders {
		w = append(w, "UPSTREAM_FORWARD_USER_HEADERS is on: the upstream gets the user in plain headers anyone on its network could forge. Use it only when nothing but the gateway can reach the upstream; prefer verifying X-Clerk-MCP-Assertion")
	}
	if c.UpstreamURL != "" && c.UpstreamClerkToken && strings.HasPrefix(c.UpstreamURL, "http://") && !isLoopbackURL(c.UpstreamURL) {
		w = append(w, "UPSTREAM_FORWARD_CLERK_TOKEN is on with a plain-http upstream that is not on loopback: users' Clerk tokens cross the network unencrypted")
	}
	for _, u := range c.MountedUpstreams {
		if u.ForwardUserHeaders {
			w = append(w, "UPSTREAMS "+u.Path+": forward_user_headers is on: the upstream gets the user in plain headers anyone on its network could forge; prefer verifying X-Clerk-MCP-Assertion")
		}
		if u.ForwardClerkToken && strings.HasPrefix(u.URL, "http://") && !isLoopbackURL(u.URL) {
			w = append(w, "UPSTREAMS "+u.Path+": forward_clerk_token is on with a plain-http upstream that is not on loopback: users' Clerk tokens cross the network unencrypted")
		}
	}
	if c.AuthMode != AuthClerk && len(c.ClerkAllowedClients) > 0 {
		w = append(w, "CLERK_ALLOWED_CLIENT_IDS is set but only applies with AUTH_MODE=clerk; it is ignored")
	}
	if c.AuthMode == AuthClerk && len(c.ClerkAllowedClients) == 0 {
		w = append(w, "AUTH_MODE=clerk with CLERK_ALLOWED_CLIENT_IDS empty: tokens of any OAuth client of this Clerk instance are accepted (audience and scopes still checked)")
	}
	if c.PprofAddr != "" && !isLoopbackAddr(c.PprofAddr) {
		w = append(w, "PPROF_ADDR listens beyond loopback: runtime profiles (memory contents included) are served to anyone who reaches "+c.PprofAddr+"; bind it to 127.0.0.1")
	}
	if c.CIMDAllowLoopback {
		w = append(w, "CIMD_ALLOW_LOOPBACK_FOR_TESTS is on: client metadata documents may be fetched from loopback and private addresses (SSRF guard off). Never use this in production")
	}
	if !c.Secure() && c.BaseURL != "" {
		w = append(w, "BASE_URL is not https: cookies are sent without Secure and the __Host- prefix. Use https outside local development")
	}
	if len(c.ToolRoles) > 0 || len(c.ToolPermissions) > 0 {
		w = append(w, c.OrgRuleWarnings()...)
	}
	return w
}

// OrgRuleWarnings are the settings missing for tool rules on organisation
// roles or permissions to let anyone through: the roles come from Clerk's
// Backend API (CLERK_SECRET_KEY), the organisation from tokens granted
// user:org:read. Without them such tools are refused to everyone.
func (c Config) OrgRuleWarnings() []string {
	var w []string
	if c.ClerkSecretKey == "" {
		w = append(w, "tools require Clerk organisation roles or permissions but CLERK_SECRET_KEY is unset: roles come from Clerk's Backend API, so those tools are refused to everyone")
	}
	if !slices.Contains(c.ClerkScopes, "user:org:read") {
		w = append(w, "tools require Clerk organisation roles or permissions but CLERK_SCOPES lacks user:org:read: Clerk's tokens then name no organisation, so those tools are refused to everyone")
	}
	return w
}

// Summary is one log-friendly line of the effective configuration with every
// secret redacted.
func (c Config) Summary() map[string]any {
	return map[string]any{
		"auth_mode":            c.AuthMode,
		"app_url":              c.AppURL,
		"clerk_allowed_ids":    c.ClerkAllowedClients,
		"base_url":             c.BaseURL,
		"listen_addr":          c.ListenAddr,
		"pprof_addr":           c.PprofAddr,
		"clerk_issuer":         c.ClerkIssuer,
		"clerk_client_id":      c.ClerkClientID,
		"clerk_client_secret":  redacted(c.ClerkClientSecret),
		"clerk_secret_key":     redacted(c.ClerkSecretKey),
		"clerk_api_url":        c.ClerkAPIURL,
		"clerk_scopes":         strings.Join(c.ClerkScopes, " "),
		"redis_url":            RedactURL(c.RedisURL),
		"redis_prefix":         c.RedisPrefix,
		"redis_wait_replicas":  c.RedisWaitReplicas,
		"redis_wait_timeout":   c.RedisWaitTimeout.String(),
		"proxy_secret":         redacted(string(c.Secret)),
		"scopes_supported":     strings.Join(c.ScopesSupported, " "),
		"tool_scopes":          c.ToolScopes,
		"tool_roles":           c.ToolRoles,
		"tool_permissions":     c.ToolPermissions,
		"public_tools":         c.PublicTools,
		"access_token_ttl":     c.AccessTokenTTL.String(),
		"refresh_token_ttl":    c.RefreshTokenTTL.String(),
		"refresh_grace":        c.RefreshGrace.String(),
		"client_idle_ttl":      c.ClientIdleTTL.String(),
		"introspection_ttl":    c.IntrospectionTTL.String(),
		"mcp_session_idle_ttl": c.SessionIdleTTL.String(),
		"userinfo_ttl":         c.UserinfoTTL.String(),
		"allowed_redirects":    c.AllowedRedirectURIs,
		"allowed_origins":      c.AllowedOrigins,
		"trusted_proxies":      len(c.TrustedProxies),
		"cimd_enabled":         c.CIMDEnabled,
		"cimd_allowed":         c.CIMDAllowed,
		"cimd_denied":          c.CIMDDenied,
		"dcr_enabled":          c.DCREnabled,
		"cimd_allow_loopback":  c.CIMDAllowLoopback,
		"try_page":             c.TryPage,
		"rate_limits_per_min":  fmt.Sprintf("register=%d token=%d authorize=%d", c.RateLimitRegister, c.RateLimitToken, c.RateLimitAuthorize),
		"max_inflight_per_ip":  c.MaxInFlightPerIP,
		"clerk_timeout":        c.ClerkTimeout.String(),
		"shutdown_timeout":     c.ShutdownTimeout.String(),
		"client_timeouts":      fmt.Sprintf("header=%s body_idle=%s body=%s idle=%s", c.HeaderReadTimeout, c.BodyIdleTimeout, c.BodyReadTimeout, c.IdleTimeout),
		"log_level":            c.LogLevel,
		"upstream_mcp_url":     withoutQuery(c.UpstreamURL),
		"upstream_timeout":     c.UpstreamTimeout.String(),
		"upstream_forwarding":  fmt.Sprintf("user_headers=%t clerk_token=%t", c.UpstreamUserHeaders, c.UpstreamClerkToken),
		"upstreams":            c.upstreamsSummary(),
		"token_exchange":       c.TokenExchangeClients,
		"admin_api":            c.AdminToken != "",
		"clerk_webhooks":       c.WebhookSecret != "",
		"admin_org_id":         c.AdminOrgID,
		"admin_org_role":       c.AdminOrgRole,
		"security_events":      fmt.Sprintf("max=%d ttl=%s", c.SecurityEventsMax, c.SecurityEventsTTL),
	}
}

func redacted(s string) string {
	if s == "" {
		return ""
	}
	return "[set]"
}

// RedactURL drops the passwords from a Redis URL: the user info's, and any
// query parameter naming one (a Sentinel URL carries the Sentinels' own in
// sentinel_password, which the start-up line used to print).
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "[unparseable]"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			if strings.Contains(strings.ToLower(k), "pass") {
				q.Set(k, "xxxxx")
			}
		}
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// loader reads variables and records problems instead of stopping at the first.
type loader struct {
	getenv   Getenv
	problems Problems
}

func (l *loader) bad(format string, args ...any) {
	l.problems = append(l.problems, fmt.Sprintf(format, args...))
}

func (l *loader) str(name, def string) string {
	if v := strings.TrimSpace(l.getenv(name)); v != "" {
		return v
	}
	return def
}

func (l *loader) required(name string) string {
	v := strings.TrimSpace(l.getenv(name))
	if v == "" {
		l.bad("%s is required", name)
	}
	return v
}

func (l *loader) fields(name, def string) []string { return strings.Fields(l.str(name, def)) }

func (l *loader) list(name string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(l.getenv(name), func(r rune) bool { return r == ',' || r == ' ' || r == '\n' }) {
		out = append(out, strings.TrimSpace(f))
	}
	return out
}

func (l *loader) duration(name string, def time.Duration) time.Duration {
	v := l.str(name, "")
	if v == "" {
		return def
	}
	if d, err := time.ParseDuration(v); err == nil {
		return d
	}
	if n, err := strconv.Atoi(v); err == nil { // bare seconds
		return time.Duration(n) * time.Second
	}
	l.bad("%s must be a duration such as 90s or 1h (got %q)", name, v)
	return def
}

func (l *loader) integer(name string, def int) int {
	v := l.str(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		l.bad("%s must be a non-negative integer (got %q)", name, v)
		return def
	}
	return n
}

func (l *loader) boolean(name string, def bool) bool {
	v := l.str(name, "")
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		l.bad("%s must be true or false (got %q)", name, v)
		return def
	}
	return b
}

func (l *loader) cidrs(name string) []*net.IPNet {
	var out []*net.IPNet
	for _, s := range l.list(name) {
		if !strings.Contains(s, "/") {
			if ip := net.ParseIP(s); ip != nil {
				bits := 32
				if ip.To4() == nil {
					bits = 128
				}
				s = fmt.Sprintf("%s/%d", s, bits)
			}
		}
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			l.bad("%s: %q is not an IP address or CIDR", name, s)
			continue
		}
		out = append(out, n)
	}
	return out
}

// toolScopes parses "tool=scope1 scope2;tool2=scope3".
func (l *loader) toolScopes(name string) map[string][]string {
	out := map[string][]string{}
	for _, part := range strings.Split(l.getenv(name), ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		tool, scopes, ok := strings.Cut(part, "=")
		tool = strings.TrimSpace(tool)
		if !ok || tool == "" || len(strings.Fields(scopes)) == 0 {
			l.bad("%s: %q must look like tool-name=value1 value2", name, part)
			continue
		}
		out[tool] = strings.Fields(scopes)
	}
	return out
}

// ToolPolicy is the per-tool policy the environment describes: TOOL_SCOPES,
// TOOL_ROLES, TOOL_PERMISSIONS and PUBLIC_TOOLS.
func (c Config) ToolPolicy() *toolpolicy.Policy {
	p := toolRules(c.ToolScopes, c.ToolRoles, c.ToolPermissions)
	for _, tool := range c.PublicTools {
		p.Merge(tool, toolpolicy.Rule{Public: true})
	}
	return p
}

// toolRules is a policy of per-tool scopes, organisation roles and
// permissions (/mcp's from the environment, an upstream's from UPSTREAMS).
func toolRules(scopes, roles, perms map[string][]string) *toolpolicy.Policy {
	p := toolpolicy.FromScopes(scopes)
	for tool, r := range roles {
		p.Merge(tool, toolpolicy.Rule{OrgRoles: r})
	}
	for tool, r := range perms {
		p.Merge(tool, toolpolicy.Rule{OrgPermissions: r})
	}
	return p
}

// clerkDomain turns CLERK_DOMAIN (a bare host or an origin) into an origin.
// Anything beyond an origin is refused: a path would silently change every
// endpoint the proxy derives from it.
func (l *loader) clerkDomain(v string) string {
	if v == "" {
		return ""
	}
	if !strings.Contains(v, "://") {
		v = "https://" + v
	}
	return l.origin("CLERK_DOMAIN", v)
}

// origin checks that v is scheme://host[:port] and nothing else, and returns it
// without a trailing slash.
func (l *loader) origin(name, v string) string {
	if v == "" {
		return ""
	}
	o, err := ParseOrigin(v)
	if err != nil {
		// One problem per fault, so each is a bullet of its own.
		errs := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = j.Unwrap()
		}
		for _, e := range errs {
			l.bad("%s: %v", name, e)
		}
		return ""
	}
	return o
}

// ParseOrigin validates an origin (scheme://host[:port], an optional single
// trailing slash tolerated) and returns it in canonical form.
func ParseOrigin(v string) (string, error) {
	u, err := url.Parse(v)
	if err != nil {
		return "", fmt.Errorf("%q is not a URL", v)
	}
	var errs []error
	if u.Scheme != "http" && u.Scheme != "https" {
		errs = append(errs, fmt.Errorf("%q must use http or https", v))
	}
	if u.Host == "" || u.Hostname() == "" {
		errs = append(errs, fmt.Errorf("%q has no host", v))
	}
	// url.Parse takes any digits, or none after the colon, as a port.
	if port := u.Port(); port != "" || strings.HasSuffix(u.Host, ":") {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			errs = append(errs, fmt.Errorf("%q has an invalid port (want 1-65535)", v))
		}
	}
	if u.User != nil {
		errs = append(errs, fmt.Errorf("%q must not contain userinfo", v))
	}
	if u.Path != "" && u.Path != "/" {
		errs = append(errs, fmt.Errorf("%q must be an origin only, without the path %q", v, u.Path))
	}
	if u.RawQuery != "" || u.ForceQuery {
		errs = append(errs, fmt.Errorf("%q must not have a query", v))
	}
	if u.Fragment != "" || strings.Contains(v, "#") {
		errs = append(errs, fmt.Errorf("%q must not have a fragment", v))
	}
	if len(errs) > 0 {
		return "", errors.Join(errs...)
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host), nil
}

// withoutQuery drops a URL's query from the summary line: an upstream may
// take an API key there.
func withoutQuery(v string) string {
	if base, _, ok := strings.Cut(v, "?"); ok {
		return base + "?[redacted]"
	}
	return v
}

func isLoopbackURL(v string) bool {
	u, err := url.Parse(v)
	if err != nil {
		return false
	}
	ip := net.ParseIP(u.Hostname())
	return u.Hostname() == "localhost" || ip != nil && ip.IsLoopback()
}

// validAppURL: APP_URL is where the browser is sent with the state, so it
// must be a plain absolute http(s) URL.
func validAppURL(v string) bool {
	u, err := url.Parse(v)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil &&
		u.RawQuery == "" && !u.ForceQuery && u.Fragment == "" && !strings.Contains(v, "#")
}

// AppOrigin is APP_URL's origin: the azp a session token minted for the
// app's pages carries.
func (c Config) AppOrigin() string {
	u, err := url.Parse(c.AppURL)
	if err != nil || u.Host == "" {
		return ""
	}
	return strings.ToLower(u.Scheme + "://" + u.Host)
}

func isHTTPURL(v string) bool {
	u, err := url.Parse(v)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// validScopeToken implements RFC 6749 §3.3: scope-token = 1*NQCHAR.
func validScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < 0x21 || r == 0x22 || r == 0x5c || r > 0x7e {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// upstreamsSummary is "path=url" per upstream at its own path, queries cut
// (they may carry a credential).
func (c Config) upstreamsSummary() []string {
	var out []string
	for _, u := range c.MountedUpstreams {
		out = append(out, u.Path+"="+withoutQuery(u.URL))
	}
	return out
}

// isLoopbackAddr: a listen address ("127.0.0.1:6060", "localhost:6060")
// bound to loopback only; ":6060" listens everywhere.
func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}
