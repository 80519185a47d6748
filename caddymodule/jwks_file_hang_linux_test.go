//go:build linux

package caddymodule

import (
	"crypto/rsa"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestJWKSFileHangs: a jwks_file whose read hangs (a FIFO with no writer,
// which blocks open(2) as a hung NFS or FUSE mount does) leaves the edge
// answering, through a real Caddy: the request that runs the file's check
// waits for the read at most a second (bearer's wait, on Caddy's clock),
// the checks due after it skip the read in flight, and each request
// passes with the keys in use while the read still hangs (the FIFO still
// has its reader when it is released); the hang is logged once. The
// read, released, is taken, and the file in its place is read at the
// next check. The edge's token clock is the test's, so that checks fall
// due when the test says.
func TestJWKSFileHangs(t *testing.T) {
	k := testkit.Keys(t)
	clk := testkit.NewClock(time.Now().Truncate(time.Second))
	bearerNow = clk.Now
	t.Cleanup(func() { bearerNow = time.Now })
	path := testkit.WriteFile(t, t.TempDir(), "keys.json", testkit.JWKS(t, testkit.JWK(t, "k1", k.RSA)))
	up := testkit.NewUpstream(t)
	e := startEdge(t, "caddyfile", authSite(fmt.Sprintf(`jwt {
			algorithms RS256
			jwks_file %s
		}`, path), up.Addr()))
	send := func(kid string, key *rsa.PrivateKey) testkit.Response {
		t.Helper()
		return e.sendWithAuth("", "Bearer "+testkit.Mint(t, jwt.SigningMethodRS256, key, kid, testkit.Claims(clk.Now(), nil)))
	}
	accept := func(kid string, key *rsa.PrivateKey) {
		t.Helper()
		if resp := send(kid, key); resp.Status != http.StatusCreated {
			t.Fatalf("kid %s: %d %s, want 201", kid, resp.Status, resp.Body)
		}
	}
	refuse := func(kid string, key *rsa.PrivateKey) {
		t.Helper()
		if resp := send(kid, key); resp.Status != http.StatusUnauthorized || !strings.Contains(resp.Body, "kid") {
			t.Fatalf("kid %s: %d %s, want 401 for its kid", kid, resp.Status, resp.Body)
		}
	}
	const unusable, reloaded = `"msg":"jwks_file unusable; keeping the previous keys`, `"msg":"jwks_file reloaded"`

	accept("k1", k.RSA)
	hung := testkit.Hang(t, path)
	for range 4 {
		clk.Advance(2 * time.Second) // past the check interval: the first check's read hangs
		accept("k1", k.RSA)
		refuse("k2", k.RSA2)
	}
	e.Logs().Wait(t, unusable)
	lines := e.Logs().Lines(unusable)
	if len(lines) != 1 {
		t.Fatalf("%d lines %s over four checks of a hung file, want one", len(lines), unusable)
	}
	for _, want := range []string{`"level":"error"`, `"logger":"http.handlers.ucwa"`, `"path":"` + path + `"`, `not read within 1s`} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("the line holds no %s: %s", want, lines[0])
		}
	}

	hung.Replace(testkit.JWKS(t, testkit.JWK(t, "k3", k.RSA)))
	hung.Release(testkit.JWKS(t, testkit.JWK(t, "k2", k.RSA2)))
	e.Logs().Wait(t, reloaded)
	accept("k2", k.RSA2)
	refuse("k1", k.RSA)
	clk.Advance(2 * time.Second)
	accept("k3", k.RSA)
	refuse("k2", k.RSA2)
	if n := len(e.Logs().Lines(unusable)); n != 1 {
		t.Errorf("%d lines %s, want the one of the hung read", n, unusable)
	}
}

// TestJWKSFileHangsAtReload: a reload whose jwks_file hangs (a FIFO with
// no writer) is refused once bearer's wait for the first read (10s on the
// test's clock) has passed, saying so, instead of holding Caddy's config
// for as long as the file system hangs; the running config goes on
// answering with the keys it holds, its own check of the hung file
// waiting 1s at most.
func TestJWKSFileHangsAtReload(t *testing.T) {
	k := testkit.Keys(t)
	clk := testkit.NewClock(time.Now().Truncate(time.Second))
	bearerNow, bearerAfterFunc = clk.Now, clk.AfterFunc
	t.Cleanup(func() { bearerNow, bearerAfterFunc = time.Now, nil })
	path := testkit.WriteFile(t, t.TempDir(), "keys.json", testkit.JWKS(t, testkit.JWK(t, "k1", k.RSA)))
	up := testkit.NewUpstream(t)
	config := authSite(fmt.Sprintf(`jwt {
			algorithms RS256
			jwks_file %s
		}`, path), up.Addr())
	e := startEdge(t, "caddyfile", config)
	request := func() testkit.Request {
		return testkit.Request{URL: e.url(startPath), ContentType: "application/json", Body: `{"to":"4255551234"}`,
			Header: http.Header{"Authorization": {"Bearer " + testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "k1", testkit.Claims(clk.Now(), nil))}}}
	}
	if resp := testkit.Send(t, e.Client(), request()); resp.Status != http.StatusCreated {
		t.Fatalf("%d %s, want 201", resp.Status, resp.Body)
	}
	testkit.Hang(t, path)

	// The reload's wait is on the test's clock, which is advanced by the
	// wait once the reload waits: LoadRefused returns only then.
	defer clk.AdvanceWhenWaited(10 * time.Second)()
	if err := e.LoadRefused("caddyfile", config); !strings.Contains(err.Error(), "jwks_file: "+path+" not read within 10s") {
		t.Fatalf("the reload: %v, want refused for the jwks_file not read within 10s", err)
	}

	// Ten seconds on, the running config's check of the file is due, and
	// hangs too.
	req := request()
	answer := make(chan error, 1)
	go func() {
		resp, err := testkit.Do(e.Client(), req)
		if err == nil && resp.Status != http.StatusCreated {
			err = fmt.Errorf("%d %s, want 201", resp.Status, resp.Body)
		}
		answer <- err
	}()
	clk.WaitPending(t, 1)
	clk.Advance(time.Second)
	if err := <-answer; err != nil {
		t.Fatalf("after the refused reload: %v", err)
	}
}
