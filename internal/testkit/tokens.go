package testkit

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// KeySet holds real signing keys of every family.
type KeySet struct {
	RSA, RSA2 *rsa.PrivateKey
	EC        *ecdsa.PrivateKey // P-256
	EC384     *ecdsa.PrivateKey // P-384
	Ed        ed25519.PrivateKey
	HMAC      []byte // 44 bytes: long enough for HS256
}

var (
	keysOnce sync.Once
	keySet   KeySet
)

// keysFileEnv names a PEM file of the test binary's keys (PKCS #8, in
// KeySet's order): when it is set, Keys reads the keys from the file,
// writing it first when it does not exist. Runs of a test binary then use
// the same keys and generate none, so that a benchmark's instruction
// counts (valgrind's cachegrind) compare across runs: generating RSA keys
// costs a random amount of work, hundreds of millions of instructions.
const keysFileEnv = "UCWA_TEST_KEYS"

// Keys returns the test binary's keys, generated on first use (or read
// from the file that UCWA_TEST_KEYS names).
func Keys(t testing.TB) *KeySet {
	t.Helper()
	keysOnce.Do(func() {
		file := os.Getenv(keysFileEnv)
		if file != "" {
			if b, err := os.ReadFile(file); err == nil {
				keySet = readKeys(b)
				return
			}
		}
		keySet = generateKeys()
		if file != "" {
			if err := os.WriteFile(file, keySet.pem(), 0o600); err != nil {
				panic(err)
			}
		}
	})
	return &keySet
}

func generateKeys() (ks KeySet) {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	var err error
	ks.RSA, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	ks.RSA2, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	ks.EC, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	ks.EC384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	must(err)
	_, ks.Ed, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	ks.HMAC = []byte(testHMACSecret)
	return ks
}

const testHMACSecret = "0123456789abcdef0123456789abcdef-test-secret"

// pem is the private keys of ks as UCWA_TEST_KEYS's file holds them.
func (ks *KeySet) pem() []byte {
	var out []byte
	for _, k := range []any{ks.RSA, ks.RSA2, ks.EC, ks.EC384, ks.Ed} {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			panic(err)
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})...)
	}
	return out
}

// readKeys reads the keys of a UCWA_TEST_KEYS file.
func readKeys(b []byte) (ks KeySet) {
	var keys []any
	for {
		var block *pem.Block
		if block, b = pem.Decode(b); block == nil {
			break
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			panic(fmt.Sprintf("%s: %v", keysFileEnv, err))
		}
		keys = append(keys, k)
	}
	if len(keys) != 5 {
		panic(fmt.Sprintf("%s: %d keys, want 5", keysFileEnv, len(keys)))
	}
	ks.RSA, ks.RSA2 = keys[0].(*rsa.PrivateKey), keys[1].(*rsa.PrivateKey)
	ks.EC, ks.EC384 = keys[2].(*ecdsa.PrivateKey), keys[3].(*ecdsa.PrivateKey)
	ks.Ed = keys[4].(ed25519.PrivateKey)
	ks.HMAC = []byte(testHMACSecret)
	return ks
}

