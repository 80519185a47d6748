package testkit

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// Clock is a fake clock that moves only when a test advances it, so that
// a test drives time instead of sleeping. Timers that fall due run inside
// Advance, synchronously and in time order.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*clockTimer
	changed chan struct{} // closed, and replaced, when a timer is added, stopped or fired
}

type clockTimer struct {
	c    *Clock
	at   time.Time
	f    func()
	done bool // fired or stopped
}

// NewClock returns a clock that reads start until it is advanced.
func NewClock(start time.Time) *Clock {
	return &Clock{now: start, changed: make(chan struct{})}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc calls f once the clock has been advanced by d, unless the
// returned timer is stopped first.
func (c *Clock) AfterFunc(d time.Duration, f func()) interface{ Stop() bool } {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &clockTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	c.changedLocked()
	return t
}

// changedLocked wakes up WaitPending; c.mu is held.
func (c *Clock) changedLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Stop cancels the call; it reports false when it already ran or was
// already stopped.
func (t *clockTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.done {
		return false
	}
	t.done = true
	t.c.changedLocked()
	return true
}

// Advance moves the clock by d, running every timer that falls due,
// including timers that due timers schedule within the same span.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var due *clockTimer
		for _, t := range c.timers {
			if !t.done && !t.at.After(end) && (due == nil || t.at.Before(due.at)) {
				due = t
			}
		}
		if due == nil {
			c.now = end
			c.timers = slices.DeleteFunc(c.timers, func(t *clockTimer) bool { return t.done })
			c.mu.Unlock()
			return
		}
		due.done = true
		c.now = due.at
		c.changedLocked()
		c.mu.Unlock()
		due.f()
	}
}

// Pending counts the timers that have neither fired nor been stopped.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.done {
			n++
		}
	}
	return n
}

// WaitPending waits until exactly n timers are pending: another
// goroutine (a long poll, a call's next step) has scheduled or stopped
// them. It fails
// the test if that takes more than a minute, a bound for a timer that is
// never scheduled rather than a measure of time.
func (c *Clock) WaitPending(t testing.TB, n int) {
	t.Helper()
	deadline := time.NewTimer(time.Minute)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		changed := c.changed
		c.mu.Unlock()
		if c.Pending() == n {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("waited in vain for %d pending timers (%d now)", n, c.Pending())
		}
	}
}

// AdvanceWhenWaited advances the clock by d, in a goroutine of its own,
// once some timer is pending: a call that blocks until its own timer
// fires (a reload waiting for a file) returns only then. The returned
// func ends the goroutine if no timer was scheduled; call it when the
// call returned.
func (c *Clock) AdvanceWhenWaited(d time.Duration) (stop func()) {
	return c.WhenWaited(func() { c.Advance(d) })
}

// WhenWaited runs f, in a goroutine of its own, once some timer is
// pending: what ends a call blocked on its own timer, other than the
// timer (a hung file's release), comes only once the call waits. The
// returned func ends the goroutine if no timer was scheduled, or waits
// for f to return if it runs; call it when the call returned.
func (c *Clock) WhenWaited(f func()) (stop func()) {
	done, ended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		for {
			c.mu.Lock()
			changed := c.changed
			c.mu.Unlock()
			if c.Pending() > 0 {
				f()
				return
			}
			select {
			case <-changed:
			case <-done:
				return
			}
		}
	}()
	return func() {
		close(done)
		<-ended
	}
}

// Reset schedules the call again, to run once the clock has been
// advanced by d from now, as a *time.Timer of time.AfterFunc does; it
// reports whether the call was pending.
func (t *clockTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	pending := !t.done
	t.at, t.done = t.c.now.Add(d), false
	if !slices.Contains(t.c.timers, t) {
		t.c.timers = append(t.c.timers, t)
	}
	t.c.changedLocked()
	return pending
}
