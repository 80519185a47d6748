package bearer

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// tester is a Verifier under test, with the clock it reads and the
// registry of its metrics.
type tester struct {
	*Verifier[Claims]
	clock   *testkit.Clock
	metrics *prometheus.Registry
}

// newTester builds a Verifier of c that reads a fake clock. An unknown
// kid waits as long as its refetch takes (a minute at most), so that no
// test depends on how fast a loopback fetch is.
func newTester(t *testing.T, c *Config) *tester {
	t.Helper()
	clk := testkit.NewClock(time.Now().Truncate(time.Second))
	reg := prometheus.NewPedanticRegistry()
	v, err := New(c, func(c Claims) Claims { return c }, Options{Now: clk.Now, Registerer: reg, UnknownKidWait: time.Minute,
		Logger: zaptest.NewLogger(t), FetcherLogger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	return &tester{Verifier: v, clock: clk, metrics: reg}
}

// testLogger logs through t (shown when t fails), for as long as t runs:
// a fetcher's verifier is closed, and its fetcher stopped, before.
func testLogger(t *testing.T) func() *zap.Logger {
	logger := zaptest.NewLogger(t)
	return func() *zap.Logger { return logger }
}

// accept checks that token passes.
func (v *tester) accept(t *testing.T, token string) Claims {
	t.Helper()
	claims, err := v.Verify(context.Background(), token)
	if err != nil {
		t.Fatalf("refused: %v", err)
	}
	return claims
}

// refuse checks that token is refused with a message holding message.
func (v *tester) refuse(t *testing.T, token, message string) *Error {
	t.Helper()
	_, err := v.Verify(context.Background(), token)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v, want a *bearer.Error", err)
	}
	if !strings.Contains(e.Message, message) {
		t.Fatalf("message %q, want one with %q", e.Message, message)
	}
	return e
}

// wantCache checks the cache's metrics: entries, hits and misses so far.
func (v *tester) wantCache(t *testing.T, entries, hits, misses float64) {
	t.Helper()
	exposition := testkit.Exposition(t, v.metrics)
	for _, m := range []struct {
		sample string
		want   float64
	}{
		{"caddy_ucwa_token_cache_entries", entries},
		{`caddy_ucwa_token_cache_lookups_total{result="hit"}`, hits},
		{`caddy_ucwa_token_cache_lookups_total{result="miss"}`, misses},
	} {
		if got := testkit.MetricValue(t, exposition, m.sample); got != m.want {
			t.Errorf("%s = %v, want %v", m.sample, got, m.want)
		}
	}
}
