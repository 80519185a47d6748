package caddymodule

import (
	"net/http"
	"testing"
	"time"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestMemoryEntriesGaugeIdle: caddy_ucwa_store_memory_entries, scraped
// from a real Caddy, counts what the memory store holds live: once the
// edge's traffic stops, it falls to 0 when the entries expire on the
// store's clock, with no request since (it stayed at the last count,
// as the store dropped expired entries only when new ones came). An
// entry still live is counted: a scrape drops only what has expired.
func TestMemoryEntriesGaugeIdle(t *testing.T) {
	const gauge = "caddy_ucwa_store_memory_entries"
	for _, tc := range []struct {
		name    string
		options []string
		// held: the entries of two calls (their reservations, or the
		// caller's bucket); live: how long they all live at least, and
		// expired: by when they have all expired.
		held          float64
		live, expired time.Duration
	}{
		{"reservations", []string{"idempotency"}, 2, DefaultIdempotencyWindow - time.Minute, DefaultIdempotencyWindow + time.Minute},
		{"a limit's bucket", []string{"limit calls 5 per 1h"}, 1, time.Minute, 2 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := testkit.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
			memoryStoreClock = clock.Now
			t.Cleanup(func() { memoryStoreClock = nil })
			e := startLimitEdge(t, append([]string{"store memory"}, tc.options...)...)
			alice := caller{"tenant-1", "alice"}.header(t)
			for _, op := range []string{"idle-1", "idle-2"} {
				if resp := e.callOp(op, alice); resp.Status != http.StatusCreated {
					t.Fatalf("%s: %d %s", op, resp.Status, resp.Body)
				}
			}
			if got := e.Metric(gauge); got != tc.held {
				t.Fatalf("%s %v after the calls, want %v", gauge, got, tc.held)
			}
			clock.Advance(tc.live)
			if got := e.Metric(gauge); got != tc.held {
				t.Errorf("%s %v while the entries live, want %v", gauge, got, tc.held)
			}
			clock.Advance(tc.expired - tc.live)
			if got := e.Metric(gauge); got != 0 {
				t.Errorf("%s %v once every entry expired, no request since; want 0", gauge, got)
			}
		})
	}
}
