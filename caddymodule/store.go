package caddymodule

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/ucwa-edge/caddy-ucwa/internal/bearer"
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
	// its whole share of a memory store.
	full, shareFull throttledWarning

	// drained closes the store once no handler uses it (Destruct) and
	// no request holds it, from when a handler takes one in to its last
	// store call: a reload that changes the store's settings cleans the
	// old handlers up while their requests are still in flight, and
	// those still reserve their keys (a body still on its way), renew
	// their reservations and record their answers in it.
	drained closeWhenDrained
}

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

// redisState is a Redis store and the readings of its durability: its
// eviction policy, its persistence and its run_id (see
// storeUse.readRedis).
type redisState struct {
	*store.Redis
	// readingDue is when Redis is to be read, at the next success from
	// then on (monotonic ns, see monotonicNow); readingDone: not before
	// the next outage or new connection.
	readingDue atomic.Int64
	// retry is how long after a failed reading the next one is due: it
	// doubles with each failure, up to maxReadingRetry.
	retry atomic.Int64
	// quiet makes the next reading log only a change of run_id: each
	// reading sets it, and a failed reading and an outage, after which
	// Redis may be another, clear it.
	quiet atomic.Bool
	// reading: a reading is on its way, from when it is due to its end.
	reading atomic.Bool
	mu      sync.Mutex // held by a reading, from its start to its end
	runID   string     // guarded by mu: of the last reading, "" for none

	checkMu sync.Mutex
	// checkedLoad is the config load (see configLoad) whose startup
	// check of Redis began last, guarded by checkMu.
	checkedLoad any
}

// checkFor reports whether the startup check of Redis is still to begin
// for the config load load, and notes that it begins: the handlers of one
// config that share the store check it once.
func (r *redisState) checkFor(load any) bool {
	r.checkMu.Lock()
	defer r.checkMu.Unlock()
	if r.checkedLoad == load {
		return false
	}
	r.checkedLoad = load
	return true
}

// readingDone is redisState.readingDue once Redis has been read.
const readingDone = math.MaxInt64

// The first and the longest wait before Redis is read again after a
// failed reading.
const (
	minReadingRetry = time.Minute
	maxReadingRetry = time.Hour
)

