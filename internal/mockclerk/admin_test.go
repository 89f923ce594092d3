package mockclerk_test

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mockclerk"
)

func adminPost(t *testing.T, r *mockclerk.Running, path, body string) reply {
	t.Helper()
	return postJSON(t, r.URL+"/__admin/"+path, body, nil)
}

func adminClear(t *testing.T, r *mockclerk.Running) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, r.URL+"/__admin/faults", nil)
	if rep := do(t, nil, req); rep.Status != http.StatusNoContent {
		t.Fatalf("DELETE /__admin/faults: %d", rep.Status)
	}
}

// TestFaults: injected statuses, delays, count expiry, clearing and hangs.
func TestFaults(t *testing.T) {
	t.Parallel()
	r := start(t, nil)
	tok := login(t, r, "", "email")
	introspect := func(t *testing.T) reply {
		t.Helper()
		return postForm(t, r.URL+"/oauth/token_info", url.Values{"token": {tok.AccessToken}}, appBasic)
	}
	userinfo := func(t *testing.T) reply {
		t.Helper()
		return get(t, r.URL+"/oauth/userinfo", bearer(tok.AccessToken))
	}
	healthy := func(t *testing.T) {
		t.Helper()
		if rep := introspect(t); rep.Status != 200 || rep.JSON["active"] != true {
			t.Errorf("token_info not back to normal: %d %s", rep.Status, rep.Body)
		}
		if rep := userinfo(t); rep.Status != 200 {
			t.Errorf("userinfo not back to normal: %d %s", rep.Status, rep.Body)
		}
	}

	for _, tc := range []struct {
		name  string
		set   func(t *testing.T)            // installs the fault
		call  func(*testing.T) reply        // the faulted call
		want  []int                         // statuses of successive calls
		check func(t *testing.T, rep reply) // the first answer
		clear func(t *testing.T)            // nil: the fault expires by itself
	}{
		{
			name: "503 on /oauth/token_info through the admin API, until cleared",
			set: func(t *testing.T) {
				if rep := adminPost(t, r, "faults", `{"endpoint":"/oauth/token_info","status":503}`); rep.Status != 200 || rep.JSON["status"] != float64(503) {
					t.Fatalf("set: %d %s", rep.Status, rep.Body)
				}
			},
			call:  introspect,
			want:  []int{503, 503, 503},
			check: func(t *testing.T, rep reply) { wantOAuthError(t, rep, 503, "server_error") },
			clear: func(t *testing.T) { adminClear(t, r) },
		},
		{
			name: "count 2 then normal again",
			set: func(t *testing.T) {
				adminPost(t, r, "faults", `{"endpoint":"/oauth/token_info","status":500,"count":2}`)
			},
			call:  introspect,
			want:  []int{500, 500, 200, 200},
			check: func(t *testing.T, rep reply) { wantOAuthError(t, rep, 500, "server_error") },
		},
		{
			name:  "userinfo fault uses Clerk's envelope; cleared with ClearFaults",
			set:   func(t *testing.T) { r.SetFault(mockclerk.Fault{Endpoint: "/oauth/userinfo", Status: 502}) },
			call:  userinfo,
			want:  []int{502, 502},
			check: func(t *testing.T, rep reply) { wantClerkError(t, rep, 502, "internal_clerk_error") },
			clear: func(*testing.T) { r.ClearFaults() },
		},
		{
			name: "delay still answers",
			set:  func(t *testing.T) { r.SetFault(mockclerk.Fault{Endpoint: "/oauth/token_info", DelayMS: 20, Count: 1}) },
			call: introspect,
			want: []int{200, 200},
			check: func(t *testing.T, rep reply) {
				if rep.JSON["active"] != true {
					t.Errorf("delayed answer: %s", rep.Body)
				}
			},
		},
		{
			name: "delay then status",
			set: func(t *testing.T) {
				r.SetFault(mockclerk.Fault{Endpoint: "/oauth/token_info", DelayMS: 5, Status: 429, Count: 1})
			},
			call: introspect,
			want: []int{429, 200},
			// Clerk's rate limit answers 429 with Retry-After (wire facts §11).
			check: func(t *testing.T, rep reply) {
				if rep.Header.Get("Retry-After") == "" {
					t.Errorf("429 without Retry-After: %v", rep.Header)
				}
			},
		},
		{
			name: "a second fault on the same endpoint replaces the first",
			set: func(t *testing.T) {
				r.SetFault(mockclerk.Fault{Endpoint: "/oauth/token_info", Status: 500})
				r.SetFault(mockclerk.Fault{Endpoint: "/oauth/token_info", Status: 504, Count: 1})
			},
			call: introspect,
			want: []int{504, 200},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.set(t)
			// A fault on one path leaves the others alone.
			other := userinfo
			if strings.Contains(tc.name, "userinfo") {
				other = introspect
			}
			if rep := other(t); rep.Status != 200 {
				t.Errorf("unfaulted endpoint: %d", rep.Status)
			}
			for i, want := range tc.want {
				rep := tc.call(t)
				if rep.Status != want {
					t.Errorf("call %d: %d, want %d (%s)", i+1, rep.Status, want, rep.Body)
				}
				if i == 0 && tc.check != nil {
					tc.check(t, rep)
				}
			}
			if tc.clear != nil {
				tc.clear(t)
			}
			healthy(t)
		})
	}

	t.Run("timeout: the client gives up", func(t *testing.T) {
		if rep := adminPost(t, r, "faults", `{"endpoint":"/oauth/token_info","timeout":true}`); rep.Status != 200 {
			t.Fatalf("set: %d %s", rep.Status, rep.Body)
		}
		short := &http.Client{Timeout: 300 * time.Millisecond}
		req, _ := http.NewRequest(http.MethodPost, r.URL+"/oauth/token_info", strings.NewReader("token="+url.QueryEscape(tok.AccessToken)))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		appBasic(req)
		resp, err := short.Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("a timeout fault answered %d", resp.StatusCode)
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("want a client timeout, got %v", err)
		}
		r.ClearFaults()
		healthy(t)
	})

	// A client patient enough to outwait the hang gets a gateway timeout in
	// the endpoint's error shape, never an empty 200 that reads as success.
	t.Run("timeout: outwaited", func(t *testing.T) {
		r := start(t, nil)
		r.SetHangLimit(50 * time.Millisecond)
		tok := login(t, r, "", "email")
		introspect := func() reply {
			return postForm(t, r.URL+"/oauth/token_info", url.Values{"token": {tok.AccessToken}}, appBasic)
		}
		userinfo := func() reply { return get(t, r.URL+"/oauth/userinfo", bearer(tok.AccessToken)) }
		for _, tc := range []struct {
			endpoint string
			call     func() reply
			oauth    bool // RFC 6749 body, else Clerk's envelope
		}{
			{"/oauth/token_info", introspect, true},
			{"/oauth/userinfo", userinfo, false},
		} {
			t.Run(tc.endpoint, func(t *testing.T) {
				if rep := adminPost(t, r, "faults", `{"endpoint":"`+tc.endpoint+`","timeout":true,"count":1}`); rep.Status != 200 {
					t.Fatalf("set: %d %s", rep.Status, rep.Body)
				}
				if rep := tc.call(); tc.oauth {
					wantOAuthError(t, rep, http.StatusGatewayTimeout, "server_error")
				} else {
					wantClerkError(t, rep, http.StatusGatewayTimeout, "internal_clerk_error")
				}
				if rep := tc.call(); rep.Status != 200 {
					t.Errorf("after the one timeout: %d %s", rep.Status, rep.Body)
				}
			})
		}
	})

	t.Run("bad fault requests", func(t *testing.T) {
		for _, body := range []string{
			`not json`, `{}`, `{"endpoint":""}`, `{"endpoint":"/oauth/token","status":99}`, `{"endpoint":"/oauth/token","status":600}`,
			`{"endpoint":"/oauth/token","count":-1}`, `{"endpoint":"/oauth/token","delay_ms":-5}`, `{"endpoint":"/oauth/token","colour":"red"}`,
			`{"endpoint":"/oauth/token","pad":"` + strings.Repeat("x", 5000) + `"}`,
		} {
			if rep := adminPost(t, r, "faults", body); rep.Status != 400 {
				t.Errorf("%.40s: %d", body, rep.Status)
			}
		}
		healthy(t)
	})
}

