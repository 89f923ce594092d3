package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mockclerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/syncbuf"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// started is a run in progress.
type started struct {
	*mockclerk.Running
	stdout, stderr *syncbuf.Buffer
	stop           func() int // cancels the context and returns the exit code
}

// startRun runs the binary's run in the background until it is ready.
func startRun(t *testing.T, args []string, environ map[string]string) started {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *mockclerk.Running, 1)
	done := make(chan int, 1)
	s := started{stdout: &syncbuf.Buffer{}, stderr: &syncbuf.Buffer{}}
	go func() {
		done <- run(ctx, args, env(environ), s.stdout, s.stderr, func(r *mockclerk.Running) { ready <- r })
	}()
	select {
	case s.Running = <-ready:
	case code := <-done:
		cancel()
		t.Fatalf("run exited %d before it was ready: %s", code, s.stderr.String())
	}
	var once sync.Once
	code := -1
	s.stop = func() int {
		once.Do(func() { cancel(); code = <-done })
		return code
	}
	t.Cleanup(func() { s.stop() })
	return s
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// freeAddr is a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func getJSON(t *testing.T, target string, header http.Header) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, target, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestBadConfiguration(t *testing.T) {
	t.Parallel()
	notArray := writeFile(t, "users.json", `{"not":"an array"}`)
	badUser := writeFile(t, "bad-user.json", `[{"id":"bob","email":""}]`)
	missing := filepath.Join(t.TempDir(), "missing.json")
	for _, tc := range []struct {
		name    string
		args    []string
		environ map[string]string
		want    []string // each must appear in stderr
	}{
		{"unknown token format", []string{"-token-format", "xml"}, nil, []string{"token format"}},
		{"unparsable TTL", []string{"-access-token-ttl", "soon"}, nil, []string{"TTL"}},
		{"negative TTL", []string{"-access-token-ttl", "-5s"}, nil, []string{"TTL"}},
		{"zero TTL", []string{"-access-token-ttl", "0s"}, nil, []string{"TTL"}},
		{"unreadable users file", []string{"-users", missing}, nil, []string{"users file"}},
		{"users file not an array", []string{"-users", notArray}, nil, []string{"users file"}},
		{"invalid user", []string{"-users", badUser}, nil, []string{"user 1"}},
		{"issuer with a path", []string{"-issuer", "https://clerk.example.com/path"}, nil, []string{"issuer"}},
		{"issuer not http", []string{"-issuer", "ftp://clerk.example.com"}, nil, []string{"issuer"}},
		{"dcr not a bool", []string{"-dcr", "maybe"}, nil, []string{"dcr"}},
		{"log format", []string{"-log-format", "yaml"}, nil, []string{"log format"}},
		{"stray argument", []string{"-dcr", "true", "extra"}, nil, []string{"unexpected arguments"}},
		{"addr without port", []string{"-addr", "localhost"}, nil, []string{"addr"}},
		{"redirect URI with fragment", []string{"-redirect-uri", "http://127.0.0.1:1/cb#x"}, nil, []string{"redirect URI"}},
		{"empty client id", []string{"-client-id", ""}, nil, []string{"client id"}},
		{"env twin", nil, map[string]string{"MOCKCLERK_TOKEN_FORMAT": "xml", "MOCKCLERK_ACCESS_TOKEN_TTL": "soon"}, []string{"token format", "TTL"}},
		{"every problem at once", []string{"-token-format", "xml", "-access-token-ttl", "soon", "-users", missing,
			"-issuer", "https://clerk.example.com/path", "-dcr", "maybe", "-log-format", "yaml", "-addr", "nope"}, nil,
			[]string{"token format", "TTL", "users file", "issuer", "dcr", "log format", "addr"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			// Should a bad configuration be accepted, the server stops at
			// once (ready cancels) and the test fails instead of hanging.
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			called := false
			args := append([]string{"-addr", "127.0.0.1:0"}, tc.args...)
			code := run(ctx, args, env(tc.environ), &out, &errb, func(*mockclerk.Running) { called = true; cancel() })
			if code != 2 || called || out.Len() != 0 {
				t.Fatalf("exit %d, ready called %v, stdout %q; want 2, no server", code, called, out.String())
			}
			msg := errb.String()
			if !strings.Contains(msg, "bad configuration") {
				t.Errorf("stderr: %s", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("stderr lacks %q:\n%s", w, msg)
				}
			}
		})
	}

	t.Run("unknown flag", func(t *testing.T) {
		var out, errb bytes.Buffer
		if code := run(context.Background(), []string{"-no-such-flag"}, env(nil), &out, &errb, nil); code != 2 || !strings.Contains(errb.String(), "no-such-flag") {
			t.Errorf("exit %d: %s", code, errb.String())
		}
	})
}

