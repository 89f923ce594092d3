package clerkmcp_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/clerkmcp"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mockclerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/syncbuf"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testredis"
)

func TestMain(m *testing.M) { os.Exit(testredis.RunMain(m)) }

// serveLibrary serves a server built through the public package only.
func serveLibrary(t *testing.T, o clerkmcp.Options, add func(*clerkmcp.Server)) *e2etest.Env {
	t.Helper()
	return e2etest.ServeLibrary(t, o, func(srv *clerkmcp.Server) error { add(srv); return nil })
}

// whoami answers the caller's identity as the tool sees it.
func whoami(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	id, ok := clerkmcp.IdentityFrom(ctx)
	if !ok {
		return mcp.NewToolResultStructuredOnly(map[string]any{"user": "anonymous"}), nil
	}
	return mcp.NewToolResultStructuredOnly(map[string]any{"user": id.UserID, "org_role": id.OrgRole, "org_id": id.OrgID,
		"perms": strings.Join(id.OrgPermissions, " ")}), nil
}

// TestLibraryRules: tools added with rules in code (public, org role,
// scopes through Options.Rules), no demonstration tools, a panicking
// handler; driven by mcp-go clients for an org admin, an org member and an
// anonymous client, signed in through the fake Clerk.
func TestLibraryRules(t *testing.T) {
	users := mockclerk.DefaultUsers() // alice: Acme admin; carol: Acme member
	var setErr error
	e := serveLibrary(t, clerkmcp.Options{NoDemoTools: true, Rules: map[string]clerkmcp.Rule{"report": {Scopes: []string{"reports:read"}}}},
		func(srv *clerkmcp.Server) {
			must := func(err error) {
				if err != nil {
					t.Fatal(err)
				}
			}
			must(srv.AddTool(mcp.NewTool("status"), whoami, clerkmcp.Rule{Public: true}))
			must(srv.AddTool(mcp.NewTool("admin-report"), whoami, clerkmcp.Rule{OrgRoles: []string{"org:admin"}}))
			must(srv.AddTool(mcp.NewTool("whoami"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				res, _ := whoami(ctx, req)
				info, err := srv.ClerkUserInfo(ctx)
				if err != nil {
					return nil, err
				}
				res.StructuredContent.(map[string]any)["email"] = info["email"]
				return res, nil
			}, clerkmcp.Rule{}))
			srv.MCPServer().AddTool(mcp.NewTool("report"), whoami)
			srv.MCPServer().AddTool(mcp.NewTool("boom"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				panic("boom")
			})
			setErr = srv.SetToolRule("late", clerkmcp.Rule{Scopes: []string{"never:offered"}})
		})
	if setErr == nil || !strings.Contains(setErr.Error(), "never:offered") {
		t.Fatalf("SetToolRule with a scope the AS does not offer: %v", setErr)
	}

	anon := e.MCPClientWith("")
	if names := e2etest.ToolNames(t, anon); !slices.Equal(names, []string{"admin-report", "boom", "report", "status", "whoami"}) {
		t.Fatalf("anonymous list (no demo tools): %v", names)
	}
	if out, err := e2etest.CallTool(anon, "status", nil); err != nil || out["user"] != "anonymous" {
		t.Fatalf("public tool: %v %v", out, err)
	}
	if _, err := e2etest.CallTool(anon, "whoami", nil); err == nil {
		t.Fatal("protected tool without a token answered")
	}

	admin, member := e.MCPClient(users[0].ID), e.MCPClient(users[2].ID)
	out, err := e2etest.CallTool(admin, "whoami", nil)
	if err != nil || out["user"] != users[0].ID || out["org_role"] != "org:admin" || out["org_id"] != users[0].Org.ID ||
		out["email"] != users[0].Email || !strings.Contains(out["perms"].(string), "org:mcp:use") {
		t.Fatalf("admin whoami: %v %v", out, err)
	}
	if out, err := e2etest.CallTool(admin, "admin-report", nil); err != nil || out["user"] != users[0].ID {
		t.Fatalf("admin calls the admin tool: %v %v", out, err)
	}
	if names := e2etest.ToolNames(t, member); slices.Contains(names, "admin-report") {
		t.Fatalf("member sees %v", names)
	}
	if _, err := e2etest.CallTool(member, "admin-report", nil); err == nil || !strings.Contains(err.Error(), "org:admin") {
		t.Fatalf("member calls the admin tool: %v", err)
	}
	if _, err := e2etest.CallTool(member, "report", nil); err == nil {
		t.Fatal("a tool needing reports:read answered a token without it")
	}
	if _, err := e2etest.CallTool(admin, "boom", nil); err == nil || strings.Contains(err.Error(), "panic") {
		t.Fatalf("panicking tool: %v", err)
	}
	if out, err := e2etest.CallTool(admin, "whoami", nil); err != nil || out["user"] != users[0].ID {
		t.Fatalf("after the panic: %v %v", out, err)
	}
}

