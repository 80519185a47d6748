package bearer

import (
	"crypto"
	"slices"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// FuzzFromSet: of a key set of any keys, kids and pinned algs, the keys
// fromSet hands a token of any alg and kid (its header's, the client's
// to write) all verify that alg (its family, and its curve for EC, and
// the key's pinned alg if any); a key is handed over only when its kid
// is the token's, or when it is the set's one key of that alg and either
// has no kid or the token names none; a token's kid always gets the
// set's keys of that alg and kid; a token without kid gets one key at
// most, and is told it needs one (kidNeeded) exactly when the set has
// several keys of its alg.
func FuzzFromSet(f *testing.F) {
	k := testkit.Keys(f)
	public := []crypto.PublicKey{k.RSA.Public(), k.RSA2.Public(), k.EC.Public(), k.EC384.Public(), k.Ed.Public()}
	algs := []string{"", "RS256", "PS384", "ES256", "ES384", "ES512", "EdDSA", "HS256", "none", "RS256 "}
	f.Add("k1\nk2\n\nk1", []byte{0, 1, 2, 3, 4}, uint8(1), "k1")
	f.Add("a\nb", []byte{0x10, 0x21}, uint8(1), "")
	f.Add("\n", []byte{2, 0x32}, uint8(3), "")
	f.Add("x", []byte{4}, uint8(6), "y")
	f.Fuzz(func(t *testing.T, ids string, shape []byte, algIndex uint8, kid string) {
		var set []verificationKey
		for i, id := range strings.Split(ids, "\n") {
			if i >= len(shape) {
				break
			}
			// shape's low bits choose the key, its high bits the alg pinned.
			set = append(set, verificationKey{id: id, key: public[int(shape[i]&0x0f)%len(public)], alg: algs[int(shape[i]>>4)%len(algs)]})
		}
		alg := algs[int(algIndex)%len(algs)]
		keys, kidNeeded := fromSet(nil, set, alg, kid)
		var fitting, named []int
		for i, key := range set {
			if key.fitsAlg(alg) {
				fitting = append(fitting, i)
				if kid != "" && key.id == kid {
					named = append(named, i)
				}
			}
		}
		sameKey := func(a jwt.VerificationKey, b verificationKey) bool {
			ak, ok := a.(interface{ Equal(crypto.PublicKey) bool })
			return ok && ak.Equal(b.key)
		}
		for _, key := range keys {
			ok := slices.ContainsFunc(named, func(i int) bool { return sameKey(key, set[i]) }) ||
				len(fitting) == 1 && len(named) == 0 && (kid == "" || set[fitting[0]].id == "") && sameKey(key, set[fitting[0]])
			if !ok || !keyFits(alg, key) {
				t.Fatalf("%s kid %q, set %+v: handed %T", alg, kid, set, key)
			}
		}
		if len(keys) < len(named) || kid == "" && len(keys) > 1 {
			t.Fatalf("%s kid %q, set %+v: %d keys", alg, kid, set, len(keys))
		}
		if kidNeeded != (kid == "" && len(fitting) > 1) {
			t.Fatalf("%s kid %q, set %+v: kidNeeded %v", alg, kid, set, kidNeeded)
		}
	})
}
