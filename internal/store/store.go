// Package store holds the edge's shared state: keys reserved so that a
// request happens once, and velocity limits. Memory keeps that state per
// edge, Redis shares it across a fleet of edges; both implement Store with
// the same semantics. The store knows nothing of what its keys and values
// mean, and never logs them.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Store is the edge's shared state. Its methods are safe for concurrent
// use. Keys and values are opaque strings; a reservation's value should be
// unique to the request that made it (a random token, say), so that Replace
// and Release act only for the request that holds the key.
//
// A reservation counts for an owner, opaque to the store ("" for none): a
// store with a bound per owner (MemoryOptions.MaxPerOwner,
// RedisOptions.MaxPerOwner) refuses an owner's reservation over it with
// ErrOwnerFull. Replace and Release are given the owner the key was
// reserved for, whose count of it they renew or give back.
type Store interface {
	// Reserve sets key to value for ttl if key holds nothing, atomically,
	// counted for owner. It reports whether it did; when it did not,
	// current is the value key holds, which may be value itself when the
	// store ran the reservation twice (see Redis): the caller's
	// reservation all the same.
	Reserve(ctx context.Context, owner, key, value string, ttl time.Duration) (reserved bool, current string, err error)

	// Replace sets key, reserved for owner, to value for ttl, counted
	// from now, if key still holds expect, atomically, and reports
	// whether it did. A key that expired, was released, or was reserved
	// again by someone else is left as it is.
	Replace(ctx context.Context, owner, key, expect, value string, ttl time.Duration) (replaced bool, err error)

	// Release deletes key, reserved for owner, if it still holds expect,
	// atomically, and reports whether it did.
	Release(ctx context.Context, owner, key, expect string) (released bool, err error)

	// Allow takes one event from key's budget under limit and reports
	// whether the event is allowed. Limits live apart from reservations:
	// the same key names different state in Allow and in Reserve.
	Allow(ctx context.Context, key string, limit Limit) (Decision, error)

	// AllowN is Allow for n events at once, all or none: either the
	// budget holds n and all are taken, or none is. n must be between 1
	// and limit.Count; more could never be allowed.
	AllowN(ctx context.Context, key string, limit Limit, n int) (Decision, error)

	// AllowAll is AllowN for several budgets at once, atomically and all
	// or none: the events of every take are taken if each take's budget
	// holds its N events, else none is taken from any budget. It returns
	// a Decision for each take, in order: all Allowed, with each budget's
	// Remaining, or none Allowed, with RetryAfter on each take whose
	// budget had no room for it (how long until it would have) and zero
	// on those that had room. Each take's N must be between 1 and its
	// Count, and no two takes may have the same key. Takes is not kept.
	AllowAll(ctx context.Context, takes []Take) ([]Decision, error)

	// RefundAll gives back the events of takes, which AllowAll or AllowN
	// took held ago (at least) for something that then did not happen,
	// atomically and all or none: each take's budget gets back what its
	// N events still hold of it, N emission intervals (Period/Count) less
	// held, never more than makes it whole (Count). The events a budget
	// refilled meanwhile are no longer the take's: a late refund that
	// gave back all N would give back what later requests took. A budget
	// the store no longer holds is whole already. It needs no room, and
	// fails only as the store fails. The caller gives back a take at most
	// once, and only one that was allowed: a budget cannot tell whose
	// events it gives back. Takes are as AllowAll's; takes is not kept.
	RefundAll(ctx context.Context, takes []Take, held time.Duration) error

	// ResetLimit makes key's budget whole (under any limit), as if it had
	// been idle for its whole period, and reports whether it was not
	// whole: whether events had been taken from it that had not come
	// back yet.
	ResetLimit(ctx context.Context, key string) (reset bool, err error)

	// PeekLimit reports how long key's budget (under any limit) needs to
	// be whole again, zero when it is, and takes nothing from it: how
	// far the budget's time is ahead of now (Limit.Standing reads it).
	PeekLimit(ctx context.Context, key string) (ahead time.Duration, err error)

	// Close releases the store's resources. Calls after Close fail with
	// ErrClosed.
	Close() error
}

// Limit is a velocity limit: at most Count events per Period, as a token
// bucket (GCRA) that holds Count tokens and refills one every
// Period/Count. A key that has been idle for Period has its whole Count
// again; events do not wait for a window boundary.
type Limit struct {
	Count  int
	Period time.Duration
}

// Take is the events a request brings to one budget, for AllowAll: N
// events from the budget of Key under Limit.
type Take struct {
	Key   string
	Limit Limit
	N     int
}

// validateTakes checks AllowAll's takes.
func validateTakes(takes []Take) error {
	if len(takes) == 0 {
		return errors.New("no takes")
	}
	for i, t := range takes {
		if err := t.Limit.validate(t.N); err != nil {
			return err
		}
		for _, u := range takes[:i] {
			if u.Key == t.Key {
				return errors.New("two takes of one key")
			}
		}
	}
	return nil
}

// Standing is what a budget under l holds whose time is ahead of now by
// ahead (PeekLimit): the events it allows now, and, when it allows none,
// how long until it allows one (an AllowN of one's RetryAfter).
func (l Limit) Standing(ahead time.Duration) (remaining int, next time.Duration) {
	interval := l.interval()
	room := time.Duration(l.Count)*interval - max(ahead, 0)
	if room < interval {
		return 0, interval - room
	}
	return min(int(room/interval), l.Count), 0
}

func (l Limit) String() string { return fmt.Sprintf("%d per %s", l.Count, l.Period) }