func TestRunServesDiscovery(t *testing.T) {
	t.Parallel()
	s := startRun(t, []string{"-addr", "127.0.0.1:0", "-redirect-uri", "http://127.0.0.1:1/cb"}, nil)
	if s.URL != "http://"+s.Addr() {
		t.Errorf("URL %s, want the bound address %s", s.URL, s.Addr())
	}
	status, doc := getJSON(t, s.URL+"/.well-known/openid-configuration", nil)
	if status != 200 || doc["issuer"] != s.URL || doc["introspection_endpoint"] != s.URL+"/oauth/token_info" {
		t.Errorf("openid-configuration: %d %v", status, doc)
	}
	status, as := getJSON(t, s.URL+"/.well-known/oauth-authorization-server", nil)
	if _, dcr := as["registration_endpoint"]; status != 200 || as["token_endpoint"] != s.URL+"/oauth/token" || dcr {
		t.Errorf("oauth-authorization-server: %d %v", status, as)
	}
	cfg := s.Config()
	if cfg.ClientID != "mockclerk-client" || cfg.ClientSecret != "mockclerk-secret" || cfg.TokenFormat != "jwt" ||
		cfg.AccessTokenTTL != 24*time.Hour || cfg.DCR || !strings.HasPrefix(cfg.SecretKey, "sk_test_") {
		t.Errorf("defaults: %+v", cfg)
	}
	// The generated Backend API key is announced, and it works.
	if out := s.stdout.String(); !strings.Contains(out, "mockclerk listening on "+s.Addr()) || !strings.Contains(out, cfg.SecretKey) {
		t.Errorf("stdout: %q", out)
	}
	if status, _ := getJSON(t, s.URL+"/v1/users/"+s.Users()[0].ID, http.Header{"Authorization": {"Bearer " + cfg.SecretKey}}); status != 200 {
		t.Errorf("Backend API with the announced key: %d", status)
	}
	if code := s.stop(); code != 0 {
		t.Errorf("exit %d after cancel: %s", code, s.stderr.String())
	}
	if resp, err := http.Get(s.URL + "/.well-known/openid-configuration"); err == nil {
		resp.Body.Close()
		t.Error("still serving after the context was cancelled")
	}
}

// TestDefaultIssuer: without -issuer the issuer is the bound origin, with
// loopback for an unspecified host (http://0.0.0.0:… fails issuer checks
// against http://127.0.0.1:…); a missing redirect URI is warned about.
func TestDefaultIssuer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, addr string
		redirect   []string
		warn       bool
	}{
		{"loopback", "127.0.0.1:0", []string{"-redirect-uri", "http://127.0.0.1:1/cb"}, false},
		{"wildcard IPv4 host", "0.0.0.0:0", []string{"-redirect-uri", "http://127.0.0.1:1/cb"}, false},
		{"no host", ":0", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startRun(t, append([]string{"-addr", tc.addr}, tc.redirect...), nil)
			_, port, _ := net.SplitHostPort(s.Addr())
			if want := "http://127.0.0.1:" + port; s.URL != want {
				t.Errorf("issuer %s, want %s", s.URL, want)
			}
			if status, doc := getJSON(t, s.URL+"/.well-known/openid-configuration", nil); status != 200 || doc["issuer"] != s.URL {
				t.Errorf("discovery at the issuer: %d %v", status, doc)
			}
			if warned := strings.Contains(s.stderr.String(), "no redirect URI"); warned != tc.warn {
				t.Errorf("redirect URI warning %v, want %v: %s", warned, tc.warn, s.stderr.String())
			}
		})
	}
}

