// Command whoami is the smallest program built on clerk-mcp-proxy's public
// package: the whole Clerk-protected MCP server, configured by the same
// environment variables as `clerk-mcp-proxy serve`, with one tool of its own
// that greets the signed-in user.
//
//	go run ./examples/whoami   # with CLERK_DOMAIN, CLERK_CLIENT_ID, ... set
package main

import (
	"context"
	"fmt"
	"log"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/clerkmcp"
)

func main() {
	err := clerkmcp.Run(context.Background(), clerkmcp.Options{}, func(srv *clerkmcp.Server) error {
		srv.MCPServer().AddTool(mcp.NewTool("whoami", mcp.WithDescription("Who is signed in")),
			func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				id, _ := clerkmcp.IdentityFrom(ctx)
				return mcp.NewToolResultText(fmt.Sprintf("You are %s (%s), signed in through %s.", id.Name, id.UserID, id.ClientID)), nil
			})
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
}
