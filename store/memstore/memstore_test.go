package memstore_test

import (
	"sync"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store/memstore"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store/storetest"
)

func TestConformance(t *testing.T) {
	var clocks sync.Map // *testing.T -> *fakeClock: one clock per parallel subtest
	storetest.Run(t, func(t *testing.T) store.Store {
		c := &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
		clocks.Store(t, c)
		s := memstore.New(memstore.Options{Now: c.Now})
		t.Cleanup(func() { _ = s.Close() })
		return s
	}, func(t *testing.T, d time.Duration) {
		c, _ := clocks.Load(t)
		c.(*fakeClock).Advance(d)
	})
}

// fakeClock is read by the store under its own lock and advanced by the test
// goroutine, so it needs its own.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
