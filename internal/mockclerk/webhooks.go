package mockclerk

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/svix"
)

// Webhook is one delivery the fake Clerk sends, signed as Clerk signs (Svix).
type Webhook struct {
	URL  string         `json:"url"`  // where to POST it, e.g. the proxy's /webhooks/clerk
	Type string         `json:"type"` // event type, e.g. "user.deleted"
	Data map[string]any `json:"data"` // the event's data object
	// SvixID is the delivery id; empty generates one ("msg_…"). Sending the
	// same id twice is how a test replays a delivery.
	SvixID string `json:"svix_id,omitempty"`
	// Timestamp (Unix seconds) is the signed time; 0 means now. An old one
	// makes a stale delivery.
	Timestamp int64 `json:"timestamp,omitempty"`
}

// WebhookResult is what the receiver answered.
type WebhookResult struct {
	Status int    `json:"status"`
	SvixID string `json:"svix_id"`
}

// WebhookSecret is the whsec_… secret deliveries are signed with: give it to
// the receiver as CLERK_WEBHOOK_SECRET.
func (s *Server) WebhookSecret() string { return s.cfg.WebhookSecret }

// SendWebhook signs w as Clerk's Svix does and POSTs it, in Clerk's event
// envelope ({"data", "object": "event", "type", "timestamp", "instance_id"}).
func (s *Server) SendWebhook(ctx context.Context, w Webhook) (WebhookResult, error) {
	if w.URL == "" || w.Type == "" {
		return WebhookResult{}, errors.New("mockclerk: a webhook needs url and type")
	}
	sec, err := svix.ParseSecret(s.cfg.WebhookSecret)
	if err != nil {
		return WebhookResult{}, err
	}
	if w.SvixID == "" {
		w.SvixID = "msg_" + randomAlnum(27)
	}
	at := s.cfg.Now()
	if w.Timestamp != 0 {
		at = time.Unix(w.Timestamp, 0)
	}
	if w.Data == nil {
		w.Data = map[string]any{}
	}
	body, err := json.Marshal(map[string]any{"data": w.Data, "object": "event", "type": w.Type,
		"timestamp": at.UnixMilli(), "instance_id": s.kid})
	if err != nil {
		return WebhookResult{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return WebhookResult{}, err
	}
	for k, v := range sec.SignHeaders(w.SvixID, at, body) {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Svix-Webhooks/1.0 (mockclerk)")
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		return WebhookResult{}, err
	}
	_ = resp.Body.Close()
	s.log.Info("webhook sent", "type", w.Type, "svix_id", w.SvixID, "status", resp.StatusCode)
	return WebhookResult{Status: resp.StatusCode, SvixID: w.SvixID}, nil
}

// handleSendWebhook is POST /__admin/webhooks: {url, type, data, svix_id?,
// timestamp?} → {status, svix_id}.
func (s *Server) handleSendWebhook(w http.ResponseWriter, r *http.Request) {
	var wh Webhook
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&wh); err != nil || wh.URL == "" || wh.Type == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "want JSON {url, type, data, svix_id?, timestamp?}"})
		return
	}
	res, err := s.SendWebhook(r.Context(), wh)
	if err != nil {
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": "the delivery failed: " + err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// defaultWebhookSecret makes a fresh whsec_ secret.
func defaultWebhookSecret() string {
	return "whsec_" + base64.StdEncoding.EncodeToString(randomBytes(24))
}
