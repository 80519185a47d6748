package caddymodule

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// expect sends one token and checks the status and message.
func expect(t *testing.T, client *http.Client, token string, status int, message string) {
	t.Helper()
	resp, body := sendWithAuth(t, client, "", "Bearer "+token)
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, body)
	}
	if message != "" {
		if _, got := ucwaError(t, body); !strings.Contains(got, message) {
			t.Fatalf("message %q, want %q", got, message)
		}
	}
}

// TestJWKSURLRotation: keys come from a loopback identity provider; a new
// kid is fetched (once a minute at most), a removed kid stops working,
// and the last good set keeps serving while the provider fails.
func TestJWKSURLRotation(t *testing.T) {
	k := getKeys(t)
	clk := setClock(t)
	idp := newJWKSServer(t, jwksJSON(t, jwkOf(t, "k1", k.rsa)))
	up := newUpstream(t)
	config := func(scopes string) string {
		return authSite(fmt.Sprintf(`jwt {
			algorithms RS256 ES256
			jwks_url %s/keys 2h
		}
		scopes %s`, idp.URL, scopes), up.hostport(), filepath.Join(t.TempDir(), "caddy.log"))
	}
	startCaddy(t, config("Conversations.Initiate"), "caddyfile")
	client := &http.Client{}
	token := func(kid string, key any, method jwt.SigningMethod) string {
		return mint(t, method, key, kid, claimsAt(clk.Now(), nil))
	}
	hits := func(want int64) {
		t.Helper()
		if got := idp.hits.Load(); got != want {
			t.Fatalf("the identity provider was asked %d times, want %d", got, want)
		}
	}

	hits(1) // at startup
	expect(t, client, token("k1", k.rsa, jwt.SigningMethodRS256), 201, "")
	expect(t, client, token("", k.rsa, jwt.SigningMethodRS256), 201, "") // no kid: any key of the family
	hits(1)

	// Rotation: k2 (EC) appears, k1 disappears.
	idp.serve(200, jwksJSON(t, jwkOf(t, "k2", k.ec)))
	expect(t, client, token("k2", k.ec, jwt.SigningMethodES256), 401, "kid") // within a minute of the last fetch: no refetch
	hits(1)
	clk.Advance(jwksMinRefetch)
	expect(t, client, token("k2", k.ec, jwt.SigningMethodES256), 201, "") // refetched
	hits(2)
	expect(t, client, token("k1", k.rsa, jwt.SigningMethodRS256), 401, "kid") // gone; rate limit holds
	expect(t, client, token("k2", k.rsa, jwt.SigningMethodRS256), 401, "")    // k2 is EC: never verifies RS256
	hits(2)

	// The provider fails: the last good set keeps serving.
	idp.serve(500, []byte("down"))
	clk.Advance(jwksMinRefetch)
	expect(t, client, token("k3", k.rsa, jwt.SigningMethodRS256), 401, "kid")
	hits(3)
	expect(t, client, token("k2", k.ec, jwt.SigningMethodES256), 201, "")
	idp.serve(200, []byte(`{"keys": [{"kty": "RSA", "kid": "weak", "n": "AQAB", "e": "AQAB"}]}`))
	clk.Advance(jwksMinRefetch)
	expect(t, client, token("k4", k.rsa, jwt.SigningMethodRS256), 401, "kid") // a set with no usable key is not taken
	hits(4)
	expect(t, client, token("k2", k.ec, jwt.SigningMethodES256), 201, "")

	// A config reload while the provider is down keeps the last good set
	// and fetches nothing: the new config shares the fetcher.
	idp.serve(500, []byte("down"))
	startCaddy(t, config("Conversations.Receive Conversations.Initiate"), "caddyfile")
	expect(t, client, token("k2", k.ec, jwt.SigningMethodES256), 201, "")
	hits(4)

	// Once no config names the URL, its fetcher is stopped and dropped.
	key := jwksPoolKey{idp.URL + "/keys", 2 * time.Hour}
	if refs, ok := jwksPool.References(key); !ok || refs != 1 {
		t.Fatalf("fetcher references %d (%v), want 1", refs, ok)
	}
	startCaddy(t, authSite("jwt off", up.hostport(), filepath.Join(t.TempDir(), "caddy.log")), "caddyfile")
	if _, ok := jwksPool.References(key); ok {
		t.Fatal("the fetcher outlived every config that used it")
	}
}

