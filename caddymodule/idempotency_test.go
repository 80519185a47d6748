package caddymodule

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/golang-jwt/jwt/v5"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// idemStore is a store the idempotency tests run against.
type idemStore struct {
	name string
	// config returns the store subdirective: memory, or Redis on a
	// redis-server started for the test (the test is skipped without
	// one). The Redis timeout is generous where timeouts are not under
	// test, so that a loaded machine does not fail the test.
	config func(t *testing.T) string
}

var idemStores = []idemStore{
	{"memory", func(*testing.T) string { return "store memory" }},
	{"redis", func(t *testing.T) string {
		return "store redis " + testkit.StartRedis(t).URL() + " {\n\t\t\ttimeout 5s\n\t\t}"
	}},
}

// idemPool is a front-end pool for the idempotency tests. It answers by
// the request's X-Test-Answer header:
//
//   - "" (and anything else): 201 with Location invitations/<n>,
//     Content-Type application/json and the body {"n":<n>}, n counting
//     the pool's answers, so that a replay is told from a new answer;
//   - "hold": the same, once the test releases the pool (Release);
//   - "hang": nothing, until the edge gives up on the request;
//   - "big": 201 with a body of 5000 bytes;
//   - "bigfailure": 500 with a body of 5000 bytes;
//   - "conflict": 409 Conflict / AlreadyExists, as a pool answers a
//     repeated operationId;
//   - "reset": resets the connection after reading the request;
//   - "holdcut": as "hold", then 201 and 10 bytes of the 100 its
//     Content-Length declares, and the connection closed: the answer
//     cut short;
//   - "nocontent": 204 No Content, without a body;
//   - "headhold": 201 and 64 KiB of its body, more than the edge records
//     or buffers, so that the client has the answer's head; the rest
//     once the test releases the pool.
type idemPool struct {
	*testkit.Pool
	n       atomic.Int64
	release chan struct{}
}

func newIdemPool(t *testing.T, name string) *idemPool {
	p := &idemPool{release: make(chan struct{})}
	p.Pool = testkit.NewPool(t, name, p.answer)
	return p
}

// Release lets the held requests be answered.
func (p *idemPool) Release() { close(p.release) }

// held waits until the test releases the pool, false if the edge gave
// up on the request first.
func (p *idemPool) held(r *http.Request) bool {
	select {
	case <-p.release:
		return true
	case <-r.Context().Done():
		return false
	}
}

func (p *idemPool) answer(pool *testkit.Pool, w http.ResponseWriter, r *http.Request) {
	switch r.Header.Get("X-Test-Answer") {
	case "hold":
		if !p.held(r) {
			return
		}
	case "hang":
		testkit.AnswerHang(pool, w, r)
		return
	case "big":
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, strings.Repeat("x", 5000))
		return
	case "bigfailure":
		testkit.AnswerStatus(http.StatusInternalServerError, map[string]string{"Content-Type": "text/plain"}, strings.Repeat("x", 5000))(pool, w, r)
		return
	case "conflict":
		testkit.AnswerStatus(http.StatusConflict, map[string]string{"Content-Type": "application/json"}, conflictBody)(pool, w, r)
		return
	case "reset":
		testkit.AnswerReset(pool, w, r)
		return
	case "holdbig":
		if !p.held(r) {
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, strings.Repeat("x", 5000))
		return
	case "holdcut":
		if !p.held(r) {
			return
		}
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, "0123456789")
		_ = http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler) // net/http closes the connection
	case "nocontent":
		w.WriteHeader(http.StatusNoContent)
		return
	case "headhold":
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, strings.Repeat("x", 64<<10))
		_ = http.NewResponseController(w).Flush()
		select {
		case <-p.release:
		case <-r.Context().Done():
		}
		return
	}
	n := p.n.Add(1)
	w.Header().Set("Location", fmt.Sprintf("/ucwa/v1/applications/1/communication/invitations/%s-%d", pool.Name(), n))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, _ = fmt.Fprintf(w, `{"n":%d}`, n)
}

// deliveries counts the requests with operationId op the pool received.
func deliveries(p *testkit.Pool, op string) int {
	return deliveriesByOperation(p)[op]
}

// deliveriesByOperation counts the requests the pool received by
// operationId: for a test that checks many, each pool body read once.
func deliveriesByOperation(p *testkit.Pool) map[string]int {
	n := map[string]int{}
	for _, got := range p.OperationIDs() {
		n[got]++
	}
	return n
}

// idemAuth is the jwt block of the idempotency tests (ES256 tokens of
// idemToken), with web tickets forwarded.
func idemAuth(t *testing.T) string {
	return fmt.Sprintf(`jwt {
			algorithms ES256
			public_key_file %s
		}
		web_tickets forward`, testkit.WriteFile(t, t.TempDir(), "ec.pem", testkit.PublicPEM(t, testkit.Keys(t).EC)))
}

// idemToken is an Authorization header with a token for the caller of
// tenant tid with object id oid ("": none) and subject sub.
func idemToken(t *testing.T, tid, oid, sub string) http.Header {
	claims := jwt.MapClaims{"tid": tid, "sub": sub}
	if oid != "" {
		claims["oid"] = oid
	}
	token := testkit.Mint(t, jwt.SigningMethodES256, testkit.Keys(t).EC, "", testkit.Claims(time.Now(), claims))
	return http.Header{"Authorization": {"Bearer " + token}}
}

// idemCaddyfile is an edge on EDGE_PORT with an access log, Caddy
// logging at debug level, and a ucwa handler with the given
// subdirectives, idempotency on.
func idemCaddyfile(subdirectives ...string) string {
	return fmt.Sprintf(`{
	log {
		level DEBUG
	}
}
:EDGE_PORT {
	log
	ucwa {
		default_region US
		idempotency
		%s
	}
}`, strings.Join(subdirectives, "\n\t\t"))
}

// idemCall is a startPhoneAudio request of the idempotency tests.
type idemCall struct {
	header http.Header // Authorization and more
	app    string      // the application id in the path; default "1"
	path   string      // the path after the application's; default "/communication/startPhoneAudio"
	query  string
	body   string // default: JSON with to and operationId op
	op     string
	xml    bool
	answer string // the pool's answer (X-Test-Answer)
	sdp    string // an application/sdp body, in the place of body
}

