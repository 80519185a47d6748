package caddymodule

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// encodedAnswer answers 409 Conflict with a JSON body: compressed with
// gzip (Content-Encoding: gzip) when the request accepts gzip, as IIS's
// dynamic compression does; with deflate ("deflate"), whatever the
// request accepts (a pool that ignores Accept-Encoding).
func encodedAnswer(coding string) testkit.Answer {
	return func(_ *testkit.Pool, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if coding == "gzip" && !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			w.WriteHeader(http.StatusConflict)
			_, _ = io.WriteString(w, conflictBody)
			return
		}
		var b bytes.Buffer
		var zw io.WriteCloser
		if coding == "gzip" {
			zw = gzip.NewWriter(&b)
		} else {
			zw, _ = flate.NewWriter(&b, flate.BestSpeed)
		}
		_, _ = io.WriteString(zw, conflictBody)
		_ = zw.Close()
		w.Header().Set("Content-Encoding", coding)
		w.WriteHeader(http.StatusConflict)
		_, _ = w.Write(b.Bytes())
	}
}

// decoded is the body of resp as its Content-Encoding says.
func decoded(t *testing.T, resp testkit.Response) string {
	t.Helper()
	switch ce := resp.Header.Get("Content-Encoding"); ce {
	case "", "identity":
		return resp.Body
	case "gzip", "deflate":
		var zr io.Reader = flate.NewReader(strings.NewReader(resp.Body))
		if ce == "gzip" {
			var err error
			if zr, err = gzip.NewReader(strings.NewReader(resp.Body)); err != nil {
				t.Fatalf("Content-Encoding gzip, but the body is not: %v", err)
			}
		}
		b, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	default:
		t.Fatalf("Content-Encoding %q", ce)
		return ""
	}
}

// TestIdempotencyReplayEncoded: a repeat gets the pool's answer as the
// client can read it, whatever content coding the pool gave the first.
// A client that accepts gzip (every browser, most HTTP stacks) had its
// Accept-Encoding forwarded, a pool that compresses answered in gzip,
// and the edge recorded the compressed bytes but replayed them without
// their Content-Encoding: every repeat got binary junk labelled
// application/json. An answer the edge cannot replay as it went out (in
// a content coding Go's transport does not decode, which a pool sends
// unasked) is not recorded: repeats get 409.
func TestIdempotencyReplayEncoded(t *testing.T) {
	for _, tc := range []struct {
		name     string
		coding   string
		replayed bool
	}{
		{"a pool that compresses when asked", "gzip", true},
		{"a pool that compresses unasked", "deflate", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := testkit.NewPool(t, "primary", encodedAnswer(tc.coding))
			e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t), "primary "+pool.Addr()))
			a := idemToken(t, "tenant-1", "oid-a", "sub-a")
			for i, acceptEncoding := range []string{"gzip", "gzip", ""} {
				c := idemCall{header: a.Clone(), op: "enc-" + tc.coding}
				req := c.request()
				req.Header = c.header
				if acceptEncoding != "" {
					// Set by hand, Go's client hands the body over as it came.
					req.Header.Set("Accept-Encoding", acceptEncoding)
				}
				resp := e.send(req)
				if resp.Status != http.StatusConflict {
					t.Fatalf("request %d: %d %s", i+1, resp.Status, resp.Body)
				}
				replayed := resp.Header.Get(headerReplayed) == "true"
				switch {
				case i == 0 && replayed:
					t.Fatalf("the first answer is marked as a replay")
				case i > 0 && replayed != tc.replayed:
					t.Fatalf("request %d: replayed %t, want %t: %v %q", i+1, replayed, tc.replayed, resp.Header, resp.Body)
				case i > 0 && !replayed:
					assertConflict(t, resp)
					continue
				}
				if got := decoded(t, resp); got != conflictBody {
					t.Errorf("request %d (Accept-Encoding %q): Content-Encoding %q, body decodes to %q, want the pool's %q",
						i+1, acceptEncoding, resp.Header.Get("Content-Encoding"), got, conflictBody)
				}
			}
			if n := pool.Requests.Load(); n != 1 {
				t.Errorf("the pool received %d requests, want 1", n)
			}
		})
	}
}

