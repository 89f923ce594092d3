package e2etest

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/clerkmcp"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mockclerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testredis"
)

// Library is what a test of a program built on the public package (clerkmcp)
// needs before building it: a listener for the server, a fake Clerk (with a
// Backend API key and organisations, the default seeded users) and a Redis,
// and the environment naming them, as clerkmcp.LoadEnv reads it.
type Library struct {
	Listener net.Listener
	BaseURL  string
	Clerk    *mockclerk.Running
	Env      map[string]string
}

// Getenv reads l.Env (for clerkmcp.LoadEnv).
func (l *Library) Getenv(k string) string { return l.Env[k] }

// StartLibrary prepares a Library on rs (nil: the package's shared Redis,
// whose TestMain runs testredis.RunMain); extra overrides the environment.
// Everything is closed at test cleanup.
func StartLibrary(t testing.TB, rs *testredis.Server, extra map[string]string) *Library {
	t.Helper()
	if rs == nil {
		rs = testredis.Shared(t)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	base := "http://" + l.Addr().String()
	ck, err := mockclerk.Listen("127.0.0.1:0", mockclerk.Config{ClientID: ClerkClientID, ClientSecret: ClerkClientSecret,
		SecretKey: ClerkSecretKey, RedirectURIs: []string{base + "/oauth/callback"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ck.Close() })
	env := map[string]string{
		"CLERK_DOMAIN": ck.URL, "CLERK_API_URL": ck.URL, "CLERK_CLIENT_ID": ClerkClientID, "CLERK_CLIENT_SECRET": ClerkClientSecret,
		"CLERK_SECRET_KEY": ClerkSecretKey, "CLERK_SCOPES": "openid profile email offline_access user:org:read",
		"BASE_URL": base, "REDIS_URL": rs.URL, "REDIS_PREFIX": fmt.Sprintf("lib%d:", time.Now().UnixNano()), "PROXY_SECRET": ProxySecret, "LOG_LEVEL": "error",
		"RATE_LIMIT_REGISTER": "0", "RATE_LIMIT_TOKEN": "0", "RATE_LIMIT_AUTHORIZE": "0",
	}
	for k, v := range extra {
		env[k] = v
	}
	return &Library{Listener: l, BaseURL: base, Clerk: ck, Env: env}
}

// ServeLibrary builds a server through the public package only, as a
// program outside the module does — clerkmcp.LoadEnv of a StartLibrary
// environment, clerkmcp.New with o, then add to register its tools — and
// serves it until the test ends (Serve must then return cleanly). The Env
// has the client helpers (Register, Login, MCP, MCPClient, ...).
func ServeLibrary(t testing.TB, o clerkmcp.Options, add func(*clerkmcp.Server) error) *Env {
	t.Helper()
	lib := StartLibrary(t, nil, nil)
	cfg, err := clerkmcp.LoadEnv(lib.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := clerkmcp.New(ctx, cfg, o)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := add(srv); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lib.Listener) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		_ = srv.Close()
	})
	return Attach(t, lib.BaseURL)
}

// MCPClient signs userID (a seeded fake-Clerk user; "" = the sign-in page's
// default) in through the whole OAuth flow — registration, PKCE, the proxy's
// consent, the fake Clerk's sign-in, the code exchange — and returns
// mcp-go's streamable-HTTP client carrying the access token, initialized.
// It is closed at test cleanup.
func (e *Env) MCPClient(userID string) *client.Client {
	e.T.Helper()
	c := e.Register()
	e.Login(c, testflow.Choices{UserID: userID})
	return e.MCPClientWith(c.AccessToken)
}

// MCPClientWith is an initialized mcp-go client sending token ("": none).
func (e *Env) MCPClientWith(token string) *client.Client {
	e.T.Helper()
	return e.MCPClientAt("/mcp", token)
}

// MCPClientAt is MCPClientWith for the MCP endpoint at path (a gateway
// upstream mounted at its own path).
func (e *Env) MCPClientAt(path, token string) *client.Client {
	e.T.Helper()
	var opts []transport.StreamableHTTPCOption
	if token != "" {
		opts = append(opts, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	}
	c, err := client.NewStreamableHttpClient(e.BaseURL+path, opts...)
	if err != nil {
		e.T.Fatal(err)
	}
	e.T.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		e.T.Fatal(err)
	}
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	req.Params.ClientInfo = mcp.Implementation{Name: "e2etest", Version: "1"}
	if _, err := c.Initialize(ctx, req); err != nil {
		e.T.Fatalf("initialize: %v", err)
	}
	return c
}

// CallTool calls a tool through an mcp-go client and returns its structured
// content; a JSON-RPC error or a tool error result is an error.
func CallTool(c *client.Client, name string, args map[string]any) (map[string]any, error) {
	res, err := c.CallTool(context.Background(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: name, Arguments: args}})
	if err != nil {
		return nil, err
	}
	if res.IsError {
		return nil, fmt.Errorf("tool error: %v", res.Content)
	}
	out, _ := res.StructuredContent.(map[string]any)
	return out, nil
}

// ToolNames is the tools/list an mcp-go client sees, names only.
func ToolNames(t testing.TB, c *client.Client) []string {
	t.Helper()
	res, err := c.ListTools(context.Background(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
	}
	return names
}
