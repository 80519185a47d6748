package caddymodule

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/ucwa-edge/caddy-ucwa/internal/bearer"
	"github.com/ucwa-edge/caddy-ucwa/internal/directive"
	"github.com/ucwa-edge/caddy-ucwa/internal/fileload"
	"github.com/ucwa-edge/caddy-ucwa/internal/store"
)

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
	// startReading starts a reading (see redisReadings).
	startReading func(read func())
	mu           sync.Mutex // held by a reading, from its start to its end
	runID        string     // guarded by mu: of the last reading, "" for none

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

// redisReadings starts a reading of Redis (see storeUse.readRedis) of the
// stores made from then on: in the background, as a request's store call
// that finds it due must not wait for it. A test sets it before it loads a
// config, to know when a reading is over or to hold one back.
var redisReadings = func(read func()) { go read() }

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
// when that is longer than Timeout) and warns when that fails; once
// Redis answers the check, it reads Redis's eviction policy and
// persistence, and warns of what they lack.
type RedisStore struct {
	// Where Redis is: redis://[user:password@]host:port/db, or rediss://
	// for TLS. The port defaults to 6379 and db to 0; query parameters are
	// refused. It may hold global placeholders such as
	// {env.UCWA_REDIS_URL}, read at startup. Required.
	URL string `json:"url"`

	// The password, in the place of the URL's. Give it as a placeholder
	// such as {env.UCWA_REDIS_PASSWORD}, read at startup, so that the
	// secret is neither in the config nor in its adapted JSON; it is never
	// logged. A user in the URL needs a password, here or in the URL;
	// given in both, this one is used, and startup warns of it.
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
	// tlsURL: the URL is rediss, whose check's timeout may be a port
	// that speaks plain Redis (see redisTLSTimeoutHint).
	tlsURL bool
}

// RedisTLS is the TLS configuration of a rediss URL.
type RedisTLS struct {
	// A PEM file of the CAs that sign the server's certificate; it may
	// hold placeholders; 4 MiB at most. It is read at each config load: a reload after
	// it changed trusts what it then holds (a config of otherwise the
	// same settings opens a store of its own). A start or reload waits
	// for it 10s at most, and one that takes longer (a file system that
	// hangs) stops it, as an unreadable file does; that read goes on, and
	// a start or reload that comes before it returns waits for it, 10s at
	// most too, rather than reading the file again. Default: the
	// system's roots.
	CA string `json:"ca,omitempty"`

	// The name the server's certificate must carry. Default: the URL's
	// host.
	ServerName string `json:"server_name,omitempty"`

	// Accept any server certificate: for tests only. Default: false.
	InsecureSkipVerify bool `json:"insecure_skip_verify,omitempty"`
}