// TestStatsAndReset: calls counted per path, admin calls not counted; reset
// zeroes the counts (and faults) and keeps issued tokens valid.
func TestStatsAndReset(t *testing.T) {
	t.Parallel()
	r := start(t, nil)
	tok := login(t, r, "", "email", "offline_access")
	stats := func() map[string]any {
		rep := get(t, r.URL+"/__admin/stats", nil)
		if rep.Status != 200 || rep.JSON == nil {
			t.Fatalf("stats: %d %s", rep.Status, rep.Body)
		}
		return rep.JSON
	}
	before := stats()
	for _, p := range []string{"/oauth/authorize", "/sign-in", "/oauth/token"} {
		if before[p] != float64(1) {
			t.Errorf("after one login %s = %v: %v", p, before[p], before)
		}
	}

	if rep := adminPost(t, r, "reset", ""); rep.Status != http.StatusNoContent {
		t.Fatalf("reset: %d", rep.Status)
	}
	if s := stats(); len(s) != 0 {
		t.Fatalf("after reset: %v", s)
	}
	for range 2 {
		postForm(t, r.URL+"/oauth/token_info", url.Values{"token": {tok.AccessToken}}, appBasic)
	}
	get(t, r.URL+"/oauth/userinfo", bearer(tok.AccessToken))
	get(t, r.URL+"/.well-known/jwks.json", nil)
	get(t, r.URL+"/no/such/path", nil)
	adminPost(t, r, "faults", `{"endpoint":"/x","status":500}`)
	adminClear(t, r)
	stats()
	want := map[string]int{"/oauth/token_info": 2, "/oauth/userinfo": 1, "/.well-known/jwks.json": 1, "/no/such/path": 1}
	got := stats()
	if len(got) != len(want) {
		t.Errorf("stats %v, want %v (admin calls are not counted)", got, want)
	}
	for k, v := range want {
		if got[k] != float64(v) {
			t.Errorf("stats[%s] = %v, want %d", k, got[k], v)
		}
	}
	if s := r.Stats(); len(s) != len(want) || s["/oauth/token_info"] != 2 {
		t.Errorf("Stats(): %v", s)
	}

	// Reset keeps tokens valid and drops faults.
	r.SetFault(mockclerk.Fault{Endpoint: "/oauth/token_info", Status: 503})
	r.Reset()
	if s := r.Stats(); len(s) != 0 {
		t.Errorf("Reset(): %v", s)
	}
	if rep := postForm(t, r.URL+"/oauth/token_info", url.Values{"token": {tok.AccessToken}}, appBasic); rep.Status != 200 || rep.JSON["active"] != true {
		t.Errorf("access token after reset: %d %s", rep.Status, rep.Body)
	}
	if rep := get(t, r.URL+"/oauth/userinfo", bearer(tok.AccessToken)); rep.Status != 200 {
		t.Errorf("userinfo after reset: %d", rep.Status)
	}
	if rep := postForm(t, r.URL+"/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, appBasic); rep.Status != 200 {
		t.Errorf("refresh after reset: %d %s", rep.Status, rep.Body)
	}
	if s := r.Stats(); s["/oauth/token_info"] != 1 || s["/oauth/token"] != 1 || s["/oauth/userinfo"] != 1 {
		t.Errorf("counting after Reset(): %v", s)
	}
}
