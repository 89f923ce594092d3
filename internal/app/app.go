// Package app wires the configuration into one running clerk-mcp-proxy: the
// store, the Clerk client, the shared signing keys, the authorization server,
// the verifier and the MCP endpoint behind one chi router with the
// operational endpoints (/healthz, /readyz, /metrics). cmd/clerk-mcp-proxy
// and the end-to-end tests both start the product through here, so what is
// tested is what ships.
package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/bgwrite"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/clerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/config"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/httpx"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/lastused"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/metrics"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/oautherr"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/secevents"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/tokens"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/trypage"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/mcpserver"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/proxy"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/verifier"
)

// Version is stamped at build time (-ldflags "-X ...app.Version=v1.2.3").
var Version = "dev"

// Options are the parts a caller may supply instead of the defaults.
type Options struct {
	Store      store.Store  // required
	Logger     *slog.Logger // default: from config
	HTTPClient *http.Client // for Clerk; default has cfg.ClerkTimeout
	CIMDClient *http.Client // for client metadata documents; default SSRF-guarded
	Now        func() time.Time
	Rand       io.Reader
	// NoDemoTools leaves the three demonstration tools out of /mcp.
	NoDemoTools bool
	// LogDropped counts the log lines an asynchronous log writer dropped
	// (internal/asynclog); exported as log_lines_dropped_total.
	LogDropped func() uint64
}

// shortWaitReporter is a store that can tell when a write it was asked to
// make durable (REDIS_WAIT_REPLICAS) was acknowledged by fewer replicas:
// redisstore.Store.
type shortWaitReporter interface {
	OnShortWait(func(op string, acked int))
}

// App is one assembled server.
type App struct {
	Config   config.Config
	Handler  http.Handler
	Metrics  *metrics.Metrics
	Clerk    *clerk.Client
	Verifier *verifier.Verifier
	MCP      *mcpserver.Server
	Store    store.Store
	Logger   *slog.Logger

	readyMu  sync.Mutex
	readyAt  time.Time
	readyErr error
}

// NewLogger builds the configured slog logger (JSON by default).
func NewLogger(cfg config.Config, w io.Writer, defaultFormat string) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	format := cfg.LogFormat
	if format == "" {
		format = defaultFormat
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	// slog's JSON handler, with the access line written by a fast path that
	// produces the same bytes.
	return slog.New(httpx.NewJSONHandler(w, opts))
}

