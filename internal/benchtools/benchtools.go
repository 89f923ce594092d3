// Package benchtools holds the baselines the performance benchmarks compare
// clerk-mcp-proxy against, in the same run on the same machine: a bare
// net/http hello handler and a bare mcp-go streamable-HTTP server (no auth)
// serving one tool that answers what get-user-info answers. Ratios against
// them say how much our layers cost, whatever the machine. Nothing here is
// part of the product: scripts/build and the image build only
// cmd/clerk-mcp-proxy and cmd/mockclerk.
package benchtools

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/mcpserver"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Hello is the bare net/http baseline: the cheapest 200 a Go server gives.
func Hello() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("hello"))
	})
}

// ToolName is the tool the bare MCP server serves, named as the proxy's.
const ToolName = "get-user-info"

// UserInfo is the proxy's get-user-info result, so both servers answer
// the same JSON.
type UserInfo = mcpserver.UserInfo

// SampleUser is what the bare server answers: the fake Clerk's default
// user, as the proxy's get-user-info shows it.
var SampleUser = UserInfo{
	UserID: "user_2mockclerk0000000000000001", Email: "ada@example.com", Name: "Ada Lovelace",
	Picture: "https://img.example.com/ada.png", OrgPermissions: []string{},
	Scopes: []string{"openid", "profile", "email", "offline_access"}, ClientID: "mcp_client_0123456789abcdef",
}

// MCP is the bare mcp-go baseline: a streamable-HTTP server, no auth, with
// one tool returning u as the proxy's tool does (structured content plus
// the same indented JSON as text). Sessions are mcp-go's own, in memory;
// opts configure the transport (e.g. the proxy's session idle TTL, which
// makes mcp-go keep state per session).
func MCP(u UserInfo, opts ...server.StreamableHTTPOption) http.Handler {
	s := server.NewMCPServer("bare-mcp-go", "1", server.WithToolCapabilities(false))
	s.AddTool(mcp.NewTool(ToolName, mcp.WithDescription("Who is signed in."),
		mcp.WithReadOnlyHintAnnotation(true)),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			raw, err := json.MarshalIndent(u, "", "  ")
			if err != nil {
				return nil, err
			}
			return mcp.NewToolResultStructured(u, string(raw)), nil
		})
	return server.NewStreamableHTTPServer(s, opts...)
}
