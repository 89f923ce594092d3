package app_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testclock"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
)

const adminToken = "admin-token-for-the-tests-0123456789abcdef"

// grantsWorld is three grants: Alice with clients A and B, Bob with A.
type grantsWorld struct {
	clock          *testclock.Clock
	e              *e2etest.Env
	alice, bob     string
	aliceA, aliceB *e2etest.Client
	bobA           *e2etest.Client
}

func newGrantsWorld(t *testing.T, env map[string]string) *grantsWorld {
	t.Helper()
	return newGrantsWorldWith(t, e2etest.Options{Env: env})
}

func newGrantsWorldWith(t *testing.T, o e2etest.Options) *grantsWorld {
	t.Helper()
	clock := testclock.New(time.Now())
	o.Now = clock.Now
	e := e2etest.Start(t, o)
	users := e.Clerk.Users()
	w := &grantsWorld{clock: clock, e: e, alice: users[0].ID, bob: users[1].ID}
	w.aliceA = e.RegisterClient(e2etest.ClientOptions{Name: "Client A"})
	w.aliceB = e.RegisterClient(e2etest.ClientOptions{Name: "Client B"})
	e.Login(w.aliceA, testflow.Choices{UserID: w.alice})
	e.Login(w.aliceB, testflow.Choices{UserID: w.alice})
	bobA := *w.aliceA
	w.bobA = &bobA
	e.Login(w.bobA, testflow.Choices{UserID: w.bob})
	for _, c := range []*e2etest.Client{w.aliceA, w.aliceB, w.bobA} {
		if s := mcpInit(e, c.AccessToken); s != http.StatusOK {
			t.Fatalf("after sign-in /mcp answered %d", s)
		}
	}
	return w
}

// refusedSoon polls /mcp with token, moving the fake clock on by 100ms a
// time up to the documented revocation delay (the ~1 s grant cache) plus
// margin, until it is refused.
func (w *grantsWorld) refusedSoon(t *testing.T, what, token string) {
	t.Helper()
	for range 30 {
		if mcpInit(w.e, token) == http.StatusUnauthorized {
			return
		}
		w.clock.Advance(100 * time.Millisecond)
	}
	t.Errorf("%s: still accepted at /mcp 3 s after the revocation", what)
}

