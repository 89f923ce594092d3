package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
)

// TestDevModeFullFlow runs `clerk-mcp-proxy dev` as the README's first command
// does (only the ports are free ones) and drives it as a new user's client
// would: read the banner, register, sign in through the consent page and the
// fake Clerk, exchange the code, call the tools, refresh.
func TestDevModeFullFlow(t *testing.T) {
	base, banner := startDev(t, "dev")
	if !strings.Contains(banner, "@") {
		t.Errorf("banner lists no seeded users:\n%s", banner)
	}
	// The Try it page is on in dev, and the banner says where.
	if !strings.Contains(banner, base+"/try ") {
		t.Errorf("banner does not name the Try it page:\n%s", banner)
	}
	if r, err := http.Get(base + "/try"); err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("GET /try in dev: %v %v", r, err)
	} else {
		r.Body.Close()
	}

	e := &e2etest.Env{T: t, BaseURL: base}
	r := e.MCP("", "", "initialize", map[string]any{})
	if r.Status != http.StatusUnauthorized || !strings.Contains(r.Header.Get("WWW-Authenticate"), "resource_metadata=") {
		t.Fatalf("no token: %d %q", r.Status, r.Header.Get("WWW-Authenticate"))
	}
	c := e.Register("http://127.0.0.1:33418/callback")
	e.Login(c, testflow.Choices{})
	session := e.Initialize(c.AccessToken)
	resp, info := e.CallTool(c.AccessToken, session, "get-user-info")
	if resp.Status != http.StatusOK || info["userId"] == nil || info["email"] == nil || !strings.Contains(banner, info["email"].(string)) {
		t.Fatalf("get-user-info: %d %s", resp.Status, resp.Body)
	}
	for _, tool := range []string{"get-user-greeting", "get-clerk-user-profile"} {
		if resp, out := e.CallTool(c.AccessToken, session, tool); resp.Status != http.StatusOK || out == nil {
			t.Errorf("%s: %d %s", tool, resp.Status, resp.Body)
		}
	}
	status, out := e.Refresh(c, c.RefreshToken)
	if status != http.StatusOK || out["access_token"] == nil {
		t.Fatalf("refresh: %d %v", status, out)
	}
	if r := e.MCP(out["access_token"].(string), session, "tools/list", map[string]any{}); r.Status != http.StatusOK {
		t.Fatalf("tools/list after refresh: %d %s", r.Status, r.Body)
	}
}

// startDev runs `clerk-mcp-proxy <args>` on free ports, as the README's
// first command does, and returns the base URL and the banner it printed.
// Ctrl-C at cleanup must stop it promptly and cleanly.
func startDev(t *testing.T, args ...string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	env := map[string]string{"LISTEN_ADDR": "127.0.0.1:0", "MOCKCLERK_ADDR": "127.0.0.1:0"}
	pr, pw := io.Pipe()
	var errb e2etest.SyncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, func(k string) string { return env[k] }, pw, &errb) }()
	t.Cleanup(func() {
		// Ctrl-C: dev stops promptly and cleanly (serve's SIGTERM, event
		// streams included, is tested on the binary in deploy/compose_test.go;
		// both go through serveUntilDone).
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("dev exit code %d after Ctrl-C:\n%s", code, errb.String())
			}
		case <-time.After(10 * time.Second):
			t.Error("dev did not shut down within 10s")
		}
		_ = pw.Close()
	})

	// The banner names the MCP URL and the seeded users.
	urlRe := regexp.MustCompile(`MCP server URL\s+(http://\S+)/mcp`)
	var base string
	var banner strings.Builder
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		banner.WriteString(sc.Text() + "\n")
		if m := urlRe.FindStringSubmatch(sc.Text()); m != nil {
			base = m[1]
		}
		if strings.HasPrefix(sc.Text(), "Tools:") {
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if base == "" {
		t.Fatalf("no MCP URL in the banner:\n%s\nstderr:\n%s", banner.String(), errb.String())
	}
	return base, banner.String()
}

// TestDevUpstream: `dev --upstream URL` fronts an existing MCP server (here
// an mcp-go one): a client signs in through the fake Clerk and calls the
// upstream's tool, which sees the gateway's assertion.
func TestDevUpstream(t *testing.T) {
	m := server.NewMCPServer("existing", "1")
	m.AddTool(mcp.NewTool("hello"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		asserted, _ := ctx.Value(devAssertionKey{}).(bool)
		return mcp.NewToolResultStructuredOnly(map[string]any{"hello": "world", "asserted": asserted}), nil
	})
	up := httptest.NewServer(server.NewStreamableHTTPServer(m, server.WithHTTPContextFunc(func(ctx context.Context, r *http.Request) context.Context {
		return context.WithValue(ctx, devAssertionKey{}, r.Header.Get("X-Clerk-MCP-Assertion") != "" && r.Header.Get("Authorization") == "")
	})))
	t.Cleanup(up.Close)

	base, banner := startDev(t, "dev", "--upstream", up.URL+"/mcp")
	if !strings.Contains(banner, "Fronting           "+up.URL+"/mcp") {
		t.Errorf("banner does not name the upstream:\n%s", banner)
	}
	e := &e2etest.Env{T: t, BaseURL: base}
	c := e.Register("http://127.0.0.1:33418/callback")
	e.Login(c, testflow.Choices{})
	session := e.Initialize(c.AccessToken)
	if resp, out := e.CallTool(c.AccessToken, session, "hello"); resp.Status != http.StatusOK || out["hello"] != "world" || out["asserted"] != true {
		t.Fatalf("hello through dev --upstream: %d %s", resp.Status, resp.Body)
	}
}

type devAssertionKey struct{}
