package caddymodule

import (
	"bytes"
	"context"
	"io"
	"net"
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
	clock := testkit.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	realRenewAfter := renewAfter
	renewAfter = func(d time.Duration, f func()) renewalTimer { return clock.AfterFunc(d, f).(renewalTimer) }
	t.Cleanup(func() { renewAfter = realRenewAfter })
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	p := &droppingProxy{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
			go p.serve(c, redisAddr)
		}
	}()
	return p
}

func (p *droppingProxy) drop(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lose = b
}

// serve passes c's commands on (go-redis writes a command in one write,
// and the next once it has the answer) but the dropped ones.
func (p *droppingProxy) serve(c net.Conn, redisAddr string) {
	defer c.Close()
	up, err := net.Dial("tcp", redisAddr)
	if err != nil {
		return
	}
	defer up.Close()
	go func() { _, _ = io.Copy(c, up) }()
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		p.mu.Lock()
		lose := p.lose != nil && bytes.Contains(buf[:n], p.lose)
		p.mu.Unlock()
		if lose {
			if _, err := io.WriteString(c, "-CLUSTERDOWN Hash slot not served\r\n"); err != nil {
				return
			}
			continue
		}
		if _, err := up.Write(buf[:n]); err != nil {
			return
		}
	}
}
