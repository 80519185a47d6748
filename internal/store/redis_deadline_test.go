package store

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestOperationDeadlines: the operations of context.Background() share
// a context while it is younger than a sixteenth of the timeout, whose
// deadline is within the timeout of each call and no sooner than 15/16
// of it; an older one is made anew; an operation of another context
// gets a context of its own, which ends with that context and carries
// its values.
func TestOperationDeadlines(t *testing.T) {
	const timeout = time.Hour
	type key struct{}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name   string
		parent context.Context
		// aged: the shared context was made a sixteenth of the timeout
		// before the second call.
		aged bool
		// shared: the second call gets the first call's context.
		shared bool
	}{
		{"background", context.Background(), false, true},
		{"background, the shared context aged", context.Background(), true, false},
		{"with a value", context.WithValue(context.Background(), key{}, "v"), false, false},
		{"cancelled", cancelled, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newOperationDeadlines(timeout)
			call := func() context.Context {
				t.Helper()
				before := time.Now()
				ctx, done := d.context(tc.parent)
				t.Cleanup(done)
				after := time.Now()
				deadline, ok := ctx.Deadline()
				if !ok || deadline.After(after.Add(timeout)) || deadline.Before(before.Add(timeout-timeout/deadlineShares)) {
					t.Fatalf("deadline %v (%t) for a call between %v and %v with a %s timeout", deadline, ok, before, after, timeout)
				}
				if tc.parent.Err() != nil && ctx.Err() == nil {
					t.Fatal("the operation's context outlives its cancelled parent")
				}
				if ctx.Value(key{}) != tc.parent.Value(key{}) {
					t.Fatalf("the operation's context carries %v, its parent %v", ctx.Value(key{}), tc.parent.Value(key{}))
				}
				return ctx
			}
			first := call()
			if tc.aged {
				d.current.Load().made = time.Now().Add(-timeout / deadlineShares)
			}
			if second := call(); (second == first) != tc.shared {
				t.Fatalf("the second call shares the first's context: %t, want %t", second == first, tc.shared)
			}
		})
	}
}

// TestOperationDeadlinesConcurrent: operations that begin at once each
// get a context that ends within the timeout (run with -race).
func TestOperationDeadlinesConcurrent(t *testing.T) {
	const timeout = time.Hour
	d := newOperationDeadlines(timeout)
	d.share = 0 // every call makes a context: the most writes
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				before := time.Now()
				ctx, done := d.context(context.Background())
				if deadline, ok := ctx.Deadline(); !ok || deadline.Before(before.Add(timeout-timeout/deadlineShares)) || deadline.After(time.Now().Add(timeout)) {
					t.Errorf("deadline %v (%t) for a call begun at %v", deadline, ok, before)
				}
				done()
			}
		})
	}
	wg.Wait()
}
