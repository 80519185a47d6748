package store

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// DefaultRedisTimeout bounds each Redis operation whose RedisOptions.Timeout
// is zero: a loopback or same-site round trip takes well under a
// millisecond, and an edge must answer or refuse long before a client
// gives up.
const DefaultRedisTimeout = 100 * time.Millisecond

// DefaultKeyPrefix starts every key a Redis store writes whose
// RedisOptions.KeyPrefix is empty.
const DefaultKeyPrefix = "ucwa:"

// RedisOptions configures a Redis store.
type RedisOptions struct {
	// URL locates Redis: redis://[user:password@]host:port/db, or
	// rediss://... for TLS. The port defaults to 6379 and db to 0. Query
	// parameters are refused: every setting is a field here. Required.
	URL string

	// Password, when not empty, replaces the URL's password, so that the
	// password need not be written in the URL.
	Password string

	// MasterName, when not empty, makes the store follow the master of
	// that name through Redis Sentinel: the URL's host and Addrs are then
	// sentinels. The URL's user, password and db are the master's; the
	// sentinels are reached without credentials.
	MasterName string

	// Cluster makes the store a Redis Cluster client: the URL's host and
	// Addrs are then nodes to learn the cluster from, and db must be 0.
	Cluster bool

	// Addrs are more host:port addresses for MasterName or Cluster.
	Addrs []string

	// Timeout bounds each operation, from the caller's call to its
	// answer: it is the dial, read, write and connection-pool timeouts
	// of the client, and the operation's context ends within it (and
	// no sooner than 15/16 of it: see operationDeadlines).
	// Default: DefaultRedisTimeout.
	Timeout time.Duration

	// KeyPrefix starts every key the store writes: reservations at
	// KeyPrefix+key, and limits at "rate:"+KeyPrefix+key (the prefix of
	// the redis_rate library comes first), or with Cluster at
	// "rate:"+KeyPrefix+"{limits}:"+key: AllowAll takes from several
	// limits in one script, whose keys a cluster needs in one hash slot,
	// so every limit lives in the slot of the hash tag {limits}; there
	// too, for a minute past the timeout, a marker of each take that
	// takes and each refund, at "rate:"+KeyPrefix+"{limits}:ran:" and 32
	// random hex digits. With Cluster it must not make that tag void
	// (hold "{}" before any other '}'). Default: DefaultKeyPrefix.
	KeyPrefix string

	// MaxPerOwner bounds how many reservations one owner (see Store)
	// holds, each until its key expires or is released for the owner
	// (see Release, Replace), counted in Redis for every store that
	// shares it, so that one owner cannot fill Redis for all: a
	// reservation over it fails with ErrOwnerFull (see Redis.Reserve).
	// Default: 0, no bound but Redis's maxmemory; the store then writes
	// no key and sends no command more than without owners.
	MaxPerOwner int

	// TLSCA is the PEM of the CAs that sign the server's certificate,
	// for rediss URLs: the content of the config's CA file, which the
	// caller reads (it bounds the read, and keys its stores by what the
	// file holds); an empty one (an empty file) holds no certificate
	// and is refused. Default: nil, the system's roots.
	TLSCA []byte

	// TLSServerName is the name the server's certificate must carry, for
	// rediss URLs. Default: the URL's host.
	TLSServerName string

	// TLSInsecureSkipVerify accepts any server certificate, for rediss
	// URLs. Off by default; meant for tests only.
	TLSInsecureSkipVerify bool

	// OnConnect, when not nil, is called each time the store opens a
	// connection, before the connection's first command, in the operation
	// that needed it: it must return at once. A new connection may reach
	// another run of the server (see RedisDurability.RunID) without any
	// operation failing first: go-redis drops a pooled connection that
	// the server closed and dials again. It is not called with Cluster;
	// with MasterName it is called for connections to the sentinels too.
	// It is not a setting, and is left out of the options' JSON.
	OnConnect func() `json:"-"`
}

// Redis is a Store in Redis, shared by every edge that uses the same Redis
// and key prefix. Each operation is one round trip (a Lua script; with
// MaxPerOwner, a reservation's script and its owner's count in one
// pipeline, see reserveOwned, and a release's or a renewal's with the
// count's, see ownedCalls), bounded by the store's timeout. A failed operation is not retried, because a retried
// write may find its own first attempt, with two exceptions. The
// reservations' scripts are sent again, within the timeout, after their
// connection ended before the reply (see connectionEnded): Redis closed
// it (a restart, a failover's CLIENT KILL, its idle timeout) before the
// command reached it, or after it ran it. go-redis looks for a pooled
// connection that Redis closed before it sends a command on it, but not
// on the reservations' connections without Sentinel or Cluster (see
// uncheckedDial), nor on a TLS connection with Cluster, and not for one
// closed between the look and the command; a request would otherwise be
// refused for a connection that was gone. Without Cluster the limits'
// scripts run on connections that go-redis looks into, TLS ones too (see
// checkedTLSDial): those of a client of their own, or with Sentinel of
// the one client, the reservations' too. And with Cluster, go-redis's
// cluster client sends any command again after its connection ended
// before the reply, which it does not let a caller turn off without
// turning off MOVED and ASK too. A Reserve run twice answers the value
// it set (see Store.Reserve); a Replace or a Release run twice answers
// false the second time, having done its work the first; and the
// limits' scripts, sent again by the cluster client only, carry a marker
// that makes a second run take and give back nothing (see ranMarker).
// The client reconnects by itself when Redis comes back.
type Redis struct {
	// client runs the limits' scripts and the checks (INFO, PING), on
	// connections that go-redis looks into (see checkedTLSDial), but
	// with Cluster over TLS;
	// reservations, the reservations' scripts (see uncheckedDial): the
	// same client with Sentinel or Cluster.
	client       redis.UniversalClient
	reservations redis.UniversalClient
	prefix       string
	// limitPrefix starts the keys of limits after redis_rate's "rate:":
	// prefix, and with a cluster the hash tag that puts them in one slot.
	limitPrefix string
	// maxPerOwner is RedisOptions.MaxPerOwner (0: no bound), and
	// maxPerOwnerArg the same in decimal, an argument of ownerScript.
	maxPerOwner    int
	maxPerOwnerArg string
	// ranPrefix starts the keys of ran markers, with a cluster, and
	// ranTTL is their TTL in milliseconds, made once (see ranMarker).
	ranPrefix string
	ranTTL    any
	timeout   time.Duration
	// deadlines bound each operation by timeout.
	deadlines *operationDeadlines
	cluster   bool
	// attempts is how many times at most a reservation's script is
	// sent (see retries).
	attempts int
	// unanswered counts the reservations' connections that ended before
	// any reply (see uncheckedConn); nil with Sentinel or Cluster.
	unanswered *atomic.Uint32
	// addrs are the addresses the client dials first: the URL's
	// host:port, then the sentinels or cluster nodes of Addrs.
	addrs []string
	// options are the client's, for a client of other timeouts (see
	// Ping).
	options   *redis.UniversalOptions
	closeOnce sync.Once
	closeErr  error
}

var _ Store = (*Redis)(nil)

// Timeout is the bound of each operation: RedisOptions.Timeout, else
// DefaultRedisTimeout.
func (r *Redis) Timeout() time.Duration { return r.timeout }