func (c idemCall) request() testkit.Request {
	app := c.app
	if app == "" {
		app = "1"
	}
	path := c.path
	if path == "" {
		path = "/communication/startPhoneAudio"
	}
	req := testkit.Request{
		URL:         "/ucwa/v1/applications/" + app + path,
		ContentType: "application/json",
		Body:        c.body,
		Header:      http.Header{},
	}
	if c.query != "" {
		req.URL += "?" + c.query
	}
	if c.sdp != "" {
		req.ContentType, req.Body = "application/sdp", c.sdp
	}
	if req.Body == "" {
		req.Body = fmt.Sprintf(`{"to":"4255551234","operationId":%q}`, c.op)
		if c.xml {
			req.ContentType = "application/xml"
			req.Body = `<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="to">4255551234</property><property name="operationId">` + c.op + `</property></input>`
		}
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	if c.answer != "" {
		req.Header.Set("X-Test-Answer", c.answer)
	}
	return req
}

// send sends c to the edge.
func (e edge) call(c idemCall) testkit.Response {
	e.t.Helper()
	return e.send(c.request())
}

// assertReplay checks that resp gives again the answer first.
func assertReplay(t *testing.T, resp, first testkit.Response) {
	t.Helper()
	if resp.Header.Get(headerReplayed) != "true" {
		t.Errorf("%d %s: no %s: true header", resp.Status, resp.Body, headerReplayed)
	}
	for _, h := range []string{"Location", "Content-Type"} {
		if got, want := resp.Header.Get(h), first.Header.Get(h); got != want {
			t.Errorf("replay's %s %q, want the first answer's %q", h, got, want)
		}
	}
	if resp.Status != first.Status || resp.Body != first.Body {
		t.Errorf("replay %d %q, want the first answer %d %q", resp.Status, resp.Body, first.Status, first.Body)
	}
}

// assertConflict checks that resp is the edge's 409 AlreadyExists.
func assertConflict(t *testing.T, resp testkit.Response) {
	t.Helper()
	assertConflictWith(t, resp, errAlreadyExists)
}

// assertPartConflict checks that resp is the edge's 409 AlreadyExists
// for the batch's part at index, a repeat.
func assertPartConflict(t *testing.T, resp testkit.Response, index int) {
	t.Helper()
	assertConflictWith(t, resp, inPart(index, errAlreadyExists))
}

// assertConflictWith checks that resp is the edge's 409 AlreadyExists
// with want's message.
func assertConflictWith(t *testing.T, resp testkit.Response, want *ucwa.Error) {
	t.Helper()
	if resp.Status != http.StatusConflict || resp.Header.Get(headerReplayed) != "" {
		t.Fatalf("%d %v %s, want 409 from the edge", resp.Status, resp.Header, resp.Body)
	}
	if e := ucwaError(t, resp.Body); e.Code != "Conflict" || e.Subcode != ucwa.SubcodeAlreadyExists || e.Message != want.Message {
		t.Fatalf("%s, want the edge's Conflict / AlreadyExists: %s", resp.Body, want.Message)
	}
}

// TestIdempotencyRepeats: what a repeat of a request gets, step by step,
// for each store: the first answer again (a replay) for the same caller,
// application, operation and operationId; a new delivery when any of them
// differs; 409 when the answer cannot be replayed. Each scenario uses
// operationIds of its own, on one edge per store.
func TestIdempotencyRepeats(t *testing.T) {
	type step struct {
		call idemCall
		// The answer: a status, whether it is a replay of the scenario's
		// first answer, or the edge's 409.
		status             int
		replayed, conflict bool
		conflictErr        *ucwa.Error // the 409's; nil: errAlreadyExists
		delivered          bool        // the pool received it
		result             string      // caddy_ucwa_idempotency_total's result
	}
	a := idemToken(t, "tenant-1", "oid-a", "sub-a")
	aOtherApp := idemToken(t, "tenant-1", "oid-a", "sub-of-another-client") // the same user through another client
	b := idemToken(t, "tenant-1", "oid-b", "sub-b")
	aOtherTenant := idemToken(t, "tenant-2", "oid-a", "sub-a")
	subOnly := idemToken(t, "tenant-1", "", "sub-only")
	ticket := http.Header{"Authorization": {"Bearer cwt=AAEAHAUHGkHigqyFLZ-Wd6o1tPkOgK5XHlEkBKdA4N3rE0y"}}
	created := func(c idemCall) step {
		return step{call: c, status: 201, delivered: true, result: "reserved"}
	}
	replay := func(c idemCall, status int) step {
		return step{call: c, status: status, replayed: true, result: "replayed"}
	}
	conflict := func(c idemCall) step {
		return step{call: c, status: 409, conflict: true, result: "conflict"}
	}
	scenarios := []struct {
		name  string
		steps []step
	}{
		{"a repeat gets the first answer", []step{
			created(idemCall{header: a, op: "r1"}),
			replay(idemCall{header: a, op: "r1"}, 201),
			replay(idemCall{header: a, op: "r1"}, 201),
		}},
		{"the same user through another client", []step{
			created(idemCall{header: a, op: "r2"}),
			replay(idemCall{header: aOtherApp, op: "r2"}, 201),
		}},
		{"a caller known by sub only", []step{
			created(idemCall{header: subOnly, op: "r3"}),
			replay(idemCall{header: subOnly, op: "r3"}, 201),
		}},
		{"the pool's error answer is replayed", []step{
			{call: idemCall{header: a, op: "e1", answer: "conflict"}, status: 409, delivered: true, result: "reserved"},
			replay(idemCall{header: a, op: "e1"}, 409),
		}},
		{"an answer without a body is replayed as it is", []step{
			{call: idemCall{header: a, op: "nb1", answer: "nocontent"}, status: 204, delivered: true, result: "reserved"},
			replay(idemCall{header: a, op: "nb1"}, 204),
		}},
		{"an answer body over 4 KiB is not replayed", []step{
			created(idemCall{header: a, op: "big1", answer: "big"}),
			conflict(idemCall{header: a, op: "big1"}),
		}},
		{"another caller's operationId", []step{
			created(idemCall{header: a, op: "c1"}),
			created(idemCall{header: b, op: "c1"}),
			replay(idemCall{header: a, op: "c1"}, 201),
		}},
		{"another tenant's operationId", []step{
			created(idemCall{header: a, op: "c2"}),
			created(idemCall{header: aOtherTenant, op: "c2"}),
		}},
		{"another application", []step{
			created(idemCall{header: a, op: "p1", app: "7"}),
			created(idemCall{header: a, op: "p1", app: "8"}),
		}},
		{"the application id in other letter case", []step{
			created(idemCall{header: a, op: "p2", app: "App9"}),
			replay(idemCall{header: a, op: "p2", app: "aPP9"}, 201),
		}},
		{"operationId in the query, then in the body", []step{
			created(idemCall{header: a, query: "operationId=q1", body: `{"to":"4255551234"}`}),
			replay(idemCall{header: a, op: "q1"}, 201),
		}},
		{"XML", []step{
			created(idemCall{header: a, op: "x1", xml: true}),
			replay(idemCall{header: a, op: "x1", xml: true}, 201),
			replay(idemCall{header: a, op: "x1"}, 201),
		}},
		{"a repeat with other inputs gets 409, not the first answer", []step{
			created(idemCall{header: a, op: "i1"}),
			{call: idemCall{header: a, body: `{"to":"4255559999","operationId":"i1"}`}, status: 409, conflict: true,
				conflictErr: errOperationIDReused, result: "conflict"},
			replay(idemCall{header: a, op: "i1"}, 201),
		}},
		{"the same operationId on another resource gets 409, not the first answer", []step{
			created(idemCall{header: a, op: "i3", path: "/communication/conversations/c1/addParticipant"}),
			{call: idemCall{header: a, op: "i3", path: "/communication/conversations/c2/addParticipant"}, status: 409, conflict: true,
				conflictErr: errOperationIDReused, result: "conflict"},
			replay(idemCall{header: a, op: "i3", path: "/Communication/Conversations/C1/addParticipant"}, 201),
		}},
		{"an escalation with another SDP offer gets 409, not the first answer", []step{
			created(idemCall{header: a, path: "/communication/conversations/c1/audioVideo/escalateAudio",
				query: "operationId=s1&sessionContext=x1", sdp: "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n"}),
			{call: idemCall{header: a, path: "/communication/conversations/c1/audioVideo/escalateAudio",
				query: "operationId=s1&sessionContext=x1", sdp: "v=0\r\no=- 2 2 IN IP4 192.0.2.2\r\n"}, status: 409, conflict: true,
				conflictErr: errOperationIDReused, result: "conflict"},
			replay(idemCall{header: a, path: "/communication/conversations/c1/audioVideo/escalateAudio",
				query: "operationId=s1&sessionContext=x1", sdp: "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n"}, 201),
		}},
		{"another path spelling of the operation gets 409, not the first answer", []step{
			created(idemCall{header: a, op: "i4"}),
			{call: idemCall{header: a, op: "i4", path: "/communication/phoneAudioInvitations"}, status: 409, conflict: true,
				conflictErr: errOperationIDReused, result: "conflict"},
		}},
		{"a property added or left out gets 409, not the first answer", []step{
			created(idemCall{header: a, body: `{"to":"4255551234","operationId":"i5","subject":"s"}`}),
			{call: idemCall{header: a, op: "i5"}, status: 409, conflict: true, conflictErr: errOperationIDReused, result: "conflict"},
			{call: idemCall{header: a, body: `{"to":"4255551234","operationId":"i5","subject":"s","importance":"Normal"}`}, status: 409, conflict: true,
				conflictErr: errOperationIDReused, result: "conflict"},
			replay(idemCall{header: a, body: `{"to":"4255551234","operationId":"i5","subject":"s"}`}, 201),
		}},
		{"the same operationId on another operation is another request", []step{
			created(idemCall{header: a, op: "i6"}),
			created(idemCall{header: a, op: "i6", path: "/communication/startAudio"}),
			replay(idemCall{header: a, op: "i6"}, 201),
		}},
		{"the same inputs spelled otherwise", []step{
			created(idemCall{header: a, op: "i2"}),
			replay(idemCall{header: a, body: `{"To":"(425) 555-1234","operationId":"i2"}`}, 201),
		}},
		{"no operationId: not protected", []step{
			{call: idemCall{header: a, body: `{"to":"4255551234"}`}, status: 201, delivered: true, result: "unprotected"},
			{call: idemCall{header: a, body: `{"to":"4255551234"}`}, status: 201, delivered: true, result: "unprotected"},
		}},
		{"a request the edge refuses reserves nothing", []step{
			{call: idemCall{header: a, body: `{"to":"not a number","operationId":"v1"}`}, status: 400},
			created(idemCall{header: a, op: "v1"}),
		}},
		{"without a verified caller, 409 and never the first answer", []step{
			created(idemCall{header: ticket, op: "w1"}),
			conflict(idemCall{header: ticket, op: "w1"}),
			created(idemCall{header: a, op: "w1"}),
		}},
	}
	for _, st := range idemStores {
		t.Run(st.name, func(t *testing.T) {
			pool := newIdemPool(t, "primary")
			e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t), st.config(t), "primary "+pool.Addr()), testkit.WithAdmin())
			results := map[string]int{}
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) {
					var first testkit.Response
					for i, s := range sc.steps {
						before := pool.Requests.Load()
						resp := e.call(s.call)
						if resp.Status != s.status {
							t.Fatalf("step %d: %d %s, want %d", i+1, resp.Status, resp.Body, s.status)
						}
						switch {
						case i == 0:
							first = resp
						case s.replayed:
							assertReplay(t, resp, first)
						case s.conflict && s.conflictErr != nil:
							assertConflictWith(t, resp, s.conflictErr)
						case s.conflict:
							assertConflict(t, resp)
						}
						if !s.replayed && resp.Header.Get(headerReplayed) != "" {
							t.Errorf("step %d: %s on an answer that is no replay", i+1, headerReplayed)
						}
						want := int64(0)
						if s.delivered {
							want = 1
						}
						if got := pool.Requests.Load() - before; got != want {
							t.Errorf("step %d: the pool received %d requests, want delivered %v", i+1, got, s.delivered)
						}
						if s.result != "" {
							results[s.result]++
						}
					}
				})
			}
			metrics := e.Metrics()
			for _, result := range idempotencyResultNames {
				want := float64(results[result])
				if got := testkit.MetricValue(t, metrics, `caddy_ucwa_idempotency_total{result="`+result+`"}`); got != want && !(got == -1 && want == 0) {
					t.Errorf("caddy_ucwa_idempotency_total{result=%q} %v, want %v", result, got, want)
				}
			}
			// The access log names what idempotency did.
			e.Logs().Wait(t, `"msg":"handled request"`, `"ucwa_idempotency":"replayed"`)
			// The token is in no line; the caller and the operationId only in
			// the audit trail's, which is meant to name them.
			for line := range strings.Lines(e.Logs().String()) {
				secrets := []string{a.Get("Authorization")[len("Bearer "):], `"r1"`, "oid-a"}
				if strings.Contains(line, `"logger":"http.handlers.ucwa.audit"`) {
					secrets = secrets[:1]
				}
				for _, secret := range secrets {
					if strings.Contains(line, secret) {
						t.Errorf("a log line holds %q: %s", secret, line)
					}
				}
			}
		})
	}
}

