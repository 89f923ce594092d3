package proxy

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestValidateRedirectURI(t *testing.T) {
	t.Parallel()
	tests := []struct {
		uri string
		ok  bool
	}{
		{"https://claude.ai/api/mcp/auth_callback", true},
		{"https://chatgpt.com/connector_platform_oauth_redirect", true},
		{"http://127.0.0.1:33418/", true},
		{"http://127.0.0.1/callback", true},
		{"http://localhost:6274/oauth/callback", true},
		{"http://[::1]:8080/cb", true},
		{"cursor://anysphere.cursor-retrieval/oauth/user-mcp/callback", true},
		{"com.example.app:/oauth2redirect", true},
		{"https://vscode.dev/redirect", true},
		{"http://example.com/cb", false},        // http off loopback
		{"http://127.0.0.1.evil.com/cb", false}, // not loopback
		{"https://good.example@evil.example/", false},
		{"https://example.com/cb#frag", false},
		{"https://example.com/a/../b", false},
		{"https://example.com/a/%2e%2e/b", false},
		{"https://example.com/a/%2E%2E/b", false},
		{"https://example.com/./cb", false},
		{"HTTPS://example.com/cb", false},
		{"javascript:alert(1)", false},
		{"data:text/html,hi", false},
		{"file:///etc/passwd", false},
		{"/relative/path", false},
		{"", false},
		{"https://exa mple.com/", false},
		{"https://example.com/\r\nSet-Cookie:x", false},
		{"https://example.com/é", false},
		{"https:///nohost", false},
		{"https://" + strings.Repeat("a", 2001), false},
		{"myapp:", false},
	}
	for _, tc := range tests {
		err := validateRedirectURI(tc.uri)
		if (err == nil) != tc.ok {
			t.Errorf("validateRedirectURI(%q) = %v, want ok=%v", tc.uri, err, tc.ok)
		}
	}
}

func TestMatchRedirectURI(t *testing.T) {
	t.Parallel()
	registered := []string{
		"https://claude.ai/api/mcp/auth_callback",
		"http://127.0.0.1:33418/",
		"http://localhost/callback",
		"cursor://anysphere.cursor-retrieval/oauth/callback",
	}
	tests := []struct {
		req string
		ok  bool
	}{
		{"https://claude.ai/api/mcp/auth_callback", true},
		{"https://claude.ai/api/mcp/auth_callback/", false},    // trailing slash
		{"https://Claude.ai/api/mcp/auth_callback", false},     // case
		{"https://claude.ai/api/mcp/auth_callback?x=1", false}, // added query
		{"https://claude.ai/api/mcp/other", false},             // other path
		{"https://claude.ai@evil.com/api/mcp/auth_callback", false},
		{"http://127.0.0.1:40000/", true}, // RFC 8252 §7.3 port relaxed
		{"http://127.0.0.1/", true},
		{"http://127.0.0.1:40000", true}, // "" vs "/" path on an origin
		{"http://127.0.0.1:40000/other", false},
		{"http://localhost:33418/", false},        // localhost != 127.0.0.1
		{"http://localhost:57470/callback", true}, // Claude Code style
		{"http://127.0.0.1:57470/callback", false},
		{"http://localhost:57470/callback?x=1", false},
		{"http://localhost:99999/callback", false}, // bad port
		{"http://localhost:57470/callback#f", false},
		{"https://localhost:57470/callback", false}, // https loopback not relaxed
		{"cursor://anysphere.cursor-retrieval/oauth/callback", true},
		{"cursor://anysphere.cursor-retrieval/oauth/callback2", false},
	}
	for _, tc := range tests {
		if got := matchRedirectURI(registered, tc.req); got != tc.ok {
			t.Errorf("matchRedirectURI(%q) = %v, want %v", tc.req, got, tc.ok)
		}
	}
}

