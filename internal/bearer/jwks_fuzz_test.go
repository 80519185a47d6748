package bearer

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// FuzzParseJWKS: whatever a JWK Set holds, parseJWKS never panics, and
// each key it takes is one the edge can verify with (RSA of 2048 bits or
// more, its modulus and its exponent odd, the exponent from 3 to
// 2^31-1, an EC point on a P-256, P-384 or P-521 curve, an Ed25519 key),
// of a member meant for signatures (a use of "sig" or none, a key_ops
// that lists "verify" or none), with no alg or a supported one that fits
// the key's family and curve, and reads back the same when written
// out again as a JWK: the set's bytes mean one key and its parameters
// only. Member names are read as written (RFC 7517 4: "KTY" is no
// "kty"); a key that is no object, or whose members the edge reads are
// of another JSON type, is never taken, read in part.
func FuzzParseJWKS(f *testing.F) {
	k := testkit.Keys(f)
	rsaKey := testkit.JWK(f, "r", k.RSA)
	rsaKey["use"] = "sig"
	ec := testkit.JWK(f, "e", k.EC)
	ec["alg"] = "ES256"
	enc := testkit.JWK(f, "enc", k.EC384)
	enc["use"] = "enc"
	f.Add(testkit.JWKS(f, rsaKey, ec, testkit.JWK(f, "e384", k.EC384), testkit.JWK(f, "d", k.Ed), enc))
	ops := testkit.JWKS(f, testkit.JWK(f, "v", k.EC), testkit.JWK(f, "x", k.Ed))
	ops = bytes.Replace(ops, []byte(`"kid":"v"`), []byte(`"key_ops":["verify"],"kid":"v"`), 1)
	f.Add(bytes.Replace(ops, []byte(`"kid":"x"`), []byte(`"key_ops":["encrypt"],"kid":"x"`), 1))
	f.Add([]byte(`{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}]}`))
	f.Add([]byte(`{"keys":[5,null,{"kty":"RSA","kid":7},{"kty":"EC","crv":"P-256","n":5},{"kty":"OKP","key_ops":"verify"}]}`))
	f.Add(bytes.Replace(testkit.JWKS(f, testkit.JWK(f, "m", k.RSA), testkit.JWK(f, "d", k.Ed)), []byte(`"n":"`), []byte(`"n":5,"unread":"`), 1))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"},{"kty":"OKP","crv":"Ed25519","x":"AAAA"},{"kty":"EC","crv":"P-256","x":"","y":""}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, _, err := parseJWKS(data)
		if err != nil {
			if len(keys) != 0 {
				t.Fatalf("%q: keys and %v", data, err)
			}
			return
		}
		if len(keys) == 0 {
			t.Fatalf("%q: no keys and no error", data)
		}
		// The set's members by their names as written: case-sensitive.
		var set map[string]any
		if err := json.Unmarshal(data, &set); err != nil {
			t.Fatalf("%q: taken, but json.Unmarshal: %v", data, err)
		}
		members, _ := set["keys"].([]any)
		out := make([]map[string]string, len(keys))
		for i, key := range keys {
			if _, known := algorithmFamilies[key.alg]; key.alg != "" && (!known || !keyFits(key.alg, key.key)) {
				t.Fatalf("%q: key %d has alg %q", data, i, key.alg)
			}
			b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
			m := map[string]string{"kid": key.id, "alg": key.alg}
			switch pub := key.key.(type) {
			case *rsa.PublicKey:
				if pub.N.BitLen() < minRSABits || pub.E < 3 || pub.E > 1<<31-1 || pub.E%2 == 0 || pub.N.Bit(0) == 0 {
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
		again, _, err := parseJWKS(testkit.JWKS(t, out...))
		if err != nil || !sameKeys(keys, again) {
			t.Fatalf("%q: written out and read again: %v, %v", data, again, err)
		}
		// Every key came from a member meant for signatures, in order,
		// that is an object whose members the edge reads are of their
		// JSON types (strings, key_ops an array of strings) or null: a
		// key of another type is skipped, not read in part.
		i := 0
		for _, m := range members {
			member, _ := m.(map[string]any)
			str := func(name string) string { v, _ := member[name].(string); return v }
			// key_ops, when given, must list "verify".
			ops, given := member["key_ops"].([]any)
			if i < len(keys) && member != nil && wellTyped(member) && str("kid") == keys[i].id && str("alg") == keys[i].alg && (str("use") == "" || str("use") == "sig") &&
				(!given || slices.Contains(ops, any("verify"))) && str("kty") != "oct" {
				i++
			}
		}
		if i != len(keys) {
			t.Fatalf("%q: the keys taken %v are not the set's signature members in order", data, keys)
		}
	})
}

// wellTyped reports whether the members of a JWK (as json.Unmarshal
// reads it into a map) that the edge reads are strings, key_ops an
// array of strings, or null.
func wellTyped(member map[string]any) bool {
	for _, name := range []string{"kty", "kid", "alg", "use", "crv", "n", "e", "x", "y"} {
		switch member[name].(type) {
		case nil, string:
		default:
			return false
		}
	}
	switch ops := member["key_ops"].(type) {
	case nil:
	case []any:
		for _, op := range ops {
			switch op.(type) {
			case nil, string:
			default:
				return false
			}
		}
	default:
		return false
	}
	return true
}

// FuzzCacheMaxAge: for any Cache-Control, cacheMaxAge gives -1 or whole
// seconds up to a year; a no-store or no-cache anywhere makes it 0; a
// max-age the server adds after the others is the one taken; and it
// says -1 only when no directive is a max-age of a non-negative number.
func FuzzCacheMaxAge(f *testing.F) {
	for _, s := range []string{"public, max-age=3600", "max-age=600, no-store", "MAX-AGE=\"60\"", "max-age=-5", "max-age=+5", "max-age = 5",
		"no-cachex, max-age=1", "max-age=99999999999999999999"} {
		f.Add(s, "private", uint32(60))
	}
	const year = 365 * 24 * time.Hour
	f.Fuzz(func(t *testing.T, first, second string, secs uint32) {
		values := []string{first, second}
		got := cacheMaxAge(http.Header{"Cache-Control": values})
		if got != -1 && (got < 0 || got > year || got%time.Second != 0) {
			t.Fatalf("%q: %v", values, got)
		}
		// A max-age of up to 18 digits is always a number of seconds.
		noStore, maxAge := false, false
		for _, d := range strings.Split(strings.Join(values, ","), ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(name) {
			case "no-store", "no-cache":
				noStore = true
			case "max-age":
				value = strings.Trim(value, `"`)
				maxAge = maxAge || value != "" && len(value) <= 18 && strings.Trim(value, "0123456789") == ""
			}
		}
		if noStore && got != 0 {
			t.Fatalf("%q: %v, but it says no-store or no-cache", values, got)
		}
		if maxAge && got == -1 {
			t.Fatalf("%q: -1, but it gives a max-age", values)
		}
		withMaxAge := append(values, "max-age="+strconv.FormatUint(uint64(secs), 10))
		want := min(time.Duration(secs)*time.Second, year)
		if noStore {
			want = 0
		}
		if got := cacheMaxAge(http.Header{"Cache-Control": withMaxAge}); got != want {
			t.Fatalf("%q: %v, want %v", withMaxAge, got, want)
		}
	})
}
