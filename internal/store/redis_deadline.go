package store

import (
	"context"
	"sync/atomic"
	"time"
)

// deadlineShares is how many contexts of operations a Redis store makes
// per timeout at most (see operationDeadlines).
const deadlineShares = 16

// operationDeadlines hands out the contexts that bound a Redis store's
// operations by its timeout. The operations called with
// context.Background() (every operation of the edge) that begin within a
// sixteenth of the timeout of each other share one context, whose
// deadline is the timeout after the first of them began: each operation
// still ends within the timeout of its call, and gets at least 15/16 of
// it. A context of its own would cost every operation four allocations,
// a fifth for its Done channel (which go-redis's pool reads), and a
// timer started and stopped: a sixth of the allocations of a
// reservation, paid twice per request. A shared context is never
// cancelled before its deadline, which cancels it (its timer, as any
// context's with a deadline). An operation of any other context gets a
// context of its own, which carries that context's cancellation and
// values.
type operationDeadlines struct {
	timeout time.Duration
	// share is how long a shared context is handed out after it was made.
	share   time.Duration
	current atomic.Pointer[sharedDeadline]
}

// sharedDeadline is a context shared by the operations begun within
// operationDeadlines.share of made.
type sharedDeadline struct {
	ctx  context.Context
	made time.Time // with the monotonic clock's reading
	// cancel is the context's, never called: its deadline cancels it,
	// and the operations that share it may still be running at any time
	// before.
	cancel context.CancelFunc
}

func newOperationDeadlines(timeout time.Duration) *operationDeadlines {
	return &operationDeadlines{timeout: timeout, share: timeout / deadlineShares}
}

// context returns the context of an operation called with parent, and
// the function to call when the operation is done.
func (d *operationDeadlines) context(parent context.Context) (context.Context, context.CancelFunc) {
	if parent != context.Background() {
		return context.WithTimeout(parent, d.timeout)
	}
	if s := d.current.Load(); s != nil && time.Since(s.made) < d.share {
		return s.ctx, doneWithShared
	}
	// Two operations that find the shared context too old at once both
	// make one: each uses its own, and the later stays shared.
	made := time.Now()
	ctx, cancel := context.WithDeadline(context.Background(), made.Add(d.timeout))
	d.current.Store(&sharedDeadline{ctx: ctx, made: made, cancel: cancel})
	return ctx, doneWithShared
}

// doneWithShared is what an operation calls when it is done with a
// shared context: nothing, for the context is others' too.
func doneWithShared() {}
