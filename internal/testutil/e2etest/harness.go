// Package e2etest starts the whole product for end-to-end tests: a real
// redis-server, the fake Clerk as an HTTP server and the proxy as an HTTP
// server (assembled by internal/app exactly as the binary does), and gives a
// test an OAuth client that registers, signs in through a headless browser and
// calls the MCP endpoint. Tests in several packages share it.
package e2etest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/app"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/config"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mockclerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/syncbuf"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testredis"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store/redisstore"
)

// Fixed credentials of the fake Clerk application used in tests.
const (
	ClerkClientID     = "e2eClerkClient01"
	ClerkClientSecret = "e2e-clerk-secret-value-0123456789"
	ClerkSecretKey    = "sk_test_e2e_backend_key_0123456789"
	ProxySecret       = "e2e-proxy-secret-0123456789abcdef0123456789"
)

// ClerkURLVar in an Options.Env value is replaced by the fake Clerk's URL.
const ClerkURLVar = "{{CLERK_URL}}"

// Options adjust one environment.
type Options struct {
	Env   map[string]string // extra proxy environment
	Clerk func(*mockclerk.Config)
	Now   func() time.Time
	// Redis is the server to use; nil means the test binary's shared one
	// (testredis.Shared: the package's TestMain runs testredis.RunMain). A
	// test that stops or flushes Redis passes one of its own
	// (testredis.Start); replicas pass the same one.
	Redis *testredis.Server
	// RedisURL, when set, is used instead of Redis (e.g. a Cluster or a
	// Sentinel setup); Env.Redis is then nil.
	RedisURL   string
	Prefix     string // share a store prefix between environments (replicas)
	CIMDClient *http.Client
	// ClerkHTTPClient, when set, is the proxy's client for calls to Clerk
	// (tests wrap its transport to see what Clerk really returned, e.g. to
	// prove Clerk's tokens never reach Redis or the logs).
	ClerkHTTPClient *http.Client
	// LogTo, when set, receives the proxy's log as the binary writes it
	// (JSON at LOG_LEVEL, the access log included) instead of Env.Logs at
	// debug level: benchmarks measure what users run.
	LogTo io.Writer
}

// Env is a running proxy + fake Clerk + Redis.
type Env struct {
	T       testing.TB
	BaseURL string
	Clerk   *mockclerk.Running
	Redis   *testredis.Server
	App     *app.App
	Logs    *SyncBuffer
	Prefix  string
	// HTTP, when set, is the client every request of the Env's helpers goes
	// through, the browser's included (its Transport); tests set one to see
	// or check every exchange. It must not follow redirects.
	HTTP   *http.Client
	cancel context.CancelFunc
	done   chan struct{}
	served error // what App.Serve returned, once done is closed
}

// SyncBuffer collects log output from concurrent writers.
type SyncBuffer = syncbuf.Buffer

// Start brings an environment up; it is torn down at test cleanup.
func Start(t testing.TB, o Options) *Env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rs, redisURL := o.Redis, o.RedisURL
	if redisURL == "" {
		if rs == nil {
			rs = testredis.Shared(t)
		}
		redisURL = rs.URL
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + l.Addr().String()
	ccfg := mockclerk.Config{
		ClientID: ClerkClientID, ClientSecret: ClerkClientSecret, SecretKey: ClerkSecretKey,
		RedirectURIs: []string{base + "/oauth/callback"},
	}
	if o.Clerk != nil {
		o.Clerk(&ccfg)
	}
	ck, err := mockclerk.Listen("127.0.0.1:0", ccfg)
	if err != nil {
		t.Fatal(err)
	}
	prefix := o.Prefix
	if prefix == "" {
		prefix = fmt.Sprintf("e2e%d:", time.Now().UnixNano())
	}
	envMap := map[string]string{
		"CLERK_DOMAIN": ck.URL, "CLERK_API_URL": ck.URL, "CLERK_CLIENT_ID": ClerkClientID,
		"CLERK_CLIENT_SECRET": ClerkClientSecret, "CLERK_SECRET_KEY": ClerkSecretKey,
		"BASE_URL": base, "REDIS_URL": redisURL, "REDIS_PREFIX": prefix, "PROXY_SECRET": ProxySecret,
		"LOG_LEVEL": "debug", "CLERK_SCOPES": "openid profile email offline_access user:org:read", "RATE_LIMIT_REGISTER": "0", "RATE_LIMIT_TOKEN": "0", "RATE_LIMIT_AUTHORIZE": "0",
	}
	for k, v := range o.Env {
		// ClerkURLVar stands for the fake Clerk's URL, known only now
		// (APP_URL of app mode is the fake's team app).
		envMap[k] = strings.ReplaceAll(v, ClerkURLVar, ck.URL)
	}
	cfg, err := config.Load(func(k string) string { return envMap[k] }, config.ModeServe)
	if err != nil {
		t.Fatal(err)
	}
	st, err := redisstore.New(ctx, cfg.RedisOptions())
	if err != nil {
		t.Fatal(err)
	}
	logs := &SyncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if o.LogTo != nil {
		log = app.NewLogger(cfg, o.LogTo, "json")
	}
	a, err := app.New(ctx, cfg, app.Options{Store: st, Logger: log, Now: o.Now, CIMDClient: o.CIMDClient, HTTPClient: o.ClerkHTTPClient})
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{T: t, BaseURL: base, Clerk: ck, Redis: rs, App: a, Logs: logs, Prefix: prefix, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(e.done)
		e.served = a.Serve(ctx, l, 5*time.Second)
	}()
	t.Cleanup(func() {
		cancel()
		<-e.done
		_ = st.Close()
		_ = ck.Close()
	})
	return e
}

