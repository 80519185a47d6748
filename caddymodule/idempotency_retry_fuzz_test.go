package caddymodule

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzRecordedRetryAfter: recordedRetryAfter reads a pool's Retry-After
// of any value as RFC 9110 10.2.3 has it, never of a success nor of an
// answer with more than one: delta-seconds (ASCII digits, ten at most)
// are recorded as the same number without leading zeros, an HTTP-date
// (any of its three forms) as the same instant in IMF-fixdate, anything
// else not at all; what it records reads again as itself. At a replay,
// retryAfterNow gives delta-seconds of at least 1 and at most the
// recorded number, or the date recorded while it is to come, or nothing.
func FuzzRecordedRetryAfter(f *testing.F) {
	for _, v := range []string{
		"120", "0", "007", "9999999999", "99999999999", "-1", "+5", " 5", "5 ", "1e3", "١٢٣",
		"Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994",
		"Sun, 06 Nov 1994 08:49:37 UTC", "Mon, 06 Nov 1994 08:49:37 GMT", "Sun, 31 Feb 2026 08:49:37 GMT",
		"Fri, 31 Dec 9999 23:59:59 GMT", "", "tomorrow",
	} {
		f.Add(503, v, "", int64(1_800_000_000_000), int64(1_800_000_030_000))
	}
	f.Add(200, "120", "", int64(0), int64(0))
	f.Add(429, "120", "60", int64(0), int64(0))
	f.Fuzz(func(t *testing.T, status int, value, second string, recordedAt, now int64) {
		h := http.Header{"Retry-After": {value}}
		if second != "" {
			h.Add("Retry-After", second)
		}
		got := recordedRetryAfter(status, h)
		if got == "" {
			return
		}
		if status < 300 || second != "" {
			t.Fatalf("status %d, Retry-After %q: recorded %q", status, h.Values("Retry-After"), got)
		}
		if again := recordedRetryAfter(status, http.Header{"Retry-After": {got}}); again != got {
			t.Fatalf("%q recorded as %q, which records as %q", value, got, again)
		}
		answer := recordedAnswer{retryAfter: got, recordedAt: recordedAt}
		replayed := answer.retryAfterNow(now)
		if strings.Trim(value, "0123456789") == "" {
			n, err := strconv.ParseUint(value, 10, 64)
			if len(value) > 10 || err != nil || got != strconv.FormatUint(n, 10) {
				t.Fatalf("delta-seconds %q recorded as %q", value, got)
			}
			if replayed != "" {
				if left, err := strconv.ParseUint(replayed, 10, 64); err != nil || left < 1 || left > n {
					t.Fatalf("%q recorded at %d: %q at %d", got, recordedAt, replayed, now)
				}
			}
			return
		}
		at, err := http.ParseTime(value)
		if err != nil {
			t.Fatalf("%q, no HTTP-date, recorded as %q", value, got)
		}
		if recorded, err := time.Parse(http.TimeFormat, got); err != nil || !recorded.Equal(at) || recorded.Format(http.TimeFormat) != got {
			t.Fatalf("HTTP-date %q (%v) recorded as %q", value, at, got)
		}
		if replayed != "" && (replayed != got || at.UnixMilli() <= now) {
			t.Fatalf("%q: %q at %d", got, replayed, now)
		}
	})
}