func TestHealthcheck(t *testing.T) {
	t.Parallel()
	s := startRun(t, []string{"-addr", "127.0.0.1:0"}, nil)
	_, port, _ := net.SplitHostPort(s.Addr())
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }))
	t.Cleanup(failing.Close)
	for _, tc := range []struct {
		name    string
		args    []string
		environ map[string]string
		want    int
	}{
		{"running", []string{"-healthcheck", "-addr", s.Addr()}, nil, 0},
		{"wildcard host probes loopback", []string{"-healthcheck", "-addr", "0.0.0.0:" + port}, nil, 0},
		{"addr from the env twin", []string{"-healthcheck"}, map[string]string{"MOCKCLERK_ADDR": s.Addr()}, 0},
		{"nothing listening", []string{"-healthcheck", "-addr", freeAddr(t)}, nil, 1},
		{"answers 500", []string{"-healthcheck", "-addr", strings.TrimPrefix(failing.URL, "http://")}, nil, 1},
		{"bad addr", []string{"-healthcheck", "-addr", "nope"}, nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), tc.args, env(tc.environ), &out, &errb, func(*mockclerk.Running) { t.Error("healthcheck started a server") })
			if code != tc.want {
				t.Errorf("exit %d, want %d: %s", code, tc.want, errb.String())
			}
			if tc.want != 0 && !strings.Contains(errb.String(), "healthcheck") {
				t.Errorf("stderr: %q", errb.String())
			}
		})
	}
}

