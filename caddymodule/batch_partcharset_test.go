package caddymodule

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestBatchPartCharset: a part whose own Content-Type (application/http)
// names a character set other than UTF-8 is refused 400, the batch never
// reaching the pool. The edge reads a part's request in UTF-8 (ASCII),
// where a pool that reads the part as text in its declared charset (.NET's
// HttpContent.ReadAsStringAsync decodes by the Content-Type's charset)
// reads another request: in UTF-7, "+AGMAbwBt...AGkAbw-" is
// "communication/startPhoneAudio" and "+-" is "+", so the edge's POST of
// an unknown resource below the application, passed unread, is that
// pool's startPhoneAudio to tel:+19005551234. A part whose Content-Type names UTF-8 passes as sent.
func TestBatchPartCharset(t *testing.T) {
	e := startGuardEdge(t, `destinations {
			deny +1900
		}`)
	auth := callerBearer(t)
	batch := func(partType string) string {
		inner := "POST " + opsApp + "/+AGMAbwBtAG0AdQBuAGkAYwBhAHQAaQBvAG4ALwBzAHQAYQByAHQAUABoAG8AbgBlAEEAdQBkAGkAbw- HTTP/1.1\r\nHost: fe1.contoso.com\r\n" +
			"Content-Type: application/json\r\nContent-Length: 26\r\n\r\n" + `{"to":"tel:+-19005551234"}`
		return "--b\r\nContent-Type: " + partType + "\r\n\r\n" + inner + "\r\n--b--\r\n"
	}
	for _, tc := range []struct {
		partType string
		refused  bool
	}{
		{"application/http; msgtype=request; charset=utf-7", true},
		{`application/http; charset="UTF-7"; msgtype=request`, true},
		{"application/http; msgtype=request; charset=ibm037", true},
		{"application/http; msgtype=request; charset=utf-8", false},
		{"application/http; msgtype=request", false},
	} {
		t.Run(tc.partType, func(t *testing.T) {
			before := len(e.pool.Received())
			body := batch(tc.partType)
			resp := e.send(testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Accept: "multipart/batching", Body: body,
				Header: http.Header{"Authorization": {auth}}})
			got := e.pool.Received()[before:]
			if !tc.refused {
				if len(got) != 1 || got[0].Body != body {
					t.Fatalf("status %d (%s), the pool got %+v; want the batch as sent", resp.Status, resp.Body, got)
				}
				return
			}
			if resp.Status != http.StatusBadRequest || len(got) != 0 || !strings.Contains(resp.Body, "Batch part 1: ") ||
				!strings.Contains(resp.Body, "DeserializationFailure") || strings.Contains(resp.Body, "9005551234") {
				t.Fatalf("status %d (%s), the pool got %d requests; want 400 and none", resp.Status, resp.Body, len(got))
			}
		})
	}
}