// TestIdempotencyInFlight: while the first request is in flight, a
// repeat is answered 409 and not delivered; once the first is answered, a
// repeat gets its answer. So too with no log taking the audit trail's
// level (Caddy's default log at WARN), where idempotency records the
// answer through a recorder of its own.
func TestIdempotencyInFlight(t *testing.T) {
	type variant struct {
		name  string
		store idemStore
		level string // of Caddy's default log
	}
	var variants []variant
	for _, st := range idemStores {
		variants = append(variants, variant{st.name, st, "DEBUG"})
	}
	variants = append(variants, variant{"memory, no audit trail", idemStores[0], "WARN"})
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			pool := newIdemPool(t, "primary")
			e := startEdge(t, "caddyfile", strings.Replace(idemCaddyfile(idemAuth(t), v.store.config(t), "primary "+pool.Addr()), "level DEBUG", "level "+v.level, 1))
			caller := idemToken(t, "tenant-1", "oid-a", "sub-a")
			first := e.sendHeld(t, idemCall{header: caller, op: "f1", answer: "hold"})
			pool.Requests.WaitFor(t, 1, "requests at the pool")
			assertConflict(t, e.call(idemCall{header: caller, op: "f1"}))
			pool.Release()
			answer := <-first
			if answer.Status != http.StatusCreated {
				t.Fatalf("first request: %d %s", answer.Status, answer.Body)
			}
			assertReplay(t, e.call(idemCall{header: caller, op: "f1"}), answer)
			if got := deliveries(pool.Pool, "f1"); got != 1 {
				t.Errorf("delivered %d times", got)
			}
			if lines := auditLines(t, e.Logs().String()); v.level == "WARN" && len(lines) != 0 {
				t.Errorf("%d audit lines, want none at level WARN", len(lines))
			}
		})
	}
}

