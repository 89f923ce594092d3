package asynclog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a destination that can be held still (gate) to make the
// writer fall behind deterministically.
type lockedBuffer struct {
	mu   sync.Mutex
	gate sync.Mutex
	buf  bytes.Buffer
	// entered, when set, hears of each Write before it waits at gate.
	entered chan struct{}
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	if b.entered != nil {
		b.entered <- struct{}{}
	}
	b.gate.Lock()
	defer b.gate.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Split(strings.TrimSuffix(b.buf.String(), "\n"), "\n")
}

func TestOrderAndFlushOnClose(t *testing.T) {
	out := &lockedBuffer{}
	w := New(out, Options{})
	const n = 10_000
	for i := range n {
		fmt.Fprintf(w, "line %d\n", i)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	lines := out.lines()
	if len(lines) != n {
		t.Fatalf("%d lines written, want %d", len(lines), n)
	}
	for i, l := range lines {
		if l != fmt.Sprintf("line %d", i) {
			t.Fatalf("line %d is %q: order lost", i, l)
		}
	}
	if w.Dropped() != 0 {
		t.Fatalf("dropped %d lines with room to spare", w.Dropped())
	}
	// Writes after Close go straight through, after everything queued.
	fmt.Fprintf(w, "late\n")
	if got := out.lines(); got[len(got)-1] != "late" {
		t.Fatalf("the line written after Close is missing: %q", got[len(got)-1])
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// countingWriter counts the writes that reach the destination.
type countingWriter struct {
	lockedBuffer
	writes int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	return c.lockedBuffer.Write(p)
}

// Lines logged within FlushEvery reach the destination in one write (not one
// system call per request), and Close does not wait for the interval.
func TestLinesGatherIntoOneWrite(t *testing.T) {
	out := &countingWriter{}
	w := New(out, Options{FlushEvery: time.Hour})
	for i := range 1000 {
		fmt.Fprintf(w, "line %d\n", i)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := len(out.lines()); got != 1000 || out.writes != 1 {
		t.Fatalf("%d lines in %d writes, want 1000 in 1", got, out.writes)
	}
}

func TestConcurrentWritersKeepLinesWhole(t *testing.T) {
	out := &lockedBuffer{}
	w := New(out, Options{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				fmt.Fprintf(w, "writer %d line %d %s\n", g, i, strings.Repeat("x", 100))
			}
		})
	}
	wg.Wait()
	_ = w.Close()
	lines := out.lines()
	if len(lines) != 8*500 {
		t.Fatalf("%d lines, want %d", len(lines), 8*500)
	}
	next := map[string]int{}
	for _, l := range lines {
		var g, i int
		if _, err := fmt.Sscanf(l, "writer %d line %d", &g, &i); err != nil || !strings.HasSuffix(l, strings.Repeat("x", 100)) {
			t.Fatalf("torn line %q", l)
		}
		key := fmt.Sprint(g)
		if i != next[key] {
			t.Fatalf("writer %d: line %d after %d", g, i, next[key]-1)
		}
		next[key]++
	}
}

// A stalled destination: lines beyond MaxPending are dropped and counted,
// the writer never blocks, and a warning with the count follows once the
// destination moves again.
func TestDropsAreCountedAndReported(t *testing.T) {
	out := &lockedBuffer{entered: make(chan struct{}, 1)}
	out.gate.Lock() // the destination hangs
	w := New(out, Options{MaxPending: 1000})
	line := strings.Repeat("a", 99) + "\n" // 100 bytes
	// The first line is taken by the writer goroutine, which then hangs in
	// the destination's Write; after it exactly MaxPending bytes fit.
	_, _ = w.Write([]byte(line))
	<-out.entered
	for range 99 {
		if _, err := w.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	dropped := w.Dropped()
	if dropped != 89 {
		t.Fatalf("dropped %d lines, want 89 (100 - 1 in flight - 10 pending)", dropped)
	}
	out.entered = nil
	out.gate.Unlock()
	_ = w.Close()
	lines := out.lines()
	kept := 0
	var warning map[string]any
	for _, l := range lines {
		if l == strings.TrimSuffix(line, "\n") {
			kept++
			continue
		}
		if err := json.Unmarshal([]byte(l), &warning); err != nil {
			t.Fatalf("unexpected line %q", l)
		}
	}
	if kept+int(dropped) != 100 {
		t.Fatalf("kept %d + dropped %d lines, want 100", kept, dropped)
	}
	if warning == nil || warning["level"] != "WARN" || warning["dropped_total"] != float64(dropped) || warning["dropped"] != float64(dropped) {
		t.Fatalf("no warning with the count %d: %v", dropped, warning)
	}
}

// Warnings come at most every WarnEvery while drops go on: the clock is
// injected, so no timing.
func TestWarningsAreRateLimited(t *testing.T) {
	out := &lockedBuffer{}
	now := time.Unix(1_000_000, 0)
	var mu sync.Mutex
	w := &Writer{out: out, opts: Options{MaxPending: 10, WarnEvery: time.Minute, Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }}}
	w.dropped.Add(3)
	w.warnDropped(false) // first warning: due
	w.dropped.Add(2)
	w.warnDropped(false) // within the minute: not yet
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	w.warnDropped(false)
	lines := out.lines()
	if len(lines) != 2 {
		t.Fatalf("%d warnings, want 2: %q", len(lines), lines)
	}
	var second map[string]any
	_ = json.Unmarshal([]byte(lines[1]), &second)
	if second["dropped"] != float64(2) || second["dropped_total"] != float64(5) {
		t.Fatalf("second warning %v, want 2 more, 5 in all", second)
	}
}
