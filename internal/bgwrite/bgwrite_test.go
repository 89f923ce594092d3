package bgwrite_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/bgwrite"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/metrics"
)

// counterValue reads one labelled series of a counter family.
func counterValue(t *testing.T, m *metrics.Metrics, family, op string) float64 {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if !strings.HasSuffix(f.GetName(), family) {
			continue
		}
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "op" && l.GetValue() == op {
					return mt.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestBoundedAndCounted: with the limit reached, Go refuses at once and
// counts the drop; a failed write is counted as a store error; Wait
// returns once the writes are done; each write has its own deadline.
func TestBoundedAndCounted(t *testing.T) {
	m := metrics.New()
	w := bgwrite.New(2, time.Minute, m, nil)
	release := make(chan struct{})
	var deadlines [2]bool
	for i := range 2 {
		if !w.Go("op", func(ctx context.Context) error {
			_, deadlines[i] = ctx.Deadline()
			<-release
			return nil
		}) {
			t.Fatalf("write %d refused below the limit", i)
		}
	}
	if w.Go("op", func(context.Context) error { return nil }) {
		t.Fatal("a third write started with 2 in progress and a limit of 2")
	}
	if got := counterValue(t, m, "background_writes_dropped_total", "op"); got != 1 {
		t.Errorf("dropped: %v, want 1", got)
	}
	close(release)
	w.Wait()
	if !deadlines[0] || !deadlines[1] {
		t.Error("a write ran without a deadline")
	}
	if !w.Go("op", func(context.Context) error { return errors.New("redis down") }) {
		t.Fatal("a write refused after the others finished")
	}
	w.Wait()
	if got := counterValue(t, m, "store_errors_total", "op"); got != 1 {
		t.Errorf("store errors: %v, want 1", got)
	}
}
