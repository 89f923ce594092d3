package config

import (
	"maps"
	"os"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) Getenv { return func(k string) string { return m[k] } }

func good() map[string]string {
	return map[string]string{
		"CLERK_DOMAIN":        "your-app.clerk.accounts.dev",
		"CLERK_CLIENT_ID":     "abcdEFGHijklMNOP",
		"CLERK_CLIENT_SECRET": "supersecretvalue",
		"BASE_URL":            "https://mcp.example.com",
		"REDIS_URL":           "redis://127.0.0.1:6379/0",
		"PROXY_SECRET":        strings.Repeat("k", 32),
	}
}

func TestLoadGood(t *testing.T) {
	c, err := Load(env(good()), ModeServe)
	if err != nil {
		t.Fatal(err)
	}
	if c.ClerkIssuer != "https://your-app.clerk.accounts.dev" {
		t.Errorf("ClerkIssuer = %q", c.ClerkIssuer)
	}
	if c.Issuer() != "https://mcp.example.com" || c.Resource() != "https://mcp.example.com/mcp" || c.CallbackURL() != "https://mcp.example.com/oauth/callback" {
		t.Errorf("derived URLs wrong: %q %q %q", c.Issuer(), c.Resource(), c.CallbackURL())
	}
	if !c.Secure() || c.ListenAddr != ":8080" || c.ClerkAPIURL != DefaultClerkAPIURL {
		t.Errorf("defaults wrong: %+v", c)
	}
	if got := strings.Join(c.ClerkRequiredScopes(), " "); got != "openid profile email" {
		t.Errorf("ClerkRequiredScopes = %q", got)
	}
}

func TestLoadOriginForms(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"your-app.clerk.accounts.dev", "https://your-app.clerk.accounts.dev"},
		{"https://clerk.example.com", "https://clerk.example.com"},
		{"https://clerk.example.com/", "https://clerk.example.com"},
		{"http://127.0.0.1:9400", "http://127.0.0.1:9400"},
		{"HTTPS://Clerk.Example.com", "https://clerk.example.com"},
	} {
		e := good()
		e["CLERK_DOMAIN"] = tc.in
		c, err := Load(env(e), ModeServe)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if c.ClerkIssuer != tc.want {
			t.Errorf("%q -> %q, want %q", tc.in, c.ClerkIssuer, tc.want)
		}
	}
}

