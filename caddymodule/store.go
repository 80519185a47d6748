package caddymodule

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ucwa-edge/caddy-ucwa/internal/directive"
	"github.com/ucwa-edge/caddy-ucwa/internal/metrics"
	"github.com/ucwa-edge/caddy-ucwa/internal/store"
	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// The edge's shared state (internal/store) is a guest module of the
// handler, in the namespace http.handlers.ucwa.stores, chosen by the
// "backend" key of the handler's "store" object as reverse_proxy chooses
// its transport: each backend documents and checks only its own fields,
// and sets up and releases only its own resources. The set of backends is
// this package's own (storeBackend is unexported): "never twice" rests on
// a store's atomic reserve and compare-and-set, which a backend proves
// with the tests of internal/store before it is added here.
func init() {
	caddy.RegisterModule(new(MemoryStore))
	caddy.RegisterModule(new(RedisStore))
}

// storeBackend is what the modules of http.handlers.ucwa.stores give the
// handler once provisioned.
type storeBackend interface {
	caddy.Module
	// shared returns the store, and whether requests go on without it
	// when it fails (on_error open).
	shared() (s *sharedStore, failOpen bool)
}

// sharedStore is one store, shared through the usage pool stores by every
// handler whose store config is the same, across config reloads too: a
// reload keeps the reservations of the requests still in flight and the
// store's connections. It is closed once the last handler let go of it and
// the requests that reserved keys in it are done with it.
type sharedStore struct {
	store.Store
	// data names the data the store reads and writes: stores of other
	// settings (a Redis store's timeout, say) may share it, and then the
	// limits' buckets too (see claimLimits).
	data string
	// health is the store's outage epoch: even while it answers, odd
	// during an outage (see storeUse.end); lastFailure is when a call last
	// failed, by now (nil: monotonicNow).
	health      atomic.Uint64
	lastFailure atomic.Int64
	now         func() int64
	// What the edge keeps of a memory store or a Redis store of its own;
	// nil for the other kind.
	memory *memoryState
	redis  *redisState
	// full warns that the store is full; shareFull, that a caller holds
	// its whole share of a memory store; reservationLost, that a request's
	// key no longer held its reservation when it ended (see keepEnded).
	full, shareFull, reservationLost throttledWarning

	// drained closes the store once no handler uses it (Destruct) and
	// no request holds it, from when a handler takes one in to its last
	// store call: a reload that changes the store's settings cleans the
	// old handlers up while their requests are still in flight, and
	// those still reserve their keys (a body still on its way), renew
	// their reservations and record their answers in it.
	drained closeWhenDrained
}

// monotonicBase is the start of monotonicNow's clock.
var monotonicBase = time.Now()

// monotonicNow is the time since monotonicBase, by the monotonic clock.
func monotonicNow() int64 { return int64(time.Since(monotonicBase)) }

// Destruct closes the store once no handler uses it, or, when requests
// still hold it, once the last of them lets go of it.
func (s *sharedStore) Destruct() error { return s.drained.release() }

// hold keeps the store open for a request until it calls unhold, after
// its last store call.
func (s *sharedStore) hold() { s.drained.hold() }

func (s *sharedStore) unhold() { s.drained.unhold() }

// stores holds the stores in use, by their config (see sharedStoreKey).
var stores = caddy.NewUsagePool()

// loadSharedStore returns the store of key, opening it with open when no
// handler uses it yet.
func loadSharedStore(key string, open func() (*sharedStore, error)) (*sharedStore, error) {
	v, _, err := stores.LoadOrNew(key, func() (caddy.Destructor, error) { return open() })
	if err != nil {
		return nil, err
	}
	return v.(*sharedStore), nil
}

// releaseSharedStore lets go of the store of key ("": none).
func releaseSharedStore(key string) error {
	if key == "" {
		return nil
	}
	_, err := stores.Delete(key)
	return err
}

