package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mockclerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/svix"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
)

// The Clerk webhook secret of the tests (base64 of 32 bytes).
const webhookSecret = "whsec_dGVzdHMtd2ViaG9vay1zaWduaW5nLWtleS0wMTIzNDU2Nzg5"

func webhookOptions() e2etest.Options {
	return e2etest.Options{
		Env:   map[string]string{"CLERK_WEBHOOK_SECRET": webhookSecret},
		Clerk: func(c *mockclerk.Config) { c.WebhookSecret = webhookSecret },
	}
}

// sendWebhook asks the fake Clerk (its admin API) to deliver a signed event
// to target's /webhooks/clerk and returns the proxy's status.
func sendWebhook(t *testing.T, e, target *e2etest.Env, wh mockclerk.Webhook) int {
	t.Helper()
	wh.URL = target.BaseURL + "/webhooks/clerk"
	b, _ := json.Marshal(wh)
	req, _ := http.NewRequest(http.MethodPost, e.Clerk.URL+"/__admin/webhooks", strings.NewReader(string(b)))
	r := secDo(t, req)
	var res mockclerk.WebhookResult
	if r.Status != http.StatusOK || json.Unmarshal([]byte(r.Body), &res) != nil {
		t.Fatalf("the fake Clerk could not send the webhook: %d %s", r.Status, r.Body)
	}
	return res.Status
}

// TestClerkWebhookEvents: a signed user.deleted, or a user.updated that bans
// or locks the user, ends every grant of that user (and revokes their Clerk
// tokens at Clerk); other users keep theirs. Session events (proxy-mode
// grants are bound to no Clerk session), harmless updates and unknown types
// are acknowledged (200, so Svix stops retrying) and change nothing.
func TestClerkWebhookEvents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		typ   string
		data  func(w *grantsWorld) map[string]any
		ended bool // Alice's two grants end
	}{
		{"user.deleted", "user.deleted", func(w *grantsWorld) map[string]any {
			return map[string]any{"id": w.alice, "object": "user", "deleted": true}
		}, true},
		{"user banned", "user.updated", func(w *grantsWorld) map[string]any {
			return map[string]any{"id": w.alice, "object": "user", "banned": true, "locked": false}
		}, true},
		{"user locked", "user.updated", func(w *grantsWorld) map[string]any {
			return map[string]any{"id": w.alice, "object": "user", "banned": false, "locked": true}
		}, true},
		{"harmless update", "user.updated", func(w *grantsWorld) map[string]any {
			return map[string]any{"id": w.alice, "object": "user", "first_name": "Alicia", "banned": false}
		}, false},
		{"session.ended", "session.ended", func(w *grantsWorld) map[string]any {
			return map[string]any{"id": "sess_123", "object": "session", "user_id": w.alice, "status": "ended"}
		}, false},
		{"session.revoked", "session.revoked", func(w *grantsWorld) map[string]any {
			return map[string]any{"id": "sess_123", "object": "session", "user_id": w.alice, "status": "revoked"}
		}, false},
		{"unknown type", "organization.created", func(w *grantsWorld) map[string]any {
			return map[string]any{"id": w.alice}
		}, false},
		{"user.deleted of an unknown user", "user.deleted", func(w *grantsWorld) map[string]any {
			return map[string]any{"id": "user_nobody", "deleted": true}
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newGrantsWorldWith(t, webhookOptions())
			before := clerkRevocations(w.e)
			if s := sendWebhook(t, w.e, w.e, mockclerk.Webhook{Type: tc.typ, Data: tc.data(w)}); s != http.StatusOK {
				t.Fatalf("the proxy answered the webhook %d, want 200", s)
			}
			var ended []*e2etest.Client
			if tc.ended {
				ended = []*e2etest.Client{w.aliceA, w.aliceB}
			}
			if got := clerkRevocations(w.e) - before; got != 2*len(ended) {
				t.Errorf("Clerk revocation calls: %d, want %d", got, 2*len(ended))
			}
			for i, c := range ended {
				w.refusedSoon(t, fmt.Sprintf("grant %d of the user", i), c.AccessToken)
			}
			w.clock.Advance(2 * time.Second)
			for _, c := range []*e2etest.Client{w.aliceA, w.aliceB, w.bobA} {
				if !slices.Contains(ended, c) && mcpInit(w.e, c.AccessToken) != http.StatusOK {
					t.Errorf("a grant the event did not concern stopped working")
				}
			}
			audits := auditLines(t, w.e, "clerk_webhook")
			if len(audits) != 1 || audits[0]["type"] != tc.typ {
				t.Errorf("audit lines for the webhook: %v", audits)
			}
		})
	}
}

