package caddymodule

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestIdempotencyRenewalPastFailedKey: two requests are in flight on a
// Redis store, and every renewal of the first one's key fails (Redis
// Cluster answers CLUSTERDOWN for a slot whose shard is down, as a
// cluster that need not cover every slot does). The second one's
// reservation is renewed at every tick all the same: a key that fails
// costs only its own request its renewal; otherwise, after two ticks
// without one, the second key expires while its request is still in
// flight, and a repeat is delivered again.
func TestIdempotencyRenewalPastFailedKey(t *testing.T) {
	clock := renewalClock(t)
	srv := testkit.StartRedis(t)
	proxy := newDroppingProxy(t, srv.Addr())
	pool := newIdemPool(t, "primary")
	e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t),
		"store redis redis://"+proxy.addr+" {\n\t\t\ttimeout 5s\n\t\t}", "primary "+pool.Addr()))
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	caller := idemToken(t, "tenant-1", "oid-a", "sub-a")

	failing := e.sendHeld(t, idemCall{header: caller, op: "fails", answer: "hold"})
	pool.Requests.WaitFor(t, 1, "requests at the pool")
	keys := rdb.Keys(ctx, "*").Val()
	if len(keys) != 1 {
		t.Fatalf("keys %q, want the first request's", keys)
	}
	failingKey := keys[0]
	renewed := e.sendHeld(t, idemCall{header: caller, op: "renewed", answer: "hold"})
	pool.Requests.WaitFor(t, 2, "requests at the pool")
	keys = slices.DeleteFunc(rdb.Keys(ctx, "*").Val(), func(k string) bool { return k == failingKey })
	if len(keys) != 1 {
		t.Fatalf("keys %q, want the second request's", keys)
	}
	renewedKey := keys[0]
	proxy.drop([]byte(failingKey))
	clock.WaitPending(t, 1)

	// Map order puts the failing key first in about half of the rounds.
	const short = time.Minute
	for tick := range 20 {
		rdb.PExpire(ctx, renewedKey, short)
		clock.Advance(DefaultIdempotencyWindow / 3)
		if ttl := rdb.PTTL(ctx, renewedKey).Val(); ttl <= short {
			t.Fatalf("tick %d: the key of the request in flight left to expire (%s) since another key's renewal failed", tick, ttl)
		}
	}
	pool.Release()
	<-failing
	<-renewed
}

// renewalClock returns a fake clock that drives the renewals of
// reservations in flight (renewAfter) until the test ends.
func renewalClock(t *testing.T) *testkit.Clock {
	t.Helper()
	clock := testkit.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	real := renewAfter
	renewAfter = func(d time.Duration, f func()) renewalTimer { return clock.AfterFunc(d, f).(renewalTimer) }
	t.Cleanup(func() { renewAfter = real })
	return clock
}

// droppingProxy passes a client's commands on to Redis, but those that
// hold the bytes given to drop, which it answers as a Redis Cluster
// answers for a slot no shard serves.
type droppingProxy struct {
	addr string
	mu   sync.Mutex
	lose []byte
}

func newDroppingProxy(t *testing.T, redisAddr string) *droppingProxy {
	t.Helper()
	p := new(droppingProxy)
	p.addr = startRedisProxy(t, redisAddr, func(write []byte) (string, bool) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.lose != nil && bytes.Contains(write, p.lose) {
			return "-CLUSTERDOWN Hash slot not served\r\n", false
		}
		return "", true
	})
	return p
}

func (p *droppingProxy) drop(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lose = b
}

// TestIdempotencyRenewalRedisFull: a request is in flight on a Redis
// store when Redis goes over its maxmemory (policy noeviction), which
// refuses every write that may grow it. Its reservation is renewed all
// the same, as a full memory store renews what it holds: a renewal only
// moves the key's expiry. Otherwise the key expires while its request is
// still in flight, and a repeat, once Redis has room again, is delivered
// a second time.
func TestIdempotencyRenewalRedisFull(t *testing.T) {
	clock := renewalClock(t)
	srv := testkit.StartRedis(t)
	pool := newIdemPool(t, "primary")
	e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t),
		"store redis "+srv.URL()+" {\n\t\t\ttimeout 5s\n\t\t}", "primary "+pool.Addr()))
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	caller := idemToken(t, "tenant-1", "oid-a", "sub-a")

	first := e.sendHeld(t, idemCall{header: caller, op: "full", answer: "hold"})
	pool.Requests.WaitFor(t, 1, "requests at the pool")
	keys := rdb.Keys(ctx, "*").Val()
	if len(keys) != 1 {
		t.Fatalf("keys %q, want the request's", keys)
	}
	clock.WaitPending(t, 1)
	overMaxmemory(t, rdb)
	const short = time.Minute
	rdb.PExpire(ctx, keys[0], short)
	clock.Advance(DefaultIdempotencyWindow / 3)
	if ttl := rdb.PTTL(ctx, keys[0]).Val(); ttl <= short {
		t.Errorf("the key of the request in flight left to expire (%s): its renewal was refused by a full Redis", ttl)
	}
	if err := rdb.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	pool.Release()
	if resp := <-first; resp.Status != http.StatusCreated {
		t.Fatalf("first request: %d %s", resp.Status, resp.Body)
	}
}
