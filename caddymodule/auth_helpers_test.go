package caddymodule

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// testKeys are real keys of every family, generated once per test binary.
type testKeys struct {
	rsa, rsa2 *rsa.PrivateKey
	ec        *ecdsa.PrivateKey
	ec384     *ecdsa.PrivateKey
	ed        ed25519.PrivateKey
	hmac      []byte
}

var (
	keysOnce sync.Once
	keys     testKeys
)

func getKeys(t testing.TB) *testKeys {
	t.Helper()
	keysOnce.Do(func() {
		must := func(err error) {
			if err != nil {
				panic(err)
			}
		}
		var err error
		keys.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		keys.rsa2, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		keys.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		keys.ec384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		must(err)
		_, keys.ed, err = ed25519.GenerateKey(rand.Reader)
		must(err)
		keys.hmac = []byte("0123456789abcdef0123456789abcdef-test-secret")
	})
	return &keys
}

// publicPEM is the PKIX PEM of a private key's public half.
func publicPEM(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// writeFile writes data into the test's temporary directory.
func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// fakeClock replaces the package clock for one test.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func setClock(t testing.TB) *fakeClock {
	t.Helper()
	c := &fakeClock{now: time.Now().Truncate(time.Second)}
	old := clock
	clock = c.Now
	t.Cleanup(func() { clock = old })
	return c
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// mint signs claims with key; kid goes into the header unless empty.
func mint(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	token := jwt.NewWithClaims(method, claims)
	if kid != "" {
		token.Header["kid"] = kid
	}
	s, err := token.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claimsAt are valid claims at now: exp in 10 minutes, iat now, scp set.
func claimsAt(now time.Time, extra jwt.MapClaims) jwt.MapClaims {
	c := jwt.MapClaims{
		"iss": "https://issuer.example/",
		"aud": "api://ucwa",
		"sub": "user-sub",
		"iat": now.Unix(),
		"exp": now.Add(10 * time.Minute).Unix(),
		"scp": "User.Read Conversations.Initiate",
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// unsignedToken is an `alg: none` token.
func unsignedToken(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// jwkOf is the public JWK of a private key.
func jwkOf(t testing.TB, kid string, key crypto.Signer) map[string]string {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	switch pub := key.Public().(type) {
	case *rsa.PublicKey:
		return map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "n": b64(pub.N.Bytes()), "e": b64([]byte{1, 0, 1})}
	case *ecdsa.PublicKey:
		raw, err := pub.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		size := (len(raw) - 1) / 2
		return map[string]string{"kty": "EC", "kid": kid, "crv": pub.Curve.Params().Name, "x": b64(raw[1 : 1+size]), "y": b64(raw[1+size:])}
	case ed25519.PublicKey:
		return map[string]string{"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64(pub)}
	}
	t.Fatalf("no JWK for %T", key)
	return nil
}

// jwksJSON is a JWK Set of the given keys.
func jwksJSON(t testing.TB, jwks ...map[string]string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": jwks})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jwksServer is a loopback identity provider serving a JWK Set that tests
// rotate, break and stall.
type jwksServer struct {
	*httptest.Server
	hits atomic.Int64

	mu     sync.Mutex
	body   []byte
	status int
	stall  chan struct{} // when set, requests wait until it is closed
}

func newJWKSServer(t *testing.T, body []byte) *jwksServer {
	t.Helper()
	s := &jwksServer{body: body, status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		body, status, stall := s.body, s.status, s.stall
		s.mu.Unlock()
		if stall != nil {
			select {
			case <-stall:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=86400, private")
		w.WriteHeader(status)
		w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(status int, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

func (s *jwksServer) setStall(stall chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stall = stall
}

// authSite is a Caddyfile whose ucwa handler has the given auth
// subdirectives, in front of a reverse_proxy to upstream. Caddy's logs
// (debug level) and the access log go to logFile.
func authSite(auth, upstream, logFile string) string {
	return fmt.Sprintf(`{
	admin localhost:ADMIN_PORT
	http_port EDGE_PORT
	skip_install_trust
	log {
		output file %[3]s
		level DEBUG
	}
}
:EDGE_PORT {
	log {
		output file %[3]s
	}
	ucwa {
		default_region US
		%[1]s
	}
	reverse_proxy %[2]s {
		header_up X-User {http.auth.user.id}
		header_up X-Ucwa-Sub {http.ucwa.sub}
		header_up X-Ucwa-Oid {http.ucwa.oid}
		header_up X-Ucwa-Tid {http.ucwa.tid}
		header_up X-Ucwa-Client {http.ucwa.client_id}
		header_up X-Ucwa-Scopes {http.ucwa.scopes}
	}
}`, auth, upstream, logFile)
}

// sendWithAuth posts a startPhoneAudio request with the given Authorization
// header values (none when empty) and returns status, headers and body.
func sendWithAuth(t testing.TB, client *http.Client, accept string, authorization ...string) (*http.Response, string) {
	t.Helper()
	return send(t, client, http.MethodPost, edgeURL(startPath), "application/json", accept, `{"to":"4255551234"}`,
		http.Header{"Authorization": authorization})
}

// ucwaError decodes a JSON UCWA error body.
func ucwaError(t testing.TB, body string) (code, message string) {
	t.Helper()
	var e struct{ Code, Message string }
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("not a JSON UCWA error: %q", body)
	}
	return e.Code, e.Message
}