// Stop shuts the proxy down as SIGTERM does (drain for at most 5 s) and
// returns what App.Serve returned. Safe to call more than once.
func (e *Env) Stop() error {
	e.cancel()
	<-e.done
	return e.served
}

// Client is an MCP client's OAuth state.
type Client struct {
	ID, Secret  string
	AuthMethod  string // token_endpoint_auth_method
	RedirectURI string
	// RFC 7592 management of the registration.
	RegistrationURI, RegistrationToken string
	AccessToken                        string
	RefreshToken                       string
	Scope                              string
}

// noRedirect is the default client: it never follows redirects.
var noRedirect = &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (e *Env) client() *http.Client {
	if e.HTTP != nil {
		return e.HTTP
	}
	return noRedirect
}

// ClientOptions shape a registration; the zero value is a public client
// redirecting to http://127.0.0.1:7777/callback.
type ClientOptions struct {
	Name         string
	RedirectURIs []string
	AuthMethod   string // token_endpoint_auth_method; default none
	// ApplicationType is sent as application_type when set (SEP-837).
	ApplicationType string
}

// Register runs RFC 7591 DCR for a public client.
func (e *Env) Register(redirectURIs ...string) *Client {
	e.T.Helper()
	return e.RegisterClient(ClientOptions{RedirectURIs: redirectURIs})
}

// RegisterClient runs RFC 7591 DCR with o.
func (e *Env) RegisterClient(o ClientOptions) *Client {
	e.T.Helper()
	c, err := e.TryRegisterClient(o)
	if err != nil {
		e.T.Fatal(err)
	}
	return c
}

// TryRegister is Register returning its failure (for retries, and for
// goroutines other than the test's).
func (e *Env) TryRegister(redirectURIs ...string) (*Client, error) {
	return e.TryRegisterClient(ClientOptions{RedirectURIs: redirectURIs})
}

// TryRegisterClient is RegisterClient returning its failure.
func (e *Env) TryRegisterClient(o ClientOptions) (*Client, error) {
	if len(o.RedirectURIs) == 0 {
		o.RedirectURIs = []string{"http://127.0.0.1:7777/callback"}
	}
	if o.AuthMethod == "" {
		o.AuthMethod = "none"
	}
	if o.Name == "" {
		o.Name = "e2e client"
	}
	meta := map[string]any{
		"client_name": o.Name, "redirect_uris": o.RedirectURIs, "token_endpoint_auth_method": o.AuthMethod,
		"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
	}
	if o.ApplicationType != "" {
		meta["application_type"] = o.ApplicationType
	}
	body, _ := json.Marshal(meta)
	req, _ := http.NewRequest(http.MethodPost, e.BaseURL+"/register", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.client().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		ClientID          string `json:"client_id"`
		Secret            string `json:"client_secret"`
		RegistrationURI   string `json:"registration_client_uri"`
		RegistrationToken string `json:"registration_access_token"`
	}
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&out) != nil ||
		out.RegistrationToken == "" || (o.AuthMethod != "none") != (out.Secret != "") {
		return nil, fmt.Errorf("register: status %d", resp.StatusCode)
	}
	return &Client{ID: out.ClientID, Secret: out.Secret, AuthMethod: o.AuthMethod, RedirectURI: o.RedirectURIs[0],
		RegistrationURI: out.RegistrationURI, RegistrationToken: out.RegistrationToken}, nil
}

