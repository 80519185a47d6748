package bearer

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestJWKSURLRotation: keys come from a loopback identity provider; a new
// kid is fetched (once a minute at most), a removed kid stops working,
// and the last good set keeps serving while the provider fails.
func TestJWKSURLRotation(t *testing.T) {
	k := testkit.Keys(t)
	idp := testkit.NewJWKSServer(t, testkit.JWKS(t, testkit.JWK(t, "k1", k.RSA)))
	v := newTester(t, &Config{Algorithms: []string{"RS256", "ES256"}, JWKSURL: idp.URL + "/keys", JWKSRefresh: caddy.Duration(2 * time.Hour)})
	token := func(kid string, key any, method jwt.SigningMethod) string {
		return testkit.Mint(t, method, key, kid, testkit.Claims(v.clock.Now(), nil))
	}
	hits := func(want int64) {
		t.Helper()
		if got := idp.Hits.Load(); got != want {
			t.Fatalf("the identity provider was asked %d times, want %d", got, want)
		}
	}

	hits(1) // at startup
	v.accept(t, token("k1", k.RSA, jwt.SigningMethodRS256))
	v.accept(t, token("", k.RSA, jwt.SigningMethodRS256)) // no kid: the set's one key of its alg
	hits(1)

	// Rotation: k2 (EC) appears, k1 disappears.
	idp.Serve(200, testkit.JWKS(t, testkit.JWK(t, "k2", k.EC)))
	v.refuse(t, token("k2", k.EC, jwt.SigningMethodES256), "kid") // within a minute of the last fetch: no refetch
	hits(1)
	v.clock.Advance(jwksMinRefetch)
	v.accept(t, token("k2", k.EC, jwt.SigningMethodES256)) // refetched
	hits(2)
	v.refuse(t, token("k1", k.RSA, jwt.SigningMethodRS256), "kid") // gone; the rate limit holds
	v.refuse(t, token("k2", k.RSA, jwt.SigningMethodRS256), "")    // k2 is EC: never verifies RS256
	hits(2)

	// The provider fails: the last good set keeps serving.
	idp.Serve(500, []byte("down"))
	v.clock.Advance(jwksMinRefetch)
	v.refuse(t, token("k3", k.RSA, jwt.SigningMethodRS256), "kid")
	hits(3)
	v.accept(t, token("k2", k.EC, jwt.SigningMethodES256))
	idp.Serve(200, []byte(`{"keys": [{"kty": "RSA", "kid": "weak", "n": "AQAB", "e": "AQAB"}]}`))
	v.clock.Advance(jwksMinRefetch)
	v.refuse(t, token("k4", k.RSA, jwt.SigningMethodRS256), "kid") // a set with no usable key is not taken
	hits(4)
	v.accept(t, token("k2", k.EC, jwt.SigningMethodES256))
	// Nor is one whose keys are pinned to an algorithm they cannot
	// verify: ES256 on a P-384 key, ES256 on an RSA key.
	p384, rsaES := testkit.JWK(t, "k5", k.EC384), testkit.JWK(t, "k6", k.RSA)
	p384["alg"], rsaES["alg"] = "ES256", "ES256"
	idp.Serve(200, testkit.JWKS(t, p384, rsaES))
	v.clock.Advance(jwksMinRefetch)
	v.refuse(t, token("k5", k.EC, jwt.SigningMethodES256), "kid")
	hits(5)
	v.accept(t, token("k2", k.EC, jwt.SigningMethodES256))
}

// TestJWKSURLDownAtStartup: a provider that fails the first fetch does
// not stop startup; the error says that there is no key set at all (every
// token its keys sign is refused), not that a last good one serves, and
// when it fetches again; the first fetch that succeeds brings the keys.
func TestJWKSURLDownAtStartup(t *testing.T) {
	k := testkit.Keys(t)
	idp := testkit.NewJWKSServer(t, testkit.JWKS(t, testkit.JWK(t, "k1", k.RSA)))
	idp.Serve(500, []byte("down"))
	core, logs := observer.New(zap.InfoLevel)
	clk := testkit.NewClock(time.Now().Truncate(time.Second))
	v, err := New(&Config{Algorithms: []string{"RS256"}, JWKSURL: idp.URL + "/keys", JWKSRefresh: caddy.Duration(2 * time.Hour)},
		func(c Claims) Claims { return c }, Options{Now: clk.Now, UnknownKidWait: time.Minute,
			FetcherLogger: func() *zap.Logger { return zap.New(core) }})
	if err != nil {
		t.Fatalf("a provider down at startup stopped it: %v", err)
	}
	t.Cleanup(func() { _ = v.Close() })
	failed := logs.FilterMessageSnippet("jwks_url fetch failed").All()
	if len(failed) != 1 || !strings.Contains(failed[0].Message, "no key set was ever fetched") ||
		strings.Contains(failed[0].Message, "last good") || failed[0].ContextMap()["retry_in"] != jwksMinRefetch {
		t.Fatalf("the failed first fetch was logged as %+v, want one line saying there is no key set and when it fetches again", failed)
	}
	// With a kid or without, the client is told that the edge has no
	// keys yet, not that its kid or algorithm is unknown.
	for _, kid := range []string{"k1", ""} {
		token := testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, kid, testkit.Claims(clk.Now(), nil))
		_, err := v.Verify(context.Background(), token)
		var refused *Error
		if !errors.As(err, &refused) || !strings.Contains(refused.Message, "not yet fetched the identity provider's keys") {
			t.Fatalf("a token (kid %q) with no key set: %v, want it refused for want of keys", kid, err)
		}
	}
	idp.Serve(200, testkit.JWKS(t, testkit.JWK(t, "k1", k.RSA)))
	clk.Advance(jwksMinRefetch)
	if _, err := v.Verify(context.Background(), testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "k1", testkit.Claims(clk.Now(), nil))); err != nil {
		t.Fatalf("refused once the provider answered: %v", err)
	}
	if again := logs.FilterMessageSnippet("jwks_url fetched again").All(); len(again) != 1 || again[0].Level != zap.InfoLevel {
		t.Fatalf("the first fetch after the failure was logged as %+v, want one info line", again)
	}
	// Down again: now the last good set serves, and the line says so.
	idp.Serve(500, []byte("down"))
	clk.Advance(jwksMinRefetch)
	_, _ = v.Verify(context.Background(), testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "k2", testkit.Claims(clk.Now(), nil)))
	if n := logs.FilterMessageSnippet("keeping the last good key set").Len(); n != 1 {
		t.Fatalf("%d lines say the last good set serves, want 1: %+v", n, logs.All())
	}
}

