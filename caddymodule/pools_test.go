package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// poolsCaddyfile is an edge whose ucwa handler has the given pool
// subdirectives; a deferred header shows {http.ucwa.pool}.
func poolsCaddyfile(pools string) string {
	return fmt.Sprintf(`:EDGE_PORT {
	header >X-Ucwa-Pool "pool={http.ucwa.pool}"
	ucwa {
		jwt off
		default_region US
%s
	}
}`, pools)
}

// poolsSite is poolsCaddyfile as a site on the port named port, for a
// config of several sites (see edge.site).
func poolsSite(port, pools string) string {
	return strings.Replace(poolsCaddyfile(pools), ":EDGE_PORT {", ":"+port+" {", 1) + "\n"
}

const conflictBody = `{"code":"Conflict","subcode":"AlreadyExists","message":"The already exists error."}`

func TestPoolDelivery(t *testing.T) {
	tests := []struct {
		name string
		// primary and backup: up, down, reset, hang, conflict,
		// unavailable, abs-location, foreign-location, tls-untrusted;
		// backup "" is none.
		primary, backup string
		primaryBlock    string // reverse_proxy subdirectives of the primary
		wantStatus      int
		wantSubcode     string // for answers the edge writes
		wantMessage     string
		wantBody        string // for answers a pool writes
		wantHeader      map[string]string
		// the Set-Cookie of lb_policy cookie: begins with it
		wantCookie string
		// an absolute Location on the edge's own host, with this path
		wantEdgeLocation string
		wantPrimary      int // requests the primary received
		wantBackup       int
		wantMetrics      []string
	}{
		{
			name: "primary up", primary: "up", backup: "up",
			wantStatus: 201, wantPrimary: 1,
			wantHeader: map[string]string{"Location": "/ucwa/v1/applications/1/communication/invitations/primary",
				"X-MS-UcwaVersion": "2", "X-Ucwa-Pool": "pool=primary"},
			wantMetrics: []string{`caddy_ucwa_pool_requests_total{outcome="answered",pool="primary"} 1`},
		},
		{
			name: "primary down, backup up", primary: "down", backup: "up",
			wantStatus: 201, wantBackup: 1,
			wantHeader: map[string]string{"Location": "/ucwa/v1/applications/1/communication/invitations/backup",
				"X-Ucwa-Pool": "pool=backup"},
			wantMetrics: []string{
				`caddy_ucwa_pool_requests_total{outcome="unavailable",pool="primary"} 1`,
				`caddy_ucwa_pool_requests_total{outcome="answered",pool="backup"} 1`,
				`caddy_ucwa_pool_failovers_total 1`,
			},
		},
		{
			name: "primary down, no backup", primary: "down",
			wantStatus: 410, wantSubcode: ucwa.SubcodeCannotRedirect, wantMessage: ucwa.MessageCannotRedirect,
			wantHeader:  map[string]string{"X-Ucwa-Pool": "pool="},
			wantMetrics: []string{`caddy_ucwa_cannot_redirect_total 1`},
		},
		{
			name: "both down", primary: "down", backup: "down",
			wantStatus: 503,
			wantMetrics: []string{
				`caddy_ucwa_pool_requests_total{outcome="unavailable",pool="backup"} 1`,
				`caddy_ucwa_cannot_redirect_total 0`,
			},
		},
		{
			// lb_policy cookie sets the cookie of the upstream it chose
			// before the round trip: not the cookie of a pool that did not
			// take the request.
			name: "primary down with lb_policy cookie, backup up", primary: "down", backup: "up",
			primaryBlock: "lb_policy cookie", wantStatus: 201, wantBackup: 1,
			wantHeader: map[string]string{"Set-Cookie": "", "X-Ucwa-Pool": "pool=backup"},
		},
		{
			name: "primary down with lb_policy cookie, no backup", primary: "down",
			primaryBlock: "lb_policy cookie", wantStatus: 410, wantSubcode: ucwa.SubcodeCannotRedirect,
			wantHeader: map[string]string{"Set-Cookie": ""},
		},
		{
			name: "primary TLS handshake fails, backup up", primary: "tls-untrusted", backup: "up",
			wantStatus: 201, wantBackup: 1,
		},
		{
			name: "primary resets after reading the request", primary: "reset", backup: "up",
			wantStatus: 502, wantSubcode: ucwa.SubcodeServiceFailure, wantPrimary: 1,
			wantHeader:  map[string]string{"X-Ucwa-Pool": "pool=primary"},
			wantMetrics: []string{`caddy_ucwa_pool_requests_total{outcome="failed",pool="primary"} 1`},
		},
		{
			// The upstream may hold the request: the client's next
			// requests go where its call may be.
			name: "primary resets after reading the request with lb_policy cookie", primary: "reset", backup: "up",
			primaryBlock: "lb_policy cookie", wantStatus: 502, wantSubcode: ucwa.SubcodeServiceFailure, wantPrimary: 1,
			wantHeader: map[string]string{"X-Ucwa-Pool": "pool=primary"}, wantCookie: "lb=",
		},
		{
			// Go's transport hands a 101 on to reverse_proxy, which writes
			// nothing for it (the request asked for no upgrade): the
			// client got an empty 200 of net/http's, a success for a call
			// the pool may have placed, answered as it never was.
			name: "primary answers 101 Switching Protocols after reading the request", primary: "switching", backup: "up",
			wantStatus: 502, wantSubcode: ucwa.SubcodeServiceFailure, wantPrimary: 1,
			wantHeader:  map[string]string{"X-Ucwa-Pool": "pool=primary"},
			wantMetrics: []string{`caddy_ucwa_pool_requests_total{outcome="failed",pool="primary"} 1`},
		},
		{
			name: "primary hangs past response_header_timeout", primary: "hang", backup: "up",
			primaryBlock: "transport http {\n\t\t\t\tresponse_header_timeout 300ms\n\t\t\t}",
			wantStatus:   504, wantSubcode: ucwa.SubcodeServiceTimeout, wantPrimary: 1,
			wantMetrics: []string{`caddy_ucwa_pool_requests_total{outcome="timeout",pool="primary"} 1`},
		},
		{
			name: "primary answers 409 AlreadyExists", primary: "conflict", backup: "up",
			wantStatus: 409, wantBody: conflictBody, wantPrimary: 1,
			wantHeader: map[string]string{"X-Ms-diagnostics": "1000;reason=\"test\"", "Content-Type": "application/json"},
		},
		{
			name: "primary answers its own 503", primary: "unavailable", backup: "up",
			wantStatus: 503, wantBody: "busy", wantPrimary: 1,
			wantHeader: map[string]string{"Retry-After": "30"},
		},
		{
			name: "absolute Location on another host", primary: "foreign-location",
			wantStatus: 201, wantPrimary: 1,
			wantHeader: map[string]string{"Location": "https://elsewhere.example/ucwa/x"},
		},
		{
			name: "absolute Location on the pool's host", primary: "abs-location",
			wantStatus: 201, wantPrimary: 1,
			wantEdgeLocation: "/ucwa/v1/applications/1/communication/invitations/7?x=1",
		},
		{
			name: "scheme-relative Location on the pool's host", primary: "scheme-relative-location",
			wantStatus: 201, wantPrimary: 1,
			wantEdgeLocation: "/ucwa/v1/applications/1/communication/invitations/8",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			servers := map[string]*testkit.Pool{}
			pools := ""
			for _, side := range []struct{ name, kind, block string }{
				{"primary", tt.primary, tt.primaryBlock}, {"backup", tt.backup, ""},
			} {
				var addr string
				switch side.kind {
				case "":
					continue
				case "down":
					addr = testkit.DownAddr(t)
				case "tls-untrusted":
					servers[side.name] = testkit.NewTLSPool(t, side.name)
				default:
					answer := map[string]testkit.Answer{
						"up":           testkit.AnswerCreated,
						"reset":        testkit.AnswerReset,
						"hang":         testkit.AnswerHang,
						"abs-location": testkit.AnswerAbsoluteLocation,
						"scheme-relative-location": func(p *testkit.Pool, w http.ResponseWriter, _ *http.Request) {
							w.Header().Set("Location", "//"+p.Addr()+"/ucwa/v1/applications/1/communication/invitations/8")
							w.WriteHeader(http.StatusCreated)
						},
						"conflict": testkit.AnswerStatus(409, map[string]string{
							"Content-Type": "application/json", "X-Ms-diagnostics": "1000;reason=\"test\""}, conflictBody),
						"unavailable":      testkit.AnswerStatus(503, map[string]string{"Retry-After": "30"}, "busy"),
						"switching":        testkit.AnswerStatus(http.StatusSwitchingProtocols, nil, ""),
						"foreign-location": testkit.AnswerStatus(201, map[string]string{"Location": "https://elsewhere.example/ucwa/x"}, ""),
					}[side.kind]
					servers[side.name] = testkit.NewPool(t, side.name, answer)
				}
				if s := servers[side.name]; s != nil {
					addr = s.URL()
				}
				pools += fmt.Sprintf("\t\t%s %s {\n\t\t\t%s\n\t\t}\n", side.name, addr, side.block)
			}
			e := startEdge(t, "caddyfile", poolsCaddyfile(pools), testkit.WithAdmin())

			resp := e.startPhoneAudio("op-1")
			body := resp.Body
			if resp.Status != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", resp.Status, tt.wantStatus, body)
			}
			if tt.wantStatus != 201 && tt.wantBody == "" {
				var e struct{ Code, Subcode, Message string }
				if err := json.Unmarshal([]byte(body), &e); err != nil {
					t.Fatalf("not a UCWA error body: %q", body)
				}
				if e.Code != ucwa.Code(tt.wantStatus) || e.Subcode != tt.wantSubcode || e.Message == "" ||
					tt.wantMessage != "" && e.Message != tt.wantMessage {
					t.Errorf("error body %s, want code %s subcode %q message %q", body, ucwa.Code(tt.wantStatus), tt.wantSubcode, tt.wantMessage)
				}
			}
			if tt.wantBody != "" && body != tt.wantBody {
				t.Errorf("body %q, want the pool's %q", body, tt.wantBody)
			}
			for k, v := range tt.wantHeader {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("header %s: %q, want %q", k, got, v)
				}
			}
			if got := resp.Header.Get("Set-Cookie"); tt.wantCookie != "" && !strings.HasPrefix(got, tt.wantCookie) {
				t.Errorf("Set-Cookie %q, want %s...", got, tt.wantCookie)
			}
			if want := e.url(tt.wantEdgeLocation); tt.wantEdgeLocation != "" && resp.Header.Get("Location") != want {
				t.Errorf("Location %q, want %q", resp.Header.Get("Location"), want)
			}
			for side, want := range map[string]int{"primary": tt.wantPrimary, "backup": tt.wantBackup} {
				got := 0
				if s := servers[side]; s != nil {
					got = len(s.Received())
				}
				if got != want {
					t.Errorf("%s received %d requests, want %d", side, got, want)
				}
			}
			if len(tt.wantMetrics) > 0 {
				metrics := e.Metrics()
				for _, line := range tt.wantMetrics {
					if !strings.Contains(metrics, line+"\n") {
						t.Errorf("/metrics lacks %q", line)
					}
				}
			}
		})
	}
}