// PKCE is a verifier and its S256 challenge.
type PKCE struct{ Verifier, Challenge string }

// NewPKCE makes a fresh PKCE pair.
func NewPKCE() PKCE {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	v := base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(v))
	return PKCE{Verifier: v, Challenge: base64.RawURLEncoding.EncodeToString(sum[:])}
}

// AuthorizeURL builds an authorization request.
func (e *Env) AuthorizeURL(c *Client, p PKCE, state string, extra url.Values) string {
	q := url.Values{"response_type": {"code"}, "client_id": {c.ID}, "redirect_uri": {c.RedirectURI},
		"code_challenge": {p.Challenge}, "code_challenge_method": {"S256"}, "state": {state},
		"resource": {e.BaseURL + "/mcp"}}
	for k, v := range extra {
		q[k] = v
	}
	return e.BaseURL + "/authorize?" + q.Encode()
}

// SignIn walks a browser from /authorize to the client's redirect and
// returns the code.
func (e *Env) SignIn(c *Client, p PKCE, choices testflow.Choices) string {
	e.T.Helper()
	code, err := e.TrySignIn(c, p, choices)
	if err != nil {
		e.T.Fatal(err)
	}
	return code
}

// TrySignIn is SignIn returning its failure.
func (e *Env) TrySignIn(c *Client, p PKCE, choices testflow.Choices) (string, error) {
	q, err := e.TryAuthorize(c, p, choices)
	if err != nil {
		return "", err
	}
	if q.Get("state") != "state-12345678" || q.Get("iss") != e.BaseURL || q.Get("code") == "" {
		return "", fmt.Errorf("bad authorization response %v", q)
	}
	return q.Get("code"), nil
}

// Authorize walks a browser from /authorize to the client's redirect and
// returns the authorization response, a code or an error.
func (e *Env) Authorize(c *Client, p PKCE, choices testflow.Choices) url.Values {
	e.T.Helper()
	q, err := e.TryAuthorize(c, p, choices)
	if err != nil {
		e.T.Fatal(err)
	}
	return q
}

// TryAuthorize is Authorize returning its failure.
func (e *Env) TryAuthorize(c *Client, p PKCE, choices testflow.Choices) (url.Values, error) {
	b := testflow.NewBrowser()
	if e.HTTP != nil && e.HTTP.Transport != nil {
		b.HTTP.Transport = e.HTTP.Transport
	}
	final, err := b.Authorize(context.Background(), e.AuthorizeURL(c, p, "state-12345678", nil), redirectPrefix(c.RedirectURI), choices)
	if err != nil {
		return nil, fmt.Errorf("sign-in: %w", err)
	}
	return final.Query(), nil
}

// redirectPrefix is the part of a redirect URI that identifies it whatever the
// query string appended.
func redirectPrefix(u string) string { return strings.SplitN(u, "?", 2)[0] }

// Token posts a token request as it is and decodes the JSON answer.
func (e *Env) Token(form url.Values) (int, map[string]any) {
	e.T.Helper()
	return e.PostForm("/token", form, nil)
}

// TryToken is Token returning a transport failure.
func (e *Env) TryToken(form url.Values) (int, map[string]any, error) {
	return e.TryPostForm("/token", form, nil)
}

// TokenAs posts a token request authenticated as c by its registered method.
func (e *Env) TokenAs(c *Client, form url.Values) (int, map[string]any) {
	e.T.Helper()
	return e.PostForm("/token", form, c)
}

// PostForm posts form to path, authenticated as c by its registered method
// (HTTP Basic, client_secret_post, or client_id alone; nil: form as it is),
// and decodes the JSON answer.
func (e *Env) PostForm(path string, form url.Values, c *Client) (int, map[string]any) {
	e.T.Helper()
	status, out, err := e.TryPostForm(path, form, c)
	if err != nil {
		e.T.Fatal(err)
	}
	return status, out
}

