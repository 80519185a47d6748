package caddymodule

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestRedisReserveUnansweredReleased: a reservation whose reply comes
// only after the store's timeout (Redis ran it) is answered 503 with
// on_error closed, and nothing is delivered; the key, which holds the
// request's own value, is released behind the answer, so that the
// client's retry, once Redis answers again, is delivered (once), where
// it was answered 409 AlreadyExists, as was every retry for the window.
// So for a batch whose second part's reservation got no answer: its
// first part's key is released as before. With on_error open, a request
// whose reservation got no answer is delivered without it, and its key
// is kept: a repeat is not delivered a second time.
func TestRedisReserveUnansweredReleased(t *testing.T) {
	caller := idemToken(t, "tenant-1", "oid-a", "sub-a")
	const app = "/ucwa/v1/applications/1"
	batch := func(op string) testkit.Request {
		return testkit.Request{URL: app + "/batch", ContentType: batchType, Header: caller, Body: batchBody(
			innerPOST(app+"/communication/startPhoneAudio", "application/json", `{"to":"4255551234","operationId":"`+op+`-1"}`),
			"POST "+app+"/communication/conversations/c1/phoneAudio/addPhoneAudio?to=4255550000&operationId="+op+"-2 HTTP/1.1\r\n\r\n")}
	}
	for _, tc := range []struct {
		name    string
		onError string
		req     testkit.Request
		op      string // an operationId of req
		reserve int    // the reservation whose reply is held, from 1
	}{
		{"request", "closed", idemCall{header: caller, op: "unanswered"}.request(), "unanswered", 1},
		{"batch", "closed", batch("unanswered-batch"), "unanswered-batch-1", 2},
		{"open", "open", idemCall{header: caller, op: "unanswered-open"}.request(), "unanswered-open", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startProxiedRedis(t, "timeout 1s\non_error "+tc.onError)
			e, proxy, pool, rdb := r.e, r.proxy, r.pool, r.rdb
			delivered := func() int {
				n := 0
				for _, r := range pool.Received() {
					if strings.Contains(r.Body+"?"+r.RawQuery, `"operationId":"`+tc.op+`"`) || strings.Contains(r.RawQuery+"&", "operationId="+tc.op+"&") {
						n++
					}
				}
				return n
			}
			proxy.holdNext(nth(tc.reserve, isReserve))
			first := e.send(tc.req)
			if got := proxy.held.Load(); got != 1 {
				t.Fatalf("the proxy held %d replies, want 1", got)
			}
			if tc.onError == "open" {
				if first.Status != http.StatusCreated || delivered() != 1 {
					t.Fatalf("with its reservation unanswered, on_error open: %d %s, delivered %d times; want 201, delivered once", first.Status, first.Body, delivered())
				}
				proxy.release()
				assertConflict(t, e.send(tc.req))
				if got := proxy.releases.Load(); got != 0 {
					t.Errorf("Redis ran %d releases, want none: the request was delivered", got)
				}
				if got := delivered(); got != 1 {
					t.Errorf("delivered %d times, want once", got)
				}
				return
			}
			if first.Status != http.StatusServiceUnavailable || delivered() != 0 {
				t.Fatalf("with its reservation unanswered: %d %s, delivered %d times; want 503, not delivered", first.Status, first.Body, delivered())
			}
			// The reservations Redis ran, each released: the batch's first
			// part's with the answer, the unanswered one behind it.
			proxy.releases.WaitFor(t, int64(tc.reserve), "releases Redis ran")
			if keys := rdb.Keys(context.Background(), "*").Val(); len(keys) != 0 {
				t.Fatalf("keys %q held after a request that was not delivered, want none", keys)
			}
			proxy.release()
			retry := e.send(tc.req)
			if retry.Status != http.StatusCreated || delivered() != 1 {
				t.Fatalf("its retry: %d %s, delivered %d times; want 201, delivered once", retry.Status, retry.Body, delivered())
			}
		})
	}
}

