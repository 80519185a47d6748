package caddymodule

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestRedisConnectionEnded: a request whose reservation's connection
// ends before the reply is delivered once, not answered 503, and its
// repeat gets its answer: the store sends the reservation again on
// another connection, and the reservation finds the request's own value
// when Redis ran the first. So when Redis closed the connection after it
// ran the reservation (a node that fails just then), and when it closed
// the edge's connections before the request, as a failover's CLIENT
// KILL or a restart does: go-redis looks for a closed connection before
// it sends a command, but not on the store's connections of reservations
// (see store.uncheckedDial).
func TestRedisConnectionEnded(t *testing.T) {
	for _, tc := range []struct {
		name string
		// start starts Redis, and returns the store's config and a
		// function that ends the edge's connections to Redis: at once,
		// or from the next reservation on, after Redis ran it.
		start func(t *testing.T) (store string, end func(t *testing.T))
	}{
		{"the reply of the reservation lost", func(t *testing.T) (string, func(t *testing.T)) {
			srv := testkit.StartRedis(t)
			proxy := newReplyCutter(t, srv.Addr())
			return "store redis redis://" + proxy.Addr() + "/0 {\n\t\t\ttimeout 5s\n\t\t}", func(*testing.T) { proxy.cutNext(isReserve) }
		}},
		{"connections closed", func(t *testing.T) (string, func(t *testing.T)) {
			srv := testkit.StartRedis(t)
			return "store redis " + srv.URL() + " {\n\t\t\ttimeout 5s\n\t\t}", func(t *testing.T) {
				t.Helper()
				if n, _ := redisAdmin(t, srv, "CLIENT", "KILL", "TYPE", "normal").(int64); n == 0 {
					t.Fatal("CLIENT KILL closed none of the edge's connections")
				}
			}
		}},
		{"connections closed, TLS", func(t *testing.T) (string, func(t *testing.T)) {
			srv := testkit.StartRedisWith(t, testkit.RedisConfig{TLS: true})
			return "store redis " + srv.URL() + " {\n\t\t\ttimeout 5s\n\t\t\ttls {\n\t\t\t\tca " + srv.CAFile() + "\n\t\t\t}\n\t\t}", func(t *testing.T) {
				t.Helper()
				pem, err := os.ReadFile(srv.CAFile())
				if err != nil {
					t.Fatal(err)
				}
				roots := x509.NewCertPool()
				roots.AppendCertsFromPEM(pem)
				rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), TLSConfig: &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}})
				defer rdb.Close()
				if n, err := rdb.Do(context.Background(), "CLIENT", "KILL", "TYPE", "normal").Int64(); err != nil || n == 0 {
					t.Fatalf("CLIENT KILL closed %d of the edge's connections: %v", n, err)
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store, end := tc.start(t)
			// A limit too: its scripts, which are not sent again, run on
			// connections that go-redis looks into before a command.
			e := startLimitEdge(t, store, "idempotency", "limit calls 100 per 1h")
			alice := caller{"tenant-1", "alice"}.header(t)
			if resp := e.callOp("before", alice); resp.Status != http.StatusCreated {
				t.Fatalf("the first request: %d %s", resp.Status, resp.Body)
			}
			end(t)
			first := e.callOp("after", alice)
			if first.Status != http.StatusCreated {
				t.Fatalf("a request whose reservation's connection ended: %d %s, want the pool's 201", first.Status, first.Body)
			}
			assertReplay(t, e.callOp("after", alice), first)
			if got := e.pool.Requests.Load(); got != 2 {
				t.Errorf("the pool got %d requests, want 2", got)
			}
			if strings.Contains(e.Logs().String(), `"msg":"store failing`) {
				t.Error("the edge saw the store fail")
			}
		})
	}
}

// TestRedisConnectionsClosedAtOnce: a reservation whose connection ended
// is sent again (see TestRedisConnectionEnded), but not again and again
// on new connections that end as well, as those to a server that hangs
// up on every connection (a TLS port, to a client without TLS; over TLS,
// the handshake ends at once): the request is answered 503, its
// reservation having dialed twice at most, where each of the pool's
// attempts would dial again.
func TestRedisConnectionsClosedAtOnce(t *testing.T) {
	for _, tc := range []struct{ name, store string }{
		{"plain", "store redis redis://%s/0 {\n\t\t\ttimeout 5s\n\t\t}"},
		{"TLS", "store redis rediss://%s/0 {\n\t\t\ttimeout 5s\n\t\t\ttls {\n\t\t\t\tinsecure_skip_verify\n\t\t\t}\n\t\t}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			var accepted atomic.Int32
			go func() {
				for {
					conn, err := ln.Accept()
					if err != nil {
						return
					}
					accepted.Add(1)
					_ = conn.Close()
				}
			}()
			t.Cleanup(func() { _ = ln.Close() })
			e := startLimitEdge(t, fmt.Sprintf(tc.store, ln.Addr()), "idempotency")
			// The startup check's PING dials once, in the background.
			e.Logs().Wait(t, redisCheckFailed)
			before := accepted.Load()
			if resp := e.callOp("closed", caller{"tenant-1", "alice"}.header(t)); resp.Status != http.StatusServiceUnavailable {
				t.Fatalf("%d %s, want 503", resp.Status, resp.Body)
			}
			// The reservation's two connections, and at most two of the
			// release that follows it in the background (see releaseUnanswered).
			if got := accepted.Load() - before; got > 4 {
				t.Errorf("the request dialed %d connections, want 2 (and 2 of its release)", got)
			}
		})
	}
}

// TestRedisReleaseConnectionEnded: a request that reached no pool
// releases its key, so that the client may send it again; when the
// connection of that release ends before the reply (after Redis ran
// it), the release (one pipeline of the request's keys) is sent again
// on another connection: the edge sees no store failure (it warned of
// an outage, and counted an error), and the repeat is delivered.
func TestRedisReleaseConnectionEnded(t *testing.T) {
	srv := testkit.StartRedis(t)
	proxy := newReplyCutter(t, srv.Addr())
	e := startLimitEdge(t, "store redis redis://"+proxy.Addr()+"/0 {\n\t\t\ttimeout 5s\n\t\t}", "idempotency")
	alice := caller{"tenant-1", "alice"}.header(t)
	e.pool.Kill()
	proxy.cutNext(isRelease)
	if resp := e.callOp("released", alice); resp.Status != http.StatusGone {
		t.Fatalf("the pool down: %d %s, want 410", resp.Status, resp.Body)
	}
	if got := proxy.cut.Load(); got != 1 {
		t.Fatalf("the proxy cut %d replies, want 1", got)
	}
	e.pool.Restart(t)
	if resp := e.callOp("released", alice); resp.Status != http.StatusCreated {
		t.Fatalf("the request again, the pool back: %d %s, want the pool's 201", resp.Status, resp.Body)
	}
	if got := e.pool.Requests.Load(); got != 1 {
		t.Errorf("the pool got %d requests, want 1", got)
	}
	if strings.Contains(e.Logs().String(), `"msg":"store failing`) {
		t.Error("the edge saw the store fail")
	}
}