// TestClerkWebhookReplay: a delivery replayed with the same svix-id, to the
// same replica or to another one on the same Redis, is acknowledged and
// ignored: a grant made after the first delivery survives the replay.
func TestClerkWebhookReplay(t *testing.T) {
	t.Parallel()
	w := newGrantsWorldWith(t, webhookOptions())
	o := webhookOptions()
	o.Prefix = w.e.Prefix
	replica := e2etest.Start(t, o)
	first := mockclerk.Webhook{Type: "user.deleted", Data: map[string]any{"id": w.bob, "deleted": true}, SvixID: "msg_replayedDelivery0001"}
	if s := sendWebhook(t, w.e, w.e, first); s != http.StatusOK {
		t.Fatalf("first delivery: %d", s)
	}
	w.refusedSoon(t, "Bob's grant after user.deleted", w.bobA.AccessToken)

	again := *w.bobA
	w.e.Login(&again, testflow.Choices{UserID: w.bob}) // Bob signs up again and connects
	before := clerkRevocations(w.e)
	for _, target := range []*e2etest.Env{w.e, replica} {
		if s := sendWebhook(t, w.e, target, first); s != http.StatusOK {
			t.Fatalf("replayed delivery: %d, want 200 (acknowledged, ignored)", s)
		}
	}
	w.clock.Advance(2 * time.Second)
	if s := mcpInit(w.e, again.AccessToken); s != http.StatusOK {
		t.Errorf("a replayed user.deleted ended a later grant: /mcp %d", s)
	}
	if got := clerkRevocations(w.e); got != before {
		t.Errorf("a replay revoked Clerk tokens (%d -> %d)", before, got)
	}
	// A new delivery (new id) of the same event is acted on.
	if s := sendWebhook(t, w.e, replica, mockclerk.Webhook{Type: "user.deleted", Data: map[string]any{"id": w.bob}}); s != http.StatusOK {
		t.Fatalf("new delivery: %d", s)
	}
	w.refusedSoon(t, "Bob's new grant after a new user.deleted", again.AccessToken)
}

// TestClerkWebhookRefusals: forged, stale, malformed and oversized
// deliveries get 4xx and change nothing; forged and stale ones are
// audited. Without CLERK_WEBHOOK_SECRET the endpoint does not exist.
func TestClerkWebhookRefusals(t *testing.T) {
	t.Parallel()
	w := newGrantsWorldWith(t, webhookOptions())
	sec, _ := svix.ParseSecret(webhookSecret)
	forger, _ := svix.ParseSecret("whsec_Zm9yZ2VkLWtleS1mb3ItdGhlLXRlc3RzLTAxMjM0NTY3ODk=")
	body := []byte(fmt.Sprintf(`{"type":"user.deleted","object":"event","data":{"id":%q,"deleted":true}}`, w.alice))
	now := time.Now()
	signed := func(s svix.Secret, id string, at time.Time, b []byte) http.Header { return s.SignHeaders(id, at, b) }
	huge := append(body[:len(body)-1:len(body)-1], []byte(`,"pad":"`+strings.Repeat("x", 300<<10)+`"}`)...)
	tests := []struct {
		name    string
		header  http.Header
		body    []byte
		status  int
		audited string // the refusal's audit reason, if any
	}{
		{"forged signature", signed(forger, "msg_forged", now, body), body, http.StatusBadRequest, "bad_signature"},
		{"body changed after signing", signed(sec, "msg_tampered", now, []byte(`{"type":"user.updated"}`)), body, http.StatusBadRequest, "bad_signature"},
		{"stale timestamp", signed(sec, "msg_stale", now.Add(-10*time.Minute), body), body, http.StatusBadRequest, "stale_timestamp"},
		{"timestamp from the future", signed(sec, "msg_future", now.Add(10*time.Minute), body), body, http.StatusBadRequest, "stale_timestamp"},
		{"no headers", http.Header{}, body, http.StatusBadRequest, ""},
		{"signature without version", func() http.Header {
			h := signed(sec, "msg_nover", now, body)
			h.Set(svix.HeaderSignature, strings.TrimPrefix(h.Get(svix.HeaderSignature), "v1,"))
			return h
		}(), body, http.StatusBadRequest, ""},
		{"huge body, correctly signed", signed(sec, "msg_huge", now, huge), huge, http.StatusRequestEntityTooLarge, ""},
		{"signed, but not an event", signed(sec, "msg_notjson", now, []byte("[1,2]")), []byte("[1,2]"), http.StatusBadRequest, ""},
	}
	before := clerkRevocations(w.e)
	for _, tc := range tests {
		req, _ := http.NewRequest(http.MethodPost, w.e.BaseURL+"/webhooks/clerk", strings.NewReader(string(tc.body)))
		for k, v := range tc.header {
			req.Header[k] = v
		}
		req.Header.Set("Content-Type", "application/json")
		r := secDo(t, req)
		wantOAuthError(t, tc.name, r, tc.status, "invalid_request")
	}
	if got := clerkRevocations(w.e); got != before {
		t.Errorf("refused webhooks revoked Clerk tokens (%d -> %d)", before, got)
	}
	w.clock.Advance(2 * time.Second)
	for _, c := range []*e2etest.Client{w.aliceA, w.aliceB, w.bobA} {
		if s := mcpInit(w.e, c.AccessToken); s != http.StatusOK {
			t.Errorf("a refused webhook ended a grant: /mcp %d", s)
		}
	}
	reasons := map[string]int{}
	for _, l := range auditLines(t, w.e, "clerk_webhook_refused") {
		reasons[fmt.Sprint(l["reason"])]++
	}
	if reasons["bad_signature"] != 2 || reasons["stale_timestamp"] != 2 {
		t.Errorf("refusal audit lines by reason: %v, want 2 bad_signature and 2 stale_timestamp", reasons)
	}
	if n := len(auditLines(t, w.e, "clerk_webhook")); n != 0 {
		t.Errorf("%d refused deliveries were processed", n)
	}

	off := e2etest.Start(t, e2etest.Options{})
	req, _ := http.NewRequest(http.MethodPost, off.BaseURL+"/webhooks/clerk", strings.NewReader(string(body)))
	if r := secDo(t, req); r.Status != http.StatusNotFound {
		t.Errorf("without CLERK_WEBHOOK_SECRET /webhooks/clerk answered %d, want 404", r.Status)
	}
}

