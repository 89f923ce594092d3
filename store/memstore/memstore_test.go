package memstore_test

import (
	"sync"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testclock"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store/memstore"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store/storetest"
)

func TestConformance(t *testing.T) {
	var clocks sync.Map // *testing.T -> *testclock.Clock: one clock per parallel subtest
	storetest.Run(t, func(t *testing.T) store.Store {
		c := testclock.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
		clocks.Store(t, c)
		s := memstore.New(memstore.Options{Now: c.Now})
		t.Cleanup(func() { _ = s.Close() })
		return s
	}, func(t *testing.T, d time.Duration) {
		c, _ := clocks.Load(t)
		c.(*testclock.Clock).Advance(d)
	})
}
