package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestUpstreamsLoad(t *testing.T) {
	e := good()
	e["SCOPES_SUPPORTED"] = "openid email"
	e["UPSTREAMS"] = `[
	  {"path": "/github", "url": "https://github-mcp.internal/mcp", "name": "GitHub",
	   "scopes": ["openid", "repo:read"], "tool_scopes": {"create_issue": ["repo:write"]},
	   "tool_roles": {"delete_repo": ["org:admin"]}, "timeout": "5s", "forward_user_headers": true},
	  {"path": "/docs/mcp", "url": "http://127.0.0.1:9000/mcp"}
	]`
	c, err := Load(env(e), ModeServe)
	if err != nil {
		t.Fatal(err)
	}
	ups := c.Upstreams()
	if len(ups) != 2 {
		t.Fatalf("%d upstreams", len(ups))
	}
	gh, docs := ups[0], ups[1]
	if gh.Path != "/github" || gh.Name != "GitHub" || gh.Timeout != 5*time.Second || !gh.ForwardUserHeaders ||
		strings.Join(gh.Scopes, " ") != "openid repo:read" {
		t.Errorf("github: %+v", gh)
	}
	// Defaults: SCOPES_SUPPORTED, UPSTREAM_TIMEOUT, the path as the name.
	if docs.Name != "/docs/mcp" || docs.Timeout != 30*time.Second || strings.Join(docs.Scopes, " ") != "openid email" {
		t.Errorf("docs: %+v", docs)
	}
	if got := c.Resources(); !slices.Equal(got, []string{"https://mcp.example.com/github", "https://mcp.example.com/docs/mcp"}) {
		t.Errorf("Resources = %v", got)
	}
	// The one authorization server offers every resource's scopes.
	if got := strings.Join(c.AllScopes(), " "); got != "openid email repo:read repo:write" {
		t.Errorf("AllScopes = %q", got)
	}
	if r := gh.Policy().Rule("create_issue"); !slices.Equal(r.Scopes, []string{"repo:write"}) {
		t.Errorf("create_issue rule %+v", r)
	}
	if r := gh.Policy().Rule("delete_repo"); !slices.Equal(r.OrgRoles, []string{"org:admin"}) {
		t.Errorf("delete_repo rule %+v", r)
	}
	if !slices.ContainsFunc(c.Warnings(), func(w string) bool { return strings.Contains(w, "/github: forward_user_headers") }) {
		t.Errorf("no warning for forward_user_headers: %v", c.Warnings())
	}
	if got := c.Summary()["upstreams"]; !slices.Equal(got.([]string), []string{"/github=https://github-mcp.internal/mcp", "/docs/mcp=http://127.0.0.1:9000/mcp"}) {
		t.Errorf("summary %v", got)
	}
}

