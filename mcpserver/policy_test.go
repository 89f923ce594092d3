package mcpserver

// The whole tool policy at /mcp: public tools beside protected ones (with
// the Apps SDK sign-in result), organisation roles and permissions (hidden
// from tools/list, refused with a JSON-RPC error), per-tool scopes (403
// step-up), a panicking handler, and sessions that never cross between an
// anonymous client and a signed-in user.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/mcpserver/toolpolicy"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store/memstore"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/verifier"
)

// orgUsers: an org admin, an org member and a user without an organisation.
type orgUsers struct{}

func (orgUsers) Verify(_ context.Context, token string) (*verifier.Identity, error) {
	switch token {
	case "token-admin":
		return &verifier.Identity{UserID: "user_admin", ClientID: "c", Scopes: []string{"openid", "notes:write"}, OrgID: "org_1",
			OrgRole: "org:admin", OrgPermissions: []string{"org:mcp:write"}}, nil
	case "token-member":
		return &verifier.Identity{UserID: "user_member", ClientID: "c", Scopes: []string{"openid"}, OrgID: "org_1",
			OrgRole: "org:member"}, nil
	case "token-solo":
		return &verifier.Identity{UserID: "user_solo", ClientID: "c", Scopes: []string{"openid"}}, nil
	case "token-unknown-role": // the Backend API did not answer
		return &verifier.Identity{UserID: "user_x", ClientID: "c", Scopes: []string{"openid"}, OrgID: "org_1", OrgRoleUnknown: true}, nil
	}
	return nil, errors.New("invalid token")
}

func newPolicyServer(t *testing.T, policy *toolpolicy.Policy) string {
	t.Helper()
	st := memstore.New(memstore.Options{})
	t.Cleanup(func() { _ = st.Close() })
	echo := func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		who := "anonymous"
		if id, ok := IdentityFrom(ctx); ok {
			who = id.UserID
		}
		return mcp.NewToolResultText(req.Params.Name + " for " + who), nil
	}
	return serveMCP(t, Config{Scopes: []string{"openid"}, Policy: policy, NoDemoTools: true},
		Deps{Verifier: orgUsers{}, Sessions: st, Secret: []byte("policy-test-secret-0123456789abcdef")}, func(s *Server) {
			for _, name := range []string{"public-echo", "secret", "admin-only", "perm-tool", "scoped"} {
				s.MCPServer().AddTool(mcp.NewTool(name), echo)
			}
			s.MCPServer().AddTool(mcp.NewTool("boom"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				panic("internal detail 0xdeadbeef")
			})
		}).URL
}

func testPolicy() *toolpolicy.Policy {
	return toolpolicy.New(map[string]toolpolicy.Rule{
		"public-echo": {Public: true},
		"admin-only":  {OrgRoles: []string{"org:admin"}},
		"perm-tool":   {OrgPermissions: []string{"org:mcp:write"}},
		"scoped":      {Scopes: []string{"notes:write"}},
	})
}

// rpcAnswer is one /mcp exchange.
type rpcAnswer struct {
	status    int
	challenge string
	session   string
	result    map[string]any
	err       map[string]any
}

func rpc(t *testing.T, base, httpMethod, token, session, body string) rpcAnswer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, httpMethod, base+"/mcp", strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := rpcAnswer{status: resp.StatusCode, challenge: resp.Header.Get("WWW-Authenticate"), session: resp.Header.Get("Mcp-Session-Id")}
	if httpMethod != http.MethodPost {
		return out
	}
	raw, _ := io.ReadAll(resp.Body)
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		sc := bufio.NewScanner(bytes.NewReader(raw))
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "data:"); ok {
				raw = []byte(line)
			}
		}
	}
	var msg struct {
		Result map[string]any `json:"result"`
		Error  map[string]any `json:"error"`
	}
	_ = json.Unmarshal(raw, &msg)
	out.result, out.err = msg.Result, msg.Error
	return out
}

func call(name string, meta map[string]any) string {
	params := map[string]any{"name": name, "arguments": map[string]any{}}
	if meta != nil {
		params["_meta"] = meta
	}
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params})
	return string(b)
}

