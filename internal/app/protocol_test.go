package app_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
)

// TestMCP20260728Headers: a 2026-07-28 client needs no protocol session and
// mirrors the JSON-RPC method and tool name in Mcp-Method / Mcp-Name
// (SEP-2243). The endpoint serves it without a session, and refuses a
// request whose headers disagree with its body with 400 and JSON-RPC error
// -32020 — before the per-tool scope check, which reads the body, so a
// router that trusted the header cannot be steered past it. Older
// revisions, which have no such headers, are not asked for them.
func TestMCP20260728Headers(t *testing.T) {
	t.Parallel()
	const scoped = "get-clerk-user-profile"
	e := e2etest.Start(t, e2etest.Options{Env: map[string]string{"TOOL_SCOPES": scoped + "=profile:read"}})
	c := e.Register()
	e.Login(c, testflow.Choices{})
	modern := func(method, name string) map[string]string {
		h := map[string]string{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": method}
		if name != "" {
			h["Mcp-Name"] = name
		}
		return h
	}
	call := func(h map[string]string, tool string) e2etest.MCPResponse {
		t.Helper()
		r, err := e.TryMCPWithHeaders(c.AccessToken, h, "tools/call", map[string]any{"name": tool, "arguments": map[string]any{},
			"_meta": map[string]any{"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": map[string]any{},
				"io.modelcontextprotocol/clientInfo": map[string]any{"name": "raw", "version": "1"}}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	mismatch := func(r e2etest.MCPResponse) bool {
		var rpc struct {
			Code int `json:"code"`
		}
		return r.Status == http.StatusBadRequest && json.Unmarshal(r.Error, &rpc) == nil && rpc.Code == -32020
	}

	r := call(modern("tools/call", "get-user-info"), "get-user-info")
	if r.Status != http.StatusOK || len(r.Error) > 0 || r.SessionID != "" {
		t.Fatalf("2026-07-28 call without a session: %d session %q %s", r.Status, r.SessionID, r.Body)
	}
	for name, h := range map[string]map[string]string{
		"no Mcp-Method":        {"MCP-Protocol-Version": "2026-07-28"},
		"other method":         modern("tools/list", ""),
		"other tool in header": modern("tools/call", "get-user-info"), // the body calls the scoped tool
	} {
		if r := call(h, scoped); !mismatch(r) {
			t.Errorf("%s: %d %s, want 400 with JSON-RPC error -32020", name, r.Status, r.Body)
		}
	}
	// The same call with agreeing headers reaches the scope check (403).
	if r := call(modern("tools/call", scoped), scoped); r.Status != http.StatusForbidden ||
		!strings.Contains(r.Header.Get("WWW-Authenticate"), "insufficient_scope") {
		t.Errorf("agreeing headers: %d, want the 403 step-up", r.Status)
	}
	// 2025-11-25 clients send no such headers and are served as before.
	session := e.Initialize(c.AccessToken)
	if r, _ := e.CallTool(c.AccessToken, session, "get-user-info"); r.Status != http.StatusOK {
		t.Errorf("2025-11-25 call: %d %s", r.Status, r.Body)
	}
}
