// Package bgwrite runs best-effort store writes off the request path (the
// security-event log, grants' "last used" times): each in its own goroutine
// with its own timeout, at most a fixed number at once, never blocking or
// failing the request that asked for it. A write refused because too many
// are in progress, or one that fails, is counted, not retried.
package bgwrite

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/metrics"
)

// Writer bounds and accounts for background writes.
type Writer struct {
	sem     chan struct{}
	timeout time.Duration
	metrics *metrics.Metrics
	log     *slog.Logger
	wg      sync.WaitGroup
}

// New allows at most limit writes in progress, each bounded by timeout.
func New(limit int, timeout time.Duration, m *metrics.Metrics, log *slog.Logger) *Writer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = metrics.New()
	}
	return &Writer{sem: make(chan struct{}, max(limit, 1)), timeout: timeout, metrics: m, log: log}
}

// Go starts fn in the background and reports whether it did: false when
// limit writes are already in progress (counted in
// background_writes_dropped_total under op). A failure of fn is logged and
// counted as a store error under op.
func (w *Writer) Go(op string, fn func(ctx context.Context) error) bool {
	select {
	case w.sem <- struct{}{}:
	default:
		w.metrics.BackgroundDropped.WithLabelValues(op).Inc()
		return false
	}
	w.wg.Add(1)
	go func() {
		defer func() { <-w.sem; w.wg.Done() }()
		ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
		defer cancel()
		if err := fn(ctx); err != nil {
			w.metrics.StoreError(ctx, w.log, op, err)
		}
	}()
	return true
}

// Wait returns when every write started so far has finished (tests, and a
// graceful shutdown).
func (w *Writer) Wait() { w.wg.Wait() }