// TestUnverifiableAlgorithmWarned: startup warns, naming them, of the
// algorithms that no key loaded at startup verifies: a JWK Set counts for
// every asymmetric algorithm, so an EC set under RS256 starts, and every
// RS256 token would be refused with nothing in the log but each 401's
// cause. A set that has such a key, or a public_key_file, warns of
// nothing, and a jwks_url whose first fetch failed says that instead.
func TestUnverifiableAlgorithmWarned(t *testing.T) {
	k := testkit.Keys(t)
	dir := t.TempDir()
	ecSet := testkit.JWKS(t, testkit.JWK(t, "e", k.EC))
	pinned := testkit.JWK(t, "pinned", k.RSA)
	pinned["alg"] = "PS256"
	ecFile := testkit.WriteFile(t, dir, "ec.json", ecSet)
	rsaFile := testkit.WriteFile(t, dir, "rsa.json", testkit.JWKS(t, testkit.JWK(t, "r", k.RSA)))
	pinnedFile := testkit.WriteFile(t, dir, "pinned.json", testkit.JWKS(t, pinned))
	rsaPEM := testkit.WriteFile(t, dir, "rsa.pem", testkit.PublicPEM(t, k.RSA))
	ecIdP := testkit.NewJWKSServer(t, ecSet)
	downIdP := testkit.NewJWKSServer(t, ecSet)
	downIdP.Serve(500, []byte("down"))
	for _, tc := range []struct {
		name string
		c    Config
		want string // the algorithms warned of, "" for no warning
	}{
		{"EC jwks_file under RS256", Config{Algorithms: []string{"RS256", "ES256"}, JWKSFile: ecFile}, "RS256"},
		{"RSA jwks_file", Config{Algorithms: []string{"RS256"}, JWKSFile: rsaFile}, ""},
		{"key pinned to another algorithm", Config{Algorithms: []string{"RS256", "PS256"}, JWKSFile: pinnedFile}, "RS256"},
		{"public_key_file beside the set", Config{Algorithms: []string{"RS256", "ES256"}, JWKSFile: ecFile, PublicKeyFiles: []string{rsaPEM}}, ""},
		{"EC jwks_url under RS256", Config{Algorithms: []string{"RS256"}, JWKSURL: ecIdP.URL + "/keys", Issuers: []string{"i"}}, "RS256"},
		{"jwks_url down", Config{Algorithms: []string{"RS256"}, JWKSURL: downIdP.URL + "/other", Issuers: []string{"i"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			core, logs := observer.New(zap.WarnLevel)
			v, err := New(&tc.c, func(c Claims) Claims { return c }, Options{Logger: zap.New(core),
				FetcherLogger: func() *zap.Logger { return zap.New(core) }})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = v.Close() })
			warned := logs.FilterMessageSnippet("verifies these algorithms").All()
			switch {
			case tc.want == "" && len(warned) != 0:
				t.Fatalf("warned of %v", warned[0].ContextMap())
			case tc.want != "" && (len(warned) != 1 || fmt.Sprint(warned[0].ContextMap()["algorithms"]) != "["+tc.want+"]"):
				t.Fatalf("warnings %+v, want one naming %s", warned, tc.want)
			}
		})
	}
}

// TestJWKSURLShared: verifiers naming the same URL and refresh (the
// handlers of a config, or of the config that replaces it) share one
// fetcher and its last good set; the last one to close stops it.
func TestJWKSURLShared(t *testing.T) {
	k := testkit.Keys(t)
	idp := testkit.NewJWKSServer(t, testkit.JWKS(t, testkit.JWK(t, "k1", k.RSA)))
	config := &Config{Algorithms: []string{"RS256"}, JWKSURL: idp.URL + "/keys"}
	first := newTester(t, config)
	idp.Serve(500, []byte("down"))
	second := newTester(t, config) // while the provider is down
	second.accept(t, testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "k1", testkit.Claims(second.clock.Now(), nil)))
	if got := idp.Hits.Load(); got != 1 {
		t.Fatalf("the identity provider was asked %d times, want 1: the second verifier shares the fetcher", got)
	}
	key := jwksPoolKey{idp.URL + "/keys", DefaultJWKSRefresh}
	if refs, ok := jwksPool.References(key); !ok || refs != 2 {
		t.Fatalf("fetcher references %d (%v), want 2", refs, ok)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second.accept(t, testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "k1", testkit.Claims(second.clock.Now(), nil)))
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := jwksPool.References(key); ok {
		t.Fatal("the fetcher outlived every verifier that used it")
	}
}

// TestJWKSUnknownKidFlood: many concurrent tokens, each with a new random
// kid, while the identity provider hangs: every one is refused once its
// wait is over, the provider is asked once, and no goroutine is left
// behind.
func TestJWKSUnknownKidFlood(t *testing.T) {
	k := testkit.Keys(t)
	idp := testkit.NewJWKSServer(t, testkit.JWKS(t, testkit.JWK(t, "k1", k.RSA)))
	clk := testkit.NewClock(time.Now().Truncate(time.Second))
	// The default wait: the flood returns while the provider still hangs.
	v, err := New(&Config{Algorithms: []string{"RS256"}, JWKSURL: idp.URL + "/keys"}, func(c Claims) Claims { return c },
		Options{Now: clk.Now, FetcherLogger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	if _, err := v.Verify(context.Background(), testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "k1", testkit.Claims(clk.Now(), nil))); err != nil {
		t.Fatal(err)
	}
	baseline := runtime.NumGoroutine()

	const flood = 200
	tokens := make([]string, flood)
	for i := range tokens {
		kid := make([]byte, 12)
		_, _ = rand.Read(kid)
		tokens[i] = testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, base64.RawURLEncoding.EncodeToString(kid), testkit.Claims(clk.Now(), nil))
	}
	stall := make(chan struct{})
	idp.Stall(stall) // the refetch hangs until the flood is over
	clk.Advance(jwksMinRefetch)
	before := idp.Hits.Load()
	errs := make([]error, flood)
	var wg sync.WaitGroup
	for i := range tokens {
		wg.Go(func() { _, errs[i] = v.Verify(context.Background(), tokens[i]) })
	}
	wg.Wait() // returns although the provider still hangs: the wait is bounded
	close(stall)
	for i, err := range errs {
		var e *Error
		if !errors.As(err, &e) || !strings.Contains(e.Message, "kid") {
			t.Fatalf("token %d: %v, want refused for its kid", i, err)
		}
	}
	if got := idp.Hits.Load() - before; got != 1 {
		t.Fatalf("the identity provider was asked %d times during the flood, want 1", got)
	}
	testkit.Eventually(t, "the goroutines of the flood to end", func() bool { return runtime.NumGoroutine() <= baseline })
	// The key that was there all along still works.
	if _, err := v.Verify(context.Background(), testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "k1", testkit.Claims(clk.Now(), nil))); err != nil {
		t.Fatal(err)
	}
}

// TestJWKSURLTimerBesideRefetch: the refresh timer fires just as a token
// with an unknown kid asks for a fetch, and the loop takes the timer. Its
// fetch serves the kid's waiter, and the kid's wake-up is spent: the loop
// does not fetch again at once, within jwksMinRefetch. A later unknown
// kid still wakes it. The test makes the timer's fetch itself, as the
// loop does (a select with both ready picks either at random), and runs
// the fetcher in a synctest bubble, its provider in memory, so that "the
// loop is idle" is a fact to wait for (synctest.Wait).
func TestJWKSURLTimerBesideRefetch(t *testing.T) {
	k := testkit.Keys(t)
	body := testkit.JWKS(t, testkit.JWK(t, "k1", k.RSA))
	synctest.Test(t, func(t *testing.T) {
		var hits atomic.Int64
		clk := testkit.NewClock(time.Now())
		s := newJWKSURL("https://idp.example/keys", time.Hour, clk.Now, testLogger(t))
		s.client.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
			hits.Add(1)
			return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(body)), Request: r}, nil
		})
		ctx, cancel := context.WithCancel(context.Background())
		defer func() { cancel(); <-s.done }()
		wantHits := func(want int64, when string) {
			t.Helper()
			if got := hits.Load(); got != want {
				t.Fatalf("%s: the identity provider was asked %d times, want %d", when, got, want)
			}
		}
		unknownKid := func() (served chan struct{}) {
			served = make(chan struct{})
			go func() { s.refetch(ctx, time.Hour); close(served) }()
			return served
		}

		s.fetch(ctx) // at startup
		clk.Advance(jwksMinRefetch)
		served := unknownKid()
		synctest.Wait()      // it asked for a fetch and waits for it
		next := s.fetch(ctx) // the loop's, its timer having fired
		go s.loop(ctx, next) // back to waiting
		synctest.Wait()
		<-served
		wantHits(2, "the timer's fetch beside an unknown kid's")

		clk.Advance(jwksMinRefetch)
		served = unknownKid()
		synctest.Wait()
		<-served
		wantHits(3, "an unknown kid a minute later")
	})
}

