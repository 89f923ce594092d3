package mcpserver

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLibraryLog(t *testing.T) {
	const sid = "AAAAAAAAAAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
	now := time.Unix(1_700_000_000, 0)
	var buf bytes.Buffer
	lib := slog.New(newLibraryLog(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}), func() time.Time { return now }))

	cases := []struct {
		name      string
		log       func()
		wantLevel string
	}{
		{"client mistake at ERROR becomes WARN", func() {
			lib.Error("Failed to handle sampling response", "err", errors.New("no pending request found for session "+sid+", request 77"))
		}, `"level":"WARN"`},
		{"session attribute", func() { lib.Info("Sweeping expired session", "session", sid) }, `"level":"INFO"`},
		{"session in WithAttrs", func() { lib.With("sessionID", sid).Warn("failed to terminate session") }, `"level":"WARN"`},
		{"panics stay ERROR", func() { lib.Error("panic in heartbeat goroutine", "panic", "boom") }, `"level":"ERROR"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			buf.Reset()
			tc.log()
			line := buf.String()
			if !strings.Contains(line, tc.wantLevel) {
				t.Errorf("want %s: %s", tc.wantLevel, line)
			}
			if strings.Contains(line, sid) || strings.Contains(line, "BBBBBBBBBBBB") {
				t.Errorf("session id in the log: %s", line)
			}
			if !strings.Contains(line, `"component":"mcp-go"`) {
				t.Errorf("no component: %s", line)
			}
		})
	}

	t.Run("rate limited per message, with a count of what was dropped", func(t *testing.T) {
		buf.Reset()
		for range 100 {
			lib.Error("Failed to write SSE event", "err", "broken pipe")
		}
		if n := strings.Count(buf.String(), "\n"); n != libLogBurst {
			t.Fatalf("%d lines, want %d", n, libLogBurst)
		}
		buf.Reset()
		now = now.Add(libLogWindow)
		lib.Error("Failed to write SSE event", "err", "broken pipe")
		if !strings.Contains(buf.String(), `"suppressed":90`) {
			t.Fatalf("want the 90 dropped lines reported: %s", buf.String())
		}
	})

	t.Run("level below the logger's is not written", func(t *testing.T) {
		var quiet bytes.Buffer
		l := slog.New(newLibraryLog(slog.NewJSONHandler(&quiet, &slog.HandlerOptions{Level: slog.LevelError}), time.Now))
		l.Error("Failed to handle sampling response") // now WARN: below ERROR
		if quiet.Len() != 0 {
			t.Fatalf("written: %s", quiet.String())
		}
		l.Error("panic in SSE notification writer") // stays ERROR
		if !strings.Contains(quiet.String(), `"level":"ERROR"`) {
			t.Fatalf("a panic report was dropped: %q", quiet.String())
		}
		if l.Handler().Enabled(context.Background(), slog.LevelWarn) {
			t.Fatal("enabled below the logger's level")
		}
	})
}
