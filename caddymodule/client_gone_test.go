package caddymodule

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// heldDialPool is a TLS front-end pool whose first connection the test
// holds: it is accepted, and its TLS handshake never answered, so the
// edge's dial of it never ends while the client waits. Later connections
// are served: 201 Created, the requests counted.
type heldDialPool struct {
	*testkit.Pool
	held chan net.Conn // the first connection, once the edge dialed it
	addr string
}

func newHeldDialPool(t *testing.T) *heldDialPool {
	t.Helper()
	p := &heldDialPool{Pool: testkit.NewUpstream(t), held: make(chan net.Conn, 1)}
	p.Kill() // its handler serves the TLS server below
	ln, err := testkit.Listen(testkit.Port(t))
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	srv := httptest.NewUnstartedServer(p.Pool)
	_ = srv.Listener.Close()
	srv.Listener = &holdFirst{Listener: ln, held: p.held}
	srv.StartTLS()
	t.Cleanup(func() {
		select {
		case c := <-p.held:
			_ = c.Close()
		default:
		}
		srv.Close()
	})
	return p
}

// holdFirst hands its first connection to held rather than to the
// server.
type holdFirst struct {
	net.Listener
	held  chan net.Conn
	taken bool
}

func (l *holdFirst) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || l.taken {
			return c, err
		}
		l.taken = true
		l.held <- c
	}
}

// TestClientGoneBeforeSent: a client that goes away while the edge is
// still dialing the pool (a TLS handshake the pool never answers) leaves
// a request that reached no pool: it is not sent, its limit events are
// given back and, with idempotency, its operationId is released, so that
// the client may send it again, in both stores. The client goes once the
// pool holds the edge's dial, and the test waits for the edge's access
// log line of the request, written once the edge is done with it.
func TestClientGoneBeforeSent(t *testing.T) {
	for _, st := range limitStores {
		for _, idem := range []string{"", "idempotency"} {
			t.Run(st.name+"/"+idem, func(t *testing.T) {
				pool := newHeldDialPool(t)
				e := startEdge(t, "caddyfile", fmt.Sprintf(`:EDGE_PORT {
	log
	ucwa {
		default_region US
		%s
		%s
		%s
		limit calls 2 per 1h
		primary %s {
			transport http {
				tls
				tls_insecure_skip_verify
			}
		}
	}
}`, idemAuth(t), st.config(t), idem, pool.addr), testkit.WithAdmin())
				header := caller{"tenant-1", t.Name()}.header(t)
				call := func(ctx context.Context, op int) (testkit.Response, error) {
					req := limitRequest("/communication/startPhoneAudio",
						`{"to":"+14255551234","operationId":"op-`+strconv.Itoa(op)+`"}`, header)
					req.URL, req.Context = e.url(req.URL), ctx
					return testkit.Do(e.Client(), req)
				}

				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() {
					resp, err := call(ctx, 1)
					if err == nil {
						err = fmt.Errorf("answered %d %s", resp.Status, resp.Body)
					}
					done <- err
				}()
				select {
				case <-pool.held: // the edge is dialing the pool for the request
				case err := <-done:
					t.Fatalf("before the edge dialed the pool: %v", err)
				}
				cancel()
				if err := <-done; err == nil || !errors.Is(err, context.Canceled) {
					t.Fatalf("the client got %v, want its own cancellation", err)
				}
				e.Logs().Wait(t, `"msg":"handled request"`, `"status":499`)
				if got := e.Metric(`caddy_ucwa_pool_requests_total{outcome="client_gone",pool="primary"}`); got != 1 {
					t.Errorf("client_gone attempts: %v, want 1", got)
				}

				// The same request again (its operationId released), and
				// one more: the budget of 2 is whole again.
				for _, op := range []int{1, 2} {
					resp, err := call(context.Background(), op)
					if err != nil || resp.Status != http.StatusCreated {
						t.Fatalf("op-%d after the client went away: %v %d %s, want the pool's 201", op, err, resp.Status, resp.Body)
					}
				}
				resp, err := call(context.Background(), 3)
				if err != nil {
					t.Fatal(err)
				}
				assertLimited(t, resp, "calls", 1800)
				if got := pool.OperationIDs(); len(got) != 2 || got[0] != "op-1" || got[1] != "op-2" {
					t.Errorf("the pool received %v, want op-1 and op-2 once each", got)
				}
			})
		}
	}
}