// TestIdempotencyEmergencyCall: nothing the edge adds holds an emergency
// call back (here startPhoneAudio to 911, an emergency number of
// default_region dialled now). A repeat of one that a pool answered with
// success gets that answer again (409 when it was too long to record);
// a repeat of one that failed (its failure recorded or too long to
// record), or of one still in flight, is delivered: it got the failure
// again, or 409, for the whole window, however urgent the call.
func TestIdempotencyEmergencyCall(t *testing.T) {
	pool := newIdemPool(t, "primary")
	e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t), "primary "+pool.Addr()))
	caller := idemToken(t, "tenant-1", "oid-a", "sub-a")
	call := func(op, answer string) idemCall {
		return idemCall{header: caller, op: op, answer: answer, body: `{"to":"911","operationId":"` + op + `"}`}
	}

	answered := e.call(call("emergency-answered", ""))
	if answered.Status != http.StatusCreated {
		t.Fatalf("%d %s", answered.Status, answered.Body)
	}
	assertReplay(t, e.call(call("emergency-answered", "")), answered)

	if failed := e.call(call("emergency-failed", "conflict")); failed.Status != http.StatusConflict {
		t.Fatalf("%d %s, want the pool's 409", failed.Status, failed.Body)
	}
	if again := e.call(call("emergency-failed", "")); again.Status != http.StatusCreated || again.Header.Get(headerReplayed) != "" {
		t.Errorf("the repeat of a failed emergency call: %d %v %s, want it delivered", again.Status, again.Header, again.Body)
	}

	atPool := pool.Requests.Load()
	first := e.sendHeld(t, call("emergency-in-flight", "hold"))
	pool.Requests.WaitFor(t, atPool+1, "requests at the pool")
	if again := e.call(call("emergency-in-flight", "")); again.Status != http.StatusCreated || again.Header.Get(headerReplayed) != "" {
		t.Errorf("the repeat of an emergency call in flight: %d %v %s, want it delivered", again.Status, again.Header, again.Body)
	}
	pool.Release()
	if answer := <-first; answer.Status != http.StatusCreated {
		t.Fatalf("the emergency call in flight: %d %s", answer.Status, answer.Body)
	}

	// A success whose answer is too long to record holds its repeat back
	// all the same: 409, for there is no answer to give again.
	if long := e.call(call("emergency-answered-long", "big")); long.Status != http.StatusCreated {
		t.Fatalf("%d %s", long.Status, long.Body)
	}
	assertConflict(t, e.call(call("emergency-answered-long", "")))

	// A failure too long to record leaves the key a mark that holds no
	// emergency call back: the repeat takes the key over, is delivered,
	// and its answer is the one given again.
	if long := e.call(call("emergency-failed-long", "bigfailure")); long.Status != http.StatusInternalServerError {
		t.Fatalf("%d %s, want the pool's 500", long.Status, long.Body)
	}
	again := e.call(call("emergency-failed-long", ""))
	if again.Status != http.StatusCreated || again.Header.Get(headerReplayed) != "" {
		t.Fatalf("the repeat of an emergency call whose failure was too long to record: %d %v %s, want it delivered", again.Status, again.Header, again.Body)
	}
	assertReplay(t, e.call(call("emergency-failed-long", "")), again)

	for op, want := range map[string]int{"emergency-answered": 1, "emergency-answered-long": 1, "emergency-failed": 2, "emergency-in-flight": 2, "emergency-failed-long": 2} {
		if got := deliveries(pool.Pool, op); got != want {
			t.Errorf("%s: delivered %d times, want %d", op, got, want)
		}
	}
}

// TestIdempotencyInFlightPastWindow: a request still in flight when its
// window has passed keeps its key, renewed every third of the window: on
// the memory store's fake clock, two windows after the first request a
// repeat gets 409, and the pool gets the request once; once answered, a
// repeat gets the answer for a third of the window (the rest of the
// window from the request, none, is less), then no longer. So does a
// batch in flight: a repeat of its part gets 409.
func TestIdempotencyInFlightPastWindow(t *testing.T) {
	clock := renewalClock(t)
	memoryStoreClock, idempotencyNow = clock.Now, clock.Now
	t.Cleanup(func() { memoryStoreClock, idempotencyNow = nil, time.Now })
	pool := newIdemPool(t, "primary")
	e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t), "store memory", "primary "+pool.Addr()))
	caller := idemToken(t, "tenant-1", "oid-a", "sub-a")
	first := e.sendHeld(t, idemCall{header: caller, op: "slow", answer: "hold"})
	const app = "/ucwa/v1/applications/1"
	batchReq := testkit.Request{URL: e.url(app + "/batch"), ContentType: batchType, Header: caller.Clone(),
		Body: batchBody(innerPOST(app+"/communication/startPhoneAudio", "application/json", `{"to":"4255551234","operationId":"slow-part"}`))}
	batchReq.Header.Set("X-Test-Answer", "hold")
	batch := e.sendAsync(t, batchReq)
	pool.Requests.WaitFor(t, 2, "requests at the pool")
	clock.WaitPending(t, 1) // the first renewal, scheduled before delivery
	clock.Advance(2 * DefaultIdempotencyWindow)
	assertConflict(t, e.call(idemCall{header: caller, op: "slow"}))
	assertConflict(t, e.call(idemCall{header: caller, op: "slow-part"}))
	pool.Release()
	answer := <-first
	if answer.Status != http.StatusCreated {
		t.Fatalf("first request: %d %s", answer.Status, answer.Body)
	}
	if resp := <-batch; resp.Status != http.StatusCreated {
		t.Fatalf("batch: %d %s", resp.Status, resp.Body)
	}
	clock.WaitPending(t, 0) // renewals stop with the answer
	clock.Advance(DefaultIdempotencyWindow/3 - time.Second)
	assertReplay(t, e.call(idemCall{header: caller, op: "slow"}), answer)
	if got := deliveries(pool.Pool, "slow"); got != 1 {
		t.Errorf("delivered %d times", got)
	}
	clock.Advance(2 * time.Second)
	if resp := e.call(idemCall{header: caller, op: "slow"}); resp.Status != http.StatusCreated || resp.Header.Get(headerReplayed) != "" || deliveries(pool.Pool, "slow") != 2 {
		t.Errorf("past a third of the window: %d %v, delivered %d times; want a new delivery", resp.Status, resp.Header, deliveries(pool.Pool, "slow"))
	}
}

// sendHeld sends c from a goroutine of its own, for a request the pool
// holds (answer "hold"), and returns where its answer comes.
func (e edge) sendHeld(t *testing.T, c idemCall) <-chan testkit.Response {
	return e.sendAsync(t, e.request(c))
}

