package emulator

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
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

// TestAnswerDelay drives the handler over loopback HTTP with an injected
// clock: with answer_delay, a call is answered (and placed) once the
// delay has passed, not before; a GET (the event channel, the health
// endpoint) is answered at once; a client that goes away meanwhile places
// no call.
func TestAnswerDelay(t *testing.T) {
	const delay = 5 * time.Second
	c := testkit.NewClock(time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC))
	e := &Emulator{AnswerDelay: caddy.Duration(delay), EventChannelOptional: true, DefaultRegion: "US", clock: c}
	if err := e.Provision(caddy.Context{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Cleanup() })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _ = e.ServeHTTP(w, r, nil) }))
	t.Cleanup(srv.Close)
	const app = "/ucwa/v1/applications/app"
	call := func(ctx context.Context, op string) <-chan int {
		status := make(chan int, 1)
		go func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+app+"/communication/startPhoneAudio",
				strings.NewReader(`{"to":"+14255551234","operationId":"`+op+`"}`))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				status <- -1
				return
			}
			resp.Body.Close()
			status <- resp.StatusCode
		}()
		return status
	}
	invitations := func() int {
		e.store.mu.Lock()
		defer e.store.mu.Unlock()
		return e.store.invitations
	}

	gone, cancel := context.WithCancel(context.Background())
	abandoned := call(gone, "gone")
	c.WaitPending(t, 1)
	cancel()
	if s := <-abandoned; s != -1 {
		t.Fatalf("an abandoned call was answered %d", s)
	}
	c.WaitPending(t, 0) // its wait stopped

	answered := call(context.Background(), "slow")
	c.WaitPending(t, 1)
	resp, err := http.Get(srv.URL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("health during the delay: %d", resp.StatusCode)
	}
	c.Advance(delay - time.Nanosecond)
	select {
	case s := <-answered:
		t.Fatalf("answered %d before the delay", s)
	default:
	}
	if n := invitations(); n != 0 {
		t.Fatalf("%d calls placed before the delay", n)
	}
	c.Advance(time.Nanosecond)
	if s := <-answered; s != http.StatusCreated {
		t.Fatalf("call = %d, want 201", s)
	}
	if n := invitations(); n != 1 {
		t.Fatalf("%d calls placed, want the one answered (not the abandoned one)", n)
	}
}