// roundTripFunc is an http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestJWKSURLStoppedFetcherWaitsNot: a reload that drops a jwks_url
// stops its fetcher while requests of the old config still run (Caddy
// does not wait for them). A token with an unknown kid is then refused
// at once, as when the provider knows no such kid, and never waits for a
// fetch that will not come: whether it was waiting on a fetch that the
// stop cancels (the provider still holds its answer), arrives after the
// stop, or asked for a fetch the ended loop never took. The wait for a
// kid is an hour here: a request that waited would hold the test, which
// instead sees the waiter's fetch marked as running and fails.
func TestJWKSURLStoppedFetcherWaitsNot(t *testing.T) {
	k := testkit.Keys(t)
	for _, tc := range []struct {
		name string
		// before runs ahead of the stop; it returns what the stop must
		// release, if anything.
		before func(t *testing.T, v *Verifier[Claims], idp *testkit.JWKSServer, unknown string) (released func() bool)
		// after: a request with an unknown kid comes after the stop.
		after bool
	}{
		{"waiting on a held fetch", func(t *testing.T, v *Verifier[Claims], idp *testkit.JWKSServer, unknown string) func() bool {
			result := make(chan error, 1)
			go func() { _, err := v.Verify(context.Background(), unknown); result <- err }()
			idp.Hits.WaitFor(t, 2, "fetches (the startup's and the unknown kid's)")
			return func() bool {
				err := <-result
				var e *Error
				return errors.As(err, &e) && errors.Is(e, errUnknownKid)
			}
		}, false},
		{"a fetch the loop never took", func(t *testing.T, v *Verifier[Claims], idp *testkit.JWKSServer, unknown string) func() bool {
			v.remote.mu.Lock()
			asked := v.remote.beginLocked() // as refetch does, its wake-up not yet taken
			v.remote.mu.Unlock()
			return func() bool {
				select {
				case <-asked:
					return true
				default:
					return false
				}
			}
		}, false},
		{"an unknown kid after the stop", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			idp := testkit.NewJWKSServer(t, testkit.JWKS(t, testkit.JWK(t, "k1", k.RSA)))
			clk := testkit.NewClock(time.Now().Truncate(time.Second))
			v, err := New(&Config{Algorithms: []string{"RS256"}, JWKSURL: idp.URL + "/keys"}, func(c Claims) Claims { return c },
				Options{Now: clk.Now, UnknownKidWait: time.Hour, FetcherLogger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			stall := make(chan struct{})
			t.Cleanup(func() { close(stall) }) // runs before the server's Close
			idp.Stall(stall)
			clk.Advance(jwksMinRefetch) // an unknown kid may ask for a fetch
			unknown := testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "k9", testkit.Claims(clk.Now(), nil))
			released := func() bool { return true }
			if tc.before != nil {
				released = tc.before(t, v, idp, unknown)
			}
			if err := v.Close(); err != nil { // the last verifier: the fetcher stops
				t.Fatal(err)
			}
			if !released() {
				t.Fatal("a waiter was not released by the stop")
			}
			if !tc.after {
				return
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			result := make(chan error, 1)
			go func() { _, err := v.Verify(ctx, unknown); result <- err }()
			waiting := make(chan struct{})
			go func() {
				for {
					v.remote.mu.Lock()
					asked := v.remote.inflight != nil
					v.remote.mu.Unlock()
					if asked {
						close(waiting)
						return
					}
					select {
					case <-ctx.Done():
						return
					case <-time.After(time.Millisecond):
					}
				}
			}()
			select {
			case err := <-result:
				var e *Error
				if !errors.As(err, &e) || !errors.Is(e, errUnknownKid) {
					t.Fatalf("%v, want refused for its kid", err)
				}
			case <-waiting:
				t.Fatal("the request waits for a fetch that the stopped fetcher will never make")
			}
			if got := idp.Hits.Load(); got != 1 {
				t.Fatalf("the identity provider was asked %d times, want 1 (at startup)", got)
			}
		})
	}
}

// TestJWKSFileReload: a changed jwks_file is picked up once the check
// interval has passed; a broken rewrite keeps the previous keys.
func TestJWKSFileReload(t *testing.T) {
	k := testkit.Keys(t)
	dir := t.TempDir()
	path := testkit.WriteFile(t, dir, "keys.json", testkit.JWKS(t, testkit.JWK(t, "k1", k.RSA), testkit.JWK(t, "ed1", k.Ed)))
	v := newTester(t, &Config{Algorithms: []string{"RS256", "EdDSA"}, JWKSFile: path})
	token := func(kid string, key any, method jwt.SigningMethod) string {
		return testkit.Mint(t, method, key, kid, testkit.Claims(v.clock.Now(), nil))
	}
	rewrite := func(data []byte) {
		t.Helper()
		testkit.WriteFile(t, dir, "keys.json", data)
		// a distinct modification time, whatever the file system's granularity
		mtime := v.clock.Now().Add(time.Hour)
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}

	v.accept(t, token("k1", k.RSA, jwt.SigningMethodRS256))
	v.accept(t, token("ed1", k.Ed, jwt.SigningMethodEdDSA))

	rewrite(testkit.JWKS(t, testkit.JWK(t, "k2", k.RSA2)))
	v.accept(t, token("k1", k.RSA, jwt.SigningMethodRS256)) // not looked at yet
	v.clock.Advance(jwksFileCheckInterval)
	v.accept(t, token("k2", k.RSA2, jwt.SigningMethodRS256))
	v.refuse(t, token("k1", k.RSA, jwt.SigningMethodRS256), "kid")
	v.refuse(t, token("ed1", k.Ed, jwt.SigningMethodEdDSA), "kid")

	rewrite([]byte(`{"keys": [`))
	v.clock.Advance(jwksFileCheckInterval)
	v.accept(t, token("k2", k.RSA2, jwt.SigningMethodRS256))
}

// TestJWKSFileClockStepBack: a clock stepped back (NTP correcting a host
// that ran ahead, a VM resumed from a snapshot) delays no jwks_file
// check: a key taken out stops verifying one check interval after the
// rewrite, however far back the step. The test's clock has no monotonic
// reading, as a wall clock that steps has none: a step shows only as a
// reading before the last check's, which looks at the file at once (a
// request right after the step, or the first after the rewrite), and
// the interval holds from there.
func TestJWKSFileClockStepBack(t *testing.T) {
	k := testkit.Keys(t)
	for _, tc := range []struct {
		name          string
		step          time.Duration
		requestAtStep bool
	}{
		{"no step", 0, true},
		{"a second back, a request at the step", -time.Second, true},
		{"an hour back, a request at the step", -time.Hour, true},
		{"an hour back, none at the step", -time.Hour, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := testkit.WriteFile(t, dir, "keys.json", testkit.JWKS(t, testkit.JWK(t, "k1", k.RSA)))
			v := newTester(t, &Config{Algorithms: []string{"RS256"}, JWKSFile: path})
			token := func(kid string, key any) string {
				return testkit.Mint(t, jwt.SigningMethodRS256, key, kid, testkit.Claims(v.clock.Now(), nil))
			}
			v.accept(t, token("k1", k.RSA))
			v.clock.Advance(tc.step)
			if tc.requestAtStep {
				v.accept(t, token("k1", k.RSA))
			}
			testkit.WriteFile(t, dir, "keys.json", testkit.JWKS(t, testkit.JWK(t, "k2", k.RSA2)))
			if tc.requestAtStep {
				v.accept(t, token("k1", k.RSA)) // within the interval: not looked at yet
			}
			v.clock.Advance(jwksFileCheckInterval)
			v.refuse(t, token("k1", k.RSA), "kid")
			v.accept(t, token("k2", k.RSA2))
		})
	}
}