// sendAsync sends req in the background and returns the channel its
// answer comes on.
func (e edge) sendAsync(t *testing.T, req testkit.Request) <-chan testkit.Response {
	answer := make(chan testkit.Response, 1)
	go func() {
		resp, err := testkit.Do(e.Client(), req)
		if err != nil {
			t.Error(err)
		}
		answer <- resp
	}()
	return answer
}

// request is c as a request to the edge, for testkit.Do.
func (e edge) request(c idemCall) testkit.Request {
	req := c.request()
	req.URL = e.url(req.URL)
	return req
}

// TestIdempotencyReleaseOrKeep: a request that certainly reached no pool
// (410 CannotRedirect, 503 with no pool available, whose Retry-After is
// not recorded) releases its key, so that sending it again delivers it; one that may have reached a pool and
// got the edge's 502 or 504 keeps it, and a repeat gets that answer
// again.
func TestIdempotencyReleaseOrKeep(t *testing.T) {
	caller := idemToken(t, "tenant-1", "oid-a", "sub-a")
	for _, st := range idemStores {
		t.Run(st.name, func(t *testing.T) {
			t.Run("410 CannotRedirect releases", func(t *testing.T) {
				primary := newIdemPool(t, "primary")
				primary.Kill() // before the edge ever connects to it
				e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t), st.config(t), "primary "+primary.Addr()))
				if resp := e.call(idemCall{header: caller, op: "k410"}); resp.Status != http.StatusGone {
					t.Fatalf("%d %s, want 410", resp.Status, resp.Body)
				}
				primary.Restart(t)
				resp := e.call(idemCall{header: caller, op: "k410"})
				if resp.Status != http.StatusCreated || resp.Header.Get(headerReplayed) != "" || deliveries(primary.Pool, "k410") != 1 {
					t.Fatalf("sent again: %d %v %s, delivered %d times; want a new delivery", resp.Status, resp.Header, resp.Body, deliveries(primary.Pool, "k410"))
				}
			})
			t.Run("503 with no pool available releases", func(t *testing.T) {
				primary, backup := newIdemPool(t, "primary"), newIdemPool(t, "backup")
				primary.Kill()
				backup.Kill()
				e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t), st.config(t), "primary "+primary.Addr(), "backup "+backup.Addr()))
				first := e.call(idemCall{header: caller, op: "k503"})
				if first.Status != http.StatusServiceUnavailable {
					t.Fatalf("%d %s, want 503", first.Status, first.Body)
				}
				// Its Retry-After goes to the client, and is not
				// replayed: the key is released.
				assertRetryAfter(t, first, "1")
				backup.Restart(t)
				resp := e.call(idemCall{header: caller, op: "k503"})
				if resp.Status != http.StatusCreated || resp.Header.Get(headerReplayed) != "" || deliveries(backup.Pool, "k503") != 1 {
					t.Fatalf("sent again: %d %v %s; want a new delivery", resp.Status, resp.Header, resp.Body)
				}
			})
			t.Run("502 and 504 keep", func(t *testing.T) {
				primary, backup := newIdemPool(t, "primary"), newIdemPool(t, "backup")
				e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t), st.config(t), `primary `+primary.Addr()+` {
			transport http {
				response_header_timeout 1s
			}
		}`, "backup "+backup.Addr()))
				for _, tc := range []struct {
					op, answer string
					status     int
				}{{"k502", "reset", http.StatusBadGateway}, {"k504", "hang", http.StatusGatewayTimeout}} {
					first := e.call(idemCall{header: caller, op: tc.op, answer: tc.answer})
					if first.Status != tc.status {
						t.Fatalf("%s: %d %s, want %d", tc.op, first.Status, first.Body, tc.status)
					}
					assertReplay(t, e.call(idemCall{header: caller, op: tc.op}), first)
					if p, b := deliveries(primary.Pool, tc.op), deliveries(backup.Pool, tc.op); p != 1 || b != 0 {
						t.Errorf("%s: delivered to the primary %d times, to the backup %d times", tc.op, p, b)
					}
				}
			})
		})
	}
}

// TestIdempotencyRetryAfterFailover: the primary takes a request, and the
// client's connection is cut before the answer (the primary holds its
// answer until the client has gone); the primary then goes down. The
// client's retry with the same operationId is not delivered to the
// backup, which serves new requests all the same.
func TestIdempotencyRetryAfterFailover(t *testing.T) {
	caller := idemToken(t, "tenant-1", "oid-a", "sub-a")
	for _, st := range idemStores {
		t.Run(st.name, func(t *testing.T) {
			primary, backup := newIdemPool(t, "primary"), newIdemPool(t, "backup")
			e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t), st.config(t), "primary "+primary.Addr(), "backup "+backup.Addr()), testkit.WithAdmin())

			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				req := e.request(idemCall{header: caller, op: "call-1", answer: "hang"})
				req.Context = ctx
				_, err := testkit.Do(e.Client(), req)
				done <- err
			}()
			primary.Requests.WaitFor(t, 1, "requests at the primary")
			cancel()
			if err := <-done; err == nil {
				t.Fatal("the request was answered although the client went away")
			}
			// The access log line comes once the edge is done with the
			// request, its key settled.
			e.Logs().Wait(t, `"msg":"handled request"`, `/communication/startPhoneAudio`)
			primary.Kill()

			assertConflict(t, e.call(idemCall{header: caller, op: "call-1"}))
			if got := deliveries(backup.Pool, "call-1"); got != 0 {
				t.Fatalf("the retry reached the backup %d times", got)
			}
			if resp := e.call(idemCall{header: caller, op: "call-2"}); resp.Status != http.StatusCreated || deliveries(backup.Pool, "call-2") != 1 {
				t.Fatalf("a new request: %d %s, want 201 from the backup", resp.Status, resp.Body)
			}
			if got := e.Metric(`caddy_ucwa_idempotency_total{result="conflict"}`); got != 1 {
				t.Errorf("conflicts: %v, want 1", got)
			}
		})
	}
}

// TestIdempotencyTwoEdges: two edges (Caddy processes) sharing one Redis
// deliver a request once. Each round sends the same operationId to both
// at once: the pool gets it once, one edge answers with the pool's answer
// and the other with 409 (the first in flight) or the same answer again.
func TestIdempotencyTwoEdges(t *testing.T) {
	const rounds = 50
	redisURL := testkit.StartRedis(t).URL()
	pool := newIdemPool(t, "primary")
	config := idemCaddyfile(idemAuth(t), "store redis "+redisURL+" {\n\t\t\ttimeout 5s\n\t\t}", "primary "+pool.Addr())
	edges := []*testkit.Process{testkit.StartCaddyProcess(t, "caddyfile", config), testkit.StartCaddyProcess(t, "caddyfile", config)}
	caller := idemToken(t, "tenant-1", "oid-a", "sub-a")

	var replays, conflicts int
	for round := range rounds {
		op := "round-" + strconv.Itoa(round)
		req := idemCall{header: caller, op: op}.request()
		fresh := 0
		for i, resp := range sendAtOnce(t, edges, []testkit.Request{req, req}) {
			switch {
			case resp.Status == http.StatusCreated && resp.Header.Get(headerReplayed) == "":
				fresh++
			case resp.Status == http.StatusCreated:
				replays++
			case resp.Status == http.StatusConflict:
				conflicts++
			default:
				t.Fatalf("round %d, edge %d: %d %s", round, i, resp.Status, resp.Body)
			}
		}
		if got := deliveries(pool.Pool, op); fresh != 1 || got != 1 {
			t.Fatalf("round %d: %d answers of the pool, %d deliveries; want one of each", round, fresh, got)
		}
	}
	t.Logf("%d rounds: the second request got 409 %d times and the first answer again %d times", rounds, conflicts, replays)
}

