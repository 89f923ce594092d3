package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
)

// The fake Clerk's seeded organisation: Alice is its org:admin, Carol an
// org:member, Bob in no organisation.
const consoleOrg = "org_2acmeExampleSeededOrg00001"

func newConsoleWorld(t *testing.T, env map[string]string) *grantsWorld {
	t.Helper()
	o := e2etest.Options{Env: map[string]string{"ADMIN_TOKEN": adminToken, "ADMIN_ORG_ID": consoleOrg}}
	for k, v := range env {
		o.Env[k] = v
	}
	return newGrantsWorldWith(t, o)
}

// consoleBrowser signs user in through GET /admin (the /account sign-in).
func consoleBrowser(t *testing.T, e *e2etest.Env, user string) *testflow.Browser {
	t.Helper()
	return signInAt(t, e, "/admin", user)
}

type pageResponse struct {
	Status int
	Header http.Header
	Body   string
}

func getPage(t *testing.T, c *http.Client, u string) pageResponse {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return doPage(t, c, req)
}

func doPage(t *testing.T, c *http.Client, req *http.Request) pageResponse {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return pageResponse{resp.StatusCode, resp.Header, string(body)}
}

// unframeable: the answer may not be shown in a frame, runs no script and
// is not cached.
func unframeable(t *testing.T, what string, h http.Header) {
	t.Helper()
	csp := h.Get("Content-Security-Policy")
	if h.Get("X-Frame-Options") != "DENY" || !strings.Contains(csp, "frame-ancestors 'none'") ||
		!strings.Contains(csp, "default-src 'none'") || h.Get("Cache-Control") != "no-store" {
		t.Errorf("%s: framing/caching headers %v", what, h)
	}
}

var csrfRe = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfRe.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token on the page:\n%s", page)
	}
	return m[1]
}

func postConsole(t *testing.T, e *e2etest.Env, c *http.Client, path string, form url.Values) pageResponse {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.BaseURL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return doPage(t, c, req)
}

