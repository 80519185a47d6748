package testkit

import (
	"testing"
	"time"
)

// Eventually waits until cond holds, looking again and again: for facts
// that nothing announces (a goroutine count, a state behind an admin
// API). Where something can announce the fact (a Counter, Logs.Wait,
// Clock.WaitPending), wait on that instead. It fails the test if cond
// does not hold within a minute, a bound for a fact that never comes
// rather than a measure of time.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for pause := time.Millisecond; !cond(); pause = min(2*pause, 50*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited in vain for %s", what)
		}
		time.Sleep(pause)
	}
}
