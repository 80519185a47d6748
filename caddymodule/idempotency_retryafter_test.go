package caddymodule

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// retryAfterPool answers with the status of the request's X-Test-Status
// and each X-Test-Retry-After value as a Retry-After header of its own.
func retryAfterPool(_ *testkit.Pool, w http.ResponseWriter, r *http.Request) {
	for _, v := range r.Header.Values("X-Test-Retry-After") {
		w.Header().Add("Retry-After", v)
	}
	status, _ := strconv.Atoi(r.Header.Get("X-Test-Status"))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"code":"ServiceFailure"}`))
}

// fakeIdempotencyClock puts recorded answers' Retry-After on a clock the
// test moves (Unix milliseconds).
func fakeIdempotencyClock(t *testing.T) *atomic.Int64 {
	var now atomic.Int64
	now.Store(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC).UnixMilli())
	idempotencyNow = func() time.Time { return time.UnixMilli(now.Load()) }
	t.Cleanup(func() { idempotencyNow = time.Now })
	return &now
}

// TestIdempotencyReplayRetryAfter: a pool's 503 or 429 is replayed with
// its Retry-After, which a repeat needs to know when to try again: in
// delta-seconds counted down from when the first answer went out, an
// HTTP-date as an IMF-fixdate. A Retry-After that is neither, or given
// twice, is not replayed; nor is one on a success, whose record stays in
// the format older edges read.
func TestIdempotencyReplayRetryAfter(t *testing.T) {
	caller := idemToken(t, "tenant-1", "oid-a", "sub-a")
	tests := []struct {
		name       string
		status     int
		retryAfter []string
		later      time.Duration // from the first answer to the repeat
		want       string        // the repeat's Retry-After; "": none
	}{
		{"503 counted down", 503, []string{"120"}, 100 * time.Second, "20"},
		{"429 counted down, rounded up", 429, []string{"120"}, 99500 * time.Millisecond, "21"},
		{"at once", 503, []string{"120"}, 0, "120"},
		{"past it", 503, []string{"120"}, time.Hour, "0"},
		{"leading zeros", 503, []string{"0030"}, 10 * time.Second, "20"},
		{"an IMF-fixdate", 503, []string{"Sun, 01 Mar 2026 09:05:00 GMT"}, time.Minute, "Sun, 01 Mar 2026 09:05:00 GMT"},
		{"an RFC 850 date", 429, []string{"Sunday, 01-Mar-26 09:05:00 GMT"}, time.Minute, "Sun, 01 Mar 2026 09:05:00 GMT"},
		{"neither", 503, []string{"soon"}, 0, ""},
		{"negative", 503, []string{"-5"}, 0, ""},
		{"too many digits", 503, []string{"12345678901"}, 0, ""},
		{"given twice", 503, []string{"5", "6"}, 0, ""},
		{"none", 503, nil, 0, ""},
		{"on a success", 201, []string{"5"}, 0, ""},
	}
	for _, st := range idemStores {
		t.Run(st.name, func(t *testing.T) {
			now := fakeIdempotencyClock(t)
			pool := testkit.NewPool(t, "primary", retryAfterPool)
			e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t), st.config(t), "primary "+pool.Addr()))
			for i, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					c := idemCall{header: caller.Clone(), op: "retry-after-" + strconv.Itoa(i)}
					c.header.Set("X-Test-Status", strconv.Itoa(tc.status))
					c.header["X-Test-Retry-After"] = tc.retryAfter
					first := e.call(c)
					if first.Status != tc.status || first.Header.Get(headerReplayed) != "" {
						t.Fatalf("first: %d %v %s", first.Status, first.Header, first.Body)
					}
					now.Add(tc.later.Milliseconds())
					again := e.call(c)
					assertReplay(t, again, first)
					if got := again.Header.Values("Retry-After"); tc.want == "" && len(got) != 0 || tc.want != "" && (len(got) != 1 || got[0] != tc.want) {
						t.Errorf("replay's Retry-After %q, want %q", got, tc.want)
					}
					if got := deliveries(pool, c.op); got != 1 {
						t.Errorf("delivered %d times", got)
					}
				})
			}
		})
	}
}

// TestRecordedRetryAfterFormat pins the letters of recorded answers: one
// with a Retry-After is "R" or "S", which edges that know only "a", "e",
// "A" and "E" do not read as an answer (they answer 409), and reads back
// as written; one without is as before.
func TestRecordedRetryAfterFormat(t *testing.T) {
	const inputs = "AAAAAAAAAAAAAAAAAAAAAA"
	for _, tc := range []struct {
		a    recordedAnswer
		kind byte
	}{
		{recordedAnswer{status: 503, contentType: "application/json", body: "{}", inputs: inputs, retryAfter: "120", recordedAt: 1772355600000}, 'R'},
		{recordedAnswer{status: 429, location: "/x", onEdge: true, inputs: inputs, retryAfter: "Sun, 01 Mar 2026 09:05:00 GMT", recordedAt: 1}, 'S'},
		{recordedAnswer{status: 503, inputs: inputs}, 'A'},
	} {
		v := tc.a.encode()
		if v[0] != tc.kind {
			t.Errorf("%+v encoded as %q, want kind %c", tc.a, v, tc.kind)
		}
		if got, ok := decodeAnswer(v); !ok || got != tc.a {
			t.Errorf("decodeAnswer(%q) = %+v, %v; want %+v", v, got, ok, tc.a)
		}
	}
	// Damaged or forged: unread, never replayed with another header.
	for _, v := range []string{
		"R" + inputs + "5030:0:3:0:1\r\nX{}",
		"R" + inputs + "2010:0:1:0:5",
		"R" + inputs + "5030:0:0:0:",
		"R" + inputs + "5030:0:9:0:12",
		"R" + inputs + "5030:0:2:x:12",
	} {
		if a, ok := decodeAnswer(v); ok {
			t.Errorf("decodeAnswer(%q) = %+v, want unread", v, a)
		}
	}
}
