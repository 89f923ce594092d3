package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestServeRefusesBadConfigurationAtOnce(t *testing.T) {
	env := map[string]string{
		"CLERK_DOMAIN":        "https://clerk.example.com/path",
		"CLERK_CLIENT_SECRET": "do-not-print-this-secret",
		"BASE_URL":            "https://mcp.example.com?x=1",
		"PROXY_SECRET":        "too-short",
	}
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"serve"}, func(k string) string { return env[k] }, &out, &errb)
	if code != 2 {
		t.Fatalf("exit code %d, want 2", code)
	}
	msg := errb.String()
	for _, want := range []string{"CLERK_DOMAIN", "CLERK_CLIENT_ID is required", "BASE_URL", "REDIS_URL is required", "PROXY_SECRET must be at least 32 bytes"} {
		if !strings.Contains(msg, want) {
			t.Errorf("stderr lacks %q:\n%s", want, msg)
		}
	}
	for _, secret := range []string{"do-not-print-this-secret", "too-short"} {
		if strings.Contains(msg, secret) {
			t.Errorf("stderr leaks %q", secret)
		}
	}
}

func TestCommands(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"version"}, func(string) string { return "" }, &out, &errb); code != 0 || !strings.Contains(out.String(), "clerk-mcp-proxy") {
		t.Fatalf("version: %d %q", code, out.String())
	}
	if code := run(context.Background(), []string{"bogus"}, func(string) string { return "" }, &out, &errb); code != 2 {
		t.Fatalf("unknown command: %d", code)
	}
	// Nothing listens on this port: the health check fails cleanly.
	if code := run(context.Background(), []string{"healthcheck"}, func(k string) string {
		if k == "LISTEN_ADDR" {
			return "127.0.0.1:1"
		}
		return ""
	}, &out, &errb); code != 1 {
		t.Fatalf("healthcheck against nothing: %d", code)
	}
}

// TestMain lets a test run this binary's main() as a child process (the
// child's real stderr is what go-redis writes to, outside run's writers).
func TestMain(m *testing.M) {
	if os.Getenv("CLERK_MCP_PROXY_RUN_MAIN") == "1" {
		main()
	}
	os.Exit(m.Run())
}

// Redis down at start-up: serve exits 1 (its supervisor restarts it) with a
// message that names REDIS_URL, without its password, and every line of the
// process's stderr, go-redis's own complaints included, is one JSON object.
func TestServeWithoutRedisExitsWithAClearJSONMessage(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	cmd := exec.Command(os.Args[0], "serve")
	cmd.Env = []string{"CLERK_MCP_PROXY_RUN_MAIN=1",
		"CLERK_DOMAIN=http://127.0.0.1:9", "CLERK_CLIENT_ID=cid", "CLERK_CLIENT_SECRET=csecret",
		"BASE_URL=http://127.0.0.1:8080", "PROXY_SECRET=" + strings.Repeat("p", 32),
		"REDIS_URL=redis://:redis-password-value@" + addr + "/0"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 1 {
		t.Fatalf("want exit status 1, got %v\n%s", err, stderr.String())
	}
	logs := stderr.String()
	if !strings.Contains(logs, "cannot reach Redis at start-up: check REDIS_URL") || !strings.Contains(logs, addr) {
		t.Errorf("unclear message:\n%s", logs)
	}
	if strings.Contains(logs, "redis-password-value") {
		t.Errorf("the Redis password was logged:\n%s", logs)
	}
	assertJSONLines(t, logs)
}

// assertJSONLines fails unless every line of logs is one JSON object.
func assertJSONLines(t *testing.T, logs string) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Errorf("not a JSON log line: %q", line)
		}
	}
}

// TestCommandArguments proves a command given --help prints the usage and
// an unknown argument is refused with it, before anything starts: `dev
// --help` used to ignore the flag and start the dev server.
func TestCommandArguments(t *testing.T) {
	env := map[string]string{"LISTEN_ADDR": "127.0.0.1:0", "MOCKCLERK_ADDR": "127.0.0.1:0"}
	for _, tc := range []struct {
		args           []string
		code           int
		stdout, stderr string // a part of each; "" for an empty stream
	}{
		{[]string{"dev", "--help"}, 0, "usage: clerk-mcp-proxy", ""},
		{[]string{"serve", "-h"}, 0, "usage: clerk-mcp-proxy", ""},
		{[]string{"healthcheck", "help"}, 0, "usage: clerk-mcp-proxy", ""},
		{[]string{"dev", "--port=9000"}, 2, "", `unknown argument "--port=9000"`},
		{[]string{"dev", "--mode", "clerk", "extra"}, 2, "", `unknown argument "--mode clerk extra"`},
		{[]string{"serve", "extra"}, 2, "", `unknown argument "extra"`},
		{[]string{"version", "now"}, 2, "", `unknown argument "now"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			// Already cancelled: a command that starts anyway returns at once.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			var out, errb bytes.Buffer
			code := run(ctx, tc.args, func(k string) string { return env[k] }, &out, &errb)
			if code != tc.code {
				t.Errorf("exit code %d, want %d", code, tc.code)
			}
			for _, s := range []struct{ name, got, want string }{{"stdout", out.String(), tc.stdout}, {"stderr", errb.String(), tc.stderr}} {
				if s.want == "" && s.got != "" {
					t.Errorf("%s = %q, want it empty", s.name, s.got)
				} else if !strings.Contains(s.got, s.want) {
					t.Errorf("%s = %q, want it to contain %q", s.name, s.got, s.want)
				}
			}
			if tc.code == 2 && !strings.Contains(errb.String(), "usage: clerk-mcp-proxy") {
				t.Errorf("stderr lacks the usage: %q", errb.String())
			}
		})
	}
}
