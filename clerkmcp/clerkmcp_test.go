package clerkmcp_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/clerkmcp"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mockclerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testredis"
)

// TestPublicServerServesOwnTool builds the server only through the public
// package, as a program outside the module would, adds a tool with mcp-go's
// API, signs a user in through the (fake) Clerk and calls the tool: the tool
// sees the verified identity, and an unauthenticated call never reaches it.
func TestPublicServerServesOwnTool(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rs := testredis.Start(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + l.Addr().String()
	ck, err := mockclerk.Listen("127.0.0.1:0", mockclerk.Config{ClientID: e2etest.ClerkClientID, ClientSecret: e2etest.ClerkClientSecret,
		RedirectURIs: []string{base + "/oauth/callback"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	env := map[string]string{
		"CLERK_DOMAIN": ck.URL, "CLERK_CLIENT_ID": e2etest.ClerkClientID, "CLERK_CLIENT_SECRET": e2etest.ClerkClientSecret,
		"BASE_URL": base, "REDIS_URL": rs.URL, "PROXY_SECRET": e2etest.ProxySecret, "LOG_LEVEL": "error",
	}
	cfg, err := clerkmcp.LoadEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	srv, err := clerkmcp.New(ctx, cfg, clerkmcp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	calls := 0
	srv.MCPServer().AddTool(mcp.NewTool("whoami"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		calls++
		id, ok := clerkmcp.IdentityFrom(ctx)
		if !ok {
			return mcp.NewToolResultError("no identity"), nil
		}
		if id.ClerkAccessToken == "" {
			return mcp.NewToolResultError("no Clerk token"), nil
		}
		return mcp.NewToolResultStructuredOnly(map[string]any{"user": id.UserID, "client": id.ClientID, "email": id.Email}), nil
	})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()

	e := e2etest.Attach(t, base)
	if r := e.MCP("", "", "tools/call", map[string]any{"name": "whoami"}); r.Status != http.StatusUnauthorized {
		t.Fatalf("unauthenticated call: %d", r.Status)
	}
	c := e.Register()
	e.Login(c, testflow.Choices{})
	session := e.Initialize(c.AccessToken)
	r, out := e.CallTool(c.AccessToken, session, "whoami")
	if r.Status != http.StatusOK || out["client"] != c.ID || !strings.HasPrefix(out["user"].(string), "user_") || out["email"] == "" {
		t.Fatalf("whoami: %d %s", r.Status, r.Body)
	}
	if calls != 1 {
		t.Fatalf("tool ran %d times, want 1", calls)
	}
	if _, ok := clerkmcp.IdentityFrom(context.Background()); ok {
		t.Fatal("an identity outside a request")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}
