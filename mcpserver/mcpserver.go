// Package mcpserver is the protected resource: the MCP endpoint at /mcp
// (mcp-go, streamable HTTP), the RFC 9728 protected-resource metadata that
// points clients at the proxy's authorization server, and the bearer
// middleware in front of it: Host/Origin checks against DNS rebinding, 401
// with a WWW-Authenticate challenge (RFC 6750 §3, RFC 9728 §5.1), 403
// insufficient_scope step-up for tools that need more, 503 when the
// verifier cannot reach Clerk. The tool policy (package toolpolicy) also
// hides and refuses tools by Clerk organisation role or permission and lets
// clients without a token use public tools (policy.go). Tools see the
// verified identity in their context; session ids are bound to the user (or
// the anonymous principal) that created them.
package mcpserver

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/clerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/metrics"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/seal"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/ttlcache"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/mcpserver/toolpolicy"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/verifier"
)

// Verifier checks bearer tokens (verifier.Verifier).
type Verifier interface {
	Verify(ctx context.Context, token string) (*verifier.Identity, error)
}

// Profiles is the Clerk access the profile tools need.
type Profiles interface {
	HasBackendAPI() bool
	User(ctx context.Context, userID string) (map[string]any, error)
	UserInfo(ctx context.Context, accessToken string) (clerk.UserInfo, error)
}

// Config configures the endpoint.
type Config struct {
	Issuer     string              // the authorization server
	Resource   string              // BASE_URL/mcp
	Scopes     []string            // baseline scopes (PRM scopes_supported, 401 challenge)
	ToolScopes map[string][]string // extra scopes per tool (merged into Policy)
	// Policy holds the per-tool rules: scopes, organisation roles and
	// permissions, public tools. Nil: ToolScopes alone. The server keeps
	// the pointer, so rules set on it later take effect at once.
	Policy *toolpolicy.Policy
	// NoDemoTools leaves out get-user-info, get-clerk-user-profile and
	// get-user-greeting (for programs serving only their own tools).
	NoDemoTools    bool
	AllowedOrigins []string // besides the issuer's own origin
	ServiceName    string
	Version        string
	// AuthorizationServer, when set, is the issuer the protected-resource
	// metadata names instead of Issuer (clerk mode: Clerk's Frontend API).
	AuthorizationServer string
	// SessionIdleTTL is how long this replica keeps an idle MCP session's
	// local state (mcp-go's, about 18 KB in a heap profile under the chaos
	// soak: client info, log level, notification channels); 0 means DefaultSessionIdleTTL. The session
	// itself stays valid: its id is checked by MAC on every replica, and a
	// request after the sweep is served as on a replica that never saw the
	// initialize.
	SessionIdleTTL time.Duration
}

// DefaultSessionIdleTTL bounds the memory of sessions clients abandon (most
// do, at each new access token): at 30 minutes, a replica under the chaos
// soak's load held 9 KB per token issued for half an hour.
const DefaultSessionIdleTTL = 5 * time.Minute

// heartbeatEvery is how often an open GET stream is pinged: each ping counts
// as the session's activity, so a listening client keeps its notifications
// however long it stays quiet (and idle-timeout proxies keep the stream).
func heartbeatEvery(idle time.Duration) time.Duration { return min(idle/2, time.Minute) }

// Deps are the endpoint's collaborators.
type Deps struct {
	Verifier Verifier
	Profiles Profiles
	Sessions store.Cache // terminated session ids
	Secret   []byte
	Metrics  *metrics.Metrics
	Logger   *slog.Logger
	Now      func() time.Time
}

// Server is the protected MCP endpoint.
type Server struct {
	cfg      Config
	verifier Verifier
	profiles Profiles
	sessions *sessionManagers
	metrics  *metrics.Metrics
	log      *slog.Logger
	mcp      http.Handler
	tools    *server.MCPServer
	policy   *toolpolicy.Policy
	// policyBehind: the handler behind /mcp (SetHandler) enforces the
	// policy, so authenticate does not.
	policyBehind bool
	prmPath      string
	origins      map[string]bool
	hosts        map[string]bool
}

