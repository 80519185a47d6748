//go:build linux

package caddymodule

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ucwa-edge/caddy-ucwa/internal/fileload"
	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestConfigFileHangsAtReload: a reload whose public_key_file or Redis
// tls ca file hangs (a FIFO with no writer, which blocks open(2) as a
// hung NFS or FUSE mount does) is refused once the load's wait for the
// file (fileload.Wait, on the test's clock) has passed, naming the
// setting and the file, instead of holding Caddy's config, and every
// reload after it, for as long as the file system hangs; the running
// config goes on answering.
func TestConfigFileHangsAtReload(t *testing.T) {
	for _, tc := range []struct {
		name string
		// timer is the wait's timer that the test replaces with its
		// clock's.
		timer *func(time.Duration, func()) interface{ Stop() bool }
		// setup returns the ucwa handler's store subdirective, given the
		// public_key_file's path, and the file to hang.
		setup   func(t *testing.T, keyFile string) (store, hang string)
		wantErr string // before the hung file's path
	}{
		{"public_key_file", &bearerAfterFunc, func(t *testing.T, keyFile string) (string, string) {
			return "", keyFile
		}, "public_key_file: "},
		{"redis tls ca", &fileLoadAfterFunc, func(t *testing.T, _ string) (string, string) {
			srv := testkit.StartRedisWith(t, testkit.RedisConfig{TLS: true})
			pem, err := os.ReadFile(srv.CAFile())
			if err != nil {
				t.Fatal(err)
			}
			ca := testkit.WriteFile(t, t.TempDir(), "redis-ca.pem", pem)
			return "store redis " + srv.URL() + " {\n\t\t\ttimeout 5s\n\t\t\ttls {\n\t\t\t\tca " + ca + "\n\t\t\t}\n\t\t}", ca
		}, "store: redis: TLS CA file: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := testkit.NewClock(time.Now().Truncate(time.Second))
			*tc.timer = clk.AfterFunc
			t.Cleanup(func() { *tc.timer = nil })
			keyFile := testkit.WriteFile(t, t.TempDir(), "ec.pem", testkit.PublicPEM(t, testkit.Keys(t).EC))
			store, hang := tc.setup(t, keyFile)
			pool := testkit.NewUpstream(t)
			config := `:EDGE_PORT {
	ucwa {
		default_region US
		jwt {
			algorithms ES256
			public_key_file ` + keyFile + `
		}
		web_tickets forward
		` + store + `
		idempotency
		primary ` + pool.Addr() + `
	}
}`
			e := startEdge(t, "caddyfile", config)
			caller := idemToken(t, "tenant-1", "oid-a", "sub-a")
			if resp := e.call(idemCall{header: caller, op: "before"}); resp.Status != http.StatusCreated {
				t.Fatalf("%d %s, want 201", resp.Status, resp.Body)
			}
			testkit.Hang(t, hang)

			// The reload's wait is on the test's clock, which is advanced
			// by the wait once the reload waits: LoadRefused returns only
			// then.
			defer clk.AdvanceWhenWaited(fileload.Wait)()
			want := tc.wantErr + hang + " not read within 10s"
			if err := e.LoadRefused("caddyfile", config); !strings.Contains(err.Error(), want) {
				t.Fatalf("the reload: %v, want refused with %q", err, want)
			}
			if resp := e.call(idemCall{header: caller, op: "after"}); resp.Status != http.StatusCreated {
				t.Fatalf("after the refused reload: %d %s, want 201", resp.Status, resp.Body)
			}
			if got := len(pool.Received()); got != 2 {
				t.Errorf("the pool got %d requests, want 2", got)
			}
		})
	}
}
