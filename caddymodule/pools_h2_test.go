package caddymodule

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// h2Transport is a pool block whose transport speaks the given versions
// and trusts the certificate in caFile ("": the system's roots alone).
func h2Transport(versions, caFile string) string {
	return h2TransportWith(versions, caFile, "", "")
}

// h2TransportWith is h2Transport with more transport lines and more
// lines of the pool's own (each "" for none).
func h2TransportWith(versions, caFile, transport, pool string) string {
	lines := "\n\t\t\t\tversions " + versions
	if caFile != "" {
		lines += "\n\t\t\t\ttls_trust_pool file " + caFile
	}
	if transport != "" {
		lines += "\n\t\t\t\t" + transport
	}
	if pool != "" {
		pool = "\n\t\t\t" + pool
	}
	return " {\n\t\t\ttransport http {" + lines + "\n\t\t\t}" + pool + "\n\t\t}"
}

// h2Setup is one way a pool's transport speaks HTTP/2: over TLS with ALPN
// h2 (versions 2, or versions 1.1 2), or h2c.
type h2Setup struct {
	name     string
	overTLS  bool
	versions string
}

var h2Setups = []h2Setup{
	{"tls versions 2", true, "2"},
	{"tls versions 1.1 2", true, "1.1 2"},
	{"h2c", false, "h2c"},
}

// sendStartPhoneAudio sends a startPhoneAudio with operationId op, its
// inputs in a JSON body, or in the query alone (no body).
func (e edge) sendStartPhoneAudio(op string, queryAlone bool) testkit.Response {
	e.t.Helper()
	const path = "/ucwa/v1/applications/1/communication/startPhoneAudio"
	if queryAlone {
		return e.send(testkit.Request{Method: http.MethodPost, URL: path + "?to=4255551234&operationId=" + op})
	}
	return e.startPhoneAudio(op)
}

// TestPoolHTTP2Delivery: a pool that speaks HTTP/2 (net/http's server,
// over TLS with ALPN h2, or h2c) gets each request once, by HTTP/2, and
// its answer reaches the client, on a new connection and on the
// kept-alive one after it (which net/http's transport hands a request
// without asking its Proxy hook, see pool.hooksOnSend).
func TestPoolHTTP2Delivery(t *testing.T) {
	for _, setup := range h2Setups {
		for _, queryAlone := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/query alone=%v", setup.name, queryAlone), func(t *testing.T) {
				var primary *testkit.Pool
				var block string
				if setup.overTLS {
					primary = testkit.NewHTTP2Pool(t, "primary", testkit.AnswerCreated)
					block = h2Transport(setup.versions, primary.CAFile(t))
				} else {
					primary = testkit.NewH2CPool(t, "primary", testkit.AnswerCreated)
					block = h2Transport(setup.versions, "")
				}
				backup := testkit.NewPool(t, "backup", testkit.AnswerCreated)
				e := startEdge(t, "caddyfile", poolsCaddyfile("\t\tprimary "+primary.URL()+block+"\n\t\tbackup "+backup.Addr()))
				for i := range 3 {
					op := fmt.Sprintf("op-%d", i)
					resp := e.sendStartPhoneAudio(op, queryAlone)
					if resp.Status != http.StatusCreated || resp.Header.Get("X-Ucwa-Pool") != "pool=primary" {
						t.Fatalf("request %d: %d %s %s, want the primary's 201", i, resp.Status, resp.Header.Get("X-Ucwa-Pool"), resp.Body)
					}
				}
				got := primary.Received()
				if len(got) != 3 {
					t.Fatalf("primary received %d requests, want 3", len(got))
				}
				for i, r := range got {
					if r.Proto != "HTTP/2.0" {
						t.Errorf("request %d came by %s, want HTTP/2.0", i, r.Proto)
					}
					if op := r.OperationID(); op != fmt.Sprintf("op-%d", i) {
						t.Errorf("request %d has operationId %q", i, op)
					}
					for _, name := range []string{"Idempotency-Key", "X-Idempotency-Key"} {
						if v := r.Header.Values(name); len(v) > 0 {
							t.Errorf("request %d carries %s", i, name)
						}
					}
				}
				// Every request on the first one's connection (HTTP/2 keeps
				// one). Not a count of connections accepted: under load a
				// dial that no request ends up using is accepted too (seen
				// 1 in 80 runs beside two busy loops, carrying nothing).
				for i, r := range got {
					if r.RemoteAddr != got[0].RemoteAddr {
						t.Errorf("request %d came on connection %s, the first on %s (HTTP/2 keeps one)", i, r.RemoteAddr, got[0].RemoteAddr)
					}
				}
				if n := len(backup.Received()); n != 0 {
					t.Errorf("backup received %d requests", n)
				}
			})
		}
	}
}