// New assembles the server.
func New(ctx context.Context, cfg config.Config, o Options) (*App, error) {
	if o.Store == nil {
		return nil, errors.New("app: a store is required")
	}
	if o.Logger == nil {
		o.Logger = NewLogger(cfg, os.Stderr, "json")
	}
	// Risky settings (e.g. CIMD_ALLOW_LOOPBACK_FOR_TESTS, which turns the
	// SSRF guard off) are announced here, where every way of starting the
	// product passes (serve, dev, the end-to-end tests), so none can run
	// with them silently.
	for _, w := range cfg.Warnings() {
		o.Logger.Warn(w)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: cfg.ClerkTimeout}
	}
	m := metrics.New()
	if w, ok := o.Store.(shortWaitReporter); ok {
		w.OnShortWait(func(op string, acked int) {
			m.UnreplicatedWrites.WithLabelValues(op).Inc()
			o.Logger.Warn("a write was not acknowledged by REDIS_WAIT_REPLICAS replicas within REDIS_WAIT_TIMEOUT; kept on the primary, lost should the primary fail now",
				"op", op, "acked", acked, "want", cfg.RedisWaitReplicas)
		})
	}
	if o.LogDropped != nil {
		m.CountLogDrops(o.LogDropped)
	}
	cl := clerk.New(ctx, clerk.Config{
		Issuer: cfg.ClerkIssuer, ClientID: cfg.ClerkClientID, ClientSecret: cfg.ClerkClientSecret,
		SecretKey: cfg.ClerkSecretKey, APIURL: cfg.ClerkAPIURL, RedirectURL: cfg.CallbackURL(),
		Scopes: cfg.ClerkScopes, HTTPClient: o.HTTPClient, Logger: o.Logger, Observe: m.ObserveClerk,
	})
	keys, err := tokens.LoadKeySet(ctx, o.Store, cfg.Secret, tokens.LoadOptions{Random: o.Rand, Logger: o.Logger, Now: o.Now})
	if err != nil {
		return nil, err
	}
	policy := cfg.ToolPolicy()
	mounts := resourceMounts(cfg, policy, o.NoDemoTools)
	// Best-effort background writes: security events and grants' last use.
	bg := bgwrite.New(64, 2*time.Second, m, o.Logger)
	uses := lastused.New(o.Store, bg, cfg.RefreshTokenTTL, o.Now)
	vdeps := verifier.Deps{Uses: uses, Keys: keys, Store: o.Store, Clerk: introspector(cfg, cl), Secret: cfg.Secret, Metrics: m, Logger: o.Logger, Now: o.Now, Sessions: cl}
	if cfg.ClerkSecretKey != "" {
		vdeps.Orgs = cl // organisation role and permissions come from the Backend API
	}
	v, err := verifier.New(verifier.Config{
		Issuer: cfg.Issuer(), Resource: cfg.Resource(), Resources: cfg.Resources(), ClerkClientID: cfg.ClerkClientID,
		RequiredScopes: cfg.ClerkRequiredScopes(), IntrospectionTTL: cfg.IntrospectionTTL, UserinfoTTL: cfg.UserinfoTTL,
		RefreshTimeout: cfg.ClerkTimeout,
		// get-user-info shows the role; otherwise only org rules need it.
		OrgsNeeded: func() bool { return !o.NoDemoTools || anyOrgRule(mounts) },
	}, vdeps)
	if err != nil {
		return nil, err
	}
	as, err := proxy.New(proxy.Config{
		Issuer: cfg.Issuer(), Resource: cfg.Resource(), Resources: cfg.Resources(), Scopes: cfg.AllScopes(), DefaultScopes: cfg.ScopesSupported,
		AccessTokenTTL: cfg.AccessTokenTTL, RefreshTokenTTL: cfg.RefreshTokenTTL, RefreshGrace: cfg.RefreshGrace,
		ClientIdleTTL: cfg.ClientIdleTTL, AllowedRedirects: cfg.AllowedRedirectURIs, SecureCookies: cfg.Secure(),
		TrustedProxies: cfg.TrustedProxies,
		RateLimits:     proxy.RateLimits{Register: cfg.RateLimitRegister, Token: cfg.RateLimitToken, Authorize: cfg.RateLimitAuthorize, InFlight: cfg.MaxInFlightPerIP},
		CIMD: proxy.CIMDConfig{Enabled: cfg.CIMDEnabled, AllowPrivate: cfg.CIMDAllowLoopback,
			Allowed: cfg.CIMDAllowed, Denied: cfg.CIMDDenied},
		DCRDisabled: !cfg.DCREnabled, AdminToken: cfg.AdminToken, WebhookSecret: cfg.WebhookSecret,
		AdminOrgID: cfg.AdminOrgID, AdminOrgRole: cfg.AdminOrgRole,
		App: appConfig(cfg), Exchange: exchangeConfig(cfg),
	}, proxy.Deps{Sessions: cl, Store: o.Store, Clerk: cl, Keys: keys, Secret: cfg.Secret, Metrics: m, Logger: o.Logger,
		Events: v, Now: o.Now, Rand: o.Rand, HTTPClient: o.CIMDClient, Roles: v, LastUsed: uses, Exchange: v,
		SecEvents: secevents.New(o.Store, bg, cfg.SecurityEventsMax, cfg.SecurityEventsTTL)})
	if err != nil {
		return nil, err
	}
	// One protected endpoint per resource: /mcp, and each upstream at its
	// own path, all built by serveResource.
	var servers []*mcpserver.Server
	for _, mt := range mounts {
		srv, err := serveResource(cfg, mt, mcpserver.Deps{Verifier: mcpVerifier(cfg, v, cl), Profiles: cl, Sessions: o.Store,
			Secret: cfg.Secret, Metrics: m, Logger: o.Logger, Now: o.Now}, keys)
		if err != nil {
			return nil, err
		}
		servers = append(servers, srv)
	}
	rs := servers[0]

	a := &App{Config: cfg, Metrics: m, Clerk: cl, Verifier: v, MCP: rs, Store: o.Store, Logger: o.Logger}
	r := chi.NewRouter()
	r.Use(httpx.Middleware(o.Logger, m), httpx.BodyDeadline(cfg.BodyIdleTimeout, cfg.BodyReadTimeout))
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		oautherr.Write(w, oautherr.New(http.StatusNotFound, oautherr.NotFound, "no such endpoint"))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		oautherr.Write(w, oautherr.New(http.StatusMethodNotAllowed, oautherr.InvalidRequest, "method not allowed on this endpoint"))
	})
	if cfg.AuthMode != config.AuthClerk {
		// In clerk mode Clerk is the authorization server: /register,
		// /authorize, /consent, /oauth/callback, /token, /revoke,
		// /introspect and the AS metadata answer 404.
		as.Mount(r)
	}
	if cfg.TryPage {
		// A browser client of the public endpoints above (config.Validate
		// keeps it out of clerk mode, where they are Clerk's).
		if err := trypage.Mount(r); err != nil {
			return nil, err
		}
	}
	for _, srv := range servers {
		srv.Mount(r)
	}
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {
		oautherr.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/readyz", a.handleReady)
	r.Method(http.MethodGet, "/metrics", m.Handler())
	a.Handler = r
	return a, nil
}