// TestJWKSFileScheduleMonotonic: with time.Now as its clock, the
// jwks_file schedule keeps time.Now's monotonic reading (a time.Time
// shows one as "m="), which a wall clock stepped back does not move.
func TestJWKSFileScheduleMonotonic(t *testing.T) {
	k := testkit.Keys(t)
	path := testkit.WriteFile(t, t.TempDir(), "keys.json", testkit.JWKS(t, testkit.JWK(t, "k1", k.RSA)))
	v, err := New(&Config{Algorithms: []string{"RS256"}, JWKSFile: path}, func(c Claims) Claims { return c }, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	if checked := v.file.checked.Load().String(); !strings.Contains(checked, " m=") {
		t.Errorf("the last check at %s, without a monotonic reading", checked)
	}
}

// TestJWKSFileRewriteKeepingTimes: a jwks_file rewritten with a key set
// of the same size and its modification time kept (a copy that preserves
// times, a store whose files all have one) is read again at the next
// check: the key taken out stops verifying.
func TestJWKSFileRewriteKeepingTimes(t *testing.T) {
	k := testkit.Keys(t)
	dir := t.TempDir()
	first, second := testkit.JWKS(t, testkit.JWK(t, "k1", k.RSA)), testkit.JWKS(t, testkit.JWK(t, "k2", k.RSA2))
	if len(first) != len(second) {
		t.Fatalf("the key sets are %d and %d bytes: the test needs them of one size", len(first), len(second))
	}
	fixed := time.Unix(1, 0)
	write := func(data []byte) string {
		t.Helper()
		path := testkit.WriteFile(t, dir, "keys.json", data)
		if err := os.Chtimes(path, fixed, fixed); err != nil {
			t.Fatal(err)
		}
		return path
	}
	v := newTester(t, &Config{Algorithms: []string{"RS256"}, JWKSFile: write(first)})
	token := func(kid string, key any) string {
		return testkit.Mint(t, jwt.SigningMethodRS256, key, kid, testkit.Claims(v.clock.Now(), nil))
	}
	v.accept(t, token("k1", k.RSA))
	write(second)
	v.clock.Advance(jwksFileCheckInterval)
	v.accept(t, token("k2", k.RSA2))
	v.refuse(t, token("k1", k.RSA), "kid")
}

// TestJWKSFileUnusableLoggedOnce: a jwks_file that becomes unusable
// (broken, then missing) is reported once each time it changes, not at
// every check while requests come, and its repair once; the previous keys
// serve throughout.
func TestJWKSFileUnusableLoggedOnce(t *testing.T) {
	k := testkit.Keys(t)
	dir := t.TempDir()
	path := testkit.WriteFile(t, dir, "keys.json", testkit.JWKS(t, testkit.JWK(t, "k1", k.RSA)))
	clk := testkit.NewClock(time.Now().Truncate(time.Second))
	core, logs := observer.New(zap.InfoLevel)
	v, err := New(&Config{Algorithms: []string{"RS256"}, JWKSFile: path, CacheSize: -1}, func(c Claims) Claims { return c },
		Options{Now: clk.Now, Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	mtime := clk.Now()
	rewrite := func(data []byte) {
		t.Helper()
		testkit.WriteFile(t, dir, "keys.json", data)
		// a distinct modification time, whatever the file system's granularity
		mtime = mtime.Add(time.Hour)
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	// checks passes the check interval n times with a request each, all
	// verified with the keys in use.
	checks := func(n int) {
		t.Helper()
		for range n {
			clk.Advance(jwksFileCheckInterval)
			token := testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "k1", testkit.Claims(clk.Now(), nil))
			if _, err := v.Verify(context.Background(), token); err != nil {
				t.Fatalf("refused with the previous keys: %v", err)
			}
		}
	}
	lines := func(msg string) int {
		return logs.FilterMessageSnippet(msg).Len()
	}

	rewrite([]byte(`{"keys": [`))
	checks(5)
	if n := lines("jwks_file unusable"); n != 1 {
		t.Fatalf("a broken jwks_file was reported %d times over 5 checks, want once", n)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	checks(5)
	if n := lines("jwks_file unusable"); n != 2 {
		t.Fatalf("a missing jwks_file was reported %d times over 5 checks, want once", n-1)
	}
	rewrite(testkit.JWKS(t, testkit.JWK(t, "k1", k.RSA)))
	checks(5)
	if n := lines("jwks_file reloaded"); n != 1 {
		t.Fatalf("the repaired jwks_file was reported %d times, want once", n)
	}
	rewrite([]byte(`{"keys": []}`))
	checks(3)
	if n := lines("jwks_file unusable"); n != 3 {
		t.Fatalf("a second breakage was reported %d times, want once", n-2)
	}
}

// TestJWKSURLSkippedKeyWarnedOnce: a fetched set with a key the edge
// cannot use is warned of once, not at every fetch of the same set; a
// set that skips another key is warned of again, and one that skips
// none is not.
func TestJWKSURLSkippedKeyWarnedOnce(t *testing.T) {
	k := testkit.Keys(t)
	good := testkit.JWK(t, "good", k.RSA)
	unknown := testkit.JWK(t, "future", k.RSA2)
	unknown["kty"] = "AKP"
	other := testkit.JWK(t, "other", k.EC)
	other["crv"] = "P-192"
	var body atomic.Pointer[[]byte]
	serve := func(b []byte) { body.Store(&b) }
	core, logs := observer.New(zap.InfoLevel)
	logger := zap.New(core)
	s := newJWKSURL("https://idp.example/keys", time.Hour, time.Now, func() *zap.Logger { return logger })
	s.client.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(*body.Load())), Request: r}, nil
	})
	warnings := func() int { return logs.FilterMessageSnippet("JWK Set key skipped").Len() }
	for _, step := range []struct {
		set  []byte
		want int // warnings in all after three fetches of set
	}{
		{testkit.JWKS(t, unknown, good), 1},
		{testkit.JWKS(t, good, unknown), 2}, // another index
		{testkit.JWKS(t, good, unknown, other), 4},
		{testkit.JWKS(t, good), 4},
		{testkit.JWKS(t, unknown, good), 5},
	} {
		serve(step.set)
		for range 3 {
			s.fetch(context.Background())
			if keys := s.keys(); len(keys) != 1 || keys[0].id != "good" {
				t.Fatalf("%s: keys %v, want the good key", step.set, keys)
			}
		}
		if got := warnings(); got != step.want {
			t.Fatalf("%s: %d warnings in all, want %d", step.set, got, step.want)
		}
	}
	for _, entry := range logs.FilterMessageSnippet("JWK Set key skipped").All() {
		if fields := entry.ContextMap(); fields["kid"] != "future" && fields["kid"] != "other" {
			t.Errorf("a warning names no kid: %v", fields)
		}
	}
}

