package main

import (
	"fmt"
	"os"
	"slices"
	"testing"

	"github.com/mark3labs/mcp-go/client"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/clerkmcp"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mockclerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testredis"
)

func TestMain(m *testing.M) { os.Exit(testredis.RunMain(m)) }

// TestNotesArePerUser: two users sign in through the fake Clerk with
// mcp-go clients; each sees exactly the notes they wrote.
func TestNotesArePerUser(t *testing.T) {
	e := e2etest.ServeLibrary(t, clerkmcp.Options{NoDemoTools: true}, func(srv *clerkmcp.Server) error {
		return addTools(srv, &notes{})
	})
	users := mockclerk.DefaultUsers()
	alice, bob := e.MCPClient(users[0].ID), e.MCPClient(users[1].ID)
	for _, w := range []struct {
		c    *client.Client
		text string
	}{{alice, "alice: buy milk"}, {bob, "bob: fix the roof"}, {alice, "alice: call mum"}} {
		if _, err := e2etest.CallTool(w.c, "add-note", map[string]any{"text": w.text}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		c    *client.Client
		want []string
	}{
		{"alice", alice, []string{"alice: buy milk", "alice: call mum"}},
		{"bob", bob, []string{"bob: fix the roof"}},
	} {
		out, err := e2etest.CallTool(tc.c, "list-notes", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(out["notes"]); got != fmt.Sprint(tc.want) {
			t.Errorf("%s sees %s, want %v", tc.name, got, tc.want)
		}
	}
	if names := e2etest.ToolNames(t, alice); !slices.Equal(names, []string{"add-note", "list-notes"}) {
		t.Errorf("tools %v", names)
	}
	if _, err := e2etest.CallTool(alice, "add-note", map[string]any{}); err == nil {
		t.Error("add-note without text succeeded")
	}
}