// sharedStoreKey is the usage pool's key of a store config: its backend
// and the SHA-256 of its settings, so that the pool holds no password.
func sharedStoreKey(backend string, settings any) (string, error) {
	b, err := json.Marshal(settings)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return backend + "/" + hex.EncodeToString(sum[:]), nil
}

// on_error values.
const (
	onErrorClosed = "closed"
	onErrorOpen   = "open"
)

// parseOnError reads an on_error value: whether requests go on without
// the store when it fails.
func parseOnError(v string) (failOpen bool, err error) {
	return ucwa.Either("on_error", v, onErrorClosed, onErrorOpen)
}

// storeUse is a handler's use of its store: the shared store, what to do
// when it fails, and the handler's logger and metrics.
type storeUse struct {
	*sharedStore
	failOpen bool
	errors   prometheus.Counter // caddy_ucwa_store_errors_total{on_error}
	logger   *zap.Logger
	// readingLogger logs the readings of a Redis store (see readRedis)
	// as the store module's own lines, whether the store's startup
	// check or a request started them.
	readingLogger *zap.Logger
}

// redisOwner is whom in's reservations count for in a Redis store with
// max_entries_per_caller: the owner a memory store counts them for (see
// intake.appendStoreOwner); "" for another store, or without the
// option, so that a Redis store then reserves as without it.
func (s *storeUse) redisOwner(in *intake) string {
	if s.redis == nil || s.redis.MaxPerOwner() == 0 {
		return ""
	}
	var caller string
	if in.grant != nil {
		_, _, caller = in.grant.caller()
	}
	var room [storeOwnerLen]byte
	return string(in.appendStoreOwner(room[:0], caller))
}

// allowAll is AllowAll with the decisions written to ds, which has
// room for one per take. The stores are called by their concrete types,
// which keep neither slice: both may be on the caller's stack, where
// the interface's call would have them on the heap.
func (s *storeUse) allowAll(ctx context.Context, takes []store.Take, ds []store.Decision) error {
	var got []store.Decision
	var err error
	switch {
	case s.memory != nil:
		return s.memory.AllowAllInto(takes, ds)
	case s.redis != nil:
		got, err = s.redis.AllowAll(ctx, takes)
	default:
		got, err = s.AllowAll(ctx, slices.Clone(takes))
	}
	copy(ds, got)
	return err
}

// refundAll is RefundAll, the stores called by their concrete types as
// in allowAll.
func (s *storeUse) refundAll(ctx context.Context, takes []store.Take, held time.Duration) error {
	switch {
	case s.memory != nil:
		return s.memory.RefundAll(ctx, takes, held)
	case s.redis != nil:
		return s.redis.RefundAll(ctx, takes, held)
	}
	return s.RefundAll(ctx, slices.Clone(takes), held)
}

// renew renews the reservations of keys, each held with its value in
// values for the owner in owners (see redisOwner), for ttl, ends each
// key's call as begun at epoch (see end), and reports for each key
// whether it no longer held its value (the call ran, and renewed
// nothing). A Redis store renews them in one round trip for every 500
// (see store.Redis.Renew), each key's count in its owner's share with
// it; another, one after another (the memory store's Replace does not
// wait, and its share counts each key while it lives).
func (s *storeUse) renew(ctx context.Context, epoch uint64, owners, keys, values []string, ttl time.Duration) (notHeld []bool) {
	notHeld = make([]bool, len(keys))
	if s.redis != nil {
		renewed, errs := s.redis.Renew(ctx, owners, keys, values, ttl)
		for i, err := range errs {
			s.end(epoch, err)
			notHeld[i] = err == nil && !renewed[i]
		}
		return notHeld
	}
	for i, key := range keys {
		renewed, err := s.Replace(ctx, owners[i], key, values[i], values[i], ttl)
		s.end(epoch, err)
		notHeld[i] = err == nil && !renewed
	}
	return notHeld
}