func TestParseJWKS(t *testing.T) {
	k := testkit.Keys(t)
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	offCurve := testkit.JWK(t, "ec", k.EC)
	offCurve["y"] = offCurve["x"]
	wrongAlg := testkit.JWK(t, "rsa", k.RSA)
	wrongAlg["alg"] = "none"
	enc := testkit.JWK(t, "enc", k.RSA)
	enc["use"] = "enc"
	pinned := testkit.JWK(t, "pinned", k.RSA)
	pinned["alg"] = "PS256"
	// Member names are case-sensitive (RFC 7517 4): "KTY" is no "kty",
	// "KID" no "kid", "USE" no "use", "KEYS" no "keys".
	upperKty := testkit.JWK(t, "upper", k.RSA)
	upperKty["KTY"] = upperKty["kty"]
	delete(upperKty, "kty")
	upperKid := testkit.JWK(t, "", k.EC)
	upperKid["KID"] = "spoofed"
	delete(upperKid, "kid")
	upperUse := testkit.JWK(t, "upper-use", k.RSA)
	delete(upperUse, "use")
	upperUse["USE"] = "enc"
	// key_ops (RFC 7517 4.3) must list "verify" when given.
	keyOps := func(kid, ops string) []byte {
		return bytes.Replace(testkit.JWKS(t, testkit.JWK(t, kid, k.RSA), testkit.JWK(t, "d", k.Ed)),
			[]byte(`"kid":"`+kid+`"`), []byte(`"key_ops":`+ops+`,"kid":"`+kid+`"`), 1)
	}
	// mistyped is a set of an RSA key whose member name has value (JSON)
	// instead of its string, then the Ed25519 key d.
	mistyped := func(name, value string) []byte {
		rsaKey := testkit.JWK(t, "m", k.RSA)
		rsaKey["use"] = "sig"
		return bytes.Replace(testkit.JWKS(t, rsaKey, testkit.JWK(t, "d", k.Ed)), []byte(`"`+name+`":"`), []byte(`"`+name+`":`+value+`,"unread":"`), 1)
	}
	unknownKty := testkit.JWK(t, "akp", k.RSA)
	unknownKty["kty"] = "AKP"
	upperKeys := bytes.Replace(testkit.JWKS(t, testkit.JWK(t, "r", k.RSA)), []byte(`"keys"`), []byte(`"KEYS"`), 1)
	// with is the JWK of key with its member name set to value.
	with := func(kid string, key crypto.Signer, name, value string) map[string]string {
		jwk := testkit.JWK(t, kid, key)
		jwk[name] = value
		return jwk
	}
	b64 := base64.RawURLEncoding.EncodeToString
	// An odd modulus of bits bits, which checkKey judges by its size.
	modulus := func(bits int) string {
		n := new(big.Int).Lsh(big.NewInt(1), uint(bits-1))
		return b64(n.SetBit(n, 0, 1).Bytes())
	}
	for _, tc := range []struct {
		name string
		set  []byte
		ids  string // ids of the keys taken, or the error
	}{
		{"all families", testkit.JWKS(t, testkit.JWK(t, "r", k.RSA), testkit.JWK(t, "e", k.EC), testkit.JWK(t, "e384", k.EC384), testkit.JWK(t, "d", k.Ed)), "r e e384 d"},
		{"encryption key skipped", testkit.JWKS(t, enc, testkit.JWK(t, "r", k.RSA)), "r"},
		{"weak RSA skipped", testkit.JWKS(t, testkit.JWK(t, "weak", weak), testkit.JWK(t, "r", k.RSA)), "r"},
		{"RSA over 8192 bits skipped", testkit.JWKS(t, with("large", k.RSA, "n", modulus(8193)), testkit.JWK(t, "r", k.RSA)), "r; skipped 0 (large): RSA key of 8193 bits is longer than 8192"},
		{"RSA of 16384 bits skipped", testkit.JWKS(t, with("large", k.RSA, "n", modulus(16384)), testkit.JWK(t, "r", k.RSA)), "r; skipped 0 (large): RSA key of 16384 bits is longer than 8192"},
		{"RSA of 8192 bits kept", testkit.JWKS(t, with("large", k.RSA, "n", modulus(8192)), testkit.JWK(t, "r", k.RSA)), "large r"},
		{"point off the curve skipped", testkit.JWKS(t, offCurve, testkit.JWK(t, "d", k.Ed)), "d"},
		{"alg none skipped", testkit.JWKS(t, wrongAlg, testkit.JWK(t, "d", k.Ed)), "d"},
		{"oct key skipped", []byte(`{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}]}`), "error: no usable signature key"},
		{"empty set", []byte(`{"keys":[]}`), "error: no usable signature key"},
		{"not JSON", []byte(`<keys/>`), "error: not a JWK Set"},
		{"pinned alg kept", testkit.JWKS(t, pinned), "pinned"},
		{"KTY is no kty", testkit.JWKS(t, upperKty, testkit.JWK(t, "d", k.Ed)), "d"},
		{"KID is no kid", testkit.JWKS(t, upperKid, testkit.JWK(t, "d", k.Ed)), " d"},
		{"USE is no use", testkit.JWKS(t, upperUse), "upper-use"},
		{"KEYS is no keys", upperKeys, "error: no usable signature key"},
		{"key_ops verify kept", keyOps("v", `["sign","verify"]`), "v d"},
		{"key_ops null is none", keyOps("n", `null`), "n d"},
		{"key_ops encrypt skipped", keyOps("enc", `["encrypt","wrapKey"]`), "d"},
		{"key_ops empty skipped", keyOps("none", `[]`), "d"},
		{"key_ops sign only skipped", keyOps("sign", `["sign"]`), "d"},
		{"key_ops VERIFY is no verify", keyOps("upper", `["VERIFY"]`), "d"},
		// A key the edge cannot read is skipped, and the others serve.
		{"key_ops not an array skipped", keyOps("s", `"verify"`), "d; skipped 0 (s): member \"key_ops\" is not an array of strings"},
		{"n a number skipped", mistyped("n", "5"), "d; skipped 0 (m): member \"n\" is not a string"},
		{"kid a number skipped", mistyped("kid", "7"), "d; skipped 0: member \"kid\" is not a string"},
		{"use an array skipped", mistyped("use", `["sig"]`), "d; skipped 0 (m): member \"use\" is not a string"},
		{"unknown kty skipped", testkit.JWKS(t, unknownKty, testkit.JWK(t, "d", k.Ed)), "d; skipped 0 (akp): unsupported kty \"AKP\""},
		{"a key not an object skipped", []byte(`{"keys":[5,null,` + string(bytes.TrimPrefix(testkit.JWKS(t, testkit.JWK(t, "d", k.Ed)), []byte(`{"keys":[`)))), "d; skipped 0: not a JSON object; skipped 1: unsupported kty \"\""},
		{"only a mistyped key", []byte(`{"keys":[{"kty":"RSA","kid":"r","n":5,"e":"AQAB"}]}`), "error: no usable signature key in the JWK Set\nkey 0 (kid \"r\"): member \"n\" is not a string"},
		{"keys not an array", []byte(`{"keys":{"kty":"RSA"}}`), "error: not a JWK Set"},
		// Key material that is no key.
		{"RSA exponent 1 skipped", testkit.JWKS(t, with("e1", k.RSA, "e", "AQ"), testkit.JWK(t, "d", k.Ed)), "d; skipped 0 (e1): bad RSA exponent"},
		{"RSA exponent over 31 bits skipped", testkit.JWKS(t, with("big", k.RSA, "e", b64([]byte{1, 0, 0, 0, 1})), testkit.JWK(t, "d", k.Ed)), "d; skipped 0 (big): bad RSA exponent"},
		{"RSA modulus not base64url skipped", testkit.JWKS(t, with("n", k.RSA, "n", "a+b/"), testkit.JWK(t, "d", k.Ed)), "d; skipped 0 (n): "},
		{"RSA exponent not base64url skipped", testkit.JWKS(t, with("e", k.RSA, "e", "A=="), testkit.JWK(t, "d", k.Ed)), "d; skipped 0 (e): "},
		{"EC x too short skipped", testkit.JWKS(t, with("x", k.EC, "x", b64(make([]byte, 31))), testkit.JWK(t, "d", k.Ed)), "d; skipped 0 (x): x and y must be 32 bytes for P-256"},
		// A key pinned to an algorithm it cannot verify, and RSA key
		// material no RSA key has (Go's RSA refuses to verify with it).
		{"alg of another curve skipped", testkit.JWKS(t, with("e384", k.EC384, "alg", "ES256"), testkit.JWK(t, "d", k.Ed)), "d; skipped 0 (e384): alg \"ES256\" does not fit its P-384 key"},
		{"alg of another family skipped", testkit.JWKS(t, with("r", k.RSA, "alg", "ES256"), testkit.JWK(t, "d", k.Ed)), "d; skipped 0 (r): alg \"ES256\" does not fit its RSA key"},
		{"RSA alg on an Ed25519 key skipped", testkit.JWKS(t, with("d", k.Ed, "alg", "RS256"), testkit.JWK(t, "e", k.EC)), "e; skipped 0 (d): alg \"RS256\" does not fit its Ed25519 key"},
		{"only keys of another alg", testkit.JWKS(t, with("e384", k.EC384, "alg", "ES256")), "error: no usable signature key in the JWK Set\nkey 0 (kid \"e384\"): alg"},
		{"RSA exponent even skipped", testkit.JWKS(t, with("even", k.RSA, "e", b64([]byte{1, 0, 0})), testkit.JWK(t, "d", k.Ed)), "d; skipped 0 (even): RSA key with an even modulus or exponent"},
		{"RSA modulus even skipped", testkit.JWKS(t, with("even", k.RSA, "n", b64(append(k.RSA.N.Bytes()[:len(k.RSA.N.Bytes())-1], 2))), testkit.JWK(t, "d", k.Ed)), "d; skipped 0 (even): RSA key with an even modulus or exponent"},
		{"EC curve P-192 skipped", testkit.JWKS(t, with("p192", k.EC, "crv", "P-192"), testkit.JWK(t, "d", k.Ed)), "d; skipped 0 (p192): unsupported curve \"P-192\""},
		{"EC y not base64url skipped", testkit.JWKS(t, with("y", k.EC, "y", "*"), testkit.JWK(t, "d", k.Ed)), "d; skipped 0 (y): "},
		{"EC x not base64url skipped", testkit.JWKS(t, with("x", k.EC, "x", "*"), testkit.JWK(t, "d", k.Ed)), "d; skipped 0 (x): "},
		{"OKP X25519 skipped", testkit.JWKS(t, with("x25519", k.Ed, "crv", "X25519"), testkit.JWK(t, "r", k.RSA)), "r; skipped 0 (x25519): unsupported OKP curve \"X25519\""},
		{"OKP x not base64url skipped", testkit.JWKS(t, with("okp", k.Ed, "x", "*"), testkit.JWK(t, "r", k.RSA)), "r; skipped 0 (okp): "},
		{"OKP x too short skipped", testkit.JWKS(t, with("okp", k.Ed, "x", b64(make([]byte, 31))), testkit.JWK(t, "r", k.RSA)), "r; skipped 0 (okp): an Ed25519 key is 32 bytes, not 31"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys, skipped, err := parseJWKS(tc.set)
			var got string
			if err != nil {
				got = "error: " + err.Error()
			} else {
				ids := make([]string, len(keys))
				for i, key := range keys {
					ids[i] = key.id
				}
				got = strings.Join(ids, " ")
				for _, s := range skipped {
					got += fmt.Sprintf("; skipped %d", s.index)
					if s.kid != "" {
						got += " (" + s.kid + ")"
					}
					got += ": " + s.err.Error()
				}
			}
			if !strings.HasPrefix(got, tc.ids) {
				t.Fatalf("got %q, want %q", got, tc.ids)
			}
		})
	}
	// A pinned alg restricts the key to it, even within its family.
	keys, _, _ := parseJWKS(testkit.JWKS(t, pinned))
	if keys[0].fitsAlg("RS256") || !keys[0].fitsAlg("PS256") {
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

// TestJWKSURLRedirect: a jwks_url that answers with a redirect is
// followed only to a URL that jwks_url itself could name, and never from
// https down to plain http: a key set that came in the clear from
// elsewhere could have been swapped on the way, and every token it
// verifies forged.
func TestJWKSURLRedirect(t *testing.T) {
	k := testkit.Keys(t)
	idp := testkit.NewJWKSServer(t, testkit.JWKS(t, testkit.JWK(t, "k1", k.RSA)))
	redirect := func(target string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target, http.StatusFound)
		}))
		t.Cleanup(srv.Close)
		return srv.URL + "/keys"
	}
	fetch := func(url string) error {
		s := newJWKSURL(url, DefaultJWKSRefresh, time.Now, testLogger(t))
		defer s.client.CloseIdleConnections()
		_, _, err := s.get(context.Background())
		return err
	}

	// Loopback to loopback, as jwks_url could name it: followed.
	if err := fetch(redirect(idp.URL + "/keys")); err != nil {
		t.Fatalf("a redirect to another loopback URL: %v", err)
	}
	// Plain http anywhere but loopback: refused before it is asked.
	for _, target := range []string{"http://jwks.example/keys", "ftp://jwks.example/keys"} {
		err := fetch(redirect(target))
		if !errors.Is(err, errJWKSRedirect) {
			t.Fatalf("a redirect to %s: %v, want it refused", target, err)
		}
	}
	// A loop of redirects ends after jwksMaxRedirects.
	var loop *httptest.Server
	loop = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, loop.URL+"/keys", http.StatusFound)
	}))
	t.Cleanup(loop.Close)
	if err := fetch(loop.URL + "/keys"); !errors.Is(err, errJWKSRedirect) || !strings.Contains(err.Error(), "more than 10 redirects") {
		t.Fatalf("a loop of redirects: %v, want it refused after 10", err)
	}
	// https may not step down to plain http, even on loopback.
	if err := checkRedirect("HTTPS://idp.example/keys", idp.URL+"/keys"); !errors.Is(err, errJWKSRedirect) {
		t.Fatalf("https to http on loopback: %v, want it refused", err)
	}
	if err := checkRedirect("https://idp.example/keys", "https://keys.idp.example/keys"); err != nil {
		t.Fatalf("https to https: %v", err)
	}
}

