package caddymodule

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestRedisCAFileChangedAcrossReload: a Redis store's tls ca file that
// does not hold the CA of Redis's certificate fails every store call,
// and a request is answered 503; once the file holds the right CA, a
// reload of the same config is delivered, where the store of the old
// config, which read the file when it opened and is shared by a config
// of the same settings, kept refusing the certificate until a restart.
// A reload whose ca file is gone is refused, as a start would be, and
// the running config goes on.
func TestRedisCAFileChangedAcrossReload(t *testing.T) {
	srv := testkit.StartRedisWith(t, testkit.RedisConfig{TLS: true})
	rightCA, err := os.ReadFile(srv.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ca := testkit.WriteFile(t, dir, "redis-ca.pem", testkit.CACertificatePEM(t)) // another CA
	pool := testkit.NewUpstream(t)
	config := limitCaddyfile(t, pool, "store redis "+srv.URL()+" {\n\t\t\ttimeout 5s\n\t\t\ttls {\n\t\t\t\tca "+ca+"\n\t\t\t}\n\t\t}", "idempotency")
	e := startEdge(t, "caddyfile", config)
	caller := idemToken(t, "tenant-1", "oid-a", "sub-a")
	call := func(op string) testkit.Response {
		t.Helper()
		return e.call(idemCall{header: caller, op: op})
	}
	if resp := call("wrong-ca"); resp.Status != http.StatusServiceUnavailable {
		t.Fatalf("with a CA file of another CA: %d %s, want 503", resp.Status, resp.Body)
	}

	if err := os.WriteFile(ca, rightCA, 0o644); err != nil {
		t.Fatal(err)
	}
	e.Load("caddyfile", config)
	if resp := call("right-ca"); resp.Status != http.StatusCreated {
		t.Fatalf("reloaded with the right CA in the file: %d %s, want 201", resp.Status, resp.Body)
	}

	if err := os.Rename(ca, filepath.Join(dir, "moved.pem")); err != nil {
		t.Fatal(err)
	}
	e.LoadRefused("caddyfile", config)
	if resp := call("after-refused"); resp.Status != http.StatusCreated {
		t.Fatalf("after a reload refused: %d %s, want 201", resp.Status, resp.Body)
	}
	if got := len(pool.Received()); got != 2 {
		t.Errorf("the pool got %d requests, want 2", got)
	}
}