// NewRedis returns a Redis store. It does not connect: the first operation
// does, so an edge starts while Redis is down. Its errors never carry the
// URL or the password.
func NewRedis(opts RedisOptions) (*Redis, error) {
	if opts.URL == "" {
		return nil, errors.New("store: redis: a URL is required")
	}
	u, err := url.Parse(opts.URL)
	if err != nil {
		// The parser's error quotes the part it could not read, which
		// may be the password's (a '/', '#' or '?' in it ends the
		// authority early): none of it is told.
		return nil, errors.New("store: redis: invalid URL: it cannot be read (a port that is not a number, a bad %-escape, or a '/', '#', '?' or '@' in the password, which ends the host early: percent-encode them, or give the password in password)")
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, errors.New("store: redis: the URL's scheme must be redis or rediss")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return nil, errors.New("store: redis: the URL must not have query parameters or a fragment")
	}
	// go-redis would dial localhost for a URL without a host, and a port
	// or db it cannot use fails only at the first operation.
	if u.Hostname() == "" {
		return nil, errors.New("store: redis: the URL has no host")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, errors.New("store: redis: the URL's port must be between 1 and 65535")
		}
	}
	parsed, err := redis.ParseURL(opts.URL)
	if err != nil {
		// The scheme, query and port are checked above: what is left is
		// the path, which go-redis's error quotes, and which holds the
		// rest of a password with a '/' whose part before it reads as a
		// port (redis://edge:42/s3cret@host, redis://edge:/s3cret@host):
		// none of it is told.
		return nil, errors.New("store: redis: invalid URL: its path is not a db number (/0) (percent-encode a '/' in the password, or give it in password)")
	}
	if parsed.DB < 0 {
		return nil, errors.New("store: redis: the URL's db must not be negative")
	}
	if opts.MasterName != "" && opts.Cluster {
		return nil, errors.New("store: redis: a sentinel master name and cluster exclude each other")
	}
	if len(opts.Addrs) > 0 && opts.MasterName == "" && !opts.Cluster {
		return nil, errors.New("store: redis: more addresses need a sentinel master name or cluster")
	}
	for _, a := range opts.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, errors.New("store: redis: an address must be host:port")
		}
	}
	if opts.Cluster && parsed.DB != 0 {
		return nil, errors.New("store: redis: a cluster has only db 0")
	}
	if opts.MaxPerOwner < 0 {
		return nil, errors.New("store: redis: max per owner must not be negative")
	}
	timeout := opts.Timeout
	switch {
	case timeout < 0:
		return nil, errors.New("store: redis: the timeout must not be negative")
	case timeout == 0:
		timeout = DefaultRedisTimeout
	}
	prefix := opts.KeyPrefix
	if prefix == "" {
		prefix = DefaultKeyPrefix
	}
	limitPrefix := prefix
	if opts.Cluster {
		limitPrefix += clusterLimitTag
		if hashTag(redisRatePrefix+limitPrefix+"a") != hashTag(redisRatePrefix+limitPrefix+"b") {
			return nil, errors.New(`store: redis: with cluster, the key prefix must not hold "{}" before any other '}': the limits' keys would not share a hash slot`)
		}
	}
	if opts.Password != "" {
		parsed.Password = opts.Password
	}
	if parsed.Username != "" && parsed.Password == "" {
		// go-redis authenticates only with a password: it would drop the
		// user and run every command as the default user. An ACL user
		// with nopass takes any password.
		return nil, errors.New("store: redis: the URL's user needs a password, in the URL or as the password option")
	}
	tlsConfig, err := redisTLS(u.Scheme == "rediss", parsed.TLSConfig, opts)
	if err != nil {
		return nil, err
	}
	var onConnect func(context.Context, *redis.Conn) error
	if opts.OnConnect != nil && !opts.Cluster {
		onConnect = func(context.Context, *redis.Conn) error {
			opts.OnConnect()
			return nil
		}
	}
	uopts := &redis.UniversalOptions{
		Addrs:         append([]string{parsed.Addr}, opts.Addrs...),
		MasterName:    opts.MasterName,
		IsClusterMode: opts.Cluster,
		Username:      parsed.Username,
		Password:      parsed.Password,
		DB:            parsed.DB,
		TLSConfig:     tlsConfig,
		OnConnect:     onConnect,

		DialTimeout:           timeout,
		ReadTimeout:           timeout,
		WriteTimeout:          timeout,
		PoolTimeout:           timeout,
		ContextTimeoutEnabled: true,
		// One dial per attempt and no retries: the timeout is the whole
		// budget, and a retried write could find its own first attempt
		// (a retried Reserve would report the key taken). A cluster
		// client retries all the same (see Redis).
		DialerRetries: 1,
		MaxRetries:    -1,
		// Maintenance notifications are a Redis Enterprise feature; asking
		// an open-source Redis for them costs a round trip per connection.
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	var client, reservations redis.UniversalClient
	var unanswered *atomic.Uint32
	if opts.MasterName == "" && !opts.Cluster {
		// Without Sentinel or Cluster the reservations have a client of
		// their own, whose connections count those that end before any
		// reply (see retries), and the limits' scripts and the checks
		// another, whose pooled connections go-redis looks into before
		// a command, over TLS too (see checkedTLSDial). The options kept
		// (r.options, which Ping copies) dial as go-redis does.
		unanswered = new(atomic.Uint32)
		ropts := *uopts
		ropts.Dialer = uncheckedDial(timeout, tlsConfig, unanswered)
		reservations = newRedisClient(&ropts)
		lopts := *uopts
		if tlsConfig != nil {
			lopts.Dialer = checkedTLSDial(timeout, tlsConfig)
		}
		client = newRedisClient(&lopts)
	} else {
		// With Sentinel over TLS the failover client dials the master,
		// and the sentinels, with the options' dialer: checkedTLSDial,
		// so that go-redis looks into their pooled connections, as
		// without TLS, for the limits' scripts and the reservations'
		// alike (they share the client). Not with Cluster, whose client
		// sends a command again after its connection ended. The options
		// kept (r.options, which Ping copies) dial as go-redis does.
		fopts := *uopts
		if tlsConfig != nil && opts.MasterName != "" {
			fopts.Dialer = checkedTLSDial(timeout, tlsConfig)
		}
		client = newRedisClient(&fopts)
		reservations = client
	}
	return &Redis{
		client:         client,
		reservations:   reservations,
		prefix:         prefix,
		limitPrefix:    limitPrefix,
		maxPerOwner:    opts.MaxPerOwner,
		maxPerOwnerArg: strconv.Itoa(opts.MaxPerOwner),
		ranPrefix:      redisRatePrefix + limitPrefix + ranMarker,
		ranTTL:         (timeout + ranMarkerTTL).Milliseconds(),
		timeout:        timeout,
		deadlines:      newOperationDeadlines(timeout),
		attempts:       redisPoolSize(uopts) + 1,
		unanswered:     unanswered,
		cluster:        opts.Cluster,
		addrs:          uopts.Addrs,
		options:        uopts,
	}, nil
}

