package caddymodule

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestStopWithRequestInFlight: a Caddy process is stopped (SIGTERM, as
// a service manager stops it) while a guarded request is at the pool,
// and started again; the client then sends the request once more, as
// the README's "A stop" says it is answered. Without a grace_period the
// stop waits for the pool: the client gets its answer, the audit trail
// one line of it, and the answer is recorded, so that a Redis store
// replays it after the restart; a memory store goes with the process,
// and the repeat is delivered again. With a grace_period that ends while
// the pool still holds the request, the process exits under it: the
// client gets no answer, the audit trail one line of it all the same
// (status 0, cut_by_stop at_pool, the pool that may have it), and the
// key stays reserved in Redis, so that the repeat after the restart
// gets 409 and reaches no pool; a memory store delivers it again.
func TestStopWithRequestInFlight(t *testing.T) {
	for _, tc := range []struct {
		name, store string
		grace       bool
		// After the restart the repeat gets: the first answer again, a
		// new delivery, or the edge's 409.
		replayed, delivered bool
	}{
		{name: "redis", store: "redis", replayed: true},
		{name: "memory", store: "memory", delivered: true},
		{name: "redis/grace_period over", store: "redis", grace: true},
		{name: "memory/grace_period over", store: "memory", grace: true, delivered: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storeConfig := "store memory"
			if tc.store == "redis" {
				storeConfig = "store redis " + testkit.StartRedis(t).URL() + " {\n\t\t\ttimeout 5s\n\t\t}"
			}
			pool := newIdemPool(t, "primary")
			config := idemCaddyfile(idemAuth(t), storeConfig, "primary "+pool.Addr())
			if tc.grace {
				config = strings.Replace(config, "{\n\tlog {", "{\n\tgrace_period 10ms\n\tlog {", 1)
			}
			p := testkit.StartCaddyProcess(t, "caddyfile", config)
			caller := idemToken(t, "tenant-1", "oid-a", "sub-a")
			call := func(answer string) testkit.Request {
				req := idemCall{header: caller, op: "stop-1", answer: answer}.request()
				req.URL = p.URL("EDGE_PORT", req.URL)
				return req
			}
			type result struct {
				resp testkit.Response
				err  error
			}
			held := make(chan result, 1)
			go func() {
				resp, err := testkit.Do(p.Client(), call("hold"))
				held <- result{resp, err}
			}()
			pool.Requests.WaitFor(t, 1, "the request at the pool")

			stopped := make(chan struct{})
			go func() {
				defer close(stopped)
				p.Stop()
			}()
			var first result
			if tc.grace {
				<-stopped
				first = <-held
				if first.err == nil {
					t.Fatalf("the request still at the pool when the grace period was over: %d %s, want no answer", first.resp.Status, first.resp.Body)
				}
			} else {
				p.WaitLog(t, "servers shutting down")
				pool.Release()
				first = <-held
				<-stopped
				if first.err != nil || first.resp.Status != http.StatusCreated {
					t.Fatalf("the request in flight at the stop: %d %s %v, want the pool's 201", first.resp.Status, first.resp.Body, first.err)
				}
			}
			// The process is gone: the log holds every line it wrote.
			lines := auditLines(t, p.Log())
			if len(lines) != 1 {
				t.Fatalf("%d audit lines of the request in flight at the stop, want 1: %+v", len(lines), lines)
			}
			want := auditLine{Status: http.StatusCreated}
			if tc.grace {
				want = auditLine{Status: 0, CutByStop: cutAtPool}
			}
			if a := lines[0]; a.Status != want.Status || a.CutByStop != want.CutByStop || a.Pool != poolPrimary ||
				a.Idempotency != "reserved" || a.OperationID != "stop-1" || a.Caller.Sub != "sub-a" || len(a.Destinations) != 1 {
				t.Errorf("the audit line: %+v, want status %d, cut_by_stop %q, pool %s, idempotency reserved, operation_id stop-1, the caller and the destination",
					a, want.Status, want.CutByStop, poolPrimary)
			}

			p.Restart()
			resp := testkit.Send(t, p.Client(), call(""))
			switch {
			case tc.replayed:
				assertReplay(t, resp, first.resp)
			case tc.delivered:
				if resp.Status != http.StatusCreated || resp.Header.Get(headerReplayed) != "" {
					t.Errorf("the repeat after the restart: %d %s, want a new delivery", resp.Status, resp.Body)
				}
			default:
				assertConflict(t, resp)
			}
			times := 1
			if tc.delivered {
				times = 2
			}
			if got := deliveries(pool.Pool, "stop-1"); got != times {
				t.Errorf("delivered %d times, want %d", got, times)
			}
			if tc.grace {
				pool.Release()
			}
		})
	}
}

