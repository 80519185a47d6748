package bearer

import (
	"context"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// benchmarkVerifier is a Verifier of one algorithm and one key in memory,
// with the token cache or without.
func benchmarkVerifier(b *testing.B, alg string, key any, cached bool) *Verifier[Claims] {
	b.Helper()
	v := &Verifier[Claims]{
		parser: newParser([]string{alg}, 0, time.Now),
		algs:   []string{alg},
		static: []verificationKey{{key: key}},
		grant:  func(c Claims) Claims { return c },
	}
	if cached {
		metrics, err := newCacheMetrics(nil)
		if err != nil {
			b.Fatal(err)
		}
		v.cache = newTokenCache[Claims](DefaultCacheSize, time.Now, metrics)
	}
	return v
}

// benchmarkVerify measures one full verification (parse, signature,
// claims) of a valid token, as every request with a token not seen
// before pays it.
func benchmarkVerify(b *testing.B, method jwt.SigningMethod, signKey, verifyKey any) {
	v := benchmarkVerifier(b, method.Alg(), verifyKey, false)
	token := testkit.Mint(b, method, signKey, "", testkit.EntraClaims(time.Now()))
	ctx := context.Background()
	if _, err := v.Verify(ctx, token); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = v.Verify(ctx, token)
	}
}

func BenchmarkVerifyRS256(b *testing.B) {
	k := testkit.Keys(b)
	benchmarkVerify(b, jwt.SigningMethodRS256, k.RSA, k.RSA.Public())
}

func BenchmarkVerifyES256(b *testing.B) {
	k := testkit.Keys(b)
	benchmarkVerify(b, jwt.SigningMethodES256, k.EC, k.EC.Public())
}

func BenchmarkVerifyEdDSA(b *testing.B) {
	k := testkit.Keys(b)
	benchmarkVerify(b, jwt.SigningMethodEdDSA, k.Ed, k.Ed.Public())
}

func BenchmarkVerifyHS256(b *testing.B) {
	k := testkit.Keys(b)
	benchmarkVerify(b, jwt.SigningMethodHS256, k.HMAC, k.HMAC)
}

// BenchmarkVerifyCacheHit measures what a token verified before costs:
// hash, cache lookup, key-change and expiry checks. It replaces the full
// verification above for every token seen again.
func BenchmarkVerifyCacheHit(b *testing.B) {
	k := testkit.Keys(b)
	v := benchmarkVerifier(b, "RS256", k.RSA.Public(), true)
	token := testkit.Mint(b, jwt.SigningMethodRS256, k.RSA, "", testkit.EntraClaims(time.Now()))
	ctx := context.Background()
	if _, err := v.Verify(ctx, token); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, token); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckStrict measures the stricter reading every token verified
// in full gets on top of the parser's (crit, member names given twice):
// a token shaped like an Entra ID access token.
func BenchmarkCheckStrict(b *testing.B) {
	k := testkit.Keys(b)
	v := benchmarkVerifier(b, "RS256", k.RSA.Public(), false)
	raw := testkit.Mint(b, jwt.SigningMethodRS256, k.RSA, "", testkit.EntraClaims(time.Now()))
	token, err := v.parser.Parse(raw, func(*jwt.Token) (any, error) { return k.RSA.Public(), nil })
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if e := v.checkStrict(raw, token); e != nil {
			b.Fatal(e)
		}
	}
}