func adminCall(t *testing.T, e *e2etest.Env, method, path, body string, header map[string]string) secResponse {
	t.Helper()
	req, _ := http.NewRequest(method, e.BaseURL+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return secDo(t, req)
}

func asAdmin() map[string]string { return map[string]string{"Authorization": "Bearer " + adminToken} }

// grantID finds the id of user's grant for client through the admin API.
func grantID(t *testing.T, e *e2etest.Env, user, client string) string {
	t.Helper()
	r := adminCall(t, e, http.MethodGet, "/admin/api/grants?user_id="+user, "", asAdmin())
	var out struct {
		Grants []struct {
			GrantID  string `json:"grant_id"`
			ClientID string `json:"client_id"`
		} `json:"grants"`
	}
	if r.Status != http.StatusOK || json.Unmarshal([]byte(r.Body), &out) != nil {
		t.Fatalf("list grants: %d %s", r.Status, r.Body)
	}
	for _, g := range out.Grants {
		if g.ClientID == client {
			return g.GrantID
		}
	}
	t.Fatalf("no grant of %s for %s in %s", user, client, r.Body)
	return ""
}

// auditLines returns the audit log lines of event.
func auditLines(t *testing.T, e *e2etest.Env, event string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(e.Logs.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == "audit" && line["event"] == event {
			out = append(out, line)
		}
	}
	return out
}

// TestAdminRevocations: each operator action ends exactly the grants it
// names: their clients' next MCP requests are refused within the grant-cache
// delay, their Clerk tokens are revoked at the fake Clerk (two calls per
// grant), the others keep working, and one audit line records the action.
func TestAdminRevocations(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		path   string
		body   func(t *testing.T, w *grantsWorld) string
		target func(w *grantsWorld) string
		ended  func(w *grantsWorld) []*e2etest.Client
	}{
		{
			name: "one grant", path: "/admin/api/grants/revoke",
			body: func(t *testing.T, w *grantsWorld) string {
				return fmt.Sprintf(`{"grant_id":%q}`, grantID(t, w.e, w.alice, w.aliceA.ID))
			},
			target: func(w *grantsWorld) string { return "grant:" },
			ended:  func(w *grantsWorld) []*e2etest.Client { return []*e2etest.Client{w.aliceA} },
		},
		{
			name: "a client everywhere", path: "/admin/api/clients/revoke",
			body:   func(t *testing.T, w *grantsWorld) string { return fmt.Sprintf(`{"client_id":%q}`, w.aliceA.ID) },
			target: func(w *grantsWorld) string { return "client:" + w.aliceA.ID },
			ended:  func(w *grantsWorld) []*e2etest.Client { return []*e2etest.Client{w.aliceA, w.bobA} },
		},
		{
			name: "all grants of a user", path: "/admin/api/users/revoke",
			body:   func(t *testing.T, w *grantsWorld) string { return fmt.Sprintf(`{"user_id":%q}`, w.alice) },
			target: func(w *grantsWorld) string { return "user:" + w.alice },
			ended:  func(w *grantsWorld) []*e2etest.Client { return []*e2etest.Client{w.aliceA, w.aliceB} },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newGrantsWorld(t, map[string]string{"ADMIN_TOKEN": adminToken})
			before := clerkRevocations(w.e)
			r := adminCall(t, w.e, http.MethodPost, tc.path, tc.body(t, w), asAdmin())
			ended := tc.ended(w)
			if r.Status != http.StatusOK || r.JSON()["revoked"] != float64(len(ended)) {
				t.Fatalf("admin action: %d %s, want revoked %d", r.Status, r.Body, len(ended))
			}
			if got := clerkRevocations(w.e) - before; got != 2*len(ended) {
				t.Errorf("Clerk revocation calls: %d, want %d", got, 2*len(ended))
			}
			for i, c := range ended {
				w.refusedSoon(t, fmt.Sprintf("ended grant %d", i), c.AccessToken)
			}
			for _, c := range []*e2etest.Client{w.aliceA, w.aliceB, w.bobA} {
				if !slices.Contains(ended, c) && mcpInit(w.e, c.AccessToken) != http.StatusOK {
					t.Errorf("a grant the action did not name stopped working")
				}
			}
			lines := auditLines(t, w.e, "admin_action")
			found := false
			for _, l := range lines {
				if l["actor"] == "admin_token" && l["result"] == "ok" && strings.HasPrefix(fmt.Sprint(l["target"]), tc.target(w)) &&
					l["grants_ended"] == float64(len(ended)) {
					found = true
				}
			}
			if !found {
				t.Errorf("no audit line for the action in %v", lines)
			}
		})
	}
}

// TestAdminLists: clients with their grant counts, grants by user and by
// client, and never a token or sealed value in an answer.
func TestAdminLists(t *testing.T) {
	t.Parallel()
	w := newGrantsWorld(t, map[string]string{"ADMIN_TOKEN": adminToken})
	r := adminCall(t, w.e, http.MethodGet, "/admin/api/clients", "", asAdmin())
	var clients struct {
		Clients []struct {
			ClientID   string `json:"client_id"`
			ClientName string `json:"client_name"`
			Kind       string `json:"kind"`
			Grants     int    `json:"grants"`
		} `json:"clients"`
	}
	if r.Status != http.StatusOK || json.Unmarshal([]byte(r.Body), &clients) != nil {
		t.Fatalf("list clients: %d %s", r.Status, r.Body)
	}
	counts := map[string]int{}
	for _, c := range clients.Clients {
		counts[c.ClientID] = c.Grants
		if c.Kind != "registered" || !strings.HasPrefix(c.ClientName, "Client ") {
			t.Errorf("client %+v", c)
		}
	}
	if counts[w.aliceA.ID] != 2 || counts[w.aliceB.ID] != 1 || len(counts) != 2 {
		t.Errorf("grant counts %v, want A=2 B=1", counts)
	}
	for _, q := range []string{"user_id=" + w.bob, "client_id=" + w.aliceB.ID} {
		r := adminCall(t, w.e, http.MethodGet, "/admin/api/grants?"+q, "", asAdmin())
		var out struct {
			Grants []struct {
				Active bool `json:"active"`
			} `json:"grants"`
		}
		if r.Status != http.StatusOK || json.Unmarshal([]byte(r.Body), &out) != nil || len(out.Grants) != 1 || !out.Grants[0].Active {
			t.Fatalf("grants of %s: %d %s", q, r.Status, r.Body)
		}
		for _, secret := range []string{"upstream", "refresh", w.bobA.AccessToken, w.bobA.RefreshToken, w.aliceB.RefreshToken} {
			if strings.Contains(r.Body, secret) {
				t.Errorf("grants of %s show %q: %s", q, secret, r.Body)
			}
		}
	}
	for _, q := range []string{"", "user_id=", "user_id=a&user_id=b", "user_id=a&client_id=b"} {
		wantOAuthError(t, "grants?"+q, adminCall(t, w.e, http.MethodGet, "/admin/api/grants?"+q, "", asAdmin()), http.StatusBadRequest, "invalid_request")
	}
}