// TestJWKSSizeBound: a key set is read up to jwksMaxBytes, from a
// jwks_url or a jwks_file alike, and one larger is refused as such
// rather than read whole: a key set of exactly the bound is read.
func TestJWKSSizeBound(t *testing.T) {
	k := testkit.Keys(t)
	set := testkit.JWKS(t, testkit.JWK(t, "k1", k.RSA))
	// padded is the set, white space after it making it size bytes.
	padded := func(size int) []byte { return append(bytes.Clone(set), bytes.Repeat([]byte(" "), size-len(set))...) }
	for _, tc := range []struct {
		name string
		size int
		want string // in the error; "" to read the key
	}{
		{"the bound", jwksMaxBytes, ""},
		{"a byte over it", jwksMaxBytes + 1, "larger than 1048576 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := padded(tc.size)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(body) }))
			t.Cleanup(srv.Close)
			s := newJWKSURL(srv.URL+"/keys", DefaultJWKSRefresh, time.Now, testLogger(t))
			defer s.client.CloseIdleConnections()
			keys, _, urlErr := s.get(context.Background())
			data, fileErr := readJWKSFile(testkit.WriteFile(t, t.TempDir(), "keys.json", body))
			if tc.want == "" {
				if urlErr != nil || len(keys) != 1 || fileErr != nil || len(data) != tc.size {
					t.Fatalf("url: %d keys, %v; file: %d bytes, %v", len(keys), urlErr, len(data), fileErr)
				}
				return
			}
			for what, err := range map[string]error{"url": urlErr, "file": fileErr} {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s: %v, want it refused as %s", what, err, tc.want)
				}
			}
		})
	}
}

