package fileload

import (
	"errors"
	"strings"
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
				data, err := Read("/keys.pem", read, clk.AfterFunc)
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