// Every problem is reported at once, and no secret value is echoed.
func TestLoadReportsAllProblems(t *testing.T) {
	e := map[string]string{
		"CLERK_DOMAIN":         "https://clerk.example.com/some/path",
		"CLERK_CLIENT_SECRET":  "s3cr3t-value-that-must-not-leak",
		"BASE_URL":             "https://mcp.example.com/?x=1",
		"PROXY_SECRET":         "short-secret-value",
		"ACCESS_TOKEN_TTL":     "forever",
		"MCP_SESSION_IDLE_TTL": "10s",
		"TOOL_SCOPES":          "broken",
		"LOG_LEVEL":            "loud",
		"ADMIN_TOKEN":          "short-admin-token",
		"CLERK_WEBHOOK_SECRET": "whsec_short-webhook-secret!",
	}
	_, err := Load(env(e), ModeServe)
	if err == nil {
		t.Fatal("expected problems")
	}
	msg := err.Error()
	for _, want := range []string{
		"CLERK_DOMAIN", "without the path", "CLERK_CLIENT_ID is required", "BASE_URL", "must not have a query",
		"REDIS_URL is required", "PROXY_SECRET must be at least 32 bytes", "ACCESS_TOKEN_TTL", "TOOL_SCOPES", "LOG_LEVEL",
		"ADMIN_TOKEN must be at least 32 bytes", "CLERK_WEBHOOK_SECRET", "MCP_SESSION_IDLE_TTL must be between 1m and 24h",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	for _, secret := range []string{"s3cr3t-value-that-must-not-leak", "short-secret-value", "short-admin-token", "short-webhook-secret"} {
		if strings.Contains(msg, secret) {
			t.Errorf("error leaks a secret: %s", msg)
		}
	}
	if len(err.(Problems)) < 8 {
		t.Errorf("expected every problem at once, got %d:\n%s", len(err.(Problems)), msg)
	}
}

// TestUpstreamURL: gateway mode's URL is checked at start-up; loopback is
// the normal case and allowed.
func TestUpstreamURL(t *testing.T) {
	for _, tc := range []struct {
		url, problem string
	}{
		{"http://127.0.0.1:3000/mcp", ""},
		{"https://mcp-upstream.internal/api/mcp?tenant=1", ""},
		{"ftp://host/mcp", "must use http or https"},
		{"http:///mcp", "has no host"},
		{"https://user:pw@host/mcp", "must not contain userinfo"},
		{"https://host/mcp#x", "must not have a fragment"},
	} {
		e := good()
		e["UPSTREAM_MCP_URL"] = tc.url
		c, err := Load(env(e), ModeServe)
		switch {
		case tc.problem == "" && (err != nil || c.UpstreamURL != tc.url):
			t.Errorf("%q: %v", tc.url, err)
		case tc.problem != "" && (err == nil || !strings.Contains(err.Error(), "UPSTREAM_MCP_URL") || !strings.Contains(err.Error(), tc.problem)):
			t.Errorf("%q: %v, want %q", tc.url, err, tc.problem)
		}
	}
	e := good()
	e["UPSTREAM_MCP_URL"], e["PUBLIC_TOOLS"] = "http://127.0.0.1:3000/mcp", "status"
	if _, err := Load(env(e), ModeServe); err == nil || !strings.Contains(err.Error(), "PUBLIC_TOOLS is not supported") {
		t.Errorf("public tools in gateway mode: %v", err)
	}
	e = good()
	e["UPSTREAM_FORWARD_USER_HEADERS"] = "true"
	if _, err := Load(env(e), ModeServe); err == nil || !strings.Contains(err.Error(), "need UPSTREAM_MCP_URL") {
		t.Errorf("forwarding without an upstream: %v", err)
	}
	e["UPSTREAM_MCP_URL"] = "http://10.0.0.5:3000/mcp?api_key=upstream-secret"
	e["UPSTREAM_FORWARD_CLERK_TOKEN"] = "true"
	c, err := Load(env(e), ModeServe)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Summary()["upstream_mcp_url"]; got != "http://10.0.0.5:3000/mcp?[redacted]" {
		t.Errorf("summary shows the upstream as %v", got)
	}
	if w := strings.Join(c.Warnings(), "\n"); !strings.Contains(w, "UPSTREAM_FORWARD_USER_HEADERS") || !strings.Contains(w, "unencrypted") {
		t.Errorf("warnings: %s", w)
	}
}

func TestParseOriginRejects(t *testing.T) {
	for _, bad := range []string{
		"ftp://x", "https://", "https://user:pw@host", "https://host/path", "https://host?q", "https://host#frag", "://nope", "https://host/#",
	} {
		if _, err := ParseOrigin(bad); err == nil {
			t.Errorf("ParseOrigin(%q) accepted", bad)
		}
	}
}

func TestToolScopesAndAllScopes(t *testing.T) {
	e := good()
	e["TOOL_SCOPES"] = "get-user-greeting=mcp:admin; get-clerk-user-profile=profile mcp:admin"
	e["SCOPES_SUPPORTED"] = "openid profile"
	c, err := Load(env(e), ModeServe)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.AllScopes(), " "); got != "openid profile mcp:admin" {
		t.Errorf("AllScopes = %q", got)
	}
	if got := c.ToolScopes["get-clerk-user-profile"]; len(got) != 2 {
		t.Errorf("ToolScopes = %v", c.ToolScopes)
	}
}

func TestToolPolicyFromEnv(t *testing.T) {
	e := good()
	e["TOOL_SCOPES"] = "notes-write=mcp:write"
	e["TOOL_ROLES"] = "admin-report=org:admin org:owner"
	e["TOOL_PERMISSIONS"] = "notes-write=org:notes:write"
	e["PUBLIC_TOOLS"] = "status, version"
	c, err := Load(env(e), ModeServe)
	if err != nil {
		t.Fatal(err)
	}
	p := c.ToolPolicy()
	if r := p.Rule("notes-write"); len(r.Scopes) != 1 || len(r.OrgPermissions) != 1 || r.Public {
		t.Errorf("notes-write rule = %+v", r)
	}
	if r := p.Rule("admin-report"); len(r.OrgRoles) != 2 {
		t.Errorf("admin-report rule = %+v", r)
	}
	if !p.Rule("status").Public || !p.Rule("version").Public || p.Rule("other").Public {
		t.Error("PUBLIC_TOOLS not applied exactly")
	}

	e["TOOL_ROLES"] = "admin-report=admin"
	e["TOOL_PERMISSIONS"] = "x"
	_, err = Load(env(e), ModeServe)
	for _, want := range []string{"TOOL_ROLES", "TOOL_PERMISSIONS"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad %s accepted: %v", want, err)
		}
	}
}