// newRedisClient returns a client of opts.
func newRedisClient(opts *redis.UniversalOptions) redis.UniversalClient {
	if !opts.IsClusterMode {
		return redis.NewUniversalClient(opts)
	}
	// Without routing policies: with them go-redis looks every command
	// up in the reply of COMMAND, which it fetches under a lock of the
	// client's with a context of its own (5s, not the timeout) and
	// fetches again at every command while it fails (a user denied
	// COMMAND). A script routes by its first key: the reservations'
	// scripts have one, and the keys of AllowAll's share a hash slot
	// (clusterLimitTag).
	copts := opts.Cluster()
	copts.DisableRoutingPolicies = true
	return redis.NewClusterClient(copts)
}

// redisTLS returns the client's TLS configuration: nil without TLS, else
// go-redis's for the URL with the options' CAs, server name and
// verification applied.
func redisTLS(useTLS bool, base *tls.Config, opts RedisOptions) (*tls.Config, error) {
	if !useTLS {
		if opts.TLSCA != nil || opts.TLSServerName != "" || opts.TLSInsecureSkipVerify {
			return nil, errors.New("store: redis: TLS options need a rediss URL")
		}
		return nil, nil
	}
	cfg := base.Clone()
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	if opts.TLSServerName != "" {
		cfg.ServerName = opts.TLSServerName
	}
	if opts.TLSCA != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(opts.TLSCA) {
			return nil, errors.New("store: redis: TLS CA file holds no PEM certificate")
		}
		cfg.RootCAs = pool
	}
	cfg.InsecureSkipVerify = opts.TLSInsecureSkipVerify
	return cfg, nil
}

// reserveScript sets KEYS[1] to ARGV[1] for ARGV[2] milliseconds if it
// does not exist, and answers 1, or else answers the value it holds. It
// reads the key before it writes: a Redis over its maxmemory refuses SET
// (OOM) even for a key that exists, and a repeat of a request it holds
// must get that request's value, not a failure that on_error open would
// deliver again.
var reserveScript = newReservationScript(`
local current = redis.call('GET', KEYS[1])
if current then
	return current
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
	return 1
end
return redis.call('GET', KEYS[1])
`)

// replaceScript sets KEYS[1] to ARGV[2] for ARGV[3] milliseconds if it
// holds ARGV[1], and answers 1, or else 0. A renewal (ARGV[2] is ARGV[1])
// only moves the expiry, with PEXPIRE: a Redis over its maxmemory refuses
// SET (OOM) but not PEXPIRE, and a reservation in flight left unrenewed
// would expire before its request is answered.
var replaceScript = newReservationScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	if ARGV[2] == ARGV[1] then
		redis.call('PEXPIRE', KEYS[1], ARGV[3])
	else
		redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
	end
	return 1
end
return 0
`)

// releaseScript deletes KEYS[1] if it holds ARGV[1], and answers 1, or
// else 0.
var releaseScript = newReservationScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0
`)

// reservationScript is one of the reservations' scripts: run by its
// SHA1 (EVALSHA), and by its source (EVAL) when Redis does not hold it
// (NOSCRIPT: a Redis restarted or flushed since it last ran), as
// redis.Script.Run does.
type reservationScript struct {
	src, sha string
}

func newReservationScript(src string) *reservationScript {
	return &reservationScript{src: src, sha: redis.NewScript(src).Hash()}
}

// scriptCall is a call of a reservationScript on one key, with its
// arguments, made in one allocation: the command's arguments point into
// it (go-redis writes a *string or an *int64 as it writes a string or an
// int64), where redis.Script.Run's would cost an allocation for each
// string and number, and two for its slices.
type scriptCall struct {
	args [maxScriptArgs]any
	// script is the script the call runs, with the first argc of argv
	// as its ARGV, and ttl as the last when withTTL.
	script  *reservationScript
	argc    int
	withTTL bool
	// key is the key (the store's prefix and the caller's key), and
	// owner, when not empty, a second key in key's hash slot (an owner's
	// count, see ownedCalls; or, of ownerScript on a count, the key
	// reserved, see reserveOwned); argv are the script's ARGV, ttl its
	// last for the scripts that take one.
	key, owner string
	argv       [3]string
	ttl        int64
}

// maxScriptArgs is the most arguments of a reservationScript's command:
// EVALSHA, its SHA1, the number of keys, two keys, and ARGV (an owned
// Replace's four).
const maxScriptArgs = 9

// run runs c's script on c's key, in one round trip (two when Redis
// answers NOSCRIPT), and again on another connection when its
// connection ended before the reply (see Redis), within the context's
// deadline, as retries allows.
func (r *Redis) run(ctx context.Context, c *scriptCall) *redis.Cmd {
	var retry retries
	for {
		cmd := c.command(ctx)
		_ = r.reservations.Process(ctx, cmd)
		// HasErrorPrefix costs an allocation, also for no error.
		if err := cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			cmd = c.evalCommand(ctx, cmd)
			_ = r.reservations.Process(ctx, cmd)
		}
		if !connectionEnded(cmd.Err()) || ctx.Err() != nil || !retry.next(r) {
			return cmd
		}
	}
}

// retries tells whether the reservations' scripts whose connection
// ended are sent again: up to r.attempts times in all (once on each
// connection the pool may hold, all of which a restart or a failover
// may have closed, then on a new one), and not after a connection ended
// before Redis answered anything on it, since the first attempt: Redis,
// or something in front of it, closes new connections too (a TLS port
// to a client without TLS hangs up), and each attempt would dial again.
// Without Sentinel or Cluster those are counted by the connections
// themselves (see uncheckedConn), so that other operations' new
// connections, dialed as a restart's closed ones are gone through under
// load, end no retries; with them by the pool's misses (a connection
// dialed, for this operation or another, since the first attempt).
type retries struct {
	attempts int
	ended    uint32 // r.unanswered, or the pool's misses, after the first attempt
}

func (a *retries) next(r *Redis) bool {
	a.attempts++
	var ended uint32
	if r.unanswered != nil {
		ended = r.unanswered.Load()
	} else {
		ended = r.reservations.PoolStats().Misses
	}
	if a.attempts > 1 && ended != a.ended {
		return false
	}
	a.ended = ended
	return a.attempts < r.attempts
}

// connectionEnded reports whether err is that of a command whose
// connection ended before its reply: Redis closed it or reset it (its
// reply, read, is an end of file; or the command, written, a broken
// pipe), whether or not it ran the command. Not a timeout: Redis may
// still run a command that timed out, and the time is spent.
func connectionEnded(err error) bool {
	return err != nil && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE))
}

// redisPoolSize is the most connections the client of opts keeps for
// later commands (to each node, with Cluster): its PoolSize, else
// go-redis's default.
func redisPoolSize(opts *redis.UniversalOptions) int {
	if opts.PoolSize > 0 {
		return opts.PoolSize
	}
	return 10 * runtime.GOMAXPROCS(0)
}

// command is the EVALSHA of c's script on c's key (and owner) with the first argc
// of c's ARGV, and c's ttl as the last when withTTL.
func (c *scriptCall) command(ctx context.Context) *redis.Cmd {
	c.args[0], c.args[1], c.args[2], c.args[3] = "evalsha", &c.script.sha, 1, &c.key
	n := 4
	if c.owner != "" {
		c.args[2], c.args[4] = 2, &c.owner
		n++
	}
	for i := range c.argc {
		c.args[n] = &c.argv[i]
		n++
	}
	if c.withTTL {
		c.args[n] = &c.ttl
		n++
	}
	cmd := redis.NewCmd(ctx, c.args[:n]...)
	cmd.SetFirstKeyPos(3)
	return cmd
}