// release releases the reservations of keys, each held with its value
// in values for owner (see redisOwner), and ends each key's call (see
// end). Every key is released, whichever fail: a key left held makes
// its repeats 409 for the window. A Redis store releases them all, and
// their counts in the owner's share, in one round trip (see
// store.Redis.ReleaseAll); another, one after another (the memory
// store's Release does not wait, and gives the owner its share back).
func (s *storeUse) release(ctx context.Context, owner string, keys, values []string) {
	if len(keys) == 0 {
		return
	}
	epoch := s.begin()
	if s.redis != nil {
		for _, err := range s.redis.ReleaseAll(ctx, owner, keys, values) {
			s.end(epoch, err)
		}
		return
	}
	for i, key := range keys {
		_, err := s.Release(ctx, owner, key, values[i])
		s.end(epoch, err)
	}
}

// needsStore reports whether something the handler does uses the store.
func (h *Handler) needsStore() bool { return h.Idempotency != nil || len(h.Limits) > 0 }

// provisionStore loads the store module (the default memory store when
// the handler configures none) when the handler configures one or needs
// one.
func (h *Handler) provisionStore(ctx caddy.Context) error {
	if string(bytes.TrimSpace(h.StoreRaw)) == "null" {
		// JSON's null is no store, as a null idempotency or
		// destinations is none.
		h.StoreRaw = nil
	}
	if !h.needsStore() {
		if h.StoreRaw == nil {
			return nil
		}
		// Loaded all the same, so that its settings are checked.
		h.logger.Warn("a store is configured but nothing uses it: idempotency is off and there is no limit")
	}
	var mod any
	var err error
	if h.StoreRaw == nil {
		mod, err = ctx.LoadModuleByID("http.handlers.ucwa.stores.memory", nil)
	} else {
		if h.StoreRaw, err = foldStoreBackend(h.StoreRaw); err != nil {
			return err
		}
		mod, err = ctx.LoadModule(h, "StoreRaw")
	}
	if err != nil {
		return err // names the module: "loading module 'redis': ..."
	}
	s, failOpen := mod.(storeBackend).shared()
	m, err := newStoreMetrics(registerer(ctx))
	if err != nil {
		return err
	}
	mode := onErrorClosed
	if failOpen {
		mode = onErrorOpen
	}
	h.store = &storeUse{sharedStore: s, failOpen: failOpen, errors: m.WithLabelValues(mode), logger: h.logger}
	if s.redis != nil {
		h.store.readingLogger = h.logger.Named("stores.redis")
	}
	return nil
}

// errStoreUnavailable and errStoreFull answer a request that needs the
// store while it fails, with on_error closed (see storeError).
var (
	errStoreUnavailable = ucwa.NewError(http.StatusServiceUnavailable, "",
		"The edge cannot reach its shared state now. The request was not delivered and can be sent again later.")
	errStoreFull = ucwa.NewError(http.StatusServiceUnavailable, "",
		"The edge's shared state is full now. The request was not delivered and can be sent again later.")
	errCallerShareFull = ucwa.NewError(http.StatusTooManyRequests, "",
		"The edge holds as many requests of this caller as it holds for one caller. The request was not delivered and can be sent again later.")
	errStoreClosed = ucwa.NewError(http.StatusServiceUnavailable, "",
		"The edge's configuration changed while the request came in. The request was not delivered and can be sent again.")
)

// refusedByStore is the audit line's refused_by of a request answered
// for its store (see failStore): unreachable, too slow or refusing, full,
// closed by a reload, or the caller at its max_entries_per_caller.
const refusedByStore = "store"

