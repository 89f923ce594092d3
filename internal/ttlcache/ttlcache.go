// Package ttlcache is a small, bounded, in-process cache whose entries expire
// at a per-entry deadline. The verifier keeps verified tokens, grants and
// Clerk answers in it so the hot path rarely leaves the process.
//
// Expired entries are dropped when read, when the cache is full, and by an
// amortised sweep: a Set made at least SweepEvery after the previous sweep
// first drops every expired entry. No goroutine, so nothing to stop; a
// cache that is never written to again keeps what it holds until read,
// which costs at most one cache's worth of memory, not one per token.
package ttlcache

import (
	"sync"
	"time"
)

// SweepEvery is how often, at most, a Set sweeps out expired entries. A
// sweep walks the whole map under the lock, so it is rare next to the hot
// path's Gets, and often enough that entries issued at any rate are freed
// within this long after they expire.
const SweepEvery = 10 * time.Second

// Cache maps K to V until each entry's expiry. It is safe for concurrent use.
type Cache[K comparable, V any] struct {
	mu        sync.Mutex
	entries   map[K]entry[V]
	max       int
	now       func() time.Time
	nextSweep time.Time
	// peak is the most entries held since the map was last rebuilt.
	peak int
}

type entry[V any] struct {
	v   V
	exp time.Time
}

// New makes a cache holding at most max entries; now may be nil (time.Now).
func New[K comparable, V any](max int, now func() time.Time) *Cache[K, V] {
	if now == nil {
		now = time.Now
	}
	return &Cache[K, V]{entries: make(map[K]entry[V]), max: max, now: now}
}

// Get returns the live value for k.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok {
		var zero V
		return zero, false
	}
	if !c.now().Before(e.exp) {
		delete(c.entries, k)
		var zero V
		return zero, false
	}
	return e.v, true
}

// Set stores v for k until exp; an exp in the past stores nothing.
func (c *Cache[K, V]) Set(k K, v V, exp time.Time) {
	now := c.now()
	if !now.Before(exp) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !now.Before(c.nextSweep) {
		c.sweep(now)
	}
	if _, exists := c.entries[k]; !exists && len(c.entries) >= c.max {
		c.evict(now)
	}
	c.entries[k] = entry[V]{v: v, exp: exp}
	c.peak = max(c.peak, len(c.entries))
}

// Delete drops k.
func (c *Cache[K, V]) Delete(k K) {
	c.mu.Lock()
	delete(c.entries, k)
	c.mu.Unlock()
}

// Len counts entries, live or not yet swept.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// sweep drops every expired entry and schedules the next sweep. A Go map
// does not give back the room of deleted entries, so one down to a quarter
// of its peak is copied into a map of its size: a burst of tokens leaves no
// lasting footprint once they expire.
func (c *Cache[K, V]) sweep(now time.Time) {
	c.nextSweep = now.Add(SweepEvery)
	for k, e := range c.entries {
		if !now.Before(e.exp) {
			delete(c.entries, k)
		}
	}
	if n := len(c.entries); n*4 < c.peak {
		fresh := make(map[K]entry[V], n)
		for k, e := range c.entries {
			fresh[k] = e
		}
		c.entries, c.peak = fresh, n
	}
}

// evict makes room: expired entries first, then an arbitrary tenth (map order
// is random, which is as good as any policy for a cache this hot path refills
// in one call).
func (c *Cache[K, V]) evict(now time.Time) {
	c.sweep(now)
	if len(c.entries) < c.max {
		return
	}
	drop := c.max/10 + 1
	for k := range c.entries {
		if drop == 0 {
			break
		}
		delete(c.entries, k)
		drop--
	}
}
