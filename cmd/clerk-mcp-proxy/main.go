// Command clerk-mcp-proxy is the OAuth 2.1 authorization server and protected
// MCP endpoint that puts Clerk sign-in in front of an MCP server.
//
//	clerk-mcp-proxy [serve]     run against Clerk and Redis (configured by environment)
//	clerk-mcp-proxy dev         run with an in-process fake Clerk and memory store; no accounts needed
//	clerk-mcp-proxy dev --upstream URL   the same, fronting an existing MCP server (gateway mode)
//	clerk-mcp-proxy healthcheck exit 0 if the local server answers /healthz (container HEALTHCHECK)
//	clerk-mcp-proxy version     print the version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/clerkmcp"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/app"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/asynclog"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/config"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/httpx"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store/redisstore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run is main without the process: tests call it directly.
func run(ctx context.Context, args []string, getenv config.Getenv, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 {
		cmd = args[0]
	}
	if cmd == "dev" && len(args) > 1 && !isHelp(args[1]) {
		return devWithFlags(ctx, args[1:], getenv, stdout, stderr)
	}
	// The other commands take no arguments (configuration is the
	// environment): anything after one is a request for help or a mistake,
	// and must not start a server.
	if len(args) > 1 && !isHelp(args[1]) {
		fmt.Fprintf(stderr, "unknown argument %q\n\n%s", args[1], usage)
		return 2
	}
	if isHelp(cmd) || len(args) > 1 {
		fmt.Fprint(stdout, usage)
		return 0
	}
	switch cmd {
	case "serve":
		return serve(ctx, getenv, stderr)
	case "dev":
		return dev(ctx, getenv, "", stdout, stderr)
	case "healthcheck":
		return healthcheck(getenv, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "clerk-mcp-proxy", app.Version)
		return 0
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}

func isHelp(arg string) bool { return arg == "help" || arg == "--help" || arg == "-h" }

const usage = `usage: clerk-mcp-proxy [serve|dev|healthcheck|version]

  serve        run against Clerk and Redis; configure with CLERK_DOMAIN, CLERK_CLIENT_ID,
               CLERK_CLIENT_SECRET, BASE_URL, REDIS_URL, PROXY_SECRET (see README)
  dev          run locally with a built-in fake Clerk and an in-memory store
    --upstream URL   gateway mode: put the sign-in in front of the MCP server at URL
                     (streamable HTTP, e.g. http://127.0.0.1:3000/mcp; as UPSTREAM_MCP_URL)
    --mode MODE      AUTH_MODE: proxy (default); clerk (Clerk is the authorization server,
                     DCR at the fake); app (sign-in through the fake's team app)
  healthcheck  exit 0 when the server on LISTEN_ADDR answers /healthz
  version      print the version
`

func serve(ctx context.Context, getenv config.Getenv, stderr io.Writer) int {
	cfg, err := config.Load(getenv, config.ModeServe)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	// The log (one access line per request) is written asynchronously, in
	// batches, so no request waits for a write; flushed before exiting.
	out := asynclog.New(stderr, asynclog.Options{})
	defer out.Close()
	log := app.NewLogger(cfg, out, "json") // app.New logs cfg.Warnings()
	redis.SetLogger(redisLogger{log})
	st, err := redisstore.New(ctx, cfg.RedisOptions())
	if err != nil {
		// No retry loop here: the process exits and its supervisor (docker
		// compose, Kubernetes) restarts it, so the message must say what to fix.
		log.Error("cannot reach Redis at start-up: check REDIS_URL and that Redis is running; exiting",
			"redis_url", config.RedactURL(cfg.RedisURL), "err", err)
		return 1
	}
	defer st.Close()
	// Built through the public package, so what library users get is
	// what ships; it logs the "serving" line when it starts serving.
	srv, err := clerkmcp.New(ctx, cfg, clerkmcp.Options{Store: st, Logger: log, LogDropped: out.Dropped})
	if err != nil {
		log.Error("start-up failed", "err", err)
		return 1
	}
	l, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		log.Error("cannot listen", "addr", cfg.ListenAddr, "err", err)
		return 1
	}
	if cfg.PprofAddr != "" {
		stopPprof, err := servePprof(cfg.PprofAddr, log)
		if err != nil {
			log.Error("cannot listen for PPROF_ADDR", "addr", cfg.PprofAddr, "err", err)
			return 1
		}
		defer stopPprof()
	}
	return serveUntilDone(ctx, srv.Serve, cfg.ShutdownTimeout, l, log)
}

// servePprof serves the runtime profiles on addr (PPROF_ADDR) until the
// returned stop is called.
func servePprof(addr string, log *slog.Logger) (stop func(), err error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	// No WriteTimeout: a CPU profile streams for as long as it was asked to.
	srv := &http.Server{Handler: httpx.Pprof(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	log.Info("serving runtime profiles (PPROF_ADDR)", "addr", l.Addr().String())
	return func() { _ = srv.Close() }, nil
}

// serveUntilDone runs serve until ctx ends (SIGTERM), which then drains for
// SHUTDOWN_TIMEOUT (drain; event streams are ended first).
func serveUntilDone(ctx context.Context, serve func(context.Context, net.Listener) error, drain time.Duration, l net.Listener, log *slog.Logger) int {
	err := serve(ctx, l)
	switch {
	case err == nil || errors.Is(err, http.ErrServerClosed):
		return 0
	case errors.Is(err, context.DeadlineExceeded):
		log.Error("shutdown: requests still running after SHUTDOWN_TIMEOUT were cut off", "timeout", drain.String())
	default:
		log.Error("server stopped", "err", err)
	}
	return 1
}

// redisLogger sends go-redis's own messages (pool dial failures while Redis
// is down) through the structured logger: by default go-redis prints plain
// "redis: ..." lines to stderr, which broke the one-JSON-object-per-line log.
type redisLogger struct{ log *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.log.WarnContext(ctx, "redis client", "component", "go-redis", "detail", fmt.Sprintf(format, v...))
}

// healthcheck probes the local server; it reads LISTEN_ADDR only.
func healthcheck(getenv config.Getenv, stderr io.Writer) int {
	addr := getenv("LISTEN_ADDR")
	if addr == "" {
		addr = config.DefaultListenAddr
	}
	if err := httpx.ProbeLocal(addr, "/healthz", 3*time.Second); err != nil {
		fmt.Fprintln(stderr, "healthcheck:", err)
		return 1
	}
	return 0
}

// envWith overlays values on an environment lookup.
func envWith(getenv config.Getenv, over map[string]string) config.Getenv {
	return func(k string) string {
		if v, ok := over[k]; ok && strings.TrimSpace(getenv(k)) == "" {
			return v
		}
		return getenv(k)
	}
}