// storeRetryAfter is the Retry-After of the 503s a request gets when
// its store call fails (errStoreUnavailable, errStoreFull,
// errStoreClosed), the shortest there is: none of them tells when the
// store will take the request. The edge asks the store again at every
// request (go-redis dials again about once a second while Redis is
// down), so the first retry once it answers goes through; an outage is
// as long as Redis is away, which its timeout (one operation's bound)
// says nothing of. A full store makes room as its entries expire
// (within the idempotency window, or a limit's period) or are released
// by requests that reached no pool, and at once when an operator raises
// max_entries (a reload) or Redis's maxmemory; neither store says when
// its next entry expires. A store closed under a request by a reload
// is already replaced by the new configuration's. A retry the store
// refuses again costs the edge one operation, bounded by its timeout,
// and takes no entry. (A caller at its own share of the store gets 429
// with the Retry-After of shareRetryAfter instead: its share has room
// again when its own entry that expires first does, which the store
// tells.)
const storeRetryAfter = time.Second

// failStore answers a request whose store call failed with err (see
// storeError), with a Retry-After: a 503's, or a caller's at its share.
// Its audit line names the store as what refused it (refusedByStore), so
// that its 503 is not taken for one of no pool taking the request.
func (h *Handler) failStore(w http.ResponseWriter, in *intake, err error) error {
	e := storeError(err)
	if in.refusedBy == "" {
		in.refusedBy = refusedByStore
	}
	switch {
	case e == errCallerShareFull:
		setRetryAfter(w.Header(), shareRetryAfter(err))
	case e.Status == http.StatusServiceUnavailable:
		setRetryAfter(w.Header(), storeRetryAfter)
	}
	return h.fail(w, in, e)
}

