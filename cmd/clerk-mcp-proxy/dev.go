package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/app"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/config"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mockclerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store/memstore"
)

// Dev-mode credentials of the built-in fake Clerk's OAuth application. They
// are public test data, not secrets.
const (
	devClerkClientID     = "devclerkclient01"
	devClerkClientSecret = "dev-clerk-client-secret-not-a-real-secret"
)

// dev runs the whole product locally: the fake Clerk in-process, an in-memory
// store, a random PROXY_SECRET. Nothing to sign up for.
func dev(ctx context.Context, getenv config.Getenv, upstream string, stdout, stderr io.Writer) int {
	if upstream != "" {
		// The flag wins over the environment: it is what was just typed.
		getenv = overrideEnv(getenv, "UPSTREAM_MCP_URL", upstream)
	}
	env := envWith(getenv, map[string]string{
		"LISTEN_ADDR": "127.0.0.1:8080",
		"LOG_FORMAT":  "text",
		// The fake Clerk has Organizations on, so the tokens carry org_id.
		"CLERK_SCOPES": "openid profile email offline_access user:org:read",
	})
	cfg, err := config.Load(env, config.ModeDev)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	l, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		fmt.Fprintf(stderr, "dev: cannot listen on %s (set LISTEN_ADDR to another address): %v\n", cfg.ListenAddr, err)
		return 1
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = "http://" + l.Addr().String()
	}
	if len(cfg.Secret) == 0 {
		secret := make([]byte, 32)
		_, _ = rand.Read(secret)
		cfg.Secret = []byte(hex.EncodeToString(secret))
	}
	log := app.NewLogger(cfg, stderr, "text")

	clerkAddr := getenv("MOCKCLERK_ADDR")
	if clerkAddr == "" {
		clerkAddr = "127.0.0.1:9400"
	}
	// In clerk mode MCP clients register at the fake Clerk itself (DCR).
	fakeCfg := mockclerk.Config{
		ClientID: devClerkClientID, ClientSecret: devClerkClientSecret,
		RedirectURIs: []string{cfg.CallbackURL()}, Logger: log.With("component", "mockclerk"),
		DCR: cfg.AuthMode == config.AuthClerk,
	}
	fake, err := mockclerk.Listen(clerkAddr, fakeCfg)
	if err != nil && getenv("MOCKCLERK_ADDR") == "" {
		// The default port is taken: any free port will do.
		fake, err = mockclerk.Listen("127.0.0.1:0", fakeCfg)
	}
	if err != nil {
		fmt.Fprintln(stderr, "dev: cannot start the fake Clerk:", err)
		return 1
	}
	defer fake.Close()
	cfg.ClerkIssuer, cfg.ClerkClientID, cfg.ClerkClientSecret = fake.URL, devClerkClientID, devClerkClientSecret
	cfg.ClerkAPIURL = fake.URL
	if cfg.ClerkSecretKey == "" {
		cfg.ClerkSecretKey = fake.Config().SecretKey
	}
	if cfg.AuthMode == config.AuthApp && cfg.AppURL == "" {
		// The fake Clerk's team app stands in for the team's web app.
		cfg.AppURL = fake.URL + mockclerk.TeamAppPath
	}
	if problems := cfg.Validate(); len(problems) > 0 {
		fmt.Fprintln(stderr, problems)
		return 2
	}
	st := memstore.New(memstore.Options{})
	defer st.Close()
	a, err := app.New(ctx, cfg, app.Options{Store: st, Logger: log})
	if err != nil {
		fmt.Fprintln(stderr, "dev: start-up failed:", err)
		return 1
	}
	printDevBanner(stdout, cfg, fake)
	serve := func(ctx context.Context, l net.Listener) error { return a.Serve(ctx, l, cfg.ShutdownTimeout) }
	return serveUntilDone(ctx, serve, cfg.ShutdownTimeout, l, log)
}

// overrideEnv answers v for name whatever the environment says.
func overrideEnv(getenv config.Getenv, name, v string) config.Getenv {
	return func(k string) string {
		if k == name {
			return v
		}
		return getenv(k)
	}
}

