package metrics

import (
	"sync"
	"sync/atomic"
)

// Series hands out the series of a labelled metric by key, each resolved
// once. WithLabelValues hashes the label values and takes the vector's lock
// on every call, several times per request on the hot path; here a lookup
// is one map read with no lock and no allocation. The map is copied on
// write, so keys must come from a bounded set (route patterns, method
// labels, status codes, fixed names), as labels must anyway.
type Series[K comparable, S any] struct {
	resolve func(K) S
	mu      sync.Mutex // serialises writers
	known   atomic.Pointer[map[K]S]
}

// NewSeries makes a Series whose missing keys resolve makes.
func NewSeries[K comparable, S any](resolve func(K) S) *Series[K, S] {
	s := &Series[K, S]{resolve: resolve}
	s.known.Store(&map[K]S{})
	return s
}

// Get returns k's series, resolving it on first use.
func (s *Series[K, S]) Get(k K) S {
	if v, ok := (*s.known.Load())[k]; ok {
		return v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.known.Load()
	if v, ok := old[k]; ok {
		return v
	}
	v := s.resolve(k)
	next := make(map[K]S, len(old)+1)
	for key, val := range old {
		next[key] = val
	}
	next[k] = v
	s.known.Store(&next)
	return v
}