// TestAdminRefusals: a missing or wrong admin token gets 401 and changes
// nothing; malformed actions get 400/404/413; without ADMIN_TOKEN the API is
// not there at all.
func TestAdminRefusals(t *testing.T) {
	t.Parallel()
	w := newGrantsWorld(t, map[string]string{"ADMIN_TOKEN": adminToken})
	before := clerkRevocations(w.e)
	userBody := fmt.Sprintf(`{"user_id":%q}`, w.alice)
	clientBody := fmt.Sprintf(`{"client_id":%q}`, w.aliceA.ID)
	for _, h := range []struct {
		name   string
		header map[string]string
		code   string
	}{
		{"no token", nil, "unauthorized"},
		{"wrong token", map[string]string{"Authorization": "Bearer " + adminToken + "x"}, "invalid_token"},
		{"a prefix of the token", map[string]string{"Authorization": "Bearer " + adminToken[:20]}, "invalid_token"},
		{"Basic scheme", map[string]string{"Authorization": "Basic " + adminToken}, "unauthorized"},
		{"a client's access token", map[string]string{"Authorization": "Bearer " + w.aliceA.AccessToken}, "invalid_token"},
	} {
		for _, call := range []struct{ method, path, body string }{
			{http.MethodGet, "/admin/api/clients", ""},
			{http.MethodGet, "/admin/api/grants?user_id=" + w.alice, ""},
			{http.MethodPost, "/admin/api/users/revoke", userBody},
			{http.MethodPost, "/admin/api/clients/revoke", clientBody},
			{http.MethodPost, "/admin/api/grants/revoke", `{"grant_id":"x"}`},
		} {
			r := adminCall(t, w.e, call.method, call.path, call.body, h.header)
			wantOAuthError(t, h.name+" "+call.path, r, http.StatusUnauthorized, h.code)
			if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s %s: no Bearer challenge", h.name, call.path)
			}
		}
	}
	for _, bad := range []struct {
		name, path, body string
		status           int
		code             string
	}{
		{"unknown grant", "/admin/api/grants/revoke", `{"grant_id":"no-such-grant"}`, http.StatusNotFound, "not_found"},
		{"empty id", "/admin/api/users/revoke", `{"user_id":""}`, http.StatusBadRequest, "invalid_request"},
		{"wrong field", "/admin/api/users/revoke", clientBody, http.StatusBadRequest, "invalid_request"},
		{"extra field", "/admin/api/users/revoke", `{"user_id":"u","client_id":"c"}`, http.StatusBadRequest, "invalid_request"},
		{"not JSON", "/admin/api/clients/revoke", `client_id=x`, http.StatusBadRequest, "invalid_request"},
		{"trailing data", "/admin/api/users/revoke", userBody + "}", http.StatusBadRequest, "invalid_request"},
		{"huge body", "/admin/api/users/revoke", `{"user_id":"` + strings.Repeat("u", 10<<10) + `"}`, http.StatusRequestEntityTooLarge, "invalid_request"},
	} {
		wantOAuthError(t, bad.name, adminCall(t, w.e, http.MethodPost, bad.path, bad.body, asAdmin()), bad.status, bad.code)
	}
	if got := clerkRevocations(w.e); got != before {
		t.Errorf("refused admin calls revoked Clerk tokens (%d -> %d)", before, got)
	}
	w.clock.Advance(2 * time.Second)
	for _, c := range []*e2etest.Client{w.aliceA, w.aliceB, w.bobA} {
		if s := mcpInit(w.e, c.AccessToken); s != http.StatusOK {
			t.Errorf("a refused admin call ended a grant: /mcp %d", s)
		}
	}
	refused := 0
	for _, l := range auditLines(t, w.e, "admin_action") {
		if l["actor"] == "anonymous" && (l["result"] == "no_token" || l["result"] == "bad_token") {
			refused++
		}
	}
	if refused != 25 {
		t.Errorf("audit lines for refused admin calls: %d, want 25", refused)
	}
	if strings.Contains(w.e.Logs.String(), adminToken[:20]) {
		t.Error("the logs hold the admin token")
	}

	off := e2etest.Start(t, e2etest.Options{})
	if r := adminCall(t, off, http.MethodGet, "/admin/api/clients", "", asAdmin()); r.Status != http.StatusNotFound {
		t.Errorf("without ADMIN_TOKEN /admin/api/clients answered %d, want 404", r.Status)
	}
}