// evalCommand is the EVAL of c's script in place of evalsha, its
// EVALSHA that Redis answered NOSCRIPT.
func (c *scriptCall) evalCommand(ctx context.Context, evalsha *redis.Cmd) *redis.Cmd {
	args := slices.Clone(evalsha.Args())
	args[0], args[1] = "eval", &c.script.src
	cmd := redis.NewCmd(ctx, args...)
	cmd.SetFirstKeyPos(3)
	return cmd
}

// Reserve implements Store with SET NX PX in one script that also answers
// the value held when the key exists. Without MaxPerOwner, or without an
// owner, it runs the reservation's script alone; else with the owner's
// count in the same round trip (see reserveOwned).
func (r *Redis) Reserve(ctx context.Context, owner, key, value string, ttl time.Duration) (bool, string, error) {
	if err := validateTTL(ttl); err != nil {
		return false, "", invalid("reserve", err)
	}
	ctx, cancel := r.deadlines.context(ctx)
	defer cancel()
	if owner != "" && r.maxPerOwner > 0 {
		return r.reserveOwned(ctx, owner, key, value, ttl)
	}
	c := &scriptCall{script: reserveScript, argc: 1, withTTL: true, key: r.prefix + key, argv: [3]string{value}, ttl: ttl.Milliseconds()}
	reply, err := r.run(ctx, c).Result()
	if err != nil {
		return false, "", r.fail("reserve", err)
	}
	return reservation(reply)
}

// reservation reads the reply of reserveScript.
func reservation(reply any) (bool, string, error) {
	switch reply := reply.(type) {
	case int64:
		return true, "", nil
	case string:
		return false, reply, nil
	}
	return false, "", unexpected("reserve", reply)
}

// Replace implements Store with a compare-and-set script. Without
// MaxPerOwner, or without an owner, it runs the replacement's script
// alone; else the key's count in owner's share, if it holds one, expires
// with the key from then on, in the same round trip (see ownedCalls).
func (r *Redis) Replace(ctx context.Context, owner, key, expect, value string, ttl time.Duration) (bool, error) {
	if err := validateTTL(ttl); err != nil {
		return false, invalid("replace", err)
	}
	ctx, cancel := r.deadlines.context(ctx)
	defer cancel()
	c := scriptCall{script: replaceScript, argc: 2, withTTL: true, key: r.prefix + key, argv: [3]string{expect, value}, ttl: ttl.Milliseconds()}
	n, err := r.runOwned(ctx, owner, c).Int64()
	if err != nil {
		return false, r.fail("replace", err)
	}
	return n == 1, nil
}

// Renew renews the reservation of each of keys that still holds its
// value in values (the same index): Replace of the value with itself, for
// ttl from now. The keys' scripts go in pipelines of renewPipelineKeys
// each, one round trip bounded by one timeout (with Cluster, one round
// trip to each node that serves some of the keys, the nodes at once:
// go-redis's cluster pipeline splits the commands by slot), where one
// Replace after another would leave the last key waiting up to a timeout
// for each key before it; one pipeline of every key would cut the keys
// Redis had not run within the timeout, the same at every round. It
// returns, for each key, whether it held its value and was renewed, and
// its error, nil for a renewal that ran, whether or not the key still
// held its value; a key that fails (its slot's node down) costs the
// others nothing. A pipeline that fails whole (Redis down or hung) ends
// the round: the keys left get its error rather than a timeout each.
//
// Each key is renewed for the owner of the same index in owners (nil, or
// "", for none), as Replace renews it.
func (r *Redis) Renew(ctx context.Context, owners, keys, values []string, ttl time.Duration) (renewed []bool, errs []error) {
	renewed, errs = make([]bool, len(keys)), make([]error, len(keys))
	if err := validateTTL(ttl); err != nil {
		for i := range errs {
			errs[i] = invalid("replace", err)
		}
		return renewed, errs
	}
	calls := make([]scriptCall, len(keys))
	for i, key := range keys {
		calls[i] = scriptCall{script: replaceScript, argc: 2, withTTL: true, key: r.prefix + key, argv: [3]string{values[i], values[i]}, ttl: ttl.Milliseconds()}
	}
	for from := 0; from < len(keys); from += renewPipelineKeys {
		to := min(from+renewPipelineKeys, len(keys))
		ran := false
		var batchOwners []string
		if owners != nil {
			batchOwners = owners[from:to]
		}
		for i, cmd := range r.runAll(ctx, r.ownedCalls(batchOwners, calls[from:to])) {
			if i >= to-from {
				break // owners' counts (see ownedCalls)
			}
			if n, err := cmd.Int64(); err != nil {
				errs[from+i] = r.fail("replace", err)
			} else {
				renewed[from+i], ran = n == 1, true
			}
		}
		if !ran {
			for i := to; i < len(keys); i++ {
				errs[i] = errs[from]
			}
			break
		}
	}
	return renewed, errs
}

// renewPipelineKeys is the most keys Renew renews in one pipeline: Redis
// runs the replace script in a few microseconds, so that a pipeline of
// them takes a few milliseconds, well within any store timeout worth
// having.
const renewPipelineKeys = 500

// runAll runs each of calls (its script on its key) in one pipeline: one
// round trip bounded by one timeout however many calls there are (with Cluster,
// one round trip to each node that serves some of the keys, the nodes at
// once: go-redis's cluster pipeline splits the commands by slot). The
// calls that Redis answered NOSCRIPT (restarted or flushed since the
// script last ran) run again by the script's source, in one more round
// trip, and those whose connection ended before the reply (see Redis)
// run again in another pipeline, as run sends a call again. It returns
// each call's command, whose error is that call's alone: a key that
// fails (its slot's node down) costs the others nothing.
func (r *Redis) runAll(ctx context.Context, calls []scriptCall) []*redis.Cmd {
	ctx, cancel := r.deadlines.context(ctx)
	defer cancel()
	return r.pipelined(ctx, calls)
}

// pipelined is runAll within ctx's deadline, which the caller sets.
func (r *Redis) pipelined(ctx context.Context, calls []scriptCall) []*redis.Cmd {
	cmds := make([]*redis.Cmd, len(calls))
	pending := make([]int, len(calls))
	for i := range pending {
		pending[i] = i
	}
	var retry retries
	for len(pending) > 0 {
		pipe := r.reservations.Pipeline()
		for _, i := range pending {
			cmds[i] = calls[i].command(ctx)
			_ = pipe.Process(ctx, cmds[i])
		}
		_, err := pipe.Exec(ctx)
		stampUnrun(err, cmds, pending)
		var again []int
		for _, i := range pending {
			if err := cmds[i].Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
				again = append(again, i)
			}
		}
		if again != nil {
			pipe := r.reservations.Pipeline()
			for _, i := range again {
				cmds[i] = calls[i].evalCommand(ctx, cmds[i])
				_ = pipe.Process(ctx, cmds[i])
			}
			_, err := pipe.Exec(ctx)
			stampUnrun(err, cmds, again)
		}
		pending = slices.DeleteFunc(pending, func(i int) bool { return !connectionEnded(cmds[i].Err()) })
		if len(pending) == 0 || ctx.Err() != nil || !retry.next(r) {
			break
		}
	}
	return cmds
}

