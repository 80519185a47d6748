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

// recordingWriter records each write it takes; while failing is set, and
// for its next refuse writes, it fails them, taking room bytes of the
// first (a full disk's partial write).
type recordingWriter struct {
	mu      sync.Mutex
	writes  []string
	failing bool
	refuse  int
	room    int
	closed  bool
}

func (w *recordingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failing || w.refuse > 0 {
		w.refuse = max(w.refuse-1, 0)
		n := min(w.room, len(p))
		if n > 0 {
			w.writes = append(w.writes, string(p[:n]))
			w.room = 0
		}
		return n, errors.New("no space left on device")
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

func (w *recordingWriter) fail(failing bool, room int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.failing, w.room = failing, room
}

func (w *recordingWriter) refuseNext(n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.refuse = n
}

// TestLineBuffer: lines reach the writer inside a buffer at a time, when
// the buffer is full or flush_interval after its first line, and on
// Close; a line larger than the buffer goes through as it comes; a
// failed write loses only the lines it held (the next ones are written
// once the writer takes them again), and is reported with the number of
// lines it lost, whichever way the buffer was written (full, on its
// timer, Sync, unbuffer, Close); after Close, or once unbuffered as the
// process exits, lines go straight through (their failed writes are
// zap's to report, not the buffer's).
func TestLineBuffer(t *testing.T) {
	const interval = time.Second
	line := func(c byte, n int) string { return strings.Repeat(string(c), n-1) + "\n" }
	type step struct {
		write   string        // a line to write, or
		advance time.Duration // time to let pass, or
		fail    *bool         // the writer inside to fail or recover, or
		refuse  int           // the writer inside to fail its next writes, or
		sync    bool          // Sync (Cleanup at a reload), or
		close   bool          // Close, or
		exit    bool          // unbuffer (Cleanup while the process exits)
		room    int           // with fail: the bytes the failing writer takes of its next write
		wantErr bool          // of sync, close and exit
		want    []string      // the writes the writer inside took by the end of the step
		lost    []int         // the lines each failed write of the buffer reported, by the end of the step
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
			{write: line('b', 60), want: nil, lost: []int{1}},
			{fail: &no, lost: []int{1}},
			{write: line('c', 10), want: nil, lost: []int{1}},
			{advance: interval, want: []string{line('c', 10)}, lost: []int{1}},
		}},
		{"the line that did not fit goes through after a failed flush, which is counted", 100, []step{
			{write: line('a', 30)},
			{write: line('b', 30)},
			{refuse: 1},
			{write: line('c', 60), want: []string{line('c', 60)}, lost: []int{2}},
			{write: line('d', 10), want: []string{line('c', 60)}, lost: []int{2}},
			{advance: interval, want: []string{line('c', 60), line('d', 10)}, lost: []int{2}},
		}},
		{"a failed timed flush is not kept as the writer's state", 100, []step{
			{write: line('a', 10)},
			{fail: &yes},
			{advance: interval, lost: []int{1}},
			{fail: &no, lost: []int{1}},
			{write: line('b', 10), lost: []int{1}},
			{advance: interval, want: []string{line('b', 10)}, lost: []int{1}},
		}},
		{"each failed timed flush counts its own lines", 100, []step{
			{write: line('a', 10)},
			{write: line('b', 10)},
			{fail: &yes},
			{advance: interval, lost: []int{2}},
			{write: line('c', 10), lost: []int{2}},
			{advance: interval, lost: []int{2, 1}},
		}},
		{"a write that takes part of the buffer counts the lines it did not take whole", 100, []step{
			{write: line('a', 10)},
			{write: line('b', 10)},
			{write: line('c', 10)},
			{fail: &yes, room: 15},
			{advance: interval, want: []string{line('a', 10) + line('b', 10)[:5]}, lost: []int{2}},
		}},
		{"a failed Sync counts what it held", 100, []step{
			{write: line('a', 10)},
			{write: line('b', 10)},
			{fail: &yes},
			{sync: true, wantErr: true, lost: []int{2}},
			{fail: &no, lost: []int{2}},
			{sync: true, lost: []int{2}},
			{write: line('c', 10), lost: []int{2}},
			{sync: true, want: []string{line('c', 10)}, lost: []int{2}},
		}},
		{"a failed unbuffer counts what it held, not the lines after it", 100, []step{
			{write: line('a', 10)},
			{fail: &yes},
			{exit: true, wantErr: true, lost: []int{1}},
			{write: line('b', 10), lost: []int{1}},
			{fail: &no, lost: []int{1}},
			{write: line('c', 10), want: []string{line('c', 10)}, lost: []int{1}},
		}},
		{"a failed Close counts what it held", 100, []step{
			{write: line('a', 10)},
			{write: line('b', 10)},
			{write: line('c', 10)},
			{fail: &yes},
			{close: true, wantErr: true, lost: []int{3}},
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
			var lost []int
			b := &lineBuffer{w: inner, size: tc.size, interval: interval, afterFunc: clock.AfterFunc, lost: func(l bufferLoss) {
				if l.err == nil {
					t.Errorf("a loss of %d lines reported without an error", l.lines)
				}
				lost = append(lost, l.lines)
			}}
			for i, s := range tc.steps {
				switch {
				case s.write != "":
					if n, err := b.Write([]byte(s.write)); n != len(s.write) && err == nil {
						t.Fatalf("step %d: wrote %d of %d bytes without an error", i, n, len(s.write))
					}
				case s.advance > 0:
					clock.Advance(s.advance)
				case s.fail != nil:
					inner.fail(*s.fail, s.room)
				case s.refuse > 0:
					inner.refuseNext(s.refuse)
				case s.sync:
					if err := b.Sync(); (err != nil) != s.wantErr {
						t.Fatalf("step %d: Sync: %v, want an error: %t", i, err, s.wantErr)
					}
				case s.exit:
					if err := b.unbuffer(); (err != nil) != s.wantErr {
						t.Fatalf("step %d: unbuffer: %v, want an error: %t", i, err, s.wantErr)
					}
					if inner.closed {
						t.Fatalf("step %d: the writer inside was closed", i)
					}
				case s.close:
					if err := b.Close(); (err != nil) != s.wantErr {
						t.Fatalf("step %d: Close: %v, want an error: %t", i, err, s.wantErr)
					}
					if !inner.closed {
						t.Fatalf("step %d: the writer inside is still open", i)
					}
				}
				if got := inner.taken(); !slices.Equal(got, s.want) {
					t.Fatalf("step %d: the writer inside took %q, want %q", i, got, s.want)
				}
				if !slices.Equal(lost, s.lost) {
					t.Fatalf("step %d: failed writes of the buffer reported %v lines lost, want %v", i, lost, s.lost)
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

// TestBufferedAuditTrailLost: an audit trail through a buffered writer
// whose file refuses every write (/dev/full: ENOSPC). Guarded requests are
// answered as usual; each write of the buffer that fails, at a reload (the
// config's Cleanup) and on its flush_interval (the test's clock), adds the
// lines it held to caddy_ucwa_log_buffer_lines_lost_total, which counts
// for the process across the reload, and logs an error to Caddy's default
// log naming the writer, with the lines and the error, and nothing of the
// lines themselves.
func TestBufferedAuditTrailLost(t *testing.T) {
	const lostMetric = "caddy_ucwa_log_buffer_lines_lost_total"
	t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
	clock := testkit.NewClock(time.Unix(0, 0))
	bufferAfterFunc = clock.AfterFunc
	t.Cleanup(func() { bufferAfterFunc = nil })
	// A path of the test's own to /dev/full: Caddy keeps one writer per
	// path for the process, and with it the buffer and its clock.
	full := filepath.Join(t.TempDir(), "full")
	if err := os.Symlink("/dev/full", full); err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`{
	log default {
		exclude http.handlers.ucwa.audit
	}
	log ucwa_audit {
		include http.handlers.ucwa.audit
		output buffered {
			flush_interval 1s
			output file %s {
				roll_disabled
			}
		}
		format json
	}
}
:EDGE_PORT {
	ucwa {
		`+opsJWT+`
		default_region US
		primary %s
	}
}`, full, testkit.NewUpstream(t).Addr())
	e := startEdge(t, "caddyfile", config, testkit.WithAdmin())
	call := func(n int) {
		t.Helper()
		for range n {
			resp := e.send(testkit.Request{URL: startOpsPath, ContentType: "application/json", Body: `{"to":"+14255551234"}`, Header: http.Header{"Authorization": {callerBearer(t)}}})
			if resp.Status != http.StatusCreated {
				t.Fatalf("status %d (%s), want 201", resp.Status, resp.Body)
			}
		}
	}
	// The counter is the process's: other tests' losses are not this one's.
	before := e.Metric(lostMetric)
	if before < 0 {
		t.Fatalf("%s is not in /metrics", lostMetric)
	}
	lossLine := func(lines int) {
		t.Helper()
		line := e.Logs().Wait(t, `"logger":"caddy.logging.writers.buffered"`, `"msg":"buffered log writer lost lines: writing its buffer failed"`,
			fmt.Sprintf(`"writer":"buffered:file:%s"`, full), fmt.Sprintf(`"lines":%d,`, lines), "no space left on device")
		for _, leak := range []string{"1425555", "guarded request", "startPhoneAudio"} {
			if strings.Contains(line, leak) {
				t.Errorf("the error line holds %q of the lines lost: %s", leak, line)
			}
		}
	}

	call(3)
	// Load returns once the old config's requests are done (their lines
	// in the buffer) and the config is unloaded, its buffer written.
	e.Load("caddyfile", config)
	if got := e.Metric(lostMetric) - before; got != 3 {
		t.Fatalf("%s rose by %v after 3 requests and a reload, want 3", lostMetric, got)
	}
	lossLine(3)

	call(1)
	clock.WaitPending(t, 1) // the line is in the buffer, its timer armed
	clock.Advance(time.Second)
	if got := e.Metric(lostMetric) - before; got != 4 {
		t.Fatalf("%s rose by %v after a 4th request and its flush_interval, want 4", lostMetric, got)
	}
	lossLine(1)
}