func TestDurationsAndSummary(t *testing.T) {
	e := good()
	e["ACCESS_TOKEN_TTL"] = "900"
	e["REFRESH_GRACE"] = "0s"
	e["REDIS_URL"] = "redis://user:hunter2@redis:6379/0"
	c, err := Load(env(e), ModeServe)
	if err != nil {
		t.Fatal(err)
	}
	if c.AccessTokenTTL != 15*time.Minute || c.RefreshGrace != 0 {
		t.Errorf("durations: %v %v", c.AccessTokenTTL, c.RefreshGrace)
	}
	sum := c.Summary()
	for k, v := range sum {
		s, _ := v.(string)
		for _, secret := range []string{"supersecretvalue", "hunter2", strings.Repeat("k", 32)} {
			if strings.Contains(s, secret) {
				t.Errorf("summary %s leaks a secret: %q", k, s)
			}
		}
	}
	if sum["clerk_client_secret"] != "[set]" {
		t.Errorf("secret not redacted: %v", sum["clerk_client_secret"])
	}
}

func TestDevModeNeedsNothing(t *testing.T) {
	if _, err := Load(env(nil), ModeDev); err != nil {
		t.Fatal(err)
	}
}

func TestWarnings(t *testing.T) {
	e := good()
	e["CLERK_SCOPES"] = "openid profile email"
	e["CIMD_ALLOW_LOOPBACK_FOR_TESTS"] = "true"
	c, err := Load(env(e), ModeServe)
	if err != nil {
		t.Fatal(err)
	}
	w := strings.Join(c.Warnings(), "\n")
	if !strings.Contains(w, "offline_access") || !strings.Contains(w, "Never use this in production") || strings.Contains(w, "organisation") {
		t.Errorf("warnings: %s", w)
	}
}

// TestOrgRuleWarnings: organisation rules without the Backend API key or
// user:org:read refuse everyone, and start-up says so.
func TestOrgRuleWarnings(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"no org rules", map[string]string{}, nil},
		{"roles, nothing else", map[string]string{"TOOL_ROLES": "t=org:admin"}, []string{"CLERK_SECRET_KEY", "user:org:read"}},
		{"permissions, no key", map[string]string{"TOOL_PERMISSIONS": "t=org:x:y", "CLERK_SCOPES": "openid offline_access user:org:read"}, []string{"CLERK_SECRET_KEY"}},
		{"roles, all set", map[string]string{"TOOL_ROLES": "t=org:admin", "CLERK_SECRET_KEY": "sk_test_x", "CLERK_SCOPES": "openid offline_access user:org:read"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := good()
			maps.Copy(e, tc.env)
			c, err := Load(env(e), ModeServe)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range c.Warnings() {
				if strings.Contains(w, "organisation") {
					got = append(got, w)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("warnings %q, want ones naming %v", got, tc.want)
			}
			for i, name := range tc.want {
				if !strings.Contains(got[i], name) {
					t.Errorf("warning %q does not name %s", got[i], name)
				}
			}
		})
	}
}

// The start-up line shows REDIS_URL without any password: the user info's,
// and the Sentinels' own in the sentinel_password parameter.
func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"},
		{"rediss://:pw-one@redis.example:6380/0", "rediss://:xxxxx@redis.example:6380/0"},
		{"redis+sentinel://user:pw-two@s1:26379,s2:26379/mymaster/0?sentinel_password=pw-three&sentinel_username=admin",
			"redis+sentinel://user:xxxxx@s1:26379,s2:26379/mymaster/0?sentinel_password=xxxxx&sentinel_username=admin"},
		{"redis://h:6379/0?dial_timeout=2s", "redis://h:6379/0?dial_timeout=2s"},
	} {
		if got := RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	e := good()
	e["REDIS_URL"] = "redis+sentinel://s1:26379/mymaster?sentinel_password=hunter3"
	c, err := Load(env(e), ModeServe)
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Summary()["redis_url"].(string); strings.Contains(s, "hunter3") {
		t.Errorf("summary leaks the Sentinel password: %s", s)
	}
}