// TestConsoleAccess: the console is for the configured organisation role
// only. Bob (no organisation) and Carol (org:member) are signed in but get
// 403 and no data on every page and action, with an audit line; Alice
// (org:admin) sees clients with their grant counts and any user's grants;
// every page is unframeable. Signing in to /admin also signs in to
// /account, where each user still sees only their own grants.
func TestConsoleAccess(t *testing.T) {
	t.Parallel()
	w := newConsoleWorld(t, nil)
	e := w.e
	users := e.Clerk.Users()
	carol := users[2].ID
	bobGrant := grantID(t, e, w.bob, w.aliceA.ID)
	aliceGrant := grantID(t, e, w.alice, w.aliceA.ID)
	secrets := []string{w.aliceA.ID, w.aliceB.ID, bobGrant, aliceGrant, "Client A", "Client B"}

	// Each sign-in revokes its own Clerk tokens (only the identity is
	// kept): count from after them.
	browsers := map[string]*testflow.Browser{w.bob: consoleBrowser(t, e, w.bob), carol: consoleBrowser(t, e, carol)}
	before := clerkRevocations(e)
	for user, b := range browsers {
		for _, path := range []string{"/admin", "/admin/grants?user_id=" + w.alice, "/admin/grants?client_id=" + w.aliceA.ID} {
			r := getPage(t, b.HTTP, e.BaseURL+path)
			if r.Status != http.StatusForbidden {
				t.Errorf("%s at %s: %d, want 403", user, path, r.Status)
			}
			unframeable(t, path+" (403)", r.Header)
			for _, s := range secrets {
				if strings.Contains(r.Body, s) {
					t.Errorf("%s at %s: the 403 page shows %q", user, path, s)
				}
			}
		}
		// Their own session's CSRF token (from /account) does not make
		// them operators.
		csrf := csrfOf(t, getPage(t, b.HTTP, e.BaseURL+"/account").Body)
		for path, form := range map[string]url.Values{
			"/admin/grants/revoke":  {"grant_id": {aliceGrant}},
			"/admin/clients/revoke": {"client_id": {w.aliceA.ID}},
			"/admin/users/revoke":   {"user_id": {w.alice}},
		} {
			form.Set("csrf_token", csrf)
			if r := postConsole(t, e, b.HTTP, path, form); r.Status != http.StatusForbidden {
				t.Errorf("%s POST %s: %d, want 403", user, path, r.Status)
			}
		}
	}
	if got := clerkRevocations(e); got != before {
		t.Fatalf("refused operators revoked Clerk tokens (%d -> %d)", before, got)
	}
	for _, c := range []*e2etest.Client{w.aliceA, w.aliceB, w.bobA} {
		if s := mcpInit(e, c.AccessToken); s != http.StatusOK {
			t.Fatalf("a refused operator action ended a grant: /mcp %d", s)
		}
	}
	forbidden := 0
	for _, l := range auditLines(t, e, "admin_action") {
		if l["result"] == "forbidden" && (l["actor"] == w.bob || l["actor"] == carol) {
			forbidden++
		}
	}
	if forbidden != 12 {
		t.Errorf("forbidden admin_action audit lines: %d, want 12 (3 pages and 3 actions for each of 2 users)", forbidden)
	}

	// A signed-out visitor is sent to sign in; a signed-out POST is refused.
	anon := testflow.NewBrowser()
	if r := getPage(t, anon.HTTP, e.BaseURL+"/admin/grants?user_id="+w.alice); r.Status != http.StatusFound {
		t.Errorf("signed-out /admin/grants: %d, want 302 to sign in", r.Status)
	}
	if r := postConsole(t, e, anon.HTTP, "/admin/users/revoke", url.Values{"user_id": {w.alice}}); r.Status != http.StatusForbidden {
		t.Errorf("signed-out POST: %d, want 403", r.Status)
	}

	// Alice, the organisation's admin.
	b := consoleBrowser(t, e, w.alice)
	home := getPage(t, b.HTTP, e.BaseURL+"/admin")
	if home.Status != http.StatusOK {
		t.Fatalf("/admin for an operator: %d\n%s", home.Status, home.Body)
	}
	unframeable(t, "/admin", home.Header)
	for _, want := range []string{"Client A", "Client B", w.aliceA.ID, `aria-label="2 grants of Client A"`, `aria-label="1 grants of Client B"`, `action="/admin/clients/revoke"`, `for="user_id"`} {
		if !strings.Contains(home.Body, want) {
			t.Errorf("/admin lacks %q", want)
		}
	}
	bobs := getPage(t, b.HTTP, e.BaseURL+"/admin/grants?user_id="+url.QueryEscape(w.bob))
	unframeable(t, "/admin/grants", bobs.Header)
	if bobs.Status != http.StatusOK || !strings.Contains(bobs.Body, bobGrant) || strings.Contains(bobs.Body, aliceGrant) ||
		!strings.Contains(bobs.Body, "Client A") || !strings.Contains(bobs.Body, "First connected") {
		t.Errorf("Bob's grants in the console: %d\n%s", bobs.Status, bobs.Body)
	}
	byClient := getPage(t, b.HTTP, e.BaseURL+"/admin/grants?client_id="+url.QueryEscape(w.aliceA.ID))
	if !strings.Contains(byClient.Body, bobGrant) || !strings.Contains(byClient.Body, aliceGrant) || strings.Contains(byClient.Body, grantID(t, e, w.alice, w.aliceB.ID)) {
		t.Errorf("client A's grants in the console:\n%s", byClient.Body)
	}
	if r := getPage(t, b.HTTP, e.BaseURL+"/admin/grants"); r.Status != http.StatusBadRequest {
		t.Errorf("/admin/grants without a user or client: %d, want 400", r.Status)
	}

	// The same session serves /account: Alice's own grants only.
	acct := getPage(t, b.HTTP, e.BaseURL+"/account")
	if acct.Status != http.StatusOK || strings.Contains(acct.Body, bobGrant) || !strings.Contains(acct.Body, aliceGrant) {
		t.Errorf("/account after the console sign-in: %d\n%s", acct.Status, acct.Body)
	}
}

