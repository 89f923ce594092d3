package app_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
)

// startServerEverything runs @modelcontextprotocol/server-everything (the
// reference MCP server, from npm) in its streamable HTTP mode and returns its
// MCP URL. Skips without node and e2e/node_modules (bash scripts/deps).
func startServerEverything(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	entry, _ := filepath.Abs("../../e2e/node_modules/@modelcontextprotocol/server-everything/dist/index.js")
	if _, serr := os.Stat(entry); err != nil || serr != nil {
		t.Skip("needs node and e2e/node_modules (bash scripts/deps)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(node, entry, "streamableHttp")
	cmd.Env = append(os.Environ(), "PORT="+port)
	out := &e2etest.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			break
		}
		if i == 300 {
			t.Fatalf("server-everything did not listen on %s:\n%s", addr, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Sprintf("http://%s/mcp", addr)
}

// TestGatewayServerEverythingWithTypeScriptSDK: the official TypeScript SDK
// client signs in through the gateway (DCR, PKCE, the fake Clerk) and uses
// the reference server behind it — tools, resources, prompts, a long-running
// tool's progress notifications and cancellation (e2e/gateway-everything.mjs).
func TestGatewayServerEverythingWithTypeScriptSDK(t *testing.T) {
	up := startServerEverything(t)
	e := e2etest.Start(t, e2etest.Options{Env: map[string]string{"UPSTREAM_MCP_URL": up}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "gateway-everything.mjs", e.BaseURL)
	cmd.Dir = "../../e2e"
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil || !strings.Contains(string(out), "gateway-everything: PASS") {
		t.Fatalf("node: %v\nproxy logs:\n%s", err, tail(e.Logs.String(), 4000))
	}
	if !strings.Contains(e.Logs.String(), `"tool":"trigger-long-running-operation","decision":"allowed","upstream_status":200`) {
		t.Error("no audit line for the long-running call")
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
