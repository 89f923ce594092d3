package httpx

import "sync"

// InFlight counts the requests each key (a client IP) has in progress on
// this process. Connections end on one replica, so the count is local, unlike
// the per-minute rate limits, which live in the store.
type InFlight struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

// NewInFlight admits at most max requests per key at once; max <= 0 admits all.
func NewInFlight(max int) *InFlight { return &InFlight{max: max, n: map[string]int{}} }

// Acquire takes a slot for key. When it reports true, the caller must call
// the returned release exactly once.
func (l *InFlight) Acquire(key string) (release func(), ok bool) {
	if l.max <= 0 {
		return func() {}, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[key] >= l.max {
		return nil, false
	}
	l.n[key]++
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		// Delete at zero so the map holds only keys with requests in progress.
		if l.n[key]--; l.n[key] <= 0 {
			delete(l.n, key)
		}
	}, true
}