// connected notes that the store opened a connection to Redis: a reading
// is due at the next success, for the server may have restarted while
// the connections the edge held were idle, and go-redis then dials again
// without a failed command, so without an outage. A reading due later
// after a failed one stays due then. A connection opened while a reading
// is on its way (the reading's own INFO may open one) is to the server
// that reading reads, and calls for no other.
func (r *redisState) connected() {
	if !r.reading.Load() {
		r.readingDue.CompareAndSwap(readingDone, 0)
	}
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
		s.full.now, s.shareFull.now = opts.Now, opts.Now
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

// RedisStore keeps the edge's shared state in Redis (module
// http.handlers.ucwa.stores.redis), shared by every edge that uses the
// same Redis and key prefix: a fleet of edges then delivers a request
// once. Each operation is one round trip, bounded by the timeout and not
// retried (but with cluster: see store.Redis); the client reconnects by
// itself when Redis is back. Redis must
// not evict the store's keys (maxmemory-policy noeviction, its default):
// the edge warns when it may. To keep them across a restart it needs
// appendonly yes: the edge warns when it has no append-only file, and
// when Redis restarted or failed over (its run_id changed; not told with
// cluster). A config load does not wait for Redis: it checks it once in
// the background (PING, given at least 5s, on a connection of its own
// when that is longer than Timeout) and warns when that fails.
type RedisStore struct {
	// Where Redis is: redis://[user:password@]host:port/db, or rediss://
	// for TLS. The port defaults to 6379 and db to 0; query parameters are
	// refused. It may hold global placeholders such as
	// {env.UCWA_REDIS_URL}, read at startup. Required.
	URL string `json:"url"`

	// The password, in the place of the URL's. Give it as a placeholder
	// such as {env.UCWA_REDIS_PASSWORD}, read at startup, so that the
	// secret is neither in the config nor in its adapted JSON; it is never
	// logged. A user in the URL needs a password, here or in the URL.
	// Default: the URL's.
	Password string `json:"password,omitempty"`

	// Bounds each store operation, from the call to the answer (dial
	// included). Idempotency makes two per request, one before delivery
	// and one after the answer, before it goes out; the limits that
	// count a request make one together before delivery (for an
	// emergency call, one each), and one more to give its events back
	// when it reached no pool. The check at each config load (PING,
	// then a script, see checkRedis) is given at least 5s. At least
	// 1ms (a number in JSON is nanoseconds: 100 is 100ns, which no
	// round trip fits in), and at most a tenth of the idempotency
	// window (see IdempotencyConfig.Window).
	// Default: 100ms.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// What a request that needs the store gets while the store fails
	// (unreachable, too slow, refusing): "closed" answers it 503
	// ServiceUnavailable, with Retry-After: 1 (see storeRetryAfter), and
	// delivers nothing; "open" goes on without the
	// store (a request is then delivered without idempotency, and
	// uncounted by its limits; a Redis over its maxmemory, which callers
	// can fill, is no failure the limits go on without: a request whose
	// limits it cannot count is answered 503 either way), giving up
	// "never twice" while it fails:
	// a repeat is delivered again, of a request answered or still in
	// flight before the outage too, and no key holds a request delivered
	// so, whose repeats are delivered again after the outage too, within
	// its window. Either way the handler logs a warning once per outage
	// and counts every failure. Any letter case. Default: "closed".
	OnError string `json:"on_error,omitempty"`

	// Starts every key the store writes, so that edges in front of
	// different pools can share one Redis apart. It may hold global
	// placeholders such as {env.UCWA_FLEET}, read at startup (an unset
	// variable stops startup, as a prefix that silently became empty
	// would merge the fleets); braces that name no placeholder, such as
	// a Redis Cluster hash tag ({ucwa}), stay as written.
	// Default: "ucwa:".
	KeyPrefix string `json:"key_prefix,omitempty"`

	// The most reservations (of idempotency's operationIds) one caller
	// makes within the idempotency window, counted in Redis for every
	// edge that shares it (a verified caller's across the fleet; a
	// caller known by the client's address alone, per edge: its digest
	// is keyed for the process, so that Redis holds no address), so that
	// one caller cannot fill Redis for all. A caller over it gets its
	// new reservations refused as with a memory store's
	// max_entries_per_caller: on_error "closed" answers 429
	// TooManyRequests, with a Retry-After of when the caller's earliest
	// key counted is past by Redis's clock (see shareRetryAfter), and
	// delivers nothing, "open" delivers without
	// idempotency; a repeat of a request Redis holds is still replayed,
	// and other callers go on. Redis counts, in a sorted set per caller
	// at key_prefix+"owner:" and the caller's digest in hex, the
	// operationIds reserved, in the same round trip as the reservation,
	// each until its key expires: a reservation released early (its
	// request reached no pool) is given back, and one renewed or
	// replaced by its answer counts until its new expiry, in the round
	// trip of the release or the renewal. Without a share, an edge whose
	// idempotency uses the store warns at each config load. Default: 0,
	// no bound but Redis's maxmemory: the reservations' keys and
	// commands are then those of an edge without the option.
	MaxEntriesPerCaller int `json:"max_entries_per_caller,omitempty"`

	// TLS settings of a rediss URL; with a redis URL they are refused,
	// an empty tls block too, since only rediss encrypts. Default: the
	// system's roots and the URL's host name.
	TLS *RedisTLS `json:"tls,omitempty"`

	// Follow the master of this name through Redis Sentinel: the URL's
	// host and addrs are then sentinels, reached without credentials; the
	// URL's user, password and db are the master's. Default: none.
	SentinelMaster string `json:"sentinel_master,omitempty"`

	// Use Redis Cluster: the URL's host and addrs are nodes to learn the
	// cluster from; db must be 0. Default: false.
	Cluster bool `json:"cluster,omitempty"`

	// More host:port addresses of sentinels (sentinel_master) or cluster
	// nodes (cluster). Default: none.
	Addrs []string `json:"addrs,omitempty"`

	key      string // in stores
	store    *sharedStore
	failOpen bool
	// stopCheck stops the startup check this handler's store began (see
	// checkRedis); nil when another handler of the config load began it.
	stopCheck context.CancelFunc
}

// RedisTLS is the TLS configuration of a rediss URL.
type RedisTLS struct {
	// A PEM file of the CAs that sign the server's certificate; it may
	// hold placeholders. It is read at each config load: a reload after
	// it changed trusts what it then holds (a config of otherwise the
	// same settings opens a store of its own). Default: the system's
	// roots.
	CA string `json:"ca,omitempty"`

	// The name the server's certificate must carry. Default: the URL's
	// host.
	ServerName string `json:"server_name,omitempty"`

	// Accept any server certificate: for tests only. Default: false.
	InsecureSkipVerify bool `json:"insecure_skip_verify,omitempty"`
}

// minRedisTimeout is the shortest timeout a Redis store takes.
const minRedisTimeout = time.Millisecond

// on_error values.
const (
	onErrorClosed = "closed"
	onErrorOpen   = "open"
)

// parseOnError reads an on_error value: whether requests go on without
// the store when it fails.
func parseOnError(v string) (failOpen bool, err error) {
	switch ucwa.Word(v, onErrorClosed, onErrorOpen) {
	case "", onErrorClosed:
		return false, nil
	case onErrorOpen:
		return true, nil
	}
	return false, ucwa.WordError("on_error", v, onErrorClosed, onErrorOpen)
}

// CaddyModule returns the Caddy module information.
func (*RedisStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.ucwa.stores.redis",
		New: func() caddy.Module { return new(RedisStore) },
	}
}

