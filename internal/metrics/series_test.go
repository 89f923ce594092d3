package metrics

import (
	"sync"
	"sync/atomic"
	"testing"
)

// Concurrent first uses of a key resolve it once and all get that series;
// keys resolved earlier are kept when later ones are added.
func TestSeriesResolvesEachKeyOnce(t *testing.T) {
	var calls atomic.Int32
	s := NewSeries(func(k string) *int { calls.Add(1); v := len(k); return &v })
	keys := []string{"a", "bb", "ccc"}
	got := make([][]*int, 16)
	var wg sync.WaitGroup
	for g := range got {
		wg.Go(func() {
			for _, k := range keys {
				got[g] = append(got[g], s.Get(k))
			}
		})
	}
	wg.Wait()
	if n := calls.Load(); n != int32(len(keys)) {
		t.Fatalf("resolve called %d times for %d keys", n, len(keys))
	}
	for g := range got {
		for i, k := range keys {
			if got[g][i] != got[0][i] || *got[g][i] != len(k) {
				t.Fatalf("goroutine %d got another series for %q", g, k)
			}
		}
	}
}

func BenchmarkSeriesGet(b *testing.B) {
	m := New()
	for b.Loop() {
		m.CacheLookup("grant", true)
	}
}