// startPhoneAudio posts a startPhoneAudio request with operationId op to
// the edge.
func (e edge) startPhoneAudio(op string) testkit.Response {
	e.t.Helper()
	return e.postJSON("/ucwa/v1/applications/1/communication/startPhoneAudio", fmt.Sprintf(`{"to":"4255551234","operationId":%q}`, op), nil)
}

// TestPoolClientDisconnect: a client that goes away stops the attempt,
// and nothing is sent to the backup for it.
func TestPoolClientDisconnect(t *testing.T) {
	tests := []struct {
		name string
		// setup returns the primary subdirective and a function that
		// returns once the edge is busy with the request.
		setup func(t *testing.T) (string, func(e edge))
	}{
		{"primary received the request and hangs", func(t *testing.T) (string, func(edge)) {
			primary := testkit.NewPool(t, "primary", testkit.AnswerHang)
			return "primary " + primary.Addr(), func(edge) { primary.Requests.WaitFor(t, 1, "requests at the primary") }
		}},
		{"primary down, edge retrying within lb_try_duration", func(t *testing.T) (string, func(edge)) {
			// reverse_proxy keeps trying for the whole lb_try_duration,
			// whether the client is still there or not (it watches its
			// own context between tries, not the request's), and only
			// then does the edge see that the client went away. The
			// client goes as soon as the first try failed: 5s leave a
			// wide margin for that, and the test waits for the end of
			// the tries, not for a time.
			down := testkit.DownAddr(t)
			return "primary " + down + " {\n\t\t\tlb_try_duration 5s\n\t\t\tfail_duration 10m\n\t\t}",
				func(e edge) { e.Logs().Wait(t, `"msg":"upstream roundtrip"`, `"upstream":"`+down+`"`, `"error"`) }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			primaryConfig, busy := tt.setup(t)
			backup := testkit.NewPool(t, "backup", testkit.AnswerCreated)
			e := startEdge(t, "caddyfile", "{\n\tlog {\n\t\tlevel DEBUG\n\t}\n}\n"+poolsCaddyfile("\t\t"+primaryConfig+"\n\t\tbackup "+backup.Addr()), testkit.WithAdmin())

			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				_, err := testkit.Do(e.Client(), testkit.Request{Context: ctx, URL: e.url("/ucwa/v1/applications/1/communication/startPhoneAudio"),
					ContentType: "application/json", Body: `{"to":"4255551234","operationId":"op-gone"}`})
				done <- err
			}()
			busy(e)
			cancel()
			if err := <-done; err == nil {
				t.Fatal("the request was answered although the client went away")
			}
			// The edge counts the attempt, then logs it, once it has given
			// up on it.
			e.Logs().Wait(t, `"msg":"client went away; request not retried"`)
			if got := e.Metric(`caddy_ucwa_pool_requests_total{outcome="client_gone",pool="primary"}`); got != 1 {
				t.Errorf("client_gone attempts of the primary: %v, want 1", got)
			}
			if got := len(backup.Received()); got != 0 {
				t.Errorf("backup received %d requests for a client that was gone", got)
			}
			if got := e.Metric("caddy_ucwa_pool_failovers_total"); got > 0 {
				t.Errorf("failed over %v times for a client that was gone", got)
			}
		})
	}
}