// stopCaddyfile is an edge that stops with a grace_period of 10ms, its
// audit trail in file through the README's buffered writer, which holds
// the lines until the process exits (flush_interval 1h), and idempotency
// on. The edge delivers to pool, or, with nextHandler, leaves the
// request to the site's reverse_proxy to pool, the handler after it.
func stopCaddyfile(t *testing.T, file string, pool *idemPool, nextHandler bool) string {
	edge, next := "primary "+pool.Addr(), ""
	if nextHandler {
		edge, next = "", "reverse_proxy "+pool.Addr()
	}
	return fmt.Sprintf(`{
	grace_period 10ms
	log default {
		exclude http.handlers.ucwa.audit
	}
	log ucwa_audit {
		include http.handlers.ucwa.audit
		output buffered {
			flush_interval 1h
			output file %s
		}
		format json
	}
}
:EDGE_PORT {
	log
	ucwa {
		%s
		default_region US
		idempotency
		%s
	}
	%s
}`, file, idemAuth(t), edge, next)
}

// TestStopAuditsCutRequestsOnce: requests still in flight when a stop's
// grace_period is over get one audit line each all the same, written as
// the process exits, to the audit file of a buffered writer, with what
// the edge knew of each: status 0 and no pool for a request whose body
// was still coming (cut_by_stop before_delivery: the caller is known, no
// destination yet), the pool that may have it for requests at the pool
// (at_pool; so too for one the config before a reload took in), none
// for one the handler after the edge had (at_next_handler), and the
// pool's status for one whose answer was on its way to the client
// (answering). The clients of the requests at the pool get no answer.
// No request gets a second line.
func TestStopAuditsCutRequestsOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		// where the requests are when the grace period ends: "body" (the
		// edge reads the body, which the client holds back), "pool" (at
		// the pool), "answering" (the pool's answer's head is with the
		// client, its body held back by the pool).
		where       string
		requests    int
		nextHandler bool
		// reload: the config is reloaded while the requests are at the
		// pool, before the stop.
		reload bool
		want   auditLine // status, pool, cut_by_stop
	}{
		{name: "reading the body", where: "body", requests: 1, want: auditLine{CutByStop: cutBeforeDelivery}},
		{name: "at the pool", where: "pool", requests: 3, want: auditLine{Pool: poolPrimary, CutByStop: cutAtPool}},
		{name: "at the pool, taken in before a reload", where: "pool", requests: 1, reload: true,
			want: auditLine{Pool: poolPrimary, CutByStop: cutAtPool}},
		{name: "at the next handler", where: "pool", requests: 1, nextHandler: true, want: auditLine{CutByStop: cutAtNextHandler}},
		{name: "answering", where: "answering", requests: 1,
			want: auditLine{Status: http.StatusCreated, Pool: poolPrimary, CutByStop: cutAnswering}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "audit.log")
			pool := newIdemPool(t, "primary")
			defer pool.Release()
			p := testkit.StartCaddyProcess(t, "caddyfile", stopCaddyfile(t, file, pool, tc.nextHandler), testkit.WithAdmin())
			caller := idemToken(t, "tenant-1", "oid-a", "sub-a")
			answers := make(chan error, tc.requests)
			for i := range tc.requests {
				op := fmt.Sprintf("cut-%d", i+1)
				switch tc.where {
				case "body":
					if err := holdBody(t, p, caller, op); err != nil {
						t.Fatal(err)
					}
				case "pool":
					req := idemCall{header: caller, op: op, answer: "hold"}.request()
					req.URL = p.URL("EDGE_PORT", req.URL)
					go func() {
						resp, err := testkit.Do(p.Client(), req)
						if err == nil {
							err = fmt.Errorf("answered %d %s", resp.Status, resp.Body)
						}
						answers <- err
					}()
				case "answering":
					if err := readHead(t, p, idemCall{header: caller, op: op, answer: "headhold"}.request()); err != nil {
						t.Fatal(err)
					}
				}
			}
			if tc.where == "pool" {
				pool.Requests.WaitFor(t, int64(tc.requests), "the requests at the pool")
			}
			if tc.reload {
				resp := testkit.Send(t, p.Client(), testkit.Request{Method: http.MethodPatch, URL: p.AdminURL("/config/apps/http/grace_period"),
					ContentType: "application/json", Body: `"20ms"`})
				if resp.Status != http.StatusOK {
					t.Fatalf("the admin API answered %d (%s), want 200", resp.Status, resp.Body)
				}
				p.AwaitReload()
			}
			p.Stop()
			if tc.where == "pool" {
				for range tc.requests {
					if err := <-answers; err == nil {
						t.Error("a request at the pool when the grace period was over got an answer, want none")
					}
				}
			}

			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			lines := auditLines(t, string(b))
			if len(lines) != tc.requests {
				t.Fatalf("%d audit lines, want one of each of the %d requests: %s", len(lines), tc.requests, b)
			}
			seen := map[string]bool{}
			for _, a := range lines {
				if a.Status != tc.want.Status || a.Pool != tc.want.Pool || a.CutByStop != tc.want.CutByStop || a.Caller.Sub != "sub-a" {
					t.Errorf("audit line %+v, want status %d, pool %q, cut_by_stop %q and the caller", a, tc.want.Status, tc.want.Pool, tc.want.CutByStop)
				}
				if tc.where == "body" {
					if len(a.Destinations) != 0 || a.OperationID != "" || a.Idempotency != "" {
						t.Errorf("audit line %+v of a request whose body was still coming, want no destination, operation_id nor idempotency", a)
					}
					continue
				}
				if len(a.Destinations) != 1 || a.Idempotency != "reserved" || seen[a.OperationID] {
					t.Errorf("audit line %+v, want its destination, idempotency reserved and an operation_id of its own", a)
				}
				seen[a.OperationID] = true
			}
		})
	}
}

