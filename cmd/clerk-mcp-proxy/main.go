// Command clerk-mcp-proxy is the OAuth 2.1 authorization server and protected
// MCP endpoint that puts Clerk sign-in in front of an MCP server.
//
//	clerk-mcp-proxy [serve]     run against Clerk and Redis (configured by environment)
//	clerk-mcp-proxy dev         run with an in-process fake Clerk and memory store; no accounts needed
//	clerk-mcp-proxy healthcheck exit 0 if the local server answers /healthz (container HEALTHCHECK)
//	clerk-mcp-proxy version     print the version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/app"
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
	// The commands take no arguments (configuration is the environment):
	// anything after one is a request for help or a mistake, and must not
	// start a server.
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
		return dev(ctx, getenv, stdout, stderr)
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
               (dev --mode clerk: Clerk is the authorization server, DCR at the fake;
               dev --mode app: sign-in through the fake's team app)
  healthcheck  exit 0 when the server on LISTEN_ADDR answers /healthz
  version      print the version
`

func serve(ctx context.Context, getenv config.Getenv, stderr io.Writer) int {
	cfg, err := config.Load(getenv, config.ModeServe)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	log := app.NewLogger(cfg, stderr, "json") // app.New logs cfg.Warnings()
	redis.SetLogger(redisLogger{log})
	st, err := redisstore.New(ctx, redisstore.Options{URL: cfg.RedisURL, Prefix: cfg.RedisPrefix})
	if err != nil {
		// No retry loop here: the process exits and its supervisor (docker
		// compose, Kubernetes) restarts it, so the message must say what to fix.
		log.Error("cannot reach Redis at start-up: check REDIS_URL and that Redis is running; exiting",
			"redis_url", config.RedactURL(cfg.RedisURL), "err", err)
		return 1
	}
	defer st.Close()
	a, err := app.New(ctx, cfg, app.Options{Store: st, Logger: log})
	if err != nil {
		log.Error("start-up failed", "err", err)
		return 1
	}
	l, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		log.Error("cannot listen", "addr", cfg.ListenAddr, "err", err)
		return 1
	}
	log.Info("clerk-mcp-proxy serving", append([]any{"version", app.Version, "clerk_discovered", a.Clerk.Discovered()}, flatten(cfg.Summary())...)...)
	return serveUntilDone(ctx, a, l, log)
}

// serveUntilDone serves until ctx ends (SIGTERM), then drains for
// SHUTDOWN_TIMEOUT (App.Serve ends event streams first).
func serveUntilDone(ctx context.Context, a *app.App, l net.Listener, log *slog.Logger) int {
	err := a.Serve(ctx, l, a.Config.ShutdownTimeout)
	switch {
	case err == nil || errors.Is(err, http.ErrServerClosed):
		return 0
	case errors.Is(err, context.DeadlineExceeded):
		log.Error("shutdown: requests still running after SHUTDOWN_TIMEOUT were cut off", "timeout", a.Config.ShutdownTimeout.String())
	default:
		log.Error("server stopped", "err", err)
	}
	return 1
}

// flatten turns the summary into slog arguments in a stable (sorted) order,
// so the start-up line reads the same on every replica.
func flatten(m map[string]any) []any {
	out := make([]any, 0, 2*len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k, m[k])
	}
	return out
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
