package httpx

import (
	"context"
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"
)

// accessLine is the access log's record of one request.
type accessLine struct {
	id, method, route string
	status, bytes     int
	duration          time.Duration
	clientID, userID  string
}

const accessMsg = "request"

// attrs is the line as slog attributes (typed, not key/value pairs: no
// boxing per field), for any handler.
func (l *accessLine) attrs() []slog.Attr {
	attrs := make([]slog.Attr, 0, 8)
	attrs = append(attrs, slog.String("request_id", l.id), slog.String("method", l.method), slog.String("route", l.route),
		slog.Int("status", l.status), slog.Float64("duration_ms", l.durationMS()), slog.Int("bytes", l.bytes))
	if l.clientID != "" {
		attrs = append(attrs, slog.String("client_id", l.clientID))
	}
	if l.userID != "" {
		attrs = append(attrs, slog.String("user_id", l.userID))
	}
	return attrs
}

func (l *accessLine) durationMS() float64 { return float64(l.duration.Microseconds()) / 1000 }

// appendJSON appends the line exactly as slog's JSONHandler (no
// ReplaceAttr, no source, no groups or attributes added) writes it at time
// t, and reports false, appending nothing, when a string would need JSON
// escaping: that rare line goes through slog itself. The access line was
// the largest cost of the proxy's own layers on the hot path: slog's
// generic path builds a Record and marshals the float with encoding/json.
func (l *accessLine) appendJSON(b []byte, t time.Time) ([]byte, bool) {
	if y := t.Year(); y < 0 || y >= 10000 {
		return b, false
	}
	for _, s := range [...]string{l.id, l.method, l.route, l.clientID, l.userID} {
		if !plainJSON(s) {
			return b, false
		}
	}
	b = append(b, `{"time":"`...)
	b = t.Round(0).AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":"`+accessMsg+`","request_id":"`...)
	b = append(b, l.id...)
	b = append(b, `","method":"`...)
	b = append(b, l.method...)
	b = append(b, `","route":"`...)
	b = append(b, l.route...)
	b = append(b, `","status":`...)
	b = strconv.AppendInt(b, int64(l.status), 10)
	b = append(b, `,"duration_ms":`...)
	b = appendJSONFloat(b, l.durationMS())
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, int64(l.bytes), 10)
	if l.clientID != "" {
		b = append(b, `,"client_id":"`...)
		b = append(b, l.clientID...)
		b = append(b, '"')
	}
	if l.userID != "" {
		b = append(b, `,"user_id":"`...)
		b = append(b, l.userID...)
		b = append(b, '"')
	}
	return append(b, "}\n"...), true
}

// plainJSON reports whether s is printable ASCII without '"' or '\', which
// slog writes inside a JSON string unchanged.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// appendJSONFloat formats f as encoding/json does (and so slog, which calls
// it for floats): %f-style, exponent form only below 1e-6 or from 1e21, with
// a two-digit negative exponent shortened ("1e-07" is written "1e-7"). f is
// finite: a duration in milliseconds always is.
func appendJSONFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// JSONHandler is slog's JSONHandler with a fast path for the access log
// line: Middleware writes that line itself, byte for byte what slog would
// have written, to the same writer. Every other record, and any handler
// derived with WithAttrs or WithGroup, is slog's own.
type JSONHandler struct {
	slog.Handler
	out  *lockedWriter
	fast bool
	bufs sync.Pool
}

// lockedWriter serialises writes, so the fast path's lines and slog's never
// interleave whatever w is (slog locks only its own writes).
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// NewJSONHandler is slog.NewJSONHandler(w, opts) with the access line's
// fast path (off when opts asks for ReplaceAttr or AddSource, which the
// fast path does not reproduce).
func NewJSONHandler(w io.Writer, opts *slog.HandlerOptions) *JSONHandler {
	if opts == nil {
		opts = &slog.HandlerOptions{}
	}
	out := &lockedWriter{w: w}
	return &JSONHandler{
		Handler: slog.NewJSONHandler(out, opts),
		out:     out,
		fast:    opts.ReplaceAttr == nil && !opts.AddSource,
		bufs:    sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }},
	}
}

// writeAccess writes l at time t through the fast path, and reports false
// when it cannot (the caller then logs it through slog). The caller has
// checked that the handler is enabled at info.
func (h *JSONHandler) writeAccess(l *accessLine, t time.Time) bool {
	if !h.fast {
		return false
	}
	bp := h.bufs.Get().(*[]byte)
	b, ok := l.appendJSON((*bp)[:0], t)
	if ok {
		_, _ = h.out.Write(b) // as slog: a failed log write is not the request's error
	}
	if cap(b) <= 4096 {
		*bp = b
		h.bufs.Put(bp)
	}
	return ok
}

// logAccess writes the access line for a request ended at t: through the
// fast path when log's handler is a JSONHandler, otherwise through slog
// (which reads the clock itself).
func logAccess(ctx context.Context, log *slog.Logger, fast *JSONHandler, l *accessLine, t time.Time) {
	if fast != nil && fast.writeAccess(l, t) {
		return
	}
	log.LogAttrs(ctx, slog.LevelInfo, accessMsg, l.attrs()...)
}