// TestClientGoneWhileWaitingForPool: a client that goes away while its
// request waits for the pool to have an upstream available (the primary
// held back by its health check, lb_try_duration 1h) ends the request
// there: it reached no pool, so its operationId is released and its
// limit event given back, and the client may send it again, which the
// pool takes once it is back. reverse_proxy waits between its tries on
// the pool's context, not the request's, and tries until lb_try_duration
// passes: the request lived on for the hour, holding its operationId
// (a 409 for the client's retry) and its event.
func TestClientGoneWhileWaitingForPool(t *testing.T) {
	pool := testkit.NewPool(t, "primary", testkit.AnswerCreated)
	pool.SetHealthy(false)
	e := startEdge(t, "caddyfile", fmt.Sprintf(`{
	metrics
	log {
		level DEBUG
	}
}
:EDGE_PORT {
	log
	ucwa {
		default_region US
		%s
		store memory
		idempotency
		limit calls 1 per 1h
		primary %s {
			lb_try_duration 1h
			health_uri /health
			health_interval 50ms
		}
	}
}`, idemAuth(t), pool.Addr()), testkit.WithAdmin())
	e.Logs().Wait(t, `"msg":"event"`, `"name":"unhealthy"`, pool.Addr())
	header := caller{"tenant-1", t.Name()}.header(t)
	call := func(ctx context.Context) (testkit.Response, error) {
		req := limitRequest("/communication/startPhoneAudio", `{"to":"+14255551234","operationId":"op-1"}`, header)
		req.URL, req.Context = e.url(req.URL), ctx
		return testkit.Do(e.Client(), req)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		resp, err := call(ctx)
		if err == nil {
			err = fmt.Errorf("answered %d %s", resp.Status, resp.Body)
		}
		done <- err
	}()
	// No upstream to try: the request is at the pool, waiting for one.
	// In the server but not yet there (its reservation being made), a
	// request whose client goes away is not sent at all, and the edge
	// says nothing of a pool.
	testkit.Eventually(t, "the request at the pool", func() bool { return requestsAtPool() == 1 })
	cancel()
	if err := <-done; err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("the client got %v, want its own cancellation", err)
	}
	e.Logs().Wait(t, `"msg":"client went away; request not retried"`, `"reached_no_pool":true`)
	// 0: no pool had the request (see the README's access log fields).
	e.Logs().Wait(t, `"msg":"handled request"`, `"status":0,`)

	pool.SetHealthy(true)
	e.Logs().Wait(t, `"msg":"event"`, `"name":"healthy"`, pool.Addr())
	resp, err := call(context.Background())
	if err != nil || resp.Status != http.StatusCreated {
		t.Fatalf("op-1 again once the pool is back: %v %d %s, want the pool's 201", err, resp.Status, resp.Body)
	}
	if got := deliveries(pool, "op-1"); got != 1 {
		t.Errorf("the pool received op-1 %d times, want once", got)
	}
}

// requestsAtPool counts the audited requests in flight in the process
// that are at a pool or being handed to one (see intake.atPool).
func requestsAtPool() int {
	return countInFlight(func(rec *auditRecord) bool { return rec.attempting.Load() != nil })
}

// countInFlight counts the audited requests in flight whose record
// matches.
func countInFlight(match func(*auditRecord) bool) int {
	n := 0
	for i := range auditInFlight.shards {
		sh := &auditInFlight.shards[i]
		sh.mu.Lock()
		for rec := sh.first; rec != nil; rec = rec.next {
			if match(rec) {
				n++
			}
		}
		sh.mu.Unlock()
	}
	return n
}

// TestClientHalfClosedBeforeDelivery: a client that half-closes its
// connection once it sent a request (FIN after the body), which Go's
// server takes for a client gone, is answered 499, as reverse_proxy
// answers one gone while its pool was being dialed, when the edge finds
// it gone just before delivery: the request is not sent, its
// operationId is released and its limit events given back, so the
// client's next try is delivered, once: an edge that answered nothing
// there would leave net/http to send an empty 200, a success of a call
// never placed. The edge is held just before delivery until it sees the
// client gone.
func TestClientHalfClosedBeforeDelivery(t *testing.T) {
	for _, st := range limitStores {
		for _, c := range []struct{ name, subdirective string }{
			{"idempotency", "idempotency"},
			{"limit alone", ""},
		} {
			t.Run(st.name+"/"+c.name, func(t *testing.T) {
				pool := newIdemPool(t, "primary")
				e := startEdge(t, "caddyfile", fmt.Sprintf(`:EDGE_PORT {
	ucwa {
		default_region US
		%s
		%s
		%s
		limit calls 1 per 1h
		primary %s
	}
}`, idemAuth(t), st.config(t), c.subdirective, pool.Addr()))
				beforeDelivery = func(r *http.Request) {
					if r.Header.Get("X-Test-Half-Close") != "" {
						<-r.Context().Done()
					}
				}
				t.Cleanup(func() { beforeDelivery = func(*http.Request) {} })
				header := caller{"tenant-1", t.Name()}.header(t)
				const op = "half-closed"
				body := `{"to":"+14255551234","operationId":"` + op + `"}`

				u, err := url.Parse(e.url("/"))
				if err != nil {
					t.Fatal(err)
				}
				conn, err := net.Dial("tcp", u.Host)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				_, err = io.WriteString(conn, "POST "+limitApp+"/communication/startPhoneAudio HTTP/1.1\r\nHost: "+u.Host+
					"\r\nAuthorization: "+header.Get("Authorization")+"\r\nContent-Type: application/json\r\nX-Test-Half-Close: 1\r\n"+
					"Content-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
				if err != nil {
					t.Fatal(err)
				}
				if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
					t.Fatal(err)
				}
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					t.Fatalf("no answer to the half-closed client: %v", err)
				}
				_ = resp.Body.Close()
				if resp.StatusCode != statusClientClosed {
					t.Errorf("the half-closed client got %d, want 499: its request was not delivered", resp.StatusCode)
				}
				if got := deliveries(pool.Pool, op); got != 0 {
					t.Fatalf("the pool received %d requests of the client gone before delivery, want none", got)
				}

				again := e.send(limitRequest("/communication/startPhoneAudio", body, header))
				if again.Status != http.StatusCreated || deliveries(pool.Pool, op) != 1 {
					t.Fatalf("the next try: %d %s, the pool received %d; want 201 and one (released, refunded)",
						again.Status, again.Body, deliveries(pool.Pool, op))
				}
			})
		}
	}
}
