package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
)

// TestDevClerkMode: `dev --mode clerk` is the one-command way to try clerk
// mode: the protected-resource metadata names the fake Clerk, a client
// registers there (DCR on), signs in, and calls the tools with Clerk's token;
// the proxy's own /register answers 404.
func TestDevClerkMode(t *testing.T) {
	base, banner := startDev(t, "dev", "--mode", "clerk")
	m := regexp.MustCompile(`Fake Clerk\s+(http://\S+)`).FindStringSubmatch(banner)
	if m == nil || !strings.Contains(banner, "Mode               clerk") {
		t.Fatalf("banner:\n%s", banner)
	}
	clerkURL := m[1]
	// Clerk is the authorization server: the Try it page, a client of this
	// server's own /register and /token, is off.
	if r, err := http.Get(base + "/try"); err != nil || r.StatusCode != http.StatusNotFound || strings.Contains(banner, "/try") {
		t.Fatalf("GET /try in clerk mode: %v %v, want 404 and no banner line", r, err)
	} else {
		r.Body.Close()
	}
	resp, err := http.Get(base + "/.well-known/oauth-protected-resource/mcp")
	if err != nil {
		t.Fatal(err)
	}
	var prm struct {
		AuthorizationServers []string `json:"authorization_servers"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&prm)
	resp.Body.Close()
	if len(prm.AuthorizationServers) != 1 || prm.AuthorizationServers[0] != clerkURL {
		t.Fatalf("authorization_servers %v, want [%s]", prm.AuthorizationServers, clerkURL)
	}
	if r, err := http.Post(base+"/register", "application/json", bytes.NewReader([]byte(`{}`))); err != nil || r.StatusCode != http.StatusNotFound {
		t.Fatalf("POST /register in clerk mode: %v %v, want 404", r.StatusCode, err)
	}
	ctx := context.Background()
	c, err := testflow.RegisterAtClerk(ctx, clerkURL, "email offline_access profile")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := testflow.ClerkToken(ctx, clerkURL, c, "profile email", base+"/mcp")
	if err != nil {
		t.Fatal(err)
	}
	e := &e2etest.Env{T: t, BaseURL: base}
	session := e.Initialize(tok)
	if r, info := e.CallTool(tok, session, "get-user-info"); r.Status != http.StatusOK || info["client_id"] != c.ID {
		t.Fatalf("get-user-info with Clerk's token: %d %s", r.Status, r.Body)
	}
}

// TestDevModeFlagRefusals: a mode that is not known stops dev at once with
// the configuration's message.
func TestDevModeFlagRefusals(t *testing.T) {
	for _, tc := range []struct{ mode, want string }{
		{"bogus", `AUTH_MODE must be proxy, clerk or app (got "bogus")`},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), []string{"dev", "--mode=" + tc.mode}, func(string) string { return "" }, &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("dev --mode=%s: exit %d, stderr %q", tc.mode, code, errb.String())
		}
	}
}

// TestDevAppMode: `dev --mode app` signs users in through the fake's team
// app: the whole flow as a browser and client do it.
func TestDevAppMode(t *testing.T) {
	base, banner := startDev(t, "dev", "--mode", "app")
	if !strings.Contains(banner, "Mode               app") {
		t.Fatalf("banner:\n%s", banner)
	}
	e := &e2etest.Env{T: t, BaseURL: base}
	c := e.Register("http://127.0.0.1:33419/callback")
	e.Login(c, testflow.Choices{})
	session := e.Initialize(c.AccessToken)
	if r, info := e.CallTool(c.AccessToken, session, "get-user-info"); r.Status != http.StatusOK || info["userId"] == nil {
		t.Fatalf("get-user-info: %d %s", r.Status, r.Body)
	}
}