// TestNoTransportReplay: Go's transport sends a written POST again when
// a kept-alive connection dies under it, if it can rewind the body
// (GetBody, or no body at all) and the request has an Idempotency-Key or
// X-Idempotency-Key header. The edge gives it no GetBody and takes those
// headers out, after a pool's header_up too, whether it delivers to its
// own pools or to the next handler (a user's reverse_proxy): a request
// with a body and one with its inputs in the query alone are sent once.
func TestNoTransportReplay(t *testing.T) {
	const startPath = "/ucwa/v1/applications/1/communication/startPhoneAudio"
	configs := []struct {
		name   string
		config func(primary, backup string) string
	}{
		{"primary pool", func(primary, backup string) string {
			return poolsCaddyfile("\t\tprimary " + primary + "\n\t\tbackup " + backup)
		}},
		{"primary pool adding the header", func(primary, backup string) string {
			return poolsCaddyfile("\t\tprimary " + primary + " {\n\t\t\theader_up Idempotency-Key added\n\t\t}\n\t\tbackup " + backup)
		}},
		{"next handler's reverse_proxy", func(primary, _ string) string {
			return strings.Replace(poolsCaddyfile(""), "\t}\n}", "\t}\n\treverse_proxy "+primary+"\n}", 1)
		}},
	}
	requests := []struct {
		name string
		req  testkit.Request
	}{
		{"body", testkit.Request{URL: startPath, ContentType: "application/json",
			Body: `{"to":"4255551234","operationId":"op-keyed"}`, Header: http.Header{"Idempotency-Key": {"op-keyed"}}}},
		{"query alone", testkit.Request{Method: "POST", URL: startPath + "?to=4255551234&operationId=op-keyed",
			Header: http.Header{"Idempotency-Key": {"op-keyed"}}}},
		{"query alone, X-Idempotency-Key", testkit.Request{Method: "POST", URL: startPath + "?to=4255551234&operationId=op-keyed",
			Header: http.Header{"X-Idempotency-Key": {"op-keyed"}}}},
	}
	for _, cfg := range configs {
		for _, rq := range requests {
			t.Run(cfg.name+"/"+rq.name, func(t *testing.T) {
				var calls atomic.Int64
				primary := testkit.NewPool(t, "primary", func(p *testkit.Pool, w http.ResponseWriter, r *http.Request) {
					if calls.Add(1) == 1 {
						testkit.AnswerCreated(p, w, r) // leaves a kept-alive connection
						return
					}
					testkit.AnswerClose(p, w, r) // read the request, then close without an answer
				})
				backup := testkit.NewPool(t, "backup", testkit.AnswerCreated)
				e := startEdge(t, "caddyfile", cfg.config(primary.Addr(), backup.Addr()))

				if resp := e.startPhoneAudio("op-first"); resp.Status != http.StatusCreated {
					t.Fatalf("first request: %d %s", resp.Status, resp.Body)
				}
				if resp := e.send(rq.req); resp.Status != http.StatusBadGateway {
					t.Errorf("status %d, want 502", resp.Status)
				}
				got := primary.Received()
				if len(got) != 2 {
					t.Fatalf("primary received %d requests, want op-first and op-keyed once", len(got))
				}
				if id := got[1].OperationID(); id != "op-keyed" {
					t.Errorf("primary's second request has operationId %q, want op-keyed", id)
				}
				for _, name := range []string{"Idempotency-Key", "X-Idempotency-Key"} {
					if v := got[1].Header.Values(name); len(v) > 0 {
						t.Errorf("primary received %s: %q", name, v)
					}
				}
				if n := len(backup.Received()); n != 0 {
					t.Errorf("backup received %d requests", n)
				}
			})
		}
	}
}

