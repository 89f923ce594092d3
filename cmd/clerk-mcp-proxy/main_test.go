package main

import (
	"bytes"
	"context"
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
