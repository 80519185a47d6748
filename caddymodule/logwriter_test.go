package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// recordingWriter records each write it takes; while failing is set, it
// takes none.
type recordingWriter struct {
	mu      sync.Mutex
	writes  []string
	failing bool
	closed  bool
}

func (w *recordingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failing {
		return 0, errors.New("no space left on device")
	}
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

func (w *recordingWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	return nil
}

func (w *recordingWriter) taken() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.writes)
}

func (w *recordingWriter) fail(failing bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.failing = failing
}

// TestLineBuffer: lines reach the writer inside a buffer at a time, when
// the buffer is full or flush_interval after its first line, and on
// Close; a line larger than the buffer goes through as it comes; a
// failed write loses only the lines it held (the next ones are written
// once the writer takes them again); after Close, or once unbuffered as
// the process exits, lines go straight through.
func TestLineBuffer(t *testing.T) {
	const interval = time.Second
	line := func(c byte, n int) string { return strings.Repeat(string(c), n-1) + "\n" }
	type step struct {
		write   string        // a line to write, or
		advance time.Duration // time to let pass, or
		fail    *bool         // the writer inside to fail or recover, or
		close   bool          // Close, or
		exit    bool          // unbuffer (Cleanup while the process exits)
		want    []string      // the writes the writer inside took by the end of the step
	}
	yes, no := true, false
	for _, tc := range []struct {
		name  string
		size  int
		steps []step
	}{
		{"flushed flush_interval after the first line", 100, []step{
			{write: line('a', 10), want: nil},
			{advance: interval / 2},
			{write: line('b', 10), want: nil},
			{advance: interval/2 - time.Nanosecond, want: nil},
			{advance: time.Nanosecond, want: []string{line('a', 10) + line('b', 10)}},
			{advance: 10 * interval, want: []string{line('a', 10) + line('b', 10)}},
			{write: line('c', 10), want: []string{line('a', 10) + line('b', 10)}},
			{advance: interval, want: []string{line('a', 10) + line('b', 10), line('c', 10)}},
		}},
		{"a line that does not fit flushes those held", 100, []step{
			{write: line('a', 60)},
			{write: line('b', 40), want: nil},
			{write: line('c', 1), want: []string{line('a', 60) + line('b', 40)}},
			{advance: interval, want: []string{line('a', 60) + line('b', 40), line('c', 1)}},
		}},
		{"a line larger than the buffer goes through", 100, []step{
			{write: line('a', 10)},
			{write: line('b', 150), want: []string{line('a', 10), line('b', 150)}},
			{advance: interval, want: []string{line('a', 10), line('b', 150)}},
		}},
		{"a failed write loses only what it held", 100, []step{
			{write: line('a', 60)},
			{fail: &yes},
			{write: line('b', 60), want: nil},
			{fail: &no},
			{write: line('c', 10), want: nil},
			{advance: interval, want: []string{line('c', 10)}},
		}},
		{"a failed timed flush is not kept as the writer's state", 100, []step{
			{write: line('a', 10)},
			{fail: &yes},
			{advance: interval},
			{fail: &no},
			{write: line('b', 10)},
			{advance: interval, want: []string{line('b', 10)}},
		}},
		{"unbuffered (exiting): lines held are written, later lines go through", 100, []step{
			{write: line('a', 10)},
			{exit: true, want: []string{line('a', 10)}},
			{write: line('b', 10), want: []string{line('a', 10), line('b', 10)}},
			{write: line('c', 10), want: []string{line('a', 10), line('b', 10), line('c', 10)}},
		}},
		{"close flushes; lines after it go through", 100, []step{
			{write: line('a', 10)},
			{close: true, want: []string{line('a', 10)}},
			{write: line('b', 10), want: []string{line('a', 10), line('b', 10)}},
			{advance: interval, want: []string{line('a', 10), line('b', 10)}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := testkit.NewClock(time.Unix(0, 0))
			inner := &recordingWriter{}
			b := &lineBuffer{w: inner, size: tc.size, interval: interval, afterFunc: clock.AfterFunc}
			for i, s := range tc.steps {
				switch {
				case s.write != "":
					if n, err := b.Write([]byte(s.write)); n != len(s.write) && err == nil {
						t.Fatalf("step %d: wrote %d of %d bytes without an error", i, n, len(s.write))
					}
				case s.advance > 0:
					clock.Advance(s.advance)
				case s.fail != nil:
					inner.fail(*s.fail)
				case s.exit:
					if err := b.unbuffer(); err != nil {
						t.Fatalf("step %d: unbuffer: %v", i, err)
					}
					if inner.closed {
						t.Fatalf("step %d: the writer inside was closed", i)
					}
				case s.close:
					if err := b.Close(); err != nil {
						t.Fatalf("step %d: Close: %v", i, err)
					}
					if !inner.closed {
						t.Fatalf("step %d: the writer inside is still open", i)
					}
				}
				if got := inner.taken(); !slices.Equal(got, s.want) {
					t.Fatalf("step %d: the writer inside took %q, want %q", i, got, s.want)
				}
			}
		})
	}
}

// TestBufferedAuditTrail: the audit trail through a buffered writer in a
// real Caddy. Lines wait in the buffer (none in the file while it has
// room and flush_interval has not passed), a full buffer is written,
// flush_interval writes what is held, and every config unload (a reload,
// a config without the log, a reload or a stop of a Caddy process) writes
// what is held:
// then every guarded request has its one whole line in the file.
func TestBufferedAuditTrail(t *testing.T) {
	t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
	pool := testkit.NewUpstream(t)
	config := func(auditFile, buffered string) string {
		logs := ""
		if auditFile != "" {
			logs = fmt.Sprintf(`
	log default {
		exclude http.handlers.ucwa.audit
	}
	log ucwa_audit {
		include http.handlers.ucwa.audit
		output buffered {
			%s
			output file %s {
				roll_size 100MiB
			}
		}
		format json
	}`, buffered, auditFile)
		}
		return fmt.Sprintf(`{%s
}
:EDGE_PORT {
	ucwa {
		`+opsJWT+`
		default_region US
		primary %s
	}
}`, logs, pool.Addr())
	}
	auditLines := func(auditFile string) []string {
		b, err := os.ReadFile(auditFile)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return slices.Collect(strings.Lines(string(b)))
	}
	call := func(e edge, n int) {
		t.Helper()
		for range n {
			resp := e.send(testkit.Request{URL: startOpsPath, ContentType: "application/json", Body: `{"to":"+14255551234"}`, Header: http.Header{"Authorization": {callerBearer(t)}}})
			if resp.Status != http.StatusCreated {
				t.Fatalf("status %d (%s), want 201", resp.Status, resp.Body)
			}
		}
	}
	for _, tc := range []struct {
		name     string
		buffered string
		// The lines in the file after three requests: at least, at most.
		// The third request's line may be written after its answer.
		least, most int
	}{
		{"held", "flush_interval 1h", 0, 0},
		{"a full buffer is written", "size 1KiB\n\t\t\tflush_interval 1h", 1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			auditFile := filepath.Join(t.TempDir(), "ucwa-audit.log")
			e := startEdge(t, "caddyfile", config(auditFile, tc.buffered))
			call(e, 3)
			if n := len(auditLines(auditFile)); n < tc.least || n > tc.most {
				t.Fatalf("%d lines in the file after 3 requests, want %d to %d", n, tc.least, tc.most)
			}
			// Load returns once the old config's requests are done and
			// the config is unloaded.
			e.Load("caddyfile", config(auditFile, tc.buffered))
			if n := len(auditLines(auditFile)); n != 3 {
				t.Fatalf("%d lines in the file after 3 requests and a reload, want 3", n)
			}
			call(e, 2)
			e.Load("caddyfile", config("", ""))
			lines := auditLines(auditFile)
			if len(lines) != 5 {
				t.Fatalf("%d lines in the file once a config without the log is loaded, want 5: %q", len(lines), lines)
			}
			for i, l := range lines {
				if !strings.Contains(l, `"msg":"guarded request"`) || !strings.HasSuffix(l, "}\n") {
					t.Errorf("line %d is not one whole audit line: %q", i, l)
				}
			}
		})
	}
	t.Run("a stop writes what is held", func(t *testing.T) {
		auditFile := filepath.Join(t.TempDir(), "ucwa-audit.log")
		p := testkit.StartCaddyProcess(t, "caddyfile", config(auditFile, "flush_interval 1h"))
		for range 3 {
			resp := testkit.Send(t, p.Client(), testkit.Request{URL: p.URL("EDGE_PORT", startOpsPath), ContentType: "application/json", Body: `{"to":"+14255551234"}`, Header: http.Header{"Authorization": {callerBearer(t)}}})
			if resp.Status != http.StatusCreated {
				t.Fatalf("status %d (%s), want 201", resp.Status, resp.Body)
			}
		}
		if n := len(auditLines(auditFile)); n != 0 {
			t.Fatalf("%d lines in the file before the stop, want 0 (held)", n)
		}
		p.Stop()
		if n := len(auditLines(auditFile)); n != 3 {
			t.Fatalf("%d lines in the file after the stop, want 3", n)
		}
	})
	t.Run("a reload through the admin API writes what is held", func(t *testing.T) {
		auditFile := filepath.Join(t.TempDir(), "ucwa-audit.log")
		p := testkit.StartCaddyProcess(t, "caddyfile", config(auditFile, "flush_interval 1h"), testkit.WithAdmin())
		send := func(n int) {
			t.Helper()
			for range n {
				resp := testkit.Send(t, p.Client(), testkit.Request{URL: p.URL("EDGE_PORT", startOpsPath), ContentType: "application/json", Body: `{"to":"+14255551234"}`, Header: http.Header{"Authorization": {callerBearer(t)}}})
				if resp.Status != http.StatusCreated {
					t.Fatalf("status %d (%s), want 201", resp.Status, resp.Body)
				}
			}
		}
		send(3)
		if n := len(auditLines(auditFile)); n != 0 {
			t.Fatalf("%d lines in the file before the reload, want 0 (held)", n)
		}
		// A changed setting reloads the whole config, as caddy reload does.
		resp := testkit.Send(t, p.Client(), testkit.Request{Method: http.MethodPatch, URL: p.AdminURL("/config/logging/logs/ucwa_audit/writer/flush_interval"), ContentType: "application/json", Body: `"2h"`})
		if resp.Status != http.StatusOK {
			t.Fatalf("the admin API answered %d (%s), want 200", resp.Status, resp.Body)
		}
		p.AwaitReload()
		if n := len(auditLines(auditFile)); n != 3 {
			t.Fatalf("%d lines in the file after the reload, want 3", n)
		}
		send(2)
		p.Stop()
		if n := len(auditLines(auditFile)); n != 5 {
			t.Fatalf("%d lines in the file after the reload and a stop, want 5", n)
		}
	})
	t.Run("flush_interval", func(t *testing.T) {
		auditFile := filepath.Join(t.TempDir(), "ucwa-audit.log")
		e := startEdge(t, "caddyfile", config(auditFile, "flush_interval 10ms"))
		call(e, 1)
		testkit.Eventually(t, "the audit line written without an unload", func() bool { return len(auditLines(auditFile)) == 1 })
	})
}
