package caddymodule

import (
	"cmp"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/ucwa-edge/caddy-ucwa/internal/store"
)

// memoryState is the memory store and the bounds its handlers ask for:
// it holds the largest (see want).
type memoryState struct {
	*store.Memory
	mu     sync.Mutex
	bounds map[memoryBounds]int // the bounds of the handlers using the store, and how many ask for each
}

// memoryBounds are a handler's max_entries and max_entries_per_caller.
type memoryBounds struct{ entries, perCaller int }

// want notes that a handler uses the store with bounds b (release: it
// no longer does), and sets each of the store's bounds to the largest
// its handlers ask for. A reload that changes max_entries resizes the
// store the old config's handlers and the new one's share, keeping what
// it holds: a new store would forget the reservations of the requests
// made before the reload.
func (m *memoryState) want(b memoryBounds, release bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if release {
		if m.bounds[b]--; m.bounds[b] <= 0 {
			delete(m.bounds, b)
		}
	} else {
		m.bounds[b]++
	}
	if len(m.bounds) > 0 {
		var most memoryBounds
		for asked := range maps.Keys(m.bounds) {
			most.entries, most.perCaller = max(most.entries, asked.entries), max(most.perCaller, asked.perCaller)
		}
		_ = m.SetMaxEntries(most.entries)
		_ = m.SetMaxPerOwner(most.perCaller)
	}
}

// MemoryStore keeps the edge's shared state in this process's memory
// (module http.handlers.ucwa.stores.memory): per edge, bounded, gone on
// restart. It is the default store. Every handler of the process that
// uses a memory store uses the same one, across config reloads too.
type MemoryStore struct {
	// The most live entries the store holds (reservations and limits
	// together, each a few hundred bytes, a recorded answer up to 4 KiB
	// more). A full store drops no entry before it expires (a reservation
	// dropped early would no longer keep its request from a second
	// delivery, a limit dropped early would start again with its whole
	// budget): it refuses new entries, which the handler takes as the
	// store failing (on_error), counts
	// (caddy_ucwa_store_full_total) and warns of, once a minute at most.
	// Handlers that give different bounds share the store with the
	// largest. Default: 100000.
	MaxEntries int `json:"max_entries,omitempty"`

	// The most live reservations (of idempotency's operationIds) one
	// caller holds: the verified caller (the token's tid and oid, else
	// sub), else the client's IP address ({http.vars.client_ip}, so
	// behind a load balancer Caddy's trusted_proxies, and
	// trusted_proxies_strict when it appends to X-Forwarded-For; over
	// IPv6 its /64). A caller that holds its share gets its new
	// reservations refused, as a full store's (on_error: "closed"
	// answers 429 TooManyRequests, with a Retry-After of when its
	// reservation that expires first does, see shareRetryAfter; "open"
	// delivers without idempotency), counted in
	// caddy_ucwa_store_errors_total and warned of once a minute at
	// most, while other callers go on: one caller
	// sending many operationIds cannot fill the store for all. Nothing
	// is dropped to make room: a reservation or a recorded answer
	// dropped within its window would let a repeat be delivered again.
	// Limits are not counted in it (a caller has one bucket per limit).
	// Handlers that give different shares share the store with the
	// largest. A share of max_entries or more bounds no caller but by
	// the store's own size (one service account behind the edge). Default:
	// a tenth of max_entries (10000), at least 1.
	MaxEntriesPerCaller int `json:"max_entries_per_caller,omitempty"`

	// What a request that needs a new entry in the store gets while the
	// store is full: "closed" answers it 503 ServiceUnavailable, with
	// Retry-After: 1 (see storeRetryAfter), and delivers nothing; "open"
	// goes on without the store (a request is then delivered without
	// idempotency), at the risk of a second
	// delivery, but for a request that one of its limits has no room
	// for in the store, which is answered 503 either way (callers can
	// fill the store, and the limits would count none of theirs): no
	// key holds a request delivered so, and each of
	// its repeats is delivered again, while the store is full and after,
	// within its window. Emergency calls go on either way. Any letter
	// case. Default: "closed".
	OnError string `json:"on_error,omitempty"`

	bounds   memoryBounds // what the handler asked for
	key      string       // in stores
	store    *sharedStore
	failOpen bool
}

// CaddyModule returns the Caddy module information.
func (*MemoryStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.ucwa.stores.memory",
		New: func() caddy.Module { return new(MemoryStore) },
	}
}

// Provision opens the store, or shares the one that other handlers (or
// the config this one replaces) use.
func (m *MemoryStore) Provision(caddy.Context) error {
	if m.MaxEntries < 0 {
		return fmt.Errorf("max_entries must not be negative: %d", m.MaxEntries)
	}
	if m.MaxEntriesPerCaller < 0 {
		return fmt.Errorf("max_entries_per_caller must not be negative: %d", m.MaxEntriesPerCaller)
	}
	var err error
	if m.failOpen, err = parseOnError(m.OnError); err != nil {
		return err
	}
	opts := store.MemoryOptions{MaxEntries: cmp.Or(m.MaxEntries, store.DefaultMaxEntries)}
	opts.MaxPerOwner = cmp.Or(m.MaxEntriesPerCaller, max(opts.MaxEntries/defaultCallerShare, 1))
	key := "memory"
	if memoryStoreClock != nil {
		// A store on a test's clock is never shared with one on the wall
		// clock.
		opts.Now = memoryStoreClock
		key += "/clock"
	}
	s, err := loadSharedStore(key, func() (*sharedStore, error) {
		mem, err := store.NewMemory(opts)
		if err != nil {
			return nil, err
		}
		s := &sharedStore{Store: mem, data: key, memory: &memoryState{Memory: mem, bounds: map[memoryBounds]int{}}, now: storeClock}
		s.full.now, s.shareFull.now, s.reservationLost.now = opts.Now, opts.Now, opts.Now
		s.drained.close = mem.Close
		return s, nil
	})
	if err != nil {
		return err
	}
	m.bounds = memoryBounds{opts.MaxEntries, opts.MaxPerOwner}
	s.memory.want(m.bounds, false)
	m.key, m.store = key, s
	return nil
}

// defaultCallerShare is how many callers at least it takes to fill a
// memory store whose max_entries_per_caller is not given.
const defaultCallerShare = 10

// memoryStoreClock, when not nil, is the clock of the memory stores
// opened from then on, in the place of the wall clock: a test sets it
// before it loads a config, so that it drives the limits' time instead of
// sleeping.
var memoryStoreClock func() time.Time

// Cleanup lets go of the store.
func (m *MemoryStore) Cleanup() error {
	if m.store == nil {
		return nil
	}
	m.store.memory.want(m.bounds, true)
	return releaseSharedStore(m.key)
}

func (m *MemoryStore) shared() (*sharedStore, bool) { return m.store, m.failOpen }

// memoryEntries counts the live entries of the memory stores in use, at
// each scrape: the expired ones go first (see store.Memory.Live), else an
// edge whose traffic stopped would show the entries of its last requests
// until requests came again.
func memoryEntries() float64 {
	n := 0
	stores.Range(func(_, v any) bool {
		if s, ok := v.(*sharedStore); ok && s.memory != nil {
			n += s.memory.Live()
		}
		return true
	})
	return float64(n)
}

// Interface guards
var (
	_ storeBackend       = (*MemoryStore)(nil)
	_ caddy.Provisioner  = (*MemoryStore)(nil)
	_ caddy.CleanerUpper = (*MemoryStore)(nil)
)
