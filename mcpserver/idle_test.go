package mcpserver

import (
	"testing"
	"time"
)

// TestHeartbeatKeepsListenersFromIdlingOut: an open GET stream is pinged
// (each ping is the session's activity) more often than the sweeper's idle
// TTL, so a quiet listening client keeps its notifications.
func TestHeartbeatKeepsListenersFromIdlingOut(t *testing.T) {
	for _, tc := range []struct {
		idle, want time.Duration
	}{
		{time.Minute, 30 * time.Second},
		{DefaultSessionIdleTTL, time.Minute},
		{24 * time.Hour, time.Minute},
	} {
		got := heartbeatEvery(tc.idle)
		if got != tc.want || got >= tc.idle {
			t.Errorf("heartbeatEvery(%v) = %v, want %v (below the idle TTL)", tc.idle, got, tc.want)
		}
	}
	if s := New(Config{Issuer: "https://as.example", Resource: "https://as.example/mcp"}, Deps{}); s.cfg.SessionIdleTTL != DefaultSessionIdleTTL {
		t.Errorf("SessionIdleTTL unset: %v, want the default %v", s.cfg.SessionIdleTTL, DefaultSessionIdleTTL)
	}
}
