package caddymodule

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// TestAuditLineTakenOnce: a request whose line the stop writes while the
// request is at the next handler (in-process: the handler runs what the
// process's exit runs, writeStoppedLines) gets that line alone, although
// its own goroutine then comes to write its line, as one does whose
// pool answers in the instant the process exits: status 0 and
// at_next_handler before its answer went out, the answer's status and
// answering after. A request answered before the stop gets its own line
// alone.
func TestAuditLineTakenOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		// next is the handler after the edge; stopAfter: the stop comes
		// once the request is done.
		next      caddyhttp.HandlerFunc
		stopAfter bool
		status    int
		cut       string
	}{
		{name: "stopped at the next handler", next: func(http.ResponseWriter, *http.Request) error {
			writeStoppedLines()
			return nil
		}, cut: cutAtNextHandler},
		{name: "stopped answering", next: func(w http.ResponseWriter, _ *http.Request) error {
			w.WriteHeader(http.StatusCreated)
			writeStoppedLines()
			return nil
		}, status: http.StatusCreated, cut: cutAnswering},
		{name: "answered before the stop", next: func(w http.ResponseWriter, _ *http.Request) error {
			w.WriteHeader(http.StatusCreated)
			return nil
		}, stopAfter: true, status: http.StatusCreated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := provision(t, benchContext(t), new(Handler), `{"jwt":{"off":true},"default_region":"US"}`)
			// Encoded as written: a line's fields are views of a record,
			// which is recycled once the line is written.
			var logs bytes.Buffer
			core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&logs), zap.InfoLevel)
			h.setAudit(zap.New(core).Named("http.handlers.ucwa").Named(auditLoggerName))
			req := httptest.NewRequest(http.MethodPost, startPath, strings.NewReader(`{"to":"4255551234","operationId":"once-1"}`))
			req.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			req = caddyhttp.PrepareRequest(req, caddy.NewReplacer(), w, new(caddyhttp.Server))
			if err := h.ServeHTTP(w, req, tc.next); err != nil {
				t.Fatal(err)
			}
			if tc.stopAfter {
				writeStoppedLines()
			}
			lines := auditLines(t, logs.String())
			if len(lines) != 1 {
				t.Fatalf("%d audit lines, want 1: %s", len(lines), logs.String())
			}
			if a := lines[0]; a.Status != tc.status || a.CutByStop != tc.cut || a.OperationID != "once-1" {
				t.Errorf("the audit line %+v, want status %d, cut_by_stop %q and the operation_id", a, tc.status, tc.cut)
			}
		})
	}
}

// TestLineClaim: the stop takes a line only from a request in flight,
// answering or not, and the request's own goroutine only one the stop
// did not take; an answer marked under way moves a request's line
// along, and no other state.
func TestLineClaim(t *testing.T) {
	for _, tc := range []struct {
		name       string
		state      uint32
		own        bool   // take takes it
		stop       bool   // takeForStop takes it
		stopState  uint32 // the state takeForStop took it in
		answeredAs uint32 // the state after answering
	}{
		{name: "in no set", state: lineNone, answeredAs: lineNone},
		{name: "in flight", state: lineInFlight, own: true, stop: true, stopState: lineInFlight, answeredAs: lineAnswering},
		{name: "answering", state: lineAnswering, own: true, stop: true, stopState: lineAnswering, answeredAs: lineAnswering},
		{name: "its own", state: lineOwn, answeredAs: lineOwn},
		{name: "stopped answering", state: lineStoppedAnswering, answeredAs: lineStoppedAnswering},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c lineClaim
			c.Store(tc.state)
			if got := c.take(); got != tc.own {
				t.Errorf("take: %v, want %v", got, tc.own)
			}
			if tc.own && c.Load() != lineOwn {
				t.Errorf("state %d after take, want %d", c.Load(), lineOwn)
			}
			if _, ok := c.takeForStop(); ok {
				t.Error("takeForStop after take took the line")
			}

			c.Store(tc.state)
			state, ok := c.takeForStop()
			if ok != tc.stop || state != tc.stopState {
				t.Errorf("takeForStop: %d %v, want %d %v", state, ok, tc.stopState, tc.stop)
			}
			if c.take() {
				t.Error("take after takeForStop took the line")
			}

			c.Store(tc.state)
			c.answering()
			if got := c.Load(); got != tc.answeredAs {
				t.Errorf("state %d after answering, want %d", got, tc.answeredAs)
			}
		})
	}
}