// stampUnrun gives err, a pipeline's, to each command of cmds at the
// indexes which that has neither a reply nor an error: go-redis leaves
// them so when it could not ready a connection for the pipeline and
// Redis's own error was why (WRONGPASS at AUTH, NOPERM at HELLO or
// SELECT), which would otherwise read as a reply of nil, naming no
// cause. A script's nil reply is an error of its own (redis.Nil), never
// a nil value.
func stampUnrun(err error, cmds []*redis.Cmd, which []int) {
	if err == nil {
		return
	}
	for _, i := range which {
		if cmds[i].Err() == nil && cmds[i].Val() == nil {
			cmds[i].SetErr(err)
		}
	}
}

// Release implements Store with a compare-and-delete script. Without
// MaxPerOwner, or without an owner, it runs the release's script alone;
// else the key's count in owner's share goes too, in the same round trip
// (see ownedCalls), so that the owner has it back at once.
func (r *Redis) Release(ctx context.Context, owner, key, expect string) (bool, error) {
	ctx, cancel := r.deadlines.context(ctx)
	defer cancel()
	c := scriptCall{script: releaseScript, argc: 1, key: r.prefix + key, argv: [3]string{expect}}
	n, err := r.runOwned(ctx, owner, c).Int64()
	if err != nil {
		return false, r.fail("release", err)
	}
	return n == 1, nil
}

// ReleaseAll releases each of keys that still holds its value in values
// (the same index), as Release does, all in one pipeline (see runAll):
// one round trip bounded by one timeout however many keys there are,
// and a key that fails costs the others nothing, where one Release
// after another would make the last wait a timeout for each before it,
// or be left held when one before it failed. It returns each key's
// error, nil for a release that ran, whether or not the key still held
// its value. The keys are owner's ("" for none), whose counts go with
// them as Release's.
func (r *Redis) ReleaseAll(ctx context.Context, owner string, keys, values []string) []error {
	calls := make([]scriptCall, len(keys))
	var owners []string
	for i, key := range keys {
		calls[i] = scriptCall{script: releaseScript, argc: 1, key: r.prefix + key, argv: [3]string{values[i]}}
		if owner != "" {
			owners = append(owners, owner)
		}
	}
	errs := make([]error, len(keys))
	for i, cmd := range r.runAll(ctx, r.ownedCalls(owners, calls)) {
		if i >= len(keys) {
			break // owners' counts (see ownedCalls)
		}
		if _, err := cmd.Int64(); err != nil {
			errs[i] = r.fail("release", err)
		}
	}
	return errs
}

// Allow implements Store: AllowN for one event.
func (r *Redis) Allow(ctx context.Context, key string, limit Limit) (Decision, error) {
	return r.AllowN(ctx, key, limit, 1)
}

// AllowN implements Store with the GCRA of github.com/go-redis/redis_rate:
// rate Count per Period, burst Count, timed by the Redis server's clock
// so that every edge counts alike. It is AllowAll of one take, whose
// script counts the remaining events as the memory store does (see
// allowAllScript), where redis_rate's own script may count one fewer,
// and with a cluster takes nothing when the cluster client runs it a
// second time (see ranMarker).
func (r *Redis) AllowN(ctx context.Context, key string, limit Limit, n int) (Decision, error) {
	ds, err := r.AllowAll(ctx, []Take{{Key: key, Limit: limit, N: n}})
	if err != nil {
		return Decision{}, err
	}
	return ds[0], nil
}

// redisRatePrefix starts the keys of limits, as it does redis_rate's,
// whose keys and times allowAllScript shares.
const redisRatePrefix = "rate:"

// clusterLimitTag follows the key prefix in the keys of limits with a
// cluster: a hash tag, so that the keys of all limits share one slot.
const clusterLimitTag = "{limits}:"

// hashTag is the part of key that Redis Cluster hashes to find its slot:
// what the first '{' and the next '}' enclose if it is not empty, else
// the whole key.
func hashTag(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j]
		}
	}
	return key
}

// allowAllScript is redis_rate's GCRA (see AllowN) over the keys of
// the takes, the first keys of KEYS, at once: ARGV holds, for each take,
// its count, its period in seconds and its events. It checks every key
// before it writes any, and writes only when every key has room, so that
// a refusal takes nothing from any budget. It answers 1 or 0 (all taken
// or none), then for each key its remaining events (0 in a refusal) and,
// as a string, how many seconds until it has room for its events (0 when
// it has room).
//
// A key's remaining events count half a microsecond more room than diff
// holds: diff comes of seconds since 2017 (some 3*10^8, whose floats are
// 60ns apart) and may fall that much short of a whole number of
// intervals (2 of 3 per second leave 0.33333331 seconds, not a third),
// which would count one event fewer than the memory store does for the
// same takes. Half a microsecond is more than that error for periods
// of up to decades, and less than TIME tells apart (it drops what is
// under a microsecond): an event due within it counts now. No
// more remain than Count less the events taken. The decision, the retry
// and the time stored are redis_rate's, which every edge reads alike.
//
// With a cluster, KEYS ends with the call's ran marker and ARGV with the
// marker's TTL in milliseconds (see ranMarker): a call that takes sets
// the marker, and a call that finds it set ran already (the cluster
// client sent it again) and answers 1 again, with each budget's room
// now, taking nothing.
var allowAllScript = redis.NewScript(`
redis.replicate_commands()
local jan_1_2017 = 1483228800
local takes = math.floor(#ARGV / 3)
local ran = KEYS[takes + 1]
local again = ran ~= nil and redis.call("GET", ran) ~= false
local now = redis.call("TIME")
now = (now[1] - jan_1_2017) + (now[2] / 1000000)
local new_tats, remaining, retry = {}, {}, {}
local allowed = 1
local function events(diff, emission_interval, most)
	return math.max(math.min(math.floor((diff + 0.0000005) / emission_interval), most), 0)
end
for i = 1, takes do
	local rate = tonumber(ARGV[3*i-2])
	local period = tonumber(ARGV[3*i-1])
	local cost = tonumber(ARGV[3*i])
	if again then
		cost = 0
	end
	local emission_interval = period / rate
	local tat = redis.call("GET", KEYS[i])
	if not tat then
		tat = now
	else
		tat = tonumber(tat)
	end
	tat = math.max(tat, now)
	local new_tat = tat + emission_interval * cost
	local diff = now - (new_tat - emission_interval * rate)
	new_tats[i] = new_tat
	if again then
		remaining[i] = events(diff, emission_interval, rate)
		retry[i] = "0"
	elseif diff < 0 then
		allowed = 0
		remaining[i] = 0
		retry[i] = tostring(-diff)
	else
		remaining[i] = events(diff, emission_interval, rate - cost)
		retry[i] = "0"
	end
end
local reply = {allowed}
for i = 1, takes do
	if allowed == 1 then
		local reset_after = new_tats[i] - now
		if reset_after > 0 and not again then
			redis.call("SET", KEYS[i], new_tats[i], "EX", math.ceil(reset_after))
		end
		reply[2*i] = remaining[i]
	else
		reply[2*i] = 0
	end
	reply[2*i+1] = retry[i]
end
if ran and allowed == 1 and not again then
	redis.call("SET", ran, "1", "PX", ARGV[3*takes + 1])
end
return reply
`)

