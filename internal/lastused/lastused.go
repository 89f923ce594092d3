// Package lastused keeps each grant's "last used" time, shared by every
// replica, without a store write per MCP request: a replica remembers in
// memory when it last recorded a grant's use and writes the minute of use to
// the shared cache at most once per Interval per grant, in the background
// (internal/bgwrite). The time shown is thus coarse: up to Interval behind
// the true last use, never ahead of it.
package lastused

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/bgwrite"
)

// Interval is how often one replica records one grant's use at most, and
// the granularity of the recorded time.
const Interval = time.Minute

// maxRemembered bounds the in-memory map; past it, entries older than
// Interval (which would be written again anyway) are dropped.
const maxRemembered = 100_000

// Cache is the shared store's cache.
type Cache interface {
	GetCache(ctx context.Context, key string) ([]byte, error)
	SetCache(ctx context.Context, key string, value []byte, ttl time.Duration) error
}

// Recorder records and reads grants' last use.
type Recorder struct {
	cache  Cache
	writer *bgwrite.Writer
	ttl    time.Duration
	now    func() time.Time

	mu   sync.Mutex
	seen map[string]int64 // grant id -> unix minute this replica last wrote
	// swept is the minute seen was last cleared of earlier minutes.
	swept int64
}

// New records into cache, each record living ttl (a grant's longest life);
// now nil means time.Now.
func New(cache Cache, w *bgwrite.Writer, ttl time.Duration, now func() time.Time) *Recorder {
	if now == nil {
		now = time.Now
	}
	return &Recorder{cache: cache, writer: w, ttl: ttl, now: now, seen: map[string]int64{}}
}

func key(grantID string) string { return "lastused:" + grantID }

// Used notes that grantID was just used. On the hot path: a map lookup under
// a mutex, no allocation, unless this replica has not written the grant's
// use in the current minute.
func (r *Recorder) Used(grantID string) {
	minute := r.now().Unix() / 60
	r.mu.Lock()
	if last, ok := r.seen[grantID]; ok && last == minute {
		r.mu.Unlock()
		return
	}
	if minute != r.swept || len(r.seen) >= maxRemembered {
		r.forgetBefore(minute)
	}
	r.seen[grantID] = minute
	r.mu.Unlock()
	value := []byte(strconv.FormatInt(minute*60, 10))
	started := r.writer.Go("record_last_used", func(ctx context.Context) error {
		return r.cache.SetCache(ctx, key(grantID), value, r.ttl)
	})
	if !started {
		// Too many writes in progress: let the next use try again.
		r.mu.Lock()
		delete(r.seen, grantID)
		r.mu.Unlock()
	}
}

// forgetBefore drops the grants not recorded in minute (their next use is
// written again anyway), so the map holds about one minute's grants, not
// every grant ever used: once per minute, on the first new record. The map
// is rebuilt, as a Go map keeps the room of deleted entries.
func (r *Recorder) forgetBefore(minute int64) {
	fresh := make(map[string]int64)
	for id, m := range r.seen {
		if m == minute {
			fresh[id] = m
		}
	}
	r.seen, r.swept = fresh, minute
}

// LastUsed returns when grantID was last recorded as used, to the minute;
// ok is false when it never was (or the record has expired or cannot be
// read: the page shows "not yet" rather than failing).
func (r *Recorder) LastUsed(ctx context.Context, grantID string) (t time.Time, ok bool) {
	raw, err := r.cache.GetCache(ctx, key(grantID))
	if err != nil {
		return time.Time{}, false
	}
	secs, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || secs <= 0 {
		return time.Time{}, false
	}
	return time.Unix(secs, 0).UTC(), true
}