func TestUpstreamsFile(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "upstreams.json")
	if err := os.WriteFile(f, []byte(`[{"path":"/a","url":"http://a:1/mcp"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	e := good()
	e["UPSTREAMS_FILE"] = f
	c, err := Load(env(e), ModeServe)
	if err != nil || len(c.Upstreams()) != 1 || c.Upstreams()[0].URL != "http://a:1/mcp" {
		t.Fatalf("%v %+v", err, c.Upstreams())
	}
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"both":    {map[string]string{"UPSTREAMS_FILE": f, "UPSTREAMS": `[{"path":"/a","url":"http://a/"}]`}, "UPSTREAMS and UPSTREAMS_FILE are both set"},
		"missing": {map[string]string{"UPSTREAMS_FILE": filepath.Join(dir, "nope.json")}, "UPSTREAMS_FILE: cannot read"},
		"clerk":   {map[string]string{"UPSTREAMS_FILE": f, "AUTH_MODE": "clerk", "CLERK_SECRET_KEY": "sk_x"}, "need AUTH_MODE=proxy or app"},
	} {
		e := good()
		for k, v := range tc.env {
			e[k] = v
		}
		if _, err := Load(env(e), ModeServe); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

func TestParseUpstreamsRefuses(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{``, "empty or cut short"},
		{`{}`, "must be an array of objects"},
		{`[1]`, "must be an array of objects"},
		{`[{"path":"/a","url":"http://a/","tool_roles":{"t":"org:admin"}}]`, `field "tool_roles": expected an array of strings`},
		{`[]`, "names no upstream"},
		{`[{"path":"/a","url":"http://a/"}] x`, "unexpected data after"},
		{`[{"path":"/a","url":"http://a/","scope":["x"]}]`, `unknown field "scope"`},
		{`[{"path":"/a","url":"http://a/","timeout":5}]`, `field "timeout": expected a string`},
		{`[{"path":"/a","url":"http://a/","timeout":"0s"}]`, "[0] /a: timeout"},
		{`[{"path":"/a","url":"http://a/","timeout":"2h"}]`, "at most 1h"},
		{`[{"url":"http://a/"}]`, "[0]: path: must start with /"},
		{`[{"path":"a","url":"http://a/"}]`, "must start with /"},
		{`[{"path":"/","url":"http://a/"}]`, "must start with /"},
		{`[{"path":"/a/","url":"http://a/"}]`, "no trailing slash"},
		{`[{"path":"/a//b","url":"http://a/"}]`, "segments must be"},
		{`[{"path":"/a/../mcp","url":"http://a/"}]`, "no dot segments"},
		{`[{"path":"/a?x=1","url":"http://a/"}]`, "segments must be"},
		{`[{"path":"/a%2f","url":"http://a/"}]`, "segments must be"},
		{`[{"path":"/mcp","url":"http://a/"}]`, "use UPSTREAM_MCP_URL for /mcp"},
		{`[{"path":"/MCP/x","url":"http://a/"}]`, "served by the proxy itself"},
		{`[{"path":"/.well-known/x","url":"http://a/"}]`, "served by the proxy itself"},
		{`[{"path":"/token","url":"http://a/"}]`, "served by the proxy itself"},
		{`[{"path":"/a","url":"http://a/"},{"path":"/A","url":"http://b/"}]`, "[1] /A: path is used by another upstream"},
		{`[{"path":"/a"}]`, "url is required"},
		{`[{"path":"/a","url":"ftp://a/"}]`, "must use http or https"},
		{`[{"path":"/a","url":"http://u:p@a/"}]`, "must not contain userinfo"},
		{`[{"path":"/a","url":"http://a/#f"}]`, "must not have a fragment"},
		{`[{"path":"/a","url":"http://a/","scopes":["a b"]}]`, "RFC 6749 §3.3"},
		{`[{"path":"/a","url":"http://a/","tool_scopes":{"t":[]}}]`, "needs a tool name and at least one value"},
		{`[{"path":"/a","url":"http://a/","tool_roles":{"t":["admin"]}}]`, `"admin" of tool "t" is not a Clerk role key`},
		{`[{"path":"/a","url":"http://a/","tool_permissions":{"t":["write"]}}]`, "not a Clerk permission key"},
		{`[{"path":"/a","url":"http://a/","name":"a\nb"}]`, "printable"},
		{`[{"path":"/a","url":"http://a/","forward_clerk_token":"yes"}]`, `field "forward_clerk_token": expected true or false`},
		{"[" + strings.Repeat(`{"path":"/a","url":"http://a/"},`, 70) + `{"path":"/b","url":"http://a/"}]`, "more than 64 upstreams"},
		{strings.Repeat(" ", maxUpstreamsDoc+1), "longer than"},
	} {
		_, p := ParseUpstreams([]byte(tc.doc))
		if !strings.Contains(strings.Join(p, "\n"), tc.want) {
			t.Errorf("%.60q: %v, want %q", tc.doc, p, tc.want)
		}
	}
}

// The problems never echo an upstream URL's query (it may hold a token).
func TestParseUpstreamsNoSecretEcho(t *testing.T) {
	_, p := ParseUpstreams([]byte(`[{"path":"/a","url":"http://a/?key=s3cret","bogus":1}]`))
	if len(p) == 0 || strings.Contains(strings.Join(p, " "), "s3cret") {
		t.Errorf("%v", p)
	}
}

func FuzzParseUpstreams(f *testing.F) {
	for _, s := range []string{
		`[{"path":"/a","url":"http://a/mcp"}]`,
		`[{"path":"/a/b","url":"https://a:8443/x?y=1","name":"A","scopes":["openid"],"tool_scopes":{"t":["s"]},"tool_roles":{"t":["org:admin"]},"tool_permissions":{"t":["org:x:y"]},"timeout":"1m","forward_user_headers":true,"forward_clerk_token":false}]`,
		`[{"path":"/mcp","url":"http://a/"}]`, `[`, `null`, `[null]`, `[{"path":1}]`, `[{"timeout":"-1s"}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		ups, p := ParseUpstreams(doc)
		if (len(p) == 0) == (ups == nil) {
			t.Fatalf("want upstreams xor problems: %v %v", ups, p)
		}
		for _, u := range ups {
			if checkMountPath(u.Path) != nil || u.URL == "" || u.Timeout < 0 || u.Timeout > time.Hour {
				t.Fatalf("accepted %+v", u)
			}
		}
	})
}