// TestIdempotencyMemoryBounded: 20,000 requests with distinct
// operationIds through the handler (in-process, without a network) leave
// a memory store of 1,000 entries holding 1,000: the first 1,000 are
// delivered, the others answered 503 (on_error closed).
func TestIdempotencyMemoryBounded(t *testing.T) {
	const requests, maxEntries = 20_000, 1_000
	ctx := benchContext(t)
	h := provision(t, ctx, new(Handler), fmt.Sprintf(`{"jwt":{"off":true},"default_region":"US",
		"store":{"backend":"memory","max_entries":%d,"max_entries_per_caller":%[1]d},"idempotency":{}}`, maxEntries))
	server := new(caddyhttp.Server)
	for i := range requests {
		req := httptest.NewRequest(http.MethodPost, startPath, strings.NewReader(`{"to":"4255551234","operationId":"bound-`+strconv.Itoa(i)+`"}`))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		req = caddyhttp.PrepareRequest(req, caddy.NewReplacer(), w, server)
		want := http.StatusCreated
		if i >= maxEntries {
			want = http.StatusServiceUnavailable
		}
		if err := h.ServeHTTP(w, req, poolStandIn); err != nil || w.Code != want {
			t.Fatalf("request %d: %d %v %s, want %d", i, w.Code, err, w.Body, want)
		}
	}
	if n := h.store.memory.Len(); n != maxEntries {
		t.Errorf("the store holds %d entries, want %d", n, maxEntries)
	}
	if got := testkit.MetricValue(t, testkit.Exposition(t, ctx.GetMetricsRegistry()), "caddy_ucwa_store_memory_entries"); got != maxEntries {
		t.Errorf("caddy_ucwa_store_memory_entries %v, want %d", got, maxEntries)
	}
}

// FuzzRecordedAnswer: a recorded answer (with a Retry-After or without)
// reads back as it was written, and
// reading any value (another edge's, a damaged one, a reservation in
// flight) never panics, never gives a status outside 200-999, and gives
// an answer that, written again, reads back the same.
func FuzzRecordedAnswer(f *testing.F) {
	f.Add(201, "/ucwa/v1/applications/1/communication/invitations/7", "application/json", `{"n":1}`, "a2011:2:xyz")
	f.Add(409, "", "application/vnd.microsoft.com.ucwa+xml", "<reason/>", reservationToken())
	f.Add(502, "::", ":", "", "a999-1:0:")
	f.Add(201, "x", "", "", "EAAAAAAAAAAAAAAAAAAAAAA2010:0:")
	f.Add(503, "y", "z", "", "RAAAAAAAAAAAAAAAAAAAAAA5030:0:3:1:120")
	f.Add(201, "/i", "z", "sealed", "~a2011:2:xyz")
	f.Fuzz(func(t *testing.T, status int, location, contentType, body, stored string) {
		if a, ok := decodeAnswer(stored); ok {
			if a.status < 200 || a.status > 999 {
				t.Fatalf("decodeAnswer(%q) = status %d", stored, a.status)
			}
			if again, ok := decodeAnswer(a.encode()); !ok || again != a {
				t.Fatalf("decodeAnswer(%q) = %+v, which encodes to one read as %+v, %v", stored, a, again, ok)
			}
		}
		if status < 200 || status > 999 {
			return
		}
		want := recordedAnswer{status: status, location: location, contentType: contentType, body: body, onEdge: len(body)%2 == 1, sealed: len(contentType)%3 == 2}
		if len(location)%2 == 1 {
			sum := sha256.Sum256([]byte(location))
			want.inputs = base64.RawURLEncoding.EncodeToString(sum[:16])
			if status >= 300 && len(contentType)%2 == 1 {
				// A failure of a request that was no emergency call,
				// with the inputs; a Retry-After as recordedRetryAfter
				// gives it, or none.
				want.notEmergency, want.recordedAt = true, int64(len(location))<<20
				if len(body)%3 != 0 {
					want.retryAfter = strconv.Itoa(len(body))
				}
			}
		}
		if got, ok := decodeAnswer(want.encode()); !ok || got != want {
			t.Fatalf("decodeAnswer(encode(%+v)) = %+v, %v", want, got, ok)
		}
	})
}

// TestReservationNotAnAnswer: a reservation in flight never reads as a
// recorded answer.
func TestReservationNotAnAnswer(t *testing.T) {
	for range 1000 {
		if tok := reservationToken(); len(tok) != 23 || tok[0] != 'f' {
			t.Fatalf("token %q", tok)
		} else if _, ok := decodeAnswer(tok); ok {
			t.Fatalf("the token %q reads as an answer", tok)
		}
	}
}

