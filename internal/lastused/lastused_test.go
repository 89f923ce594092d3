package lastused_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/bgwrite"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/lastused"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testclock"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testredis"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store/redisstore"
)

func TestMain(m *testing.M) { os.Exit(testredis.RunMain(m)) }

// counting counts the writes that reach the real store.
type counting struct {
	lastused.Cache
	sets atomic.Int64
}

func (c *counting) SetCache(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	c.sets.Add(1)
	return c.Cache.SetCache(ctx, key, value, ttl)
}

func newRedis(t testing.TB, prefix string) *redisstore.Store {
	t.Helper()
	s, err := redisstore.New(t.Context(), redisstore.Options{URL: testredis.Shared(t).URL, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestOneWritePerMinute: many uses of a grant within a minute write once,
// on two replicas sharing one Redis at most once each; the time read back
// is the minute of the last recorded use, the same on every replica.
func TestOneWritePerMinute(t *testing.T) {
	rs := newRedis(t, "lastused1:")
	start := time.Date(2026, 12, 5, 16, 20, 10, 0, time.UTC)
	clock := testclock.New(start)
	w := bgwrite.New(8, 5*time.Second, nil, nil)
	store := &counting{Cache: rs}
	a := lastused.New(store, w, time.Hour, clock.Now)
	b := lastused.New(store, w, time.Hour, clock.Now)

	if _, ok := a.LastUsed(t.Context(), "g1"); ok {
		t.Fatal("a grant never used has a last-used time")
	}
	for range 1000 {
		a.Used("g1")
		b.Used("g1")
	}
	w.Wait()
	if got := store.sets.Load(); got != 2 {
		t.Fatalf("writes for 2x1000 uses in one minute on two replicas: %d, want 2", got)
	}
	clock.Advance(45 * time.Second) // 16:20:55: the same minute
	a.Used("g1")
	w.Wait()
	if got := store.sets.Load(); got != 2 {
		t.Fatalf("a use later in the same minute wrote: %d writes", got)
	}
	clock.Advance(10 * time.Second) // 16:21:05
	a.Used("g1")
	a.Used("g2")
	w.Wait()
	if got := store.sets.Load(); got != 4 {
		t.Fatalf("writes after the minute turned and a second grant: %d, want 4", got)
	}
	for _, r := range []*lastused.Recorder{a, b} {
		got, ok := r.LastUsed(t.Context(), "g1")
		if want := time.Date(2026, 12, 5, 16, 21, 0, 0, time.UTC); !ok || !got.Equal(want) {
			t.Errorf("last used: %v %v, want %v", got, ok, want)
		}
	}
}

// TestStoreDown: with Redis unreachable a use neither blocks nor fails; it
// is counted as a store error, and reading answers "unknown".
func TestStoreDown(t *testing.T) {
	srv := testredis.Start(t)
	s, err := redisstore.New(t.Context(), redisstore.Options{URL: srv.URL, Prefix: "lastused2:"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	srv.Stop(t)
	w := bgwrite.New(1, time.Second, nil, nil)
	r := lastused.New(s, w, time.Hour, nil)
	for range 100 {
		r.Used("g") // at most one write in progress; the others are dropped
	}
	w.Wait()
	if _, ok := r.LastUsed(t.Context(), "g"); ok {
		t.Error("a last-used time read from a store that is down")
	}
}

// TestUsedAllocationFree: the hot path's common case (already recorded this
// minute) allocates nothing.
func TestUsedAllocationFree(t *testing.T) {
	clock := testclock.New(time.Date(2026, 12, 5, 16, 20, 0, 0, time.UTC))
	w := bgwrite.New(8, 5*time.Second, nil, nil)
	r := lastused.New(newRedis(t, "lastused3:"), w, time.Hour, clock.Now)
	r.Used("grant-id")
	w.Wait()
	if n := testing.AllocsPerRun(1000, func() { r.Used("grant-id") }); n != 0 {
		t.Errorf("allocations per recorded use: %v, want 0", n)
	}
}

func BenchmarkUsed(b *testing.B) {
	w := bgwrite.New(8, 5*time.Second, nil, nil)
	r := lastused.New(newRedis(b, "lastused4:"), w, time.Hour, nil)
	b.ReportAllocs()
	for b.Loop() {
		r.Used("grant-id")
	}
}

// TestForgetsEarlierMinutes: the in-memory record of writes holds only the
// current minute's grants — the first new record of a minute drops the
// earlier ones — so a replica's memory does not grow with every grant ever
// used, and forgetting never makes a grant written twice in one minute.
func TestForgetsEarlierMinutes(t *testing.T) {
	start := time.Date(2026, 12, 5, 16, 20, 10, 0, time.UTC)
	cases := []struct {
		name        string
		advance     time.Duration // after 100 grants were used at start
		then        []string      // grants used after the advance
		remembered  int
		extraWrites int64 // writes made by the uses after the advance
	}{
		{"same minute: nothing forgotten, nothing rewritten", 30 * time.Second, []string{"g0", "g1"}, 100, 0},
		{"same minute, a new grant", 30 * time.Second, []string{"new"}, 101, 1},
		{"next minute: earlier grants forgotten", time.Minute, []string{"new"}, 1, 1},
		{"next minute: a grant used again is written again", time.Minute, []string{"g0", "g0", "g1"}, 2, 2},
		{"an hour later", time.Hour, []string{"g5"}, 1, 1},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := testclock.New(start)
			w := bgwrite.New(200, 5*time.Second, nil, nil) // room for every write at once
			store := &counting{Cache: newRedis(t, fmt.Sprintf("lastused-forget%d:", i))}
			r := lastused.New(store, w, time.Hour, clock.Now)
			for g := range 100 {
				r.Used(fmt.Sprintf("g%d", g))
			}
			w.Wait()
			before := store.sets.Load()
			clock.Advance(tc.advance)
			for _, g := range tc.then {
				r.Used(g)
			}
			w.Wait()
			if got := r.Remembered(); got != tc.remembered {
				t.Errorf("remembered %d grants, want %d", got, tc.remembered)
			}
			if got := store.sets.Load() - before; got != tc.extraWrites {
				t.Errorf("%d writes after the advance, want %d", got, tc.extraWrites)
			}
		})
	}
}
