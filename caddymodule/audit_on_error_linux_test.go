package caddymodule

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// auditPipe is a named pipe that a log of the audit trail writes to, as
// to a log shipper reading it: while the test reads it, every write
// goes through; once the test stops reading (closes its end), every
// write to it fails (EPIPE), as a full disk's would; reading it again
// (opening it anew) has the writes go through again, on the writer's
// same file.
type auditPipe struct {
	path string
	mu   sync.Mutex
	read strings.Builder // what the test read of it
	end  *os.File        // the test's end, nil while it does not read
	held int             // the fd that holds a stalled pipe (see stall), else -1
	done chan struct{}   // closed once the reader of end has stopped
}

func newAuditPipe(t *testing.T) *auditPipe {
	t.Helper()
	p := &auditPipe{path: filepath.Join(t.TempDir(), "audit.pipe"), held: -1}
	if err := syscall.Mkfifo(p.path, 0o600); err != nil {
		t.Fatal(err)
	}
	p.open(t)
	t.Cleanup(func() { p.close(t) })
	return p
}

// open starts reading the pipe: opened for reading and writing, as
// Linux allows for a FIFO, so that neither the open nor a read waits
// for Caddy's end, and a read finds no end of file while Caddy has none.
func (p *auditPipe) open(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(p.path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.end, p.done = f, done
	p.mu.Unlock()
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, err := f.Read(buf)
			p.mu.Lock()
			p.read.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				if !errors.Is(err, os.ErrClosed) && err != io.EOF {
					t.Errorf("reading the pipe: %v", err)
				}
				return
			}
		}
	}()
}

