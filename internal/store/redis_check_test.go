package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/ucwa-edge/caddy-ucwa/internal/store"
	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestRedisCheckScripts: CheckScripts passes on a plain Redis (holding
// the scripts or not), through a sentinel and on a cluster, given the
// store's timeout or longer, and writes nothing; a user denied EVALSHA
// fails it with a permission that names the command.
func TestRedisCheckScripts(t *testing.T) {
	ctx := context.Background()
	plain := testkit.StartRedis(t)
	master := testkit.StartRedis(t)
	sentinel := testkit.StartRedisSentinel(t, master, "edge")
	cluster := testkit.StartRedisCluster(t, 2)
	for _, tc := range []struct {
		name    string
		opts    store.RedisOptions
		servers []*testkit.RedisServer
	}{
		{"plain", store.RedisOptions{URL: plain.URL()}, []*testkit.RedisServer{plain}},
		{"sentinel", store.RedisOptions{URL: sentinel.URL(), MasterName: "edge"}, []*testkit.RedisServer{master}},
		{"cluster", store.RedisOptions{URL: cluster[0].URL(), Addrs: []string{cluster[1].Addr()}, Cluster: true}, cluster},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := openRedis(t, tc.opts)
			for _, rdb := range testkit.RedisClients(t, tc.servers...) {
				if err := rdb.ScriptFlush(ctx).Err(); err != nil {
					t.Fatal(err)
				}
			}
			for _, timeout := range []time.Duration{easyTimeout, 2 * easyTimeout, easyTimeout, 2 * easyTimeout} {
				if err := r.CheckScripts(ctx, timeout); err != nil {
					t.Fatalf("CheckScripts within %s: %v", timeout, err)
				}
			}
			for _, rdb := range testkit.RedisClients(t, tc.servers...) {
				if n, err := rdb.DBSize(ctx).Result(); err != nil || n != 0 {
					t.Errorf("the check left %d keys (%v)", n, err)
				}
			}
		})
	}

	t.Run("denied EVALSHA", func(t *testing.T) {
		admin := testkit.RedisClients(t, plain)[0]
		if err := admin.Do(ctx, "ACL", "SETUSER", "noscripts", "on", ">pw", "~ucwa:*", "+ping", "+eval", "+get").Err(); err != nil {
			t.Fatal(err)
		}
		r := openRedis(t, store.RedisOptions{URL: "redis://noscripts:pw@" + plain.Addr() + "/0"})
		if err := r.Ping(ctx, easyTimeout); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		err := r.CheckScripts(ctx, easyTimeout)
		if got, denied := store.RedisFailure(err), store.RedisDenied(err); got != "permission" || denied != "EVALSHA" {
			t.Fatalf("CheckScripts: %v, %q denied %q; want permission, EVALSHA", err, got, denied)
		}
	})
}
