// Package testclock is the one settable clock tests hand to the code under
// test (Deps.Now, Options.Now) so that expiry is driven by the test, never
// by sleeping.
package testclock

import (
	"sync"
	"time"
)

// Clock is read by the code under test on its own goroutines while the test
// moves it, so it carries its own lock.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a clock that reads start until it is moved.
func New(start time.Time) *Clock { return &Clock{now: start} }

// Now is the clock's time; pass the method value as a func() time.Time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