// TestClerkWebhookEndsSessionGrants: in AUTH_MODE=app every grant is bound
// to the Clerk session the user signed in with. A signed session.ended
// webhook for that session ends the grant at once — without waiting for the
// hot path's cached session check (an hour here) — while a session event
// for another session of the same user changes nothing.
func TestClerkWebhookEndsSessionGrants(t *testing.T) {
	t.Parallel()
	o := webhookOptions()
	for k, v := range map[string]string{"AUTH_MODE": "app", "APP_URL": e2etest.ClerkURLVar + mockclerk.TeamAppPath,
		"CLERK_CLIENT_ID": "", "CLERK_CLIENT_SECRET": "", "INTROSPECTION_CACHE_TTL": "1h"} {
		o.Env[k] = v
	}
	e := e2etest.Start(t, o)
	c := e.Register(appRedirect)
	e.Login(c, testflow.Choices{})
	alice := mockclerk.DefaultUsers()[0].ID
	gs, err := e.App.Store.ListGrantsByUser(context.Background(), alice)
	if err != nil || len(gs) != 1 || gs[0].ClerkSession == "" {
		t.Fatalf("grants of the user: %+v %v, want one bound to a Clerk session", gs, err)
	}
	session := gs[0].ClerkSession
	sid := e.Initialize(c.AccessToken)

	if s := sendWebhook(t, e, e, mockclerk.Webhook{Type: "session.ended", Data: map[string]any{
		"id": "sess_other", "object": "session", "user_id": alice, "status": "ended"}}); s != http.StatusOK {
		t.Fatalf("webhook for another session: %d", s)
	}
	if r, _ := e.CallTool(c.AccessToken, sid, "get-user-info"); r.Status != http.StatusOK {
		t.Fatalf("another session's end ended this grant: %d", r.Status)
	}
	if s := sendWebhook(t, e, e, mockclerk.Webhook{Type: "session.revoked", Data: map[string]any{
		"id": session, "object": "session", "user_id": alice, "status": "revoked"}}); s != http.StatusOK {
		t.Fatalf("webhook for the grant's session: %d", s)
	}
	if gs, err := e.App.Store.ListGrantsByUser(context.Background(), alice); err != nil || len(gs) != 0 {
		t.Fatalf("grants after the session was revoked: %+v %v, want none", gs, err)
	}
	if r := e.MCP(c.AccessToken, sid, "tools/list", map[string]any{}); r.Status != http.StatusUnauthorized {
		t.Errorf("the grant's token after its session was revoked: %d, want 401", r.Status)
	}
}
