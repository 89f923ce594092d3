package proxy

import (
	"net/url"
	"testing"
)

// FuzzConsoleURL: whatever a console form's "back" field holds, the action
// returns to one of the console's own pages on this server (no open
// redirect), and the query it keeps carries no outcome message or signature
// of its own (those are added, signed, by the action).
//
//	go test -run='^$' -fuzz='^FuzzConsoleURL$' -fuzztime=20s ./proxy
func FuzzConsoleURL(f *testing.F) {
	for _, seed := range []string{
		"/admin", "/admin/grants?user_id=user_1", "/admin/grants?client_id=https%3A%2F%2Fapp.example%2Fc.json",
		"https://evil.example/admin", "//evil.example/admin", "/\\evil.example", "/admin/../account", "javascript:alert(1)",
		"/admin?done=hi&sig=x", "/admin/grants?user_id=a&done=x", "", "%zz", "/ADMIN", "http:/admin",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, back string) {
		u := consoleURL(back)
		s := u.String()
		parsed, err := url.Parse(s)
		if err != nil {
			t.Fatalf("consoleURL(%q) = %q, which does not parse: %v", back, s, err)
		}
		if parsed.Scheme != "" || parsed.Host != "" || parsed.User != nil || parsed.Opaque != "" {
			t.Fatalf("consoleURL(%q) = %q leaves this server", back, s)
		}
		if parsed.Path != "/admin" && parsed.Path != "/admin/grants" {
			t.Fatalf("consoleURL(%q) = %q is not a console page", back, s)
		}
		if q := parsed.Query(); q.Has("done") || q.Has("sig") {
			t.Fatalf("consoleURL(%q) = %q keeps an outcome message", back, s)
		}
	})
}
