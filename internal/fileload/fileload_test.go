package fileload

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestRead: Read gives what the read gives when it returns, and, when it
// does not return within Wait on the test's clock, an error naming the
// file, leaving the read to end unheeded.
func TestRead(t *testing.T) {
	broken := errors.New("open /keys.pem: permission denied")
	for _, tc := range []struct {
		name     string
		data     []byte
		err      error
		hang     bool
		wantData string
		wantErr  string
	}{
		{name: "read", data: []byte("pem"), wantData: "pem"},
		{name: "read fails", err: broken, wantErr: broken.Error()},
		{name: "read hangs", hang: true, wantErr: "/keys.pem not read within 10s: its file system hangs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := testkit.NewClock(time.Now())
			release := make(chan struct{})
			defer close(release)
			read := func(string) ([]byte, error) {
				if tc.hang {
					<-release
				}
				return tc.data, tc.err
			}
			type result struct {
				data []byte
				err  error
			}
			done := make(chan result, 1)
			go func() {
				data, err := NewReader(read).Read("/keys.pem", clk.AfterFunc)
				done <- result{data, err}
			}()
			if tc.hang {
				clk.WaitPending(t, 1)
				clk.Advance(Wait)
			}
			r := <-done
			if string(r.data) != tc.wantData || (r.err == nil) != (tc.wantErr == "") ||
				(r.err != nil && !strings.Contains(r.err.Error(), tc.wantErr)) {
				t.Fatalf("Read: %q, %v; want %q, %q", r.data, r.err, tc.wantData, tc.wantErr)
			}
			if clk.Pending() != 0 {
				t.Errorf("%d timers left pending", clk.Pending())
			}
		})
	}
}

// TestReadFile: ReadFile reads a file of max bytes at most, and refuses
// a larger one, or a device that never ends, naming it.
func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, path string
		want       int    // bytes read
		wantErr    string // in the error; "" for none
	}{
		{"empty", testkit.WriteFile(t, dir, "empty", nil), 0, ""},
		{"the bound", testkit.WriteFile(t, dir, "bound", make([]byte, 100)), 100, ""},
		{"a byte over it", testkit.WriteFile(t, dir, "over", make([]byte, 101)), 0, "over: larger than 100 bytes"},
		{"a device without end", "/dev/zero", 0, "/dev/zero: larger than 100 bytes"},
		{"missing", dir + "/missing", 0, "missing: no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := ReadFile(tc.path, 100)
			if len(data) != tc.want || (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("ReadFile: %d bytes, %v; want %d, %q", len(data), err, tc.want, tc.wantErr)
			}
		})
	}
}

// TestReadOneInFlight: a Read of a path whose read hangs waits for that
// read, on a timer of its own, instead of starting another, and is
// refused when its own wait is over; a Read that comes while the read
// still hangs takes what it brings when it returns; and once it has
// returned, the next Read reads afresh. A Read of another path, or
// through another Reader, starts a read of its own. Each read brings the
// number of the call of the read function that made it, so that a
// Read's data says which call it waited for.
func TestReadOneInFlight(t *testing.T) {
	const first = "/keys.pem"
	for _, tc := range []struct {
		name string
		// path and otherReader say what the Reads after the first
		// read: another path, or the same through another Reader.
		path        string
		otherReader bool
		// joined is the call whose data the third Read gets, the
		// one in flight when it comes, and fresh the fourth's.
		joined, fresh string
	}{
		{name: "same path", path: first, joined: "call 1", fresh: "call 2"},
		{name: "other path", path: "/other.pem", joined: "call 2", fresh: "call 3"},
		{name: "other reader", path: first, otherReader: true, joined: "call 2", fresh: "call 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := testkit.NewClock(time.Now())
			release := make(chan struct{})
			released := sync.OnceFunc(func() { close(release) })
			defer released()
			started := make(chan struct{}, 4)
			var mu sync.Mutex
			calls := 0
			read := func(string) ([]byte, error) {
				mu.Lock()
				calls++
				n := calls
				mu.Unlock()
				started <- struct{}{}
				<-release
				return []byte(fmt.Sprintf("call %d", n)), nil
			}
			r := NewReader(read)
			other := r
			if tc.otherReader {
				other = NewReader(read)
			}
			type result struct {
				data string
				err  error
			}
			readAsync := func(r *Reader, path string) <-chan result {
				done := make(chan result, 1)
				go func() {
					data, err := r.Read(path, clk.AfterFunc)
					done <- result{string(data), err}
				}()
				return done
			}
			refused := func(which string, done <-chan result, path string) {
				t.Helper()
				want := path + " not read within 10s: its file system hangs"
				if r := <-done; r.err == nil || r.err.Error() != want {
					t.Fatalf("the %s Read: %q, %v; want refused with %q", which, r.data, r.err, want)
				}
			}

			// The first read hangs; the second Read comes halfway
			// through the first's wait and waits its own.
			firstRead := readAsync(r, first)
			<-started
			clk.WaitPending(t, 1)
			clk.Advance(Wait / 2)
			secondRead := readAsync(other, tc.path)
			clk.WaitPending(t, 2)
			clk.Advance(Wait / 2)
			refused("first", firstRead, first)
			select {
			case r := <-secondRead:
				t.Fatalf("the second Read returned (%q, %v) when the first's wait was over", r.data, r.err)
			default:
			}
			clk.Advance(Wait / 2)
			refused("second", secondRead, tc.path)

			// The third comes while the read hangs, and gets what it
			// brings once released.
			thirdRead := readAsync(other, tc.path)
			clk.WaitPending(t, 1)
			released()
			if r := <-thirdRead; r.err != nil || r.data != tc.joined {
				t.Fatalf("the third Read: %q, %v; want %q", r.data, r.err, tc.joined)
			}
			if r := <-readAsync(other, tc.path); r.err != nil || r.data != tc.fresh {
				t.Fatalf("the fourth Read, after the read returned: %q, %v; want %q", r.data, r.err, tc.fresh)
			}
			if clk.Pending() != 0 {
				t.Errorf("%d timers left pending", clk.Pending())
			}
		})
	}
}
