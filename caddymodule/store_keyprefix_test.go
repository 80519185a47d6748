package caddymodule

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestRedisKeyPrefixPlaceholders: a key_prefix reads Caddy's global
// placeholders at startup, so that one config serves fleets apart on one
// Redis ({env.*}), and keeps braces that name none as written, so that a
// Redis Cluster hash tag survives.
func TestRedisKeyPrefixPlaceholders(t *testing.T) {
	t.Setenv("UCWA_TEST_FLEET", "fleet-a")
	srv := testkit.StartRedis(t)
	pool := testkit.NewPool(t, "primary", func(_ *testkit.Pool, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusCreated)
	})
	e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t),
		"store redis "+srv.URL()+" {\n\t\t\ttimeout 5s\n\t\t\tkey_prefix {env.UCWA_TEST_FLEET}:{edge}:\n\t\t}", "primary "+pool.Addr()))
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })

	if r := e.call(idemCall{header: idemToken(t, "tenant-1", "oid-a", "sub-a"), op: "prefix"}); r.Status != http.StatusCreated {
		t.Fatalf("call: %d %s", r.Status, r.Body)
	}
	keys, err := rdb.Keys(context.Background(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 {
		t.Fatal("redis holds no key")
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "fleet-a:{edge}:") {
			t.Errorf("key %q does not start with fleet-a:{edge}:", k)
		}
	}
}