// close stops reading the pipe: writes to it fail from then on.
func (p *auditPipe) close(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	f, done := p.end, p.done
	p.end = nil
	p.mu.Unlock()
	if f == nil {
		return
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	<-done
}

// stall stops reading the pipe and fills it, its reader still there:
// a write to it then neither fails nor returns, as one to a hung NFS
// server does, until release. The pipe is released at the test's end,
// before the edge stops, if the test has not.
func (p *auditPipe) stall(t *testing.T) {
	t.Helper()
	// Open for reading too: writes wait for room rather than fail.
	held, err := syscall.Open(p.path, syscall.O_RDWR|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	p.close(t)
	blank := bytes.Repeat([]byte{'\n'}, 4096) // no audit line: auditLines skips it
	for {
		if _, err := syscall.Write(held, blank); err != nil {
			if err != syscall.EAGAIN {
				t.Fatal(err)
			}
			break
		}
	}
	// Less than 4096 bytes of room may be left: fill it byte by byte.
	for {
		if _, err := syscall.Write(held, blank[:1]); err != nil {
			if err != syscall.EAGAIN {
				t.Fatal(err)
			}
			break
		}
	}
	p.mu.Lock()
	p.held = held
	p.mu.Unlock()
	t.Cleanup(func() { p.release(t) })
}

// release reads the pipe again after stall: the writes waiting go on.
func (p *auditPipe) release(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	held := p.held
	p.held = -1
	p.mu.Unlock()
	if held < 0 {
		return
	}
	p.open(t)
	if err := syscall.Close(held); err != nil {
		t.Fatal(err)
	}
}

// linesBeingWritten counts the audited requests in flight whose own
// goroutine writes their line, or waits to: each is one the trail counts
// as being written (see auditErrorOutput.begin).
func linesBeingWritten() int {
	return countInFlight(func(rec *auditRecord) bool { return rec.rec.line.Load() == lineOwn })
}

// lines are the audit lines read so far.
func (p *auditPipe) lines(t *testing.T) []auditLine {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	return auditLines(t, p.read.String())
}

// TestAuditOnErrorClosed: with audit_on_error closed, once a log of the
// trail fails to write a line (its reader gone), every guarded request
// but an emergency call is answered 503 ServiceUnavailable with
// Retry-After: 1 and reaches no pool, a batch too, and a forwarding to an
// emergency number (which places no emergency call), and a repeat of a
// request answered (idempotency) is not replayed, until a line is
// written again: the first refusal once the log takes lines again is
// written, and the next request is delivered. The request whose line
// failed first was delivered. The edge logs the failure (once) and the
// recovery. Through Caddy's file writer, and through the buffered
// writer, which learns of the failure at a write of its buffer and
// then has each line go straight through until one is written.
func TestAuditOnErrorClosed(t *testing.T) {
	for _, tc := range []struct {
		name string
		// output is the log's output, PIPE the pipe's path.
		output string
		// buffered: the first line after the reader is gone waits in the
		// buffer, whose failed write (caddy_ucwa_log_buffer_lines_lost_total)
		// the next line learns of.
		buffered bool
	}{
		{"file", "file PIPE {\n\t\t\troll_disabled\n\t\t}", false},
		{"buffered", "buffered {\n\t\t\tflush_interval 10ms\n\t\t\toutput file PIPE {\n\t\t\t\troll_disabled\n\t\t\t}\n\t\t}", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
			pipe := newAuditPipe(t)
			pool := testkit.NewUpstream(t)
			e := startEdge(t, "caddyfile", trailConfig(strings.ReplaceAll(tc.output, "PIPE", pipe.path), "format json", pool.Addr(), "idempotency\n\t\taudit_on_error closed"), testkit.WithAdmin())
			auth := http.Header{"Authorization": {callerBearer(t)}}
			call := func(op, want string) testkit.Response {
				t.Helper()
				received := len(pool.Received())
				resp := e.call(idemCall{header: auth, op: op})
				switch want {
				case "delivered":
					if resp.Status != http.StatusCreated || len(pool.Received()) != received+1 {
						t.Fatalf("%s: %d %s, the pool got %d requests more; want 201, delivered", op, resp.Status, resp.Body, len(pool.Received())-received)
					}
				case "replayed":
					if resp.Status != http.StatusCreated || resp.Header.Get(headerReplayed) != "true" || len(pool.Received()) != received {
						t.Fatalf("%s: %d %s, the pool got %d requests more; want 201 replayed", op, resp.Status, resp.Body, len(pool.Received())-received)
					}
				case "refused":
					assertUCWAError(t, resp, "ServiceUnavailable", "", nil, false)
					if resp.Status != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" || len(pool.Received()) != received {
						t.Fatalf("%s: %d (Retry-After %q) %s, the pool got %d requests more; want 503, Retry-After 1, nothing delivered",
							op, resp.Status, resp.Header.Get("Retry-After"), resp.Body, len(pool.Received())-received)
					}
				}
				return resp
			}
			writeErrors := func() float64 { return e.Metric("caddy_ucwa_audit_write_errors_total") }

			call("before", "delivered")
			testkit.Eventually(t, "the first line read", func() bool { return len(pipe.lines(t)) == 1 })

			// The count of lines lost is the process's.
			lostBefore := e.Metric("caddy_ucwa_log_buffer_lines_lost_total")
			pipe.close(t)
			call("unaudited", "delivered")
			if tc.buffered {
				testkit.Eventually(t, "the buffer's failed write", func() bool {
					return e.Metric("caddy_ucwa_log_buffer_lines_lost_total") > lostBefore
				})
				// This line goes straight through, and zap reports it.
				call("unaudited-2", "delivered")
			}
			testkit.Eventually(t, "a line not written", func() bool { return writeErrors() >= 1 })
			call("refused", "refused")
			// A repeat of a request answered: its recorded answer waits.
			call("before", "refused")
			// An emergency call goes through all the same.
			received := len(pool.Received())
			if resp := e.call(idemCall{header: auth, body: `{"to":"911","operationId":"emergency"}`}); resp.Status != http.StatusCreated || len(pool.Received()) != received+1 {
				t.Fatalf("an emergency call: %d %s, want 201, delivered", resp.Status, resp.Body)
			}
			// A batch is no emergency call.
			batch := e.send(testkit.Request{URL: "/ucwa/v1/applications/1/batch", ContentType: batchType, Header: auth,
				Body: batchBody("POST /ucwa/v1/applications/1/communication/startPhoneAudio HTTP/1.1\r\nContent-Type: application/json\r\n\r\n" + `{"to":"4255551234"}`)})
			if batch.Status != http.StatusServiceUnavailable || len(pool.Received()) != received+1 {
				t.Fatalf("a batch: %d %s, want 503, nothing delivered", batch.Status, batch.Body)
			}
			// Nor is a forwarding to an emergency number: it places no
			// call, to the emergency service or any other.
			forward := e.send(testkit.Request{URL: immediateForwardPath, ContentType: "application/json", Body: `{"target":"911"}`, Header: auth})
			if forward.Status != http.StatusServiceUnavailable || len(pool.Received()) != received+1 {
				t.Fatalf("a forwarding to 911: %d %s, want 503, nothing delivered", forward.Status, forward.Body)
			}
			errorLine := e.Logs().Wait(t, `"msg":"`+auditWriteErrorClosed)
			for _, want := range []string{`"level":"error"`, `"logger":"http.handlers.ucwa"`, "broken pipe"} {
				if !strings.Contains(errorLine, want) {
					t.Errorf("the error line lacks %s: %s", want, errorLine)
				}
			}

			// Every line so far but the first is lost (through buffered,
			// the first unaudited one in its buffer's write): wait for the
			// last, which would otherwise end the failure if the pipe were
			// read before it was written.
			const failed = 6
			testkit.Eventually(t, "the lines of the refusals not written", func() bool { return writeErrors() >= failed })

			// Read again: the next refusal's line is written, and ends it.
			pipe.open(t)
			call("refused-read", "refused")
			e.Logs().Wait(t, `"msg":"`+auditWrittenAgain)
			call("after", "delivered")
			call("before", "replayed")
			testkit.Eventually(t, "the lines after the reader came back", func() bool { return len(pipe.lines(t)) == 4 })
			if got := writeErrors(); got != failed {
				t.Errorf("caddy_ucwa_audit_write_errors_total went from %v to %v after the reader came back", failed, got)
			}
			lines := pipe.lines(t)
			if got := lines[1]; got.OperationID != "refused-read" || got.Status != http.StatusServiceUnavailable ||
				got.RefusedBy != refusedByAudit || got.Error != "ServiceUnavailable" || got.Pool != "" {
				t.Errorf("the refusal's line %+v, want refused-read, 503, refused_by audit, error ServiceUnavailable, no pool", got)
			}
			if got := lines[2]; got.OperationID != "after" || got.Status != http.StatusCreated || got.RefusedBy != "" || got.Pool != "primary" {
				t.Errorf("the line after %+v, want after, 201 from the primary", got)
			}
			// The refusals: refused, its repeat, the batch, the forwarding,
			// refused-read.
			if got := e.Metric(`caddy_ucwa_edge_answers_total{error="ServiceUnavailable",status="503"}`); got != 5 {
				t.Errorf("caddy_ucwa_edge_answers_total of 503 ServiceUnavailable = %v, want 5", got)
			}
			if n := len(e.Logs().Lines(`"msg":"` + auditWriteErrorClosed)); n != 1 {
				t.Errorf("logged the failure %d times, want once (once a minute at most)", n)
			}
		})
	}
}