// TestIdempotencyKeysFormat pins the store keys: edges of two versions
// share a Redis store while a fleet is upgraded, so the key of a request
// never changes. A request has one key; a batch one per guarded part
// with an operationId; the reservation token comes with them. A memory
// store's keys (owned), which this process alone holds, are keyed for it
// (see storeDigest): as many, of the same length, one for each Redis
// key, and none of them a Redis key.
func TestIdempotencyKeysFormat(t *testing.T) {
	take := startPhoneAudioCleaner(t)
	const (
		path    = "/ucwa/v1/applications/192/communication/startPhoneAudio"
		key     = "idem:LjhFizoaS4I3zD3SxRmjBoOY-_1qJNf2QPOpa8GtQXU" // tid, oid, application 192, startPhoneAudio, op-1
		keyABC  = "idem:hU3U-IG_273BKF2cBI5IusFGOkGaNG70mg9Uq5HzTzg" // the same with application abc
		keyNone = "idem:PlA3VocW-RsQ0u55T1WPPa2Ld_E5c3wYXB7mv4ubOCo" // the same without an application
	)
	const oid = "b3c8e1a2-0000-4000-8000-000000000001"
	g := &grant{placeholders: [len(grantPlaceholders)]any{"", "sub-1", oid, "72f988bf-86f1-41af-91ab-2d7cd011db47", "", "", oid}}
	one := take(`{"to":"sip:a@contoso.com","operationId":"op-1"}`)
	none := take(`{"to":"sip:a@contoso.com"}`)
	inputs := [inputsDigestLen]byte([]byte("0123456789abcdefghijkl"))
	tests := []struct {
		name     string
		path     string // the request's; path when ""
		in       intake
		inputs   *[inputsDigestLen]byte // of a request that is no emergency call
		keys     []string
		verified bool
	}{
		{name: "a request", in: intake{cleaned: one, grant: g}, keys: []string{key}, verified: true},
		{name: "a request that is no emergency call", in: intake{cleaned: one, grant: g}, inputs: &inputs, keys: []string{key}, verified: true},
		{name: "no operationId", in: intake{cleaned: none, grant: g}, verified: true},
		{name: "a batch", in: intake{grant: g, parts: []cleanedPart{{index: 1, path: path, cleaned: one}, {index: 2, path: path, cleaned: none}, {index: 3, path: "communication/startPhoneAudio", cleaned: one}}},
			keys: []string{key, key}, verified: true},
		// The application id is the path's, canonical and in lower case.
		{name: "another spelling of the path", path: "/UCWA/v1/APPLICATIONS/192/./Communication;x/startPhoneAudio.", in: intake{cleaned: one, grant: g}, keys: []string{key}, verified: true},
		{name: "an application id in upper case", path: "/ucwa/v1/applications/AbC/communication/startPhoneAudio", in: intake{cleaned: one, grant: g}, keys: []string{keyABC}, verified: true},
		{name: "a path without an application", path: "/ucwa/v1/communication/startPhoneAudio", in: intake{cleaned: one, grant: g}, keys: []string{keyNone}, verified: true},
		{name: "a batch's parts of other applications", path: "/ucwa/v1/applications/abc/batch", in: intake{grant: g, parts: []cleanedPart{{index: 1, path: path, cleaned: one}, {index: 2, path: "/ucwa/v1/Applications/ABC/communication/startPhoneAudio", cleaned: one}, {index: 3, path: "communication/startPhoneAudio", cleaned: one}}},
			keys: []string{key, keyABC, keyABC}, verified: true},
	}
	// ownedOf is the memory store's key of each Redis key, and redisOf
	// the reverse.
	ownedOf, redisOf := map[string]string{}, map[string]string{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.path
			if p == "" {
				p = path
			}
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			r.URL.Path = p
			tc.in.start(r, ucwa.ReadHeader(r.Header), ucwa.ReadQueryNames(r.URL.RawQuery), matchPath(t, p))
			keys, token, _, verified := tc.in.idempotencyKeys(nil, tc.inputs, false)
			if fmt.Sprint(keys) != fmt.Sprint(tc.keys) || verified != tc.verified {
				t.Errorf("keys %q, verified %v; want %q, %v", keys, verified, tc.keys, tc.verified)
			}
			owned, _, _, _ := tc.in.idempotencyKeys(nil, tc.inputs, true)
			if len(owned) != len(keys) {
				t.Fatalf("memory store keys %q for the Redis keys %q", owned, keys)
			}
			for i, k := range owned {
				if len(k) != idempotencyKeyLen || !strings.HasPrefix(k, idempotencyKeyPrefix) || redisOf[k] != "" && redisOf[k] != keys[i] ||
					ownedOf[keys[i]] != "" && ownedOf[keys[i]] != k || ownedOf[k] != "" || k == keys[i] {
					t.Errorf("memory store key %q for the Redis key %q (before: %q for %q)", k, keys[i], ownedOf[keys[i]], redisOf[k])
				}
				ownedOf[keys[i]], redisOf[k] = k, keys[i]
			}
			switch {
			case len(keys) == 0 && token != "":
				t.Errorf("a token %q without keys", token)
			case len(keys) > 0 && tc.inputs == nil && (len(token) != reservationTokenLen || token[0] != 'f'):
				t.Errorf("token %q", token)
			case len(keys) > 0 && tc.inputs != nil && (len(token) != heldTokenLen || token[:1+inputsDigestLen] != "n"+string(inputs[:])):
				t.Errorf("held token %q", token)
			}
			if _, ok := decodeAnswer(token); ok {
				t.Errorf("the token %q reads as an answer", token)
			}
		})
	}
}

// BenchmarkIdempotency measures the handler in-process (jwt off, the
// JSON seed with an operationId of its own per request) without
// idempotency, and with it on the memory store and on Redis (a
// redis-server started for the benchmark), without a caller's share and
// with one: the differences are what a reservation and a recorded
// answer cost.
//
//	go test -run '^$' -bench BenchmarkIdempotency -benchmem ./caddymodule/
func BenchmarkIdempotency(b *testing.B) {
	ctx := benchContext(b)
	base := `"jwt":{"off":true},"default_region":"US"`
	variants := []struct{ name, fields string }{
		{"off", base},
		// A store with room for every request of the runs: a caller
		// holding its whole share of the default one is refused.
		{"memory", base + `,"store":{"backend":"memory","max_entries":10000000},"idempotency":{}`},
	}
	if _, err := exec.LookPath("redis-server"); err == nil {
		url := testkit.StartRedis(b).URL()
		variants = append(variants, struct{ name, fields string }{"redis", base + `,"idempotency":{},"store":{"backend":"redis","url":"` + url + `","timeout":"1s"}`},
			// The caller's share counted in the reservation's round trip,
			// with room for every request of the runs.
			struct{ name, fields string }{"redis, max_entries_per_caller", base + `,"idempotency":{},"store":{"backend":"redis","url":"` + url + `","timeout":"1s","max_entries_per_caller":100000000}`})
	}
	prefix, suffix, _ := strings.Cut(seedJSON, "74cb7404e0a247d5a2d4eb0376a47dbf")
	server := new(caddyhttp.Server)
	n := 0 // operationIds are never used twice, whatever runs -count makes
	for _, v := range variants {
		h := provision(b, ctx, new(Handler), `{`+v.fields+`}`)
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				n++
				req := httptest.NewRequest(http.MethodPost, startPath, strings.NewReader(fmt.Sprintf("%s%032x%s", prefix, n, suffix)))
				req.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				req = caddyhttp.PrepareRequest(req, caddy.NewReplacer(), w, server)
				if err := h.ServeHTTP(w, req, poolStandIn); err != nil || w.Code != http.StatusCreated {
					b.Fatalf("status %d, error %v: %s", w.Code, err, w.Body)
				}
			}
		})
	}
}