// Provision reads the placeholders and opens the store, or shares the one
// of the same settings that another handler (or the config this one
// replaces) uses. It does not wait for Redis: an edge starts while Redis
// is down, and a reload does not hang on a Redis that does not answer.
// It checks Redis in the background (checkRedis).
func (r *RedisStore) Provision(ctx caddy.Context) error {
	var err error
	if r.failOpen, err = parseOnError(r.OnError); err != nil {
		return err
	}
	// An unset variable or an unknown placeholder (a typo) stops
	// startup, as in the jwt settings.
	repl := caddy.NewReplacer()
	resolve := func(setting, value string) (string, error) {
		out, err := bearer.Resolve(repl, setting, value)
		if err != nil && (setting == "url" || setting == "password") && strings.Contains(err.Error(), "unrecognized placeholder") {
			// The error would quote what it took for a placeholder, which
			// may be part of a literal password.
			return "", fmt.Errorf(`%s: unrecognized placeholder (a literal brace is written \{)`, setting)
		}
		return out, err
	}
	if r.MaxEntriesPerCaller < 0 {
		return fmt.Errorf("max_entries_per_caller must not be negative: %d", r.MaxEntriesPerCaller)
	}
	// A timeout shorter than any round trip (JSON's 100, which is 100ns,
	// meant as 100ms) fails every store call, while the startup check,
	// given at least 5s, passes: the config would load clean and answer
	// every request that needs the store 503.
	if t := time.Duration(r.Timeout); t > 0 && t < minRedisTimeout {
		return fmt.Errorf("timeout must be at least %s: %s", minRedisTimeout, t)
	}
	opts := store.RedisOptions{
		MasterName:  r.SentinelMaster,
		Cluster:     r.Cluster,
		Addrs:       r.Addrs,
		Timeout:     time.Duration(r.Timeout),
		MaxPerOwner: r.MaxEntriesPerCaller,
	}
	// A hash tag is no placeholder: only placeholders Caddy knows are read.
	if opts.KeyPrefix, err = repl.ReplaceOrErr(r.KeyPrefix, true, false); err != nil {
		return fmt.Errorf("key_prefix: %w", err)
	}
	if opts.URL, err = resolve("url", r.URL); err != nil {
		return err
	}
	if opts.Password, err = resolve("password", r.Password); err != nil {
		return err
	}
	if t := r.TLS; t != nil {
		// A tls block of no options on a redis URL would leave the
		// connection in the clear, though the config asks for TLS.
		if u, err := url.Parse(opts.URL); err == nil && u.Scheme == "redis" {
			return errors.New("store: redis: TLS options need a rediss URL")
		}
		if opts.TLSCAFile, err = resolve("tls: ca", t.CA); err != nil {
			return err
		}
		if opts.TLSServerName, err = resolve("tls: server_name", t.ServerName); err != nil {
			return err
		}
		opts.TLSInsecureSkipVerify = t.InsecureSkipVerify
	}
	// A store reads its CA file once, when it opens: the key holds the
	// file's content, so that a reload after the file changed (the CA
	// rotated, or a wrong one replaced) opens a store that trusts what
	// the file now holds, rather than sharing the open one, which never
	// would. A file that cannot be read stops the load, as at startup.
	var ca [sha256.Size]byte
	if opts.TLSCAFile != "" {
		pem, err := os.ReadFile(opts.TLSCAFile)
		if err != nil {
			return fmt.Errorf("store: redis: TLS CA file: %w", err)
		}
		ca = sha256.Sum256(pem)
	}
	key, err := sharedStoreKey("redis", struct {
		store.RedisOptions
		CA [sha256.Size]byte
	}{opts, ca})
	if err != nil {
		return err
	}
	data, err := redisData(opts)
	if err != nil {
		return err
	}
	routeRedisLog.Do(func() { redis.SetLogger(redisLog{}) })
	s, err := loadSharedStore(key, func() (*sharedStore, error) {
		state := new(redisState)
		opts.OnConnect = state.connected
		rs, err := store.NewRedis(opts)
		if err != nil {
			return nil, err
		}
		state.Redis = rs
		s := &sharedStore{Store: rs, data: data, redis: state, now: storeClock}
		s.drained.close = rs.Close
		return s, nil
	})
	if err != nil {
		return err
	}
	r.key, r.store = key, s
	r.checkRedis(ctx)
	return nil
}

