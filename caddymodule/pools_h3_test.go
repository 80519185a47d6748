package caddymodule

import (
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestPoolHTTP3Rejected: a pool that speaks HTTP/3 and resets the stream
// of a request it read whole with H3_REQUEST_REJECTED (a lie: it has the
// request) receives the request once, and nothing goes to the backup:
// the client gets the edge's 502. quic-go's transport sends a request
// without a body (a startPhoneAudio with its inputs in the query alone)
// again by itself after such a reset, on a new connection, below
// reverse_proxy; the edge must stop it as it stops HTTP/2's resend after
// REFUSED_STREAM. A pool that answers gets each request once, with its
// inputs in a body or in the query alone.
func TestPoolHTTP3Rejected(t *testing.T) {
	const startPath = "/ucwa/v1/applications/1/communication/startPhoneAudio"
	for _, tc := range []struct {
		name       string
		reject     bool
		queryAlone bool
		wantStatus int
	}{
		{"answers 201, body", false, false, http.StatusCreated},
		{"answers 201, query alone", false, true, http.StatusCreated},
		{"reads whole, H3_REQUEST_REJECTED, body", true, false, http.StatusBadGateway},
		{"reads whole, H3_REQUEST_REJECTED, query alone", true, true, http.StatusBadGateway},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var turns atomic.Int64
			primary := testkit.NewHTTP3Pool(t, "primary", func(p *testkit.Pool, w http.ResponseWriter, r *http.Request) {
				if tc.reject && turns.Add(1) == 1 {
					if !testkit.RejectHTTP3(w) {
						t.Error("the pool could not reach its HTTP/3 stream")
						panic(http.ErrAbortHandler)
					}
					return
				}
				testkit.AnswerCreated(p, w, r)
			})
			backup := testkit.NewPool(t, "backup", testkit.AnswerCreated)
			e := startEdge(t, "caddyfile", poolsCaddyfile("\t\tprimary "+primary.URL()+h2Transport("3", primary.CAFile(t))+"\n\t\tbackup "+backup.Addr()))
			req := testkit.Request{URL: startPath, ContentType: "application/json", Body: `{"to":"4255551234","operationId":"op-h3"}`}
			if tc.queryAlone {
				req = testkit.Request{Method: "POST", URL: startPath + "?to=4255551234&operationId=op-h3"}
			}
			resp := e.send(req)
			if resp.Status != tc.wantStatus {
				t.Errorf("status %d %s, want %d", resp.Status, resp.Body, tc.wantStatus)
			}
			if got := deliveries(primary, "op-h3"); got != 1 {
				t.Errorf("the primary received the request %d times, want once", got)
			}
			if got := len(backup.Received()); got != 0 {
				t.Errorf("the backup received %d requests", got)
			}
		})
	}
}
