package caddymodule

import (
	"fmt"
	"net/http"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestReloadsReleaseResources: many reloads, each changing what a
// handler holds (a jwks_url fetcher's refresh, the store between memory
// and a Redis store of another timeout each time, a limit; the pools and
// their health checkers, the audit trail's log are each config's own),
// with a request through each config, and as many reloads
// refused at startup after all of that was set up (an invalid
// max_batch_parts, judged last), leave no goroutine behind once the
// first config runs again: each config's fetchers, stores, checks and
// pools are released when it is unloaded or refused.
func TestReloadsReleaseResources(t *testing.T) {
	k := testkit.Keys(t)
	t.Setenv("UCWA_TEST_JWT_SECRET", string(k.HMAC))
	idp := testkit.NewJWKSServer(t, testkit.JWKS(t, testkit.JWK(t, "k1", k.RSA)))
	dir := t.TempDir()
	jwksFile := testkit.WriteFile(t, dir, "keys.jwks", testkit.JWKS(t, testkit.JWK(t, "k2", k.RSA)))
	redisURL := testkit.StartRedis(t).URL()
	primary, backup := testkit.NewUpstream(t), testkit.NewUpstream(t)
	config := func(i int, extra string) string {
		store := "store memory"
		if i%2 == 1 {
			store = fmt.Sprintf("store redis %s {\n\t\t\ttimeout %dms\n\t\t}", redisURL, 5000+i)
		}
		return fmt.Sprintf(`{
	log default {
		exclude http.handlers.ucwa.audit
	}
	log ucwa_audit {
		include http.handlers.ucwa.audit
		output file %s
		format json
	}
}
:EDGE_PORT {
	ucwa {
		jwt {
			algorithms HS256 RS256
			hmac_secret {env.UCWA_TEST_JWT_SECRET}
			jwks_url %s/keys %dh
			jwks_file %s
			issuer https://issuer.example/
		}
		default_region US
		%s
		idempotency
		limit calls %d per 1h
		destinations {
			deny +1900
		}
		primary %s {
			health_uri /health
			health_interval 1h
		}
		backup %s
		%s
	}
}`, filepath.Join(dir, "audit.log"), idp.URL, 2+i, jwksFile, store, 1000+i, primary.Addr(), backup.Addr(), extra)
	}
	e := startEdge(t, "caddyfile", config(0, ""))
	auth := http.Header{"Authorization": {"Bearer " + testkit.Mint(t, jwt.SigningMethodHS256, k.HMAC, "",
		testkit.Claims(time.Now(), jwt.MapClaims{"scp": "Conversations.Initiate", "sub": "s", "tid": "t", "oid": "o"}))}}
	call := func(i int) {
		t.Helper()
		body := fmt.Sprintf(`{"to":"4255551234","operationId":"op-%d"}`, i)
		if resp := e.postJSON(startPath, body, auth); resp.Status != http.StatusCreated {
			t.Fatalf("config %d: %d %s, want 201", i, resp.Status, resp.Body)
		}
	}
	// Whatever the process starts once, on first use, runs before the
	// count is taken.
	call(0)
	e.Load("caddyfile", config(1, ""))
	call(1)
	e.Load("caddyfile", config(0, ""))
	call(2)
	e.Client().CloseIdleConnections()
	before := runtime.NumGoroutine()

	const reloads = 20
	for i := 3; i < 3+reloads; i++ {
		e.Load("caddyfile", config(i, ""))
		call(i)
		if err := e.LoadRefused("caddyfile", config(i+1, "max_batch_parts -1")); !strings.Contains(err.Error(), "max_batch_parts must be at least 1") {
			t.Fatalf("refused for another reason: %v", err)
		}
	}
	e.Load("caddyfile", config(0, ""))
	call(3 + reloads)
	e.Client().CloseIdleConnections()
	t.Cleanup(func() {
		if t.Failed() {
			var stacks strings.Builder
			_ = pprof.Lookup("goroutine").WriteTo(&stacks, 1)
			t.Logf("%d goroutines, %d before the reloads:\n%s", runtime.NumGoroutine(), before, stacks.String())
		}
	})
	testkit.Eventually(t, fmt.Sprintf("as few goroutines as before the reloads (%d)", before), func() bool {
		return runtime.NumGoroutine() <= before
	})
}
