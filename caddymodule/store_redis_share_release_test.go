package caddymodule

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// shareTopology is a Redis a caller's share is tested on: the store
// block of an edge with max_entries_per_caller 2, and a client of each
// of its nodes, to look behind the edge.
type shareTopology struct {
	name  string
	store string
	nodes []*redis.Client
}

// shareTopologies starts a single Redis, a master behind a sentinel and
// a cluster of two nodes, where a caller's count and its reservations
// are on different nodes.
func shareTopologies(t *testing.T) []shareTopology {
	t.Helper()
	block := func(url, more string) string {
		return "store redis " + url + " {\n\t\t\ttimeout 5s\n\t\t\tmax_entries_per_caller 2\n" + more + "\t\t}"
	}
	single := testkit.StartRedis(t)
	master := testkit.StartRedis(t)
	sentinel := testkit.StartRedisSentinel(t, master, "edge")
	cluster := testkit.StartRedisCluster(t, 2)
	return []shareTopology{
		{"single", block(single.URL(), ""), testkit.RedisClients(t, single)},
		{"sentinel", block(sentinel.URL(), "\t\t\tsentinel edge\n"), testkit.RedisClients(t, master)},
		{"cluster of two", block(cluster[0].URL(), "\t\t\tcluster "+cluster[1].Addr()+"\n"), testkit.RedisClients(t, cluster...)},
	}
}

// counts are the members of every caller's count, each with its score
// (when it stops counting, in Redis's milliseconds).
func (tp shareTopology) counts(t *testing.T) map[string]float64 {
	t.Helper()
	ctx := context.Background()
	out := map[string]float64{}
	for _, rdb := range tp.nodes {
		sets, err := rdb.Keys(ctx, "ucwa:owner:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, set := range sets {
			members, err := rdb.ZRangeWithScores(ctx, set, 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range members {
				out[m.Member.(string)] = m.Score
			}
		}
	}
	return out
}

// TestRedisCallerShareFollowsKeys: on a single Redis, through a
// sentinel and on a cluster of two nodes, with max_entries_per_caller
// 2, a caller's requests that reserved a key and then reached no pool
// (refused by a limit, answered 410 with the pool down) leave nothing
// of its share: its next two requests are taken (held at the pool), and
// the one after them is refused (429, its share full). While they are
// in flight, each renewal of their keys moves their count on with the
// key's expiry: a caller's count ends with its key, not with the window
// from its reservation.
func TestRedisCallerShareFollowsKeys(t *testing.T) {
	clock := renewalClock(t)
	for _, tp := range shareTopologies(t) {
		t.Run(tp.name, func(t *testing.T) {
			pool := newIdemPool(t, "primary")
			e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t), tp.store,
				"limit calls 1 per 1h key {http.request.header.X-Bucket}", "primary "+pool.Addr()))
			caller := idemToken(t, "tenant-1", "oid-"+tp.name, "sub-a")
			call := func(op, bucket, answer string) idemCall {
				h := caller.Clone()
				h.Set("X-Bucket", bucket)
				c := idemCall{header: h, op: op, answer: answer}
				if op == "" {
					c.body = `{"to":"4255551234"}`
				}
				return c
			}

			// A request of no operationId spends the bucket "spent": the
			// limit refuses the two after it, once they reserved.
			if resp := e.call(call("", "spent", "")); resp.Status != http.StatusCreated {
				t.Fatalf("the request that spends the bucket: %d %s", resp.Status, resp.Body)
			}
			for _, op := range []string{"limited-1", "limited-2"} {
				resp := e.call(call(op, "spent", ""))
				if resp.Status != http.StatusTooManyRequests || ucwaError(t, resp.Body).Message == errCallerShareFull.Message {
					t.Fatalf("%s: %d %s, want the limit's 429", op, resp.Status, resp.Body)
				}
			}
			pool.Kill()
			for _, op := range []string{"nopool-1", "nopool-2"} {
				if resp := e.call(call(op, op, "")); resp.Status != http.StatusGone {
					t.Fatalf("%s with the pool down: %d %s, want 410", op, resp.Status, resp.Body)
				}
			}
			pool.Restart(t)
			if got := tp.counts(t); len(got) != 0 {
				t.Fatalf("counts %v after four requests that reached no pool, want none", got)
			}

			// Released once, and at the end of a test that failed.
			release := sync.OnceFunc(pool.Release)
			defer release()
			held := []<-chan testkit.Response{e.sendHeld(t, call("held-1", "held-1", "hold")), e.sendHeld(t, call("held-2", "held-2", "hold"))}
			pool.Requests.WaitFor(t, 3, "the held requests at the pool")
			if resp := e.call(call("over", "over", "")); resp.Status != http.StatusTooManyRequests || ucwaError(t, resp.Body).Message != errCallerShareFull.Message {
				t.Fatalf("a third request in flight: %d %s, want 429 for the caller's full share", resp.Status, resp.Body)
			}

			reserved := tp.counts(t)
			if len(reserved) != 2 {
				t.Fatalf("counts %v with two requests in flight, want two", reserved)
			}
			// A renewal moves each count on, from a later millisecond of
			// Redis's clock than its reservation's.
			latest := 0.0
			for _, until := range reserved {
				latest = max(latest, until)
			}
			testkit.Eventually(t, "Redis's clock to pass the reservations'", func() bool {
				now, err := tp.nodes[0].Time(context.Background()).Result()
				return err == nil && float64(now.UnixMilli())+DefaultIdempotencyWindow.Seconds()*1000 > latest
			})
			clock.WaitPending(t, 1)
			clock.Advance(DefaultIdempotencyWindow / 3)
			testkit.Eventually(t, "the renewals to move the counts on", func() bool {
				renewed := tp.counts(t)
				for member, until := range reserved {
					if renewed[member] <= until {
						return false
					}
				}
				return len(renewed) == 2
			})
			release()
			for i, answer := range held {
				if resp := <-answer; resp.Status != http.StatusCreated {
					t.Errorf("held request %d: %d %s", i+1, resp.Status, resp.Body)
				}
			}
		})
	}
}