// TestJWKSURLUnknownKidBesideStaticKeys: a public_key_file key of the
// token's family does not keep jwks_url from fetching a kid its set
// lacks: the file's key is tried, fails, and the token is verified
// against the set fetched again (once a minute at most), as it is
// without the file.
func TestJWKSURLUnknownKidBesideStaticKeys(t *testing.T) {
	k := testkit.Keys(t)
	idp := testkit.NewJWKSServer(t, testkit.JWKS(t, testkit.JWK(t, "k1", k.EC)))
	pem := testkit.WriteFile(t, t.TempDir(), "internal.pem", testkit.PublicPEM(t, k.RSA2))
	v := newTester(t, &Config{Algorithms: []string{"RS256", "ES256"}, JWKSURL: idp.URL + "/keys", PublicKeyFiles: []string{pem}})
	token := func(kid string, key any, method jwt.SigningMethod) string {
		return testkit.Mint(t, method, key, kid, testkit.Claims(v.clock.Now(), nil))
	}
	v.accept(t, token("k1", k.EC, jwt.SigningMethodES256))
	v.accept(t, token("internal", k.RSA2, jwt.SigningMethodRS256)) // the file's key, whatever the kid
	hits := idp.Hits.Load()

	// The provider adds an RSA key; the edge's set does not have it yet.
	idp.Serve(200, testkit.JWKS(t, testkit.JWK(t, "k1", k.EC), testkit.JWK(t, "k2", k.RSA)))
	v.refuse(t, token("k2", k.RSA, jwt.SigningMethodRS256), "signature") // within a minute of the last fetch
	if got := idp.Hits.Load(); got != hits {
		t.Fatalf("the identity provider was asked %d times, want %d: the rate limit holds", got, hits)
	}
	v.clock.Advance(jwksMinRefetch)
	v.accept(t, token("k2", k.RSA, jwt.SigningMethodRS256))
	if got := idp.Hits.Load(); got != hits+1 {
		t.Fatalf("the identity provider was asked %d times, want %d", got, hits+1)
	}
	v.accept(t, token("internal", k.RSA2, jwt.SigningMethodRS256))
	// A forged token with an unknown kid costs no more than one fetch a
	// minute either.
	v.clock.Advance(jwksMinRefetch)
	v.refuse(t, testkit.Tamper(t, token("k3", k.RSA, jwt.SigningMethodRS256)), "signature")
	v.refuse(t, testkit.Tamper(t, token("k4", k.RSA, jwt.SigningMethodRS256)), "signature")
	if got := idp.Hits.Load(); got != hits+2 {
		t.Fatalf("the identity provider was asked %d times, want %d", got, hits+2)
	}
}

// TestJWKSURLUnknownKidOfHMACToken: an HS256 token whose signature the
// hmac_secret does not verify is refused without a fetch, whatever its
// kid: no key of a JWK Set verifies HS256, and a fetch would only have
// the request wait for it, and the provider asked by anyone.
func TestJWKSURLUnknownKidOfHMACToken(t *testing.T) {
	k := testkit.Keys(t)
	idp := testkit.NewJWKSServer(t, testkit.JWKS(t, testkit.JWK(t, "k1", k.RSA)))
	v := newTester(t, &Config{Algorithms: []string{"RS256", "HS256"}, JWKSURL: idp.URL + "/keys", HMACSecret: string(k.HMAC)})
	v.clock.Advance(jwksMinRefetch) // an unknown kid may ask for a fetch
	v.refuse(t, testkit.Tamper(t, testkit.Mint(t, jwt.SigningMethodHS256, k.HMAC, "k9", testkit.Claims(v.clock.Now(), nil))), "signature")
	if got := idp.Hits.Load(); got != 1 {
		t.Fatalf("the identity provider was asked %d times, want 1 (at startup)", got)
	}
	v.accept(t, testkit.Mint(t, jwt.SigningMethodHS256, k.HMAC, "k9", testkit.Claims(v.clock.Now(), nil)))
	// An RS256 token's unknown kid still fetches.
	v.refuse(t, testkit.Mint(t, jwt.SigningMethodRS256, k.RSA2, "k9", testkit.Claims(v.clock.Now(), nil)), "kid")
	if got := idp.Hits.Load(); got != 2 {
		t.Fatalf("the identity provider was asked %d times, want 2", got)
	}
}

