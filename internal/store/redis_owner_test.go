package store_test

import (
	"context"
	"encoding/hex"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ucwa-edge/caddy-ucwa/internal/store"
	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// ownerTopology is a Redis the owners' shares are tested on, with a
// client of each of its nodes, to look behind the store.
type ownerTopology struct {
	name  string
	opts  store.RedisOptions
	nodes []*redis.Client
}

// ownerTopologies starts a single Redis, a master behind a sentinel and
// a cluster of two nodes, where an owner's key and its reservations'
// keys are on different nodes.
func ownerTopologies(t *testing.T) []ownerTopology {
	t.Helper()
	single := testkit.StartRedis(t)
	master := testkit.StartRedis(t)
	sentinel := testkit.StartRedisSentinel(t, master, "edge")
	cluster := testkit.StartRedisCluster(t, 2)
	return []ownerTopology{
		{"single", store.RedisOptions{URL: single.URL()}, testkit.RedisClients(t, single)},
		{"sentinel", store.RedisOptions{URL: sentinel.URL(), MasterName: "edge"}, testkit.RedisClients(t, master)},
		{"cluster of two", store.RedisOptions{URL: cluster[0].URL(), Addrs: []string{cluster[1].Addr()}, Cluster: true}, testkit.RedisClients(t, cluster...)},
	}
}

// open is a store on tp with the key prefix and the bound, closed when
// the test ends.
func (tp ownerTopology) open(t *testing.T, prefix string, maxPerOwner int) *store.Redis {
	t.Helper()
	opts := tp.opts
	opts.KeyPrefix, opts.MaxPerOwner = prefix, maxPerOwner
	return openRedis(t, opts)
}

// openRedis is a store of opts, with easyTimeout where opts sets no
// timeout, closed when the test ends.
func openRedis(t *testing.T, opts store.RedisOptions) *store.Redis {
	t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = easyTimeout
	}
	r, err := store.NewRedis(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// exists reports whether a node holds key (the others of a cluster
// answer MOVED).
func (tp ownerTopology) exists(t *testing.T, key string) bool {
	t.Helper()
	return tp.holder(t, key) != nil
}

// holder is the client of tp's node that holds key, nil for none.
func (tp ownerTopology) holder(t *testing.T, key string) *redis.Client {
	t.Helper()
	for _, rdb := range tp.nodes {
		n, err := rdb.Exists(context.Background(), key).Result()
		if err != nil && !redis.HasErrorPrefix(err, "MOVED") {
			t.Fatal(err)
		}
		if n == 1 {
			return rdb
		}
	}
	return nil
}

// keys are the keys of every node that match pattern.
func (tp ownerTopology) keys(t *testing.T, pattern string) []string {
	t.Helper()
	var out []string
	for _, rdb := range tp.nodes {
		keys, err := rdb.Keys(context.Background(), pattern).Result()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, keys...)
	}
	return out
}

// ownerKey is the key of owner's count under prefix.
func ownerKey(prefix, owner string) string {
	return prefix + "owner:" + hex.EncodeToString([]byte(owner))
}

// TestRedisMaxPerOwner: on a single Redis, through a sentinel and on a
// cluster of two nodes, an owner gets MaxPerOwner reservations and then
// ErrOwnerFull alone, with nothing reserved, while other owners and
// reservations of no owner go on; a repeat of a key it holds is still
// answered with its value, and the same call run again (its own value)
// too, also with the scripts flushed from Redis (NOSCRIPT). A replaced
// reservation counts as before, and a released one no longer counts;
// once an owner's reservations expired it has its share again. The
// count is a sorted set at key_prefix+"owner:"+hex(owner) that lives as
// long as its latest reservation; a store without the bound, or a call
// without an owner, writes none.
func TestRedisMaxPerOwner(t *testing.T) {
	ctx := context.Background()
	for _, tp := range ownerTopologies(t) {
		t.Run(tp.name, func(t *testing.T) {
			const prefix = "share:"
			r := tp.open(t, prefix, 2)
			reserve := func(owner, key string, ttl time.Duration) error {
				t.Helper()
				ok, current, err := r.Reserve(ctx, owner, key, "v-"+key, ttl)
				if err == nil && !ok {
					t.Fatalf("%s: held already (%q)", key, current)
				}
				return err
			}
			refused := func(owner, key, when string) {
				t.Helper()
				err := reserve(owner, key, time.Minute)
				if !errors.Is(err, store.ErrOwnerFull) || errors.Is(err, store.ErrFull) || errors.Is(err, store.ErrUnavailable) {
					t.Fatalf("%s %s: %v, want ErrOwnerFull alone", key, when, err)
				}
				if tp.exists(t, prefix+key) {
					t.Fatalf("%s %s: refused, yet Redis holds it", key, when)
				}
			}
			for _, k := range []string{"a1", "a2"} {
				if err := reserve("a", k, time.Minute); err != nil {
					t.Fatalf("%s: %v", k, err)
				}
			}
			for _, rdb := range tp.nodes {
				if err := rdb.ScriptFlush(ctx).Err(); err != nil {
					t.Fatal(err)
				}
			}
			refused("a", "a3", "over a's share, the scripts flushed")
			for _, tc := range []struct{ name, value string }{{"a repeat", "other"}, {"the same call again", "v-a1"}} {
				if ok, current, err := r.Reserve(ctx, "a", "a1", tc.value, time.Minute); err != nil || ok || current != "v-a1" {
					t.Fatalf("%s of a1: %v %q %v, want its value", tc.name, ok, current, err)
				}
			}
			for _, k := range []string{"b1", "b2"} {
				if err := reserve("b", k, time.Minute); err != nil {
					t.Fatalf("%s while a holds its share: %v", k, err)
				}
			}
			if err := reserve("", "none", time.Minute); err != nil {
				t.Fatalf("no owner: %v", err)
			}
			if ok, err := r.Replace(ctx, "a", "a2", "v-a2", "answer", time.Minute); err != nil || !ok {
				t.Fatalf("replace a2: %v %v", ok, err)
			}
			refused("a", "a3", "after a replace")
			if ok, err := r.Release(ctx, "a", "a1", "v-a1"); err != nil || !ok {
				t.Fatalf("release a1: %v %v", ok, err)
			}
			if err := reserve("a", "a3", time.Minute); err != nil {
				t.Fatalf("a3 once a1 is released: %v", err)
			}
			refused("a", "a4", "after a release and a3")

			for _, owner := range []string{"a", "b"} {
				key := ownerKey(prefix, owner)
				var n int64
				var ttl time.Duration
				for _, rdb := range tp.nodes {
					if rdb.Exists(ctx, key).Val() == 1 {
						n, ttl = rdb.ZCard(ctx, key).Val(), rdb.PTTL(ctx, key).Val()
					}
				}
				if n != 2 || ttl <= 0 || ttl > time.Minute {
					t.Errorf("%s: %d members, TTL %s; want 2, within a minute", key, n, ttl)
				}
			}
			if got := tp.keys(t, prefix+"owner:*"); len(got) != 2 {
				t.Errorf("owners' keys %q, want a's and b's", got)
			}

			// Reservations of a short TTL, waited on until Redis no longer
			// holds them nor c's count.
			for _, k := range []string{"c1", "c2"} {
				if err := reserve("c", k, 50*time.Millisecond); err != nil {
					t.Fatalf("%s: %v", k, err)
				}
			}
			waitUntil(t, "c's reservations and count to expire", func() bool {
				return !tp.exists(t, prefix+"c1") && !tp.exists(t, prefix+"c2") && !tp.exists(t, ownerKey(prefix, "c"))
			})
			for _, k := range []string{"c3", "c4"} {
				if err := reserve("c", k, time.Minute); err != nil {
					t.Fatalf("%s once c's reservations expired: %v", k, err)
				}
			}
			refused("c", "c5", "over c's share again")
		})
		t.Run(tp.name+", no bound or no owner", func(t *testing.T) {
			const prefix = "unbound:"
			unbound := tp.open(t, prefix, 0)
			bound := tp.open(t, prefix, 1)
			for i, call := range []func() (bool, string, error){
				func() (bool, string, error) { return unbound.Reserve(ctx, "a", "k1", "v", time.Minute) },
				func() (bool, string, error) { return bound.Reserve(ctx, "", "k2", "v", time.Minute) },
				func() (bool, string, error) { return bound.Reserve(ctx, "", "k3", "v", time.Minute) },
			} {
				if ok, _, err := call(); err != nil || !ok {
					t.Fatalf("reservation %d: %v %v", i+1, ok, err)
				}
			}
			if got := tp.keys(t, prefix+"*"); len(got) != 3 {
				t.Errorf("keys %q, want the three reservations alone", got)
			}
		})
		t.Run(tp.name+", at once", func(t *testing.T) {
			testRedisMaxPerOwnerConcurrent(t, tp)
		})
	}
}

// testRedisMaxPerOwnerConcurrent: reservations of one owner racing for
// distinct keys get exactly its share, the others nothing reserved,
// while another owner's all pass.
func testRedisMaxPerOwnerConcurrent(t *testing.T, tp ownerTopology) {
	const prefix = "race:"
	r := tp.open(t, prefix, 30)
	raceOwnerShare(t, r, 30)
	if got := tp.keys(t, prefix+"a*"); len(got) != 30 {
		t.Errorf("Redis holds %d reservations of a, want 30", len(got))
	}
}

// TestRedisMaxPerOwnerFull: a Redis over its maxmemory (noeviction)
// refuses an owner's new reservation as full (ErrFull, not its share),
// reserving nothing, and still answers a repeat of a key it holds with
// its value, though it cannot count it.
func TestRedisMaxPerOwnerFull(t *testing.T) {
	srv := testkit.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	r, err := store.NewRedis(store.RedisOptions{URL: srv.URL(), MaxPerOwner: 10, Timeout: easyTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	mustReserve(t, r, "held", "v", time.Minute)
	if _, _, err := r.Reserve(ctx, "a", "a1", "v", time.Minute); err != nil {
		t.Fatal(err)
	}
	used, err := strconv.Atoi(rdb.InfoMap(ctx, "memory").Val()["Memory"]["used_memory"])
	if err != nil {
		t.Fatal(err)
	}
	for name, value := range map[string]string{"maxmemory-policy": "noeviction", "maxmemory": strconv.Itoa(used / 2)} {
		if err := rdb.ConfigSet(ctx, name, value).Err(); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err = r.Reserve(ctx, "a", "a2", "v", time.Minute)
	if !errors.Is(err, store.ErrFull) || errors.Is(err, store.ErrOwnerFull) {
		t.Fatalf("a new reservation in a full Redis: %v, want ErrFull", err)
	}
	if rdb.Exists(ctx, store.DefaultKeyPrefix+"a2").Val() != 0 {
		t.Fatal("a full Redis holds the refused reservation")
	}
	for _, key := range []string{"held", "a1"} {
		if ok, current, err := r.Reserve(ctx, "a", key, "other", time.Minute); err != nil || ok || current != "v" {
			t.Errorf("a repeat of %s in a full Redis: %v %q %v, want its value", key, ok, current, err)
		}
	}
}