// shareRetryAfter is how long until the caller that err (which matches
// store.ErrOwnerFull) refused has room in its share again: until its
// reservation that expires first does, by the clock the store counts
// it on (the memory store's, or the Redis server's), as the store read
// it when it refused (store.Error.RetryAfter). A retry then finds room
// unless another request of the caller's took it first, or that
// reservation was renewed or answered since; one sooner is refused
// again, unless the caller's requests released reservations meanwhile
// or max_entries_per_caller was raised. It is 0, which setRetryAfter
// makes a second, when the store found the caller's reservations gone
// by the time it looked: a retry finds room at once.
func shareRetryAfter(err error) time.Duration {
	var e *store.Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// storeError is the answer to a request whose store call failed with err.
func storeError(err error) *ucwa.Error {
	switch {
	case errors.Is(err, store.ErrFull):
		return errStoreFull
	case errors.Is(err, store.ErrOwnerFull):
		return errCallerShareFull
	case errors.Is(err, store.ErrClosed):
		return errStoreClosed
	}
	return errStoreUnavailable
}

// keyed reports whether the store is this process's alone (a memory
// store), whose idempotency digests are keyed for the process (see
// storeDigest); a Redis store's are what every edge computes.
func (s *storeUse) keyed() bool { return s.memory != nil }

// goesOnWithout reports whether a request goes on without the store
// after a store call failed with err: on_error open, unless a reload
// closed the store (see end).
func (s *storeUse) goesOnWithout(err error) bool {
	return s.failOpen && !errors.Is(err, store.ErrClosed)
}

// begin returns the store's outage epoch, to hand to end with the outcome
// of the store call made after it.
func (s *storeUse) begin() uint64 { return s.health.Load() }

// end judges the outcome of a store call that began at epoch, as settle
// does, and counts it in caddy_ucwa_store_errors_total when it failed.
func (s *storeUse) end(epoch uint64, err error) bool {
	if err != nil {
		s.errors.Inc()
	}
	return s.settle(epoch, err)
}

// settle judges the outcome of a store call that began at epoch, and
// reports whether the request may go on: the call succeeded, or it failed
// and goesOnWithout. It logs the start and the end of an outage once
// each, whichever handler sees them: the first failure of a call begun
// while the store answered starts an outage, and the first success of a
// call begun during the outage ends it, once no call failed for
// storeSettle: a store that fails some calls and answers others (a Redis
// Cluster node down, latency about the timeout) is one outage, not one a
// request. A call begun before the latest change (a straggler) changes
// nothing, so that the log does not flap. It counts nothing (see end): a
// call whose failure is one already counted (see releaseUnanswered) is
// judged with settle alone.
func (s *storeUse) settle(epoch uint64, err error) bool {
	if err == nil {
		if epoch&1 == 1 && s.clock()-s.lastFailure.Load() >= int64(storeSettle) && s.health.CompareAndSwap(epoch, epoch+1) {
			s.logger.Info("store answers again")
		}
		if s.redis != nil {
			s.readIfDue()
		}
		return true
	}
	if errors.Is(err, store.ErrFull) {
		// Not an outage: a full store still reads, replaces and releases
		// what it holds, and the outage would end and start again with
		// every request.
		s.noteFull()
		return s.failOpen
	}
	if errors.Is(err, store.ErrOwnerFull) {
		// Not an outage, nor a full store: one caller holds its share.
		s.noteShareFull()
		return s.failOpen
	}
	if errors.Is(err, store.ErrClosed) {
		// Not an outage either: a reload that changed the store's
		// settings closed it under a request the old configuration
		// accepted before its handler got to it. The request is not
		// delivered without the store, even with on_error open: the
		// store may hold the request's key, and a client that sends it
		// again reaches the new configuration's store.
		return false
	}
	s.lastFailure.Store(s.clock())
	if epoch&1 == 0 && s.health.CompareAndSwap(epoch, epoch+1) {
		if s.redis != nil {
			// The Redis that answers next may be another, or restarted
			// with another config.
			s.redis.quiet.Store(false)
			s.redis.readingDue.Store(0)
			s.redis.retry.Store(0)
		}
		msg := "store failing: requests that need it are answered 503 until it answers again (emergency calls go on without it)"
		if s.failOpen {
			msg = "store failing: requests that need it go on without it until it answers again"
		}
		// A store's error names the operation and the cause, never a key
		// or a value.
		s.logger.Warn(msg, zap.Error(err))
	}
	return s.failOpen
}

// storeSettle is how long a store in an outage answers every call before
// the outage counts as over (see storeUse.end).
const storeSettle = 5 * time.Second

// storeClock, when not nil, is the clock (see sharedStore.now) of the
// stores made from then on: a test sets it before it loads a config, so
// that it decides when an outage may end.
var storeClock func() int64

// clock is the store's monotonic time (see sharedStore.now).
func (s *sharedStore) clock() int64 {
	if s.now != nil {
		return s.now()
	}
	return monotonicNow()
}

// throttledWarning is a warning of a condition that repeats with every
// request while it lasts (a full store, a caller's full share, a pool
// that cannot take requests, a log that cannot write): at its first
// occurrence, then once every warnEvery at most, with the occurrences
// since the last warning.
type throttledWarning struct {
	now    func() time.Time // the clock; nil: the wall clock
	events atomic.Uint64
	// warnedUpTo is events as of the last warning.
	warnedUpTo atomic.Uint64
	mu         sync.Mutex // held while warning
	warnedAt   time.Time  // guarded by mu; zero: never
}

// warnEvery is how often at most the edge repeats a throttled warning.
const warnEvery = time.Minute

// The warning that the store is full: what is full, then what requests
// get, by on_error.
const (
	memoryFull = "memory store full: it holds max_entries live entries and takes no new one until some expire (raise max_entries or share a redis store); "
	redisFull  = "redis full: over its maxmemory, it refuses the edge's writes (raise its maxmemory); "
	fullClosed = "requests that need a new entry in it are answered 503 (emergency calls go on without it)"
	fullOpen   = "requests that need a new entry in it go on without it (no idempotency), but for those whose limits it cannot count, which are answered 503 (emergency calls go on without it)"
)

// note counts an occurrence and, at the first and then once every
// warnEvery at most, calls warn with the occurrences since the last
// warning: an operator must learn of it once, not at every request. One
// warning for all the handlers that share the condition: one that finds
// another warning goes on.
func (f *throttledWarning) note(warn func(events uint64)) { f.noteEvents(1, warn) }

// noteEvents is note for n occurrences at once (the lines one failed
// write lost).
func (f *throttledWarning) noteEvents(n uint64, warn func(events uint64)) {
	f.events.Add(n)
	if !f.mu.TryLock() {
		return
	}
	defer f.mu.Unlock()
	// Read under the lock: a count taken before it could be older than
	// the one the last warning went up to.
	events := f.events.Load()
	now := time.Now()
	if f.now != nil {
		now = f.now()
	}
	if !f.warnedAt.IsZero() && now.Sub(f.warnedAt) < warnEvery {
		return
	}
	f.warnedAt = now
	warn(events - f.warnedUpTo.Swap(events))
}

// noteFull counts a write the store refused for want of room, and warns
// of it: the store is too small for the edge's traffic.
func (s *storeUse) noteFull() {
	storeFull.Inc()
	s.full.note(func(refused uint64) {
		msg, then := redisFull, fullClosed
		if s.failOpen {
			then = fullOpen
		}
		fields := []zap.Field{zap.Uint64("refused", refused)}
		if s.memory != nil {
			msg = memoryFull
			fields = append(fields, zap.Int("max_entries", s.memory.MaxEntries()))
		}
		s.logger.Warn(msg+then, fields...)
	})
}

// The warning that a caller holds its share of the memory store (or of
// Redis), then what its requests get, by on_error.
const (
	shareFull       = "a caller holds max_entries_per_caller reservations of the memory store (many operationIds within the idempotency window): "
	redisShareFull  = "a caller holds max_entries_per_caller reservations of redis, across the edges that share it (many operationIds within the idempotency window): "
	shareFullClosed = "its requests that need a new one are answered 429 until some expire; other callers go on"
	shareFullOpen   = "its requests that need a new one go on without idempotency until some expire"
)

// noteShareFull warns that a caller was refused a reservation for
// holding its share, at the first refusal and then once every
// warnEvery at most, with the refusals since: it names no caller.
func (s *storeUse) noteShareFull() {
	s.shareFull.note(func(refused uint64) {
		then := shareFullClosed
		if s.failOpen {
			then = shareFullOpen
		}
		msg, perCaller := shareFull, 0
		switch {
		case s.memory != nil:
			perCaller = s.memory.MaxPerOwner()
		case s.redis != nil:
			msg, perCaller = redisShareFull, s.redis.MaxPerOwner()
		}
		s.logger.Warn(msg+then, zap.Uint64("refused", refused), zap.Int("max_entries_per_caller", perCaller))
	})
}

// registerer is Caddy's metrics registry of ctx, nil for none.
func registerer(ctx caddy.Context) prometheus.Registerer {
	// A nil *Registry in a Registerer would not be nil.
	if r := ctx.GetMetricsRegistry(); r != nil {
		return r
	}
	return nil
}

// newStoreMetrics registers the store's metrics in reg (nil: none) and
// returns caddy_ucwa_store_errors_total, by on_error.
func newStoreMetrics(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	errs, err := metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "ucwa", Name: "store_errors_total",
		Help: "Store calls that failed (unreachable, too slow, refused), by the on_error of the store.",
	}, []string{"on_error"}))
	if err != nil {
		return nil, err
	}
	if _, err := metrics.Register(reg, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "caddy", Subsystem: "ucwa", Name: "store_memory_entries",
		Help: "Live entries (reservations and limits) held by the memory stores in use.",
	}, memoryEntries)); err != nil {
		return nil, err
	}
	_, err = metrics.Register(reg, storeFull)
	return errs, err
}

