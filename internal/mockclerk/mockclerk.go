// Package mockclerk is a fake of Clerk's Frontend API (the OAuth 2.0 / OIDC
// authorization server) and of the parts of its Backend API the proxy uses,
// faithful to Clerk's observed wire behaviour, which this package's tests
// pin (mockclerk_test.go, malformed_test.go): discovery split as Clerk
// splits it, lowercase "bearer", the minimal introspection answer, Clerk's
// error envelope, opaque "oat_" or RS256 JWT access tokens. It serves a plain HTML sign-in form over seeded users and a
// test-only admin API (/__admin/stats, /__admin/faults, /__admin/reset,
// /__admin/webhooks) to count calls, inject latency, errors and timeouts, and
// send Svix-signed webhooks as Clerk does.
//
// The dev mode of clerk-mcp-proxy, the Go tests and the standalone
// cmd/mockclerk binary all run this one engine.
package mockclerk

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/svix"
)

// Config configures the fake Clerk instance and its one OAuth application.
type Config struct {
	Issuer         string // public origin; default "http://" + listen address
	ClientID       string // the confidential OAuth application
	ClientSecret   string
	RedirectURIs   []string      // matched exactly
	SecretKey      string        // Backend API key; generated ("sk_test_…") when empty
	AccessTokenTTL time.Duration // default 24h (Clerk's expires_in 86400)
	TokenFormat    string        // "jwt" (default, as new Clerk apps: RS256, typ at+jwt) or "opaque" ("oat_…")
	Users          []User        // seeded users; DefaultUsers() when empty
	DCR            bool          // serve /oauth/register (422 when off, as Clerk)
	WebhookSecret  string        // whsec_… signing webhooks sent from /__admin/webhooks; generated when empty
	Logger         *slog.Logger  // nil discards
	Now            func() time.Time
}

