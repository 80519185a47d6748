package caddymodule

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestIdempotencyReplayLocationOrigin: a pool's Location on its own host
// reaches the client on the edge's scheme and host as that client reached
// the edge, and so does its replay: the edge recorded the first answer's
// Location already rewritten for the first request's Host, and replayed
// it to every repeat, so that a repeat sent to the edge by another name
// (the backup site's, an internal one) was sent to the first one's. A
// Location on another host, or relative, is replayed as it came.
func TestIdempotencyReplayLocationOrigin(t *testing.T) {
	const path = "/ucwa/v1/applications/1/communication/invitations/7?x=1"
	for _, st := range idemStores {
		t.Run(st.name, func(t *testing.T) {
			pool := testkit.NewPool(t, "primary", func(p *testkit.Pool, w http.ResponseWriter, r *http.Request) {
				switch r.Header.Get("X-Test-Answer") {
				case "foreign":
					w.Header().Set("Location", "https://elsewhere.example"+path)
				case "relative":
					w.Header().Set("Location", path)
				default:
					w.Header().Set("Location", "http://"+p.Addr()+path)
				}
				w.WriteHeader(http.StatusCreated)
			})
			e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t), st.config(t), "primary "+pool.Addr()))
			caller := idemToken(t, "tenant-1", "oid-a", "sub-a")
			send := func(host string, c idemCall) (int, http.Header) {
				t.Helper()
				req := e.request(c)
				r, err := http.NewRequest(http.MethodPost, req.URL, strings.NewReader(req.Body))
				if err != nil {
					t.Fatal(err)
				}
				r.Header = req.Header.Clone()
				r.Header.Set("Content-Type", req.ContentType)
				r.Host = host
				resp, err := e.Client().Do(r)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				_, _ = io.Copy(io.Discard, resp.Body)
				return resp.StatusCode, resp.Header
			}
			for _, tc := range []struct {
				answer            string
				first, replayedTo string // the Location each gets
			}{
				{"", "http://first.example" + path, "http://second.example:8080" + path},
				{"foreign", "https://elsewhere.example" + path, "https://elsewhere.example" + path},
				{"relative", path, path},
			} {
				op := "loc-" + tc.answer
				status, h := send("first.example", idemCall{header: caller, op: op, answer: tc.answer})
				if status != http.StatusCreated || h.Get("Location") != tc.first {
					t.Fatalf("%s: first answer %d, Location %q; want 201, %q", op, status, h.Get("Location"), tc.first)
				}
				status, h = send("second.example:8080", idemCall{header: caller, op: op})
				if status != http.StatusCreated || h.Get(headerReplayed) != "true" || h.Get("Location") != tc.replayedTo {
					t.Errorf("%s: repeat to another host got %d (%s %q), Location %q; want the replay with Location %q",
						op, status, headerReplayed, h.Get(headerReplayed), h.Get("Location"), tc.replayedTo)
				}
				status, h = send("first.example", idemCall{header: caller, op: op})
				if status != http.StatusCreated || h.Get(headerReplayed) != "true" || h.Get("Location") != tc.first {
					t.Errorf("%s: repeat to the first host got %d, Location %q; want the replay with Location %q", op, status, h.Get("Location"), tc.first)
				}
			}
			if got := len(pool.Received()); got != 3 {
				t.Errorf("the pool got %d requests, want 3", got)
			}
		})
	}
}
