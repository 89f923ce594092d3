package clerkmcp_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/clerkmcp"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
)

// TestPublicServerServesOwnTool builds the server only through the public
// package, as a program outside the module would, adds a tool with mcp-go's
// API, signs a user in through the (fake) Clerk and calls the tool: the tool
// sees the verified identity, and an unauthenticated call never reaches it.
func TestPublicServerServesOwnTool(t *testing.T) {
	var calls atomic.Int32
	e := serveLibrary(t, clerkmcp.Options{}, func(srv *clerkmcp.Server) {
		srv.MCPServer().AddTool(mcp.NewTool("whoami"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			calls.Add(1)
			id, ok := clerkmcp.IdentityFrom(ctx)
			if !ok {
				return mcp.NewToolResultError("no identity"), nil
			}
			if id.ClerkAccessToken == "" {
				return mcp.NewToolResultError("no Clerk token"), nil
			}
			return mcp.NewToolResultStructuredOnly(map[string]any{"user": id.UserID, "client": id.ClientID, "email": id.Email}), nil
		})
	})
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
	if calls.Load() != 1 {
		t.Fatalf("tool ran %d times, want 1", calls.Load())
	}
	if _, ok := clerkmcp.IdentityFrom(context.Background()); ok {
		t.Fatal("an identity outside a request")
	}
}
