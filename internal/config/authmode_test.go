package config

import (
	"strings"
	"testing"
)

// TestAuthModes: AUTH_MODE picks what each mode requires, and an unknown
// mode is refused with a message naming it.
func TestAuthModes(t *testing.T) {
	without := func(keys ...string) map[string]string {
		e := good()
		for _, k := range keys {
			delete(e, k)
		}
		return e
	}
	with := func(e map[string]string, kv ...string) map[string]string {
		for i := 0; i < len(kv); i += 2 {
			e[kv[i]] = kv[i+1]
		}
		return e
	}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		mode    string // the effective mode when Load succeeds
		scopes  string // the effective SCOPES_SUPPORTED
		problem string // a substring of the error; "" when Load succeeds
	}{
		{"default is proxy", good(), AuthProxy, "openid profile email", ""},
		{"proxy needs the OAuth application", with(without("CLERK_CLIENT_SECRET"), "AUTH_MODE", "proxy"), "", "", "CLERK_CLIENT_SECRET is required"},
		{"clerk with the OAuth application", with(good(), "AUTH_MODE", "clerk"), AuthClerk, "profile email", ""},
		{"clerk with only the secret key", with(without("CLERK_CLIENT_ID", "CLERK_CLIENT_SECRET"), "AUTH_MODE", "clerk", "CLERK_SECRET_KEY", "sk_test_abc"), AuthClerk, "profile email", ""},
		{"clerk mode name is case-insensitive", with(good(), "AUTH_MODE", "Clerk"), AuthClerk, "profile email", ""},
		{"clerk keeps an explicit SCOPES_SUPPORTED", with(good(), "AUTH_MODE", "clerk", "SCOPES_SUPPORTED", "mcp:use"), AuthClerk, "mcp:use", ""},
		{"clerk without any credential", with(without("CLERK_CLIENT_ID", "CLERK_CLIENT_SECRET"), "AUTH_MODE", "clerk"), "", "", "AUTH_MODE=clerk needs a way to verify Clerk's tokens"},
		{"clerk with half the OAuth application", with(without("CLERK_CLIENT_SECRET"), "AUTH_MODE", "clerk"), "", "", "CLERK_CLIENT_ID and CLERK_CLIENT_SECRET go together"},
		{"clerk still needs CLERK_DOMAIN", with(without("CLERK_DOMAIN"), "AUTH_MODE", "clerk"), "", "", "CLERK_DOMAIN is required"},
		{"app with APP_URL and the secret key", with(without("CLERK_CLIENT_ID", "CLERK_CLIENT_SECRET"), "AUTH_MODE", "app", "APP_URL", "https://app.example.com/", "CLERK_SECRET_KEY", "sk_live_x"), AuthApp, "openid profile email", ""},
		{"app without APP_URL", with(good(), "AUTH_MODE", "app", "CLERK_SECRET_KEY", "sk_live_x"), "", "", "AUTH_MODE=app needs APP_URL"},
		{"app without the secret key", with(good(), "AUTH_MODE", "app", "APP_URL", "https://app.example.com"), "", "", "AUTH_MODE=app needs CLERK_SECRET_KEY"},
		{"app with an APP_URL carrying a query", with(good(), "AUTH_MODE", "app", "APP_URL", "https://app.example.com/x?y=1", "CLERK_SECRET_KEY", "sk_live_x"), "", "", "must be an absolute http(s) URL without query"},
		{"APP_URL outside app mode", with(good(), "APP_URL", "https://app.example.com"), "", "", "APP_URL is set but only applies with AUTH_MODE=app"},
		{"unknown mode", with(good(), "AUTH_MODE", "gateway"), "", "", `AUTH_MODE must be proxy, clerk or app (got "gateway")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(env(tc.env), ModeServe)
			if tc.problem != "" {
				if err == nil || !strings.Contains(err.Error(), tc.problem) {
					t.Fatalf("got %v, want a problem containing %q", err, tc.problem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.AuthMode != tc.mode || strings.Join(c.ScopesSupported, " ") != tc.scopes {
				t.Fatalf("mode %q scopes %q, want %q %q", c.AuthMode, strings.Join(c.ScopesSupported, " "), tc.mode, tc.scopes)
			}
		})
	}
}

// TestClerkAllowedClients: the list is read in clerk mode, and ignored with
// a warning elsewhere.
func TestClerkAllowedClients(t *testing.T) {
	e := good()
	e["AUTH_MODE"], e["CLERK_ALLOWED_CLIENT_IDS"] = "clerk", "abcdEFGHijklMNOP, QRSTuvwxYZ012345"
	c, err := Load(env(e), ModeServe)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.ClerkAllowedClients, ",") != "abcdEFGHijklMNOP,QRSTuvwxYZ012345" {
		t.Fatalf("allowed clients %q", c.ClerkAllowedClients)
	}
	e["AUTH_MODE"] = "proxy"
	c, err = Load(env(e), ModeServe)
	if err != nil {
		t.Fatal(err)
	}
	if w := strings.Join(c.Warnings(), "\n"); !strings.Contains(w, "CLERK_ALLOWED_CLIENT_IDS is set but only applies with AUTH_MODE=clerk") {
		t.Fatalf("warnings %q", w)
	}
}

func TestAppOrigin(t *testing.T) {
	if got := (Config{AppURL: "https://App.Example.com:8443/team"}).AppOrigin(); got != "https://app.example.com:8443" {
		t.Fatalf("AppOrigin = %q", got)
	}
}
