package testkit

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

func init() {
	caddy.RegisterModule(captureWriter{})
}

// shownLogBytes is how much of a failed test's Caddy log is shown: the end.
const shownLogBytes = 64 << 10

// Logs is the log of one test's Caddy: every line Caddy's logs (the
// default log, access logs, the standard library's log) wrote while the
// test ran. It lives in a file in the test's temporary directory, and is
// shown (its last 64 KiB) only when the test fails.
type Logs struct {
	mu      sync.Mutex
	file    *os.File
	changed chan struct{} // closed, and replaced, by every write
}

// newLogs creates the log file of t and shows it when t fails.
func newLogs(t testing.TB, path string) *Logs {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	l := &Logs{file: f, changed: make(chan struct{})}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Caddy's log (%s), the last %d KiB at most:\n%s", path, shownLogBytes>>10, l.tail(shownLogBytes))
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		_ = l.file.Close()
	})
	return l
}

// Write appends p and wakes up the tests waiting for a line.
func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.file.Write(p)
	close(l.changed)
	l.changed = make(chan struct{})
	return n, err
}

// String is everything logged so far.
func (l *Logs) String() string {
	s, _ := l.read()
	return s
}

// Lines returns the lines logged so far that hold part.
func (l *Logs) Lines(part string) []string {
	var lines []string
	for line := range strings.Lines(l.String()) {
		if strings.Contains(line, part) {
			lines = append(lines, line)
		}
	}
	return lines
}

func (l *Logs) read() (string, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, err := os.ReadFile(l.file.Name())
	if err != nil {
		return fmt.Sprintf("(reading the log: %v)", err), l.changed
	}
	return string(b), l.changed
}

func (l *Logs) tail(n int) string {
	s := l.String()
	if len(s) > n {
		s = "[...]" + s[len(s)-n:]
	}
	return s
}

// Wait returns the first line that holds every one of parts, waiting for
// Caddy to write it (an access log line is written after the answer went
// out). It fails the test if no such line comes within a minute, a bound
// for a line that never comes rather than a measure of time.
func (l *Logs) Wait(t testing.TB, parts ...string) string {
	t.Helper()
	deadline := time.NewTimer(time.Minute)
	defer deadline.Stop()
	for {
		s, changed := l.read()
		for line := range strings.Lines(s) {
			if containsAll(line, parts) {
				return line
			}
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("Caddy logged no line with %q", parts)
		}
	}
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// capture routes the output of one run's log writer module to the running
// test's Logs; the output of another run's (a config of a test before,
// whose goroutines may still log), and between tests, to nowhere.
var capture struct {
	mu   sync.Mutex
	run  string
	logs io.Writer
}

// runs numbers the runs of the in-process Caddy (see newRun).
var runs atomic.Int64

// newRun names a new run of the in-process Caddy: the configs one test
// loads, whose logs are written by a writer module of that run.
func newRun() string { return strconv.FormatInt(runs.Add(1), 10) }

// captureTo routes the output of run's writers to w (nil: nowhere).
func captureTo(run string, w io.Writer) {
	capture.mu.Lock()
	defer capture.mu.Unlock()
	capture.run, capture.logs = run, w
}

// captureWriter is the log writer module caddy.logging.writers.testkit,
// which the in-process Caddy's logs are given in place of stdout and
// stderr: it writes to the Logs of the test whose run it names. A module
// keeps the logger of the config that provisioned it, and so that
// config's writer: a line that a goroutine of a test before writes late
// (a store's watcher, a request that outlived its test) goes nowhere, not
// into the running test's Logs, whose checks would count it. The writers
// of a run are never closed, so that Caddy's default logger, which
// outlives the configuration that set it, always has a writer that works.
type captureWriter struct {
	// Run names the run whose test the output goes to.
	Run string `json:"run,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (captureWriter) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "caddy.logging.writers.testkit",
		New: func() caddy.Module { return new(captureWriter) },
	}
}

func (w captureWriter) String() string { return "the log of the test of run " + w.Run + " (testkit)" }

// WriterKey is the same for every configuration of a run: one writer for
// each run.
func (w captureWriter) WriterKey() string { return "testkit:" + w.Run }

// OpenWriter returns the run's writer.
func (w captureWriter) OpenWriter() (io.WriteCloser, error) { return captured{run: w.Run}, nil }

// captured writes to the running test's Logs if that test's run is its
// own; closing it does nothing.
type captured struct{ run string }

func (c captured) Write(p []byte) (int, error) {
	capture.mu.Lock()
	defer capture.mu.Unlock()
	if capture.logs == nil || capture.run != c.run {
		return len(p), nil
	}
	return capture.logs.Write(p)
}

func (captured) Close() error { return nil }

// captureConfig is the writer config of run's writer module.
func captureConfig(run string) map[string]any {
	return map[string]any{"output": "testkit", "run": run}
}

// Interface guard
var _ caddy.WriterOpener = (*captureWriter)(nil)
