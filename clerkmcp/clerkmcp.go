// Package clerkmcp is the public API of clerk-mcp-proxy: with it a Go program
// outside this module builds the whole server — the OAuth 2.1 authorization
// server in front of Clerk, the token verifier, the protected MCP endpoint at
// /mcp and the operational endpoints — adds its own MCP tools with mcp-go's
// API, and reads the signed-in user inside them:
//
//	cfg, err := clerkmcp.FromEnv() // the variables `clerk-mcp-proxy serve` reads
//	srv, err := clerkmcp.New(ctx, cfg, clerkmcp.Options{})
//	srv.MCPServer().AddTool(mcp.NewTool("whoami"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
//		id, _ := clerkmcp.IdentityFrom(ctx)
//		return mcp.NewToolResultText("hello " + id.UserID), nil
//	})
//	err = srv.ListenAndServe(ctx)
//
// Run does all of that (environment, build, serve until SIGTERM) around a
// function that adds the tools. A tool needs a signed-in user unless a Rule
// says more (scopes, a Clerk organisation role or permission) or less
// (Public); attach rules with AddTool, SetToolRule or Options.Rules.
//
// This package (with package mcpserver/toolpolicy, whose Rule it
// re-exports), the store interfaces (package store and its redisstore and
// memstore backends) and mcp-go's types are the public surface. Everything
// under internal/ — and the exported names of proxy, verifier and mcpserver,
// whose signatures use internal types — may change without notice.
package clerkmcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/app"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/config"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/mcpserver"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/mcpserver/toolpolicy"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store/redisstore"
)

// Config is the server's configuration: the fields `clerk-mcp-proxy serve`
// fills from its environment variables (README: Configuration). Build one
// with FromEnv or LoadEnv, then adjust fields as needed.
type Config = config.Config

// FromEnv reads the configuration from the process environment, exactly as
// `clerk-mcp-proxy serve` does, and reports every problem at once.
func FromEnv() (Config, error) { return LoadEnv(os.Getenv) }

// LoadEnv reads the configuration from getenv (for tests, or another source
// of variables).
func LoadEnv(getenv func(string) string) (Config, error) {
	return config.Load(getenv, config.ModeServe)
}

// Options are the parts a caller may supply instead of the defaults.
type Options struct {
	// Store holds all state. Nil connects to Config.RedisURL; a store the
	// caller passes stays the caller's to close.
	Store store.Store
	// Logger receives structured logs; nil logs JSON to stderr at
	// Config.LogLevel.
	Logger *slog.Logger
	// LogDropped, when the Logger writes through an asynchronous writer
	// that may drop lines (internal/asynclog, as the serve command's),
	// counts them; /metrics exports it as log_lines_dropped_total.
	LogDropped func() uint64
	// NoDemoTools leaves out the three demonstration tools (get-user-info,
	// get-clerk-user-profile, get-user-greeting) that `clerk-mcp-proxy
	// serve` offers, for a program that serves only its own.
	NoDemoTools bool
	// Rules are per-tool requirements, by tool name, on top of those of
	// the environment (TOOL_SCOPES, TOOL_ROLES, TOOL_PERMISSIONS,
	// PUBLIC_TOOLS). Scopes named here join the scopes the authorization
	// server offers, which SetToolRule cannot add later.
	Rules map[string]Rule
}

// Rule is what a caller needs to see and call one tool: scopes (a missing
// one is answered with a 403 step-up challenge), a Clerk organisation role
// (any of OrgRoles, e.g. "org:admin") and permissions (all of
// OrgPermissions, e.g. "org:mcp:write") in the user's active organisation
// (lacking them, the tool is hidden from tools/list and a call is a JSON-RPC
// error), or Public: callable without signing in. The zero Rule is "any
// signed-in user". Organisation rules need CLERK_SECRET_KEY (roles come
// from Clerk's Backend API) and the user:org:read scope in CLERK_SCOPES.
type Rule = toolpolicy.Rule

// Server is one assembled clerk-mcp-proxy.
type Server struct {
	app     *app.App
	ownedSt store.Store // closed by Close
	log     *slog.Logger
	// orgWarned: the settings organisation rules need were checked (and
	// any lack logged) once.
	orgWarned sync.Once
}