// AllowAll implements Store with one script (allowAllScript), timed by
// the Redis server's clock as AllowN, and answering as AllowN would for
// each key alone.
func (r *Redis) AllowAll(ctx context.Context, takes []Take) ([]Decision, error) {
	if err := validateTakes(takes); err != nil {
		return nil, invalid("allow", err)
	}
	keys := make([]string, len(takes), len(takes)+1)
	args := make([]any, 0, 3*len(takes)+1)
	for i, t := range takes {
		keys[i] = redisRatePrefix + r.limitPrefix + t.Key
		args = append(args, t.Limit.Count, t.Limit.Period.Seconds(), t.N)
	}
	keys, args = r.withRanMarker(keys, args)
	ctx, cancel := r.deadlines.context(ctx)
	defer cancel()
	reply, err := allowAllScript.Run(ctx, r.client, keys, args...).Slice()
	if err != nil {
		return nil, r.fail("allow", err)
	}
	return allowDecisions(reply, len(takes))
}

// allowDecisions reads the reply of allowAllScript to n takes: 1 or 0,
// then each take's remaining events (an integer) and seconds until it
// has room (a string of a number).
func allowDecisions(reply []any, n int) ([]Decision, error) {
	if len(reply) != 1+2*n {
		return nil, unexpected("allow", reply)
	}
	allowed, ok := reply[0].(int64)
	if !ok {
		return nil, unexpected("allow", reply[0])
	}
	ds := make([]Decision, n)
	for i := range ds {
		remaining, ok1 := reply[1+2*i].(int64)
		retry, ok2 := reply[2+2*i].(string)
		secs, err := strconv.ParseFloat(retry, 64)
		if !ok1 || !ok2 || err != nil {
			return nil, unexpected("allow", reply[1+2*i])
		}
		ds[i].Allowed = allowed == 1
		ds[i].Remaining = int(remaining)
		if secs > 0 {
			// At least a nanosecond: a budget without room says so; the
			// longest duration for seconds beyond it (inf, or 1e300 of a
			// Redis that answers wrongly), which would convert to any
			// duration, a negative one too, and so to a nanosecond.
			wait := time.Duration(math.MaxInt64)
			if ns := secs * float64(time.Second); ns < math.MaxInt64 {
				wait = time.Duration(ns)
			}
			ds[i].RetryAfter = max(wait, time.Nanosecond)
		}
	}
	return ds, nil
}

// refundScript gives back, for each key of KEYS, the events of ARGV (its
// count, its period in seconds and its events, as allowAllScript's; then,
// last, the seconds since they were taken): the key's theoretical
// arrival time goes back by as many emission intervals less those
// seconds (see outstanding), and a key whose time is then now or past (a
// whole budget) is deleted, as redis_rate leaves none for a whole
// budget. A key that does not exist is a whole budget already. One
// script: all or none.
//
// With a cluster, KEYS ends with the call's ran marker and ARGV with the
// marker's TTL in milliseconds (see ranMarker): a call that finds the
// marker set ran already (the cluster client sent it again) and gives
// back nothing more; else it sets the marker after its own writes (a
// Redis over its maxmemory refuses a script's first SET, not those after
// a write, and a DEL needs no room).
var refundScript = redis.NewScript(`
redis.replicate_commands()
local jan_1_2017 = 1483228800
local takes = math.floor((#ARGV - 1) / 3)
local ran = KEYS[takes + 1]
if ran and redis.call("GET", ran) then
	return 1
end
local now = redis.call("TIME")
now = (now[1] - jan_1_2017) + (now[2] / 1000000)
local held = tonumber(ARGV[3*takes + 1])
for i = 1, takes do
	local tat = redis.call("GET", KEYS[i])
	if tat then
		local emission_interval = tonumber(ARGV[3*i-1]) / tonumber(ARGV[3*i-2])
		local new_tat = tonumber(tat) - math.max(emission_interval * tonumber(ARGV[3*i]) - held, 0)
		local reset_after = new_tat - now
		if reset_after > 0 then
			redis.call("SET", KEYS[i], new_tat, "EX", math.ceil(reset_after))
		else
			redis.call("DEL", KEYS[i])
		end
	end
end
if ran then
	redis.call("SET", ran, "1", "PX", ARGV[3*takes + 2])
end
return 1
`)

// RefundAll implements Store with one script (refundScript), timed by
// the Redis server's clock as AllowAll; held is the caller's (the
// script runs at most a round trip after the caller reads it, a
// fraction of an interval that the refund may give back too much).
func (r *Redis) RefundAll(ctx context.Context, takes []Take, held time.Duration) error {
	if err := validateTakes(takes); err != nil {
		return invalid("refund", err)
	}
	keys := make([]string, len(takes), len(takes)+1)
	args := make([]any, 0, 3*len(takes)+2)
	for i, t := range takes {
		keys[i] = redisRatePrefix + r.limitPrefix + t.Key
		args = append(args, t.Limit.Count, t.Limit.Period.Seconds(), t.N)
	}
	args = append(args, max(held, 0).Seconds())
	keys, args = r.withRanMarker(keys, args)
	ctx, cancel := r.deadlines.context(ctx)
	defer cancel()
	if err := refundScript.Run(ctx, r.client, keys, args...).Err(); err != nil {
		return r.fail("refund", err)
	}
	return nil
}

// ResetLimit implements Store with one script (resetLimitScript). With a
// cluster, a reset that the client sent again finds the key gone and
// reports the budget whole: so it is, by the first run.
func (r *Redis) ResetLimit(ctx context.Context, key string) (bool, error) {
	ctx, cancel := r.deadlines.context(ctx)
	defer cancel()
	n, err := resetLimitScript.Run(ctx, r.client, []string{redisRatePrefix + r.limitPrefix + key}).Int()
	if err != nil {
		return false, r.fail("reset", err)
	}
	return n == 1, nil
}

// resetLimitScript deletes a limit's key and answers 1 when its budget
// was not whole (its time, as allowAllScript keeps it, is after now),
// else 0: the key outlives that time by up to a second (its TTL is
// whole seconds).
var resetLimitScript = redis.NewScript(`
redis.replicate_commands()
local tat = redis.call("GET", KEYS[1])
if not tat then
	return 0
end
redis.call("DEL", KEYS[1])
local now = redis.call("TIME")
now = (now[1] - 1483228800) + (now[2] / 1000000)
if tonumber(tat) > now then
	return 1
end
return 0
`)

// PeekLimit implements Store with one script (peekLimitScript).
func (r *Redis) PeekLimit(ctx context.Context, key string) (time.Duration, error) {
	ctx, cancel := r.deadlines.context(ctx)
	defer cancel()
	ahead, err := peekLimitScript.Run(ctx, r.client, []string{redisRatePrefix + r.limitPrefix + key}).Float64()
	if err != nil {
		return 0, r.fail("peek", err)
	}
	return time.Duration(ahead * float64(time.Second)), nil
}

// peekLimitScript answers how many seconds a limit's time, as
// allowAllScript keeps it, is after now (0 when it is not), as a string:
// Redis would cut a number to an integer.
var peekLimitScript = redis.NewScript(`
local tat = redis.call("GET", KEYS[1])
if not tat then
	return "0"
end
local now = redis.call("TIME")
now = (now[1] - 1483228800) + (now[2] / 1000000)
return tostring(math.max(tonumber(tat) - now, 0))
`)

