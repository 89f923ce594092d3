// Command notes is a small MCP server of personal notes behind Clerk
// sign-in: each signed-in user adds and lists their own notes, stored under
// their Clerk user id (in memory here; a real program would use a
// database). One user never sees another's notes.
//
//	go run ./examples/notes   # with CLERK_DOMAIN, CLERK_CLIENT_ID, ... set, as for `clerk-mcp-proxy serve`
package main

import (
	"context"
	"log"
	"slices"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/clerkmcp"
)

func main() {
	if err := clerkmcp.Run(context.Background(), clerkmcp.Options{NoDemoTools: true}, func(srv *clerkmcp.Server) error { return addTools(srv, &notes{}) }); err != nil {
		log.Fatal(err)
	}
}

// notes holds every user's notes by Clerk user id.
type notes struct {
	mu     sync.Mutex
	byUser map[string][]string
}

func (n *notes) add(userID, text string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.byUser == nil {
		n.byUser = map[string][]string{}
	}
	n.byUser[userID] = append(n.byUser[userID], text)
	return len(n.byUser[userID])
}

func (n *notes) list(userID string) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.byUser[userID])
}

// addTools registers add-note and list-notes; both need a signed-in user
// (the zero Rule), whose Clerk user id keys the notes.
func addTools(srv *clerkmcp.Server, n *notes) error {
	add := mcp.NewTool("add-note", mcp.WithDescription("Save a note for the signed-in user"),
		mcp.WithString("text", mcp.Required(), mcp.Description("the note")))
	err := srv.AddTool(add, func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		id, _ := clerkmcp.IdentityFrom(ctx)
		text, err := req.RequireString("text")
		if err != nil {
			return mcp.NewToolResultError(err.Error()), nil
		}
		count := n.add(id.UserID, text)
		return mcp.NewToolResultStructuredOnly(map[string]any{"saved": text, "count": count}), nil
	}, clerkmcp.Rule{})
	if err != nil {
		return err
	}
	list := mcp.NewTool("list-notes", mcp.WithDescription("The signed-in user's notes"), mcp.WithReadOnlyHintAnnotation(true))
	return srv.AddTool(list, func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		id, _ := clerkmcp.IdentityFrom(ctx)
		return mcp.NewToolResultStructuredOnly(map[string]any{"notes": n.list(id.UserID)}), nil
	}, clerkmcp.Rule{})
}
