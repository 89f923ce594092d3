package mockclerk_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mockclerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/svix"
)

// TestSendWebhook: POST /__admin/webhooks delivers the event in Clerk's
// envelope, Svix-signed with the configured secret (verified here with the
// proxy's verifier), with the given or a fresh svix-id and timestamp, and
// reports the receiver's status; bad requests get 400.
func TestSendWebhook(t *testing.T) {
	t.Parallel()
	const secret = "whsec_dGVzdHMtd2ViaG9vay1zaWduaW5nLWtleS0wMTIzNDU2Nzg5"
	r := start(t, func(c *mockclerk.Config) { c.WebhookSecret = secret })
	sec, _ := svix.ParseSecret(secret)
	var (
		mu   sync.Mutex
		got  []svix.Headers
		body []map[string]any
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		hd, err := sec.Verify(req.Header, b, time.Now())
		var ev map[string]any
		_ = json.Unmarshal(b, &ev)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			// A stale delivery still has a valid signature: check that.
			if _, err2 := sec.Verify(req.Header, b, hd.Timestamp); err2 != nil {
				t.Errorf("delivery does not verify: %v", err)
			}
		}
		got, body = append(got, hd), append(body, ev)
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(recv.Close)

	rep := adminPost(t, r, "webhooks", `{"url":"`+recv.URL+`","type":"user.deleted","data":{"id":"user_1","deleted":true}}`)
	if rep.Status != http.StatusOK || rep.JSON["status"] != float64(http.StatusAccepted) || rep.JSON["svix_id"] == "" {
		t.Fatalf("send: %d %s", rep.Status, rep.Body)
	}
	rep = adminPost(t, r, "webhooks", `{"url":"`+recv.URL+`","type":"session.ended","data":{},"svix_id":"msg_fixed","timestamp":1000000000}`)
	if rep.Status != http.StatusOK || rep.JSON["svix_id"] != "msg_fixed" {
		t.Fatalf("send with id and timestamp: %d %s", rep.Status, rep.Body)
	}
	mu.Lock()
	if len(got) != 2 || got[1].ID != "msg_fixed" || got[1].Timestamp.Unix() != 1000000000 {
		t.Errorf("deliveries: %+v", got)
	}
	if len(body) != 2 || body[0]["type"] != "user.deleted" || body[0]["object"] != "event" || body[0]["data"].(map[string]any)["id"] != "user_1" {
		t.Errorf("envelope: %v", body)
	}
	mu.Unlock()

	for _, bad := range []string{`{}`, `{"url":"` + recv.URL + `"}`, `{"type":"user.deleted"}`, `not json`, `{"url":"x","type":"t","extra":1}`} {
		if rep := adminPost(t, r, "webhooks", bad); rep.Status != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", bad, rep.Status)
		}
	}
	if r.WebhookSecret() != secret {
		t.Error("WebhookSecret() differs from the configured secret")
	}
	if _, err := svix.ParseSecret(start(t, nil).WebhookSecret()); err != nil {
		t.Errorf("the generated webhook secret does not parse: %v", err)
	}
	if _, err := mockclerk.New(mockclerk.Config{ClientID: "c", ClientSecret: "s", Issuer: "http://x", WebhookSecret: "nope"}); err == nil {
		t.Error("a malformed webhook secret was accepted")
	}
}