// The warning that Redis did not answer the startup check, or answered
// but refused to run the store's scripts, then what requests get, by
// on_error.
const (
	redisCheckFailed       = "redis did not answer the edge's check at startup (PING): "
	redisScriptCheckFailed = "redis answers but refused to run the edge's scripts at its check at startup " +
		"(the edge's redis user needs EVALSHA and EVAL, and the commands and keys its scripts use): "
	redisCheckClosed = "requests that need the store will be answered 503 until it answers (emergency calls go on without it)"
	redisCheckOpen   = "requests that need the store will go on without it (no idempotency, uncounted by the limits) until it answers"
	scriptsClosed    = "requests that need the store will be answered 503 until redis runs them (emergency calls go on without it)"
	scriptsOpen      = "requests that need the store will go on without it (no idempotency, uncounted by the limits) until redis runs them"
)

// checkRedis sends one PING to Redis, in the background, once per config
// load and store (see redisState.checkFor), and warns when it fails, so
// that a wrong password, host or TLS setting shows when the config is
// loaded and not at the first request. Once Redis answers, it runs the
// store's release script by EVALSHA and EVAL on a key that cannot exist
// (store.Redis.CheckScripts, which writes nothing), and warns when Redis
// refuses it, naming the command or key Redis denied (its NOPERM, cause
// "permission"): an ACL user allowed PING but not the scripts would
// pass the PING and fail every request that needs the store. That
// warning is another than a Redis that does not answer: the one is
// fixed in Redis's ACL, the other in the URL or in Redis's health. The
// PING and the script are each given the larger of the store's timeout
// and store.StartupCheckTimeout (5s): the first connection to a remote
// Redis over TLS may take longer than an operation may (100ms by
// default) though Redis is fine, and a warning of a timeout would send
// an operator after a fault there is none of. It holds no config load
// up, whatever it waits for. The warnings name the address and the kind
// of failure (store.RedisFailure), never the URL or the password; a
// success logs a debug line only. Cleanup stops the check: an unloaded
// config warns of nothing.
func (r *RedisStore) checkRedis(ctx caddy.Context) {
	state := r.store.redis
	if !state.checkFor(configLoad(ctx)) {
		return
	}
	logger := ctx.Logger()
	check, stop := context.WithCancel(context.Background())
	r.stopCheck = stop
	then, scriptsThen := redisCheckClosed, scriptsClosed
	if r.failOpen {
		then, scriptsThen = redisCheckOpen, scriptsOpen
	}
	go func() {
		defer stop()
		addrs := zap.Strings("addrs", state.Addrs())
		err := state.Ping(check, store.StartupCheckTimeout)
		scripts := false
		if err == nil {
			err, scripts = state.CheckScripts(check, store.StartupCheckTimeout), true
		}
		cause := store.RedisFailure(err)
		switch {
		case check.Err() != nil:
			logger.Debug("startup check of redis stopped: the config was unloaded", addrs)
		case err == nil:
			logger.Debug("redis answers", addrs)
		case scripts && (cause == "permission" || cause == "reply"):
			// Redis answered the PING and refused the script: a user
			// denied EVALSHA, EVAL, a command the scripts run or the
			// store's keys (NOPERM), or a Redis that knows no scripting
			// (a renamed EVAL). A warning, not a failed load, as for a
			// PING that fails: a config load never waits for Redis (the
			// check runs in the background, and the load is done before
			// it answers), and the ACL may be fixed in Redis without a
			// reload, which the store's next call then finds.
			fields := []zap.Field{addrs, zap.String("cause", cause)}
			if denied := store.RedisDenied(err); denied != "" {
				fields = append(fields, zap.String("denied", denied))
			}
			logger.Warn(redisScriptCheckFailed+scriptsThen, append(fields, zap.Error(err))...)
		default:
			// The PING failed, or Redis stopped answering between the
			// PING and the script: Redis is down, unreachable or
			// refuses the store's credentials or TLS.
			logger.Warn(redisCheckFailed+then, addrs, zap.String("cause", cause), zap.Error(err))
		}
	}()
}

