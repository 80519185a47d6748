package store_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ucwa-edge/caddy-ucwa/internal/store"
	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

const (
	// testTimeout is the store's timeout where timeouts are under test.
	testTimeout = 100 * time.Millisecond

	// hangBound is how long a call to an unreachable or hung Redis may
	// take before the test calls it a hang: thirty times testTimeout, so
	// that a loaded CI machine does not fail the test, while go-redis's
	// own defaults (5s reads, retries) would.
	hangBound = 30 * testTimeout

	// easyTimeout is the store's timeout where timeouts are not under
	// test, so that a loaded machine does not fail those tests.
	easyTimeout = 5 * time.Second
)

func TestRedisOptions(t *testing.T) {
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	writeTestCA(t, caFile)
	const secret = "s3cr3t-Pa55"
	cases := []struct {
		name    string
		opts    store.RedisOptions
		wantErr string // a substring; empty for none
	}{
		{"plain", store.RedisOptions{URL: "redis://127.0.0.1:6379/0"}, ""},
		{"no port, no db", store.RedisOptions{URL: "redis://redis.example.com"}, ""},
		{"user and password", store.RedisOptions{URL: "redis://edge:" + secret + "@127.0.0.1:6379/2"}, ""},
		{"password override", store.RedisOptions{URL: "redis://127.0.0.1:6379/0", Password: secret}, ""},
		{"user, password option", store.RedisOptions{URL: "redis://edge@127.0.0.1:6379/0", Password: secret}, ""},
		{"user without password", store.RedisOptions{URL: "redis://edge@127.0.0.1:6379/0"}, "user needs a password"},
		{"tls", store.RedisOptions{URL: "rediss://redis.example.com:6380/0"}, ""},
		{"tls with a CA", store.RedisOptions{URL: "rediss://redis.example.com:6380/0", TLSCA: readFile(t, caFile), TLSServerName: "redis"}, ""},
		{"tls insecure", store.RedisOptions{URL: "rediss://redis.example.com:6380/0", TLSInsecureSkipVerify: true}, ""},
		{"sentinel", store.RedisOptions{URL: "redis://:" + secret + "@10.0.0.1:26379/0", MasterName: "edge", Addrs: []string{"10.0.0.2:26379"}}, ""},
		{"cluster of one address", store.RedisOptions{URL: "redis://10.0.0.1:7000", Cluster: true}, ""},
		{"cluster", store.RedisOptions{URL: "redis://10.0.0.1:7000", Cluster: true, Addrs: []string{"10.0.0.2:7000", "10.0.0.3:7000"}}, ""},
		{"timeout and prefix", store.RedisOptions{URL: "redis://127.0.0.1:6379", Timeout: time.Second, KeyPrefix: "edge1:"}, ""},
		{"max per owner", store.RedisOptions{URL: "redis://127.0.0.1:6379", MaxPerOwner: 100}, ""},

		{"no URL", store.RedisOptions{}, "a URL is required"},
		{"other scheme", store.RedisOptions{URL: "http://127.0.0.1:6379"}, "scheme must be redis or rediss"},
		{"unix socket", store.RedisOptions{URL: "unix:///run/redis.sock"}, "scheme must be redis or rediss"},
		{"unparsable", store.RedisOptions{URL: "redis://edge:" + secret + "@127.0.0.1:port/0"}, "invalid URL: it cannot be read (a port that is not a number"},
		{"bad password escape", store.RedisOptions{URL: "redis://edge:" + secret + "%zz@127.0.0.1:6379/0"}, "invalid URL"},
		{"bad db", store.RedisOptions{URL: "redis://:" + secret + "@127.0.0.1:6379/x"}, "invalid URL"},
		// A '/' in the password ends the authority: the parser's error
		// would quote the rest of the password as a port.
		{"password with a slash", store.RedisOptions{URL: "redis://:" + secret + "/x@127.0.0.1:6379/0"}, "invalid URL"},
		{"no host", store.RedisOptions{URL: "redis://:" + secret + "@:6379/0"}, "the URL has no host"},
		{"no host, no port", store.RedisOptions{URL: "redis:///0"}, "the URL has no host"},
		{"port too large", store.RedisOptions{URL: "redis://:" + secret + "@127.0.0.1:99999/0"}, "port must be between 1 and 65535"},
		{"port 0", store.RedisOptions{URL: "redis://127.0.0.1:0/0"}, "port must be between 1 and 65535"},
		{"negative db", store.RedisOptions{URL: "redis://:" + secret + "@127.0.0.1:6379/-1"}, "db must not be negative"},
		{"query parameters", store.RedisOptions{URL: "redis://127.0.0.1:6379/0?read_timeout=5s"}, "query parameters"},
		{"query with a secret", store.RedisOptions{URL: "redis://127.0.0.1:6379/0?password=" + secret}, "query parameters"},
		{"fragment", store.RedisOptions{URL: "redis://127.0.0.1:6379/0#x"}, "fragment"},
		{"negative timeout", store.RedisOptions{URL: "redis://127.0.0.1:6379", Timeout: -time.Second}, "timeout must not be negative"},
		{"negative max per owner", store.RedisOptions{URL: "redis://127.0.0.1:6379", MaxPerOwner: -1}, "max per owner must not be negative"},
		{"sentinel and cluster", store.RedisOptions{URL: "redis://10.0.0.1:26379", MasterName: "edge", Cluster: true}, "exclude each other"},
		{"addresses alone", store.RedisOptions{URL: "redis://10.0.0.1:6379", Addrs: []string{"10.0.0.2:6379"}}, "need a sentinel master name or cluster"},
		{"address without port", store.RedisOptions{URL: "redis://10.0.0.1:7000", Cluster: true, Addrs: []string{"10.0.0.2"}}, "host:port"},
		{"cluster db", store.RedisOptions{URL: "redis://10.0.0.1:7000/3", Cluster: true}, "only db 0"},
		{"cluster, prefix with a tag", store.RedisOptions{URL: "redis://10.0.0.1:7000", Cluster: true, KeyPrefix: "{edge1}:"}, ""},
		{"cluster, prefix with an open brace", store.RedisOptions{URL: "redis://10.0.0.1:7000", Cluster: true, KeyPrefix: "edge{1:"}, ""},
		{"cluster, prefix with an empty tag", store.RedisOptions{URL: "redis://10.0.0.1:7000", Cluster: true, KeyPrefix: "edge{}:"}, "must not hold"},
		{"tls options without tls", store.RedisOptions{URL: "redis://127.0.0.1:6379", TLSInsecureSkipVerify: true}, "need a rediss URL"},
		{"CA without PEM", store.RedisOptions{URL: "rediss://127.0.0.1:6379", TLSCA: []byte("not a certificate")}, "no PEM certificate"},
		{"empty CA", store.RedisOptions{URL: "rediss://127.0.0.1:6379", TLSCA: []byte{}}, "no PEM certificate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := store.NewRedis(tc.opts)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("NewRedis: %v", err)
				}
				r.Close()
				return
			}
			if err == nil {
				r.Close()
				t.Fatalf("NewRedis accepted the options, want an error containing %q", tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q, want it to contain %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error %q carries the password", err)
			}
		})
	}
}

