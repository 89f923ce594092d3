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
	"os"
	"os/signal"
	"syscall"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/clerkmcp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg, err := clerkmcp.FromEnv()
	if err != nil {
		log.Fatal(err)
	}
	srv, err := clerkmcp.New(ctx, cfg, clerkmcp.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	srv.MCPServer().AddTool(mcp.NewTool("whoami", mcp.WithDescription("Who is signed in")),
		func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			id, ok := clerkmcp.IdentityFrom(ctx)
			if !ok {
				return mcp.NewToolResultError("not signed in"), nil
			}
			return mcp.NewToolResultText(fmt.Sprintf("You are %s (%s), signed in through %s.", id.Name, id.UserID, id.ClientID)), nil
		})

	if err := srv.ListenAndServe(ctx); err != nil {
		log.Fatal(err)
	}
}
