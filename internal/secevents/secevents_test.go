package secevents_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/bgwrite"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/metrics"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/secevents"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testredis"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store/redisstore"
)

func TestMain(m *testing.M) { os.Exit(testredis.RunMain(m)) }

// TestRecordAndRecent: events written by two replicas' logs into one Redis
// come back newest first, capped, with their attributes as strings and long
// values truncated.
func TestRecordAndRecent(t *testing.T) {
	s, err := redisstore.New(t.Context(), redisstore.Options{URL: testredis.Shared(t).URL, Prefix: "secevents1:"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	w := bgwrite.New(4, 5*time.Second, nil, nil)
	a, b := secevents.New(s, w, 3, time.Hour), secevents.New(s, w, 3, time.Hour)
	at := time.Date(2026, 12, 5, 16, 0, 0, 0, time.UTC)
	for i, l := range []*secevents.Log{a, b, a, b} {
		l.Record(secevents.FromAttrs(at.Add(time.Duration(i)*time.Second), "consent_denied", "req", "client_id", "c", "n", i, "empty", "", 7, "not a key"))
		w.Wait() // in order, so "newest" is defined
	}
	long := strings.Repeat("x", 500)
	a.Record(secevents.FromAttrs(at.Add(time.Minute), "client_registered", "", "client_name", long))
	w.Wait()
	evs, err := b.Recent(t.Context(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 || evs[0].Event != "client_registered" || evs[1].Attrs["n"] != "3" || evs[2].Attrs["n"] != "2" {
		t.Fatalf("recent events: %+v", evs)
	}
	if _, ok := evs[1].Attrs["empty"]; ok || evs[1].RequestID != "req" || evs[1].Attrs["client_id"] != "c" || len(evs[1].Attrs) != 2 {
		t.Errorf("attributes: %+v", evs[1])
	}
	if got := evs[0].Attrs["client_name"]; len(got) > 210 || !strings.HasPrefix(got, "xxx") {
		t.Errorf("a long value was not truncated: %d bytes", len(got))
	}
}

// TestStoreDown: with Redis gone, recording never blocks the caller beyond
// starting a goroutine; failures are counted as store errors and writes
// beyond the in-flight bound as dropped.
func TestStoreDown(t *testing.T) {
	srv := testredis.Start(t)
	s, err := redisstore.New(t.Context(), redisstore.Options{URL: srv.URL, Prefix: "secevents2:"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	srv.Stop(t)
	m := metrics.New()
	w := bgwrite.New(2, time.Second, m, nil)
	l := secevents.New(s, w, 10, time.Hour)
	for range 50 {
		l.Record(secevents.FromAttrs(time.Now(), "rate_limited", ""))
	}
	w.Wait()
	if got := dropped(t, m); got < 1 {
		t.Errorf("dropped writes counted: %v, want some of 50 with 2 in flight", got)
	}
	if _, err := l.Recent(t.Context(), 10); err == nil {
		t.Error("Recent from a store that is down: no error")
	}
}

// dropped is background_writes_dropped_total{op="append_event"}.
func dropped(t *testing.T, m *metrics.Metrics) float64 {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "clerk_mcp_proxy_background_writes_dropped_total" {
			continue
		}
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "op" && l.GetValue() == "append_event" {
					return mt.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
