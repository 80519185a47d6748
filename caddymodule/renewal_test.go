package caddymodule

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
	r := startProxiedRedis(t, "timeout 5s")
	e, proxy, pool, rdb := r.e, r.proxy, r.pool, r.rdb
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
	proxy.fail(holding(failingKey))
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

// redisProxy stands between the edge and a standalone Redis and passes
// each command on, a pipeline's one by one in order, and its reply back,
// but: a command that failing tells is not passed on and is answered as
// a Redis Cluster answers for a slot no shard serves; and, armed
// (holdNext, or holdEach for every one), it holds back the reply of the
// next command it is armed for that Redis ran (its reply is no error, such as NOSCRIPT), and the
// replies after it on that connection,
// until release, while it goes on passing the commands that follow to
// Redis.
type redisProxy struct {
	addr     string
	released chan struct{}

	mu      sync.Mutex
	failing func(args []string) bool // nil: none
	armed   func(args []string) bool // nil: disarmed
	// armedEach keeps armed after a reply it held (holdEach).
	armedEach bool
	// reserved are the keys of the reservations Redis ran, in order (a
	// key taken is one of them, a key found held too).
	reserved []string

	// held counts the replies held; renewals, the renewals Redis ran
	// (the replace script's, of a value with itself); releases, the
	// releases Redis ran (whether or not they found their value); gaveUp,
	// the connections the edge closed while a reply on them was held.
	held, renewals, releases, gaveUp testkit.Counter
}

func newRedisProxy(t *testing.T, redisAddr string) *redisProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &redisProxy{addr: ln.Addr().String(), released: make(chan struct{})}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			wg.Go(func() { p.serve(conn, redisAddr) })
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		p.release()
		mu.Lock()
		for _, conn := range conns {
			_ = conn.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return p
}

// fail has every command that match tells answered as an error.
func (p *redisProxy) fail(match func(args []string) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failing = match
}

// holdNext arms the proxy for the next command that match tells.
func (p *redisProxy) holdNext(match func(args []string) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed, p.armedEach = match, false
}

// holdEach arms the proxy for every command that match tells.
func (p *redisProxy) holdEach(match func(args []string) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed, p.armedEach = match, true
}

// release gives the replies held, and holds no more.
func (p *redisProxy) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.released:
	default:
		close(p.released)
	}
}

// reservedKey is the key of the nth reservation Redis ran, from 0.
func (p *redisProxy) reservedKey(t *testing.T, n int) string {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if n >= len(p.reserved) {
		t.Fatalf("reservation %d of %d", n, len(p.reserved))
	}
	return p.reserved[n]
}

func (p *redisProxy) serve(client net.Conn, redisAddr string) {
	defer client.Close()
	server, err := net.Dial("tcp", redisAddr)
	if err != nil {
		return
	}
	defer server.Close()
	type reply struct {
		raw  []byte
		held bool
	}
	replies := make(chan reply, 1024)
	var heldOpen atomic.Int32 // replies held and not yet given
	done := make(chan struct{})
	go func() {
		defer close(done)
		for r := range replies {
			if r.held {
				<-p.released
				heldOpen.Add(-1)
			}
			if _, err := client.Write(r.raw); err != nil {
				return
			}
		}
	}()
	defer func() {
		close(replies)
		<-done
	}()
	fromClient, fromServer := bufio.NewReader(client), bufio.NewReader(server)
	for {
		raw, args, err := readRESPCommand(fromClient)
		if err != nil {
			if heldOpen.Load() > 0 {
				p.gaveUp.Add()
			}
			return
		}
		p.mu.Lock()
		fail := p.failing != nil && p.failing(args)
		p.mu.Unlock()
		if fail {
			replies <- reply{raw: []byte("-CLUSTERDOWN Hash slot not served\r\n")}
			continue
		}
		if _, err := server.Write(raw); err != nil {
			return
		}
		raw, err = readRESPReply(fromServer)
		if err != nil {
			return
		}
		if raw[0] == '-' { // not run (NOSCRIPT, say)
			replies <- reply{raw: raw}
			continue
		}
		p.mu.Lock()
		hold := p.armed != nil && p.armed(args)
		if hold && !p.armedEach {
			p.armed = nil
		}
		if isReserve(args) {
			p.reserved = append(p.reserved, args[3])
		}
		p.mu.Unlock()
		if isRenewal(args) {
			p.renewals.Add()
		}
		if isRelease(args) {
			p.releases.Add()
		}
		if hold {
			heldOpen.Add(1)
			p.held.Add()
		}
		replies <- reply{raw: raw, held: hold}
	}
}

