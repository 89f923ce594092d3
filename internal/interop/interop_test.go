// Package interop drives the built binaries (clerk-mcp-proxy serve, mockclerk,
// redis-server, each a process) with MCP clients written by others: mcp-go's
// OAuth client and the official go-sdk's authorization-code handler. Both are
// strict where clients differ: the PRM resource must equal the MCP URL, the AS
// issuer must equal authorization_servers[0], PKCE S256 must be advertised.
package interop

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testredis"
)

// stack is the product as processes.
type stack struct{ base, clerk string }

// The tool that needs more than the baseline scopes (TOOL_SCOPES), for the
// 403 insufficient_scope step-up.
const (
	stepUpTool  = "get-clerk-user-profile"
	stepUpScope = "profile:read"
)

func run(t *testing.T, env []string, bin string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	out := &e2etest.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("--- %s:\n%s", filepath.Base(bin), out.String())
		}
	})
}

func waitReady(t *testing.T, u string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(u); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
	}
	t.Fatalf("%s not ready", u)
}

func startStack(t *testing.T) stack {
	t.Helper()
	rs := testredis.Start(t)
	proxyBin, clerkBin := e2etest.Binaries(t)
	pa, ca := e2etest.FreeAddr(t), e2etest.FreeAddr(t)
	s := stack{base: "http://" + pa, clerk: "http://" + ca}
	run(t, nil, clerkBin, "-addr", ca, "-client-id", "interopClerkApp", "-client-secret", "interop-clerk-secret-0123456789",
		"-redirect-uri", s.base+"/oauth/callback", "-secret-key", "sk_test_interop")
	waitReady(t, s.clerk+"/.well-known/openid-configuration")
	run(t, []string{"CLERK_DOMAIN=" + s.clerk, "CLERK_API_URL=" + s.clerk, "CLERK_CLIENT_ID=interopClerkApp",
		"CLERK_CLIENT_SECRET=interop-clerk-secret-0123456789", "CLERK_SECRET_KEY=sk_test_interop", "BASE_URL=" + s.base,
		"LISTEN_ADDR=" + pa, "REDIS_URL=" + rs.URL, "PROXY_SECRET=interop-proxy-secret-0123456789abcdef0123",
		"RATE_LIMIT_REGISTER=0", "RATE_LIMIT_TOKEN=0", "RATE_LIMIT_AUTHORIZE=0",
		"TOOL_SCOPES=" + stepUpTool + "=" + stepUpScope}, proxyBin, "serve")
	waitReady(t, s.base+"/readyz")
	return s
}

// browse plays the person at the browser from an authorization URL to the
// client's redirect URI.
func browse(ctx context.Context, authURL, redirect string) (*url.URL, error) {
	return testflow.NewBrowser().Authorize(ctx, authURL, redirect, testflow.Choices{})
}