func printDevBanner(w io.Writer, cfg config.Config, fake *mockclerk.Running) {
	var b strings.Builder
	fmt.Fprintf(&b, "\nclerk-mcp-proxy %s — dev mode (fake Clerk, in-memory store; nothing is persisted)\n\n", app.Version)
	fmt.Fprintf(&b, "  MCP server URL     %s\n", cfg.Resource())
	if cfg.UpstreamURL != "" {
		fmt.Fprintf(&b, "  Fronting           %s  (gateway mode: its tools, behind the sign-in)\n", cfg.UpstreamURL)
	}
	for _, u := range cfg.Upstreams() {
		fmt.Fprintf(&b, "  MCP server URL     %s  (fronting %s: its own resource and sign-in)\n", cfg.UpstreamResource(u.Path), u.URL)
	}
	if cfg.AuthMode == config.AuthClerk {
		fmt.Fprintf(&b, "  Mode               clerk: the fake Clerk is the authorization server (DCR on); /register, /authorize, /token here answer 404\n")
		fmt.Fprintf(&b, "  Authorization      %s/.well-known/oauth-authorization-server\n", fake.URL)
	} else {
		fmt.Fprintf(&b, "  Authorization      %s/.well-known/oauth-authorization-server\n", cfg.Issuer())
	}
	if cfg.AuthMode == config.AuthApp {
		fmt.Fprintf(&b, "  Mode               app: sign-in through the team app %s/auth/mcp (back to %s/callback)\n", cfg.AppURL, cfg.Issuer())
	}
	fmt.Fprintf(&b, "  Fake Clerk         %s\n", fake.URL)
	if cfg.TryPage {
		fmt.Fprintf(&b, "  Try it             %s/try  (an MCP client in your browser: sign in and call a tool)\n", cfg.Issuer())
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "Connect a client:\n")
	fmt.Fprintf(&b, "  Claude Code        claude mcp add --transport http clerk-dev %s\n", cfg.Resource())
	fmt.Fprintf(&b, "  MCP Inspector      npx @modelcontextprotocol/inspector  (transport: Streamable HTTP, URL above)\n")
	fmt.Fprintf(&b, "  VS Code / Cursor   add an HTTP MCP server with the URL above\n\n")
	fmt.Fprintf(&b, "Sign in on the fake Clerk page as one of the seeded users:\n")
	for _, u := range fake.Users() {
		org := ""
		if u.Org != nil {
			org = fmt.Sprintf("  (org %s, %s)", u.Org.Name, u.Org.Role)
		}
		fmt.Fprintf(&b, "  - %s %s <%s>  %s%s\n", u.FirstName, u.LastName, u.Email, u.ID, org)
	}
	if cfg.UpstreamURL != "" {
		fmt.Fprintf(&b, "\nTools: those of the upstream; it can verify who calls with the X-Clerk-MCP-Assertion header. Stop with Ctrl-C.\n\n")
	} else {
		fmt.Fprintf(&b, "\nTools: get-user-info, get-clerk-user-profile, get-user-greeting. Stop with Ctrl-C.\n\n")
	}
	_, _ = io.WriteString(w, b.String())
}

// devWithFlags is dev with its flags: --mode proxy|clerk|app picks AUTH_MODE
// and --upstream URL is UPSTREAM_MCP_URL (gateway mode); flags win over the
// environment. Both -flag and --flag, with "=" or a space, are accepted.
func devWithFlags(ctx context.Context, args []string, getenv config.Getenv, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // refusals are answered like every command's
	mode := fs.String("mode", "", "AUTH_MODE to run: proxy, clerk or app")
	upstream := fs.String("upstream", "", "the MCP server to front (gateway mode)")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unknown argument %q\n\n%s", strings.Join(args, " "), usage)
		return 2
	}
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "upstream" })
	if given && *upstream == "" {
		fmt.Fprintf(stderr, "dev: --upstream needs a URL\n\n%s", usage)
		return 2
	}
	if *mode != "" {
		getenv = overrideEnv(getenv, "AUTH_MODE", *mode)
	}
	return dev(ctx, getenv, *upstream, stdout, stderr)
}
