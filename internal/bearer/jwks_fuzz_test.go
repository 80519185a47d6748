package bearer

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// FuzzParseJWKS: whatever a JWK Set holds, parseJWKS never panics, and
// each key it takes is one the edge can verify with (RSA of 2048 bits or
// more with an exponent from 3 to 2^31-1, an EC point on a P-256, P-384
// or P-521 curve, an Ed25519 key), of a member meant for signatures,
// with no alg or a supported one, and reads back the same when written
// out again as a JWK: the set's bytes mean one key and its parameters
// only.
func FuzzParseJWKS(f *testing.F) {
	k := testkit.Keys(f)
	rsaKey := testkit.JWK(f, "r", k.RSA)
	rsaKey["use"] = "sig"
	ec := testkit.JWK(f, "e", k.EC)
	ec["alg"] = "ES256"
	enc := testkit.JWK(f, "enc", k.EC384)
	enc["use"] = "enc"
	f.Add(testkit.JWKS(f, rsaKey, ec, testkit.JWK(f, "e384", k.EC384), testkit.JWK(f, "d", k.Ed), enc))
	f.Add([]byte(`{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"},{"kty":"OKP","crv":"Ed25519","x":"AAAA"},{"kty":"EC","crv":"P-256","x":"","y":""}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := parseJWKS(data)
		if err != nil {
			if len(keys) != 0 {
				t.Fatalf("%q: keys and %v", data, err)
			}
			return
		}
		if len(keys) == 0 {
			t.Fatalf("%q: no keys and no error", data)
		}
		var set jwkSet
		if err := json.Unmarshal(data, &set); err != nil {
			t.Fatalf("%q: taken, but json.Unmarshal: %v", data, err)
		}
		out := make([]map[string]string, len(keys))
		for i, key := range keys {
			if _, known := algorithmFamilies[key.alg]; key.alg != "" && !known {
				t.Fatalf("%q: key %d has alg %q", data, i, key.alg)
			}
			b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
			m := map[string]string{"kid": key.id, "alg": key.alg}
			switch pub := key.key.(type) {
			case *rsa.PublicKey:
				if pub.N.BitLen() < minRSABits || pub.E < 3 || pub.E > 1<<31-1 {
					t.Fatalf("%q: key %d: RSA of %d bits, e=%d", data, i, pub.N.BitLen(), pub.E)
				}
				m["kty"], m["n"], m["e"] = "RSA", b64(pub.N.Bytes()), b64(big.NewInt(int64(pub.E)).Bytes())
			case *ecdsa.PublicKey:
				raw, err := pub.Bytes()
				if err != nil {
					t.Fatalf("%q: key %d: %v", data, i, err)
				}
				size := (len(raw) - 1) / 2
				m["kty"], m["crv"], m["x"], m["y"] = "EC", pub.Curve.Params().Name, b64(raw[1:1+size]), b64(raw[1+size:])
			case ed25519.PublicKey:
				m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", b64(pub)
			default:
				t.Fatalf("%q: key %d is a %T", data, i, key.key)
			}
			out[i] = m
		}
		again, err := parseJWKS(testkit.JWKS(t, out...))
		if err != nil || !sameKeys(keys, again) {
			t.Fatalf("%q: written out and read again: %v, %v", data, again, err)
		}
		// Every key came from a member meant for signatures, in order.
		i := 0
		for _, member := range set.Keys {
			if i < len(keys) && member.Kid == keys[i].id && member.Alg == keys[i].alg && (member.Use == "" || member.Use == "sig") &&
				member.Kty != "oct" {
				i++
			}
		}
		if i != len(keys) {
			t.Fatalf("%q: the keys taken %v are not the set's signature members in order", data, keys)
		}
	})
}