// The summary is the effective configuration: the operational settings too.
func TestSummaryHasOperationalSettings(t *testing.T) {
	e := good()
	e["SHUTDOWN_TIMEOUT"] = "45s"
	c, err := Load(env(e), ModeServe)
	if err != nil {
		t.Fatal(err)
	}
	sum := c.Summary()
	if sum["shutdown_timeout"] != "45s" || sum["clerk_timeout"] != "10s" || sum["log_level"] != "info" {
		t.Errorf("summary: %v", sum)
	}
}

// Every variable Load reads is in the README's configuration reference, so
// operators can find it (the reference is checked by hand for defaults).
func TestREADMEDocumentsEveryVariable(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	seen := map[string]bool{}
	record := func(k string) string { seen[k] = true; return good()[k] }
	if _, err := Load(record, ModeServe); err != nil {
		t.Fatal(err)
	}
	if len(seen) < 25 {
		t.Fatalf("Load read only %d variables", len(seen))
	}
	for k := range seen {
		if !strings.Contains(readme, "`"+k+"`") {
			t.Errorf("README.md does not document %s", k)
		}
	}
}

// TestLoadCatchesBadURLsAtOnce proves a REDIS_URL the Redis client cannot
// use and a CLERK_DOMAIN or BASE_URL with an impossible port are reported by
// Load with the other problems, one problem per line, never echoing a
// password. They used to pass Load (REDIS_URL only needed "://", a port was
// never range-checked) and fail later, one at a time; and the several faults
// of one origin were a single multi-line bullet.
func TestLoadCatchesBadURLsAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name, key, value string
		want             []string // each in a problem of its own
	}{
		{"REDIS_URL http scheme", "REDIS_URL", "http://127.0.0.1:6379/0", []string{"REDIS_URL", "unsupported scheme"}},
		{"REDIS_URL foreign scheme with a password", "REDIS_URL", "mongodb://user:hunter2@db:27017", []string{"REDIS_URL", "unsupported scheme"}},
		{"REDIS_URL unknown parameter", "REDIS_URL", "redis://127.0.0.1:6379/0?pool=3", []string{"REDIS_URL"}},
		{"CLERK_DOMAIN port out of range", "CLERK_DOMAIN", "clerk.example.com:99999", []string{"CLERK_DOMAIN", "port"}},
		{"CLERK_DOMAIN port zero", "CLERK_DOMAIN", "https://clerk.example.com:0", []string{"CLERK_DOMAIN", "port"}},
		{"CLERK_DOMAIN empty port", "CLERK_DOMAIN", "https://clerk.example.com:", []string{"CLERK_DOMAIN", "port"}},
		{"BASE_URL port out of range", "BASE_URL", "https://mcp.example.com:70000", []string{"BASE_URL", "port"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := good()
			e[tc.key] = tc.value
			e["LOG_LEVEL"] = "loud" // another problem, reported alongside
			_, err := Load(env(e), ModeServe)
			problems, _ := err.(Problems)
			msg := strings.Join(problems, "\n")
			for _, want := range append(tc.want, "LOG_LEVEL") {
				if !strings.Contains(msg, want) {
					t.Errorf("problems lack %q:\n%s", want, msg)
				}
			}
			if strings.Contains(msg, "hunter2") {
				t.Errorf("problems echo the password:\n%s", msg)
			}
		})
	}
	// Several faults of one origin: one problem each, each on one line.
	e := good()
	e["BASE_URL"] = "https://user@mcp.example.com/path?x=1"
	_, err := Load(env(e), ModeServe)
	problems, _ := err.(Problems)
	if len(problems) != 3 {
		t.Errorf("want 3 problems (userinfo, path, query), got %d: %q", len(problems), problems)
	}
	for _, p := range problems {
		if !strings.HasPrefix(p, "BASE_URL: ") || strings.Contains(p, "\n") {
			t.Errorf("not a one-line BASE_URL problem: %q", p)
		}
	}
}