// New builds the endpoint and its MCP server.
func New(cfg Config, d Deps) *Server {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Metrics == nil {
		d.Metrics = metrics.New()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if cfg.ServiceName == "" {
		cfg.ServiceName = "clerk-mcp-proxy"
	}
	if cfg.SessionIdleTTL <= 0 {
		cfg.SessionIdleTTL = DefaultSessionIdleTTL
	}
	s := &Server{
		cfg: cfg, verifier: d.Verifier, profiles: d.Profiles, metrics: d.Metrics, log: d.Logger,
		sessions: &sessionManagers{signer: seal.NewSigner(seal.DeriveKey(d.Secret, seal.PurposeSession)), resource: mustPath(cfg.Resource), store: d.Sessions,
			live: ttlcache.New[string, struct{}](100_000, d.Now), owners: ttlcache.New[string, string](100_000, d.Now), now: d.Now},
		origins: map[string]bool{}, hosts: map[string]bool{},
		policy: cfg.Policy,
	}
	if s.policy == nil {
		s.policy = toolpolicy.New(nil)
	}
	for tool, scopes := range cfg.ToolScopes {
		s.policy.Merge(tool, toolpolicy.Rule{Scopes: scopes})
	}
	for _, o := range append([]string{cfg.Issuer}, cfg.AllowedOrigins...) {
		if u, err := url.Parse(o); err == nil && u.Host != "" {
			s.origins[strings.ToLower(u.Scheme+"://"+u.Host)] = true
		}
	}
	// Only BASE_URL's host is this server's name. ALLOWED_ORIGINS are other
	// sites whose pages may call /mcp; their hosts are not names of this
	// server, so a request carrying one (a rebound DNS name) is refused.
	if u, err := url.Parse(cfg.Issuer); err == nil && u.Host != "" {
		s.hosts[strings.ToLower(u.Host)] = true
	}
	s.prmPath = "/.well-known/oauth-protected-resource" + mustPath(cfg.Resource)
	opts := []server.ServerOption{
		server.WithToolCapabilities(false),
		// Outermost first: a panic anywhere below, the policy check
		// included, is one call's JSON-RPC error.
		server.WithToolHandlerMiddleware(s.recoverTool),
		server.WithToolHandlerMiddleware(s.enforceTool),
		server.WithToolFilter(s.filterTools),
		// Answers depend on who asks (tools/list on organisation rules and
		// sign-in marks; a library user's resources on the user): no shared
		// cache may serve one user's answer to another (SEP-2549).
		server.WithCacheHints(0, mcp.CacheScopePrivate),
	}
	if !cfg.NoDemoTools {
		opts = append(opts, server.WithInstructions("Tools that show who is signed in through Clerk: get-user-info, get-clerk-user-profile, get-user-greeting."))
	}
	mcpSrv := server.NewMCPServer(cfg.ServiceName, cfg.Version, opts...)
	if !cfg.NoDemoTools {
		s.addTools(mcpSrv)
	}
	s.tools = mcpSrv
	s.mcp = server.NewStreamableHTTPServer(mcpSrv,
		server.WithSessionIdManagerResolver(s.sessions),
		server.WithStreamableHTTPLogger(slog.New(newLibraryLog(d.Logger.Handler(), d.Now))),
		server.WithSessionIdleTTL(cfg.SessionIdleTTL),
		server.WithHeartbeatInterval(heartbeatEvery(cfg.SessionIdleTTL)),
	)
	return s
}

func mustPath(resource string) string {
	u, err := url.Parse(resource)
	if err != nil || u.Path == "" {
		return "/mcp"
	}
	return u.Path
}

// Mount registers the endpoint at its resource's path (/mcp, or an
// upstream's own path in gateway mode) and its protected-resource metadata
// at the RFC 9728 §3.1 path-inserted URL. The endpoint at /mcp also answers
// the root metadata URL, for clients that look there first.
func (s *Server) Mount(r chi.Router) {
	path := mustPath(s.cfg.Resource)
	r.Get(s.prmPath, s.handlePRM)
	r.Options(s.prmPath, prmPreflight)
	if path == "/mcp" {
		r.Get("/.well-known/oauth-protected-resource", s.handlePRM)
		r.Options("/.well-known/oauth-protected-resource", prmPreflight)
	}
	r.Handle(path, s.guard(s.authenticate(s.mcp)))
}

// SetHandler puts h behind /mcp instead of the built-in mcp-go server
// (gateway mode: h forwards to an upstream MCP server). The Host/Origin
// guard and the bearer middleware stay in front of it, so h sees only
// authenticated requests, with the identity in their context. Call it
// before Mount. h enforces the tool policy itself (the gateway filters the
// upstream's answers and writes one audit line per tools/call, refused ones
// included), so the middleware only authenticates: one place decides.
func (s *Server) SetHandler(h http.Handler) { s.mcp, s.policyBehind = h, true }

// MCPServer is the mcp-go server behind /mcp, for adding tools, resources
// and prompts with mcp-go's own API. Its handlers see the verified identity
// in their context (IdentityFrom).
func (s *Server) MCPServer() *server.MCPServer { return s.tools }

// Policy is the tool policy /mcp enforces; rules set on it apply at once.
func (s *Server) Policy() *toolpolicy.Policy { return s.policy }

// PRMURL is the metadata URL named in WWW-Authenticate challenges.
func (s *Server) PRMURL() string { return s.cfg.Issuer + s.prmPath }
