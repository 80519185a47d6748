package emulator

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestLongPollTimeoutParameter drives the handler over loopback HTTP with
// an injected clock: a poll's timeout parameter (seconds, as clients send
// it) holds the answer exactly that long, and max_poll_timeout caps it.
func TestLongPollTimeoutParameter(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  time.Duration
	}{
		{"timeout=30", 30 * time.Second},
		{"", 180 * time.Second},       // poll_timeout's default
		{"timeout=100000", time.Hour}, // cut to max_poll_timeout
		{"timeout=1500ms", 1500 * time.Millisecond},
	} {
		t.Run(tc.query, func(t *testing.T) {
			c := testkit.NewClock(time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC))
			e := &Emulator{MaxPollTimeout: caddy.Duration(time.Hour), clock: c}
			if err := e.Provision(caddy.Context{}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = e.Cleanup() })
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _ = e.ServeHTTP(w, r, nil) }))
			t.Cleanup(srv.Close)

			type result struct {
				status int
				body   string
			}
			res := make(chan result, 1)
			go func() {
				resp, err := http.Get(srv.URL + "/ucwa/v1/applications/app/events?" + tc.query)
				if err != nil {
					res <- result{-1, err.Error()}
					return
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				res <- result{resp.StatusCode, string(b)}
			}()
			c.WaitPending(t, 1) // the poll waits
			c.Advance(tc.want - time.Nanosecond)
			select {
			case r := <-res:
				t.Fatalf("answered before its timeout: %+v", r)
			default:
			}
			c.Advance(time.Nanosecond)
			if r := <-res; r.status != http.StatusOK {
				t.Fatalf("poll = %+v, want 200", r)
			}
		})
	}
}