// TestAuditHungWrite: a log of the trail whose writes neither fail nor
// return (its pipe full and not read, as a hung NFS server leaves a
// write) makes the trail hung once lines have been being written for a
// second, on the trail's clock (the test's), with none done; that is
// logged once and counted once in caddy_ucwa_audit_write_hangs_total (a
// second hang, after a line was done, counts again). With audit_on_error closed the trail is then failing: a
// request just before that is delivered, the requests after it are
// refused (503, Retry-After: 1) and reach no pool, an emergency call is
// delivered; a line begun after the hang, once written, ends it. With
// open, every request is delivered. Each answer waits for its line. Once
// the log takes lines again, every line is written (none lost), and
// requests are delivered.
func TestAuditHungWrite(t *testing.T) {
	for _, tc := range []struct {
		onError string
		hungMsg string
		// refused: the requests after the hang are refused.
		refused bool
	}{
		{"closed", auditWriteHungClosed, true},
		{"open", auditWriteHungOpen, false},
	} {
		t.Run(tc.onError, func(t *testing.T) {
			clk := testkit.NewClock(time.Now())
			auditNow = clk.Now
			t.Cleanup(func() { auditNow = time.Now })
			t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
			pipe := newAuditPipe(t)
			pool := testkit.NewUpstream(t)
			e := startEdge(t, "caddyfile", trailConfig("file "+pipe.path+" {\n\t\t\troll_disabled\n\t\t}", "format json", pool.Addr(), "audit_on_error "+tc.onError), testkit.WithAdmin())
			auth := http.Header{"Authorization": {callerBearer(t)}}
			type answer struct {
				resp testkit.Response
				err  error
			}
			answers := map[string]chan answer{}
			// send sends a request whose line will wait for the pipe, and
			// checks, once its line is being written, what reached the
			// pool.
			send := func(op, body string, delivered bool) {
				t.Helper()
				req := idemCall{header: auth, op: op, body: body}.request()
				req.URL = e.url(req.URL)
				received, writing := len(pool.Received()), linesBeingWritten()
				done := make(chan answer, 1)
				answers[op] = done
				go func() {
					resp, err := testkit.Do(e.Client(), req)
					done <- answer{resp, err}
				}()
				testkit.Eventually(t, op+"'s line being written", func() bool { return linesBeingWritten() == writing+1 })
				if got := len(pool.Received()) - received; (got == 1) != delivered || got > 1 {
					t.Fatalf("%s: the pool got %d requests, want delivered %v", op, got, delivered)
				}
			}

			if resp := e.call(idemCall{header: auth, op: "before"}); resp.Status != http.StatusCreated {
				t.Fatalf("before: %d %s, want 201", resp.Status, resp.Body)
			}
			testkit.Eventually(t, "the first line read", func() bool { return len(pipe.lines(t)) == 1 })
			// stall stalls the pipe once the requests before are done: a
			// pool's answer may reach the client before its line is
			// written, and send counts the lines being written.
			stall := func() {
				t.Helper()
				testkit.Eventually(t, "the requests before done", func() bool { return linesBeingWritten() == 0 })
				pipe.stall(t)
			}

			stall()
			send("hung", "", true)
			clk.Advance(auditWriteHungAfter - time.Millisecond)
			send("early", "", true)
			clk.Advance(time.Millisecond)
			send("after-a-second", "", !tc.refused)
			send("emergency", `{"to":"911","operationId":"emergency"}`, true)
			if got := e.Metric("caddy_ucwa_audit_write_hangs_total"); got != 1 {
				t.Errorf("caddy_ucwa_audit_write_hangs_total %v during the hang, want 1 (once per hang)", got)
			}
			hungLine := e.Logs().Wait(t, `"msg":"`+tc.hungMsg)
			for _, want := range []string{`"level":"error"`, `"logger":"http.handlers.ucwa"`} {
				if !strings.Contains(hungLine, want) {
					t.Errorf("the hang's line lacks %s: %s", want, hungLine)
				}
			}

			pipe.release(t)
			want := map[string]int{"before": 201, "hung": 201, "early": 201, "after-a-second": 201, "emergency": 201}
			if tc.refused {
				want["after-a-second"] = http.StatusServiceUnavailable
			}
			for op, done := range answers {
				a := <-done
				if a.err != nil {
					t.Fatalf("%s: %v", op, a.err)
				}
				if a.resp.Status != want[op] {
					t.Errorf("%s: %d %s, want %d", op, a.resp.Status, a.resp.Body, want[op])
				}
				if a.resp.Status == http.StatusServiceUnavailable {
					assertUCWAError(t, a.resp, "ServiceUnavailable", "", nil, false)
					if got := a.resp.Header.Get("Retry-After"); got != "1" {
						t.Errorf("%s: Retry-After %q, want 1", op, got)
					}
				}
			}
			if tc.refused {
				e.Logs().Wait(t, `"msg":"`+auditWrittenAgain)
			}
			if resp := e.call(idemCall{header: auth, op: "after"}); resp.Status != http.StatusCreated {
				t.Fatalf("after: %d %s, want 201", resp.Status, resp.Body)
			}
			want["after"] = http.StatusCreated
			testkit.Eventually(t, "every line read", func() bool { return len(pipe.lines(t)) == len(want) })
			status := map[string]int{}
			for _, l := range pipe.lines(t) {
				status[l.OperationID] = l.Status
			}
			if !maps.Equal(status, want) {
				t.Errorf("the lines' statuses %v, want %v", status, want)
			}
			if got := e.Metric("caddy_ucwa_audit_write_errors_total"); got != 0 {
				t.Errorf("caddy_ucwa_audit_write_errors_total %v, want 0: a hung write loses no line", got)
			}

			// A second hang counts again.
			stall()
			send("hung-again", "", true)
			clk.Advance(auditWriteHungAfter)
			send("after-the-second-hang", "", !tc.refused)
			if got := e.Metric("caddy_ucwa_audit_write_hangs_total"); got != 2 {
				t.Errorf("caddy_ucwa_audit_write_hangs_total %v after a second hang, want 2", got)
			}
			pipe.release(t)
			// Their answers come once their lines are done: the trail's
			// clock is the test's until then.
			for _, op := range []string{"hung-again", "after-the-second-hang"} {
				if a := <-answers[op]; a.err != nil {
					t.Errorf("%s: %v", op, a.err)
				}
			}
			if n := len(e.Logs().Lines(`"msg":"audit lines not written within 1s`)); n != 1 {
				t.Errorf("logged the hang %d times, want once", n)
			}
		})
	}
}

