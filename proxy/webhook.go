package proxy

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/httpx"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/oautherr"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/seal"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/svix"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
)

// Clerk webhooks: POST /webhooks/clerk, Svix-signed with CLERK_WEBHOOK_SECRET.
// A Clerk user who is deleted, banned or locked loses every grant here at
// once, with the Clerk tokens behind them, instead of keeping MCP access
// until the tokens expire.
//
// Svix retries a delivery until it gets a 2xx, so every event we do not act
// on is still answered 200, and a delivery is only refused (4xx) when it is
// not from Clerk: bad or missing signature headers, a timestamp outside the
// tolerance, an oversized body. A store failure answers 503 so Svix retries.

const (
	webhookEndpoint = "webhook"
	// maxWebhookBody bounds a delivery; Clerk's user objects are a few KiB
	// (metadata is capped at 8 KiB each).
	maxWebhookBody = 256 << 10
	// replaySlack keeps a delivery id a little past the end of its
	// timestamp's tolerance, for clock differences between replicas.
	replaySlack = time.Minute
)

// Why grants are ended, for metrics and audit.
const (
	reasonUserDeleted = "clerk_user_deleted"
	reasonUserBanned  = "clerk_user_banned"
	reasonUserLocked  = "clerk_user_locked"
	// The verifier ends a session-bound grant with the same reason when it
	// finds the session over.
	reasonSessionEnded = "clerk_session_ended"
)

// mountWebhooks serves POST /webhooks/clerk when a secret is configured.
func (s *Server) mountWebhooks(r chi.Router) {
	if s.webhookSecret == nil {
		return
	}
	r.With(s.limitInFlight).Post("/webhooks/clerk", s.handleClerkWebhook)
}

// clerkEvent is the part of Clerk's event envelope the proxy reads.
type clerkEvent struct {
	Type string `json:"type"`
	Data struct {
		ID     string `json:"id"`
		UserID string `json:"user_id"` // session events
		Banned bool   `json:"banned"`
		Locked bool   `json:"locked"`
	} `json:"data"`
}

func (s *Server) handleClerkWebhook(w http.ResponseWriter, r *http.Request) {
	body, berr := httpx.ReadBody(w, r, maxWebhookBody)
	if berr != nil {
		s.writeError(w, r, webhookEndpoint, oautherr.New(berr.Status, oautherr.InvalidRequest, berr.Description))
		return
	}
	hd, err := s.webhookSecret.Verify(r.Header, body, s.now())
	if err != nil {
		s.refuseWebhook(w, r, hd.ID, err)
		return
	}
	var ev clerkEvent
	if err := json.Unmarshal(body, &ev); err != nil || ev.Type == "" {
		// Signed by Clerk yet unreadable: a retry will not help, so answer
		// 400 and let Svix's dashboard show it.
		s.writeError(w, r, webhookEndpoint, errInvalidRequest("the event is not a JSON object with a type"))
		return
	}
	// Replay guard, shared by replicas: the first delivery of an id claims
	// it for as long as its timestamp would be accepted; later ones are
	// acknowledged and ignored.
	replayID := seal.HashHex(hd.ID)
	// Verify accepted the timestamp, so keep is at least replaySlack.
	keep := hd.Timestamp.Add(svix.Tolerance).Sub(s.now()) + replaySlack
	switch err := s.store.PutTicket(r.Context(), store.KindWebhook, replayID, []byte{1}, keep); {
	case errors.Is(err, store.ErrAlreadyExists):
		s.log.InfoContext(r.Context(), "clerk webhook replayed; ignored", "svix_id", hd.ID, "type", ev.Type)
		writeJSON(w, http.StatusOK, map[string]string{"status": "duplicate"})
		return
	case err != nil:
		s.storeError(r, "put_webhook_id", err)
		s.writeError(w, r, webhookEndpoint, errUnavailable("try again").WithCause(err))
		return
	}
	status, n, err := s.applyClerkEvent(r, ev)
	s.audit(r, "clerk_webhook", "svix_id", hd.ID, "type", ev.Type, "user_id", ev.userID(), "status", status,
		"grants_ended", n, "complete", err == nil)
	if err != nil {
		// Release the id so Svix's retry is processed, not taken for a replay.
		_, _ = s.store.ConsumeTicket(r.Context(), store.KindWebhook, replayID, 0)
		s.writeError(w, r, webhookEndpoint, errUnavailable("the store failed; retry").WithCause(err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": status})
}

// refuseWebhook answers a delivery that is not provably Clerk's. Forged
// signatures and stale timestamps get an audit line: someone holds or is
// guessing at the endpoint.
func (s *Server) refuseWebhook(w http.ResponseWriter, r *http.Request, svixID string, err error) {
	reason, desc := "malformed_headers", "the svix-id, svix-timestamp and svix-signature headers are required"
	switch {
	case errors.Is(err, svix.ErrNoMatch):
		reason, desc = "bad_signature", "the signature does not match"
	case errors.Is(err, svix.ErrStale):
		reason, desc = "stale_timestamp", "the timestamp is too old or too far in the future"
	}
	if reason != "malformed_headers" {
		s.audit(r, "clerk_webhook_refused", "reason", reason, "svix_id", svixID)
	}
	s.writeError(w, r, webhookEndpoint, oautherr.New(http.StatusBadRequest, oautherr.InvalidRequest, desc))
}

func (ev clerkEvent) userID() string {
	if ev.Data.UserID != "" {
		return ev.Data.UserID
	}
	return ev.Data.ID
}

// applyClerkEvent acts on one verified event and says what it did:
// "processed" (grants ended, possibly none) or "ignored".
func (s *Server) applyClerkEvent(r *http.Request, ev clerkEvent) (string, int, error) {
	reason := ""
	switch ev.Type {
	case "user.deleted":
		reason = reasonUserDeleted
	case "user.updated":
		// Clerk has no ban or lock event: a ban or lock arrives as an update
		// of the user object with banned / locked set.
		switch {
		case ev.Data.Banned:
			reason = reasonUserBanned
		case ev.Data.Locked:
			reason = reasonUserLocked
		}
	case "session.revoked", "session.ended", "session.removed":
		return s.sessionEnded(r, ev)
	}
	if reason == "" || ev.Data.ID == "" {
		return "ignored", 0, nil
	}
	n, err := s.revokeUserGrants(r, ev.Data.ID, reason)
	return "processed", n, err
}

// sessionEnded acts on a Clerk session that ended: the grants bound to it
// (AUTH_MODE=app binds each grant to the Clerk session the user signed in
// with) end now, instead of when the hot path next looks the session up.
// Grants made through Clerk's OAuth flow (proxy mode) are bound to no
// session and outlive it, as Clerk's own OAuth tokens do.
func (s *Server) sessionEnded(r *http.Request, ev clerkEvent) (string, int, error) {
	if ev.Data.ID == "" || ev.Data.UserID == "" {
		return "ignored", 0, nil
	}
	gs, err := s.store.ListGrantsByUser(r.Context(), ev.Data.UserID)
	if err != nil {
		s.storeError(r, "list_grants", err)
		return "", 0, err
	}
	var bound []store.Grant
	for _, g := range gs {
		if g.ClerkSession != "" && g.ClerkSession == ev.Data.ID {
			bound = append(bound, g)
		}
	}
	n, err := s.endGrants(r, bound, reasonSessionEnded)
	return "processed", n, err
}
