package bearer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ucwa-edge/caddy-ucwa/internal/fileload"
)

// family is a kind of key; a key verifies only the algorithms of its own
// family, whatever a token's header claims.
type family int

const (
	familyNone family = iota
	familyRSA
	familyEC
	familyEd25519
	familyHMAC
)

func (f family) String() string {
	switch f {
	case familyRSA:
		return "RSA"
	case familyEC:
		return "EC"
	case familyEd25519:
		return "Ed25519"
	case familyHMAC:
		return "HMAC"
	}
	return "none"
}

// algorithmFamilies lists every algorithm the edge can verify with the
// family of key it needs. `none` is deliberately absent.
var algorithmFamilies = map[string]family{
	"RS256": familyRSA, "RS384": familyRSA, "RS512": familyRSA,
	"PS256": familyRSA, "PS384": familyRSA, "PS512": familyRSA,
	"ES256": familyEC, "ES384": familyEC, "ES512": familyEC,
	"EdDSA": familyEd25519,
	"HS256": familyHMAC, "HS384": familyHMAC, "HS512": familyHMAC,
}

// ecCurves pins each ES algorithm to its curve (RFC 7518 3.4): a P-384
// key never verifies an ES256 token.
var ecCurves = map[string]elliptic.Curve{
	"ES256": elliptic.P256(),
	"ES384": elliptic.P384(),
	"ES512": elliptic.P521(),
}

// minHMACSecret is the shortest secret each HS algorithm accepts: the
// size of its hash (RFC 7518 3.2).
var minHMACSecret = map[string]int{"HS256": 32, "HS384": 48, "HS512": 64}

// minRSABits is the smallest RSA modulus accepted (RFC 7518 3.3).
const minRSABits = 2048

// maxRSABits is the largest RSA modulus accepted, the largest Go's TLS
// client takes from a server (tlsmaxrsasize): crypto/rsa verifies with a
// modulus of any size, at a cost that grows at least with its square: a
// token checked against a key of 16384 bits costs some 4.5 ms, against
// 45 us for 2048 bits and 1.2 ms for 8192, and one against a key as
// large as a token's signature can be in the 8 KiB the edge reads of a
// header (some 49000 bits) some 40 ms.
const maxRSABits = 8192

// keyFamily returns the family of a verification key.
func keyFamily(key any) family {
	switch key.(type) {
	case *rsa.PublicKey:
		return familyRSA
	case *ecdsa.PublicKey:
		return familyEC
	case ed25519.PublicKey:
		return familyEd25519
	case []byte:
		return familyHMAC
	}
	return familyNone
}

// keyFits reports whether key may verify a token signed with alg: same
// family and, for EC, the curve the algorithm names.
func keyFits(alg string, key any) bool {
	f, ok := algorithmFamilies[alg]
	if !ok || keyFamily(key) != f {
		return false
	}
	if ec, isEC := key.(*ecdsa.PublicKey); isEC {
		return ec.Curve == ecCurves[alg]
	}
	return true
}

// verificationKey is one key from any source.
type verificationKey struct {
	// The JWK "kid"; empty for keys from PEM files and the HMAC secret,
	// which match tokens with any or no kid, and for a JWK Set's keys
	// that have none (see fromSet).
	id string
	// The JWK "alg" when the key set pins one; empty otherwise.
	alg string
	key any
}

// fitsAlg reports whether k may verify a token signed with alg, whatever
// its kid.
func (k verificationKey) fitsAlg(alg string) bool {
	return (k.alg == "" || k.alg == alg) && keyFits(alg, k.key)
}

// sameKeys reports whether a and b hold the same keys in the same order.
func sameKeys(a, b []verificationKey) bool {
	return slices.EqualFunc(a, b, func(x, y verificationKey) bool {
		xk, ok := x.key.(interface{ Equal(crypto.PublicKey) bool })
		return ok && x.id == y.id && x.alg == y.alg && xk.Equal(y.key)
	})
}

// checkKey refuses keys too weak to trust, RSA keys too large to verify
// with at a bounded cost, and RSA keys that are no RSA key and verify
// nothing.
func checkKey(key any) error {
	if rsaKey, ok := key.(*rsa.PublicKey); ok {
		if rsaKey.N.BitLen() < minRSABits {
			return fmt.Errorf("RSA key of %d bits is shorter than %d", rsaKey.N.BitLen(), minRSABits)
		}
		if rsaKey.N.BitLen() > maxRSABits {
			return fmt.Errorf("RSA key of %d bits is longer than %d", rsaKey.N.BitLen(), maxRSABits)
		}
		// No RSA key has either (RFC 8017 3.1): Go's RSA refuses to
		// verify with it, so such a key verifies no token.
		if rsaKey.N.Bit(0) == 0 || rsaKey.E%2 == 0 {
			return errors.New("RSA key with an even modulus or exponent")
		}
	}
	if keyFamily(key) == familyNone {
		return fmt.Errorf("unsupported key type %T", key)
	}
	return nil
}

// loadPublicKeyFile reads every public key in a PEM file: PUBLIC KEY
// (PKIX: RSA, EC or Ed25519), RSA PUBLIC KEY (PKCS #1) or CERTIFICATE.
// It waits for the read fileload.Wait at most, on afterFunc's timer: a
// read that takes longer (a file system that hangs) stops startup, and
// is left to end unheeded, a later load waiting for it rather than
// reading the file again.
func loadPublicKeyFile(path string, afterFunc func(time.Duration, func()) interface{ Stop() bool }) ([]verificationKey, error) {
	data, err := fileload.Read(path, afterFunc)
	if err != nil {
		return nil, fmt.Errorf("public_key_file: %w", err)
	}
	return parsePublicKeyFile(path, data)
}

// parsePublicKeyFile reads every public key of data, the PEM file at
// path, as loadPublicKeyFile does: each block a public key that checkKey
// accepts, one at least.
func parsePublicKeyFile(path string, data []byte) ([]verificationKey, error) {
	var keys []verificationKey
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		key, err := parsePEMBlock(block)
		if err == nil {
			err = checkKey(key)
		}
		if err != nil {
			return nil, fmt.Errorf("public_key_file %s: %s block: %w", path, block.Type, err)
		}
		keys = append(keys, verificationKey{key: key})
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("public_key_file %s: no PEM public key found", path)
	}
	return keys, nil
}

func parsePEMBlock(block *pem.Block) (any, error) {
	switch block.Type {
	case "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		return cert.PublicKey, nil
	}
	if strings.Contains(block.Type, "PRIVATE KEY") {
		return nil, errors.New("a private key does not belong on the edge; give its public key")
	}
	return nil, errors.New("not a public key or certificate")
}