// TestConsoleActions: each console action is a CSRF-protected form that
// ends exactly what it names, with the same effect as the API: the clients'
// next MCP requests are refused, their Clerk tokens are revoked at the fake
// Clerk (two calls per grant), the others keep working; one admin_action
// audit line names the operator as actor, and the action shows in the
// recent security events.
func TestConsoleActions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, path, field string
		target            func(t *testing.T, w *grantsWorld) string
		ended, kept       func(w *grantsWorld) []*e2etest.Client
	}{
		{"revoke a grant", "/admin/grants/revoke", "grant_id", func(t *testing.T, w *grantsWorld) string { return grantID(t, w.e, w.bob, w.bobA.ID) },
			func(w *grantsWorld) []*e2etest.Client { return []*e2etest.Client{w.bobA} },
			func(w *grantsWorld) []*e2etest.Client { return []*e2etest.Client{w.aliceA, w.aliceB} }},
		{"revoke a client everywhere", "/admin/clients/revoke", "client_id", func(_ *testing.T, w *grantsWorld) string { return w.aliceA.ID },
			func(w *grantsWorld) []*e2etest.Client { return []*e2etest.Client{w.aliceA, w.bobA} },
			func(w *grantsWorld) []*e2etest.Client { return []*e2etest.Client{w.aliceB} }},
		{"end a user's grants", "/admin/users/revoke", "user_id", func(_ *testing.T, w *grantsWorld) string { return w.alice },
			func(w *grantsWorld) []*e2etest.Client { return []*e2etest.Client{w.aliceA, w.aliceB} },
			func(w *grantsWorld) []*e2etest.Client { return []*e2etest.Client{w.bobA} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newConsoleWorld(t, nil)
			e := w.e
			target := tc.target(t, w)
			b := consoleBrowser(t, e, w.alice)
			csrf := csrfOf(t, getPage(t, b.HTTP, e.BaseURL+"/admin").Body)
			bobCSRF := csrfOf(t, getPage(t, consoleBrowser(t, e, w.bob).HTTP, e.BaseURL+"/account").Body)

			before := clerkRevocations(e)
			for _, bad := range []struct {
				name   string
				client *http.Client
				csrf   string
			}{
				{"no CSRF token", b.HTTP, ""},
				{"a wrong CSRF token", b.HTTP, csrf + "x"},
				{"another user's CSRF token", b.HTTP, bobCSRF},
				{"the right token from a browser without the session", testflow.NewBrowser().HTTP, csrf},
			} {
				form := url.Values{tc.field: {target}}
				if bad.csrf != "" {
					form.Set("csrf_token", bad.csrf)
				}
				if r := postConsole(t, e, bad.client, tc.path, form); r.Status != http.StatusForbidden {
					t.Errorf("%s: %d, want 403", bad.name, r.Status)
				}
			}
			if got := clerkRevocations(e); got != before {
				t.Fatalf("refused forms revoked Clerk tokens (%d -> %d)", before, got)
			}

			r := postConsole(t, e, b.HTTP, tc.path, url.Values{tc.field: {target}, "csrf_token": {csrf}, "back": {"https://evil.example/admin"}})
			loc, _ := url.Parse(r.Header.Get("Location"))
			if r.Status != http.StatusSeeOther || loc == nil || loc.Host != "" || loc.Path != "/admin" {
				t.Fatalf("the action: %d to %q, want 303 back to /admin on this server", r.Status, r.Header.Get("Location"))
			}
			ended := tc.ended(w)
			if got := clerkRevocations(e) - before; got != 2*len(ended) {
				t.Errorf("Clerk revocation calls: %d, want %d", got, 2*len(ended))
			}
			for _, c := range ended {
				w.refusedSoon(t, tc.name, c.AccessToken)
			}
			for _, c := range tc.kept(w) {
				if s := mcpInit(e, c.AccessToken); s != http.StatusOK {
					t.Errorf("%s ended another grant: /mcp %d", tc.name, s)
				}
			}
			// The page it returns to says what was done; the message is
			// signed, so a link cannot put other words there.
			done := getPage(t, b.HTTP, e.BaseURL+loc.String())
			if !strings.Contains(done.Body, `role="status"`) || !strings.Contains(done.Body, "grant(s) ended") {
				t.Errorf("no outcome on the page after the action:\n%s", done.Body)
			}
			q := loc.Query()
			q.Set("done", "Your account is compromised, call +1 555")
			if forged := getPage(t, b.HTTP, e.BaseURL+"/admin?"+q.Encode()); strings.Contains(forged.Body, "compromised") {
				t.Error("an unsigned outcome message was shown")
			}

			var audited bool
			for _, l := range auditLines(t, e, "admin_action") {
				if l["actor"] == w.alice && l["target"] == strings.TrimSuffix(tc.field, "_id")+":"+target && l["result"] == "ok" &&
					l["grants_ended"] == float64(len(ended)) {
					audited = true
				}
			}
			if !audited {
				t.Errorf("no admin_action audit line with Alice as the actor:\n%v", auditLines(t, e, "admin_action"))
			}
			ev := waitEvent(t, e, func(ev consoleEvent) bool {
				return ev.Event == "admin_action" && ev.Attrs["actor"] == w.alice && ev.Attrs["result"] == "ok"
			})
			if ev.Attrs["target"] != strings.TrimSuffix(tc.field, "_id")+":"+target {
				t.Errorf("the event: %+v", ev)
			}
		})
	}
}