// TestAdminMetadataDocumentClient: a CIMD client (one client id shared by
// every install, no stored registration) is listed with its grants from the
// grant index, and revoking it everywhere ends every user's grant of it.
func TestAdminMetadataDocumentClient(t *testing.T) {
	t.Parallel()
	d := newDocServer(t)
	id := d.URL + "/oauth/client.json"
	d.serve("/oauth/client.json", docReply{body: cimdDoc(id, nil), cc: "public, max-age=300"})
	e := e2etest.Start(t, e2etest.Options{CIMDClient: d.client(),
		Env: map[string]string{"CIMD_ALLOW_LOOPBACK_FOR_TESTS": "true", "ADMIN_TOKEN": adminToken}})
	users := e.Clerk.Users()
	var installs []*e2etest.Client
	for _, u := range users[:2] {
		c := &e2etest.Client{ID: id, RedirectURI: cimdRedirect}
		e.Login(c, testflow.Choices{UserID: u.ID})
		installs = append(installs, c)
	}
	listed := func() (kind string, grants int) {
		r := adminCall(t, e, http.MethodGet, "/admin/api/clients", "", asAdmin())
		var out struct {
			Clients []struct {
				ClientID string `json:"client_id"`
				Kind     string `json:"kind"`
				Grants   int    `json:"grants"`
			} `json:"clients"`
		}
		if r.Status != http.StatusOK || json.Unmarshal([]byte(r.Body), &out) != nil {
			t.Fatalf("list clients: %d %s", r.Status, r.Body)
		}
		for _, c := range out.Clients {
			if c.ClientID == id {
				return c.Kind, c.Grants
			}
		}
		return "", 0
	}
	if kind, n := listed(); kind != "metadata_document" || n != 2 {
		t.Fatalf("the CIMD client is listed as %q with %d grants, want metadata_document with 2", kind, n)
	}
	before := clerkRevocations(e)
	r := adminCall(t, e, http.MethodPost, "/admin/api/clients/revoke", fmt.Sprintf(`{"client_id":%q}`, id), asAdmin())
	if r.Status != http.StatusOK || r.JSON()["revoked"] != float64(2) {
		t.Fatalf("revoke the CIMD client: %d %s", r.Status, r.Body)
	}
	if got := clerkRevocations(e) - before; got != 4 {
		t.Errorf("Clerk revocation calls: %d, want 4", got)
	}
	for i, c := range installs {
		refused := false
		for range 30 { // poll within the grant-cache delay
			if refused = mcpInit(e, c.AccessToken) == http.StatusUnauthorized; refused {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !refused {
			t.Errorf("install %d still works after the client was revoked everywhere", i)
		}
	}
	if kind, _ := listed(); kind != "" {
		t.Errorf("a CIMD client without grants is still listed")
	}
}
