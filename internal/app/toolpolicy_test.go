package app_test

// The tool policy configured by environment, end to end through the fake
// Clerk: TOOL_ROLES against organisation roles the verifier reads from the
// Backend API, PUBLIC_TOOLS beside protected tools.

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mockclerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
)

func TestToolPolicyFromEnvironment(t *testing.T) {
	t.Parallel()
	e := e2etest.Start(t, e2etest.Options{Env: map[string]string{
		"TOOL_ROLES": "get-clerk-user-profile=org:admin", "PUBLIC_TOOLS": "get-user-greeting",
	}})
	users := mockclerk.DefaultUsers() // alice: Acme admin; carol: Acme member
	admin, member := e.Register(), e.Register()
	e.Login(admin, testflow.Choices{UserID: users[0].ID})
	e.Login(member, testflow.Choices{UserID: users[2].ID})

	// The public tool answers without a token; the others challenge.
	anon := e.Initialize("")
	if r := e.MCP("", anon, "tools/call", map[string]any{"name": "get-user-greeting"}); r.Status != http.StatusOK || r.Error != nil {
		t.Fatalf("public tool without a token: %d %s", r.Status, r.Body)
	}
	if r := e.MCP("", anon, "tools/call", map[string]any{"name": "get-user-info"}); r.Status != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("protected tool without a token: %d", r.Status)
	}

	for _, tc := range []struct {
		name     string
		c        *e2etest.Client
		role     string
		listed   bool
		callable bool
	}{
		{"admin", admin, "org:admin", true, true},
		{"member", member, "org:member", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			session := e.Initialize(tc.c.AccessToken)
			_, info := e.CallTool(tc.c.AccessToken, session, "get-user-info")
			if info["org_role"] != tc.role || info["org_id"] != users[0].Org.ID {
				t.Fatalf("get-user-info: %v", info)
			}
			var list struct {
				Tools []struct{ Name string } `json:"tools"`
			}
			_ = json.Unmarshal(e.MCP(tc.c.AccessToken, session, "tools/list", map[string]any{}).Result, &list)
			listed := false
			for _, tool := range list.Tools {
				listed = listed || tool.Name == "get-clerk-user-profile"
			}
			r := e.MCP(tc.c.AccessToken, session, "tools/call", map[string]any{"name": "get-clerk-user-profile"})
			if listed != tc.listed || (r.Error == nil) != tc.callable || r.Status != http.StatusOK {
				t.Fatalf("listed %v (want %v), call %d result %s error %s (callable: %v)", listed, tc.listed, r.Status, r.Result, r.Error, tc.callable)
			}
		})
	}
}

// TestPublicToolsWithTypeScriptSDK: public and protected tools side by side
// with the official MCP TypeScript SDK client (testdata/sdk-public-tools.mjs):
// anonymous list and public call, a 401 on the protected tool, the Apps SDK
// _meta challenge, then sign-in and the protected call. Needs node and
// e2e/node_modules (bash scripts/deps installs them).
func TestPublicToolsWithTypeScriptSDK(t *testing.T) {
	t.Parallel()
	sdk, err := filepath.Abs("../../e2e/node_modules/@modelcontextprotocol/sdk")
	if err != nil {
		t.Fatal(err)
	}
	browser, _ := filepath.Abs("../../e2e/lib/browser.mjs")
	node, err := exec.LookPath("node")
	if _, serr := os.Stat(sdk); err != nil || serr != nil {
		t.Skip("needs node and e2e/node_modules (bash scripts/deps)")
	}
	e := e2etest.Start(t, e2etest.Options{Env: map[string]string{"PUBLIC_TOOLS": "get-user-greeting"}})
	in, _ := json.Marshal(map[string]string{"sdk": sdk, "browser": browser, "base": e.BaseURL,
		"publicTool": "get-user-greeting", "protectedTool": "get-user-info"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, "testdata/sdk-public-tools.mjs", string(in)).CombinedOutput()
	if err != nil || string(out) != "PASS" {
		t.Fatalf("node: %v\n%s", err, out)
	}
}