// Ready reports whether Redis and Clerk discovery answer. The result is
// reused for two seconds so probes cannot hammer Clerk.
func (a *App) Ready(ctx context.Context) error {
	a.readyMu.Lock()
	defer a.readyMu.Unlock()
	if time.Since(a.readyAt) < 2*time.Second {
		return a.readyErr
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var errs []error
	if err := a.Store.Ping(ctx); err != nil {
		errs = append(errs, errors.New("store unreachable"))
	}
	if err := a.Clerk.Ping(ctx); err != nil {
		errs = append(errs, errors.New("clerk discovery unreachable"))
	}
	a.readyAt, a.readyErr = time.Now(), errors.Join(errs...)
	return a.readyErr
}

func (a *App) handleReady(w http.ResponseWriter, r *http.Request) {
	if err := a.Ready(r.Context()); err != nil {
		oautherr.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": err.Error()})
		return
	}
	oautherr.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// LogServing logs the start-up line: version, whether Clerk was discovered,
// and the configuration summary (secrets redacted) in a stable order, so
// the line reads the same on every replica.
func (a *App) LogServing() {
	sum := a.Config.Summary()
	args := []any{"version", Version, "clerk_discovered", a.Clerk.Discovered()}
	for _, k := range slices.Sorted(maps.Keys(sum)) {
		args = append(args, k, sum[k])
	}
	a.Logger.Info("clerk-mcp-proxy serving", args...)
}

// Serve runs the HTTP server on l until ctx ends, then drains in-flight
// requests for at most drain. Event streams are ended as ctx ends: they never
// finish on their own and would hold the drain for the whole timeout. (Here,
// not in the binary, so the end-to-end tests serve exactly what ships.)
func (a *App) Serve(ctx context.Context, l net.Listener, drain time.Duration) error {
	// No ReadTimeout: it would also end the standing GET event streams.
	// Bodies are bounded per request by httpx.BodyDeadline instead.
	srv := &http.Server{
		Handler:           httpx.EndStreamsOn(ctx)(a.Handler),
		ReadHeaderTimeout: a.Config.HeaderReadTimeout,
		IdleTimeout:       a.Config.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.Logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	a.Logger.Info("shutting down: draining in-flight requests", "timeout", drain.String())
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return err
	}
	return nil
}
