package memstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
)

// TestSweep: expired records are dropped by later writes even if nobody reads
// them again, so a long-running dev server does not grow without bound.
func TestSweep(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	s := New(Options{Now: func() time.Time { return now }})
	ctx := context.Background()
	for _, err := range []error{
		s.PutTicket(ctx, store.KindCode, "t", []byte("v"), time.Second),
		s.SetCache(ctx, "c", []byte("v"), time.Second),
		s.CreateClient(ctx, store.Client{ID: "c"}, time.Second),
		s.CreateGrant(ctx, store.Grant{ID: "g"}, time.Second),
		s.CreateClient(ctx, store.Client{ID: "keep"}, 0),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.ConsumeTicket(ctx, store.KindCode, "t", time.Second); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Hit(ctx, "h", time.Second); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.TryLock(ctx, "l", time.Second); err != nil {
		t.Fatal(err)
	}

	now = now.Add(sweepInterval)
	if err := s.SetCache(ctx, "trigger", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.tickets) + len(s.spent) + len(s.grants) + len(s.locks) + len(s.counters); n != 0 {
		t.Errorf("%d expired records left after a sweep", n)
	}
	if len(s.cache) != 1 || len(s.clients) != 1 {
		t.Errorf("sweep dropped live records: %d cache entries, %d clients", len(s.cache), len(s.clients))
	}
}

func TestClosed(t *testing.T) {
	s := New(Options{})
	ctx := context.Background()
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping succeeded after Close")
	}
	if _, err := s.GetClient(ctx, "c"); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetClient after Close: %v, want a closed error", err)
	}
	if err := s.SetCache(ctx, "k", []byte("v"), time.Second); err == nil {
		t.Error("SetCache succeeded after Close")
	}
}
