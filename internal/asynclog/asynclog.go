// Package asynclog owns the asynchronous, batched writer behind the
// process's log. A JSON line per request written synchronously cost the hot
// path a write system call (and the log handler's lock held across it) on
// every request; here a request only appends its line to a buffer in memory
// and one goroutine writes whatever has gathered in one call, at most once
// every FlushEvery (10 ms).
//
// It never blocks a request and never loses a line silently: when the
// destination falls so far behind that MaxPending bytes wait, further lines
// are dropped, counted (Dropped, exported as a metric), and a warning line
// saying how many is written as soon as the destination keeps up again, and
// at the latest every WarnEvery. Close flushes everything before the
// process exits.
package asynclog

import (
	"encoding/json"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Options tune a Writer; zero values take the defaults.
type Options struct {
	// MaxPending bounds the bytes waiting to be written (default 8 MiB):
	// past it lines are dropped and counted, so a stalled destination
	// (a full pipe, a hung terminal) cannot grow memory without bound.
	MaxPending int
	// WarnEvery is how often a warning about dropped lines is written at
	// most while lines keep being dropped (default 10 s).
	WarnEvery time.Duration
	// FlushEvery is how long lines gather before one write (default 10 ms):
	// under load the writer made a system call every second or third
	// request, now one per interval. Close writes at once.
	FlushEvery time.Duration
	Now        func() time.Time
}

// Writer is an io.Writer safe for concurrent use. Each Write is kept whole
// (slog's handlers write one record per call), in the order Writes return.
type Writer struct {
	out  io.Writer
	opts Options

	mu      sync.Mutex
	pending []byte
	spare   []byte
	closed  bool
	wake    chan struct{} // a buffered "there is work" signal
	closing chan struct{} // closed by Close: stop gathering, write now
	done    chan struct{}
	late    sync.Mutex // serialises the direct writes after Close

	dropped  atomic.Uint64 // lines dropped since start
	reported uint64        // dropped lines already warned about (writer goroutine only)
	warnedAt time.Time
}

// New starts a Writer in front of out; Close stops it.
func New(out io.Writer, o Options) *Writer {
	if o.MaxPending <= 0 {
		o.MaxPending = 8 << 20
	}
	if o.WarnEvery <= 0 {
		o.WarnEvery = 10 * time.Second
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = 10 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	w := &Writer{out: out, opts: o, wake: make(chan struct{}, 1), closing: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

// Write queues p (one log line) and returns at once. After Close it writes
// p through directly, so lines logged during shutdown are not lost.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		// After the queue is written, in order; one at a time.
		<-w.done
		w.late.Lock()
		defer w.late.Unlock()
		return w.out.Write(p)
	}
	if len(w.pending)+len(p) > w.opts.MaxPending {
		w.mu.Unlock()
		w.dropped.Add(1)
		return len(p), nil
	}
	w.pending = append(w.pending, p...)
	// Signalled under the lock, so Close cannot close wake in between.
	select {
	case w.wake <- struct{}{}:
	default: // already signalled: the writer will take this line too
	}
	w.mu.Unlock()
	return len(p), nil
}

// Dropped is the number of lines dropped since start.
func (w *Writer) Dropped() uint64 { return w.dropped.Load() }

// Close writes everything queued, and the dropped-lines warning if one is
// due, then makes later Writes synchronous. Safe to call more than once.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	close(w.closing)
	close(w.wake)
	w.mu.Unlock()
	<-w.done
	return nil
}

func (w *Writer) run() {
	defer close(w.done)
	tick := time.NewTicker(w.opts.WarnEvery)
	defer tick.Stop()
	for {
		select {
		case _, open := <-w.wake:
			if open {
				w.gather()
			}
			w.flush(false)
			if !open {
				w.flush(true)
				return
			}
		case <-tick.C:
			w.flush(true)
		}
	}
}

// gather lets lines pile up for FlushEvery, or until Close.
func (w *Writer) gather() {
	t := time.NewTimer(w.opts.FlushEvery)
	defer t.Stop()
	select {
	case <-t.C:
	case <-w.closing:
	}
}

// flush writes the pending lines in one call, then the dropped-lines
// warning when lines were dropped and one is due (or force is set).
func (w *Writer) flush(force bool) {
	w.mu.Lock()
	batch := w.pending
	w.pending = w.spare[:0]
	w.mu.Unlock()
	if len(batch) > 0 {
		_, _ = w.out.Write(batch)
	}
	// Keep the buffer for the next batch unless a burst made it huge.
	if cap(batch) <= 1<<20 {
		w.spare = batch[:0]
	} else {
		w.spare = nil
	}
	w.warnDropped(force)
}

func (w *Writer) warnDropped(force bool) {
	total := w.dropped.Load()
	if total == w.reported {
		return
	}
	now := w.opts.Now()
	if !force && now.Sub(w.warnedAt) < w.opts.WarnEvery {
		return
	}
	line, _ := json.Marshal(map[string]any{
		"time": now.UTC().Format(time.RFC3339Nano), "level": "WARN",
		"msg":     "log lines dropped: the log destination did not keep up",
		"dropped": total - w.reported, "dropped_total": total,
	})
	_, _ = w.out.Write(append(line, '\n'))
	w.reported, w.warnedAt = total, now
}
