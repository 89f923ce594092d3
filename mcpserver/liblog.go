package mcpserver

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/seal"
)

// libraryLog is the slog.Handler mcp-go's transport logs through. The library
// logs at ERROR for things any client can cause at will (a JSON-RPC response
// to a request the server never sent, a client hanging up mid-stream) and puts
// session ids into its attributes and error texts, so without this a client
// could flood the error log and write session ids into it. Here:
//   - only the library's panic reports stay at ERROR; everything else is at
//     most WARN, since it is about one client's request;
//   - session ids become a short hash (still joinable across lines, useless
//     to a reader of the log), wherever they appear;
//   - each message is written at most libLogBurst times per libLogWindow;
//     the next line written reports how many were dropped.
type libraryLog struct {
	next  slog.Handler
	limit *logLimiter
	now   func() time.Time
}

const (
	libLogBurst  = 10
	libLogWindow = time.Minute
)

func newLibraryLog(next slog.Handler, now func() time.Time) *libraryLog {
	return &libraryLog{next: next.WithAttrs([]slog.Attr{slog.String("component", "mcp-go")}),
		limit: &logLimiter{seen: map[string]*logWindow{}}, now: now}
}

// Enabled cannot see the message, so an ERROR is enabled when either what it
// may become (WARN) or what it may stay (a panic report) would be written.
func (h *libraryLog) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, min(l, slog.LevelWarn)) || h.next.Enabled(ctx, l)
}

func (h *libraryLog) Handle(ctx context.Context, r slog.Record) error {
	level := r.Level
	if level > slog.LevelWarn && !strings.HasPrefix(r.Message, "panic") {
		level = slog.LevelWarn
	}
	if !h.next.Enabled(ctx, level) {
		return nil
	}
	dropped, ok := h.limit.allow(r.Message, h.now())
	if !ok {
		return nil
	}
	out := slog.NewRecord(r.Time, level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(scrubAttr(a))
		return true
	})
	if dropped > 0 {
		out.AddAttrs(slog.Int("suppressed", dropped))
	}
	return h.next.Handle(ctx, out)
}

func (h *libraryLog) WithAttrs(attrs []slog.Attr) slog.Handler {
	scrubbed := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		scrubbed[i] = scrubAttr(a)
	}
	return &libraryLog{next: h.next.WithAttrs(scrubbed), limit: h.limit, now: h.now}
}

func (h *libraryLog) WithGroup(name string) slog.Handler {
	return &libraryLog{next: h.next.WithGroup(name), limit: h.limit, now: h.now}
}

// sessionIDPattern matches the ids sessions.go generates: "<nonce>.<mac>",
// both unpadded base64url (24 and 43 characters).
var sessionIDPattern = regexp.MustCompile(`[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{40,}`)

// scrubAttr replaces session ids in an attribute's value, whatever its key:
// the library puts them under "session" and "sessionID" and inside errors.
func scrubAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindGroup:
		attrs := v.Group()
		out := make([]slog.Attr, len(attrs))
		for i, g := range attrs {
			out[i] = scrubAttr(g)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(out...)}
	case slog.KindString, slog.KindAny:
		s := v.String()
		if err, ok := v.Any().(error); ok && v.Kind() == slog.KindAny {
			s = err.Error()
		}
		if sessionIDPattern.MatchString(s) {
			return slog.String(a.Key, sessionIDPattern.ReplaceAllStringFunc(s, sessionRef))
		}
		if v.Kind() == slog.KindAny {
			// Anything else the library hands over (it passes errors and
			// ids) is logged as text, so nothing unscrubbed slips through
			// a value's own formatting.
			return slog.String(a.Key, s)
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// sessionRef is how a session id appears in logs: a hash prefix.
func sessionRef(id string) string { return "session#" + seal.HashHex(id)[:12] }

// logLimiter admits at most libLogBurst lines per message per window.
type logLimiter struct {
	mu   sync.Mutex
	seen map[string]*logWindow
}

type logWindow struct {
	start   time.Time
	count   int
	dropped int
}

// allow reports whether a line with this message may be written now, and
// how many were dropped since the last one written.
func (l *logLimiter) allow(msg string, now time.Time) (dropped int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.seen[msg]
	if w == nil {
		// Messages are the library's constant strings; the bound only
		// guards against a future version putting variable text there.
		if len(l.seen) >= 256 {
			clear(l.seen)
		}
		w = &logWindow{start: now}
		l.seen[msg] = w
	}
	if now.Sub(w.start) >= libLogWindow {
		w.start, w.count = now, 0
	}
	if w.count >= libLogBurst {
		w.dropped++
		return 0, false
	}
	w.count++
	dropped, w.dropped = w.dropped, 0
	return dropped, true
}