// TestPoolErrorsInXML: the edge's own pool answers follow the request's
// format.
func TestPoolErrorsInXML(t *testing.T) {
	e := startEdge(t, "caddyfile", poolsCaddyfile("\t\tprimary "+testkit.DownAddr(t)))
	resp := e.send(testkit.Request{URL: "/ucwa/v1/applications/1/communication/startPhoneAudio", ContentType: "application/xml",
		Body: `<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="to">sip:john@contoso.com</property></input>`})
	body := resp.Body
	if resp.Status != http.StatusGone || !strings.Contains(body, "<reason") ||
		!strings.Contains(body, "<subcode>CannotRedirect</subcode>") || !strings.Contains(body, ucwa.MessageCannotRedirect) {
		t.Errorf("%d %s, want a 410 CannotRedirect reason in XML", resp.Status, body)
	}
}

// TestReportOutgoingNotAgain: net/http asks its Proxy hook before each
// time it sends a request; once the request was written whole, the
// edge's hook refuses, unless the connection took no byte of it, so that
// no replay of net/http's own can reach the pool, whatever made it one. (Go replays only what the edge no longer
// gives it, a GetBody or an Idempotency-Key: TestNoTransportReplay.)
func TestReportOutgoingNotAgain(t *testing.T) {
	hook := reportOutgoing(nil)
	c := new(connTrace)
	req := httptest.NewRequest(http.MethodPost, "http://pool/x", nil).
		WithContext(&attemptContext{Context: context.Background(), conn: c})
	req.Header.Set("Idempotency-Key", "k")
	if _, err := hook(req); err != nil || c.outgoing == nil || !c.askedConn.Load() || req.Header.Get("Idempotency-Key") != "" {
		t.Fatalf("the first send: %v; reported %v, asked for a connection %v; header %v", err, c.outgoing != nil, c.askedConn.Load(), req.Header)
	}
	c.wrote.Store(true)
	if _, err := hook(req); !errors.Is(err, errSentAlready) {
		t.Fatalf("a send after the request was written: %v, want errSentAlready", err)
	}
	// A request whose connection took none of its bytes (its write failed
	// at the flush) may go out again; one that took some may not.
	conn := &countingConn{}
	conn.written.Store(100) // an earlier request's
	c.sentOn.Store(conn)
	c.sentFrom.Store(100)
	if _, err := hook(req); err != nil || c.wrote.Load() {
		t.Fatalf("a send after a write that left nothing on the connection: %v, wrote %v; want it sent", err, c.wrote.Load())
	}
	c.wrote.Store(true)
	conn.written.Add(1)
	if _, err := hook(req); !errors.Is(err, errSentAlready) {
		t.Fatalf("a send after a write that left a byte on the connection: %v, want errSentAlready", err)
	}
	// Requests of no attempt (health checks) go as they are.
	other := httptest.NewRequest(http.MethodGet, "http://pool/health", nil)
	if u, err := hook(other); u != nil || err != nil {
		t.Fatalf("a health check: %v, %v", u, err)
	}
}