// New assembles a server from cfg. It connects to Redis (unless Options
// gives a store), loads the shared signing keys and discovers Clerk; it does
// not listen yet.
func New(ctx context.Context, cfg Config, o Options) (*Server, error) {
	if problems := cfg.Validate(); len(problems) > 0 {
		return nil, problems
	}
	if o.Logger == nil {
		o.Logger = app.NewLogger(cfg, os.Stderr, "json")
	}
	s := &Server{}
	// Scopes of code rules must be known to the authorization server (it
	// refuses to grant scopes it does not offer), which is built now.
	cfg.ToolScopes = maps.Clone(cfg.ToolScopes)
	if cfg.ToolScopes == nil {
		cfg.ToolScopes = map[string][]string{}
	}
	for tool, r := range o.Rules {
		for _, sc := range r.Scopes {
			if !slices.Contains(cfg.ToolScopes[tool], sc) {
				cfg.ToolScopes[tool] = append(cfg.ToolScopes[tool], sc)
			}
		}
	}
	st := o.Store
	if st == nil {
		if cfg.RedisURL == "" {
			return nil, errors.New("clerkmcp: no store: set REDIS_URL (Config.RedisURL) or Options.Store")
		}
		rs, err := redisstore.New(ctx, cfg.RedisOptions())
		if err != nil {
			return nil, err
		}
		st, s.ownedSt = rs, rs
	}
	a, err := app.New(ctx, cfg, app.Options{Store: st, Logger: o.Logger, LogDropped: o.LogDropped, NoDemoTools: o.NoDemoTools})
	if err != nil {
		if s.ownedSt != nil {
			_ = s.ownedSt.Close()
		}
		return nil, err
	}
	s.app, s.log = a, o.Logger
	if len(cfg.ToolRoles) > 0 || len(cfg.ToolPermissions) > 0 {
		s.orgWarned.Do(func() {}) // app.New logged cfg.Warnings(), these included
	}
	for tool, r := range o.Rules {
		a.MCP.Policy().Merge(tool, r)
		s.checkOrgSettings(r)
	}
	return s, nil
}

// checkOrgSettings logs, once, what the configuration lacks for
// organisation rules to let anyone through (config.OrgRuleWarnings).
func (s *Server) checkOrgSettings(r Rule) {
	if !r.NeedsOrg() {
		return
	}
	s.orgWarned.Do(func() {
		for _, w := range s.app.Config.OrgRuleWarnings() {
			s.log.Warn(w)
		}
	})
}

// SetToolRule sets the requirements of one tool (replacing those from the
// environment or Options.Rules); it applies to the next request, so it may
// be called while serving. It fails for a scope the authorization server
// does not offer: name such scopes in Options.Rules, TOOL_SCOPES or
// SCOPES_SUPPORTED instead.
func (s *Server) SetToolRule(tool string, r Rule) error {
	offered := s.app.Config.AllScopes()
	for _, sc := range r.Scopes {
		if !slices.Contains(offered, sc) {
			return fmt.Errorf("clerkmcp: tool %q: scope %q is not offered by the authorization server; name it in Options.Rules, TOOL_SCOPES or SCOPES_SUPPORTED", tool, sc)
		}
	}
	s.app.MCP.Policy().Set(tool, r)
	s.checkOrgSettings(r)
	return nil
}

// AddTool registers a tool with its rule: the rule is in place before the
// tool can be listed or called.
func (s *Server) AddTool(tool mcp.Tool, handler server.ToolHandlerFunc, r Rule) error {
	if err := s.SetToolRule(tool.Name, r); err != nil {
		return err
	}
	s.MCPServer().AddTool(tool, handler)
	return nil
}

// ErrNotSignedIn is returned by calls that act as the signed-in user outside
// a verified request.
var ErrNotSignedIn = errors.New("clerkmcp: no signed-in user in this context")

// ClerkUserInfo calls Clerk's OpenID userinfo endpoint as the user of the
// request ctx belongs to (with their live Clerk access token) and returns
// Clerk's claims as they came: sub, email, name, picture, public_metadata,
// org_id, ... depending on the scopes granted.
func (s *Server) ClerkUserInfo(ctx context.Context) (map[string]any, error) {
	id, ok := mcpserver.IdentityFrom(ctx)
	if !ok || id.ClerkToken == "" {
		return nil, ErrNotSignedIn
	}
	ui, err := s.app.Clerk.UserInfo(ctx, id.ClerkToken)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(ui)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	return out, json.Unmarshal(raw, &out)
}

