package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
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

	// 50 writes at once, alternating users (-race): each note lands with
	// its writer and nowhere else.
	var wg sync.WaitGroup
	for i := range 50 {
		c, who := alice, "alice"
		if i%2 == 1 {
			c, who = bob, "bob"
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e2etest.CallTool(c, "add-note", map[string]any{"text": fmt.Sprintf("%s: note %d", who, i)}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for who, c := range map[string]*client.Client{"alice": alice, "bob": bob} {
		out, err := e2etest.CallTool(c, "list-notes", nil)
		if err != nil {
			t.Fatal(err)
		}
		list, _ := out["notes"].([]any)
		for _, n := range list {
			if !strings.HasPrefix(fmt.Sprint(n), who+":") {
				t.Errorf("%s sees %q", who, n)
			}
		}
		if want := map[string]int{"alice": 27, "bob": 26}[who]; len(list) != want {
			t.Errorf("%s has %d notes, want %d", who, len(list), want)
		}
	}
}
