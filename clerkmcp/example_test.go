package clerkmcp_test

import (
	"context"
	"log"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/clerkmcp"
)

// The whole Clerk-protected MCP server with one tool of its own, configured
// by the environment variables `clerk-mcp-proxy serve` reads, serving until
// SIGTERM.
func Example() {
	err := clerkmcp.Run(context.Background(), clerkmcp.Options{NoDemoTools: true}, func(srv *clerkmcp.Server) error {
		hello := func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			id, _ := clerkmcp.IdentityFrom(ctx)
			return mcp.NewToolResultText("Hello, " + id.Name + " (" + id.UserID + ")"), nil
		}
		return srv.AddTool(mcp.NewTool("hello", mcp.WithDescription("Greets the signed-in user")), hello, clerkmcp.Rule{})
	})
	if err != nil {
		log.Fatal(err)
	}
}

// The same, step by step: New builds the server, MCPServer is mcp-go's
// server for tools, resources and prompts, and Handler (not shown) mounts
// everything on a router of the program's own instead of ListenAndServe.
func ExampleNew() {
	ctx := context.Background()
	cfg, err := clerkmcp.FromEnv()
	if err != nil {
		log.Fatal(err)
	}
	srv, err := clerkmcp.New(ctx, cfg, clerkmcp.Options{NoDemoTools: true})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	srv.MCPServer().AddTool(mcp.NewTool("hello", mcp.WithDescription("Greets the signed-in user")),
		func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			id, _ := clerkmcp.IdentityFrom(ctx)
			return mcp.NewToolResultText("Hello, " + id.Name), nil
		})
	log.Fatal(srv.ListenAndServe(ctx))
}

// A tool only organisation admins see and may call, one that needs an extra
// scope, and one anyone may call without signing in.
func ExampleServer_AddTool() {
	ctx := context.Background()
	cfg, _ := clerkmcp.FromEnv()
	srv, err := clerkmcp.New(ctx, cfg, clerkmcp.Options{
		// Scopes must be known when the authorization server is built.
		Rules: map[string]clerkmcp.Rule{"export": {Scopes: []string{"notes:export"}}},
	})
	if err != nil {
		log.Fatal(err)
	}
	report := func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		id, _ := clerkmcp.IdentityFrom(ctx)
		return mcp.NewToolResultText("report for organisation " + id.OrgID), nil
	}
	if err := srv.AddTool(mcp.NewTool("org-report"), report, clerkmcp.Rule{OrgRoles: []string{"org:admin"}}); err != nil {
		log.Fatal(err)
	}
	status := func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("all systems go"), nil
	}
	if err := srv.AddTool(mcp.NewTool("status"), status, clerkmcp.Rule{Public: true}); err != nil {
		log.Fatal(err)
	}
}

// Inside a handler: who is calling, in which organisation, and Clerk's own
// view of the user (fetched with the user's Clerk token).
func ExampleIdentityFrom() {
	var srv *clerkmcp.Server // from clerkmcp.New
	handler := func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		id, ok := clerkmcp.IdentityFrom(ctx)
		if !ok {
			return mcp.NewToolResultError("sign in first"), nil
		}
		claims, err := srv.ClerkUserInfo(ctx)
		if err != nil {
			return mcp.NewToolResultError("Clerk is unavailable"), nil
		}
		return mcp.NewToolResultStructuredOnly(map[string]any{
			"user": id.UserID, "org": id.OrgID, "role": id.OrgRole, "clerk": claims,
		}), nil
	}
	_ = handler
}