// TestPoolOutageWarningsThrottled: while a pool cannot take requests,
// the warning (failing over, 410, or the error 503) is logged at the first
// request and then once a minute at most (on a test clock), with the
// requests since the last one; it names no client. Every request is
// counted in the metrics all the same.
func TestPoolOutageWarningsThrottled(t *testing.T) {
	for _, tc := range []struct {
		name, level, msg string
		backup           bool // a backup that answers, else none
		twoDown          bool // a backup that is down too
		status           int
	}{
		{"failover", "warn", "primary pool cannot take the request; failing over to the backup pool", true, false, http.StatusCreated},
		{"no backup", "warn", "primary pool cannot take the request and no backup pool is configured: 410 CannotRedirect", false, false, http.StatusGone},
		{"no pool", "error", "no pool can take the request: 503", false, true, http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := testkit.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
			poolWarningClock = clock.Now
			t.Cleanup(func() { poolWarningClock = nil })
			pools := "primary " + testkit.DownAddr(t)
			switch {
			case tc.backup:
				pools += "\n\t\tbackup " + testkit.NewPool(t, "backup", testkit.AnswerCreated).Addr()
			case tc.twoDown:
				pools += "\n\t\tbackup " + testkit.DownAddr(t)
			}
			e := startEdge(t, "caddyfile", `:EDGE_PORT {
	ucwa {
		jwt off
		default_region US
		`+pools+`
	}
}`)
			warnings := func() (requests []float64) {
				t.Helper()
				for line := range strings.Lines(e.Logs().String()) {
					if !strings.Contains(line, `"msg":"`+tc.msg) {
						continue
					}
					var w map[string]any
					if err := json.Unmarshal([]byte(line), &w); err != nil {
						t.Fatalf("%v: %s", err, line)
					}
					if w["level"] != tc.level || w["remote_ip"] != nil {
						t.Errorf("warning %v: want level %s, no remote_ip", w, tc.level)
					}
					n, _ := w["requests"].(float64)
					requests = append(requests, n)
				}
				return requests
			}
			send := func(n int) {
				t.Helper()
				for range n {
					if resp := e.postJSON(startPath, `{"to":"4255551234"}`, nil); resp.Status != tc.status {
						t.Fatalf("%d %s, want %d", resp.Status, resp.Body, tc.status)
					}
				}
			}
			send(3)
			if got := warnings(); !slices.Equal(got, []float64{1}) {
				t.Fatalf("after 3 requests: warnings with requests %v, want [1]", got)
			}
			clock.Advance(59 * time.Second)
			send(1)
			if got := warnings(); !slices.Equal(got, []float64{1}) {
				t.Fatalf("59s later: warnings with requests %v, want [1]", got)
			}
			clock.Advance(time.Second)
			send(1)
			if got := warnings(); !slices.Equal(got, []float64{1, 4}) {
				t.Fatalf("a minute later: warnings with requests %v, want [1 4]", got)
			}
		})
	}
}