// startReachableRedis starts a redis-server and a store on it, closed
// when the test ends, and checks that every operation reaches it.
func startReachableRedis(t *testing.T) (*testkit.RedisServer, *store.Redis) {
	t.Helper()
	srv := testkit.StartRedis(t)
	r, err := store.NewRedis(store.RedisOptions{URL: srv.URL(), Timeout: testTimeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	reachRedis(t, r)
	return srv, r
}

// TestRedisKilledAndRestarted: with Redis gone every call fails fast with
// ErrUnavailable, and the same store works again once Redis is back on its
// port.
func TestRedisKilledAndRestarted(t *testing.T) {
	srv, r := startReachableRedis(t)

	srv.Kill()
	for i := 0; i < 50; i++ {
		assertFailsFast(t, r, false)
	}

	srv.Restart()
	// Every operation works again on the same store.
	reachRedis(t, r)
}

// TestRedisHung: a Redis that accepts connections but answers nothing
// makes every call time out with ErrTimeout, both on pooled connections
// and on new ones, and the store recovers once Redis answers again.
func TestRedisHung(t *testing.T) {
	srv, r := startReachableRedis(t)

	srv.Freeze()
	for i := 0; i < 5; i++ {
		assertFailsFast(t, r, true)
	}
	srv.Thaw()
	reachRedis(t, r)
}

// reachRedis waits until a store with a short timeout has connected and
// loaded its scripts: on a loaded machine the first call may take longer
// than testTimeout.
func reachRedis(t *testing.T, r store.Store) {
	t.Helper()
	ctx := context.Background()
	waitUntil(t, "the store to reach Redis", func() bool {
		_, err1 := r.Release(ctx, "", "warm-up", "v")
		_, _, err2 := r.Reserve(ctx, "", "warm-up", "v", time.Millisecond)
		_, err3 := r.Replace(ctx, "", "warm-up", "v", "v", time.Millisecond)
		_, err4 := r.Allow(ctx, "warm-up", store.Limit{Count: 1, Period: time.Millisecond})
		return err1 == nil && err2 == nil && err3 == nil && err4 == nil
	})
}

// assertFailsFast calls every operation and checks that each fails with
// ErrUnavailable (and ErrTimeout when timeout) well within hangBound, and
// that the error carries no key or value.
func assertFailsFast(t *testing.T, r store.Store, timeout bool) {
	t.Helper()
	const key, value = "key-that-must-not-leak", "value-that-must-not-leak"
	calls := map[string]func(ctx context.Context) error{
		"reserve": func(ctx context.Context) error { _, _, err := r.Reserve(ctx, "", key, value, time.Minute); return err },
		"replace": func(ctx context.Context) error {
			_, err := r.Replace(ctx, "", key, value, value, time.Minute)
			return err
		},
		"release": func(ctx context.Context) error { _, err := r.Release(ctx, "", key, value); return err },
		"allow": func(ctx context.Context) error {
			_, err := r.Allow(ctx, key, store.Limit{Count: 1, Period: time.Hour})
			return err
		},
	}
	for name, call := range calls {
		start := time.Now()
		err := call(context.Background())
		took := time.Since(start)
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("%s: %v, want ErrUnavailable", name, err)
		}
		if timeout && !errors.Is(err, store.ErrTimeout) {
			t.Fatalf("%s: %v, want ErrTimeout", name, err)
		}
		var se *store.Error
		if !errors.As(err, &se) || se.Op != name {
			t.Fatalf("%s: %v, want a *store.Error for %s", name, err, name)
		}
		if took > hangBound {
			t.Fatalf("%s took %s with a %s timeout", name, took, testTimeout)
		}
		if msg := err.Error(); strings.Contains(msg, key) || strings.Contains(msg, value) {
			t.Fatalf("%s: error %q carries the key or value", name, msg)
		}
	}
}

// TestRedisCallerDeadline: the caller's own, shorter deadline holds, and a
// caller that gives up does not make Redis look unavailable.
func TestRedisCallerDeadline(t *testing.T) {
	srv := testkit.StartRedis(t)
	r, err := store.NewRedis(store.RedisOptions{URL: srv.URL(), Timeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	mustReserve(t, r, "k", "v", time.Minute)
	srv.Freeze()
	defer srv.Thaw()

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	start := time.Now()
	_, _, err = r.Reserve(ctx, "", "k", "v", time.Minute)
	if !errors.Is(err, store.ErrTimeout) || time.Since(start) > hangBound {
		t.Fatalf("reserve under a %s deadline: %v after %s", testTimeout, err, time.Since(start))
	}

	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	_, _, err = r.Reserve(ctx, "", "k", "v", time.Minute)
	if !errors.Is(err, context.Canceled) || errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("reserve with a cancelled context: %v", err)
	}
}

func TestRedisPassword(t *testing.T) {
	const password = "pa55 w0rd:@/#"
	srv := testkit.StartRedisWith(t, testkit.RedisConfig{Password: password})
	bare := "redis://" + srv.Addr() + "/0"
	wrongInURL := (&url.URL{Scheme: "redis", User: url.UserPassword("", "wrong"), Host: srv.Addr(), Path: "/0"}).String()
	cases := []struct {
		name     string
		opts     store.RedisOptions
		ok       bool
		errMatch string
	}{
		{"password in the URL", store.RedisOptions{URL: srv.URL()}, true, ""},
		{"password given apart", store.RedisOptions{URL: bare, Password: password}, true, ""},
		{"given apart, it wins over the URL's", store.RedisOptions{URL: wrongInURL, Password: password}, true, ""},
		{"default user by name", store.RedisOptions{URL: "redis://default@" + srv.Addr() + "/0", Password: password}, true, ""},
		{"no password", store.RedisOptions{URL: bare}, false, "NOAUTH"},
		{"wrong password", store.RedisOptions{URL: bare, Password: "wrong"}, false, "WRONGPASS"},
		{"wrong user", store.RedisOptions{URL: "redis://nobody@" + srv.Addr() + "/0", Password: password}, false, "WRONGPASS"},
	}
	ctx := context.Background()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Timeout = easyTimeout
			r, err := store.NewRedis(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			ok, _, err := r.Reserve(ctx, "", tc.name, "v", time.Minute)
			if tc.ok {
				if err != nil || !ok {
					t.Fatalf("reserve: %v, %v", ok, err)
				}
				return
			}
			if err == nil {
				t.Fatal("reserve succeeded without the right credentials")
			}
			if !strings.Contains(err.Error(), tc.errMatch) {
				t.Fatalf("error %q, want %s", err, tc.errMatch)
			}
			// Redis answered: the store is reachable, and misconfigured.
			if errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("error %q matches ErrUnavailable", err)
			}
			if strings.Contains(err.Error(), password) {
				t.Fatalf("error %q carries the password", err)
			}
			// With a caller's share, the reservation and its count go in
			// one pipeline, which must name Redis's refusal too, not a
			// reply of nil.
			tc.opts.MaxPerOwner = 10
			owned, err := store.NewRedis(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer owned.Close()
			_, _, err = owned.Reserve(ctx, "caller", tc.name, "v", time.Minute)
			if err == nil || !strings.Contains(err.Error(), tc.errMatch) || errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("reserve with an owner: error %v, want %s", err, tc.errMatch)
			}
		})
	}
}