func TestRedirectAllowed(t *testing.T) {
	t.Parallel()
	patterns := []string{"https://claude.ai/api/mcp/auth_callback", "http://127.0.0.1:*", "http://localhost", "https://*.example.com/oauth/*"}
	tests := []struct {
		uri string
		ok  bool
	}{
		{"https://claude.ai/api/mcp/auth_callback", true},
		{"https://claude.ai/api/mcp/auth_callback2", false},
		{"http://127.0.0.1:5555/cb", true},
		{"http://localhost:1234/anything", true},
		{"https://app.example.com/oauth/cb", true},
		{"https://example.com/oauth/cb", false},
		{"https://evilexample.com/oauth/cb", false},
		{"https://app.example.com/other", false},
		{"https://chatgpt.com/connector_platform_oauth_redirect", false},
	}
	for _, tc := range tests {
		if got := redirectAllowed(patterns, tc.uri); got != tc.ok {
			t.Errorf("redirectAllowed(%q) = %v, want %v", tc.uri, got, tc.ok)
		}
	}
	if !redirectAllowed(nil, "https://anything.example/") {
		t.Error("an empty allowlist must allow everything")
	}
}

// TestRedirectKeepsRegisteredQuery: the query of a registered redirect URI
// is retained as registered (RFC 6749 §3.1.2) and code, state and iss appear
// exactly once, correctly encoded.
func TestRedirectKeepsRegisteredQuery(t *testing.T) {
	t.Parallel()
	e := newFzEnv(t)
	const state = "st ate&x=1"
	tail := "code=C&iss=" + url.QueryEscape(fzIssuer) + "&state=" + url.QueryEscape(state)
	for _, tc := range []struct{ registered, want string }{
		{"https://app.example/cb", "https://app.example/cb?" + tail},
		{"https://app.example/cb?b=2&a=1", "https://app.example/cb?b=2&a=1&" + tail},
		{"https://app.example/cb?flag", "https://app.example/cb?flag&" + tail},
		{"https://app.example/cb?a=1;b=2", "https://app.example/cb?a=1;b=2&" + tail},
		{"https://app.example/cb?x=%41&y=a+b", "https://app.example/cb?x=%41&y=a+b&" + tail},
		{"https://app.example/cb?state=fixed&code=zz&keep=1&iss=me&st%61te=2", "https://app.example/cb?keep=1&" + tail},
		{"http://127.0.0.1:7777/callback?", "http://127.0.0.1:7777/callback?" + tail},
		{"cursor://oauth/callback?tenant=a", "cursor://oauth/callback?tenant=a&" + tail},
	} {
		t.Run(tc.registered, func(t *testing.T) {
			rec := httptest.NewRecorder()
			e.s.redirectToClient(rec, httptest.NewRequest(http.MethodGet, "/", nil), tc.registered, state, url.Values{"code": {"C"}})
			loc := rec.Header().Get("Location")
			if rec.Code != http.StatusFound || loc != tc.want {
				t.Fatalf("Location %q\n            want %q", loc, tc.want)
			}
			u, _ := url.Parse(loc)
			q := u.Query()
			if len(q["code"]) != 1 || len(q["state"]) != 1 || q.Get("state") != state || len(q["iss"]) != 1 || q.Get("iss") != fzIssuer {
				t.Fatalf("code, state and iss must appear once each: %q", loc)
			}
		})
	}
}

func FuzzValidateRedirectURI(f *testing.F) {
	for _, s := range []string{"https://a.example/cb", "http://127.0.0.1:1/", "cursor://x/y", "javascript:x", "https://a@b/", "http://[::1]:0/", "https://a/%2e%2e/"} {
		f.Add(s, "http://127.0.0.1:5/")
	}
	f.Fuzz(func(t *testing.T, uri, requested string) {
		err := validateRedirectURI(uri)
		if err == nil {
			u, perr := url.Parse(uri)
			if perr != nil || u.User != nil || strings.Contains(uri, "#") || unsafeSchemes[u.Scheme] {
				t.Fatalf("accepted unsafe redirect %q", uri)
			}
			if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
				t.Fatalf("accepted http off loopback: %q", uri)
			}
		}
		if matchRedirectURI([]string{uri}, requested) && requested != uri {
			// Only loopback port relaxation may match a different string.
			r, _ := url.Parse(requested)
			if r == nil || r.Scheme != "http" || !isLoopbackHost(r.Hostname()) {
				t.Fatalf("%q matched registered %q", requested, uri)
			}
		}
		_ = redirectAllowed([]string{uri, "https://*.x.com/*"}, requested)
	})
}