func TestRedisWait(t *testing.T) {
	for _, tc := range []struct {
		replicas, timeout string
		ok                bool
	}{
		{"", "", true}, // off by default
		{"1", "", true},
		{"2", "250ms", true},
		{"0", "0s", true}, // no timeout needed when off
		{"-1", "", false},
		{"1", "0s", false}, // WAIT 0 blocks forever
		{"1", "500us", false},
		{"1", "2s", false},
		{"one", "", false},
	} {
		e := good()
		e["REDIS_WAIT_REPLICAS"], e["REDIS_WAIT_TIMEOUT"] = tc.replicas, tc.timeout
		c, err := Load(env(e), ModeServe)
		if (err == nil) != tc.ok {
			t.Errorf("REDIS_WAIT_REPLICAS=%q REDIS_WAIT_TIMEOUT=%q: %v, want ok=%v", tc.replicas, tc.timeout, err, tc.ok)
			continue
		}
		if err != nil {
			if !strings.Contains(err.Error(), "REDIS_WAIT") {
				t.Errorf("the problem does not name the variable: %v", err)
			}
			continue
		}
		o := c.RedisOptions()
		if o.URL != e["REDIS_URL"] || o.Prefix != DefaultRedisPrefix || o.WaitReplicas != c.RedisWaitReplicas || o.WaitTimeout != c.RedisWaitTimeout {
			t.Errorf("RedisOptions %+v do not carry the configuration", o)
		}
	}
	c, _ := Load(env(good()), ModeServe)
	if c.RedisWaitReplicas != 0 || c.RedisWaitTimeout != 100*time.Millisecond {
		t.Errorf("defaults: %d %v, want 0 and 100ms", c.RedisWaitReplicas, c.RedisWaitTimeout)
	}
}

// TestAdminConsoleSettings: the operator console needs a Clerk organization
// id, proxy mode and the Backend API key; the event log's bounds are checked.
func TestAdminConsoleSettings(t *testing.T) {
	for _, tc := range []struct {
		name    string
		set     map[string]string
		problem string
	}{
		{"console on", map[string]string{"ADMIN_ORG_ID": "org_2abc", "CLERK_SECRET_KEY": "sk_test_x"}, ""},
		{"not an org id", map[string]string{"ADMIN_ORG_ID": "acme", "CLERK_SECRET_KEY": "sk_test_x"}, "ADMIN_ORG_ID must be a Clerk organization id"},
		{"no Backend API key", map[string]string{"ADMIN_ORG_ID": "org_2abc"}, "ADMIN_ORG_ID needs CLERK_SECRET_KEY"},
		{"clerk mode", map[string]string{"ADMIN_ORG_ID": "org_2abc", "CLERK_SECRET_KEY": "sk_test_x", "AUTH_MODE": "clerk"}, "needs AUTH_MODE=proxy"},
		{"no events kept", map[string]string{"SECURITY_EVENTS_MAX": "0"}, "SECURITY_EVENTS_MAX"},
		{"events for a second", map[string]string{"SECURITY_EVENTS_TTL": "1s"}, "SECURITY_EVENTS_TTL"},
	} {
		e := good()
		for k, v := range tc.set {
			e[k] = v
		}
		c, err := Load(env(e), ModeServe)
		switch {
		case tc.problem == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.problem == "" && (c.AdminOrgRole != "org:admin" || c.SecurityEventsMax != 1000):
			t.Errorf("%s: defaults %q %d", tc.name, c.AdminOrgRole, c.SecurityEventsMax)
		case tc.problem != "" && (err == nil || !strings.Contains(err.Error(), tc.problem)):
			t.Errorf("%s: %v, want a problem with %q", tc.name, err, tc.problem)
		}
	}
}

// TestPprofAddr: off by default; a bad or clashing address is a start-up
// problem; one beyond loopback is served but warned about.
func TestPprofAddr(t *testing.T) {
	for _, tc := range []struct {
		addr    string
		problem bool
		warned  bool
	}{
		{"", false, false},
		{"127.0.0.1:6060", false, false},
		{"localhost:6060", false, false},
		{"[::1]:6060", false, false},
		{":6060", false, true},
		{"0.0.0.0:6060", false, true},
		{"6060", true, false},
		{":8080", true, false}, // LISTEN_ADDR's default
	} {
		e := good()
		if tc.addr != "" {
			e["PPROF_ADDR"] = tc.addr
		}
		c, err := Load(env(e), ModeServe)
		if (err != nil) != tc.problem || err != nil && !strings.Contains(err.Error(), "PPROF_ADDR") {
			t.Errorf("%q: err %v, want a problem: %v", tc.addr, err, tc.problem)
			continue
		}
		if err != nil {
			continue
		}
		if warned := strings.Contains(strings.Join(c.Warnings(), "\n"), "PPROF_ADDR"); warned != tc.warned {
			t.Errorf("%q: warned %v, want %v", tc.addr, warned, tc.warned)
		}
		if c.Summary()["pprof_addr"] != tc.addr {
			t.Errorf("%q: summary says %v", tc.addr, c.Summary()["pprof_addr"])
		}
	}
}