// configLoad identifies the config load of ctx: Caddy gives each load a
// file system map of its own and hands it to every module of that load,
// while ctx.Context differs between the servers of one load.
func configLoad(ctx caddy.Context) any { return ctx.FileSystems() }

// redisData names the keys of the Redis store of opts (see
// sharedStore.data): where Redis is (the URL's host, port and db, the
// sentinels' master or the cluster's nodes) and the key prefix, hashed
// as the usage pool's keys are; not the user, the password, the TLS
// settings or the timeout, which change how the store reaches the keys,
// not which. The host, port and db are as go-redis reads them, so that
// URLs that leave out the port (6379) or the db (0), or spell the host
// in other letter case, name the same keys.
func redisData(opts store.RedisOptions) (string, error) {
	where := opts.URL
	if o, err := redis.ParseURL(opts.URL); err == nil {
		where = strings.ToLower(o.Addr) + "/" + strconv.Itoa(o.DB)
	}
	return sharedStoreKey("redis", struct {
		Where, Master, Prefix string
		Cluster               bool
		Addrs                 []string
	}{where, opts.MasterName, cmp.Or(opts.KeyPrefix, store.DefaultKeyPrefix), opts.Cluster, opts.Addrs})
}

// Cleanup stops the startup check and lets go of the store.
func (r *RedisStore) Cleanup() error {
	if r.stopCheck != nil {
		r.stopCheck()
	}
	return releaseSharedStore(r.key)
}

func (r *RedisStore) shared() (*sharedStore, bool) { return r.store, r.failOpen }

// routeRedisLog routes go-redis's log, which is process-wide, to Caddy's
// once.
var routeRedisLog sync.Once

// redisLog writes go-redis's own messages (about connections, pools,
// sentinels and cluster nodes, never keys, values or passwords) to
// Caddy's current log as debug lines of the logger
// http.handlers.ucwa.stores.redis: go-redis writes one for every failed
// dial, while the handler warns once per outage.
type redisLog struct{}

