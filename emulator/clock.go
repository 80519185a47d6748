package emulator

import "time"

// Clock is the emulator's source of time. Everything that happens later
// (a call's next step, a long poll's timeout, the expiry of old state)
// goes through it, so that tests can drive time instead of sleeping.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has passed, unless
	// the returned Timer is stopped first.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending call scheduled with Clock.AfterFunc. Stop cancels
// the call; it reports false when the call already ran or was already
// stopped. It is an alias, so that any clock whose AfterFunc returns a
// value with such a Stop method (a *time.Timer, a test's fake clock) is a
// Clock.
type Timer = interface{ Stop() bool }

// wallClock is the real clock.
type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func (wallClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