// holdBody sends a guarded request with operationId op to p's edge on a
// connection of its own, with Expect: 100-continue, and returns once the
// edge asks for the body (100 Continue), which it never gets.
func holdBody(t *testing.T, p *testkit.Process, header http.Header, op string) error {
	u, err := url.Parse(p.URL("EDGE_PORT", "/"))
	if err != nil {
		return err
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		return err
	}
	t.Cleanup(func() { conn.Close() })
	body := fmt.Sprintf(`{"to":"+14255550123","operationId":%q}`, op)
	fmt.Fprintf(conn, "POST /ucwa/v1/applications/1/communication/startPhoneAudio HTTP/1.1\r\nHost: %s\r\n"+
		"Authorization: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n",
		u.Host, header.Get("Authorization"), len(body))
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(status, "HTTP/1.1 100 ") {
		return fmt.Errorf("the edge answered %q, want 100 Continue", status)
	}
	return nil
}

// readHead sends req to p's edge and returns once the head of its answer
// came, 201, leaving its body unread.
func readHead(t *testing.T, p *testkit.Process, req testkit.Request) error {
	r, err := http.NewRequest(http.MethodPost, p.URL("EDGE_PORT", req.URL), strings.NewReader(req.Body))
	if err != nil {
		return err
	}
	for k, v := range req.Header {
		r.Header[k] = v
	}
	r.Header.Set("Content-Type", req.ContentType)
	resp, err := p.Client().Do(r)
	if err != nil {
		return err
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("the answer's head: %d, want 201", resp.StatusCode)
	}
	return nil
}

// TestReloadGracePeriodOverAuditedOnce: a request at the pool across a
// reload whose grace_period is over while the pool holds it goes on in
// the old config and gets its answer, and one audit line, its own: the
// reload writes none of it (only a stop does, for the requests the
// process exits under).
func TestReloadGracePeriodOverAuditedOnce(t *testing.T) {
	pool := newIdemPool(t, "primary")
	config := strings.Replace(idemCaddyfile(idemAuth(t), "primary "+pool.Addr()), "{\n\tlog {", "{\n\tgrace_period 10ms\n\tlog {", 1)
	p := testkit.StartCaddyProcess(t, "caddyfile", config, testkit.WithAdmin())
	req := idemCall{header: idemToken(t, "tenant-1", "oid-a", "sub-a"), op: "reload-1", answer: "hold"}.request()
	req.URL = p.URL("EDGE_PORT", req.URL)
	held := make(chan testkit.Response, 1)
	go func() {
		resp, err := testkit.Do(p.Client(), req)
		if err != nil {
			t.Error(err)
		}
		held <- resp
	}()
	pool.Requests.WaitFor(t, 1, "the request at the pool")

	resp := testkit.Send(t, p.Client(), testkit.Request{Method: http.MethodPatch, URL: p.AdminURL("/config/apps/http/grace_period"),
		ContentType: "application/json", Body: `"20ms"`})
	if resp.Status != http.StatusOK {
		t.Fatalf("the admin API answered %d (%s), want 200", resp.Status, resp.Body)
	}
	p.AwaitReload()
	// The old config's grace period is over.
	p.WaitLog(t, `"msg":"server shutdown"`, "timeout")
	pool.Release()
	if resp := <-held; resp.Status != http.StatusCreated {
		t.Fatalf("the request held across the reload: %d %s, want 201", resp.Status, resp.Body)
	}
	p.WaitLog(t, `"msg":"handled request"`, "startPhoneAudio")
	p.Stop()
	lines := auditLines(t, p.Log())
	if len(lines) != 1 || lines[0].Status != http.StatusCreated || lines[0].CutByStop != "" || lines[0].Pool != poolPrimary {
		t.Errorf("audit lines %+v, want the one of the request's answer, 201 from the pool", lines)
	}
}