// storeFull counts the writes that the stores of the process refused
// for want of room, across config reloads.
var storeFull = prometheus.NewCounter(prometheus.CounterOpts{
	Namespace: "caddy", Subsystem: "ucwa", Name: "store_full_total",
	Help: "Store writes refused because the store was full (the memory store at max_entries, Redis at its maxmemory); each is a store error too.",
})

// storeBackends are the backend words of the edge's own stores.
var storeBackends = []string{"memory", "redis"}

// foldStoreBackend lower-cases the store's backend when it is one of the
// edge's own in another letter case ("Redis"), since option words are
// read in any letter case and Caddy loads a module by its exact name.
// Any other backend is left for Caddy to load or refuse. A store that is
// no object, or has no backend, is refused naming the store: Caddy's
// message would name neither it nor its backends.
func foldStoreBackend(raw json.RawMessage) (json.RawMessage, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, errors.New(`store: must be an object with a backend, such as {"backend": "memory"}`)
	}
	var backend string
	switch b := fields["backend"]; {
	case b == nil || string(b) == "null":
		return nil, errors.New("store: backend is required (memory or redis)")
	case json.Unmarshal(b, &backend) != nil:
		return nil, fmt.Errorf("store: backend must be a string (memory or redis): %s", b)
	case backend == "":
		return nil, errors.New("store: backend is required (memory or redis)")
	}
	folded := ucwa.Word(backend, storeBackends...)
	if folded == backend {
		return raw, nil
	}
	fields["backend"], _ = json.Marshal(folded)
	return json.Marshal(fields)
}