// ranMarker follows the key prefix of limits in the key of a ran marker:
// with a cluster, each call of AllowAll and RefundAll (and AllowN, which
// calls AllowAll) draws a random marker key beside the limits' keys (in
// their hash slot), which its script sets when it takes or gives back,
// for ranMarkerTTL more than the store's timeout. go-redis's cluster
// client sends a command again after its connection ended before the
// reply, though Redis may have run it (see Redis), and a script that
// finds its marker set gives nothing back and takes nothing a second
// time: else a take run twice would count its events twice, and a refund
// run twice would give them back twice, more calls than a limit allows.
// Without a cluster no command is sent again, and the scripts run
// without one.
const ranMarker = "ran:"

// ranMarkerTTL is how much longer than the store's timeout a ran marker
// lives. The client sends a command again only within the timeout, but
// Redis may run it later (a command queued behind a slow script, a
// fork): the marker outlives that, at a cost of its memory alone, about
// 160 bytes of Redis's for each take that takes and each refund.
const ranMarkerTTL = time.Minute

// withRanMarker returns the keys and arguments of a limits' script with
// a ran marker and its TTL appended, with a cluster; without, as they
// are.
func (r *Redis) withRanMarker(keys []string, args []any) ([]string, []any) {
	if !r.cluster {
		return keys, args
	}
	var token [16]byte
	_, _ = rand.Read(token[:]) // it never fails
	var buf [128]byte
	key := hex.AppendEncode(append(buf[:0], r.ranPrefix...), token[:])
	return append(keys, string(key)), append(args, r.ranTTL)
}

// RedisDurability is what a Redis server says of how long it keeps the
// store's keys: whether it may evict them before they expire, whether it
// writes them to disk as it takes them, and which run of the server
// answered.
type RedisDurability struct {
	// Evicts reports whether the server may evict keys to make room: it
	// has a maxmemory and a maxmemory-policy other than noeviction. Every
	// key of the store has a TTL, so a volatile-* policy evicts them as
	// allkeys-* does.
	Evicts bool

	// EvictionPolicy is the server's maxmemory-policy.
	EvictionPolicy string

	// AppendOnly reports whether the server logs each write to its
	// append-only file (appendonly yes), from which it loads its keys
	// again when it restarts. Without it, a restart loses every key, or
	// those written since the last RDB snapshot.
	AppendOnly bool

	// RunID is the server's run_id, drawn afresh each time the server
	// starts: another run_id is a restarted server, or another one (a
	// replica promoted by a failover). It is empty with Cluster, whose
	// nodes each have their own, and when the server reports none.
	RunID string

	// Replicas is how many replicas are connected to the server
	// (connected_slaves).
	Replicas int

	// WritesNeedReplicas reports whether the server refuses writes while
	// too few replicas are in step with it (min-replicas-to-write and
	// min-replicas-max-lag set): Redis replicates asynchronously, and a
	// master without it acknowledges writes that a failover, a planned
	// one too, then loses.
	WritesNeedReplicas bool
}

// Durability reads the server's eviction policy, persistence and run_id
// in one INFO. With a cluster client it asks one node, which may be
// another each time.
func (r *Redis) Durability(ctx context.Context) (RedisDurability, error) {
	ctx, cancel := r.deadlines.context(ctx)
	defer cancel()
	// INFO's default sections (server, memory, persistence and
	// replication among them), for INFO with several sections is a
	// syntax error before Redis 7.
	info, err := r.client.Info(ctx).Result()
	if err != nil {
		return RedisDurability{}, r.fail("info", err)
	}
	return parseDurability(info, r.cluster)
}

// parseDurability reads the reply of INFO, info, as Durability does: its
// lines "name:value" (each trimmed of white space, the value read up to
// the line's end, a name's last line counting), the section headers and
// other lines skipped. The run_id is left out when cluster is set (the
// reply is one node's of a cluster). It fails when the reply has no
// maxmemory, maxmemory_policy or aof_enabled.
func parseDurability(info string, cluster bool) (RedisDurability, error) {
	var d RedisDurability
	var maxMemory, aof string
	for line := range strings.Lines(info) {
		name, value, _ := strings.Cut(strings.TrimSpace(line), ":")
		switch name {
		case "maxmemory":
			maxMemory = value
		case "maxmemory_policy":
			d.EvictionPolicy = value
		case "aof_enabled":
			aof = value
		case "run_id":
			if !cluster {
				d.RunID = value
			}
		case "connected_slaves":
			d.Replicas, _ = strconv.Atoi(value)
		case "min_slaves_good_slaves":
			// Reported only while min-replicas-to-write and
			// min-replicas-max-lag are set.
			d.WritesNeedReplicas = true
		}
	}
	if maxMemory == "" || d.EvictionPolicy == "" || aof == "" {
		return RedisDurability{}, &Error{Op: "info", Err: errors.New("INFO gave no maxmemory, maxmemory_policy or aof_enabled")}
	}
	d.Evicts = maxMemory != "0" && d.EvictionPolicy != "noeviction"
	d.AppendOnly = aof != "0"
	return d, nil
}

// Addrs are the host:port addresses the store dials first: the URL's,
// then the sentinels or cluster nodes of RedisOptions.Addrs. They carry
// no user or password.
func (r *Redis) Addrs() []string { return slices.Clone(r.addrs) }

// Ping sends PING within timeout, or the store's timeout when that is
// longer: it fails as an operation would when Redis cannot be reached,
// refuses the store's credentials or its TLS, or does not answer in time
// (RedisFailure tells which). Given longer than the store's timeout, it
// sends the PING on a connection of its own, of a client of the store's
// settings but that timeout (the store's client bounds each dial, TLS
// handshake included, and each read by the store's timeout, whatever the
// context allows), closed before it returns: a check of whether Redis
// answers at all (see StartupCheckTimeout) then does not fail for a
// first connection that takes longer than an operation may.
func (r *Redis) Ping(ctx context.Context, timeout time.Duration) error {
	client, timeout, done := r.checkClient(timeout)
	defer done()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		return r.fail("ping", err)
	}
	return nil
}

// checkClient is the client of a check given timeout (see Ping), the
// timeout it is given, and what to call once the check is over: the
// store's client when timeout is no longer than the store's, else a
// client of the store's settings but that timeout, which done closes.
func (r *Redis) checkClient(timeout time.Duration) (client redis.UniversalClient, given time.Duration, done func()) {
	if timeout <= r.timeout {
		return r.client, r.timeout, func() {}
	}
	opts := *r.options
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout, opts.PoolTimeout = timeout, timeout, timeout, timeout
	opts.OnConnect = nil
	client = newRedisClient(&opts)
	return client, timeout, func() { _ = client.Close() }
}

// scriptCheckInfix follows the key prefix in the key CheckScripts runs
// the release script on, then 32 random hex digits: no key of the store
// starts so (its keys are the caller's, which the edge starts with
// "idem:" or "limit:", and the owners' counts, "owner:").
const scriptCheckInfix = "check:"