func (redisLog) Printf(_ context.Context, format string, v ...any) {
	if c := caddy.Log().Named("http.handlers.ucwa.stores.redis").Check(zap.DebugLevel, "go-redis"); c != nil {
		c.Write(zap.String("message", fmt.Sprintf(format, v...)))
	}
}

// storeUse is a handler's use of its store: the shared store, what to do
// when it fails, and the handler's logger and metrics.
type storeUse struct {
	*sharedStore
	failOpen bool
	errors   prometheus.Counter // caddy_ucwa_store_errors_total{on_error}
	logger   *zap.Logger
}

// reserve is Reserve of a reservation for owner: the caller a memory
// store, or a Redis store with max_entries_per_caller, counts it for
// (see intake.appendStoreOwner, redisOwner), which it is given without
// a context (store.WithOwner) to carry it.
func (s *storeUse) reserve(ctx context.Context, owner, key, value string, ttl time.Duration) (bool, string, error) {
	switch {
	case s.memory != nil:
		return s.memory.ReserveFor(owner, key, value, ttl)
	case s.redis != nil:
		return s.redis.ReserveFor(ctx, owner, key, value, ttl)
	}
	return s.Reserve(ctx, key, value, ttl)
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
// values for the owner in owners (see reserve), for ttl, and ends each
// key's call as begun at epoch (see end). A Redis store renews them in
// one round trip for every 500 (see store.Redis.Renew), each key's count
// in its owner's share with it; another, one after another (the memory
// store's Replace does not wait, and its share counts each key while
// it lives).
func (s *storeUse) renew(ctx context.Context, epoch uint64, owners, keys, values []string, ttl time.Duration) {
	if s.redis != nil {
		for _, err := range s.redis.Renew(ctx, owners, keys, values, ttl) {
			s.end(epoch, err)
		}
		return
	}
	for i, key := range keys {
		_, err := s.Replace(ctx, key, values[i], values[i], ttl)
		s.end(epoch, err)
	}
}

// replace is Replace of a reservation of owner (see reserve): a Redis
// store with max_entries_per_caller has the key's count in the owner's
// share follow its new TTL (see store.Redis.ReplaceFor), as the memory
// store's share counts a key while it lives.
func (s *storeUse) replace(ctx context.Context, owner, key, expect, value string, ttl time.Duration) (bool, error) {
	if s.redis != nil {
		return s.redis.ReplaceFor(ctx, owner, key, expect, value, ttl)
	}
	return s.Replace(ctx, key, expect, value, ttl)
}

// release releases the reservations of keys, each held with its value
// in values for owner (see reserve), and ends each key's call (see
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
		_, err := s.Release(ctx, key, values[i])
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
func (h *Handler) failStore(w http.ResponseWriter, in *intake, err error) error {
	e := storeError(err)
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
		if r := s.redis; r != nil {
			if due := r.readingDue.Load(); due != readingDone && monotonicNow() >= due && r.readingDue.CompareAndSwap(due, readingDone) {
				r.reading.Store(true)
				go s.readRedis()
			}
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
// that cannot take requests): at its first occurrence, then once every
// warnEvery at most, with the occurrences since the last warning.
type throttledWarning struct {
	now func() time.Time // the clock; nil: the wall clock
	// once: warn at the first occurrence only, for a condition the
	// config itself makes lasting, which a warning every minute would
	// only repeat.
	once   bool
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
func (f *throttledWarning) note(warn func(events uint64)) {
	f.events.Add(1)
	if !f.mu.TryLock() {
		return
	}
	defer f.mu.Unlock()
	// Read under the lock: a count taken before it could be older than
	// the one the last warning went up to.
	n := f.events.Load()
	now := time.Now()
	if f.now != nil {
		now = f.now()
	}
	if !f.warnedAt.IsZero() && (f.once || now.Sub(f.warnedAt) < warnEvery) {
		return
	}
	f.warnedAt = now
	warn(n - f.warnedUpTo.Swap(n))
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

// redisNoShareWarning is the warning, once per config load, that
// idempotency keeps its reservations in a Redis store that bounds no
// caller's share of it: a Redis store has none by default, for one that
// an upgrade gave would start refusing callers that hold more, but
// without one a caller that sends many distinct operationIds fills
// Redis for every caller of every edge. It names no value: the store's
// URL and prefix are the operator's to know.
const redisNoShareWarning = "idempotency uses a redis store without max_entries_per_caller: " +
	"one caller sending many distinct operationIds within the window can fill redis for every caller of every edge that shares it; " +
	"set max_entries_per_caller where callers are not all trusted (said once per config load)"

// redisEvictionWarning is the message of the warning that Redis may
// evict the store's keys.
const redisEvictionWarning = "redis may evict the edge's keys to make room " +
	"(maxmemory set, maxmemory-policy not noeviction), and an evicted reservation no longer keeps its request from a second delivery; " +
	"set maxmemory-policy noeviction: a full Redis then refuses writes, which the edge takes as the store failing (on_error)"

// redisPersistenceWarning is the message of the warning that Redis
// does not write the store's keys to disk as it takes them.
const redisPersistenceWarning = "redis does not persist the edge's keys as it writes them (appendonly no): " +
	"if it restarts, the reservations and limits it held (all of them, or those since its last snapshot) are gone, " +
	"and a repeat of a request made before may be delivered again; set appendonly yes"

// redisRestartWarning is the message of the warning that the Redis that
// answers is another run of the server than the one read before.
const redisRestartWarning = "redis restarted or failed over (its run_id changed): " +
	"reservations and limits made before may be gone (all of them if it does not persist its writes, " +
	"the last writes it had not written to disk or to the promoted replica otherwise), " +
	"and a repeat of a request made before may be delivered again"

// redisReplicationWarning is the message of the warning that Redis
// replicates the store's keys without waiting for a replica.
const redisReplicationWarning = "redis has replicas but acknowledges writes no replica has (min-replicas-to-write not set): " +
	"a failover, a planned one too, loses the reservations and limits the master took in its last moment (about a second), " +
	"and a repeat of such a request may be delivered again; set min-replicas-to-write 1 and min-replicas-max-lag, with two replicas or more " +
	"(with one, the master refuses writes while it is away, and the edge follows on_error)"

// readRedis reads the Redis store's eviction policy, persistence,
// replication and run_id. It warns when Redis may evict the store's keys
// (managed Redis services often default to a volatile-* policy, which
// evicts them all: every key of the store has a TTL), when it would lose
// them in a restart (appendonly no, Redis's default), and when it has
// replicas but does not wait for them before it acknowledges a write (a
// failover loses the last writes): each way a repeat of a request whose
// reservation is gone is delivered again. It warns too when the run_id
// changed since the last reading: Redis restarted or failed over, and
// may have lost the keys already. A reading after a new connection alone
// (quiet) logs only that.
func (s *storeUse) readRedis() {
	r := s.redis
	// One reading at a time, so that a reading that began before a
	// restart does not compare its run_id with a later reading's.
	r.mu.Lock()
	defer r.mu.Unlock()
	// The reading's last line, logged once it is over: a connection
	// opened once the line is in the log calls for a reading of its own
	// (see connected).
	var last func()
	defer func() {
		r.reading.Store(false)
		if last != nil {
			last()
		}
	}()
	quiet := r.quiet.Swap(true)
	d, err := r.Durability(context.Background())
	if err != nil {
		r.quiet.Store(false)
	}
	switch {
	case errors.Is(err, store.ErrClosed):
		// A reload or a shutdown closed the store: nothing to tell.
		return
	case err != nil:
		// INFO may be refused (an ACL), or Redis, just back, slow: read
		// it again at a success after a wait that doubles each time.
		retry := min(max(2*time.Duration(r.retry.Load()), minReadingRetry), maxReadingRetry)
		r.retry.Store(int64(retry))
		r.readingDue.CompareAndSwap(readingDone, monotonicNow()+int64(retry))
		s.logger.Warn("could not read the eviction policy and persistence of redis (it may evict the edge's keys, or lose them in a restart); reading them again later",
			zap.Duration("retry_in", retry), zap.Error(err))
		return
	}
	// A cluster's readings, from any node, have no run_id to compare.
	previous := r.runID
	restarted := d.RunID != "" && previous != "" && d.RunID != previous
	if d.RunID != "" {
		r.runID = d.RunID
	}
	if restarted {
		s.logger.Warn(redisRestartWarning, zap.String("run_id", d.RunID), zap.String("previous_run_id", previous))
	}
	if restarted || !quiet {
		if !d.AppendOnly {
			s.logger.Warn(redisPersistenceWarning)
		}
		if d.Replicas > 0 && !d.WritesNeedReplicas {
			s.logger.Warn(redisReplicationWarning, zap.Int("replicas", d.Replicas))
		}
		if d.Evicts {
			s.logger.Warn(redisEvictionWarning, zap.String("maxmemory_policy", d.EvictionPolicy))
		} else {
			s.logger.Info("redis keeps the edge's keys until they expire", zap.String("maxmemory_policy", d.EvictionPolicy), zap.Bool("aof_enabled", d.AppendOnly))
		}
	}
	// Last, so that the lines above are in the log once it is.
	last = func() {
		s.logger.Debug("read redis's durability", zap.String("maxmemory_policy", d.EvictionPolicy), zap.Bool("aof_enabled", d.AppendOnly),
			zap.String("run_id", d.RunID), zap.Bool("restarted", restarted), zap.Bool("quiet", quiet && !restarted))
	}
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
		return nil, d.ArgErr()
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
			return nil, d.ArgErr()
		}
		if err := directive.Block(d, d.Nesting(), "store", nil, func(name string) error {
			switch name {
			case "on_error":
				return directive.Word(d, &m.OnError, onErrorClosed, onErrorOpen)
			case "max_entries_per_caller":
				return unmarshalPerCaller(d, "memory", &m.MaxEntriesPerCaller)
			}
			return d.Errf("store memory: unrecognized option %q", name)
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

// unmarshalBlock parses the block of `store redis`.
func (r *RedisStore) unmarshalBlock(d *caddyfile.Dispenser) error {
	return directive.Block(d, d.Nesting(), "store", nil, func(name string) error {
		switch name {
		case "timeout":
			return directive.NonZeroDuration(d, &r.Timeout, "100ms")
		case "on_error":
			return directive.Word(d, &r.OnError, onErrorClosed, onErrorOpen)
		case "password":
			return directive.OneArg(d, &r.Password)
		case "key_prefix":
			return directive.OneArg(d, &r.KeyPrefix)
		case "max_entries_per_caller":
			return unmarshalPerCaller(d, "redis", &r.MaxEntriesPerCaller)
		case "tls":
			if d.NextArg() {
				return d.ArgErr()
			}
			r.TLS = new(RedisTLS)
			return directive.Block(d, d.Nesting(), "tls", nil, func(option string) error {
				switch option {
				case "ca":
					return directive.OneArg(d, &r.TLS.CA)
				case "server_name":
					return directive.OneArg(d, &r.TLS.ServerName)
				case "insecure_skip_verify":
					if d.NextArg() {
						return d.ArgErr()
					}
					r.TLS.InsecureSkipVerify = true
					return directive.NoBlock(d, option)
				}
				return d.Errf("tls: unrecognized option %q", option)
			})
		case "sentinel":
			args, err := directive.Args(d)
			if err != nil {
				return err
			}
			r.SentinelMaster, r.Addrs = args[0], append(r.Addrs, args[1:]...)
			return nil
		case "cluster":
			r.Cluster = true
			r.Addrs = append(r.Addrs, d.RemainingArgs()...)
			return directive.NoBlock(d, name)
		}
		return d.Errf("store redis: unrecognized option %q", name)
	})
}

// Interface guards
var (
	_ storeBackend       = (*MemoryStore)(nil)
	_ storeBackend       = (*RedisStore)(nil)
	_ caddy.Provisioner  = (*MemoryStore)(nil)
	_ caddy.Provisioner  = (*RedisStore)(nil)
	_ caddy.CleanerUpper = (*MemoryStore)(nil)
	_ caddy.CleanerUpper = (*RedisStore)(nil)
	_ caddy.Destructor   = (*sharedStore)(nil)
)