// TestPoolHTTP2Failover: a pool configured for HTTP/2 that could not
// have received the request (its address refuses connections, or the
// TLS handshake with it fails) fails over to the backup, or answers 410
// CannotRedirect without one.
func TestPoolHTTP2Failover(t *testing.T) {
	for _, setup := range h2Setups {
		primaries := []string{"down"}
		if setup.overTLS {
			primaries = append(primaries, "TLS handshake fails")
		}
		for _, primary := range primaries {
			for _, withBackup := range []bool{true, false} {
				t.Run(fmt.Sprintf("%s/%s/backup=%v", setup.name, primary, withBackup), func(t *testing.T) {
					var pools string
					switch {
					case primary == "down" && setup.overTLS:
						pools = "\t\tprimary https://" + testkit.DownAddr(t) + h2Transport(setup.versions, "")
					case primary == "down":
						pools = "\t\tprimary h2c://" + testkit.DownAddr(t) + h2Transport(setup.versions, "")
					default:
						// A certificate the transport does not trust.
						untrusted := testkit.NewTLSPool(t, "primary")
						pools = "\t\tprimary " + untrusted.URL() + h2Transport(setup.versions, "")
						defer func() {
							if n := untrusted.Requests.Load(); n != 0 {
								t.Errorf("the untrusted pool received %d requests", n)
							}
						}()
					}
					var backup *testkit.Pool
					if withBackup {
						backup = testkit.NewHTTP2Pool(t, "backup", testkit.AnswerCreated)
						pools += "\n\t\tbackup " + backup.URL() + h2Transport("2", backup.CAFile(t))
					}
					e := startEdge(t, "caddyfile", poolsCaddyfile(pools))
					resp := e.startPhoneAudio("op-x")
					if !withBackup {
						assertUCWAError(t, resp, "Gone", "CannotRedirect", nil, false)
						return
					}
					if resp.Status != http.StatusCreated || resp.Header.Get("X-Ucwa-Pool") != "pool=backup" {
						t.Fatalf("%d %s %s, want the backup's 201", resp.Status, resp.Header.Get("X-Ucwa-Pool"), resp.Body)
					}
					if got := backup.Received(); len(got) != 1 || got[0].Proto != "HTTP/2.0" {
						t.Errorf("backup received %+v, want op-x once by HTTP/2", got)
					}
				})
			}
		}
	}
}

// TestPoolHTTP2CapableTransportSpeakingHTTP1: a pool whose transport may
// speak HTTP/2 (versions 1.1 2) but that offers HTTP/1.1 alone over TLS
// is spoken to in HTTP/1.1, through net/http's HTTP/1 transport with the
// trace hooks the edge composes into each round trip's context (not set
// on it by reportOutgoing, see pool.hooksOnSend): each request is
// received once; one the pool read whole and then closed the connection
// on is answered 502 and not sent to the backup; and a pool that closes
// every kept-alive connection as soon as it is idle races the edge's
// next request on it, which goes out again on another connection only
// when the pool did not receive it (every answer is the pool's 201, none
// is received twice, and the race did happen).
func TestPoolHTTP2CapableTransportSpeakingHTTP1(t *testing.T) {
	startPools := func(t *testing.T, answer testkit.Answer) (*testkit.Pool, *testkit.Pool, edge) {
		primary := testkit.NewHTTPSPool(t, "primary", answer)
		backup := testkit.NewPool(t, "backup", testkit.AnswerCreated)
		e := startEdge(t, "caddyfile", poolsCaddyfile(expectOnEveryRequest+"\t\tprimary "+primary.URL()+
			h2Transport("1.1 2", primary.CAFile(t))+"\n\t\tbackup "+backup.Addr()), testkit.WithAdmin())
		return primary, backup, e
	}
	t.Run("delivered once by HTTP/1.1", func(t *testing.T) {
		primary, backup, e := startPools(t, testkit.AnswerCreated)
		for i := range 3 {
			if resp := e.startPhoneAudio(fmt.Sprintf("op-%d", i)); resp.Status != http.StatusCreated {
				t.Fatalf("request %d: %d %s", i, resp.Status, resp.Body)
			}
		}
		got := primary.Received()
		if len(got) != 3 {
			t.Fatalf("primary received %d requests, want 3", len(got))
		}
		for i, r := range got {
			if r.Proto != "HTTP/1.1" || r.OperationID() != fmt.Sprintf("op-%d", i) {
				t.Errorf("request %d: %s %q, want op-%d by HTTP/1.1", i, r.Proto, r.OperationID(), i)
			}
		}
		if n := len(backup.Received()); n != 0 {
			t.Errorf("backup received %d requests", n)
		}
	})
	t.Run("read whole, connection closed", func(t *testing.T) {
		var calls atomic.Int64
		primary, backup, e := startPools(t, func(p *testkit.Pool, w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) == 1 {
				testkit.AnswerCreated(p, w, r)
				return
			}
			testkit.AnswerClose(p, w, r)
		})
		if resp := e.startPhoneAudio("op-warm"); resp.Status != http.StatusCreated {
			t.Fatalf("warm: %d %s", resp.Status, resp.Body)
		}
		resp := e.startPhoneAudio("op-x")
		assertUCWAError(t, resp, "ServiceFailure", "ServiceFailure", nil, false)
		if n := countOp(primary.OperationIDs(), "op-x"); n != 1 {
			t.Errorf("primary received op-x %d times, want 1", n)
		}
		if n := len(backup.Received()); n != 0 {
			t.Errorf("backup received %d requests", n)
		}
	})
	t.Run("pool closes idle connections", func(t *testing.T) {
		const requests, workers = 300, 4
		primary, backup, e := startPools(t, testkit.AnswerCreated)
		primary.CloseWhenIdle(true)
		status := sendConcurrently(t, e, requests, workers, false)
		if status[http.StatusCreated] != requests {
			t.Errorf("answers by status %v, want %d 201 (-1: no answer)", status, requests)
		}
		receivedOnce(t, primary, backup)
		stale := e.Metric(`caddy_ucwa_pool_requests_total{outcome="stale_connection",pool="primary"}`)
		if stale == 0 {
			t.Error("no request met a connection the pool had closed: the test tested nothing")
		}
		t.Logf("answers by status %v; %v met a closed connection and went out again", status, stale)
	})
}
