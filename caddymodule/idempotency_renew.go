package caddymodule

import (
	"context"
	"sync"
	"time"
)

// reservationsInFlight keeps the keys of the requests in flight
// reserved for the window, renewing them every third of the window until
// each request is answered: a pool slower than the window would otherwise
// see a repeat sent after the window as new, and take it while it still
// acts on the first. One timer serves every request of the handler,
// ticking every third of the window while any request is in flight, so
// that a request costs an entry in a map rather than a timer of its own.
// A key is renewed from the moment it is reserved, not once its request
// has reserved all of its keys (a batch's parts, one store call each) and
// passed the limits: each store call may take the store's timeout, and a
// batch's first key would otherwise wait for all of them. Every key in
// flight is renewed at every tick, the first within a third of the window
// of its reservation, 500 in one store call (see storeUse.renew): one
// after another, the last would wait a timeout for each key before it. A
// renewal that finds a key replaced (the answer recorded) or released
// changes nothing.
type reservationsInFlight struct {
	h      *Handler
	window time.Duration

	mu    sync.Mutex
	keys  map[string]reservedKeys // by reservation token
	timer renewalTimer            // nil until the first request
	armed bool                    // the timer is to tick
}

// reservedKeys are the keys a request in flight holds: its first, held
// with value, and a batch's others in a slice of their own, so that a
// request of one key costs no allocation; all of them for owner (see
// redisOwner), whose share counts each until its renewed TTL is
// over.
type reservedKeys struct {
	owner, key, value string
	more              []heldKey
}

// heldKey is a key reserved and the value that holds it.
type heldKey struct{ key, value string }

// renewalTimer is the timer of reservationsInFlight.
type renewalTimer interface {
	Stop() bool
	Reset(time.Duration) bool
}

// renewAfter makes reservationsInFlight's timer: time.AfterFunc, or a
// test's fake clock, on which it renews a memory store's reservations.
var renewAfter = func(d time.Duration, f func()) renewalTimer { return time.AfterFunc(d, f) }

// keep renews key, which token's request has just reserved for owner
// with value (a batch's, see batchValues; else token), until
// forget(token).
func (rs *reservationsInFlight) keep(token, owner, key, value string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.keys == nil {
		rs.keys = make(map[string]reservedKeys)
	}
	if held, ok := rs.keys[token]; ok {
		held.more = append(held.more, heldKey{key, value})
		rs.keys[token] = held
	} else {
		rs.keys[token] = reservedKeys{owner: owner, key: key, value: value}
	}
	switch {
	case rs.timer == nil:
		rs.timer = renewAfter(rs.window/3, rs.tick)
	case !rs.armed:
		rs.timer.Reset(rs.window / 3)
	}
	rs.armed = true
}

// forget stops renewing the keys of token, once its request is answered
// or refused.
func (rs *reservationsInFlight) forget(token string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	delete(rs.keys, token)
	if len(rs.keys) == 0 && rs.armed {
		rs.armed = false
		rs.timer.Stop()
	}
}

// tick renews the reservations of every request in flight, and has the
// timer tick again while any is.
func (rs *reservationsInFlight) tick() {
	rs.mu.Lock()
	if len(rs.keys) == 0 || !rs.armed {
		rs.mu.Unlock()
		return
	}
	owners := make([]string, 0, len(rs.keys))
	keys := make([]string, 0, len(rs.keys))
	values := make([]string, 0, len(rs.keys))
	for _, held := range rs.keys {
		owners, keys, values = append(owners, held.owner), append(keys, held.key), append(values, held.value)
		for _, k := range held.more {
			owners, keys, values = append(owners, held.owner), append(keys, k.key), append(values, k.value)
		}
	}
	rs.timer.Reset(rs.window / 3)
	rs.mu.Unlock()
	// A key that fails (a Redis Cluster shard down, one command lost)
	// costs the others nothing: a request left unrenewed two ticks
	// running may see its key expire while it is in flight.
	s := rs.h.store
	s.renew(context.Background(), s.begin(), owners, keys, values, rs.window)
}