func TestRedisTLS(t *testing.T) {
	srv := testkit.StartRedisWith(t, testkit.RedisConfig{TLS: true, Password: "tls-secret"})
	cases := []struct {
		name string
		opts store.RedisOptions
		ok   bool
	}{
		{"trusted CA", store.RedisOptions{URL: srv.URL(), TLSCA: readFile(t, srv.CAFile())}, true},
		{"trusted CA, name localhost", store.RedisOptions{URL: srv.URL(), TLSCA: readFile(t, srv.CAFile()), TLSServerName: "localhost"}, true},
		{"insecure", store.RedisOptions{URL: srv.URL(), TLSInsecureSkipVerify: true}, true},
		{"unknown CA", store.RedisOptions{URL: srv.URL()}, false},
		{"wrong server name", store.RedisOptions{URL: srv.URL(), TLSCA: readFile(t, srv.CAFile()), TLSServerName: "redis.example.com"}, false},
		{"plain text to a TLS port", store.RedisOptions{URL: strings.Replace(srv.URL(), "rediss:", "redis:", 1)}, false},
	}
	ctx := context.Background()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Timeout = easyTimeout
			r, err := store.NewRedis(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			ok, _, err := r.Reserve(ctx, "", tc.name, "v", time.Minute)
			if tc.ok != (err == nil && ok) {
				t.Fatalf("reserve: %v, %v", ok, err)
			}
		})
	}
}