// TestRedisReleaseUnansweredSentAgain: the release behind a reservation
// whose reply came too late is sent again when it too goes unanswered
// (the store still slow): Redis ran the first, whose reply the proxy
// holds, and runs the second, which finds nothing left to free; the
// client's retry, once Redis answers again, is delivered once. Sent once
// only, a release lost so would leave the key answering every repeat
// 409 for the window, though nothing was delivered.
func TestRedisReleaseUnansweredSentAgain(t *testing.T) {
	r := startProxiedRedis(t, "timeout 1s")
	e, proxy, pool, rdb := r.e, r.proxy, r.pool, r.rdb
	reserves, releases := 0, 0
	proxy.holdEach(func(args []string) bool {
		switch {
		case isReserve(args):
			reserves++
			return reserves == 1
		case isRelease(args):
			releases++
			return releases == 1
		}
		return false
	})
	call := idemCall{header: idemToken(t, "tenant-1", "oid-a", "sub-a"), op: "unanswered-twice"}
	if resp := e.call(call); resp.Status != http.StatusServiceUnavailable || len(pool.Received()) != 0 {
		t.Fatalf("with its reservation unanswered: %d %s, delivered %d times; want 503, not delivered", resp.Status, resp.Body, len(pool.Received()))
	}
	proxy.releases.WaitFor(t, 2, "releases Redis ran (the first unanswered, then the one sent again)")
	if keys := rdb.Keys(context.Background(), "*").Val(); len(keys) != 0 {
		t.Fatalf("keys %q held after a request that was not delivered, want none", keys)
	}
	proxy.release()
	if resp := e.call(call); resp.Status != http.StatusCreated || len(pool.Received()) != 1 {
		t.Fatalf("its retry: %d %s, delivered %d times; want 201, delivered once", resp.Status, resp.Body, len(pool.Received()))
	}
}

// TestRedisReleaseEveryKey: a batch whose parts' keys are all reserved
// and that reaches no pool (410) releases every key, though the release
// of its first part's fails (Redis Cluster answers CLUSTERDOWN for a
// slot whose shard is down): its second part, sent again alone, is
// delivered, where the release stopped at the first failure and left
// the second part's key held, its repeats answered 409 for the window
// though it was never delivered. The first part's key, whose release
// failed, is held until the window ends: its repeat gets 409. The keys
// go to Redis in one pipeline: the proxy sees both releases.
func TestRedisReleaseEveryKey(t *testing.T) {
	r := startProxiedRedis(t, "timeout 5s")
	e, proxy, pool := r.e, r.proxy, r.pool
	caller := idemToken(t, "tenant-1", "oid-a", "sub-a")
	const app = "/ucwa/v1/applications/1"
	second := "POST " + app + "/communication/conversations/c1/phoneAudio/addPhoneAudio?to=4255550000&operationId=every-2 HTTP/1.1\r\n\r\n"
	batch := testkit.Request{URL: app + "/batch", ContentType: batchType, Header: caller, Body: batchBody(
		innerPOST(app+"/communication/startPhoneAudio", "application/json", `{"to":"4255551234","operationId":"every-1"}`), second)}

	var once sync.Once
	proxy.fail(func(args []string) bool {
		fail := false
		if isRelease(args) {
			once.Do(func() { fail = true })
		}
		return fail
	})
	pool.Kill()
	if resp := e.send(batch); resp.Status != http.StatusGone {
		t.Fatalf("the batch, the pool down: %d %s, want 410", resp.Status, resp.Body)
	}
	pool.Restart(t)
	alone := testkit.Request{Method: http.MethodPost, URL: app + "/communication/conversations/c1/phoneAudio/addPhoneAudio?to=4255550000&operationId=every-2", Header: caller}
	if resp := e.send(alone); resp.Status != http.StatusCreated {
		t.Fatalf("the batch's second part, sent again alone: %d %s, want 201", resp.Status, resp.Body)
	}
	assertConflict(t, e.call(idemCall{header: caller, op: "every-1"}))
	if got := proxy.releases.Load(); got != 1 {
		t.Errorf("Redis ran %d releases, want 1 (the other failed)", got)
	}
	if got := len(pool.Received()); got != 1 {
		t.Errorf("the pool got %d requests, want 1", got)
	}
}