// TestIdentitiesNeverCross: two users call the same tool from 50 goroutines
// at once (run with -race); every answer is the caller's own identity.
func TestIdentitiesNeverCross(t *testing.T) {
	users := mockclerk.DefaultUsers()
	e := serveLibrary(t, clerkmcp.Options{NoDemoTools: true}, func(srv *clerkmcp.Server) {
		srv.MCPServer().AddTool(mcp.NewTool("whoami"), whoami)
	})
	clients := map[string]*client.Client{users[0].ID: e.MCPClient(users[0].ID), users[1].ID: e.MCPClient(users[1].ID)}
	ids := []string{users[0].ID, users[1].ID}
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Add(1)
		go func(want string) {
			defer wg.Done()
			out, err := e2etest.CallTool(clients[want], "whoami", nil)
			if err != nil || out["user"] != want {
				errs <- fmt.Errorf("caller %s got %v (%v)", want, out, err)
			}
		}(ids[i%2])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestRun: Run reads the environment, builds the server, hands it to add
// and serves until its context ends, then returns cleanly. (t.Setenv: not
// parallel.)
func TestRun(t *testing.T) {
	lib := e2etest.StartLibrary(t, nil, map[string]string{"LISTEN_ADDR": "127.0.0.1:0"})
	for k, v := range lib.Env {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	added := false
	err := clerkmcp.Run(ctx, clerkmcp.Options{NoDemoTools: true}, func(srv *clerkmcp.Server) error {
		added = true
		cancel() // serve, then stop at once
		return srv.AddTool(mcp.NewTool("t"), whoami, clerkmcp.Rule{})
	})
	if err != nil || !added {
		t.Fatalf("Run: %v (add called: %v)", err, added)
	}
	if err := clerkmcp.Run(context.Background(), clerkmcp.Options{}, func(*clerkmcp.Server) error { return errors.New("no tools today") }); err == nil ||
		!strings.Contains(err.Error(), "no tools today") {
		t.Fatalf("add's error: %v", err)
	}
}

// TestREADMEProgramBuilds: the program of the README's "Add your own tools"
// compiles against this package as it is (the README stays true).
func TestREADMEProgramBuilds(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n## Add your own tools\n")
	_, code, ok2 := strings.Cut(section, "```go\n")
	code, _, ok3 := strings.Cut(code, "```")
	if !ok || !ok2 || !ok3 || !strings.HasPrefix(code, "package main") {
		t.Fatal("README.md has no Go program under \"Add your own tools\"")
	}
	if lines := strings.Count(code, "\n"); lines > 30 {
		t.Errorf("the README program has %d lines; it is meant to be short", lines)
	}
	// Inside the module (a directory the go tool's ./... skips), so it
	// builds against this checkout.
	dir, err := os.MkdirTemp("..", "_readme")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(code), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", os.DevNull, "./"+filepath.Base(dir))
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go build of the README program: %v\n%s", err, out)
	}
}

// TestOrgRulesWithoutBackendAPIWarn: an organisation rule in code on a
// server without CLERK_SECRET_KEY is refused to everyone; New says so, once.
func TestOrgRulesWithoutBackendAPIWarn(t *testing.T) {
	lib := e2etest.StartLibrary(t, nil, map[string]string{"CLERK_SECRET_KEY": ""})
	cfg, err := clerkmcp.LoadEnv(lib.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	srv, err := clerkmcp.New(context.Background(), cfg, clerkmcp.Options{Logger: slog.New(slog.NewTextHandler(logs, nil)),
		Rules: map[string]clerkmcp.Rule{"audit": {OrgRoles: []string{"org:admin"}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.SetToolRule("other", clerkmcp.Rule{OrgPermissions: []string{"org:x:y"}}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "CLERK_SECRET_KEY is unset"); n != 1 {
		t.Fatalf("warned %d times, want once:\n%s", n, logs.String())
	}
}