// TestJWKSUnknownKidFlood: many concurrent requests, each with a new
// random kid, while the identity provider hangs: every request is
// answered, the provider is asked once, and no goroutine is left behind.
func TestJWKSUnknownKidFlood(t *testing.T) {
	k := getKeys(t)
	clk := setClock(t)
	idp := newJWKSServer(t, jwksJSON(t, jwkOf(t, "k1", k.rsa)))
	up := newUpstream(t)
	startCaddy(t, authSite(fmt.Sprintf(`jwt {
			algorithms RS256
			jwks_url %s/keys
		}`, idp.URL), up.hostport(), filepath.Join(t.TempDir(), "caddy.log")), "caddyfile")
	transport := &http.Transport{}
	client := &http.Client{Transport: transport}
	expect(t, client, mint(t, jwt.SigningMethodRS256, k.rsa, "k1", claimsAt(clk.Now(), nil)), 201, "")
	transport.CloseIdleConnections()
	baseline := settledGoroutines(t, 0)

	const flood = 200
	tokens := make([]string, flood)
	for i := range tokens {
		kid := make([]byte, 12)
		rand.Read(kid)
		tokens[i] = mint(t, jwt.SigningMethodRS256, k.rsa, base64.RawURLEncoding.EncodeToString(kid), claimsAt(clk.Now(), nil))
	}
	stall := make(chan struct{})
	idp.setStall(stall) // the refetch hangs until the flood is over
	clk.Advance(jwksMinRefetch)
	before := idp.hits.Load()
	var wg sync.WaitGroup
	statuses := make([]int, flood)
	for i := range tokens {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, edgeURL(startPath), strings.NewReader(`{"to":"4255551234"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+tokens[i])
			resp, err := client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		})
	}
	wg.Wait() // returns although the provider still hangs: the wait is bounded
	close(stall)
	for i, s := range statuses {
		if s != http.StatusUnauthorized {
			t.Fatalf("request %d: status %d, want 401", i, s)
		}
	}
	if got := idp.hits.Load() - before; got != 1 {
		t.Fatalf("the identity provider was asked %d times during the flood, want 1", got)
	}
	transport.CloseIdleConnections()
	after := settledGoroutines(t, baseline)
	t.Logf("goroutines: %d before the flood, %d after", baseline, after)
	if after > baseline {
		t.Fatalf("%d goroutines after the flood, %d before", after, baseline)
	}
	// The key that was there all along still works.
	expect(t, client, mint(t, jwt.SigningMethodRS256, k.rsa, "k1", claimsAt(clk.Now(), nil)), 201, "")
}

// settledGoroutines waits until the goroutine count is at most target (or,
// with target 0, stops changing) and returns it. Closing connections ends
// their goroutines asynchronously; the wait is bounded, not measured.
func settledGoroutines(t *testing.T, target int) int {
	t.Helper()
	last := -1
	for range 200 {
		n := runtime.NumGoroutine()
		if (target > 0 && n <= target) || (target == 0 && n == last) {
			return n
		}
		last = n
		time.Sleep(25 * time.Millisecond)
	}
	return runtime.NumGoroutine()
}

// TestJWKSFileReload: a changed jwks_file is picked up once the check
// interval has passed; a broken rewrite keeps the previous keys.
func TestJWKSFileReload(t *testing.T) {
	k := getKeys(t)
	clk := setClock(t)
	dir := t.TempDir()
	path := writeFile(t, dir, "keys.json", jwksJSON(t, jwkOf(t, "k1", k.rsa), jwkOf(t, "ed1", k.ed)))
	up := newUpstream(t)
	startCaddy(t, authSite(fmt.Sprintf(`jwt {
			algorithms RS256 EdDSA
			jwks_file %s
		}`, path), up.hostport(), filepath.Join(dir, "caddy.log")), "caddyfile")
	client := &http.Client{}
	token := func(kid string, key any, method jwt.SigningMethod) string {
		return mint(t, method, key, kid, claimsAt(clk.Now(), nil))
	}
	rewrite := func(data []byte) {
		t.Helper()
		writeFile(t, dir, "keys.json", data)
		// a distinct modification time, whatever the file system's granularity
		mtime := clk.Now().Add(time.Hour)
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}

	expect(t, client, token("k1", k.rsa, jwt.SigningMethodRS256), 201, "")
	expect(t, client, token("ed1", k.ed, jwt.SigningMethodEdDSA), 201, "")

	rewrite(jwksJSON(t, jwkOf(t, "k2", k.rsa2)))
	expect(t, client, token("k1", k.rsa, jwt.SigningMethodRS256), 201, "") // not looked at yet
	clk.Advance(jwksFileCheckInterval)
	expect(t, client, token("k2", k.rsa2, jwt.SigningMethodRS256), 201, "")
	expect(t, client, token("k1", k.rsa, jwt.SigningMethodRS256), 401, "kid")
	expect(t, client, token("ed1", k.ed, jwt.SigningMethodEdDSA), 401, "kid")

	rewrite([]byte(`{"keys": [`))
	clk.Advance(jwksFileCheckInterval)
	expect(t, client, token("k2", k.rsa2, jwt.SigningMethodRS256), 201, "")
}

func TestParseJWKS(t *testing.T) {
	k := getKeys(t)
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	offCurve := jwkOf(t, "ec", k.ec)
	offCurve["y"] = offCurve["x"]
	wrongAlg := jwkOf(t, "rsa", k.rsa)
	wrongAlg["alg"] = "none"
	enc := jwkOf(t, "enc", k.rsa)
	enc["use"] = "enc"
	pinned := jwkOf(t, "pinned", k.rsa)
	pinned["alg"] = "PS256"
	for _, tc := range []struct {
		name string
		set  []byte
		ids  string // ids of the keys taken, or the error
	}{
		{"all families", jwksJSON(t, jwkOf(t, "r", k.rsa), jwkOf(t, "e", k.ec), jwkOf(t, "e384", k.ec384), jwkOf(t, "d", k.ed)), "r e e384 d"},
		{"encryption key skipped", jwksJSON(t, enc, jwkOf(t, "r", k.rsa)), "r"},
		{"weak RSA skipped", jwksJSON(t, jwkOf(t, "weak", weak), jwkOf(t, "r", k.rsa)), "r"},
		{"point off the curve skipped", jwksJSON(t, offCurve, jwkOf(t, "d", k.ed)), "d"},
		{"alg none skipped", jwksJSON(t, wrongAlg, jwkOf(t, "d", k.ed)), "d"},
		{"oct key skipped", []byte(`{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}]}`), "error: no usable signature key"},
		{"empty set", []byte(`{"keys":[]}`), "error: no usable signature key"},
		{"not JSON", []byte(`<keys/>`), "error: not a JWK Set"},
		{"pinned alg kept", jwksJSON(t, pinned), "pinned"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := parseJWKS(tc.set)
			var got string
			if err != nil {
				got = "error: " + err.Error()
			} else {
				ids := make([]string, len(keys))
				for i, key := range keys {
					ids[i] = key.id
				}
				got = strings.Join(ids, " ")
			}
			if !strings.HasPrefix(got, tc.ids) {
				t.Fatalf("got %q, want %q", got, tc.ids)
			}
		})
	}
	// A pinned alg restricts the key to it, even within its family.
	keys, _ := parseJWKS(jwksJSON(t, pinned))
	if keys[0].fits("RS256", "pinned") || !keys[0].fits("PS256", "pinned") {
		t.Fatal("a key pinned to PS256 must verify PS256 only")
	}
}

func TestCacheMaxAge(t *testing.T) {
	for _, tc := range []struct {
		values []string
		want   time.Duration
	}{
		{nil, -1},
		{[]string{"public, max-age=3600"}, time.Hour},
		{[]string{"max-age=86400, private"}, 24 * time.Hour},
		{[]string{"private", "max-age=60"}, time.Minute},
		{[]string{"no-cache"}, 0},
		{[]string{"max-age=600, no-store"}, 0},
		{[]string{"max-age=-5"}, -1},
		{[]string{"max-age=soon"}, -1},
		{[]string{"max-age=99999999999999"}, 365 * 24 * time.Hour},
	} {
		h := http.Header{"Cache-Control": tc.values}
		if got := cacheMaxAge(h); got != tc.want {
			t.Errorf("%q: %v, want %v", tc.values, got, tc.want)
		}
	}
}