// MCPServer is the mcp-go server behind /mcp. Add tools, resources and
// prompts to it with mcp-go's API; their handlers run only for verified
// requests and find the user with IdentityFrom. The built-in tools
// (get-user-info, get-clerk-user-profile, get-user-greeting) are already
// there unless Options.NoDemoTools. A tool added here needs only a signed-in
// user unless a rule says otherwise (AddTool, SetToolRule). A handler that
// panics fails that one call with a JSON-RPC error.
func (s *Server) MCPServer() *server.MCPServer { return s.app.MCP.MCPServer() }

// Handler serves every endpoint (the OAuth endpoints, /mcp, /healthz,
// /readyz, /metrics), for mounting in a server of the caller's.
func (s *Server) Handler() http.Handler { return s.app.Handler }

// Serve serves on l until ctx ends, then drains in-flight requests for
// Config.ShutdownTimeout, with the product's connection timeouts.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	s.app.LogServing()
	err := s.app.Serve(ctx, l, s.app.Config.ShutdownTimeout)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// ListenAndServe listens on Config.ListenAddr and serves until ctx ends.
func (s *Server) ListenAndServe(ctx context.Context) error {
	l, err := net.Listen("tcp", s.app.Config.ListenAddr)
	if err != nil {
		return err
	}
	return s.Serve(ctx, l)
}

// Run is the whole main function of a program built on this package: it
// reads the environment (FromEnv), builds the server with o, lets add
// register the program's tools, and serves on LISTEN_ADDR until ctx ends or
// the process gets SIGINT or SIGTERM, then drains in-flight requests.
func Run(ctx context.Context, o Options, add func(*Server) error) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := FromEnv()
	if err != nil {
		return err
	}
	srv, err := New(ctx, cfg, o)
	if err != nil {
		return err
	}
	defer srv.Close()
	if add != nil {
		if err := add(srv); err != nil {
			return err
		}
	}
	return srv.ListenAndServe(ctx)
}

// Close releases the store New connected to.
func (s *Server) Close() error {
	if s.ownedSt != nil {
		return s.ownedSt.Close()
	}
	return nil
}

// Identity is the signed-in user of a request, as verified: the proxy's own
// token, the live grant behind it and Clerk's introspection of its token,
// enriched with Clerk's userinfo when that answered.
type Identity struct {
	UserID   string   // Clerk user id (sub)
	ClientID string   // the MCP client the user authorized
	Scopes   []string // scopes granted to that client

	Email         string
	EmailVerified bool
	Name          string
	Picture       string
	Username      string
	OrgID         string
	OrgName       string
	OrgSlug       string
	// OrgRole and OrgPermissions are the user's role (e.g. "org:admin") and
	// permissions in the active organisation (OrgID), from Clerk's Backend
	// API; empty without CLERK_SECRET_KEY or when Clerk did not answer.
	OrgRole        string
	OrgPermissions []string
	// Enriched says whether Clerk's userinfo answered for this request; when
	// it did not, only the fields above that come from the token are set.
	Enriched bool

	// ClerkAccessToken is the user's live Clerk access token, for calling
	// Clerk as the user. Never log it or return it to a client; it is never
	// the token the MCP client holds.
	ClerkAccessToken string
}

// IdentityFrom returns the verified identity of the request a tool, resource
// or prompt handler is serving; false outside a verified request.
func IdentityFrom(ctx context.Context) (Identity, bool) {
	id, ok := mcpserver.IdentityFrom(ctx)
	if !ok {
		return Identity{}, false
	}
	return Identity{
		UserID: id.UserID, ClientID: id.ClientID, Scopes: append([]string(nil), id.Scopes...),
		Email: id.Email, EmailVerified: id.EmailVerified, Name: id.Name, Picture: id.Picture, Username: id.Username,
		OrgID: id.OrgID, OrgName: id.OrgName, OrgSlug: id.OrgSlug, Enriched: id.Enriched,
		OrgRole: id.OrgRole, OrgPermissions: slices.Clone(id.OrgPermissions),
		ClerkAccessToken: id.ClerkToken,
	}, true
}