// TestAnswersReadAskedWithoutCoding: an answer the edge reads is asked
// of the pool without the client's Accept-Encoding (Go's transport asks
// for gzip and decodes it): one idempotency may record and replay to
// repeats that accept other codings, and a batch's, whose parts'
// Locations it rewrites (see TestBatchAnswerLocations).
func TestAnswersReadAskedWithoutCoding(t *testing.T) {
	pool := newIdemPool(t, "primary")
	e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t), "primary "+pool.Addr()))
	const app = "/ucwa/v1/applications/1"
	header := idemToken(t, "tenant-1", "oid-a", "sub-a").Clone()
	header.Set("Accept-Encoding", "br")
	body := batchBody(innerPOST(app+"/communication/startPhoneAudio", "application/json", `{"to":"4255551234","operationId":"ae-batch"}`))
	if resp := e.send(testkit.Request{URL: app + "/batch", ContentType: batchType, Header: header, Body: body}); resp.Status >= 300 {
		t.Fatalf("batch: %d %s", resp.Status, resp.Body)
	}
	c := idemCall{header: header.Clone(), op: "ae-alone"}
	req := c.request()
	req.Header = c.header
	if resp := e.send(req); resp.Status != http.StatusCreated {
		t.Fatalf("alone: %d %s", resp.Status, resp.Body)
	}
	got := pool.Received()
	if len(got) != 2 {
		t.Fatalf("the pool received %d requests, want 2", len(got))
	}
	for i, name := range []string{"the batch", "the request alone"} {
		if ae := got[i].Header.Get("Accept-Encoding"); ae != "gzip" {
			t.Errorf("%s reached the pool with Accept-Encoding %q, want Go's transport's %q", name, ae, "gzip")
		}
	}
}

// TestAnswerRecorderHoldsFlush: reverse_proxy's flush of an answer of
// unknown length, made through the writers wrapping the recorder, does
// not reach the client while the answer is recorded for idempotency
// (it goes out once recorded), and does when it is only audited or too
// long to record.
func TestAnswerRecorderHoldsFlush(t *testing.T) {
	for _, tc := range []struct {
		name     string
		keepBody bool
		body     string
		held     bool
	}{
		{"audited", false, "{}", false},
		{"recorded", true, "{}", true},
		{"too long to record", true, strings.Repeat("x", maxRecordedBody+1), false},
	} {
		client := httptest.NewRecorder()
		rec := &answerRecorder{keepBody: tc.keepBody}
		rec.ResponseWriter = client
		w := &caddyhttp.ResponseWriterWrapper{ResponseWriter: rec}
		w.WriteHeader(http.StatusCreated)
		if _, err := w.Write([]byte(tc.body)); err != nil {
			t.Fatal(err)
		}
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Fatalf("%s: flush: %v", tc.name, err)
		}
		if client.Flushed == tc.held {
			t.Errorf("%s: the client's writer flushed: %v", tc.name, client.Flushed)
		}
	}
}

// TestAnswerRecorderReadFrom: a handler after the edge that copies its
// answer with io.Copy (which takes the writer's ReadFrom) has it recorded
// as through Write, and an answer written so without a status is a 200.
func TestAnswerRecorderReadFrom(t *testing.T) {
	for _, tc := range []struct {
		name     string
		keepBody bool
		body     string
		recorded string // "" and overflow for one too long
		overflow bool
	}{
		{"audited", false, "{}", "", false},
		{"recorded", true, `{"a":1}`, `{"a":1}`, false},
		{"too long to record", true, strings.Repeat("x", maxRecordedBody+1), "", true},
	} {
		client := httptest.NewRecorder()
		rec := &answerRecorder{keepBody: tc.keepBody}
		rec.ResponseWriter = client
		// A reader without WriteTo, which io.Copy would take first.
		n, err := io.Copy(rec, struct{ io.Reader }{strings.NewReader(tc.body)})
		if err != nil || n != int64(len(tc.body)) {
			t.Fatalf("%s: copied %d, %v", tc.name, n, err)
		}
		if client.Code != http.StatusOK || rec.status != http.StatusOK || client.Body.String() != tc.body {
			t.Errorf("%s: the client got %d (recorded %d) %q", tc.name, client.Code, rec.status, client.Body)
		}
		if string(rec.recorded) != tc.recorded || rec.overflow != tc.overflow {
			t.Errorf("%s: recorded %q overflow %v, want %q %v", tc.name, rec.recorded, rec.overflow, tc.recorded, tc.overflow)
		}
	}
}
