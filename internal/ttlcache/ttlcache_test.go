package ttlcache

import (
	"strconv"
	"testing"
	"time"
)

// clock is a settable now.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestSweepOnSet(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		// ttls of the entries set at t0 (keys "0", "1", ...)
		ttls []time.Duration
		// the next Set happens this long after t0 (a live entry "new")
		after time.Duration
		// keys expected still held (swept or not) after that Set
		want []string
	}{
		{"before the sweep is due nothing expired is dropped",
			[]time.Duration{time.Second, time.Second, time.Hour}, SweepEvery / 2, []string{"0", "1", "2", "new"}},
		{"a Set when the sweep is due drops every expired entry",
			[]time.Duration{time.Second, time.Second, time.Hour}, SweepEvery, []string{"2", "new"}},
		{"an entry expiring exactly at the sweep is dropped",
			[]time.Duration{SweepEvery, SweepEvery + time.Second}, SweepEvery, []string{"1", "new"}},
		{"all expired: only the new entry is left",
			[]time.Duration{time.Second, 2 * time.Second, 3 * time.Second}, time.Minute, []string{"new"}},
		{"nothing expired: nothing dropped",
			[]time.Duration{time.Hour, time.Hour}, time.Minute, []string{"0", "1", "new"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := &clock{t: t0}
			c := New[string, int](100, clk.now)
			c.Set("first", 0, t0.Add(24*time.Hour)) // the first Set sweeps (nothing) and schedules the next
			c.Delete("first")
			for i, ttl := range tc.ttls {
				c.Set(strconv.Itoa(i), i, t0.Add(ttl))
			}
			clk.t = t0.Add(tc.after)
			c.Set("new", -1, clk.t.Add(time.Hour))
			held := map[string]bool{}
			for k := range c.entries {
				held[k] = true
			}
			if len(held) != len(tc.want) {
				t.Fatalf("holds %v, want %v", held, tc.want)
			}
			for _, k := range tc.want {
				if !held[k] {
					t.Fatalf("holds %v, want %v", held, tc.want)
				}
			}
		})
	}
}

func TestSweepKeepsLiveValues(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := &clock{t: t0}
	c := New[string, int](1000, clk.now)
	for i := range 100 {
		ttl := time.Second
		if i%10 == 0 {
			ttl = time.Hour
		}
		c.Set(strconv.Itoa(i), i, t0.Add(ttl))
	}
	clk.t = t0.Add(SweepEvery)
	c.Set("new", -1, clk.t.Add(time.Hour))
	if got := c.Len(); got != 11 {
		t.Fatalf("Len = %d after the sweep, want the 10 live entries and the new one", got)
	}
	// Down to a tenth of its peak, the map was rebuilt; its values are intact.
	for i := 0; i < 100; i += 10 {
		if v, ok := c.Get(strconv.Itoa(i)); !ok || v != i {
			t.Fatalf("Get(%d) = %d, %v after the sweep", i, v, ok)
		}
	}
	if c.peak != 11 {
		t.Fatalf("peak = %d after the rebuild, want 11", c.peak)
	}
}

func TestGetSetDeleteAndBound(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name  string
		setAt time.Duration // Set's exp relative to now
		getAt time.Duration // clock advance before Get
		want  bool
	}{
		{"live", time.Minute, 0, true},
		{"just before expiry", time.Minute, time.Minute - time.Nanosecond, true},
		{"at expiry", time.Minute, time.Minute, false},
		{"exp in the past stores nothing", -time.Second, 0, false},
		{"exp now stores nothing", 0, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := &clock{t: t0}
			c := New[string, string](10, clk.now)
			c.Set("k", "v", t0.Add(tc.setAt))
			clk.t = t0.Add(tc.getAt)
			if _, ok := c.Get("k"); ok != tc.want {
				t.Fatalf("Get ok = %v, want %v", ok, tc.want)
			}
		})
	}
	t.Run("delete", func(t *testing.T) {
		c := New[string, string](10, (&clock{t: t0}).now)
		c.Set("k", "v", t0.Add(time.Hour))
		c.Delete("k")
		if _, ok := c.Get("k"); ok {
			t.Fatal("deleted entry still served")
		}
	})
	t.Run("full cache stays within its bound", func(t *testing.T) {
		c := New[int, int](10, (&clock{t: t0}).now)
		for i := range 1000 {
			c.Set(i, i, t0.Add(time.Hour))
			if c.Len() > 10 {
				t.Fatalf("Len = %d > max 10", c.Len())
			}
		}
		if v, ok := c.Get(999); !ok || v != 999 {
			t.Fatal("the latest entry was evicted")
		}
	})
}
