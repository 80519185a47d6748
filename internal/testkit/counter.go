package testkit

import (
	"sync"
	"testing"
	"time"
)

// Counter counts events (requests a server received, health checks) and
// lets a test wait until a number of them happened.
type Counter struct {
	mu      sync.Mutex
	n       int64
	changed chan struct{} // closed, and replaced, by every Add
}

// Add counts one event.
func (c *Counter) Add() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	if c.changed != nil {
		close(c.changed)
		c.changed = nil
	}
}

// Load is the number of events so far.
func (c *Counter) Load() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// WaitFor waits until at least n events happened. It fails the test if
// that takes more than a minute: a bound for an event that never comes,
// not a measure of time.
func (c *Counter) WaitFor(t testing.TB, n int64, what string) {
	t.Helper()
	deadline := time.NewTimer(time.Minute)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		if c.n >= n {
			c.mu.Unlock()
			return
		}
		if c.changed == nil {
			c.changed = make(chan struct{})
		}
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("waited in vain for %d %s (%d so far)", n, what, c.Load())
		}
	}
}
