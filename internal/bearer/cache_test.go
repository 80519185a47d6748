package bearer

import (
	"cmp"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestTokenCacheJWKSURLRotation: a token seen again is served from the
// cache; once the identity provider's set drops its key, the very next
// check of that token refuses it, and the cache was emptied.
func TestTokenCacheJWKSURLRotation(t *testing.T) {
	k := testkit.Keys(t)
	idp := testkit.NewJWKSServer(t, testkit.JWKS(t, testkit.JWK(t, "k1", k.RSA)))
	v := newTester(t, &Config{Algorithms: []string{"RS256"}, JWKSURL: idp.URL + "/keys"})
	old := testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "k1", testkit.Claims(v.clock.Now(), nil))

	v.accept(t, old)
	v.accept(t, old)
	v.wantCache(t, 1, 1, 1)

	// k1 is revoked: the provider now publishes k2 only. A token signed
	// by k2 makes the verifier fetch the new set.
	idp.Serve(200, testkit.JWKS(t, testkit.JWK(t, "k2", k.RSA2)))
	v.clock.Advance(jwksMinRefetch)
	v.accept(t, testkit.Mint(t, jwt.SigningMethodRS256, k.RSA2, "k2", testkit.Claims(v.clock.Now(), nil)))
	v.refuse(t, old, "kid")
	v.wantCache(t, 0, 1, 3) // emptied; the refused token was not cached
	v.refuse(t, old, "kid")
	v.wantCache(t, 0, 1, 4)
}

// TestTokenCacheJWKSFile: when a changed jwks_file is re-read, a cached
// token whose key is gone is refused at its next check.
func TestTokenCacheJWKSFile(t *testing.T) {
	k := testkit.Keys(t)
	dir := t.TempDir()
	path := testkit.WriteFile(t, dir, "keys.json", testkit.JWKS(t, testkit.JWK(t, "k1", k.RSA)))
	v := newTester(t, &Config{Algorithms: []string{"RS256"}, JWKSFile: path})
	token := testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "k1", testkit.Claims(v.clock.Now(), nil))

	v.accept(t, token)
	v.accept(t, token)
	v.wantCache(t, 1, 1, 1)

	testkit.WriteFile(t, dir, "keys.json", testkit.JWKS(t, testkit.JWK(t, "k2", k.RSA2)))
	mtime := v.clock.Now().Add(time.Hour)
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	v.clock.Advance(jwksFileCheckInterval)
	v.refuse(t, token, "kid")
	v.wantCache(t, 0, 1, 2)
}

// TestTokenCacheJWKSFileSameKeys: a jwks_file rewritten with the same
// keys (a touch, a deployment) keeps the cache.
func TestTokenCacheJWKSFileSameKeys(t *testing.T) {
	k := testkit.Keys(t)
	dir := t.TempDir()
	set := testkit.JWKS(t, testkit.JWK(t, "k1", k.RSA))
	path := testkit.WriteFile(t, dir, "keys.json", set)
	v := newTester(t, &Config{Algorithms: []string{"RS256"}, JWKSFile: path})
	token := testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "k1", testkit.Claims(v.clock.Now(), nil))
	v.accept(t, token)
	testkit.WriteFile(t, dir, "keys.json", set)
	mtime := v.clock.Now().Add(time.Hour)
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	v.clock.Advance(jwksFileCheckInterval)
	v.accept(t, token)
	v.wantCache(t, 1, 1, 1)
}

// TestTokenCacheExpiry: a cached token is served until its exp plus the
// leeway, and refused from that instant on, as an uncached one is.
func TestTokenCacheExpiry(t *testing.T) {
	k := testkit.Keys(t)
	for _, tc := range []struct {
		name   string
		set    *caddy.Duration
		leeway time.Duration
	}{
		{"leeway unset", nil, DefaultLeeway},
		{"leeway 0", new(caddy.Duration(0)), 0},
		{"leeway 30s", new(caddy.Duration(30 * time.Second)), 30 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			leeway := tc.leeway
			v := newTester(t, &Config{Algorithms: []string{"RS256"}, Leeway: tc.set,
				PublicKeyFiles: []string{testkit.WriteFile(t, dir, "rsa.pem", testkit.PublicPEM(t, k.RSA))}})
			claims := testkit.Claims(v.clock.Now(), nil)
			token := testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "", claims)
			exp := time.Unix(claims["exp"].(int64), 0)

			v.accept(t, token)
			v.clock.Advance(exp.Add(leeway - time.Second).Sub(v.clock.Now()))
			v.accept(t, token)
			v.wantCache(t, 1, 1, 1)
			v.clock.Advance(time.Second)
			v.refuse(t, token, "expired")
			v.wantCache(t, 0, 1, 2) // the expired entry was dropped, the token verified in full and refused
		})
	}
}

// TestTokenCacheBound: many distinct tokens never grow the cache past
// cache_size, and a cached token is still served.
func TestTokenCacheBound(t *testing.T) {
	k := testkit.Keys(t)
	t.Setenv("UCWA_TEST_JWT_SECRET", string(k.HMAC))
	v := newTester(t, &Config{Algorithms: []string{"HS256"}, HMACSecret: "{env.UCWA_TEST_JWT_SECRET}", CacheSize: 50})
	const distinct = 200
	var last string
	for i := range distinct {
		last = testkit.Mint(t, jwt.SigningMethodHS256, k.HMAC, "", testkit.Claims(v.clock.Now(), jwt.MapClaims{"sub": "user-" + strconv.Itoa(i)}))
		v.accept(t, last)
		if i%50 == 49 {
			if got := testkit.MetricValue(t, testkit.Exposition(t, v.metrics), "caddy_ucwa_token_cache_entries"); got > 50 {
				t.Fatalf("after %d tokens the cache holds %v, more than cache_size 50", i+1, got)
			}
		}
	}
	v.wantCache(t, 50, 0, distinct) // full, not past its bound
	v.accept(t, last)
	v.wantCache(t, 50, 1, distinct)
}

// TestTokenCacheOff: cache_size -1 verifies every token in full and
// keeps no cache (nor its metrics).
func TestTokenCacheOff(t *testing.T) {
	k := testkit.Keys(t)
	v := newTester(t, &Config{Algorithms: []string{"RS256"}, CacheSize: -1,
		PublicKeyFiles: []string{testkit.WriteFile(t, t.TempDir(), "rsa.pem", testkit.PublicPEM(t, k.RSA))}})
	token := testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "", testkit.Claims(v.clock.Now(), nil))
	v.accept(t, token)
	v.accept(t, token)
	v.wantCache(t, -1, -1, -1)
}

// TestTokenCacheSharedKey: an entry is served only for its own token.
// Another token whose key is the entry's (two tokens may share one) is a
// miss, and the entry stays its token's.
func TestTokenCacheSharedKey(t *testing.T) {
	m, err := newCacheMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	c := newTokenCache[string](16, func() time.Time { return now }, m)
	const cached, other = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJiIn0.c2ln"
	k := c.key(cached)
	c.put(k, &cacheEntry[string]{token: cached, expires: now.Add(time.Hour), grant: "a"})
	for _, tc := range []struct {
		token, want string
	}{
		{other, ""}, // the same key, another token
		{cached[:len(cached)-1], ""},
		{cached, "a"},
		{other, ""},
	} {
		got := "(miss)"
		if e := c.get(k, tc.token, keyEpoch{}); e != nil {
			got = e.grant
		}
		if want := cmp.Or(tc.want, "(miss)"); got != want {
			t.Errorf("get(%q) = %s, want %s", tc.token, got, want)
		}
	}
}