// TestRedisKeyLayout holds the keys the store writes to what RedisOptions
// documents, so that an administrator can write ACLs for them.
func TestRedisKeyLayout(t *testing.T) {
	srv := testkit.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	for _, prefix := range []string{"", "edge-a:"} {
		r, err := store.NewRedis(store.RedisOptions{URL: srv.URL(), KeyPrefix: prefix, Timeout: easyTimeout})
		if err != nil {
			t.Fatal(err)
		}
		mustReserve(t, r, "reserved", "v", time.Minute)
		if _, err := r.Allow(ctx, "limited", store.Limit{Count: 5, Period: time.Hour}); err != nil {
			t.Fatal(err)
		}
		r.Close()
		want := prefix
		if want == "" {
			want = store.DefaultKeyPrefix
		}
		for _, key := range []string{want + "reserved", "rate:" + want + "limited"} {
			if rdb.Exists(ctx, key).Val() != 1 {
				keys, _ := rdb.Keys(ctx, "*").Result()
				t.Fatalf("no key %q; Redis holds %q", key, keys)
			}
		}
	}
}

// TestRedisRanMarkers: with a cluster, a take that takes and each
// refund leave a ran marker in the limits' hash slot, for a minute more
// than the store's timeout; a refused take leaves none, and without a
// cluster no call does.
func TestRedisRanMarkers(t *testing.T) {
	ctx := context.Background()
	one := store.Limit{Count: 1, Period: time.Hour}
	for _, cluster := range []bool{false, true} {
		srv := testkit.StartRedisWith(t, testkit.RedisConfig{Cluster: cluster})
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
		defer rdb.Close()
		r, err := store.NewRedis(store.RedisOptions{URL: srv.URL(), Cluster: cluster, Timeout: easyTimeout})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		markers := func() []string {
			keys, err := rdb.Keys(ctx, "rate:"+store.DefaultKeyPrefix+"{limits}:ran:*").Result()
			if err != nil {
				t.Fatal(err)
			}
			return keys
		}
		takes := []store.Take{{Key: "a", Limit: one, N: 1}}
		for i, op := range []struct {
			name    string
			run     func() error
			markers int // with a cluster
		}{
			{"a take", func() error { _, err := r.AllowAll(ctx, takes); return err }, 1},
			{"a refused take", func() error { _, err := r.AllowAll(ctx, takes); return err }, 1},
			{"AllowN's refused take", func() error { _, err := r.AllowN(ctx, "a", one, 1); return err }, 1},
			{"a refund", func() error { return r.RefundAll(ctx, takes, 0) }, 2},
			{"AllowN's take", func() error { _, err := r.AllowN(ctx, "a", one, 1); return err }, 3},
		} {
			if err := op.run(); err != nil {
				t.Fatalf("cluster %v, %d. %s: %v", cluster, i+1, op.name, err)
			}
			want := 0
			if cluster {
				want = op.markers
			}
			if got := markers(); len(got) != want {
				t.Fatalf("cluster %v, after %s: markers %q, want %d", cluster, op.name, got, want)
			}
		}
		for _, key := range markers() {
			if ttl := rdb.PTTL(ctx, key).Val(); ttl <= time.Minute || ttl > time.Minute+easyTimeout {
				t.Errorf("marker %s: TTL %s, want a minute more than the timeout (%s)", key, ttl, easyTimeout)
			}
		}
	}
}

