package caddymodule

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// metricValue reads one sample of the admin /metrics endpoint, such as
// `caddy_ucwa_token_cache_lookups_total{result="hit"}`; -1 when absent.
func metricValue(t *testing.T, sample string) float64 {
	t.Helper()
	scanner := bufio.NewScanner(strings.NewReader(adminMetrics(t)))
	for scanner.Scan() {
		if value, ok := strings.CutPrefix(scanner.Text(), sample+" "); ok {
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", sample, err)
			}
			return v
		}
	}
	return -1
}

const (
	cacheEntries = "caddy_ucwa_token_cache_entries"
	cacheHits    = `caddy_ucwa_token_cache_lookups_total{result="hit"}`
	cacheMisses  = `caddy_ucwa_token_cache_lookups_total{result="miss"}`
)

// wantCache checks the cache's metrics: entries, hits and misses so far.
func wantCache(t *testing.T, entries, hits, misses float64) {
	t.Helper()
	for _, m := range []struct {
		sample string
		want   float64
	}{{cacheEntries, entries}, {cacheHits, hits}, {cacheMisses, misses}} {
		if got := metricValue(t, m.sample); got != m.want {
			t.Errorf("%s = %v, want %v", m.sample, got, m.want)
		}
	}
}

// TestTokenCacheJWKSURLRotation: a token seen again is served from the
// cache; once the identity provider's set drops its key, the very next
// request with that token is refused, and the cache was emptied.
func TestTokenCacheJWKSURLRotation(t *testing.T) {
	k := getKeys(t)
	clk := setClock(t)
	idp := newJWKSServer(t, jwksJSON(t, jwkOf(t, "k1", k.rsa)))
	up := newUpstream(t)
	startCaddy(t, authSite(fmt.Sprintf(`jwt {
			algorithms RS256
			jwks_url %s/keys
		}`, idp.URL), up.hostport(), filepath.Join(t.TempDir(), "caddy.log")), "caddyfile")
	client := &http.Client{}
	old := mint(t, jwt.SigningMethodRS256, k.rsa, "k1", claimsAt(clk.Now(), nil))

	expect(t, client, old, 201, "")
	expect(t, client, old, 201, "")
	wantCache(t, 1, 1, 1)

	// k1 is revoked: the provider now publishes k2 only. A token signed
	// by k2 makes the edge fetch the new set.
	idp.serve(200, jwksJSON(t, jwkOf(t, "k2", k.rsa2)))
	clk.Advance(jwksMinRefetch)
	expect(t, client, mint(t, jwt.SigningMethodRS256, k.rsa2, "k2", claimsAt(clk.Now(), nil)), 201, "")
	expect(t, client, old, 401, "kid")
	wantCache(t, 0, 1, 3) // emptied; the refused token was not cached
	expect(t, client, old, 401, "kid")
	wantCache(t, 0, 1, 4)
	if len(up.received()) != 3 {
		t.Fatalf("the pool got %d requests, want 3", len(up.received()))
	}
}

// TestTokenCacheJWKSFile: when a changed jwks_file is re-read, a cached
// token whose key is gone is refused on the next request.
func TestTokenCacheJWKSFile(t *testing.T) {
	k := getKeys(t)
	clk := setClock(t)
	dir := t.TempDir()
	path := writeFile(t, dir, "keys.json", jwksJSON(t, jwkOf(t, "k1", k.rsa)))
	startCaddy(t, authSite(fmt.Sprintf(`jwt {
			algorithms RS256
			jwks_file %s
		}`, path), newUpstream(t).hostport(), filepath.Join(dir, "caddy.log")), "caddyfile")
	client := &http.Client{}
	token := mint(t, jwt.SigningMethodRS256, k.rsa, "k1", claimsAt(clk.Now(), nil))

	expect(t, client, token, 201, "")
	expect(t, client, token, 201, "")
	wantCache(t, 1, 1, 1)

	writeFile(t, dir, "keys.json", jwksJSON(t, jwkOf(t, "k2", k.rsa2)))
	mtime := clk.Now().Add(time.Hour)
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	clk.Advance(jwksFileCheckInterval)
	expect(t, client, token, 401, "kid")
	wantCache(t, 0, 1, 2)
}

