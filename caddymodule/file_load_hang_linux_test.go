//go:build linux

package caddymodule

import (
	"crypto/rsa"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

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

// TestHungFileReadOnceAcrossReloads: reloads that come while a key
// file's read hangs (a FIFO with no writer, which blocks open(2) as a
// hung NFS or FUSE mount does) wait for that same read instead of
// starting one more each, which would hold a thread more per reload for
// as long as the file system hangs. The second reload is refused as the
// first was, on its own wait (fileload.Wait on the test's clock), though
// the file is back in place: it read nothing. The third, which comes
// while the read still hangs, takes what that read brings once the FIFO
// is written to; and the fourth, after the read returned, reads the file
// afresh.
func TestHungFileReadOnceAcrossReloads(t *testing.T) {
	k := testkit.Keys(t)
	for _, tc := range []struct {
		setting string
		// inPlace is what the file holds but for the hung read, and
		// hungRead what that read brings: a key of kid k3 (k.RSA) and
		// one of kid k2 (k.RSA2).
		inPlace, hungRead []byte
	}{
		{"jwks_file", testkit.JWKS(t, testkit.JWK(t, "k3", k.RSA)), testkit.JWKS(t, testkit.JWK(t, "k2", k.RSA2))},
		{"public_key_file", testkit.PublicPEM(t, k.RSA), testkit.PublicPEM(t, k.RSA2)},
	} {
		t.Run(tc.setting, func(t *testing.T) {
			// Caddy's token clock too, which the reloads' waits advance:
			// the jwks_file's checks never fall due, the file being read
			// at loads only.
			clk := testkit.NewClock(time.Now().Truncate(time.Second))
			bearerNow, bearerAfterFunc = clk.Now, clk.AfterFunc
			t.Cleanup(func() { bearerNow, bearerAfterFunc = time.Now, nil })
			path := testkit.WriteFile(t, t.TempDir(), "keys", tc.inPlace)
			up := testkit.NewUpstream(t)
			config := authSite(fmt.Sprintf(`jwt {
			algorithms RS256
			%s %s
		}`, tc.setting, path), up.Addr())
			e := startEdge(t, "caddyfile", config)
			// holds checks that the running config verifies tokens with
			// key alone of the two: kid k3's signed by k.RSA, kid k2's
			// by k.RSA2.
			holds := func(key *rsa.PrivateKey, when string) {
				t.Helper()
				for _, c := range []struct {
					kid string
					key *rsa.PrivateKey
				}{{"k3", k.RSA}, {"k2", k.RSA2}} {
					want := http.StatusUnauthorized
					if c.key == key {
						want = http.StatusCreated
					}
					resp := e.sendWithAuth("", "Bearer "+testkit.Mint(t, jwt.SigningMethodRS256, c.key, c.kid, testkit.Claims(clk.Now(), nil)))
					if resp.Status != want {
						t.Fatalf("%s, kid %s: %d %s, want %d", when, c.kid, resp.Status, resp.Body, want)
					}
				}
			}
			holds(k.RSA, "at the start")
			hung := testkit.Hang(t, path)

			want := tc.setting + ": " + path + " not read within 10s"
			stop := clk.AdvanceWhenWaited(fileload.Wait)
			err := e.LoadRefused("caddyfile", config)
			stop()
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("the first reload: %v, want refused with %q", err, want)
			}
			// The refusal comes on the test's clock, which may be before
			// the read reaches open(2): the file is put back only once it
			// blocks there.
			hung.WaitBlocked()
			hung.Replace(tc.inPlace)
			stop = clk.AdvanceWhenWaited(fileload.Wait)
			err = e.LoadRefused("caddyfile", config)
			stop()
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("the second reload, the file back in place: %v, want refused with %q as it waits for the hung read", err, want)
			}

			// Released once the third reload waits for the read: the
			// FIFO then has one reader, the hung read, which takes all
			// that is written.
			stop = clk.WhenWaited(func() { hung.Release(tc.hungRead) })
			e.Load("caddyfile", config)
			stop()
			holds(k.RSA2, "after the reload that waited for the hung read")

			e.Load("caddyfile", config)
			holds(k.RSA, "after the reload that came after the hung read returned")
		})
	}
}