// minRedisTimeout is the shortest timeout a Redis store takes.
const minRedisTimeout = time.Millisecond

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
		return fmt.Errorf("key_prefix: %w", bearer.EnvHint(err, r.KeyPrefix))
	}
	if opts.URL, err = resolve("url", r.URL); err != nil {
		return err
	}
	if opts.Password, err = resolve("password", r.Password); err != nil {
		return err
	}
	// A URL that does not parse is refused by store.NewRedis below,
	// without quoting it.
	u, parseErr := url.Parse(opts.URL)
	r.tlsURL = parseErr == nil && strings.EqualFold(u.Scheme, "rediss")
	if parseErr == nil && opts.Password != "" {
		if _, inURL := u.User.Password(); inURL {
			// Two passwords where an operator meant one: say which is
			// used, before a WRONGPASS sends them after the other.
			ctx.Logger().Warn("a password is given in the URL and as password: password is used, the URL's is not")
		}
	}
	if t := r.TLS; t != nil {
		// A tls block of no options on a redis URL would leave the
		// connection in the clear, though the config asks for TLS.
		if parseErr == nil && u.Scheme == "redis" {
			return errors.New("store: redis: TLS options need a rediss URL")
		}
		caFile, err := resolve("tls: ca", t.CA)
		if err != nil {
			return err
		}
		// Read at each load, and only here: the store's key holds the
		// file's content, so that a reload after the file changed (the
		// CA rotated, or a wrong one replaced) opens a store that trusts
		// what the file now holds, rather than sharing the open one,
		// which never would. A file that cannot be read, or not within
		// fileload.Wait (a file system that hangs), stops the load, as at
		// startup.
		if caFile != "" {
			if opts.TLSCA, err = fileload.Read(caFile, fileLoadAfterFunc); err != nil {
				return fmt.Errorf("store: redis: TLS CA file: %w", err)
			}
		}
		if opts.TLSServerName, err = resolve("tls: server_name", t.ServerName); err != nil {
			return err
		}
		opts.TLSInsecureSkipVerify = t.InsecureSkipVerify
	}
	key, err := sharedStoreKey("redis", opts)
	if err != nil {
		return err
	}
	data, err := redisData(opts)
	if err != nil {
		return err
	}
	routeRedisLog.Do(func() { redis.SetLogger(redisLog{}) })
	s, err := loadSharedStore(key, func() (*sharedStore, error) {
		state := &redisState{startReading: redisReadings}
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
	// redisTLSTimeoutHint goes with a check of a rediss URL that timed
	// out: a Redis port without TLS reads the TLS handshake as the start
	// of a command and waits for its end, so that nothing tells a port
	// of the wrong kind from a Redis that does not answer.
	redisTLSTimeoutHint = "the URL is rediss: a port that serves Redis without TLS never answers the TLS handshake; check that it serves TLS, or write redis:// for one that does not"
	redisCheckClosed    = "requests that need the store will be answered 503 until it answers (emergency calls go on without it)"
	redisCheckOpen      = "requests that need the store will go on without it (no idempotency, uncounted by the limits) until it answers"
	scriptsClosed       = "requests that need the store will be answered 503 until redis runs them (emergency calls go on without it)"
	scriptsOpen         = "requests that need the store will go on without it (no idempotency, uncounted by the limits) until redis runs them"
)

// redisCheckLeast is the least time the startup check gives the PING
// and the script (see checkRedis): store.StartupCheckTimeout, but for
// tests of a Redis that never answers, whose warning is the same after
// any wait and which shorten it rather than wait 5s.
var redisCheckLeast = store.StartupCheckTimeout

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
// success logs a debug line, and starts the reading of Redis's
// durability (storeUse.readRedis) when one is due, so that the load,
// not the first request that uses the store, warns of an eviction
// policy or a persistence that may lose the store's keys. Cleanup stops
// the check: an unloaded config warns of nothing.
func (r *RedisStore) checkRedis(ctx caddy.Context) {
	state := r.store.redis
	if !state.checkFor(configLoad(ctx)) {
		return
	}
	logger := ctx.Logger()
	check, stop := context.WithCancel(context.Background())
	r.stopCheck = stop
	then, scriptsThen := redisCheckClosed, scriptsClosed
	least := redisCheckLeast
	if r.failOpen {
		then, scriptsThen = redisCheckOpen, scriptsOpen
	}
	go func() {
		defer stop()
		addrs := zap.Strings("addrs", state.Addrs())
		err := state.Ping(check, least)
		scripts := false
		if err == nil {
			err, scripts = state.CheckScripts(check, least), true
		}
		cause := store.RedisFailure(err)
		switch {
		case check.Err() != nil:
			logger.Debug("startup check of redis stopped: the config was unloaded", addrs)
		case err == nil:
			logger.Debug("redis answers", addrs)
			// Its durability is read now, so that a config load warns of
			// what it lacks, not the first request that uses the store.
			(&storeUse{sharedStore: r.store, failOpen: r.failOpen, logger: logger, readingLogger: logger}).readIfDue()
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
			fields := []zap.Field{addrs, zap.String("cause", cause)}
			if cause == "timeout" && r.tlsURL {
				fields = append(fields, zap.String("hint", redisTLSTimeoutHint))
			}
			logger.Warn(redisCheckFailed+then, append(fields, zap.Error(err))...)
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

// readIfDue starts a reading of Redis (see readRedis) if one is due:
// Redis answered the startup check, or a store call.
func (s *storeUse) readIfDue() {
	r := s.redis
	if due := r.readingDue.Load(); due != readingDone && monotonicNow() >= due && r.readingDue.CompareAndSwap(due, readingDone) {
		r.reading.Store(true)
		r.startReading(s.readRedis)
	}
}

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
	case errors.Is(err, store.ErrUnavailable) && s.health.Load()&1 == 1:
		// Redis went away under the reading (a success from before an
		// outage began it): the outage's own warning tells, and the
		// Redis that answers next, perhaps restarted, is to be read at
		// its first success, not a retry's wait later.
		r.readingDue.CompareAndSwap(readingDone, 0)
		return
	case err != nil:
		// INFO may be refused (an ACL), or Redis, just back, slow: read
		// it again at a success after a wait that doubles each time.
		retry := min(max(2*time.Duration(r.retry.Load()), minReadingRetry), maxReadingRetry)
		r.retry.Store(int64(retry))
		r.readingDue.CompareAndSwap(readingDone, monotonicNow()+int64(retry))
		s.readingLogger.Warn("could not read the eviction policy and persistence of redis (it may evict the edge's keys, or lose them in a restart); reading them again later",
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
		s.readingLogger.Warn(redisRestartWarning, zap.String("run_id", d.RunID), zap.String("previous_run_id", previous))
	}
	if restarted || !quiet {
		if !d.AppendOnly {
			s.readingLogger.Warn(redisPersistenceWarning)
		}
		if d.Replicas > 0 && !d.WritesNeedReplicas {
			s.readingLogger.Warn(redisReplicationWarning, zap.Int("replicas", d.Replicas))
		}
		if d.Evicts {
			s.readingLogger.Warn(redisEvictionWarning, zap.String("maxmemory_policy", d.EvictionPolicy))
		} else {
			s.readingLogger.Info("redis does not evict the edge's keys", zap.String("maxmemory_policy", d.EvictionPolicy), zap.Bool("aof_enabled", d.AppendOnly))
		}
	}
	// Last, so that the lines above are in the log once it is.
	last = func() {
		s.readingLogger.Debug("read redis's durability", zap.String("maxmemory_policy", d.EvictionPolicy), zap.Bool("aof_enabled", d.AppendOnly),
			zap.String("run_id", d.RunID), zap.Bool("restarted", restarted), zap.Bool("quiet", quiet && !restarted))
	}
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
				return directive.ArgCount(d, name, "no argument, then a block (ca <file>)")
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
						return directive.ArgCount(d, option, "no argument")
					}
					r.TLS.InsecureSkipVerify = true
					return directive.NoBlock(d, option)
				}
				return unrecognized(d, "tls", "option", option)
			})
		case "sentinel":
			args, err := directive.Args(d)
			if err != nil {
				return err
			}
			if args[0] == "" {
				// JSON's "no sentinel": the URL's host would be taken
				// for the master itself.
				return d.Err(`sentinel: a master named "" is read as no sentinel: give the master's name`)
			}
			r.SentinelMaster, r.Addrs = args[0], append(r.Addrs, args[1:]...)
			return nil
		case "cluster":
			r.Cluster = true
			r.Addrs = append(r.Addrs, d.RemainingArgs()...)
			return directive.NoBlock(d, name)
		}
		return unrecognized(d, "store redis", "option", name)
	})
}

// Interface guards
var (
	_ storeBackend       = (*RedisStore)(nil)
	_ caddy.Provisioner  = (*RedisStore)(nil)
	_ caddy.CleanerUpper = (*RedisStore)(nil)
)