// TestAuditUntakenWarning: under audit_on_error open, startup warns
// where no log takes the trail (the default log's level above INFO, or
// the default log excluding it), and is quiet where one does.
func TestAuditUntakenWarning(t *testing.T) {
	for _, tc := range []struct {
		name, log string
		warned    bool
	}{
		{"the default log", "", false},
		{"the default log at WARN", "log default {\n\t\tlevel WARN\n\t}", true},
		{"the default log excluding the trail", "log default {\n\t\texclude http.handlers.ucwa.audit\n\t}", true},
		{"a log of its own", "log default {\n\t\texclude http.handlers.ucwa.audit\n\t}\n\tlog trail {\n\t\tinclude http.handlers.ucwa.audit\n\t\toutput stderr\n\t}", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := testkit.NewUpstream(t)
			e := startEdge(t, "caddyfile", "{\n\t"+tc.log+"\n}\n:EDGE_PORT {\n\tucwa {\n\t\tjwt off\n\t\tprimary "+pool.Addr()+"\n\t}\n}")
			assertWarnedOnce(t, e.Logs(), auditUntakenWarning, tc.warned)
		})
	}
}

// TestAuditOnErrorClosedNeedsTrail: audit_on_error closed is refused at
// startup where no log takes the trail (the default log excludes it);
// open, the default, is not.
func TestAuditOnErrorClosedNeedsTrail(t *testing.T) {
	for _, tc := range []struct {
		word, wantErr string
	}{
		{"open", ""},
		{"closed", "audit_on_error closed: no log takes the audit trail"},
	} {
		t.Run(tc.word, func(t *testing.T) {
			config := fmt.Sprintf(`{
	log default {
		exclude http.handlers.ucwa.audit
	}
}
:EDGE_PORT {
	ucwa {
		jwt off
		audit_on_error %s
	}
}`, tc.word)
			err := testkit.Validate(t, "caddyfile", config)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("load: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("load: %v, want an error with %q", err, tc.wantErr)
			}
		})
	}
}