// TestRedactURL: a jwks_url as errors and log lines show it: the
// password of its user information (or its user, given alone) and the
// values of its query replaced,
// the query's names kept as written; a part without '=' replaced whole.
func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ raw, want string }{
		{"https://idp.example/keys", "https://idp.example/keys"},
		{"https://idp.example/keys?code=SECRET", "https://idp.example/keys?code=xxxxx"},
		{"https://idp.example/api/keys?code=SECRET&clientId=default", "https://idp.example/api/keys?code=xxxxx&clientId=xxxxx"},
		{"https://idp.example/keys?code=SEC%3DRET&code=", "https://idp.example/keys?code=xxxxx&code=xxxxx"},
		{"https://idp.example/keys?SECRET", "https://idp.example/keys?xxxxx"},
		{"https://idp.example/keys?a=1;b=SECRET", "https://idp.example/keys?a=xxxxx"},
		{"https://idp.example/keys?", "https://idp.example/keys?"},
		{"https://idp.example/keys?&code=SECRET&", "https://idp.example/keys?&code=xxxxx&"},
		{"https://edge:SECRET@idp.example/keys?code=SECRET", "https://edge:xxxxx@idp.example/keys?code=xxxxx"},
		{"https://TOKEN@idp.example/keys", "https://xxxxx@idp.example/keys"},
		{"https://TOKEN:@idp.example/keys", "https://TOKEN:xxxxx@idp.example/keys"},
		// Go's client shows a password as *** in its errors.
		{"https://edge:***@idp.example/keys?code=SECRET", "https://edge:xxxxx@idp.example/keys?code=xxxxx"},
		// Not a URL that parses.
		{"https://edge:SECRET@idp.example:port/keys?code=SECRET", "https://xxxxx@..."},
		{"https://idp.example:port/keys?code=SECRET", "https://idp.example:port/keys?code=xxxxx"},
		{"https://idp.example:port/keys", "https://idp.example:port/keys"},
		// A '/' in the password ends the host: the rest of the password
		// is in the path.
		{"https://edge:42/SECRET@idp.example/keys?code=SECRET", "https://xxxxx@..."},
		{"https://edge:/SEC/RET@idp.example/keys", "https://xxxxx@..."},
		// No "//" after the scheme: an opaque URL to Go, or none.
		{"https:edge:SECRET@idp.example/keys", "https:xxxxx@..."},
		{"https:://edge:SECRET@idp.example/keys", "https:xxxxx@..."},
		{"A:edge:SECRET@://@", "A:xxxxx@..."},
		// No scheme before the '@'.
		{"edge@SECRET:idp.example:port/keys", "xxxxx@..."},
		{"https:edge:SECRET@idp.example/keys\x01", "https:xxxxx@..."},
		{"https:idp.example/keys?code=SECRET", "https:idp.example/keys?code=xxxxx"},
	} {
		if got := redactURL(tc.raw); got != tc.want {
			t.Errorf("redactURL(%q) = %q, want %q", tc.raw, got, tc.want)
		}
	}
}

// TestKeysTriedPerToken: a token is tried on every public_key_file key
// of its algorithm, and on one key at most of each JWK Set (jwks_file,
// jwks_url): the key its kid names, or the set's one key of its
// algorithm when the token or that key has no kid. A token without kid
// against a set of several keys of its algorithm (eight, as Entra ID
// publishes) is refused as needing a kid, before any of them is tried,
// and fetches no set. The keys tried are counted, not timed.
func TestKeysTriedPerToken(t *testing.T) {
	k := testkit.Keys(t)
	eight := testkit.RSAJWKs(t, 8, 5, k.RSA, k.RSA2) // k5 is k.RSA's
	one := []map[string]string{testkit.JWK(t, "k1", k.RSA)}
	amongEC := []map[string]string{testkit.JWK(t, "e1", k.EC), testkit.JWK(t, "k1", k.RSA), testkit.JWK(t, "e2", k.EC)}
	pem := testkit.WriteFile(t, t.TempDir(), "internal.pem", testkit.PublicPEM(t, k.RSA2))
	const kidNeeded = "no key id (kid)"
	for _, source := range []string{"jwks_file", "jwks_url"} {
		for _, tc := range []struct {
			name   string
			set    []map[string]string
			pem    bool // a public_key_file of k.RSA2 beside the set
			kid    string
			signer *rsa.PrivateKey
			forged bool
			want   string // "" when accepted, else part of the refusal
			tried  int
		}{
			{"no kid, eight keys", eight, false, "", k.RSA, false, kidNeeded, 0},
			{"no kid, eight keys, forged", eight, false, "", k.RSA, true, kidNeeded, 0},
			{"no kid, eight keys without kid", testkit.WithoutKids(eight), false, "", k.RSA, true, kidNeeded, 0},
			{"kid, eight keys", eight, false, "k5", k.RSA, false, "", 1},
			{"kid, eight keys, forged", eight, false, "k5", k.RSA, true, "signature", 1},
			{"a kid, eight keys without kid", testkit.WithoutKids(eight), false, "k5", k.RSA, true, "kid", 0},
			{"no kid, one key", one, false, "", k.RSA, false, "", 1},
			{"no kid, one key, forged", one, false, "", k.RSA, true, "signature", 1},
			{"a kid, one key without kid", testkit.WithoutKids(one), false, "k9", k.RSA, false, "", 1},
			{"another kid, one key", one, false, "k9", k.RSA, true, "kid", 0},
			{"no kid, one RSA key among EC keys", amongEC, false, "", k.RSA, false, "", 1},
			{"no kid, the PEM key's token beside eight keys", eight, true, "", k.RSA2, false, "", 1},
			{"no kid, a set key's token beside a PEM key", eight, true, "", k.RSA, false, kidNeeded, 1},
			{"kid, a set key's token beside a PEM key", eight, true, "k5", k.RSA, false, "", 2},
		} {
			t.Run(source+", "+tc.name, func(t *testing.T) {
				set := testkit.JWKS(t, tc.set...)
				c := &Config{Algorithms: []string{"RS256", "ES256"}}
				var idp *testkit.JWKSServer
				if source == "jwks_url" {
					idp = testkit.NewJWKSServer(t, set)
					c.JWKSURL = idp.URL + "/keys"
				} else {
					c.JWKSFile = testkit.WriteFile(t, t.TempDir(), "keys.json", set)
				}
				if tc.pem {
					c.PublicKeyFiles = []string{pem}
				}
				v := newTester(t, c)
				var tried atomic.Int64
				v.tried = func(keys int) { tried.Add(int64(keys)) }
				// A refetch is allowed from now on: a kid the set lacks
				// would ask for one.
				v.clock.Advance(jwksMinRefetch)
				token := testkit.Mint(t, jwt.SigningMethodRS256, tc.signer, tc.kid, testkit.Claims(v.clock.Now(), nil))
				if tc.forged {
					token = testkit.Tamper(t, token)
				}
				if tc.want == "" {
					v.accept(t, token)
				} else {
					v.refuse(t, token, tc.want)
				}
				if got := tried.Load(); got != int64(tc.tried) {
					t.Errorf("the token was tried on %d keys, want %d", got, tc.tried)
				}
				if idp != nil && tc.kid == "" {
					if got := idp.Hits.Load(); got != 1 {
						t.Errorf("the identity provider was asked %d times, want 1 (at startup): a token without kid fetches no set", got)
					}
				}
			})
		}
	}

	// The rule holds for each set on its own: a jwks_file and a jwks_url
	// of one key each offer a token without kid both.
	idp := testkit.NewJWKSServer(t, testkit.JWKS(t, testkit.JWK(t, "u1", k.RSA2)))
	v := newTester(t, &Config{Algorithms: []string{"RS256"}, JWKSURL: idp.URL + "/keys",
		JWKSFile: testkit.WriteFile(t, t.TempDir(), "keys.json", testkit.JWKS(t, one...))})
	var tried atomic.Int64
	v.tried = func(keys int) { tried.Add(int64(keys)) }
	v.accept(t, testkit.Mint(t, jwt.SigningMethodRS256, k.RSA2, "", testkit.Claims(v.clock.Now(), nil)))
	if got := tried.Load(); got != 2 {
		t.Errorf("the token was tried on %d keys, want 2: the jwks_file's and the jwks_url's", got)
	}
}
