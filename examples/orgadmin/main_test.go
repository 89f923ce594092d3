package main

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/clerkmcp"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mockclerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testredis"
)

func TestMain(m *testing.M) { os.Exit(testredis.RunMain(m)) }

// TestAdminToolForAdminsOnly: an admin and a member of the same fake-Clerk
// organisation sign in with mcp-go clients; the admin sees and calls the
// admin tool, the member neither finds it nor may call it.
func TestAdminToolForAdminsOnly(t *testing.T) {
	e := e2etest.ServeLibrary(t, clerkmcp.Options{NoDemoTools: true}, addTools)
	users := mockclerk.DefaultUsers() // alice: Acme admin; carol: Acme member
	for _, tc := range []struct {
		name     string
		user     mockclerk.User
		role     string
		adminSee bool
	}{
		{"admin", users[0], "org:admin", true},
		{"member", users[2], "org:member", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.MCPClient(tc.user.ID)
			me, err := e2etest.CallTool(c, "my-organization", nil)
			if err != nil || me["role"] != tc.role || me["org_id"] != tc.user.Org.ID {
				t.Fatalf("my-organization: %v %v", me, err)
			}
			if got := slices.Contains(e2etest.ToolNames(t, c), "org-audit"); got != tc.adminSee {
				t.Fatalf("org-audit listed: %v, want %v", got, tc.adminSee)
			}
			out, err := e2etest.CallTool(c, "org-audit", nil)
			switch {
			case tc.adminSee && (err != nil || out["requested_by"] != tc.user.ID):
				t.Fatalf("admin call: %v %v", out, err)
			case !tc.adminSee && (err == nil || !strings.Contains(err.Error(), adminRole)):
				t.Fatalf("member call: %v %v, want a JSON-RPC error naming %s", out, err, adminRole)
			}
		})
	}
}