// isRenewal tells the replace script's command that replaces a value with
// itself: a renewal.
func isRenewal(args []string) bool { return isScript(args, 1, 3) && args[4] == args[5] }

// isRelease tells the release script's command: one key and one
// argument (the value expected).
func isRelease(args []string) bool { return isScript(args, 1, 1) }

// holding tells the commands that hold b.
func holding(b string) func(args []string) bool {
	return func(args []string) bool { return slices.Contains(args, b) }
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

// TestIdempotencyRenewalFromReservation: a batch reserves its parts' keys
// one store call after another, each of which may take the Redis store's
// timeout. Its first part's key is renewed from its reservation on, while
// the batch still waits for its second part's reservation (its reply held
// back): a key renewed only once the whole batch is reserved would wait
// for every part's call and the limits', and, with a window of 10
// timeouts and enough parts, expire while the batch is in flight, so
// that a repeat of that part alone is delivered again.
func TestIdempotencyRenewalFromReservation(t *testing.T) {
	clock := renewalClock(t)
	r := startProxiedRedis(t, "timeout 5s")
	e, proxy, pool, rdb := r.e, r.proxy, r.pool, r.rdb
	ctx := context.Background()
	caller := idemToken(t, "tenant-1", "oid-a", "sub-a")

	// A request in flight has the renewals tick.
	inFlight := e.sendHeld(t, idemCall{header: caller, op: "in-flight", answer: "hold"})
	pool.Requests.WaitFor(t, 1, "requests at the pool")
	clock.WaitPending(t, 1)
	inFlightKey := proxy.reservedKey(t, 0)

	proxy.holdNext(nth(2, isReserve))
	answer := e.sendAsync(t, renewalBatch(e, caller.Clone()))
	proxy.held.WaitFor(t, 1, "the second part's reservation held")
	firstPartKey := proxy.reservedKey(t, 1)

	const short = time.Minute
	for _, key := range []string{inFlightKey, firstPartKey} {
		rdb.PExpire(ctx, key, short)
	}
	clock.Advance(DefaultIdempotencyWindow / 3)
	if ttl := rdb.PTTL(ctx, inFlightKey).Val(); ttl <= short {
		t.Errorf("the key of the request in flight left to expire (%s)", ttl)
	}
	if ttl := rdb.PTTL(ctx, firstPartKey).Val(); ttl <= short {
		t.Errorf("the key of the batch's first part left to expire (%s) while the batch reserves its second part", ttl)
	}

	proxy.release()
	if resp := <-answer; resp.Status != http.StatusCreated {
		t.Errorf("the batch: %d %s, want the pool's 201", resp.Status, resp.Body)
	}
	pool.Release()
	if resp := <-inFlight; resp.Status != http.StatusCreated {
		t.Errorf("the request in flight: %d %s, want 201", resp.Status, resp.Body)
	}
}

// TestIdempotencyRenewalBatchParts: a batch of two parts with an
// operationId each is in flight at the pool: every renewal renews both
// parts' keys, so that a repeat of either part alone, sent while the
// batch is in flight however long, finds its key held.
func TestIdempotencyRenewalBatchParts(t *testing.T) {
	clock := renewalClock(t)
	r := startProxiedRedis(t, "timeout 5s")
	e, proxy, pool, rdb := r.e, r.proxy, r.pool, r.rdb
	ctx := context.Background()
	caller := idemToken(t, "tenant-1", "oid-a", "sub-a")

	header := caller.Clone()
	header.Set("X-Test-Answer", "hold")
	answer := e.sendAsync(t, renewalBatch(e, header))
	pool.Requests.WaitFor(t, 1, "the batch at the pool")
	clock.WaitPending(t, 1)
	keys := []string{proxy.reservedKey(t, 0), proxy.reservedKey(t, 1)}
	const short = time.Minute
	for tick := range 3 {
		for _, key := range keys {
			rdb.PExpire(ctx, key, short)
		}
		clock.Advance(DefaultIdempotencyWindow / 3)
		for i, key := range keys {
			if ttl := rdb.PTTL(ctx, key).Val(); ttl <= short {
				t.Fatalf("tick %d: the key of the batch's part %d left to expire (%s) while the batch is in flight", tick, i+1, ttl)
			}
		}
	}
	pool.Release()
	if resp := <-answer; resp.Status != http.StatusCreated {
		t.Errorf("the batch: %d %s, want the pool's 201", resp.Status, resp.Body)
	}
}

// renewalBatch is a batch to e of two parts with an operationId each
// (batch-first in its body, batch-second in its query), with header.
func renewalBatch(e edge, header http.Header) testkit.Request {
	const app = "/ucwa/v1/applications/1"
	return testkit.Request{URL: e.url(app + "/batch"), ContentType: batchType, Header: header, Body: batchBody(
		innerPOST(app+"/communication/startPhoneAudio", "application/json", `{"to":"4255551234","operationId":"batch-first"}`),
		"POST "+app+"/communication/conversations/c1/phoneAudio/addPhoneAudio?to=4255550000&operationId=batch-second HTTP/1.1\r\n\r\n")}
}

// TestIdempotencyRenewalOneRoundTrip: with two requests in flight on a
// Redis store, one renewal round sends the renewals of both keys to
// Redis while the reply to the first is still held back (a slow Redis):
// one renewal after another, the second key would wait up to the timeout
// for the first's, and with N requests in flight the last up to N
// timeouts, which no bound on the window can cover.
func TestIdempotencyRenewalOneRoundTrip(t *testing.T) {
	clock := renewalClock(t)
	r := startProxiedRedis(t, "timeout 5s")
	e, proxy, pool, rdb := r.e, r.proxy, r.pool, r.rdb
	ctx := context.Background()
	caller := idemToken(t, "tenant-1", "oid-a", "sub-a")

	ops := []string{"in-flight-1", "in-flight-2"}
	var answers []<-chan testkit.Response
	for i, op := range ops {
		answers = append(answers, e.sendHeld(t, idemCall{header: caller, op: op, answer: "hold"}))
		pool.Requests.WaitFor(t, int64(i+1), "requests at the pool")
	}
	clock.WaitPending(t, 1)
	const short = time.Minute
	var keys []string
	for i := range ops {
		keys = append(keys, proxy.reservedKey(t, i))
		rdb.PExpire(ctx, keys[i], short)
	}

	proxy.holdNext(isRenewal)
	advanced := make(chan struct{})
	go func() {
		defer close(advanced)
		clock.Advance(DefaultIdempotencyWindow / 3)
	}()
	proxy.renewals.WaitFor(t, int64(len(keys)), "renewals run by Redis")
	if n := proxy.gaveUp.Load(); n != 0 {
		t.Errorf("the edge gave up waiting for %d renewals before Redis ran every key's: the renewals went one after another", n)
	}
	for _, key := range keys {
		if ttl := rdb.PTTL(ctx, key).Val(); ttl <= short {
			t.Errorf("a key in flight left to expire (%s)", ttl)
		}
	}
	proxy.release()
	<-advanced
	pool.Release()
	for _, answer := range answers {
		if resp := <-answer; resp.Status != http.StatusCreated {
			t.Errorf("a request in flight: %d %s, want 201", resp.Status, resp.Body)
		}
	}
}

// proxiedRedis is an edge with idempotency on a Redis store that it
// reaches through a redisProxy (store is the store block's options, such
// as "timeout 5s"), delivering to one recording pool, with a client of
// that Redis for the test's own reads.
type proxiedRedis struct {
	e     edge
	proxy *redisProxy
	pool  *idemPool
	rdb   *redis.Client
}

func startProxiedRedis(t *testing.T, store string) proxiedRedis {
	t.Helper()
	srv := testkit.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	proxy := newRedisProxy(t, srv.Addr())
	pool := newIdemPool(t, "primary")
	e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t),
		"store redis redis://"+proxy.addr+" {\n\t\t\t"+strings.ReplaceAll(store, "\n", "\n\t\t\t")+"\n\t\t}", "primary "+pool.Addr()))
	return proxiedRedis{e: e, proxy: proxy, pool: pool, rdb: rdb}
}