// TestTokenCacheExpiry: a cached token is served until its exp plus the
// leeway, and refused from that instant on, as an uncached one is.
func TestTokenCacheExpiry(t *testing.T) {
	k := getKeys(t)
	for _, leeway := range []time.Duration{0, 30 * time.Second} {
		t.Run("leeway "+leeway.String(), func(t *testing.T) {
			clk := setClock(t)
			dir := t.TempDir()
			startCaddy(t, authSite(fmt.Sprintf(`jwt {
					algorithms RS256
					public_key_file %s
					leeway %s
				}`, writeFile(t, dir, "rsa.pem", publicPEM(t, k.rsa)), leeway), newUpstream(t).hostport(), filepath.Join(dir, "caddy.log")), "caddyfile")
			client := &http.Client{}
			claims := claimsAt(clk.Now(), nil)
			token := mint(t, jwt.SigningMethodRS256, k.rsa, "", claims)
			exp := time.Unix(claims["exp"].(int64), 0)

			expect(t, client, token, 201, "")
			clk.Advance(exp.Add(leeway - time.Second).Sub(clk.Now()))
			expect(t, client, token, 201, "")
			wantCache(t, 1, 1, 1)
			clk.Advance(time.Second)
			expect(t, client, token, 401, "expired")
			wantCache(t, 0, 1, 2) // the expired entry was dropped, the token verified in full and refused
		})
	}
}

// TestTokenCacheBound: many distinct tokens never grow the cache past
// cache_size, and a cached token is still served. Loaded from JSON; the
// tokens are HS256 so that minting them is cheap.
func TestTokenCacheBound(t *testing.T) {
	k := getKeys(t)
	now := setClock(t).Now()
	t.Setenv("UCWA_TEST_JWT_SECRET", string(k.hmac))
	startCaddy(t, fmt.Sprintf(`{
	"admin": {"listen": "localhost:ADMIN_PORT"},
	"apps": {"http": {"http_port": EDGE_PORT, "servers": {"edge": {
		"listen": [":EDGE_PORT"],
		"routes": [{"handle": [
			{"handler": "ucwa", "default_region": "US",
			 "jwt": {"algorithms": ["HS256"], "hmac_secret": "{env.UCWA_TEST_JWT_SECRET}", "cache_size": 50}},
			{"handler": "reverse_proxy", "upstreams": [{"dial": %q}]}
		]}]
	}}}}
}`, newUpstream(t).hostport()), "json")
	client := &http.Client{}
	const distinct = 200
	var last string
	for i := range distinct {
		last = mint(t, jwt.SigningMethodHS256, k.hmac, "", claimsAt(now, jwt.MapClaims{"sub": "user-" + strconv.Itoa(i)}))
		expect(t, client, last, 201, "")
		if i%50 == 49 {
			if got := metricValue(t, cacheEntries); got > 50 {
				t.Fatalf("after %d tokens the cache holds %v, more than cache_size 50", i+1, got)
			}
		}
	}
	wantCache(t, 50, 0, distinct) // full, not past its bound
	expect(t, client, last, 201, "")
	wantCache(t, 50, 1, distinct)
}

// TestTokenCacheOff: cache_size -1 verifies every token in full and
// keeps no cache (nor its metrics).
func TestTokenCacheOff(t *testing.T) {
	k := getKeys(t)
	now := setClock(t).Now()
	dir := t.TempDir()
	startCaddy(t, authSite(fmt.Sprintf(`jwt {
			algorithms RS256
			public_key_file %s
			cache_size -1
		}`, writeFile(t, dir, "rsa.pem", publicPEM(t, k.rsa))), newUpstream(t).hostport(), filepath.Join(dir, "caddy.log")), "caddyfile")
	client := &http.Client{}
	token := mint(t, jwt.SigningMethodRS256, k.rsa, "", claimsAt(now, nil))
	expect(t, client, token, 201, "")
	expect(t, client, token, 201, "")
	wantCache(t, -1, -1, -1)
}