// TestMCPGoOAuthClient: mcp-go's OAuth streamable client — DCR, PKCE, the
// token exchange with resource, then a tool call as the signed-in user.
func TestMCPGoOAuthClient(t *testing.T) {
	s := startStack(t)
	ctx := context.Background()
	redirect := "http://127.0.0.1:43211/callback"
	store := transport.NewMemoryTokenStore()
	c, err := client.NewOAuthStreamableHttpClient(s.base+"/mcp", transport.OAuthConfig{
		RedirectURI: redirect, TokenStore: store, PKCEEnabled: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	initReq := mcpgo.InitializeRequest{}
	initReq.Params.ProtocolVersion = mcpgo.LATEST_PROTOCOL_VERSION
	initReq.Params.ClientInfo = mcpgo.Implementation{Name: "mcp-go interop", Version: "1"}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = c.Initialize(ctx, initReq)
	if !client.IsOAuthAuthorizationRequiredError(err) {
		t.Fatalf("initialize without a token: want an OAuth authorization error, got %v", err)
	}
	h := client.GetOAuthHandler(err)
	if err := h.RegisterClient(ctx, "mcp-go interop"); err != nil {
		t.Fatalf("DCR: %v", err)
	}
	verifier, _ := client.GenerateCodeVerifier()
	state, _ := client.GenerateState()
	authURL, err := h.GetAuthorizationURL(ctx, state, client.GenerateCodeChallenge(verifier))
	if err != nil {
		t.Fatalf("authorization URL (discovery): %v", err)
	}
	final, err := browse(ctx, authURL, redirect)
	if err != nil {
		t.Fatal(err)
	}
	if final.Query().Get("iss") != s.base {
		t.Errorf("iss = %q", final.Query().Get("iss"))
	}
	if err := h.ProcessAuthorizationResponse(ctx, final.Query().Get("code"), final.Query().Get("state"), verifier); err != nil {
		t.Fatalf("token: %v", err)
	}
	if _, err := c.Initialize(ctx, initReq); err != nil {
		t.Fatalf("initialize with the token: %v", err)
	}
	res, err := c.CallTool(ctx, mcpgo.CallToolRequest{Params: mcpgo.CallToolParams{Name: "get-user-info"}})
	if err != nil || res.IsError {
		t.Fatalf("get-user-info: %v %+v", err, res)
	}
	if got := fmt.Sprint(res.StructuredContent); !strings.Contains(got, "alice@example.com") {
		t.Errorf("get-user-info answered %s", got)
	}

	// Expire the access token in the client's store: mcp-go refreshes before
	// the next request (grant_type=refresh_token with resource) and the
	// refresh token rotates.
	tok, err := store.GetToken(ctx)
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("stored token: %v %+v", err, tok)
	}
	oldRefresh := tok.RefreshToken
	expired := *tok
	expired.AccessToken, expired.ExpiresAt = "expired", time.Now().Add(-time.Minute)
	if err := store.SaveToken(ctx, &expired); err != nil {
		t.Fatal(err)
	}
	res, err = c.CallTool(ctx, mcpgo.CallToolRequest{Params: mcpgo.CallToolParams{Name: "get-user-greeting"}})
	if err != nil || res.IsError {
		t.Fatalf("get-user-greeting after the refresh: %v %+v", err, res)
	}
	if tok, _ := store.GetToken(ctx); tok == nil || tok.AccessToken == "expired" || tok.RefreshToken == oldRefresh {
		t.Errorf("no refresh with rotation: %+v", tok)
	}
}

// TestGoSDKAuthorizationCodeHandler: the official go-sdk client with its
// authorization-code handler (refuses an AS without S256 in its metadata,
// checks the issuer and RFC 9207 iss) does DCR, PKCE and a tool call.
func TestGoSDKAuthorizationCodeHandler(t *testing.T) {
	s := startStack(t)
	ctx := context.Background()
	redirect := "http://127.0.0.1:43212/callback"
	var authURLs []string // one per authorization the handler ran
	handler, err := testflow.GoSDKHandler("go-sdk interop", redirect, testflow.Choices{}, func(u string) { authURLs = append(authURLs, u) })
	if err != nil {
		t.Fatal(err)
	}
	cl := mcp.NewClient(&mcp.Implementation{Name: "go-sdk interop", Version: "1"}, nil)
	session, err := cl.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: s.base + "/mcp", OAuthHandler: handler}, nil)
	if err != nil {
		t.Fatalf("connect (discovery, DCR, PKCE, token): %v", err)
	}
	defer session.Close()
	// go-sdk v1.8.0 asks for 2026-07-28 first (server/discover, no protocol
	// session); the proxy's endpoint must serve it that revision.
	negotiated := session.InitializeResult().ProtocolVersion
	t.Logf("go-sdk negotiated MCP protocol version %s", negotiated)
	if negotiated != "2026-07-28" {
		t.Errorf("negotiated protocol version %q, want 2026-07-28", negotiated)
	}
	tools, err := session.ListTools(ctx, nil)
	if err != nil || len(tools.Tools) != 3 {
		t.Fatalf("tools/list: %v %+v", err, tools)
	}
	res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "get-user-info"})
	if err != nil || res.IsError {
		t.Fatalf("get-user-info: %v %+v", err, res)
	}
	if got := fmt.Sprint(res.StructuredContent); !strings.Contains(got, "alice@example.com") {
		t.Errorf("get-user-info answered %s", got)
	}
	if len(authURLs) != 1 {
		t.Fatalf("%d authorizations before the step-up, want 1", len(authURLs))
	}

	// The tool that needs profile:read: the proxy answers 403
	// insufficient_scope, the handler re-authorizes with the union of the
	// granted and the challenged scopes (SEP-2350) and the call goes through.
	res, err = session.CallTool(ctx, &mcp.CallToolParams{Name: stepUpTool})
	if err != nil || res.IsError {
		t.Fatalf("%s after the step-up: %v %+v", stepUpTool, err, res)
	}
	if len(authURLs) != 2 {
		t.Fatalf("%d authorizations, want 2 (the step-up)", len(authURLs))
	}
	first, _ := url.Parse(authURLs[0])
	second, _ := url.Parse(authURLs[1])
	scopes := strings.Fields(second.Query().Get("scope"))
	t.Logf("authorized with %q, stepped up with %q", first.Query().Get("scope"), scopes)
	for _, want := range append(strings.Fields(first.Query().Get("scope")), stepUpScope) {
		if !slices.Contains(scopes, want) {
			t.Errorf("step-up scope %q lacks %q", scopes, want)
		}
	}
	if got := fmt.Sprint(res.StructuredContent); !strings.Contains(got, "alice@example.com") {
		t.Errorf("%s answered %s", stepUpTool, got)
	}
}
