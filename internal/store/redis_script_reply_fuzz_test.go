package store

import (
	"errors"
	"math"
	"strconv"
	"testing"
	"time"
)

// FuzzAllowDecisions: allowDecisions reads a reply of allowAllScript to
// any number of takes, of any values, as the script writes it (1 or 0,
// then each take's remaining events and seconds until it has room):
// each take is allowed exactly when the reply's first integer is 1, has
// the remaining events the reply gives, and a wait of the seconds the
// reply gives, as a duration: none for seconds not above 0, else at
// least a nanosecond and never shorter than the seconds (to the
// nanosecond), the longest duration for seconds beyond it. A reply of
// another length, or with a value of another type or seconds that are
// no number, is an error of the store's ("allow"), never a panic nor an
// outage. reservation reads the reply of reserveScript as its types
// have it: an integer reserves, a string is the value held, anything
// else is an error.
func FuzzAllowDecisions(f *testing.F) {
	for _, retry := range []string{"0", "0.25", "1.5e-10", "1e-9", "59.99999999", "1e+15", "9223372036.854775807",
		"9223372036.854775808", "1e300", "inf", "+Inf", "-inf", "nan", "NaN", "-0", "0x1p-2", "1_000", "", " 1"} {
		f.Add(int64(0), int64(3), retry, uint8(1), uint16(0))
	}
	f.Add(int64(1), int64(9), "0", uint8(3), uint16(0))
	f.Add(int64(2), int64(-1), "1", uint8(2), uint16(1))
	f.Add(int64(0), int64(0), "1", uint8(2), uint16(6))
	f.Fuzz(func(t *testing.T, allowed, remaining int64, retry string, takes uint8, shape uint16) {
		n := int(takes % 4)
		reply := []any{allowed}
		for i := range n {
			reply = append(reply, remaining+int64(i), retry)
		}
		// shape's low bit shortens the reply by one value; the rest
		// names a value to be of the wrong type (0: none).
		malformed := false
		if shape&1 == 1 {
			reply, malformed = reply[:len(reply)-1], true
		}
		if k := int(shape>>1) % (len(reply) + 1); k > 0 {
			switch v := reply[k-1].(type) {
			case int64:
				reply[k-1] = strconv.FormatInt(v, 10)
			case string:
				reply[k-1] = []any{v}
			}
			malformed = true
		}
		secs, parseErr := strconv.ParseFloat(retry, 64)
		ds, err := allowDecisions(reply, n)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Op != "allow" || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrTimeout) || errors.Is(err, ErrFull) {
				t.Fatalf("reply %#v: %#v", reply, err)
			}
			if !malformed && (parseErr == nil || n == 0) {
				t.Fatalf("reply %#v to %d takes: %v", reply, n, err)
			}
			return
		}
		if malformed || parseErr != nil && n > 0 || len(ds) != n {
			t.Fatalf("reply %#v to %d takes read as %+v", reply, n, ds)
		}
		for i, d := range ds {
			if d.Allowed != (allowed == 1) || d.Remaining != int(remaining+int64(i)) {
				t.Fatalf("reply %#v: take %d read as %+v", reply, i, d)
			}
			switch {
			case !(secs > 0):
				if d.RetryAfter != 0 {
					t.Fatalf("reply %#v: a wait of %v for %q seconds", reply, d.RetryAfter, retry)
				}
			case secs*float64(time.Second) >= math.MaxInt64:
				if d.RetryAfter != math.MaxInt64 {
					t.Fatalf("reply %#v: a wait of %v for %q seconds", reply, d.RetryAfter, retry)
				}
			case d.RetryAfter < time.Nanosecond || float64(d.RetryAfter) < secs*float64(time.Second)-1:
				t.Fatalf("reply %#v: a wait of %v for %q seconds", reply, d.RetryAfter, retry)
			}
		}

		for _, reply := range []any{remaining, retry, nil, []any{retry}, float64(remaining)} {
			reserved, held, err := reservation(reply)
			switch reply := reply.(type) {
			case int64:
				if !reserved || held != "" || err != nil {
					t.Fatalf("reservation(%#v) = %v, %q, %v", reply, reserved, held, err)
				}
			case string:
				if reserved || held != reply || err != nil {
					t.Fatalf("reservation(%#v) = %v, %q, %v", reply, reserved, held, err)
				}
			default:
				if reserved || held != "" || err == nil {
					t.Fatalf("reservation(%#v) = %v, %q, %v", reply, reserved, held, err)
				}
			}
		}
	})
}