func (l Limit) validate(n int) error {
	if l.Count < 1 {
		return errors.New("limit count must be at least 1")
	}
	if l.Period <= 0 {
		return errors.New("limit period must be positive")
	}
	if l.interval() < MinInterval {
		return errors.New("limit period must be at least a microsecond per event")
	}
	if l.Period > MaxDuration {
		return errors.New("limit period must be at most a century")
	}
	if n < 1 || n > l.Count {
		return errors.New("events must be between 1 and the limit's count")
	}
	return nil
}

// Decision is the answer of Allow.
type Decision struct {
	// Allowed reports whether the events may happen; events that are not
	// allowed take nothing from the budget.
	Allowed bool

	// Remaining is how many more events the key could have right now.
	Remaining int

	// RetryAfter is, for events that are not allowed, how long until as
	// many would be; zero when Allowed, and in a refusal of AllowAll, zero
	// for a take whose budget had room.
	RetryAfter time.Duration
}

// MinInterval is the shortest time between a limit's events
// (Period/Count) the stores take: Redis's clock counts microseconds, and
// a shorter one (in the memory store, zero) means nothing.
const MinInterval = time.Microsecond

// MaxDuration is the longest TTL and limit period the stores take: the
// memory store counts its times in nanoseconds from its start, in an
// int64, which holds some 292 years: a time a century after any start,
// and a bucket's time twice its period ahead of that, are still in it.
const MaxDuration = 100 * 365 * 24 * time.Hour

// MinTTL is the shortest TTL the stores take: Redis counts TTLs in whole
// milliseconds, and both stores truncate a TTL to them.
const MinTTL = time.Millisecond

func validateTTL(ttl time.Duration) error {
	if ttl < MinTTL {
		return errors.New("ttl must be at least 1ms")
	}
	if ttl > MaxDuration {
		return errors.New("ttl must be at most a century")
	}
	return nil
}

var (
	// ErrUnavailable is matched (errors.Is) by an error from a store that
	// could not be reached, did not answer in time, or is closed: the
	// operation may or may not have happened.
	ErrUnavailable = errors.New("store unavailable")

	// ErrTimeout is matched by an error from a store that did not answer
	// within its timeout. Such an error also matches ErrUnavailable.
	ErrTimeout = errors.New("store timed out")

	// ErrClosed is matched by an error from a store used after Close.
	// Such an error also matches ErrUnavailable.
	ErrClosed = errors.New("store closed")

	// ErrFull is matched by an error from a store that had no room for a
	// new entry (a Memory store holding MaxEntries live entries, a Redis
	// at its maxmemory): the operation did not happen. Entries already in
	// the store can still be read, renewed (replaced with the value they
	// hold) and released; a Memory store replaces them too, a Redis may
	// refuse a new value.
	ErrFull = errors.New("store full")

	// ErrOwnerFull is matched by an error from a store whose
	// reservation's owner (see Store) holds its share: MaxPerOwner live
	// reservations of a Memory store, or MaxPerOwner reservations counted
	// in a Redis store (RedisOptions.MaxPerOwner), each until its key
	// expires or is released for the owner. The
	// reservation did not happen (or was released), and the store has
	// room for other owners'. It does not match ErrFull. The store's
	// *Error tells when the owner has room again (Error.RetryAfter).
	ErrOwnerFull = errors.New("owner's share of the store full")
)

// Error is the error of a failed store operation. Its message names the
// operation and the cause, never a key or a value. Use errors.Is with
// ErrUnavailable, ErrTimeout, ErrClosed and ErrFull to tell why it failed; an error
// that matches none of them is an answer the store gave (Redis refused the
// credentials, say) or an invalid argument (a TTL under MinTTL, a Limit
// without Count or Period).
type Error struct {
	// Op is the operation: "reserve", "replace", "release", "allow" or
	// "refund".
	Op string
	// Err is the cause.
	Err error
	// RetryAfter, of an error that matches ErrOwnerFull, is how long from
	// the refusal until the owner's share has room again: until the
	// owner's reservation that expires first does, by the store's clock
	// (a Memory store's, or the Redis server's). A reservation the owner
	// releases, or a bound raised, gives room sooner; one renewed since
	// has it later. It is 0 when the owner had room again by the time
	// the store looked (its reservations went meanwhile), and for every
	// other error.
	RetryAfter time.Duration

	unavailable, timeout, full bool
}

func (e *Error) Error() string {
	kind := ""
	switch {
	case e.Err == ErrClosed, e.Err == ErrFull, e.Err == ErrOwnerFull:
	case e.timeout:
		kind = "timed out: "
	case e.unavailable:
		kind = "unavailable: "
	}
	return "store: " + e.Op + ": " + kind + e.Err.Error()
}

// Unwrap gives errors.Is and errors.As the cause and the sentinels the
// error matches.
func (e *Error) Unwrap() []error {
	errs := []error{e.Err}
	if e.unavailable {
		errs = append(errs, ErrUnavailable)
	}
	if e.timeout {
		errs = append(errs, ErrTimeout)
	}
	if e.full {
		errs = append(errs, ErrFull)
	}
	return errs
}

func invalid(op string, err error) error { return &Error{Op: op, Err: err} }

func closedError(op string) error { return &Error{Op: op, Err: ErrClosed, unavailable: true} }

func fullError(op string) error { return &Error{Op: op, Err: ErrFull} }

func ownerFullError(op string, retryAfter time.Duration) error {
	return &Error{Op: op, Err: ErrOwnerFull, RetryAfter: max(retryAfter, 0)}
}