// User is a seeded Clerk user.
type User struct {
	ID        string `json:"id"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Email     string `json:"email"`
	Username  string `json:"username,omitempty"`
	ImageURL  string `json:"image_url,omitempty"`
	Org       *Org   `json:"org,omitempty"`
}

// Org is the organization a user's tokens are tied to.
type Org struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Slug        string   `json:"slug"`
	Role        string   `json:"role"`
	Permissions []string `json:"permissions,omitempty"`
}

// Name is the user's display name.
func (u User) Name() string { return strings.TrimSpace(u.FirstName + " " + u.LastName) }

// metadata is the user's public, private and unsafe metadata: one source for
// the Backend API user and the userinfo / ID-token claims, which at Clerk
// show the same values.
func (u User) metadata() (public, private, unsafe map[string]any) {
	return map[string]any{"plan": "pro"}, map[string]any{"internal": true}, map[string]any{}
}

// DefaultUsers is the seeded set used when Config.Users is empty; the first
// user belongs to an organization as an admin.
func DefaultUsers() []User {
	return []User{
		{ID: "user_2aliceExampleSeededUser0001", FirstName: "Alice", LastName: "Example", Email: "alice@example.com", Username: "alice",
			ImageURL: "https://img.clerk.com/alice.png",
			Org: &Org{ID: "org_2acmeExampleSeededOrg00001", Name: "Acme Inc", Slug: "acme", Role: "org:admin",
				Permissions: []string{"org:sys_memberships:manage", "org:sys_profile:manage", "org:mcp:use"}}},
		{ID: "user_2bobExampleSeededUser00002", FirstName: "Bob", LastName: "Builder", Email: "bob@example.com", Username: "bob",
			ImageURL: "https://img.clerk.com/bob.png"},
		{ID: "user_2carolExampleSeededUser003", FirstName: "Carol", LastName: "Danvers", Email: "carol@example.org", Username: "carol",
			ImageURL: "https://img.clerk.com/carol.png",
			Org: &Org{ID: "org_2acmeExampleSeededOrg00001", Name: "Acme Inc", Slug: "acme", Role: "org:member",
				Permissions: []string{"org:mcp:use"}}},
	}
}

// Validate lists every problem with c at once.
func (c Config) Validate() error {
	var problems []string
	if c.ClientID == "" {
		problems = append(problems, "client id is required")
	}
	if c.ClientSecret == "" {
		problems = append(problems, "client secret is required")
	}
	if c.Issuer != "" {
		u, err := url.Parse(c.Issuer)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			problems = append(problems, fmt.Sprintf("issuer %q must be an http(s) origin", c.Issuer))
		}
	}
	for _, r := range c.RedirectURIs {
		if u, err := url.Parse(r); err != nil || u.Scheme == "" || u.Host == "" || u.Fragment != "" {
			problems = append(problems, fmt.Sprintf("redirect URI %q must be an absolute URI without fragment", r))
		}
	}
	if c.WebhookSecret != "" {
		if _, err := svix.ParseSecret(c.WebhookSecret); err != nil {
			problems = append(problems, err.Error())
		}
	}
	switch c.TokenFormat {
	case "", "opaque", "jwt":
	default:
		problems = append(problems, fmt.Sprintf("token format %q must be opaque or jwt", c.TokenFormat))
	}
	if c.AccessTokenTTL < 0 {
		problems = append(problems, "access token TTL must not be negative")
	}
	ids := map[string]bool{}
	for i, u := range c.Users {
		if !strings.HasPrefix(u.ID, "user_") || u.Email == "" {
			problems = append(problems, fmt.Sprintf("user %d needs an id starting user_ and an email", i+1))
		}
		if ids[u.ID] {
			problems = append(problems, fmt.Sprintf("user id %s is seeded twice", u.ID))
		}
		ids[u.ID] = true
	}
	if len(problems) > 0 {
		return errors.New("mockclerk: " + strings.Join(problems, "; "))
	}
	return nil
}

// Server is the fake Clerk as an http.Handler.
type Server struct {
	cfg Config
	log *slog.Logger
	key *rsa.PrivateKey
	kid string
	mux *http.ServeMux
	mu  sync.Mutex
	st  state
	faults
}

// state is everything issued; guarded by Server.mu.
type state struct {
	pending map[string]authRequest // sign-in form id -> request
	codes   map[string]*codeGrant
	access  map[string]*tokenRecord // token (or JWT jti) -> record
	refresh map[string]*tokenRecord
	clients map[string]dcrClient
	stats   map[string]int
	// sessions are the team app's Clerk sessions (teamapp.go).
	sessions map[string]*clerkSession
}

// New builds the engine; cfg.Issuer must be set (Listen sets it).
func New(cfg Config) (*Server, error) {
	if cfg.SecretKey == "" {
		cfg.SecretKey = "sk_test_" + randomToken(24)
	}
	if cfg.AccessTokenTTL == 0 {
		cfg.AccessTokenTTL = 24 * time.Hour
	}
	if cfg.WebhookSecret == "" {
		cfg.WebhookSecret = defaultWebhookSecret()
	}
	if cfg.TokenFormat == "" {
		// New Clerk OAuth applications issue JWT access tokens (2026).
		cfg.TokenFormat = "jwt"
	}
	if len(cfg.Users) == 0 {
		cfg.Users = DefaultUsers()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cfg.Issuer = strings.TrimSuffix(cfg.Issuer, "/")
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Issuer == "" {
		return nil, errors.New("mockclerk: issuer is required")
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, key: key, kid: "ins_" + randomAlnum(27), faults: faults{hang: hangLimit}}
	s.resetState()
	s.routes()
	return s, nil
}

func (s *Server) resetState() {
	s.st = state{pending: map[string]authRequest{}, codes: map[string]*codeGrant{}, access: map[string]*tokenRecord{},
		refresh: map[string]*tokenRecord{}, clients: map[string]dcrClient{}, stats: map[string]int{},
		sessions: map[string]*clerkSession{}}
}

// ServeHTTP counts the call, applies faults, then serves it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Frame-Options", "DENY")
	if strings.HasPrefix(r.URL.Path, "/__admin/") {
		s.mux.ServeHTTP(w, r)
		return
	}
	s.mu.Lock()
	s.st.stats[r.URL.Path]++
	f, ok := s.takeFault(r.URL.Path)
	s.mu.Unlock()
	if ok && !s.applyFault(w, r, f) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	s.mux.ServeHTTP(w, r)
}

// Config is the effective configuration (defaults filled in).
func (s *Server) Config() Config { return s.cfg }

// Users are the seeded users.
func (s *Server) Users() []User { return append([]User(nil), s.cfg.Users...) }

// Stats returns the request count per path.
func (s *Server) Stats() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.st.stats))
	for k, v := range s.st.stats {
		out[k] = v
	}
	return out
}

// Reset zeroes the stats and clears faults. Issued tokens survive, so a test
// can count the calls of one phase.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.stats = map[string]int{}
	s.faults.list = nil
}

// RevokeUser revokes every access and refresh token of the user, as signing
// the user out of every session at Clerk would.
func (s *Server) RevokeUser(userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range []map[string]*tokenRecord{s.st.access, s.st.refresh} {
		for _, t := range m {
			if t.UserID == userID {
				t.Revoked = true
			}
		}
	}
	for _, sess := range s.st.sessions {
		if sess.UserID == userID {
			sess.Status = "revoked"
		}
	}
}

func (s *Server) user(id string) (User, bool) {
	for _, u := range s.cfg.Users {
		if u.ID == id {
			return u, true
		}
	}
	return User{}, false
}

// Running is a fake Clerk listening on a TCP address.
type Running struct {
	*Server
	URL string
	srv *http.Server
	l   net.Listener
}

// Listen starts the fake on addr ("127.0.0.1:0" picks a free port). The
// issuer defaults to http://<the bound address> (loopback when the host is
// unspecified).
func Listen(addr string, cfg Config) (*Running, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if cfg.Issuer == "" {
		cfg.Issuer = defaultIssuer(l.Addr())
	}
	s, err := New(cfg)
	if err != nil {
		l.Close()
		return nil, err
	}
	r := &Running{Server: s, URL: s.cfg.Issuer, l: l,
		srv: &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}}
	go func() { _ = r.srv.Serve(l) }()
	return r, nil
}

// defaultIssuer is http://<the bound address>, with loopback for an
// unspecified host: "http://0.0.0.0:9400" or "http://[::]:9400" is no origin
// a browser or an issuer check can use.
func defaultIssuer(a net.Addr) string {
	addr := a.String()
	if t, ok := a.(*net.TCPAddr); ok && t.IP.IsUnspecified() {
		addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(t.Port))
	}
	return "http://" + addr
}

// Addr is the bound address.
func (r *Running) Addr() string { return r.l.Addr().String() }

// Close stops the server at once.
func (r *Running) Close() error { return r.srv.Close() }

// Shutdown stops the server gracefully.
func (r *Running) Shutdown(ctx context.Context) error {
	return r.srv.Shutdown(ctx)
}
