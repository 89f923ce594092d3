package app_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/clerkmcp/upstreamauth"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/mcpserver/gateway"
)

type gwAssertionKey struct{}

// assertingUpstream is an mcp-go server (a Go upstream an author would
// write) whose whoami tool verifies the gateway's assertion against the
// proxy's published JWKS with upstreamauth and answers the user it names.
func assertingUpstream(t *testing.T, issuer func() string) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	url := "http://" + srv.Listener.Addr().String() + "/mcp"
	var once sync.Once
	var v *upstreamauth.Verifier
	m := server.NewMCPServer("go-upstream", "1")
	m.AddTool(mcp.NewTool("whoami"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		once.Do(func() { v = upstreamauth.New(upstreamauth.Config{Issuer: issuer(), Audience: url}) })
		tok, _ := ctx.Value(gwAssertionKey{}).(string)
		c, err := v.Verify(ctx, tok)
		if err != nil {
			return mcp.NewToolResultError(err.Error()), nil
		}
		return mcp.NewToolResultStructuredOnly(map[string]any{"sub": c.Subject, "client_id": c.ClientID, "scope": c.Scope, "email": c.Email}), nil
	})
	m.AddTool(mcp.NewTool("org-report"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("report"), nil
	})
	srv.Config.Handler = server.NewStreamableHTTPServer(m, server.WithHTTPContextFunc(func(ctx context.Context, r *http.Request) context.Context {
		return context.WithValue(ctx, gwAssertionKey{}, r.Header.Get(gateway.AssertionHeader))
	}))
	srv.Start()
	t.Cleanup(srv.Close)
	return url
}

// TestGatewayEndToEnd: the product started as it ships, with
// UPSTREAM_MCP_URL set, real Redis and the fake Clerk: a client registers,
// signs in, and its calls reach a Go upstream that verifies the assertion
// against the proxy's JWKS and sees the signed-in user; organisation rules
// hide and refuse an upstream tool.
func TestGatewayEndToEnd(t *testing.T) {
	var base string
	up := assertingUpstream(t, func() string { return base })
	e := e2etest.Start(t, e2etest.Options{Env: map[string]string{"UPSTREAM_MCP_URL": up, "TOOL_ROLES": "org-report=org:admin"}})
	base = e.BaseURL
	c := e.Register()
	// Carol is a member, not an admin, of the fake Clerk's Acme organisation.
	e.Login(c, testflow.Choices{UserID: "user_2carolExampleSeededUser003"})
	sub := jwtSubject(t, c.AccessToken)

	session := e.Initialize(c.AccessToken)
	r, out := e.CallTool(c.AccessToken, session, "whoami")
	if r.Status != http.StatusOK || out["sub"] != sub || out["client_id"] != c.ID {
		t.Fatalf("whoami through the gateway: %d %s; want sub %s client %s", r.Status, r.Body, sub, c.ID)
	}
	list := e.MCP(c.AccessToken, session, "tools/list", map[string]any{})
	if !strings.Contains(string(list.Result), "whoami") || strings.Contains(string(list.Result), "org-report") {
		t.Errorf("tools/list %s: want whoami, not org-report (org:member, not org:admin)", list.Result)
	}
	refused := e.MCP(c.AccessToken, session, "tools/call", map[string]any{"name": "org-report"})
	if refused.Status != http.StatusOK || !strings.Contains(string(refused.Error), "-32003") {
		t.Errorf("org-report: %d %s, want a JSON-RPC refusal", refused.Status, refused.Body)
	}
	if !strings.Contains(e.Logs.String(), `"msg":"audit: tools/call"`) {
		t.Error("no audit line")
	}
	// Alice is Acme's admin: the same tool is listed and reaches the upstream.
	admin := e.Register()
	e.Login(admin, testflow.Choices{UserID: "user_2aliceExampleSeededUser0001"})
	adminSession := e.Initialize(admin.AccessToken)
	if list := e.MCP(admin.AccessToken, adminSession, "tools/list", map[string]any{}); !strings.Contains(string(list.Result), "org-report") {
		t.Errorf("tools/list for an org admin %s: want org-report", list.Result)
	}
	if r, _ := e.CallTool(admin.AccessToken, adminSession, "org-report"); r.Status != http.StatusOK || len(r.Error) > 0 || !strings.Contains(r.Body, "report") {
		t.Errorf("org-report as an org admin: %d %s", r.Status, r.Body)
	}
	// The proxy's own token is still required; a client without one is
	// challenged by the proxy, never reaching the upstream.
	if r := e.MCP("", "", "tools/list", map[string]any{}); r.Status != http.StatusUnauthorized || !strings.Contains(r.Header.Get("WWW-Authenticate"), "resource_metadata") {
		t.Errorf("no token: %d", r.Status)
	}
}

func jwtSubject(t *testing.T, tok string) string {
	t.Helper()
	sub, _ := jwtClaim(t, tok, "sub").(string)
	return sub
}
