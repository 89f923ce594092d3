package httpx

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
)

// slogLine is what slog's own JSONHandler writes for l at time t.
func slogLine(t testing.TB, l *accessLine, at time.Time) []byte {
	t.Helper()
	var buf bytes.Buffer
	r := slog.NewRecord(at, slog.LevelInfo, accessMsg, 0)
	r.AddAttrs(l.attrs()...)
	if err := slog.NewJSONHandler(&buf, nil).Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// The fast path writes exactly slog's bytes, or declines and leaves the
// line to slog.
func TestAccessLineMatchesSlog(t *testing.T) {
	at := time.Date(2026, 12, 5, 21, 39, 38, 38362177, time.UTC)
	tests := []struct {
		name     string
		l        accessLine
		at       time.Time
		declines bool
	}{
		{name: "hot path", l: accessLine{id: "0123456789abcdef", method: "POST", route: "/mcp", status: 200, bytes: 512,
			duration: 1234567 * time.Nanosecond, clientID: "c_abc", userID: "user_2x"}},
		{name: "anonymous", l: accessLine{id: "x", method: "GET", route: "/.well-known/oauth-authorization-server", status: 200, duration: 0}},
		{name: "whole milliseconds", l: accessLine{id: "r", method: "GET", route: "/healthz", status: 200, duration: 3 * time.Millisecond}},
		{name: "sub-millisecond", l: accessLine{id: "r", method: "GET", route: "/healthz", status: 200, duration: time.Microsecond}},
		{name: "long", l: accessLine{id: "r", method: "GET", route: "/mcp", status: 200, duration: 100 * 24 * time.Hour, bytes: 1 << 40}},
		{name: "odd but plain", l: accessLine{id: "a.b_c-d", method: "M1", route: "/register/{client_id}/*", status: 405, clientID: "<&>'"}},
		{name: "local time zone", l: accessLine{id: "r", method: "GET", route: "/", status: 404}, at: at.In(time.FixedZone("X", -(3*3600 + 1800)))},
		{name: "monotonic reading stripped", l: accessLine{id: "r", method: "GET", route: "/", status: 404}, at: time.Now()},
		{name: "quote", l: accessLine{id: "r", method: "GET", route: "/", clientID: `a"b`}, declines: true},
		{name: "backslash", l: accessLine{id: "r", method: "GET", route: "/", userID: `a\b`}, declines: true},
		{name: "control", l: accessLine{id: "r", method: "GET\n", route: "/"}, declines: true},
		{name: "non-ASCII", l: accessLine{id: "r", method: "GET", route: "/", userID: "é"}, declines: true},
		{name: "year 10000", l: accessLine{id: "r", method: "GET", route: "/"}, at: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), declines: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			when := tt.at
			if when.IsZero() {
				when = at
			}
			got, ok := tt.l.appendJSON([]byte("keep"), when)
			if ok == tt.declines {
				t.Fatalf("fast path taken = %v, want %v", ok, !tt.declines)
			}
			if !ok {
				if string(got) != "keep" {
					t.Fatalf("declined but appended: %q", got)
				}
				return
			}
			if want := slogLine(t, &tt.l, when); !bytes.Equal(got[len("keep"):], want) {
				t.Errorf("fast path:\n%s\nslog:\n%s", got[len("keep"):], want)
			}
		})
	}
}

// FuzzAccessLine: for any fields, the fast path writes slog's bytes or
// declines.
func FuzzAccessLine(f *testing.F) {
	f.Add("0123456789abcdef", "POST", "/mcp", "c_1", "user_1", 200, 512, int64(1234567), int64(1764970778038362177))
	f.Add("", "", "", "", "", 0, 0, int64(0), int64(0))
	f.Add(`"`, "\x00", "é", "\u2028", "\xff", -1, -1, int64(-5), int64(-62135596800000000))
	f.Fuzz(func(t *testing.T, id, method, route, clientID, userID string, status, size int, dur, unixNano int64) {
		l := accessLine{id: id, method: method, route: route, clientID: clientID, userID: userID, status: status, bytes: size,
			duration: time.Duration(dur)}
		at := time.Unix(0, unixNano).UTC()
		got, ok := l.appendJSON(nil, at)
		if !ok {
			return
		}
		if want := slogLine(t, &l, at); !bytes.Equal(got, want) {
			t.Errorf("fast path:\n%s\nslog:\n%s", got, want)
		}
	})
}

// accessLogOf serves one GET of path through Middleware with a logger on
// handler h and a route that names the client and user ("u" in the query).
func accessLogOf(h slog.Handler, path string) {
	r := chi.NewRouter()
	r.Use(Middleware(slog.New(h), nil))
	r.Get("/who", func(w http.ResponseWriter, r *http.Request) {
		SetClient(r.Context(), "c_1")
		SetUser(r.Context(), r.URL.Query().Get("u"))
		_, _ = io.WriteString(w, "hello")
	})
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Header.Set("X-Request-Id", "fixed-id")
	r.ServeHTTP(httptest.NewRecorder(), req)
}

// Through Middleware, a logger built on NewJSONHandler writes the access
// line the fast way, the same line slog writes for a plain JSON handler;
// lines the fast path declines still reach the log, through slog.
func TestMiddlewareAccessLogFastPath(t *testing.T) {
	// The same line but for time and duration, which differ run to run.
	norm := func(line string) map[string]any {
		var m map[string]any
		if strings.Count(line, "\n") != 1 || json.Unmarshal([]byte(line), &m) != nil {
			t.Fatalf("not one JSON line: %q", line)
		}
		delete(m, "time")
		delete(m, "duration_ms")
		return m
	}
	for _, path := range []string{"/who?u=user_1", "/who?u=%22quoted%22", "/nowhere"} {
		var fast, plain bytes.Buffer
		accessLogOf(NewJSONHandler(&fast, nil), path)
		accessLogOf(slog.NewJSONHandler(&plain, nil), path)
		if got, want := norm(fast.String()), norm(plain.String()); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: fast path wrote %q, slog %q", path, fast.String(), plain.String())
		}
	}
	// A level above info turns the access line off on both paths.
	var quiet bytes.Buffer
	accessLogOf(NewJSONHandler(&quiet, &slog.HandlerOptions{Level: slog.LevelWarn}), "/who?u=x")
	if quiet.Len() != 0 {
		t.Errorf("access line at LOG_LEVEL=warn: %q", quiet.String())
	}
}