// CheckScripts proves that Redis runs the store's scripts for the
// store's user, as Ping proves that it answers, within timeout as Ping:
// it sends the release script (releaseScript) by its SHA1 (EVALSHA),
// then by its source (EVAL), on a key of the store's prefix that cannot
// exist (scriptCheckInfix and a random token) with a value drawn at
// random, so that the script reads the key, finds nothing, and writes
// nothing: no reservation, limit or count is touched, and no request
// can see it. The EVALSHA may answer NOSCRIPT (Redis does not hold the
// script yet), which proves EVALSHA allowed all the same: Redis checks
// a user's permissions before it looks the script up. A user denied
// EVALSHA, EVAL, the script's GET or the prefix's keys fails it with
// Redis's NOPERM (RedisFailure: "permission"), as every reservation
// would fail.
func (r *Redis) CheckScripts(ctx context.Context, timeout time.Duration) error {
	client, timeout, done := r.checkClient(timeout)
	defer done()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var token [32]byte
	_, _ = rand.Read(token[:]) // it never fails
	key := r.prefix + scriptCheckInfix + hex.EncodeToString(token[:16])
	value := hex.EncodeToString(token[16:])
	err := client.EvalSha(ctx, releaseScript.sha, []string{key}, value).Err()
	if err != nil && !redis.HasErrorPrefix(err, "NOSCRIPT") {
		return r.fail("script check", err)
	}
	reply, err := client.Eval(ctx, releaseScript.src, []string{key}, value).Result()
	if err != nil {
		return r.fail("script check", err)
	}
	if n, ok := reply.(int64); !ok || n != 0 {
		return unexpected("script check", reply)
	}
	return nil
}

// StartupCheckTimeout is the least time a check of whether Redis answers
// is given (see Ping): a first connection to a remote Redis over TLS
// (TCP, the TLS handshake, AUTH, then the PING) may take longer than the
// store's timeout (DefaultRedisTimeout) though Redis is fine, and go-redis
// dials for 5s by default.
const StartupCheckTimeout = 5 * time.Second

// RedisFailure names the kind of an error of a Redis operation for an
// operator: "timeout", "connection refused", "host not found", "tls",
// "auth" (the credentials refused or missing), "permission" (an ACL user
// denied a command or a key, a script's too; see RedisDenied), "closed"
// (the store closed), "connection closed" (the server hung up, as a TLS
// port does to a redis:// client), "unknown master" (a sentinel knows no
// master of the sentinel name), "reply" (another refusal by Redis) or
// "network".
func RedisFailure(err error) string {
	var dnsErr *net.DNSError
	var recordErr tls.RecordHeaderError
	var verifyErr *tls.CertificateVerificationError
	var alertErr tls.AlertError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var replyErr redis.Error
	switch {
	case errors.Is(err, ErrClosed):
		return "closed"
	case errors.Is(err, redis.Nil):
		// The only nil reply on the way to a PING is a sentinel's to
		// SENTINEL GET-MASTER-ADDR-BY-NAME of a name it does not know,
		// which go-redis reports as "all sentinels ... are unreachable":
		// the sentinels answered, the master name is wrong. It comes
		// before the causes of other sentinels' failures, as the one to
		// fix.
		return "unknown master"
	case errors.Is(err, ErrTimeout):
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.As(err, &dnsErr):
		return "host not found"
	case errors.As(err, &recordErr), errors.As(err, &verifyErr), errors.As(err, &alertErr),
		errors.As(err, &unknownCA), errors.As(err, &hostErr):
		return "tls"
	case errors.As(err, &replyErr):
		msg := replyErr.Error()
		switch {
		case strings.HasPrefix(msg, "WRONGPASS"), strings.HasPrefix(msg, "NOAUTH"),
			strings.HasPrefix(msg, "ERR invalid password"), strings.HasPrefix(msg, "ERR AUTH"),
			strings.HasPrefix(msg, "ERR Client sent AUTH, but no password is set"):
			return "auth"
		case strings.HasPrefix(msg, "NOPERM"),
			// A command or key a script runs on that the user is denied,
			// as Redis 7.0 and older tell it ("ERR The user executing the
			// script can't run this command or subcommand"), and as Redis
			// 7.2 and later and Valkey do ("ERR ACL failure in script:
			// User ... has no permissions to run the 'get' command", "ERR
			// ACL failure in script: No permissions to access a key").
			strings.Contains(msg, "The user executing the script can't"),
			strings.Contains(msg, "ACL failure in script: "):
			return "permission"
		}
		return "reply"
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return "connection closed"
	}
	return "network"
}

// RedisDenied names what Redis's ACL denied the store's user in err
// (RedisFailure "permission"), as Redis tells it: the command, in
// capitals ("EVALSHA", or "GET" that a script runs), "keys" for a key
// outside the user's key patterns, or "a command a script runs" when
// Redis (7.0 and older) does not name it; "" for another error. It
// never holds the user's name, which Redis's message may.
func RedisDenied(err error) string {
	var replyErr redis.Error
	if RedisFailure(err) != "permission" || !errors.As(err, &replyErr) {
		return ""
	}
	msg := replyErr.Error()
	if _, after, ok := strings.Cut(msg, "permissions to run the '"); ok {
		if command, _, ok := strings.Cut(after, "'"); ok && command != "" {
			return strings.ToUpper(command)
		}
	}
	switch {
	case strings.Contains(msg, "keys"), strings.Contains(msg, "a key"):
		return "keys"
	case strings.Contains(msg, "The user executing the script can't run"):
		return "a command a script runs"
	}
	return ""
}

// Close implements Store: it closes the client's connections.
func (r *Redis) Close() error {
	r.closeOnce.Do(func() {
		r.closeErr = r.client.Close()
		if r.reservations != r.client {
			r.closeErr = errors.Join(r.closeErr, r.reservations.Close())
		}
	})
	return r.closeErr
}

// redisBusy starts the replies of a Redis that is up but cannot serve for
// now: loading its data, running a long script, without a master or a
// cluster quorum, read-only or out of connections.
var redisBusy = []string{"LOADING", "BUSY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "READONLY", "NOREPLICAS", "ERR max number of clients"}

// redisFull starts the reply of a Redis over its maxmemory that refuses
// a write (maxmemory-policy noeviction); Redis 6 and older wrap it, when
// a script's write is refused, in "ERR Error running script ...: -OOM
// command not allowed ...", which redisFullInScript finds.
const (
	redisFull         = "OOM"
	redisFullInScript = ": -OOM command not allowed"
)

// fail wraps err, from a Redis operation, as an *Error that tells whether
// Redis was unreachable, slow or closed.
func (r *Redis) fail(op string, err error) error {
	e := &Error{Op: op, Err: err}
	var netErr net.Error
	var replyErr redis.Error
	switch {
	case errors.Is(err, redis.ErrClosed):
		return closedError(op)
	case errors.Is(err, context.Canceled):
		// The caller gave up; that says nothing of Redis.
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.Is(err, redis.ErrPoolTimeout), errors.As(err, &netErr) && netErr.Timeout():
		e.unavailable, e.timeout = true, true
	case errors.As(err, &replyErr):
		// Redis answered: other answers (authentication, permissions) are
		// configuration errors, not an outage.
		e.full = strings.HasPrefix(replyErr.Error(), redisFull) || strings.Contains(replyErr.Error(), redisFullInScript)
		e.unavailable = slices.ContainsFunc(redisBusy, func(p string) bool { return strings.HasPrefix(replyErr.Error(), p) })
	default:
		e.unavailable = true
	}
	return e
}

func unexpected(op string, reply any) error {
	return &Error{Op: op, Err: fmt.Errorf("unexpected reply of type %T", reply)}
}