// initialized opens a session for token ("" = anonymous).
func initialized(t *testing.T, base, token string) string {
	t.Helper()
	a := rpc(t, base, http.MethodPost, token, "", rpcInit)
	if a.status != http.StatusOK || a.session == "" {
		t.Fatalf("initialize as %q: %d %v", token, a.status, a.err)
	}
	rpc(t, base, http.MethodPost, token, a.session, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	return a.session
}

func listed(a rpcAnswer) map[string]map[string]any {
	out := map[string]map[string]any{}
	tools, _ := a.result["tools"].([]any)
	for _, raw := range tools {
		tool, _ := raw.(map[string]any)
		name, _ := tool["name"].(string)
		out[name] = tool
	}
	return out
}

func resultText(a rpcAnswer) string {
	content, _ := a.result["content"].([]any)
	if len(content) == 0 {
		return ""
	}
	c, _ := content[0].(map[string]any)
	s, _ := c["text"].(string)
	return s
}

// TestToolPolicyAtMCP: who may list and call what, and how a refusal looks.
func TestToolPolicyAtMCP(t *testing.T) {
	base := newPolicyServer(t, testPolicy())
	sessions := map[string]string{}
	for _, who := range []string{"", "token-admin", "token-member", "token-solo", "token-unknown-role"} {
		sessions[who] = initialized(t, base, who)
	}
	unauthorized := rpc(t, base, http.MethodPost, "", sessions[""], call("secret", nil))
	for _, tc := range []struct {
		name, token, body string
		status            int
		check             func(t *testing.T, a rpcAnswer)
	}{
		{"anonymous lists every tool, marked", "", rpcList, 200, func(t *testing.T, a rpcAnswer) {
			tools := listed(a)
			if len(tools) != 6 {
				t.Fatalf("tools %v", tools)
			}
			schemes := func(name string) string { b, _ := json.Marshal(tools[name]["_meta"]); return string(b) }
			if schemes("public-echo") != `{"securitySchemes":[{"type":"noauth"}]}` ||
				schemes("scoped") != `{"securitySchemes":[{"scopes":["openid","notes:write"],"type":"oauth2"}]}` {
				t.Fatalf("securitySchemes: %s / %s", schemes("public-echo"), schemes("scoped"))
			}
		}},
		{"anonymous calls a public tool", "", call("public-echo", nil), 200, func(t *testing.T, a rpcAnswer) {
			if resultText(a) != "public-echo for anonymous" {
				t.Fatalf("%v", a.result)
			}
		}},
		{"anonymous calls a protected tool: 401 challenge", "", call("secret", nil), 401, func(t *testing.T, a rpcAnswer) {
			if !strings.HasPrefix(a.challenge, `Bearer resource_metadata="`+base) || strings.Contains(a.challenge, "error=") {
				t.Fatalf("challenge %q", a.challenge)
			}
		}},
		{"anonymous Apps SDK client calls a protected tool: sign-in result", "", call("secret", map[string]any{"openai/locale": "en-US"}), 200, func(t *testing.T, a rpcAnswer) {
			meta, _ := a.result["_meta"].(map[string]any)
			auth, _ := meta["mcp/www_authenticate"].([]any)
			if a.result["isError"] != true || len(auth) != 1 || auth[0] != unauthorized.challenge {
				t.Fatalf("result %v, want the 401's challenge %q", a.result, unauthorized.challenge)
			}
		}},
		{"anonymous reads resources: 401", "", `{"jsonrpc":"2.0","id":3,"method":"resources/list"}`, 401, nil},
		{"anonymous batch with a protected call: 401", "", "[" + call("public-echo", nil) + "," + call("secret", nil) + "]", 401, nil},
		{"invalid token, even for a public tool: 401", "token-forged", call("public-echo", nil), 401, func(t *testing.T, a rpcAnswer) {
			if !strings.Contains(a.challenge, `error="invalid_token"`) {
				t.Fatalf("challenge %q", a.challenge)
			}
		}},
		{"member does not see org-gated tools", "token-member", rpcList, 200, func(t *testing.T, a rpcAnswer) {
			tools := listed(a)
			if _, ok := tools["admin-only"]; ok || len(tools) != 4 {
				t.Fatalf("member sees %v", tools)
			}
		}},
		{"admin sees every tool", "token-admin", rpcList, 200, func(t *testing.T, a rpcAnswer) {
			if len(listed(a)) != 6 {
				t.Fatalf("admin sees %v", listed(a))
			}
		}},
		{"member calls an admin tool: JSON-RPC error", "token-member", call("admin-only", nil), 200, func(t *testing.T, a rpcAnswer) {
			if a.err["code"] != float64(-32003) || !strings.Contains(a.err["message"].(string), "org:admin") || a.result != nil {
				t.Fatalf("error %v result %v", a.err, a.result)
			}
		}},
		{"user without an org calls a permission tool: told to choose one", "token-solo", call("perm-tool", nil), 200, func(t *testing.T, a rpcAnswer) {
			if a.err["code"] != float64(-32003) || !strings.Contains(a.err["message"].(string), "choose an organisation") {
				t.Fatalf("error %v", a.err)
			}
		}},
		{"role unknown (Clerk down): told to retry", "token-unknown-role", call("admin-only", nil), 200, func(t *testing.T, a rpcAnswer) {
			if a.err["code"] != float64(-32003) || !strings.Contains(a.err["message"].(string), "retry") {
				t.Fatalf("error %v", a.err)
			}
		}},
		{"admin calls the admin tool", "token-admin", call("admin-only", nil), 200, func(t *testing.T, a rpcAnswer) {
			if resultText(a) != "admin-only for user_admin" {
				t.Fatalf("%v %v", a.result, a.err)
			}
		}},
		{"signed-in user calls a public tool as themselves", "token-member", call("public-echo", nil), 200, func(t *testing.T, a rpcAnswer) {
			if resultText(a) != "public-echo for user_member" {
				t.Fatalf("%v", a.result)
			}
		}},
		{"missing scope: 403 step-up", "token-member", call("scoped", nil), 403, func(t *testing.T, a rpcAnswer) {
			if !strings.Contains(a.challenge, `error="insufficient_scope"`) || !strings.Contains(a.challenge, "notes:write") {
				t.Fatalf("challenge %q", a.challenge)
			}
		}},
		{"a panicking tool is a JSON-RPC error without its panic value", "token-admin", call("boom", nil), 200, func(t *testing.T, a rpcAnswer) {
			msg, _ := a.err["message"].(string)
			if a.err["code"] != float64(mcp.INTERNAL_ERROR) || strings.Contains(msg, "deadbeef") || !strings.Contains(msg, "boom") {
				t.Fatalf("error %v", a.err)
			}
		}},
		{"unknown tool: JSON-RPC error", "token-admin", call("nope", nil), 200, func(t *testing.T, a rpcAnswer) {
			if a.err["code"] != float64(mcp.INVALID_PARAMS) {
				t.Fatalf("error %v", a.err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := rpc(t, base, http.MethodPost, tc.token, sessions[tc.token], tc.body)
			if a.status != tc.status {
				t.Fatalf("status %d, want %d (%v %v)", a.status, tc.status, a.err, a.result)
			}
			if tc.check != nil {
				tc.check(t, a)
			}
		})
	}
	// The server survived the panic.
	if a := rpc(t, base, http.MethodPost, "token-admin", sessions["token-admin"], call("admin-only", nil)); resultText(a) == "" {
		t.Fatalf("after the panic: %d %v", a.status, a.err)
	}
}

// TestNoPublicToolKeepsEndpointClosed: without a public tool nothing is
// served without a token, initialize included.
func TestNoPublicToolKeepsEndpointClosed(t *testing.T) {
	p := testPolicy()
	p.Set("public-echo", toolpolicy.Rule{})
	base := newPolicyServer(t, p)
	for _, body := range []string{rpcInit, rpcList, call("public-echo", nil), call("secret", map[string]any{"openai/locale": "en"})} {
		if a := rpc(t, base, http.MethodPost, "", "", body); a.status != http.StatusUnauthorized || a.challenge == "" {
			t.Errorf("%s: %d %q", body, a.status, a.challenge)
		}
	}
}

// TestAnonymousSessionsNeverCross: an anonymous session is useless to a
// signed-in user and a user's session useless without their token, on every
// method; each keeps working for its own principal.
func TestAnonymousSessionsNeverCross(t *testing.T) {
	base := newPolicyServer(t, testPolicy())
	anon := initialized(t, base, "")
	alice := initialized(t, base, "token-admin")
	for _, tc := range []struct {
		name, token, session string
	}{
		{"signed-in user in an anonymous session", "token-admin", anon},
		{"anonymous client in a user's session", "", alice},
		{"another user in a user's session", "token-member", alice},
	} {
		for _, m := range []string{http.MethodPost, http.MethodGet, http.MethodDelete} {
			body := ""
			if m == http.MethodPost {
				body = call("public-echo", nil)
			}
			if a := rpc(t, base, m, tc.token, tc.session, body); a.status != http.StatusNotFound {
				t.Errorf("%s, %s: %d, want 404", tc.name, m, a.status)
			}
		}
	}
	if a := rpc(t, base, http.MethodPost, "", anon, call("public-echo", nil)); resultText(a) != "public-echo for anonymous" {
		t.Fatalf("anonymous in its own session: %d %v", a.status, a.err)
	}
	if a := rpc(t, base, http.MethodPost, "token-admin", alice, call("public-echo", nil)); resultText(a) != "public-echo for user_admin" {
		t.Fatalf("alice in her own session: %d %v", a.status, a.err)
	}
}

// TestRulesSetWhileServing: a rule attached after the server started (a
// library user adding a tool late) applies to the next request.
func TestRulesSetWhileServing(t *testing.T) {
	p := testPolicy()
	base := newPolicyServer(t, p)
	s := initialized(t, base, "token-member")
	if a := rpc(t, base, http.MethodPost, "token-member", s, call("secret", nil)); resultText(a) == "" {
		t.Fatalf("before: %v", a.err)
	}
	p.Set("secret", toolpolicy.Rule{OrgRoles: []string{"org:admin"}})
	if a := rpc(t, base, http.MethodPost, "token-member", s, call("secret", nil)); a.err == nil {
		t.Fatalf("after: %v", a.result)
	}
	if names := listed(rpc(t, base, http.MethodPost, "token-member", s, rpcList)); slices.Contains(keys(names), "secret") {
		t.Fatal("still listed")
	}
}

func keys(m map[string]map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestToolsListIsPrivate: a 2026-07-28 client is told the per-user list
// must not be cached across users (SEP-2549 cacheScope "private").
func TestToolsListIsPrivate(t *testing.T) {
	base := newPolicyServer(t, testPolicy())
	body := `{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",` +
		`"io.modelcontextprotocol/clientInfo":{"name":"t","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}`
	req, _ := http.NewRequest(http.MethodPost, base+"/mcp", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer token-member")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2026-07-28")
	req.Header.Set("Mcp-Method", "tools/list")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var msg struct {
		Result struct {
			CacheScope string           `json:"cacheScope"`
			Tools      []map[string]any `json:"tools"`
		} `json:"result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&msg); err != nil || msg.Result.CacheScope != "private" || len(msg.Result.Tools) != 4 {
		t.Fatalf("%d %+v %v", resp.StatusCode, msg.Result, err)
	}
}

// FuzzAnonymousRequest: any body POSTed to /mcp without a token, when one
// tool is public. The answer is 200 (what an anonymous client may do), a
// 401 challenge, or another 4xx — never a 5xx — and only the public tool's
// handler ever runs.
//
//	go test -run='^$' -fuzz='^FuzzAnonymousRequest$' -fuzztime=20s ./mcpserver
func FuzzAnonymousRequest(f *testing.F) {
	for _, body := range []string{rpcInit, rpcList, call("public-echo", nil), call("secret", nil),
		call("secret", map[string]any{"openai/locale": "en"}), "[" + call("public-echo", nil) + "," + call("secret", nil) + "]",
		`{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"x"}}`, `{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"id":1,"method":"tools/call","params":{"name":"secret","_meta":[]}}`, `[]`, `{`, ``} {
		f.Add(body)
	}
	var ran []string
	var mu sync.Mutex
	h := New(Config{Issuer: fzIssuer, Resource: fzIssuer + "/mcp", Scopes: []string{"openid"}, Policy: testPolicy(), NoDemoTools: true},
		Deps{Verifier: orgUsers{}, Secret: []byte("fuzz-mcp-secret-0123456789abcdef0123")})
	for _, name := range []string{"public-echo", "secret", "admin-only"} {
		h.MCPServer().AddTool(mcp.NewTool(name), func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			mu.Lock()
			ran = append(ran, req.Params.Name)
			mu.Unlock()
			return mcp.NewToolResultText("ran"), nil
		})
	}
	handler := h.guard(h.authenticate(h.mcp))
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, fzIssuer+"/mcp", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%q: %d %s", body, rec.Code, rec.Body)
		}
		if rec.Code == http.StatusUnauthorized && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer resource_metadata=") {
			t.Fatalf("401 without a challenge: %q", body)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, name := range ran {
			if name != "public-echo" {
				t.Fatalf("%q ran the protected tool %q without a token", body, name)
			}
		}
		ran = ran[:0]
	})
}