// TestIdempotencyBatch: a batch is delivered once it reserves the key of
// every guarded part with an operationId. A repeat of any part, batched
// or alone, gets 409 (a batch's answer is never replayed) and is not
// delivered; a batch refused for one part frees the keys of the others;
// a batch no pool took frees them all.
func TestIdempotencyBatch(t *testing.T) {
	token := testkit.Mint(t, jwt.SigningMethodES256, testkit.Keys(t).EC, "", testkit.Claims(time.Now(),
		jwt.MapClaims{"tid": "tenant-1", "oid": "oid-a", "scp": "Conversations.Initiate"}))
	caller := http.Header{"Authorization": {"Bearer " + token}}
	const app = "/ucwa/v1/applications/1"
	start := func(op string) string {
		return innerPOST(app+"/communication/startPhoneAudio", "application/json", `{"to":"4255551234","operationId":"`+op+`"}`)
	}
	// A second guarded part, with an operationId in its query.
	add := "POST " + app + "/communication/conversations/c1/phoneAudio/addPhoneAudio?to=4255550000&operationId=b-add HTTP/1.1\r\n\r\n"
	events := "GET " + app + "/events?ack=1 HTTP/1.1\r\n\r\n"
	batch := func(e edge, parts ...string) testkit.Response {
		t.Helper()
		return e.send(testkit.Request{URL: app + "/batch", ContentType: batchType, Header: caller.Clone(), Body: batchBody(parts...)})
	}
	for _, st := range idemStores {
		t.Run(st.name, func(t *testing.T) {
			config := st.config(t)
			pool := newIdemPool(t, "primary")
			// The pool is killed for one batch (see
			// expectOnEveryConnection).
			e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t), config, expectOnEveryConnection, "primary "+pool.Addr()))
			delivered := func(want int) {
				t.Helper()
				if got := len(pool.Received()); got != want {
					t.Fatalf("the pool got %d requests, want %d", got, want)
				}
			}

			if resp := batch(e, events, start("b1"), add); resp.Status != http.StatusCreated {
				t.Fatalf("first batch: %d %s", resp.Status, resp.Body)
			}
			delivered(1)
			assertPartConflict(t, batch(e, events, start("b1"), add), 2)
			assertPartConflict(t, batch(e, start("b-new"), add), 2)
			assertConflict(t, e.call(idemCall{header: caller, op: "b1"}))
			delivered(1)

			// A part repeating a request sent alone; the other part's key
			// is freed with the refusal.
			if resp := e.call(idemCall{header: caller, op: "s1"}); resp.Status != http.StatusCreated {
				t.Fatalf("alone: %d %s", resp.Status, resp.Body)
			}
			delivered(2)
			assertPartConflict(t, batch(e, start("b2"), start("s1")), 2)
			delivered(2)
			if resp := batch(e, start("b2")); resp.Status != http.StatusCreated {
				t.Fatalf("b2 after the refused batch: %d %s, want a delivery", resp.Status, resp.Body)
			}
			delivered(3)
			// The same operationId twice in one batch: the second is a
			// repeat of the first.
			assertConflictWith(t, batch(e, start("b3"), start("b3")), errSameOperationID(1, 2))
			assertConflictWith(t, batch(e, events, start("b3"), add, start("b3")), errSameOperationID(2, 4))
			delivered(3)
			// A part's path is keyed as the pool reads it, decoded:
			// application %31 is application 1.
			escaped := func(op string) string {
				return innerPOST("/ucwa/v1/applications/%31/communication/startPhoneAudio", "application/json", `{"to":"4255551234","operationId":"`+op+`"}`)
			}
			assertPartConflict(t, batch(e, escaped("s1")), 1)
			assertConflictWith(t, batch(e, start("b3"), escaped("b3")), errSameOperationID(1, 2))
			delivered(3)
			// Without operationIds a batch is not protected.
			for range 2 {
				if resp := batch(e, events, events); resp.Status != http.StatusCreated {
					t.Fatalf("a batch of reads: %d %s", resp.Status, resp.Body)
				}
			}
			delivered(5)

			// No pool took it: the keys are free again.
			pool.Kill()
			if resp := batch(e, start("b4"), start("b5")); resp.Status != http.StatusGone {
				t.Fatalf("no pool: %d %s, want 410", resp.Status, resp.Body)
			}
			pool.Restart(t)
			if resp := batch(e, start("b4"), start("b5")); resp.Status != http.StatusCreated {
				t.Fatalf("after the pool came back: %d %s, want a delivery", resp.Status, resp.Body)
			}
		})
	}
}

// TestInputsDigestFormat pins the inputs digest that held reservations
// and recorded answers keep: edges of two versions share a Redis store,
// and a repeat matches the first request's digest. The resource is the
// path, canonical and in lower case, whatever its spelling; a batch's
// part is digested with its own path as written (see batchValues). A
// memory store's digest (keyed, see storeDigest) tells the same inputs
// alike and others apart, and is none of Redis's.
func TestInputsDigestFormat(t *testing.T) {
	cl := startPhoneAudioCleaner(t)(`{"to":"sip:a@contoso.com","operationId":"op-1"}`)
	const (
		of192  = "C5sLyKVb4-UjX8OxHG4CUg"
		ofNone = "LS4IaBjDVWd2L5cnxPVXrw"
	)
	keyedOf := map[string][inputsDigestLen]byte{} // by Redis digest
	for _, tc := range []struct{ path, want string }{
		{"/ucwa/v1/applications/192/communication/startPhoneAudio", of192},
		{"/UCWA/v1/Applications/192/./communication;x/StartPhoneAudio.", of192},
		{`/ucwa\v1\applications\192\communication\startPhoneAudio`, of192},
		{"communication/startPhoneAudio", ofNone}, // a batch part's relative path
		{"/communication/startPhoneAudio", ofNone},
	} {
		t.Run(tc.path, func(t *testing.T) {
			in := intake{cleaned: cl}
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			r.URL.Path = tc.path
			in.start(r, ucwa.ReadHeader(r.Header), ucwa.ReadQueryNames(r.URL.RawQuery), matchPath(t, tc.path))
			if got := inputsDigest(false, in.path, in.cleaned); string(got[:]) != tc.want {
				t.Errorf("inputs digest %q, want %q", got, tc.want)
			}
			keyed := inputsDigest(true, in.path, in.cleaned)
			if prev, ok := keyedOf[tc.want]; ok && prev != keyed || string(keyed[:]) == of192 || string(keyed[:]) == ofNone {
				t.Errorf("memory store's inputs digest %q (of the Redis digest %q, before %q)", keyed, tc.want, prev)
			}
			keyedOf[tc.want] = keyed
		})
	}
	if keyedOf[of192] == keyedOf[ofNone] {
		t.Errorf("a memory store's inputs digest %q for two resources", keyedOf[of192])
	}
}

// matchPath is what the handler's matcher makes of a POST to path, which
// a request the edge terminates starts from.
func matchPath(t *testing.T, path string) ucwa.Match {
	t.Helper()
	m, err := ucwa.NewMatcher(ucwa.DefaultOperations())
	if err != nil {
		t.Fatal(err)
	}
	got := m.Match(http.MethodPost, path)
	if got.Operation == nil {
		t.Fatalf("%s is no operation", path)
	}
	return got
}

// startPhoneAudioCleaner returns what the edge takes in from a JSON body
// of startPhoneAudio (default_region US), failing the test when it
// refuses the body.
func startPhoneAudioCleaner(t *testing.T) func(body string) *ucwa.Cleaned {
	c, err := ucwa.NewCleaner("US", ucwa.TelURI)
	if err != nil {
		t.Fatal(err)
	}
	op := ucwa.FindOperation(ucwa.DefaultOperations(), "startPhoneAudio")
	return func(body string) *ucwa.Cleaned {
		t.Helper()
		cl, e := c.Intake(op, ucwa.Incoming{Method: "POST", Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(body)})
		if e != nil {
			t.Fatal(e)
		}
		return cl
	}
}
