package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/tokens"
)

// mustRefresh runs a refresh that must succeed and returns the new
// refresh token and the whole answer.
func (e *asEnv) mustRefresh(t *testing.T, c asClient, token string, extra url.Values) (string, map[string]any) {
	t.Helper()
	status, out := e.refresh(t, c, token, extra)
	if status != http.StatusOK || out["access_token"] == nil || out["refresh_token"] == nil {
		t.Fatalf("refresh: %d %v", status, out)
	}
	return out["refresh_token"].(string), out
}

// wantRefused checks a refused refresh.
func wantRefused(t *testing.T, status int, out map[string]any, code string) {
	t.Helper()
	if status != http.StatusBadRequest || out["error"] != code {
		t.Fatalf("refresh: %d %v, want 400 %s", status, out, code)
	}
}

// TestRefreshRotation: every use rotates. The token just rotated out,
// replayed within the grace window or while its successor is unused (a
// client that lost the answer, retrying hours later), gets the same
// successor back and revokes nothing; any older generation is reuse: the
// whole grant ends. (The previous token once its successor is in use at /mcp
// needs the verifier: internal/app TestRefreshThiefAfterClientMovedOn.)
func TestRefreshRotation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		replay   func(r1, r2 string) string // the token presented again after r1 -> r2 -> r3
		wait     time.Duration
		grace    bool // answered from the grace window
		survives bool // the grant lives on
	}{
		{"previous within the grace window", func(_, r2 string) string { return r2 }, 0, true, true},
		{"previous after the grace window, successor unused", func(_, r2 string) string { return r2 }, 30 * time.Minute, true, true},
		{"older generation", func(r1, _ string) string { return r1 }, 0, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newAS(t)
			c := e.register(t, nil)
			access, r1 := e.login(t, c)
			r2, _ := e.mustRefresh(t, c, r1, nil)
			r3, _ := e.mustRefresh(t, c, r2, nil)
			if r2 == r1 || r3 == r2 {
				t.Fatal("the refresh token did not rotate")
			}
			e.clock.Advance(tc.wait)
			if tc.grace {
				if got, _ := e.mustRefresh(t, c, tc.replay(r1, r2), nil); got != r3 {
					t.Fatalf("grace replay answered %q, want the current token %q", got, r3)
				}
			} else {
				status, out := e.refresh(t, c, tc.replay(r1, r2), nil)
				wantRefused(t, status, out, "invalid_grant")
			}
			if tc.survives {
				e.mustRefresh(t, c, r3, nil)
			} else {
				status, out := e.refresh(t, c, r3, nil)
				wantRefused(t, status, out, "invalid_grant")
			}
			if got := e.active(t, e.introspector(t), access); got != tc.survives {
				t.Fatalf("the first access token: active=%v, want %v", got, tc.survives)
			}
		})
	}
}

// TestRefreshRefusals: tokens that are not this client's current one are
// refused without ending anything (a forged or misdirected token cannot
// revoke someone's grant).
func TestRefreshRefusals(t *testing.T) {
	t.Parallel()
	e := newAS(t)
	c := e.register(t, nil)
	other := e.register(t, nil)
	_, live := e.login(t, c)
	gid, _ := tokens.ParseRefreshToken(live)
	forged, err := tokens.NewRefreshToken(gid, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		by    asClient
		token string
		code  string
	}{
		{"no refresh_token", c, "", "invalid_request"},
		{"not a refresh token", c, "garbage", "invalid_grant"},
		{"forged secret for a real grant", c, forged, "invalid_grant"},
		{"unknown grant", c, strings.Repeat("g", 22) + live[strings.Index(live, "."):], "invalid_grant"},
		{"another client's token", other, live, "invalid_grant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, out := e.refresh(t, tc.by, tc.token, nil)
			wantRefused(t, status, out, tc.code)
		})
	}
	e.mustRefresh(t, c, live, nil)
}

// TestRefreshScopes: RFC 6749 §6: a refresh may narrow the scopes (the
// grant keeps them all) but not widen them; a widening request rotates
// nothing, so the presented token stays current.
func TestRefreshScopes(t *testing.T) {
	t.Parallel()
	e := newAS(t)
	c := e.register(t, nil)
	_, refresh := e.login(t, c)
	status, out := e.refresh(t, c, refresh, url.Values{"scope": {"openid admin"}})
	wantRefused(t, status, out, "invalid_scope")
	next, out := e.mustRefresh(t, c, refresh, url.Values{"scope": {"email offline_access"}})
	if out["scope"] != "email" {
		t.Fatalf("narrowed scope %q, want email", out["scope"])
	}
	if _, out = e.mustRefresh(t, c, next, nil); out["scope"] != "openid profile email" {
		t.Fatalf("after narrowing once, the grant's scopes: %v", out["scope"])
	}
}

// TestRefreshResource: RFC 8707 at the refresh grant. A resource other than
// the grant's is invalid_target (not a token for this server handed to a
// client that asked for another), and the refusal rotates nothing; the
// grant's own resource works.
func TestRefreshResource(t *testing.T) {
	t.Parallel()
	e := newAS(t)
	c := e.register(t, nil)
	_, refresh := e.login(t, c)
	for _, res := range []string{"https://other.example/mcp", e.url + "/other", e.url + "/mcp#frag"} {
		status, out := e.refresh(t, c, refresh, url.Values{"resource": {res}})
		wantRefused(t, status, out, "invalid_target")
	}
	// Nothing rotated: the same token still refreshes, naming our resource.
	if next, _ := e.mustRefresh(t, c, refresh, url.Values{"resource": {e.url + "/mcp"}}); next == refresh {
		t.Fatal("the refresh token did not rotate")
	}
}

func TestNarrowScopes(t *testing.T) {
	t.Parallel()
	granted := []string{"openid", "profile", "email"}
	if got, oe := narrowScopes(granted, "profile"); oe != nil || strings.Join(got, " ") != "profile" {
		t.Errorf("narrow: %v %v", got, oe)
	}
	if _, oe := narrowScopes(granted, "profile admin"); oe == nil || oe.Code != "invalid_scope" {
		t.Errorf("widening must fail: %v", oe)
	}
	if got, _ := narrowScopes(granted, ""); len(got) != 3 {
		t.Errorf("empty keeps all: %v", got)
	}
}