// TestRedisScriptsFlushed: a Redis that no longer holds the store's
// scripts (restarted, or SCRIPT FLUSH) answers their SHA1 with NOSCRIPT;
// each operation then runs its script by its source, in the same call,
// and by its SHA1 again once Redis holds it.
func TestRedisScriptsFlushed(t *testing.T) {
	srv := testkit.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	r, err := store.NewRedis(store.RedisOptions{URL: srv.URL(), Timeout: easyTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	// evals is how many scripts Redis ran by their source.
	evals := func() string {
		stats, err := rdb.Info(ctx, "commandstats").Result()
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(stats) {
			if rest, ok := strings.CutPrefix(line, "cmdstat_eval:calls="); ok {
				calls, _, _ := strings.Cut(rest, ",")
				return calls
			}
		}
		return "0"
	}
	for _, op := range []struct {
		name string
		run  func() (bool, string, error)
		want bool
	}{
		{"reserve", func() (bool, string, error) { return r.Reserve(ctx, "", "k", "v1", time.Minute) }, true},
		{"reserve again", func() (bool, string, error) {
			ok, current, err := r.Reserve(ctx, "", "k", "v2", time.Minute)
			if current != "v1" {
				t.Errorf("reserve again: current %q, want v1", current)
			}
			return ok, current, err
		}, false},
		{"replace", func() (bool, string, error) {
			ok, err := r.Replace(ctx, "", "k", "v1", "v3", time.Minute)
			return ok, "", err
		}, true},
		{"release", func() (bool, string, error) {
			ok, err := r.Release(ctx, "", "k", "v3")
			return ok, "", err
		}, true},
	} {
		if err := rdb.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if ok, _, err := op.run(); err != nil || ok != op.want {
			t.Fatalf("%s after SCRIPT FLUSH: %v, %v; want %v", op.name, ok, err, op.want)
		}
	}
	if got := evals(); got != "4" {
		t.Errorf("%s scripts run by their source after 4 flushes, want 4", got)
	}
	// The last flush left Redis the release script alone: the next
	// reservation runs its script by its source, and the one after by its
	// SHA1.
	mustReserve(t, r, "k", "v4", time.Minute)
	mustReserve(t, r, "k2", "v5", time.Minute)
	if got := evals(); got != "5" {
		t.Errorf("%s scripts run by their source after a reservation with the script held, want 5", got)
	}
	if rdb.Get(ctx, store.DefaultKeyPrefix+"k2").Val() != "v5" {
		t.Error("the last reservation is not in Redis")
	}
}

// TestRedisCluster runs the store against a one-node Redis Cluster.
func TestRedisCluster(t *testing.T) {
	srv := testkit.StartRedisWith(t, testkit.RedisConfig{Cluster: true})
	r, err := store.NewRedis(store.RedisOptions{URL: srv.URL(), Cluster: true, Timeout: easyTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	exercise(t, r)
}

// TestRedisSentinel runs the store through a sentinel to its master.
func TestRedisSentinel(t *testing.T) {
	master := testkit.StartRedis(t)
	sentinel := testkit.StartRedisSentinel(t, master, "edge")
	r, err := store.NewRedis(store.RedisOptions{URL: sentinel.URL(), MasterName: "edge", Timeout: easyTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	exercise(t, r)
	rdb := redis.NewClient(&redis.Options{Addr: master.Addr()})
	defer rdb.Close()
	if rdb.Exists(context.Background(), store.DefaultKeyPrefix+"k").Val() != 1 {
		t.Fatal("the reservation is not on the master")
	}
}

// exercise runs each operation once.
func exercise(t *testing.T, s store.Store) {
	t.Helper()
	ctx := context.Background()
	mustReserve(t, s, "k", "a", time.Minute)
	if ok, current, err := s.Reserve(ctx, "", "k", "b", time.Minute); err != nil || ok || current != "a" {
		t.Fatalf("reserve a held key: %v, %q, %v", ok, current, err)
	}
	if ok, err := s.Replace(ctx, "", "k", "a", "b", time.Minute); err != nil || !ok {
		t.Fatalf("replace: %v, %v", ok, err)
	}
	mustReserve(t, s, "k2", "a", time.Minute)
	if ok, err := s.Release(ctx, "", "k2", "a"); err != nil || !ok {
		t.Fatalf("release: %v, %v", ok, err)
	}
	for i := 0; i < 3; i++ {
		d, err := s.Allow(ctx, "caller", store.Limit{Count: 2, Period: time.Hour})
		if err != nil || d.Allowed != (i < 2) {
			t.Fatalf("allow %d: %+v, %v", i+1, d, err)
		}
	}
	// Keys that a cluster would hash to different slots, and one Allow
	// took from.
	takes := []store.Take{
		{Key: "tenant", Limit: store.Limit{Count: 5, Period: time.Hour}, N: 1},
		{Key: "caller", Limit: store.Limit{Count: 2, Period: time.Hour}, N: 1},
	}
	ds, err := s.AllowAll(ctx, takes)
	if err != nil || ds[0].Allowed || ds[0].RetryAfter != 0 || ds[1].Allowed || ds[1].RetryAfter <= 0 {
		t.Fatalf("allow all: %+v, %v", ds, err)
	}
	ds, err = s.AllowAll(ctx, takes[:1])
	if err != nil || !ds[0].Allowed || ds[0].Remaining != 4 {
		t.Fatalf("allow all, the key that had room: %+v, %v", ds, err)
	}
}

// writeTestCA writes a self-signed CA certificate as PEM.
// readFile returns the content of the file at path.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func writeTestCA(t *testing.T, path string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "store test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRedisDurability: Durability reads the server's maxmemory and
// maxmemory-policy (a server evicts the store's keys, every one with a
// TTL, only with a maxmemory and a policy other than noeviction), whether
// it has an append-only file, and its run_id, which stays while the
// server runs and changes when it restarts.
func TestRedisDurability(t *testing.T) {
	srv := testkit.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	var connections atomic.Int64
	r, err := store.NewRedis(store.RedisOptions{URL: srv.URL(), Timeout: easyTimeout, OnConnect: func() { connections.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	runID := func() string {
		t.Helper()
		info, err := rdb.InfoMap(ctx, "server").Result()
		if err != nil {
			t.Fatal(err)
		}
		return info["Server"]["run_id"]
	}
	first := runID()
	for _, tc := range []struct {
		maxMemory, policy, appendOnly string
		evicts                        bool
	}{
		{"0", "noeviction", "no", false},
		{"0", "allkeys-lru", "no", false}, // no maxmemory: nothing to make room for
		{"100mb", "noeviction", "yes", false},
		{"100mb", "allkeys-lru", "yes", true},
		{"100mb", "volatile-lru", "no", true},
		{"100mb", "volatile-ttl", "yes", true},
	} {
		for _, kv := range [][2]string{{"maxmemory", tc.maxMemory}, {"maxmemory-policy", tc.policy}, {"appendonly", tc.appendOnly}} {
			if err := rdb.ConfigSet(ctx, kv[0], kv[1]).Err(); err != nil {
				t.Fatal(err)
			}
		}
		want := store.RedisDurability{Evicts: tc.evicts, EvictionPolicy: tc.policy, AppendOnly: tc.appendOnly == "yes", RunID: first}
		if got, err := r.Durability(ctx); err != nil || got != want {
			t.Errorf("maxmemory %s, %s, appendonly %s: Durability gave %+v, %v; want %+v", tc.maxMemory, tc.policy, tc.appendOnly, got, err, want)
		}
	}
	if n := connections.Load(); n != 1 {
		t.Errorf("OnConnect called %d times for one connection", n)
	}

	// A restart: another run_id, on a new connection. The first call may
	// fail: the append-only file's rewrite, a child process, may still
	// hold the old connection open.
	srv.Kill()
	srv.Restart()
	var got store.RedisDurability
	waitUntil(t, "a reading after the restart", func() bool {
		got, err = r.Durability(ctx)
		return err == nil
	})
	if got.RunID == first || got.RunID != runID() || got.AppendOnly {
		t.Errorf("after a restart: %+v; want run_id %s, not %s, and no append-only file", got, runID(), first)
	}
	if n := connections.Load(); n < 2 {
		t.Errorf("OnConnect called %d times, want once more after the restart", n)
	}

	r.Close()
	if _, err := r.Durability(ctx); !errors.Is(err, store.ErrClosed) {
		t.Errorf("a closed store: %v, want ErrClosed", err)
	}
}

// TestRedisDurabilityCluster: with a cluster client, whose nodes each
// have their own run_id, Durability reports none, and OnConnect is not
// called.
func TestRedisDurabilityCluster(t *testing.T) {
	srv := testkit.StartRedisWith(t, testkit.RedisConfig{Cluster: true})
	r, err := store.NewRedis(store.RedisOptions{URL: srv.URL(), Cluster: true, Timeout: easyTimeout, OnConnect: func() { t.Error("OnConnect called with a cluster") }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := r.Durability(context.Background())
	if want := (store.RedisDurability{EvictionPolicy: "noeviction"}); err != nil || got != want {
		t.Errorf("Durability gave %+v, %v; want %+v", got, err, want)
	}
}

// TestRedisRenew: Renew moves the expiry of each key that holds its
// value, in one round trip for all of them, and leaves a key that holds
// another value (an answer recorded, another request's reservation) or
// none (released) as it is; after a SCRIPT FLUSH too (NOSCRIPT, then the
// script by its source). With a cluster of two nodes, the keys in the
// slots of both are renewed: go-redis's cluster pipeline sends each node
// the commands of its slots.
func TestRedisRenew(t *testing.T) {
	for _, tc := range pipelineBackends(t) {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.open(t)
			ctx := context.Background()
			var rdbs []*redis.Client
			for _, node := range tc.nodes {
				rdb := redis.NewClient(&redis.Options{Addr: node.Addr()})
				defer rdb.Close()
				rdbs = append(rdbs, rdb)
			}
			// pttl is the TTL of key, on the node that serves its slot
			// (another answers MOVED); -2 for none.
			pttl := func(key string) time.Duration {
				for _, rdb := range rdbs {
					if d, err := rdb.PTTL(ctx, store.DefaultKeyPrefix+key).Result(); err == nil {
						return d
					}
				}
				t.Fatalf("no node serves %s", key)
				return 0
			}
			const n = 20
			var keys, values []string
			for i := range n {
				key, value := fmt.Sprintf("%s-%d", t.Name(), i), fmt.Sprintf("v%d", i)
				mustReserve(t, r, key, value, time.Minute)
				keys, values = append(keys, key), append(values, value)
			}
			if ok, err := r.Replace(ctx, "", keys[1], values[1], "answer", time.Minute); !ok || err != nil {
				t.Fatalf("replace: %v %v", ok, err)
			}
			if ok, err := r.Release(ctx, "", keys[2], values[2]); !ok || err != nil {
				t.Fatalf("release: %v %v", ok, err)
			}
			for _, rdb := range rdbs {
				if rdb.DBSize(ctx).Val() == 0 {
					t.Fatal("a node holds none of the keys")
				}
				if tc.flush {
					if err := rdb.ScriptFlush(ctx).Err(); err != nil {
						t.Fatal(err)
					}
				}
			}
			renewed, errs := r.Renew(ctx, nil, keys, values, time.Hour)
			for i, err := range errs {
				if err != nil {
					t.Errorf("key %d: %v", i, err)
				}
				if want := i != 1 && i != 2; renewed[i] != want {
					t.Errorf("key %d: renewed %v, want %v", i, renewed[i], want)
				}
			}
			for i, key := range keys {
				switch ttl := pttl(key); {
				case i == 1 && ttl > time.Minute:
					t.Errorf("a key replaced renewed (%s)", ttl)
				case i == 2 && ttl != -2:
					t.Errorf("a key released written again (%s)", ttl)
				case i != 1 && i != 2 && ttl <= time.Minute:
					t.Errorf("key %d not renewed (%s)", i, ttl)
				}
			}
		})
	}
}

// TestRedisRenewMany: a renewal round of more keys than Redis can run
// scripts for within one timeout (400,000 within 1s: the round takes
// 2-5s here, its 800 pipelines together) renews every one of them, the
// last as the first: cut at one timeout, the tail of the keys in flight
// went unrenewed every round, the same keys each time, and expired while
// their requests were in flight. The timeout leaves each pipeline of
// them (500 scripts, a few milliseconds) room on a busy machine (150ms
// was once too little for one, under the race detector, the whole suite
// and two busy loops; 300ms at a load of 16 on two cores).
func TestRedisRenewMany(t *testing.T) {
	srv := testkit.StartRedis(t)
	r, err := store.NewRedis(store.RedisOptions{URL: srv.URL(), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	const n = 400_000
	keys, values := make([]string, n), make([]string, n)
	for i := range n {
		keys[i], values[i] = fmt.Sprintf("renew-many-%d", i), fmt.Sprintf("v%d", i)
	}
	// The first and the last key are reserved (the others renew nothing,
	// at the same cost to Redis), through a client of an easy timeout.
	easy, err := store.NewRedis(store.RedisOptions{URL: srv.URL(), Timeout: easyTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer easy.Close()
	for _, i := range []int{0, n - 1} {
		mustReserve(t, easy, keys[i], values[i], time.Minute)
	}
	failed := 0
	renewed, errs := r.Renew(ctx, nil, keys, values, time.Hour)
	for _, err := range errs {
		if err != nil {
			failed++
		}
	}
	if !renewed[0] || !renewed[n-1] || renewed[1] {
		t.Errorf("renewed: first %v, last %v, a key never reserved %v", renewed[0], renewed[n-1], renewed[1])
	}
	if failed != 0 {
		t.Errorf("%d of %d renewals failed", failed, n)
	}
	for _, i := range []int{0, n - 1} {
		if ttl := rdb.PTTL(ctx, store.DefaultKeyPrefix+keys[i]).Val(); ttl <= time.Minute {
			t.Errorf("key %d not renewed (%s)", i, ttl)
		}
	}
}

// TestRedisReleaseAll: ReleaseAll deletes every key that holds its
// value, in one pipeline, also when Redis no longer holds the script
// (NOSCRIPT) and across a cluster's nodes, and leaves a key that holds
// another value (an answer recorded, another request's reservation).
func TestRedisReleaseAll(t *testing.T) {
	for _, tc := range pipelineBackends(t) {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.open(t)
			ctx := context.Background()
			const n = 20
			var keys, values []string
			for i := range n {
				key, value := fmt.Sprintf("%s-%d", t.Name(), i), fmt.Sprintf("v%d", i)
				mustReserve(t, r, key, value, time.Minute)
				keys, values = append(keys, key), append(values, value)
			}
			if ok, err := r.Replace(ctx, "", keys[1], values[1], "answer", time.Minute); !ok || err != nil {
				t.Fatalf("replace: %v %v", ok, err)
			}
			for _, node := range tc.nodes {
				rdb := redis.NewClient(&redis.Options{Addr: node.Addr()})
				defer rdb.Close()
				if rdb.DBSize(ctx).Val() == 0 {
					t.Fatal("a node holds none of the keys")
				}
				if tc.flush {
					if err := rdb.ScriptFlush(ctx).Err(); err != nil {
						t.Fatal(err)
					}
				}
			}
			values[2] = "another request's"
			for i, err := range r.ReleaseAll(ctx, "", keys, values) {
				if err != nil {
					t.Errorf("key %d: %v", i, err)
				}
			}
			for i, key := range keys {
				// A Reserve with a new value finds what the key holds.
				reserved, current, err := r.Reserve(ctx, "", key, "new", time.Minute)
				switch {
				case err != nil:
					t.Fatalf("key %d: %v", i, err)
				case i == 1 && current != "answer", i == 2 && current != "v2":
					t.Errorf("key %d holding another value: now %q (reserved %v), want it kept", i, current, reserved)
				case i != 1 && i != 2 && !reserved:
					t.Errorf("key %d not released: holds %q", i, current)
				}
			}
		})
	}
}

// pipelineBackend is a Redis a pipeline test runs on: plain or a cluster
// of two nodes, with its scripts flushed after the keys are reserved or
// not (NOSCRIPT, then the script by its source).
type pipelineBackend struct {
	name  string
	opts  store.RedisOptions
	nodes []*testkit.RedisServer
	flush bool
}

// pipelineBackends starts a plain Redis and a cluster of two, and gives
// each with its scripts flushed and not.
func pipelineBackends(t *testing.T) []pipelineBackend {
	t.Helper()
	plain := testkit.StartRedis(t)
	cluster := testkit.StartRedisCluster(t, 2)
	clusterOpts := store.RedisOptions{URL: cluster[0].URL(), Addrs: []string{cluster[1].Addr()}, Cluster: true}
	return []pipelineBackend{
		{"plain", store.RedisOptions{URL: plain.URL()}, []*testkit.RedisServer{plain}, false},
		{"plain, scripts flushed", store.RedisOptions{URL: plain.URL()}, []*testkit.RedisServer{plain}, true},
		{"cluster of two", clusterOpts, cluster, false},
		{"cluster of two, scripts flushed", clusterOpts, cluster, true},
	}
}

// open is a store on b, closed when the test ends.
func (b pipelineBackend) open(t *testing.T) *store.Redis {
	t.Helper()
	b.opts.Timeout = easyTimeout
	r, err := store.NewRedis(b.opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// TestRedisTLSConnectionsClosed: after Redis closed the store's pooled
// TLS connections (a failover's CLIENT KILL, which sends a TLS
// close_notify before it hangs up, or a restart, which only hangs up),
// the limits' scripts, which are not sent again, do not fail on them:
// go-redis looks into a pooled TLS connection before it sends a command
// on it, as into one without TLS (see checkedTLSDial). More sequential
// calls than the pool holds connections, then calls at once.
func TestRedisTLSConnectionsClosed(t *testing.T) {
	testTLSConnectionsClosed(t, false)
}

// TestRedisSentinelTLSConnectionsClosed: as TestRedisTLSConnectionsClosed,
// through a sentinel over TLS to a TLS master, whose connections the
// master closes: the failover client dials the master, and the
// sentinels, with checkedTLSDial.
func TestRedisSentinelTLSConnectionsClosed(t *testing.T) {
	testTLSConnectionsClosed(t, true)
}

// testTLSConnectionsClosed runs TestRedisTLSConnectionsClosed, through a
// sentinel when sentinel is true.
func testTLSConnectionsClosed(t *testing.T, sentinel bool) {
	for _, tc := range []struct {
		name string
		end  func(t *testing.T, srv *testkit.RedisServer)
	}{
		{"CLIENT KILL", func(t *testing.T, srv *testkit.RedisServer) {
			if n := srv.KillClients(t); n < 2 {
				t.Fatalf("CLIENT KILL closed %d of the store's connections; want several", n)
			}
		}},
		{"restart", func(t *testing.T, srv *testkit.RedisServer) {
			srv.Kill()
			srv.Restart()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testkit.StartRedisWith(t, testkit.RedisConfig{TLS: true})
			opts := store.RedisOptions{URL: srv.URL(), TLSCA: readFile(t, srv.CAFile()), Timeout: easyTimeout}
			if sentinel {
				opts.URL, opts.MasterName = testkit.StartRedisSentinel(t, srv, "edge").URL(), "edge"
			}
			r, err := store.NewRedis(opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })
			ctx := context.Background()
			limit := store.Limit{Count: 1000000, Period: time.Hour}
			// allowAtOnce takes from the limit in n calls at once, which
			// mostly leave the pool with several connections.
			allowAtOnce := func(n int) {
				t.Helper()
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i := range n {
					wg.Go(func() {
						<-start
						if _, err := r.AllowAll(ctx, []store.Take{{Key: fmt.Sprint("k", i%3), Limit: limit, N: 1}}); err != nil {
							t.Errorf("allow at once: %v", err)
						}
					})
				}
				close(start)
				wg.Wait()
			}
			// several takes at once until the store holds several
			// connections to Redis: on a loaded machine the calls of one
			// round may each find a connection that another put back.
			several := func() {
				t.Helper()
				testkit.Eventually(t, "the store to hold several connections to Redis", func() bool {
					allowAtOnce(50)
					return srv.Clients(t) >= 2
				})
			}
			several()
			tc.end(t, srv)
			for i := range 10*runtime.GOMAXPROCS(0) + 1 {
				if _, err := r.AllowN(ctx, "k0", limit, 1); err != nil {
					t.Fatalf("allow %d after the connections closed: %v", i, err)
				}
			}
			several()
			tc.end(t, srv)
			allowAtOnce(50)
		})
	}
}
