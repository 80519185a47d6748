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
// failed write loses only the lines it held, and is reported with the
// number of lines it lost, whichever way the buffer was written (full,
// on its timer, Sync, unbuffer, Close); after it, lines go straight
// through until one is written, and are buffered again after that one;
// after Close, or once unbuffered as the process exits, lines go
// straight through; a line written straight through (larger than the
// buffer, after a failed write, after Close or unbuffer) whose write
// fails is reported lost too, with the buffer's lines when it follows a
// failed write of the buffer.
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
			// a's flush fails, and b, written after it, too.
			{write: line('b', 60), want: nil, lost: []int{2}},
			{fail: &no, lost: []int{2}},
			{write: line('c', 10), want: []string{line('c', 10)}, lost: []int{2}},
			{write: line('d', 10), want: []string{line('c', 10)}, lost: []int{2}},
			{advance: interval, want: []string{line('c', 10), line('d', 10)}, lost: []int{2}},
		}},
		{"the line that did not fit goes through after a failed flush, which is counted", 100, []step{
			{write: line('a', 30)},
			{write: line('b', 30)},
			{refuse: 1},
			{write: line('c', 60), want: []string{line('c', 60)}, lost: []int{2}},
			{write: line('d', 10), want: []string{line('c', 60)}, lost: []int{2}},
			{advance: interval, want: []string{line('c', 60), line('d', 10)}, lost: []int{2}},
		}},
		{"after a failed timed flush, lines go through until one is written", 100, []step{
			{write: line('a', 10)},
			{fail: &yes},
			{advance: interval, lost: []int{1}},
			{write: line('b', 10), lost: []int{1, 1}},
			{write: line('c', 10), lost: []int{1, 1, 1}},
			{fail: &no, lost: []int{1, 1, 1}},
			{write: line('d', 10), want: []string{line('d', 10)}, lost: []int{1, 1, 1}},
			{write: line('e', 10), want: []string{line('d', 10)}, lost: []int{1, 1, 1}},
			{advance: interval, want: []string{line('d', 10), line('e', 10)}, lost: []int{1, 1, 1}},
		}},
		{"each failed timed flush counts its own lines", 100, []step{
			{write: line('a', 10)},
			{write: line('b', 10)},
			{fail: &yes},
			{advance: interval, lost: []int{2}},
			{fail: &no, lost: []int{2}},
			{write: line('c', 10), want: []string{line('c', 10)}, lost: []int{2}},
			{write: line('d', 10), want: []string{line('c', 10)}, lost: []int{2}},
			{fail: &yes, want: []string{line('c', 10)}, lost: []int{2}},
			{advance: interval, want: []string{line('c', 10)}, lost: []int{2, 1}},
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
			{write: line('c', 10), want: []string{line('c', 10)}, lost: []int{2}},
			{write: line('d', 10), want: []string{line('c', 10)}, lost: []int{2}},
			{sync: true, want: []string{line('c', 10), line('d', 10)}, lost: []int{2}},
		}},
		{"a failed unbuffer counts what it held, then each line after it that fails", 100, []step{
			{write: line('a', 10)},
			{fail: &yes},
			{exit: true, wantErr: true, lost: []int{1}},
			{write: line('b', 10), lost: []int{1, 1}},
			{fail: &no, lost: []int{1, 1}},
			{write: line('c', 10), want: []string{line('c', 10)}, lost: []int{1, 1}},
		}},
		{"a line after Close that fails is counted", 100, []step{
			{close: true},
			{fail: &yes},
			{write: line('a', 10), lost: []int{1}},
			{fail: &no, lost: []int{1}},
			{write: line('b', 10), want: []string{line('b', 10)}, lost: []int{1}},
		}},
		{"a line larger than the buffer that fails is counted", 100, []step{
			{fail: &yes},
			{write: line('a', 150), lost: []int{1}},
			{fail: &no, lost: []int{1}},
			{write: line('b', 150), want: []string{line('b', 150)}, lost: []int{1}},
		}},
		{"a line larger than the buffer cut by a partial write is counted", 100, []step{
			{fail: &yes, room: 50},
			{write: line('a', 150), want: []string{line('a', 150)[:50]}, lost: []int{1}},
		}},
		{"a line after a failed flush that fails too is counted with the buffer's", 100, []step{
			{write: line('a', 30)},
			{write: line('b', 30)},
			{fail: &yes},
			{write: line('c', 60), lost: []int{3}},
			{fail: &no, lost: []int{3}},
			{write: line('d', 10), want: []string{line('d', 10)}, lost: []int{3}},
			{advance: interval, want: []string{line('d', 10)}, lost: []int{3}},
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

// placeCalls sends n startPhoneAudio requests of a verified caller to e,
// each to be answered 201.
func placeCalls(t *testing.T, e edge, n int) {
	t.Helper()
	for range n {
		resp := e.send(testkit.Request{URL: startOpsPath, ContentType: "application/json", Body: `{"to":"+14255551234"}`, Header: http.Header{"Authorization": {callerBearer(t)}}})
		if resp.Status != http.StatusCreated {
			t.Fatalf("status %d (%s), want 201", resp.Status, resp.Body)
		}
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
			placeCalls(t, e, 3)
			if n := len(auditLines(auditFile)); n < tc.least || n > tc.most {
				t.Fatalf("%d lines in the file after 3 requests, want %d to %d", n, tc.least, tc.most)
			}
			// Load returns once the old config's requests are done and
			// the config is unloaded.
			e.Load("caddyfile", config(auditFile, tc.buffered))
			if n := len(auditLines(auditFile)); n != 3 {
				t.Fatalf("%d lines in the file after 3 requests and a reload, want 3", n)
			}
			placeCalls(t, e, 2)
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
		placeCalls(t, e, 1)
		testkit.Eventually(t, "the audit line written without an unload", func() bool { return len(auditLines(auditFile)) == 1 })
	})
}

// TestBufferedAuditTrailLost: an audit trail through a buffered writer
// whose file refuses every write (/dev/full: ENOSPC). Guarded requests are
// answered as usual; every line lost, whether a failed write of the
// buffer held it (at a reload, the config's Cleanup) or it was written
// straight through (a line larger than the buffer, or any line after a
// failed write), is counted in
// caddy_ucwa_log_buffer_lines_lost_total, which counts for the process
// across the reload; an error naming the writer, with the lines and the
// error and nothing of the lines themselves, is logged to Caddy's default
// log at the first loss, then once a minute at most (the test's clock)
// with the lines lost since the last.
func TestBufferedAuditTrailLost(t *testing.T) {
	const lostMetric = "caddy_ucwa_log_buffer_lines_lost_total"
	for _, tc := range []struct {
		name string
		size string // the buffer's: an audit line fits in it, or not
		// requests are those of each loss: the first, which logs;
		// another within the minute, which does not; one a minute
		// after the first, which logs the lines of both.
		requests [3]int
		// held: the first loss's lines wait in the buffer until a
		// reload; else each line is written as it comes, as every line
		// is after the first failed write.
		held bool
	}{
		{"lines held in the buffer", "64KiB", [3]int{3, 1, 1}, true},
		// One request at first: the first line reports the lines
		// counted when it is logged, and the others' writes may come
		// after it or before.
		{"lines larger than the buffer", "16", [3]int{1, 2, 1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
			clock := testkit.NewClock(time.Unix(0, 0))
			bufferClock = clock
			t.Cleanup(func() { bufferClock = nil })
			// A path of the test's own to /dev/full: Caddy keeps one
			// writer per path for the process, and with it the buffer,
			// its clock and when it last logged a loss.
			full := filepath.Join(t.TempDir(), "full")
			if err := os.Symlink("/dev/full", full); err != nil {
				t.Fatal(err)
			}
			config := trailConfig(fmt.Sprintf("buffered {\n\t\t\tsize %s\n\t\t\tflush_interval 1s\n\t\t\toutput file %s {\n\t\t\t\troll_disabled\n\t\t\t}\n\t\t}", tc.size, full), "format json", testkit.NewUpstream(t).Addr(), "")
			e := startEdge(t, "caddyfile", config, testkit.WithAdmin())
			// The counter is the process's: other tests' losses are not
			// this one's.
			before := e.Metric(lostMetric)
			if before < 0 {
				t.Fatalf("%s is not in /metrics", lostMetric)
			}
			lost := 0
			// lose sends n requests and has their lines lost, which the
			// counter then counts. A loss is logged before it is counted,
			// so the error lines of the lines counted are in the log.
			lose := func(n int, reload bool) {
				t.Helper()
				placeCalls(t, e, n)
				lost += n
				switch {
				case tc.held && reload:
					// Load returns once the old config's requests are
					// done (their lines in the buffer) and the config is
					// unloaded, its buffer written.
					e.Load("caddyfile", config)
				default:
					// A line is written once its request is answered,
					// which its client may see first.
					testkit.Eventually(t, "the lines lost counted", func() bool { return e.Metric(lostMetric)-before >= float64(lost) })
				}
				if got := e.Metric(lostMetric) - before; got != float64(lost) {
					t.Fatalf("%s rose by %v after %d requests, want %d", lostMetric, got, lost, lost)
				}
			}
			lossLines := func(lines ...int) {
				t.Helper()
				logged := e.Logs().Lines(`"msg":"` + bufferLossError + `"`)
				if len(logged) != len(lines) {
					t.Fatalf("%d error lines of lines lost, want %d (once a minute at most): %q", len(logged), len(lines), logged)
				}
				for i, line := range logged {
					for _, want := range []string{`"level":"error"`, `"logger":"caddy.logging.writers.buffered"`, fmt.Sprintf(`"writer":"buffered:file:%s"`, full), fmt.Sprintf(`"lines":%d,`, lines[i]), "no space left on device"} {
						if !strings.Contains(line, want) {
							t.Errorf("error line %d lacks %s: %s", i, want, line)
						}
					}
					for _, leak := range []string{"1425555", "guarded request", "startPhoneAudio"} {
						if strings.Contains(line, leak) {
							t.Errorf("error line %d holds %q of the lines lost: %s", i, leak, line)
						}
					}
				}
			}

			first := clock.Now() // of the first loss: a reload, or a line's write
			lose(tc.requests[0], true)
			lossLines(tc.requests[0])
			// Said once: Caddy logs an error its Cleanup returns again.
			if again := e.Logs().Lines("cleanup: "); len(again) != 0 {
				t.Errorf("the loss logged again by Caddy: %q", again)
			}
			lose(tc.requests[1], false)
			lossLines(tc.requests[0])
			// The third loss comes a minute after the first.
			clock.Advance(first.Add(warnEvery).Sub(clock.Now()))
			lose(tc.requests[2], false)
			lossLines(tc.requests[0], tc.requests[1]+tc.requests[2])
		})
	}
}