// PublicPEM is the PKIX PEM of a private key's public half.
func PublicPEM(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// PrivatePEM is the PKCS #8 PEM of a private key.
func PrivatePEM(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// CACertificatePEM is a new self-signed CA certificate, as the CA of a
// pool's certificates would be.
func CACertificatePEM(t testing.TB) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Contoso pools test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// WriteFile writes data to name in dir and returns its path.
func WriteFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Mint signs claims with key; kid goes into the header unless empty.
func Mint(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
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

// MintRaw signs a token whose header and claims are the given JSON texts,
// byte for byte: for tokens no JSON encoder writes, such as one that
// gives a member twice.
func MintRaw(t testing.TB, method jwt.SigningMethod, key any, header, claims string) string {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	signing := b64([]byte(header)) + "." + b64([]byte(claims))
	sig, err := method.Sign(signing, key)
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + b64(sig)
}

// ClaimsJSON is claims as the JSON text of a token's payload.
func ClaimsJSON(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Claims are valid claims at now: issuer https://issuer.example/,
// audience api://ucwa, subject user-sub, issued now, expiring in 10
// minutes, with scp "User.Read Conversations.Initiate". extra adds or
// replaces claims; a nil value removes one.
func Claims(now time.Time, extra jwt.MapClaims) jwt.MapClaims {
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

// EntraClaims are valid claims at now shaped like an Entra ID access
// token's, so that parsing them costs what a real token costs (signed,
// the token is about 1.3 KB).
func EntraClaims(now time.Time) jwt.MapClaims {
	return Claims(now, jwt.MapClaims{
		"tid": "72f988bf-86f1-41af-91ab-2d7cd011db47", "oid": "d2a5b7e4-6f0a-4a0e-9f3b-1c2d3e4f5a6b",
		"appid": "00000004-0000-0ff1-ce00-000000000000", "name": "Jane Doe", "upn": "jane@contoso.com",
		"amr": []string{"pwd", "mfa"}, "ipaddr": "203.0.113.7", "ver": "1.0", "acr": "1",
		"uti": "AbCdEfGhIjKlMnOpQrStUv", "rh": strings.Repeat("0.AAAA", 12), "aio": strings.Repeat("E2ZgYJ", 20),
	})
}

// Unsigned is an `alg: none` token.
func Unsigned(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Tamper changes the payload of a signed token (it adds a scope), keeping
// its signature.
func Tamper(t testing.TB, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	claims, err := jwt.NewParser().DecodeSegment(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(claims, &m); err != nil {
		t.Fatal(err)
	}
	m["scp"] = "Conversations.Initiate Conversations.Receive Admin"
	b, _ := json.Marshal(m)
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

// PadBitSet returns token with the lowest of the unused bits of its
// signature's last base64url character set: the same signature bytes to
// a decoder that ignores those bits, in another string, which no issuer
// wrote. A signature whose length is a multiple of 3 bytes has no such
// bits, and fails the test.
func PadBitSet(t testing.TB, token string) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	sig := token[strings.LastIndexByte(token, '.')+1:]
	last := strings.IndexByte(alphabet, sig[len(sig)-1])
	if len(sig)%4 == 0 || last < 0 || last&1 != 0 {
		t.Fatalf("the signature (%d characters) has no unused bit to set", len(sig))
	}
	return token[:len(token)-1] + string(alphabet[last|1])
}

// JWK is the public JWK of a private key.
func JWK(t testing.TB, kid string, key crypto.Signer) map[string]string {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	switch pub := key.Public().(type) {
	case *rsa.PublicKey:
		return map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes())}
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

// RSAJWKs are n public RSA JWKs with kids k1 to kn, as an identity
// provider publishes several signing keys (Entra ID some eight): the
// at-th (counted from 1) is signer's, and each other one no token's,
// decoy's modulus with an odd exponent of its own, so that no key is
// generated for it.
func RSAJWKs(t testing.TB, n, at int, signer, decoy *rsa.PrivateKey) []map[string]string {
	t.Helper()
	keys := make([]map[string]string, n)
	for i := range keys {
		kid := "k" + strconv.Itoa(i+1)
		if i+1 == at {
			keys[i] = JWK(t, kid, signer)
			continue
		}
		keys[i] = JWK(t, kid, decoy)
		keys[i]["e"] = base64.RawURLEncoding.EncodeToString(big.NewInt(int64(3 + 2*i)).Bytes())
	}
	return keys
}

// WithoutKids is keys with no kid member, as a JWK Set may publish them.
func WithoutKids(keys []map[string]string) []map[string]string {
	out := make([]map[string]string, len(keys))
	for i, key := range keys {
		out[i] = maps.Clone(key)
		delete(out[i], "kid")
	}
	return out
}

// JWKS is a JWK Set of the given keys.
func JWKS(t testing.TB, keys ...map[string]string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// JWKSServer is a loopback identity provider serving a JWK Set that a
// test can rotate, break and stall. It answers with Cache-Control
// max-age of a day.
type JWKSServer struct {
	*httptest.Server
	// Hits counts the requests for the set.
	Hits Counter

	mu     sync.Mutex
	body   []byte
	status int
	stall  chan struct{} // when set, requests wait until it is closed
}

// NewJWKSServer serves body as the key set at every path.
func NewJWKSServer(t testing.TB, body []byte) *JWKSServer {
	t.Helper()
	s := &JWKSServer{body: body, status: http.StatusOK}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Hits.Add()
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
		_, _ = w.Write(body)
	}))
	s.Config.ErrorLog = quietLog
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// Serve makes the server answer with status and body from now on.
func (s *JWKSServer) Serve(status int, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

// Stall makes requests wait until stall is closed (nil: no wait).
func (s *JWKSServer) Stall(stall chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stall = stall
}