func TestEnvTwinsAndFlagPrecedence(t *testing.T) {
	t.Parallel()
	environ := map[string]string{
		"MOCKCLERK_ADDR":             "127.0.0.1:0",
		"MOCKCLERK_ISSUER":           "http://clerk.test:9400",
		"MOCKCLERK_CLIENT_ID":        "fromenv",
		"MOCKCLERK_CLIENT_SECRET":    "envsecret",
		"MOCKCLERK_REDIRECT_URIS":    "http://127.0.0.1:1/a, http://127.0.0.1:1/b",
		"MOCKCLERK_TOKEN_FORMAT":     "jwt",
		"MOCKCLERK_ACCESS_TOKEN_TTL": "90s",
		"MOCKCLERK_DCR":              "true",
		"MOCKCLERK_SECRET_KEY":       "sk_test_fromenv",
		"MOCKCLERK_LOG_FORMAT":       "json",
	}

	t.Run("env only", func(t *testing.T) {
		s := startRun(t, nil, environ)
		cfg := s.Config()
		if cfg.Issuer != "http://clerk.test:9400" || cfg.ClientID != "fromenv" || cfg.ClientSecret != "envsecret" ||
			strings.Join(cfg.RedirectURIs, " ") != "http://127.0.0.1:1/a http://127.0.0.1:1/b" || cfg.TokenFormat != "jwt" ||
			cfg.AccessTokenTTL != 90*time.Second || !cfg.DCR || cfg.SecretKey != "sk_test_fromenv" {
			t.Errorf("config from the environment: %+v", cfg)
		}
		// Served as configured: issuer and DCR in the metadata, the key on the Backend API.
		base := "http://" + s.Addr()
		if _, as := getJSON(t, base+"/.well-known/oauth-authorization-server", nil); as["issuer"] != "http://clerk.test:9400" ||
			as["registration_endpoint"] != "http://clerk.test:9400/oauth/register" {
			t.Errorf("metadata: %v", as)
		}
		user := s.Users()[0].ID
		if status, _ := getJSON(t, base+"/v1/users/"+user, http.Header{"Authorization": {"Bearer sk_test_fromenv"}}); status != 200 {
			t.Errorf("Backend API with the env key: %d", status)
		}
	})

	t.Run("flags win", func(t *testing.T) {
		s := startRun(t, []string{"-addr", "127.0.0.1:0", "-issuer", "http://flag.test", "-client-id", "fromflag",
			"-redirect-uri", "http://127.0.0.1:2/only", "-token-format", "opaque", "-access-token-ttl", "2h", "-dcr", "false",
			"-secret-key", "sk_test_fromflag"}, environ)
		cfg := s.Config()
		if cfg.Issuer != "http://flag.test" || cfg.ClientID != "fromflag" || cfg.ClientSecret != "envsecret" ||
			strings.Join(cfg.RedirectURIs, " ") != "http://127.0.0.1:2/only" || cfg.TokenFormat != "opaque" ||
			cfg.AccessTokenTTL != 2*time.Hour || cfg.DCR || cfg.SecretKey != "sk_test_fromflag" {
			t.Errorf("flags over the environment: %+v", cfg)
		}
	})

	t.Run("MOCKCLERK_REDIRECT_URI singular", func(t *testing.T) {
		s := startRun(t, []string{"-addr", "127.0.0.1:0"}, map[string]string{"MOCKCLERK_REDIRECT_URI": "http://127.0.0.1:3/cb"})
		if got := s.Config().RedirectURIs; len(got) != 1 || got[0] != "http://127.0.0.1:3/cb" {
			t.Errorf("redirect URIs %v", got)
		}
	})
}

func TestUsersFile(t *testing.T) {
	t.Parallel()
	users := writeFile(t, "users.json", `[
	 {"id":"user_custom0001","first_name":"Ada","last_name":"Lovelace","email":"ada@example.com","username":"ada",
	  "org":{"id":"org_custom0001","name":"Engines","slug":"engines","role":"org:admin","permissions":["org:mcp:use"]}},
	 {"id":"user_custom0002","first_name":"Charles","last_name":"Babbage","email":"charles@example.com"}]`)
	s := startRun(t, []string{"-addr", "127.0.0.1:0", "-users", users, "-redirect-uri", "http://127.0.0.1:1/cb", "-secret-key", "sk_test_users"}, nil)
	got := s.Users()
	if len(got) != 2 || got[0].ID != "user_custom0001" || got[0].Org == nil || got[0].Org.Slug != "engines" || got[1].Email != "charles@example.com" {
		t.Fatalf("users: %+v", got)
	}
	key := http.Header{"Authorization": {"Bearer sk_test_users"}}
	if status, u := getJSON(t, s.URL+"/v1/users/user_custom0002", key); status != 200 || u["first_name"] != "Charles" {
		t.Errorf("custom user on the Backend API: %d %v", status, u)
	}
	if status, _ := getJSON(t, s.URL+"/v1/users/"+mockclerk.DefaultUsers()[0].ID, key); status != 404 {
		t.Errorf("a built-in user is still seeded: %d", status)
	}
	// The sign-in form offers the custom users, the first preselected.
	resp, err := http.Get(s.URL + "/oauth/authorize?response_type=code&client_id=mockclerk-client&redirect_uri=" +
		"http%3A%2F%2F127.0.0.1%3A1%2Fcb&state=state-12345678")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), `value="user_custom0001" checked`) ||
		!strings.Contains(string(page), `value="user_custom0002"`) || strings.Contains(string(page), "alice@example.com") {
		t.Errorf("sign-in page: %d\n%s", resp.StatusCode, page)
	}
}