// TryPostForm is PostForm returning a transport failure.
func (e *Env) TryPostForm(path string, form url.Values, c *Client) (int, map[string]any, error) {
	form = maps.Clone(form)
	if form == nil {
		form = url.Values{}
	}
	req, _ := http.NewRequest(http.MethodPost, e.BaseURL+path, nil)
	switch {
	case c == nil:
	case c.AuthMethod == "client_secret_basic":
		// RFC 6749 §2.3.1: id and secret form-urlencoded first.
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	case c.AuthMethod == "client_secret_post":
		form.Set("client_id", c.ID)
		form.Set("client_secret", c.Secret)
	default:
		form.Set("client_id", c.ID)
	}
	body := form.Encode()
	req.Body, req.ContentLength = io.NopCloser(strings.NewReader(body)), int64(len(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := e.client().Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out := map[string]any{}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, nil
}

// Login runs the whole sign-in and code exchange, storing the tokens on c.
func (e *Env) Login(c *Client, choices testflow.Choices) {
	e.T.Helper()
	if err := e.TryLogin(c, choices); err != nil {
		e.T.Fatal(err)
	}
}

// TryLogin is Login returning its failure.
func (e *Env) TryLogin(c *Client, choices testflow.Choices) error {
	p := NewPKCE()
	code, err := e.TrySignIn(c, p, choices)
	if err != nil {
		return err
	}
	status, out, err := e.TryPostForm("/token", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {c.RedirectURI},
		"code_verifier": {p.Verifier}, "resource": {e.BaseURL + "/mcp"}}, c)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("token: %d %v", status, out)
	}
	c.AccessToken, _ = out["access_token"].(string)
	c.RefreshToken, _ = out["refresh_token"].(string)
	c.Scope, _ = out["scope"].(string)
	return nil
}

// Refresh runs the refresh grant with the given refresh token.
func (e *Env) Refresh(c *Client, refreshToken string) (int, map[string]any) {
	e.T.Helper()
	return e.TokenAs(c, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}})
}

// MCPResponse is one answer from /mcp.
type MCPResponse struct {
	Status    int
	Header    http.Header
	SessionID string
	Result    json.RawMessage
	Error     json.RawMessage
	Body      string
}

// MCP posts one JSON-RPC request to /mcp (streamable HTTP), reading a JSON or
// an SSE answer.
func (e *Env) MCP(token, session, method string, params any) MCPResponse {
	e.T.Helper()
	out, err := e.TryMCP(token, session, method, params)
	if err != nil {
		e.T.Fatal(err)
	}
	return out
}

// TryMCP is MCP returning a transport failure.
func (e *Env) TryMCP(token, session, method string, params any) (MCPResponse, error) {
	h := map[string]string{}
	if session != "" {
		h["Mcp-Session-Id"] = session
	}
	return e.TryMCPWithHeaders(token, h, method, params)
}

// TryMCPWithHeaders is TryMCP with extra request headers (they replace the
// defaults: MCP-Protocol-Version 2025-11-25, the JSON and SSE Accept).
func (e *Env) TryMCPWithHeaders(token string, header map[string]string, method string, params any) (MCPResponse, error) {
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	req, _ := http.NewRequest(http.MethodPost, e.BaseURL+"/mcp", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := e.client().Do(req)
	if err != nil {
		return MCPResponse{}, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := MCPResponse{Status: resp.StatusCode, Header: resp.Header, SessionID: resp.Header.Get("Mcp-Session-Id"), Body: string(raw)}
	payload := raw
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		payload = nil
		sc := bufio.NewScanner(bytes.NewReader(raw))
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "data:") {
				payload = []byte(strings.TrimSpace(strings.TrimPrefix(line, "data:")))
			}
		}
	}
	var rpc struct {
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if json.Unmarshal(payload, &rpc) == nil {
		out.Result, out.Error = rpc.Result, rpc.Error
	}
	return out, nil
}

// Initialize opens an MCP session and returns its id.
func (e *Env) Initialize(token string) string {
	e.T.Helper()
	r := e.MCP(token, "", "initialize", map[string]any{
		"protocolVersion": "2025-11-25", "capabilities": map[string]any{},
		"clientInfo": map[string]any{"name": "e2e", "version": "1"},
	})
	if r.Status != http.StatusOK || r.Result == nil {
		e.T.Fatalf("initialize: %d %s", r.Status, r.Body)
	}
	e.MCP(token, r.SessionID, "notifications/initialized", nil)
	return r.SessionID
}

// CallTool calls a tool and returns its structured content.
func (e *Env) CallTool(token, session, name string) (MCPResponse, map[string]any) {
	e.T.Helper()
	r := e.MCP(token, session, "tools/call", map[string]any{"name": name, "arguments": map[string]any{}})
	var res struct {
		Structured map[string]any `json:"structuredContent"`
		IsError    bool           `json:"isError"`
	}
	_ = json.Unmarshal(r.Result, &res)
	return r, res.Structured
}

// Attach is an Env for a server started some other way (e.g. through the
// public clerkmcp package): only its client helpers (Register, Login, MCP,
// CallTool, ...) are usable.
func Attach(t testing.TB, baseURL string) *Env {
	return &Env{T: t, BaseURL: baseURL}
}
