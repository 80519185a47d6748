package bearer

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestPublicKeyFileForms: a public_key_file holds its keys as PKIX public
// keys, PKCS #1 RSA public keys or certificates (an identity provider's
// signing certificate, as Entra ID publishes it), several to a file; a
// token signed by the key of each verifies. A file of no public key, a
// block of another kind, a certificate that does not parse, a key too
// weak and one with an even exponent, which verifies nothing, are
// refused at startup, naming the file and the block.
func TestPublicKeyFileForms(t *testing.T) {
	k := testkit.Keys(t)
	dir := t.TempDir()
	pemOf := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	cert := func(key crypto.Signer) []byte {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "token signing"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			t.Fatal(err)
		}
		return pemOf("CERTIFICATE", der)
	}
	for _, tc := range []struct {
		name   string
		file   []byte
		alg    jwt.SigningMethod
		signer crypto.Signer
	}{
		{"PKCS #1 RSA public key", pemOf("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&k.RSA.PublicKey)), jwt.SigningMethodRS256, k.RSA},
		{"RSA certificate", cert(k.RSA), jwt.SigningMethodRS256, k.RSA},
		{"EC certificate", cert(k.EC), jwt.SigningMethodES256, k.EC},
		{"Ed25519 certificate", cert(k.Ed), jwt.SigningMethodEdDSA, k.Ed},
		{"the second certificate of a file", append(cert(k.RSA2), cert(k.RSA)...), jwt.SigningMethodRS256, k.RSA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newTester(t, &Config{Algorithms: []string{tc.alg.Alg()},
				PublicKeyFiles: []string{testkit.WriteFile(t, dir, "key.pem", tc.file)}})
			v.accept(t, testkit.Mint(t, tc.alg, tc.signer, "", testkit.Claims(v.clock.Now(), nil)))
		})
	}

	// An odd modulus of bits bits, which checkKey judges by its size.
	oddModulus := func(bits int) *big.Int {
		n := new(big.Int).Lsh(big.NewInt(1), uint(bits-1))
		return n.SetBit(n, 0, 1)
	}
	pkixDER := func(key any) []byte {
		der, err := x509.MarshalPKIXPublicKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		file []byte
		want string
	}{
		{"no PEM block", []byte("not a key\n"), "no PEM public key found"},
		{"a block of another kind", pemOf("X509 CRL", []byte{1, 2, 3}), "X509 CRL block: not a public key or certificate"},
		{"a certificate that does not parse", pemOf("CERTIFICATE", []byte{1, 2, 3}), "CERTIFICATE block: x509: malformed certificate"},
		{"a PKCS #1 key that does not parse", pemOf("RSA PUBLIC KEY", []byte{1, 2, 3}), "RSA PUBLIC KEY block: asn1: structure error"},
		{"a certificate of a weak key", cert(weak), "CERTIFICATE block: RSA key of 1024 bits is shorter than 2048"},
		{"an RSA key over 8192 bits", pemOf("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&rsa.PublicKey{N: oddModulus(8193), E: 65537})),
			"RSA PUBLIC KEY block: RSA key of 8193 bits is longer than 8192"},
		{"an RSA key of 16384 bits", pemOf("PUBLIC KEY", pkixDER(&rsa.PublicKey{N: oddModulus(16384), E: 65537})),
			"PUBLIC KEY block: RSA key of 16384 bits is longer than 8192"},
		{"an RSA key with an even exponent", pemOf("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&rsa.PublicKey{N: k.RSA.N, E: 65536})),
			"RSA PUBLIC KEY block: RSA key with an even modulus or exponent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := testkit.WriteFile(t, dir, "bad.pem", tc.file)
			_, err := New(&Config{Algorithms: []string{"RS256"}, PublicKeyFiles: []string{file}}, func(c Claims) Claims { return c }, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), file) {
				t.Fatalf("error %v, want one naming %s and saying %q", err, file, tc.want)
			}
		})
	}
}
