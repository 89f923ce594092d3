// Command mockclerk runs the fake Clerk (Frontend API + the Backend API
// endpoints the proxy uses) on its own, for docker compose, manual testing
// and black-box tests. Every flag has a MOCKCLERK_* environment twin; a flag
// wins over its twin.
//
//	mockclerk -addr 127.0.0.1:9400 -client-id ID -client-secret S -redirect-uri http://127.0.0.1:8080/oauth/callback
//	mockclerk -healthcheck     exit 0 when the fake on -addr answers (container HEALTHCHECK)
//
// The -users file is a JSON array of users:
//
//	[{"id":"user_…","first_name":"Ada","last_name":"Lovelace","email":"ada@example.com","username":"ada",
//	  "image_url":"https://…","org":{"id":"org_…","name":"Acme","slug":"acme","role":"org:admin","permissions":["org:mcp:use"]}}]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/httpx"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mockclerk"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, nil))
}

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

// run is main without the process. ready, when set, receives the running
// server (tests).
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, ready func(*mockclerk.Running)) int {
	fs := flag.NewFlagSet("mockclerk", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := func(name, def string) string {
		if v := getenv("MOCKCLERK_" + name); v != "" {
			return v
		}
		return def
	}
	addr := fs.String("addr", env("ADDR", "127.0.0.1:9400"), "listen address")
	issuer := fs.String("issuer", env("ISSUER", ""), "public origin (default http://<addr>)")
	clientID := fs.String("client-id", env("CLIENT_ID", "mockclerk-client"), "the OAuth application's client id")
	clientSecret := fs.String("client-secret", env("CLIENT_SECRET", "mockclerk-secret"), "the OAuth application's client secret")
	var redirects multi
	fs.Var(&redirects, "redirect-uri", "an allowed redirect URI (repeatable)")
	format := fs.String("token-format", env("TOKEN_FORMAT", "jwt"), "access token format: jwt (the default of new Clerk OAuth applications) or opaque (oat_…)")
	usersFile := fs.String("users", env("USERS", ""), "JSON file of seeded users (default: a built-in set)")
	ttl := fs.String("access-token-ttl", env("ACCESS_TOKEN_TTL", "24h"), "access token lifetime")
	dcr := fs.String("dcr", env("DCR", "false"), "enable /oauth/register")
	secretKey := fs.String("secret-key", env("SECRET_KEY", ""), "Backend API key sk_… (default: generated)")
	webhookSecret := fs.String("webhook-secret", env("WEBHOOK_SECRET", ""), "whsec_… secret signing the webhooks POST /__admin/webhooks sends (default: generated)")
	health := fs.Bool("healthcheck", false, "probe the server on -addr and exit")
	logFormat := fs.String("log-format", env("LOG_FORMAT", "text"), "text or json")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *health {
		return healthcheck(*addr, stderr)
	}
	if len(redirects) == 0 {
		for _, r := range strings.Split(nonEmpty(getenv("MOCKCLERK_REDIRECT_URIS"), getenv("MOCKCLERK_REDIRECT_URI")), ",") {
			if r = strings.TrimSpace(r); r != "" {
				redirects = append(redirects, r)
			}
		}
	}

	var problems []string
	cfg := mockclerk.Config{Issuer: *issuer, ClientID: *clientID, ClientSecret: *clientSecret, RedirectURIs: redirects,
		TokenFormat: *format, SecretKey: *secretKey, WebhookSecret: *webhookSecret}
	if d, err := time.ParseDuration(*ttl); err != nil || d <= 0 {
		problems = append(problems, fmt.Sprintf("access token TTL %q must be a positive duration such as 24h or 90s", *ttl))
	} else {
		cfg.AccessTokenTTL = d
	}
	if b, err := strconv.ParseBool(*dcr); err != nil {
		problems = append(problems, fmt.Sprintf("dcr %q must be true or false", *dcr))
	} else {
		cfg.DCR = b
	}
	if *usersFile != "" {
		users, err := readUsers(*usersFile)
		if err != nil {
			problems = append(problems, err.Error())
		}
		cfg.Users = users
	}
	// A misspelt -log-format or stray arguments (a flag after a positional
	// word stops parsing) are configuration mistakes: reported with the
	// others, never silently ignored.
	if *logFormat != "text" && *logFormat != "json" {
		problems = append(problems, fmt.Sprintf("log format %q must be text or json", *logFormat))
	}
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected arguments %q (every setting is a -flag)", fs.Args()))
	}
	if _, _, err := net.SplitHostPort(*addr); err != nil {
		problems = append(problems, fmt.Sprintf("addr %q must be host:port", *addr))
	}
	if err := cfg.Validate(); err != nil {
		problems = append(problems, strings.TrimPrefix(err.Error(), "mockclerk: "))
	}
	if len(problems) > 0 {
		fmt.Fprintln(stderr, "mockclerk: bad configuration:")
		for _, p := range problems {
			fmt.Fprintln(stderr, "  -", p)
		}
		return 2
	}
	var h slog.Handler = slog.NewTextHandler(stderr, nil)
	if *logFormat == "json" {
		h = slog.NewJSONHandler(stderr, nil)
	}
	cfg.Logger = slog.New(h)
	if len(cfg.RedirectURIs) == 0 {
		// Legal (a test may only need the Backend API), but the sign-in flow
		// cannot work: say so instead of leaving a puzzling error page.
		cfg.Logger.Warn("no redirect URI configured (-redirect-uri or MOCKCLERK_REDIRECT_URI): every authorization request will be refused")
	}
	srv, err := mockclerk.Listen(*addr, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "mockclerk:", err)
		return 1
	}
	eff := srv.Config()
	// The Backend API key is printed too: when generated, this line is the
	// only place a caller can learn it.
	fmt.Fprintf(stdout, "mockclerk listening on %s (issuer %s, client_id %s, client_secret %s, Backend API key %s, webhook secret %s, token format %s, %d users; test data, not secrets)\n",
		srv.Addr(), srv.URL, eff.ClientID, eff.ClientSecret, eff.SecretKey, eff.WebhookSecret, eff.TokenFormat, len(eff.Users))
	if ready != nil {
		ready(srv)
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		_ = srv.Close()
	}
	return 0
}

func readUsers(path string) ([]mockclerk.User, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("users file: %v", err)
	}
	var users []mockclerk.User
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&users); err != nil {
		return nil, fmt.Errorf("users file %s: not a JSON array of users: %v", path, err)
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("users file %s has no users", path)
	}
	return users, nil
}

// healthcheck asks the fake's discovery document.
func healthcheck(addr string, stderr io.Writer) int {
	if err := httpx.ProbeLocal(addr, "/.well-known/openid-configuration", 3*time.Second); err != nil {
		fmt.Fprintln(stderr, "healthcheck:", err)
		return 1
	}
	return 0
}

func nonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
