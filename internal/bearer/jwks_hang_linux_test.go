//go:build linux

package bearer

import (
	"context"
	"crypto/rsa"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ucwa-edge/caddy-ucwa/internal/fileload"
	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestJWKSFileReadHangs: a jwks_file whose read hangs (a FIFO with no
// writer, which blocks open(2) as a hung NFS or FUSE mount does) costs
// the request that runs the check jwksFileReadWait, on the test's clock,
// and is reported once; that request and every one after it are verified
// with the keys in use, and the checks due while the read hangs read
// nothing and wait for nothing. The read, once it returns, is taken,
// with no check due; and the file, in place again, is read at the next
// check.
func TestJWKSFileReadHangs(t *testing.T) {
	k := testkit.Keys(t)
	path := testkit.WriteFile(t, t.TempDir(), "keys.json", testkit.JWKS(t, testkit.JWK(t, "k1", k.RSA)))
	clk := testkit.NewClock(time.Now().Truncate(time.Second))
	core, logs := observer.New(zap.InfoLevel)
	v, err := New(&Config{Algorithms: []string{"RS256"}, JWKSFile: path}, func(c Claims) Claims { return c },
		Options{Now: clk.Now, AfterFunc: clk.AfterFunc, Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	var reads, inFlight atomic.Int32
	v.file.read = func(path string) ([]byte, error) {
		reads.Add(1)
		defer inFlight.Add(-1)
		if inFlight.Add(1) > 1 {
			// Returned, not run: a read piled on the hung one would hang too.
			t.Error("the jwks_file was read again while a read of it hangs")
			return nil, errors.New("a second read in flight")
		}
		return readJWKSFile(path)
	}
	verify := func(kid string, key *rsa.PrivateKey) error {
		_, err := v.Verify(context.Background(), testkit.Mint(t, jwt.SigningMethodRS256, key, kid, testkit.Claims(clk.Now(), nil)))
		return err
	}
	accept := func(kid string, key *rsa.PrivateKey) {
		t.Helper()
		if err := verify(kid, key); err != nil {
			t.Fatalf("kid %s refused: %v", kid, err)
		}
	}
	refuse := func(kid string, key *rsa.PrivateKey) {
		t.Helper()
		if err := verify(kid, key); err == nil || !strings.Contains(err.Error(), "kid") {
			t.Fatalf("kid %s: %v, want refused for its kid", kid, err)
		}
	}
	lines := func(msg string) int { return logs.FilterMessageSnippet(msg).Len() }
	const unusable, reloaded = "jwks_file unusable", "jwks_file reloaded"

	accept("k1", k.RSA)
	hung := testkit.Hang(t, path)
	clk.Advance(jwksFileCheckInterval)
	answer := make(chan error, 1)
	go func() { answer <- verify("k1", k.RSA) }()
	clk.WaitPending(t, 1) // the request waits for its read, which hangs
	select {
	case err := <-answer:
		t.Fatalf("answered (%v) before its wait for the read ended", err)
	default:
	}
	testkit.Eventually(t, "the read started", func() bool { return reads.Load() == 1 })
	clk.Advance(jwksFileReadWait)
	if err := <-answer; err != nil {
		t.Fatalf("refused with the keys in use, when its read hung: %v", err)
	}
	if n := lines(unusable); n != 1 {
		t.Fatalf("%d lines %q when the read hung, want one", n, unusable)
	}
	if msg := logs.FilterMessageSnippet(unusable).All()[0].ContextMap()["error"]; !strings.Contains(msg.(string), "not read within 1s") {
		t.Errorf("the error %q does not say the read hangs", msg)
	}

	for range 3 {
		clk.Advance(jwksFileCheckInterval)
		accept("k1", k.RSA)
		refuse("k2", k.RSA2) // what the hung read will bring is not known yet
		if n := clk.Pending(); n != 0 {
			t.Fatalf("%d waits pending: a request waits for the hung read", n)
		}
	}
	if n := reads.Load(); n != 1 {
		t.Fatalf("%d reads while the file hangs, want the one", n)
	}

	hung.Replace(testkit.JWKS(t, testkit.JWK(t, "k3", k.RSA)))
	hung.Release(testkit.JWKS(t, testkit.JWK(t, "k2", k.RSA2)))
	testkit.Eventually(t, "the hung read taken", func() bool { return lines(reloaded) == 1 })
	accept("k2", k.RSA2)
	refuse("k1", k.RSA)

	clk.Advance(jwksFileCheckInterval)
	accept("k3", k.RSA)
	refuse("k2", k.RSA2)
	if n := reads.Load(); n != 2 {
		t.Errorf("%d reads, want 2: the hung one and the check after it", n)
	}
	if n := lines(unusable); n != 1 {
		t.Errorf("%d lines %q, want the one of the hung read", n, unusable)
	}
	if n := lines(reloaded); n != 2 {
		t.Errorf("%d lines %q, want two: the hung read's and the check's after it", n, reloaded)
	}
}

// TestKeyFileHangsAtStart: a key file whose first read hangs (a FIFO
// with no writer), a jwks_file or a public_key_file, stops New once
// fileload.Wait has passed on the test's clock, naming the setting and
// the file, as an unreadable file does, instead of holding a start or
// reload (and Caddy's config with it) for as long as the file system
// hangs.
func TestKeyFileHangsAtStart(t *testing.T) {
	k := testkit.Keys(t)
	for _, tc := range []struct {
		setting string
		data    []byte
		config  func(path string) *Config
	}{
		{"jwks_file", testkit.JWKS(t, testkit.JWK(t, "k1", k.RSA)),
			func(path string) *Config { return &Config{Algorithms: []string{"RS256"}, JWKSFile: path} }},
		{"public_key_file", testkit.PublicPEM(t, k.RSA),
			func(path string) *Config {
				return &Config{Algorithms: []string{"RS256"}, PublicKeyFiles: []string{path}}
			}},
	} {
		t.Run(tc.setting, func(t *testing.T) {
			path := testkit.WriteFile(t, t.TempDir(), "keys", tc.data)
			clk := testkit.NewClock(time.Now().Truncate(time.Second))
			// The file as it is loads, on the same clock.
			v, err := New(tc.config(path), func(c Claims) Claims { return c }, Options{Now: clk.Now, AfterFunc: clk.AfterFunc})
			if err != nil {
				t.Fatalf("New with the file readable: %v", err)
			}
			_ = v.Close()

			testkit.Hang(t, path)
			started := make(chan error, 1)
			go func() {
				v, err := New(tc.config(path), func(c Claims) Claims { return c }, Options{Now: clk.Now, AfterFunc: clk.AfterFunc})
				if err == nil {
					_ = v.Close()
				}
				started <- err
			}()
			clk.WaitPending(t, 1) // New waits for the read, which hangs
			clk.Advance(fileload.Wait)
			if err := <-started; err == nil || !strings.Contains(err.Error(), tc.setting+": "+path+" not read within 10s") {
				t.Fatalf("New: %v, want the %s not read within 10s", err, tc.setting)
			}
		})
	}
}
