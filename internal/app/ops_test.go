package app_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mockclerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testflow"
)

// waitStatus polls url until it answers want (readiness is cached for two
// seconds, so a change shows up after at most that long).
func waitStatus(t *testing.T, url string, want int) {
	t.Helper()
	var got int
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got = resp.StatusCode; got == want {
			return
		}
	}
	t.Fatalf("%s: status %d, want %d", url, got, want)
}

// TestReadiness: /readyz fails while Redis or Clerk's discovery is
// unreachable and recovers when they are back; /healthz stays up.
func TestReadiness(t *testing.T) {
	e := e2etest.Start(t, e2etest.Options{})
	waitStatus(t, e.BaseURL+"/readyz", http.StatusOK)

	e.Redis.Stop(t)
	waitStatus(t, e.BaseURL+"/readyz", http.StatusServiceUnavailable)
	waitStatus(t, e.BaseURL+"/healthz", http.StatusOK)
	e.Redis.Restart(t)
	waitStatus(t, e.BaseURL+"/readyz", http.StatusOK)

	e.Clerk.SetFault(mockclerk.Fault{Endpoint: "/.well-known/openid-configuration", Status: http.StatusBadGateway})
	waitStatus(t, e.BaseURL+"/readyz", http.StatusServiceUnavailable)
	e.Clerk.ClearFaults()
	waitStatus(t, e.BaseURL+"/readyz", http.StatusOK)
}

// TestAccessAndAuditLogs: one JSON request line per request with request id,
// route, status, duration, client and user when known; an audit event for
// each security-relevant action.
func TestAccessAndAuditLogs(t *testing.T) {
	e := e2etest.Start(t, e2etest.Options{})
	c := e.Register()
	e.Login(c, testflow.Choices{})
	session := e.Initialize(c.AccessToken)
	e.CallTool(c.AccessToken, session, "get-user-info")
	if _, err := http.PostForm(e.BaseURL+"/revoke", url.Values{"token": {c.RefreshToken}, "client_id": {c.ID}}); err != nil {
		t.Fatal(err)
	}
	user := e.Clerk.Users()[0].ID

	var requests, audits []map[string]any
	sc := bufio.NewScanner(strings.NewReader(e.Logs.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			t.Fatalf("log line is not JSON: %s", sc.Text())
		}
		switch line["msg"] {
		case "request":
			requests = append(requests, line)
		case "audit":
			audits = append(audits, line)
		}
	}
	find := func(route string) map[string]any {
		for _, l := range requests {
			if l["route"] == route {
				return l
			}
		}
		t.Fatalf("no request line for %s", route)
		return nil
	}
	for _, route := range []string{"/register", "/authorize", "/token", "/mcp", "/revoke"} {
		l := find(route)
		for _, k := range []string{"request_id", "route", "method", "status", "duration_ms"} {
			if l[k] == nil || l[k] == "" {
				t.Errorf("%s request line lacks %s: %v", route, k, l)
			}
		}
	}
	if l := find("/token"); l["client_id"] != c.ID {
		t.Errorf("/token line client_id = %v, want %s", l["client_id"], c.ID)
	}
	if l := find("/mcp"); l["user_id"] != user || l["client_id"] != c.ID {
		t.Errorf("/mcp line user/client = %v/%v", l["user_id"], l["client_id"])
	}
	events := map[string]bool{}
	for _, a := range audits {
		if a["request_id"] == nil {
			t.Errorf("audit event without request id: %v", a)
		}
		events[a["event"].(string)] = true
	}
	for _, want := range []string{"client_registered", "consent_approved", "authorization_code_issued", "tokens_issued", "grant_revoked"} {
		if !events[want] {
			t.Errorf("no audit event %s (have %v)", want, events)
		}
	}
}
