package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mockclerk"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestBadConfigurationListsEveryProblem(t *testing.T) {
	users := filepath.Join(t.TempDir(), "users.json")
	_ = os.WriteFile(users, []byte(`{"not":"an array"}`), 0o600)
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"-token-format", "xml", "-access-token-ttl", "soon", "-users", users,
		"-issuer", "https://clerk.example.com/path", "-dcr", "maybe"}, env(nil), &out, &errb, nil)
	if code != 2 {
		t.Fatalf("exit code %d, want 2", code)
	}
	for _, want := range []string{"token format", "TTL", "users file", "issuer", "dcr"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errb.String())
		}
	}
	if code := run(context.Background(), []string{"-no-such-flag"}, env(nil), &out, &errb, nil); code != 2 {
		t.Errorf("unknown flag: exit %d", code)
	}
}

func TestRunServesAndHealthcheck(t *testing.T) {
	users := filepath.Join(t.TempDir(), "users.json")
	_ = os.WriteFile(users, []byte(`[{"id":"user_custom","first_name":"Ada","last_name":"L","email":"ada@example.com"}]`), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *mockclerk.Running, 1)
	done := make(chan int, 1)
	var out, errb bytes.Buffer
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-users", users, "-client-id", "flagwins"},
			env(map[string]string{"MOCKCLERK_CLIENT_ID": "fromenv", "MOCKCLERK_CLIENT_SECRET": "envsecret",
				"MOCKCLERK_REDIRECT_URIS": "http://127.0.0.1:1/a,http://127.0.0.1:1/b", "MOCKCLERK_TOKEN_FORMAT": "jwt"}),
			&out, &errb, func(r *mockclerk.Running) { ready <- r })
	}()
	var r *mockclerk.Running
	select {
	case r = <-ready:
	case code := <-done:
		t.Fatalf("exited %d: %s", code, errb.String())
	}
	cfg := r.Config()
	if cfg.ClientID != "flagwins" || cfg.ClientSecret != "envsecret" || len(cfg.RedirectURIs) != 2 || cfg.TokenFormat != "jwt" {
		t.Errorf("effective config: %+v", cfg)
	}
	if u := r.Users(); len(u) != 1 || u[0].ID != "user_custom" {
		t.Errorf("users: %+v", u)
	}
	resp, err := http.Get(r.URL + "/.well-known/openid-configuration")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("discovery: %v", err)
	}
	resp.Body.Close()
	var hb bytes.Buffer
	if code := run(context.Background(), []string{"-healthcheck", "-addr", r.Addr()}, env(nil), &hb, &hb, nil); code != 0 {
		t.Errorf("healthcheck against a running fake: %d %s", code, hb.String())
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("shutdown exit %d", code)
	}
	if code := run(context.Background(), []string{"-healthcheck", "-addr", "127.0.0.1:1"}, env(nil), &hb, &hb, nil); code != 1 {
		t.Errorf("healthcheck against nothing: %d", code)
	}
}