// unmarshalStore parses `store memory [<max_entries>] { ... }` or
// `store redis <url> { ... }`; d is on `store`.
func unmarshalStore(d *caddyfile.Dispenser) (json.RawMessage, error) {
	var backend string
	if !d.Args(&backend) {
		return nil, directive.ArgCount(d, "store", "memory [<max_entries>] or redis <url>")
	}
	var module any
	word := ucwa.Word(backend, storeBackends...)
	switch word {
	case "memory":
		m := new(MemoryStore)
		if d.NextArg() {
			n, err := strconv.Atoi(d.Val())
			if err != nil || n <= 0 {
				return nil, d.Errf("store memory: %q is not a number of entries above 0", d.Val())
			}
			m.MaxEntries = n
		}
		if d.NextArg() {
			return nil, directive.ArgCount(d, "store memory", "at most one argument, <max_entries>")
		}
		if err := directive.Block(d, d.Nesting(), "store", nil, func(name string) error {
			switch name {
			case "on_error":
				return directive.Word(d, &m.OnError, onErrorClosed, onErrorOpen)
			case "max_entries_per_caller":
				return unmarshalPerCaller(d, "memory", &m.MaxEntriesPerCaller)
			}
			return unrecognized(d, "store memory", "option", name)
		}); err != nil {
			return nil, err
		}
		module = m
	case "redis":
		r := new(RedisStore)
		if !d.Args(&r.URL) || d.NextArg() {
			return nil, d.Err("store redis: expected `store redis <url> { ... }`")
		}
		if err := r.unmarshalBlock(d); err != nil {
			return nil, err
		}
		module = r
	default:
		return nil, d.Err(ucwa.WordError("store", backend, "memory", "redis").Error())
	}
	return caddyconfig.JSONModuleObject(module, "backend", word, nil), nil
}

// unmarshalPerCaller parses the argument of max_entries_per_caller, in
// the block of `store <backend>`, into n.
func unmarshalPerCaller(d *caddyfile.Dispenser, backend string, n *int) error {
	var v string
	if err := directive.OneArg(d, &v); err != nil {
		return err
	}
	parsed, err := strconv.Atoi(v)
	if err != nil || parsed <= 0 {
		return d.Errf("store %s: max_entries_per_caller: %q is not a number of entries above 0", backend, v)
	}
	*n = parsed
	return nil
}

// Interface guards
var _ caddy.Destructor = (*sharedStore)(nil)

// fileLoadAfterFunc, when not nil, is the timer of a config load's wait
// for a store's files (a Redis tls ca file; see fileload.Read), in place
// of time.AfterFunc: a test sets it to a clock of its own.
var fileLoadAfterFunc func(time.Duration, func()) interface{ Stop() bool }