type consoleEvent struct {
	Time      time.Time         `json:"time"`
	Event     string            `json:"event"`
	RequestID string            `json:"request_id"`
	Attrs     map[string]string `json:"attrs"`
}

// events reads GET /admin/api/events.
func events(t *testing.T, e *e2etest.Env, query string) (int, string, []consoleEvent) {
	t.Helper()
	r := adminCall(t, e, http.MethodGet, "/admin/api/events"+query, "", asAdmin())
	var out struct {
		Events []consoleEvent `json:"events"`
	}
	_ = json.Unmarshal([]byte(r.Body), &out)
	return r.Status, r.Body, out.Events
}

// waitEvent polls the event API until an event matches: events are written
// in the background, off the request path.
func waitEvent(t *testing.T, e *e2etest.Env, match func(consoleEvent) bool) consoleEvent {
	t.Helper()
	for range 100 {
		_, _, evs := events(t, e, "?limit=1000")
		for _, ev := range evs {
			if match(ev) {
				return ev
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, body, _ := events(t, e, "?limit=1000")
	t.Fatalf("no matching event after 5 s:\n%s", body)
	return consoleEvent{}
}

// TestConsoleEvents: security events from the audit stream (a denied
// consent, forged and stale webhooks, a refused client assertion, a
// rate-limit hit, a refused operator) reach the shared log, newest first,
// without a token or secret in them, and show on the console; routine
// events (token issues) do not. Last-used times reach /account and the
// admin API without a Redis write per request.
func TestConsoleEvents(t *testing.T) {
	t.Parallel()
	w := newConsoleWorld(t, map[string]string{"CLERK_WEBHOOK_SECRET": webhookSecret, "RATE_LIMIT_REGISTER": "3"})
	e := w.e

	// A denied consent.
	c := e.RegisterClient(e2etest.ClientOptions{Name: "Denied App"})
	if err := e.TryLogin(c, testflow.Choices{Consent: "deny"}); err == nil {
		t.Fatal("a denied consent issued tokens")
	}
	// A forged webhook.
	req, _ := http.NewRequest(http.MethodPost, e.BaseURL+"/webhooks/clerk", strings.NewReader(`{"type":"user.deleted","data":{"id":"`+w.alice+`"}}`))
	req.Header.Set("svix-id", "msg_forged")
	req.Header.Set("svix-timestamp", strconv.FormatInt(w.clock.Now().Unix(), 10))
	req.Header.Set("svix-signature", "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	if r := secDo(t, req); r.Status != http.StatusBadRequest {
		t.Fatalf("forged webhook: %d", r.Status)
	}
	// A refused client assertion.
	if s, _ := e.PostForm("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {"https://app.example/client.json"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {"not-a-jwt"}}, nil); s != http.StatusUnauthorized {
		t.Errorf("a malformed client assertion: %d, want 401", s)
	}
	// Rate-limit hits: 3 registrations a minute are allowed (the world's
	// two clients and the denied one), the next ones are refused.
	refused := 0
	for range 5 {
		if _, err := e.TryRegister("http://127.0.0.1:9/cb"); err != nil {
			refused++
		}
	}
	// A refused operator.
	b := consoleBrowser(t, e, w.bob)
	if r := getPage(t, b.HTTP, e.BaseURL+"/admin"); r.Status != http.StatusForbidden {
		t.Fatalf("Bob at /admin: %d", r.Status)
	}

	for _, want := range []struct{ event, key, value string }{
		{"consent_denied", "client_id", c.ID},
		{"clerk_webhook_refused", "reason", "bad_signature"},
		{"client_assertion_refused", "reason", "malformed"},
		{"rate_limited", "endpoint", "register"},
		{"admin_action", "actor", w.bob},
	} {
		waitEvent(t, e, func(ev consoleEvent) bool { return ev.Event == want.event && ev.Attrs[want.key] == want.value })
	}
	status, body, evs := events(t, e, "?limit=1000")
	if status != http.StatusOK {
		t.Fatalf("events: %d", status)
	}
	rateLimited := 0
	for i, ev := range evs {
		switch {
		case ev.Event == "tokens_issued" || ev.Event == "authorization_code_issued" || ev.Event == "client_registered":
			t.Errorf("a routine event in the security events: %+v", ev)
		case ev.Event == "rate_limited":
			rateLimited++
		}
		if i > 0 && ev.Time.After(evs[i-1].Time) {
			t.Errorf("events not newest first at %d", i)
		}
	}
	// One event per address and window, however many requests it refused
	// (the test may straddle two windows).
	if rateLimited < 1 || rateLimited >= refused {
		t.Errorf("rate_limited events for %d refused registrations: %d, want one per window", refused, rateLimited)
	}
	for _, secret := range []string{w.aliceA.AccessToken, w.aliceA.RefreshToken, w.bobA.AccessToken, adminToken, e2etest.ProxySecret,
		e2etest.ClerkClientSecret, e2etest.ClerkSecretKey, webhookSecret, "AAAAAAAAAAAAAAAAAAAA"} {
		if secret != "" && strings.Contains(body, secret) {
			t.Errorf("the security events hold a secret or token (%.12s…)", secret)
		}
	}
	if s, _, one := events(t, e, "?limit=1"); s != http.StatusOK || len(one) != 1 {
		t.Errorf("limit=1: %d, %d events", s, len(one))
	}
	for _, q := range []string{"?limit=0", "?limit=1001", "?limit=x", "?limit=1&limit=2"} {
		if s, _, _ := events(t, e, q); s != http.StatusBadRequest {
			t.Errorf("events%s: %d, want 400", q, s)
		}
	}
	if r := adminCall(t, e, http.MethodGet, "/admin/api/events", "", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("events without the admin token: %d, want 401", r.Status)
	}

	// The console shows them.
	home := getPage(t, consoleBrowser(t, e, w.alice).HTTP, e.BaseURL+"/admin")
	for _, want := range []string{"consent_denied", "clerk_webhook_refused", `class="notable"`} {
		if !strings.Contains(home.Body, want) {
			t.Errorf("/admin lacks the event %q", want)
		}
	}

	// Last used: the world's MCP requests were recorded, to the minute.
	var last time.Time
	for range 100 {
		var out struct {
			Grants []struct {
				ClientID   string    `json:"client_id"`
				CreatedAt  time.Time `json:"created_at"`
				LastUsedAt time.Time `json:"last_used_at"`
			} `json:"grants"`
		}
		r := adminCall(t, e, http.MethodGet, "/admin/api/grants?user_id="+w.alice, "", asAdmin())
		_ = json.Unmarshal([]byte(r.Body), &out)
		if len(out.Grants) == 2 && !out.Grants[0].LastUsedAt.IsZero() && !out.Grants[1].LastUsedAt.IsZero() {
			last = out.Grants[0].LastUsedAt
			if last.Second() != 0 || last.After(w.clock.Now()) || last.Before(out.Grants[0].CreatedAt.Add(-time.Minute)) {
				t.Errorf("last used %v: not a minute at or after creation (%v)", last, out.Grants[0].CreatedAt)
			}
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if last.IsZero() {
		t.Fatal("no last-used time after the grants' MCP requests")
	}
	acct := getPage(t, consoleBrowser(t, e, w.alice).HTTP, e.BaseURL+"/account")
	if !strings.Contains(acct.Body, "last used "+last.UTC().Format("2 Jan 2006 15:04 UTC")) || !strings.Contains(acct.Body, "first connected") {
		t.Errorf("/account lacks first connected / last used:\n%s", acct.Body)
	}
}
