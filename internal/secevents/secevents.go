// Package secevents owns the log of recent security events that the
// operator console and GET /admin/api/events show: reuse detections,
// consent denials, rate-limit hits, forged webhooks, refused client
// assertions, admin actions. The proxy's audit function writes each event
// here and to the log in the same call, so the two never disagree.
//
// The log lives in the shared store (store.Events: a capped list with a TTL
// on Redis), so every replica writes to and reads the same one. Writes go
// through internal/bgwrite: a request never waits for, or fails because of,
// the event log; a write that cannot be made is counted.
//
// Events hold what audit lines hold and never a token, code or secret;
// values are truncated to maxValue bytes.
package secevents

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/bgwrite"
)

// maxValue bounds each attribute value (a client name is chosen by whoever
// registered the client).
const maxValue = 200

// Event is one security event.
type Event struct {
	Time      time.Time         `json:"time"`
	Event     string            `json:"event"`
	RequestID string            `json:"request_id,omitempty"`
	Attrs     map[string]string `json:"attrs,omitempty"`
}

// Store is the shared store's event log.
type Store interface {
	AppendEvent(ctx context.Context, value []byte, max int, ttl time.Duration) error
	RecentEvents(ctx context.Context, n int) ([][]byte, error)
}

// Log records events into the store, keeping at most max for ttl after the
// last one.
type Log struct {
	store  Store
	writer *bgwrite.Writer
	max    int
	ttl    time.Duration
}

// New builds a Log.
func New(s Store, w *bgwrite.Writer, max int, ttl time.Duration) *Log {
	return &Log{store: s, writer: w, max: max, ttl: ttl}
}

// FromAttrs builds an event from slog-style key/value pairs.
func FromAttrs(at time.Time, event, requestID string, kv ...any) Event {
	e := Event{Time: at.UTC(), Event: event, RequestID: requestID}
	for i := 0; i+1 < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			continue
		}
		v := fmt.Sprint(kv[i+1])
		if v == "" {
			continue
		}
		if len(v) > maxValue {
			v = v[:maxValue] + "…"
		}
		if e.Attrs == nil {
			e.Attrs = map[string]string{}
		}
		e.Attrs[k] = v
	}
	return e
}

// Record appends e in the background.
func (l *Log) Record(e Event) {
	raw, err := json.Marshal(e)
	if err != nil {
		return // strings and a time: cannot fail
	}
	l.writer.Go("append_event", func(ctx context.Context) error {
		return l.store.AppendEvent(ctx, raw, l.max, l.ttl)
	})
}

// Recent returns up to n events, newest first. An entry that does not parse
// (written by another version) is skipped.
func (l *Log) Recent(ctx context.Context, n int) ([]Event, error) {
	raws, err := l.store.RecentEvents(ctx, n)
	if err != nil {
		return nil, err
	}
	out := make([]Event, 0, len(raws))
	for _, raw := range raws {
		var e Event
		if json.Unmarshal(raw, &e) == nil && e.Event != "" {
			out = append(out, e)
		}
	}
	return out, nil
}
