package caddymodule

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// entraClaims are claims shaped like an Entra ID access token's, so the
// parse cost is realistic (the token is about 1.3 KB).
func entraClaims(now time.Time) jwt.MapClaims {
	return claimsAt(now, jwt.MapClaims{
		"tid": "72f988bf-86f1-41af-91ab-2d7cd011db47", "oid": "d2a5b7e4-6f0a-4a0e-9f3b-1c2d3e4f5a6b",
		"appid": "00000004-0000-0ff1-ce00-000000000000", "name": "Jane Doe", "upn": "jane@contoso.com",
		"amr": []string{"pwd", "mfa"}, "ipaddr": "203.0.113.7", "ver": "1.0", "acr": "1",
		"uti": "AbCdEfGhIjKlMnOpQrStUv", "rh": strings.Repeat("0.AAAA", 12), "aio": strings.Repeat("E2ZgYJ", 20),
	})
}

// benchmarkVerify measures one full verification (parse, signature,
// claims) of a valid token, as authorize runs it per request.
func benchmarkVerify(b *testing.B, method jwt.SigningMethod, signKey, verifyKey any) {
	alg := method.Alg()
	v := &tokenVerifier{
		parser: newParser([]string{alg}, 0, time.Now),
		algs:   []string{alg},
		static: []verificationKey{{key: verifyKey}},
	}
	token := mint(b, method, signKey, "", entraClaims(time.Now()))
	ctx := context.Background()
	if _, problem := v.verify(ctx, token); problem != "" {
		b.Fatal(problem)
	}
	b.ReportAllocs()
	for b.Loop() {
		v.verify(ctx, token)
	}
}

func BenchmarkVerifyRS256(b *testing.B) {
	k := getKeys(b)
	benchmarkVerify(b, jwt.SigningMethodRS256, k.rsa, k.rsa.Public())
}

func BenchmarkVerifyES256(b *testing.B) {
	k := getKeys(b)
	benchmarkVerify(b, jwt.SigningMethodES256, k.ec, k.ec.Public())
}

func BenchmarkVerifyEdDSA(b *testing.B) {
	k := getKeys(b)
	benchmarkVerify(b, jwt.SigningMethodEdDSA, k.ed, k.ed.Public())
}

func BenchmarkVerifyHS256(b *testing.B) {
	k := getKeys(b)
	benchmarkVerify(b, jwt.SigningMethodHS256, k.hmac, k.hmac)
}

// BenchmarkVerifyCacheHit measures what authorize pays for a token it
// verified before: hash, cache lookup, key-change and expiry checks. It
// replaces the full verification above for every token seen again.
func BenchmarkVerifyCacheHit(b *testing.B) {
	k := getKeys(b)
	metrics, err := newTokenCacheMetrics(nil)
	if err != nil {
		b.Fatal(err)
	}
	a := &authConfig{
		Scopes: DefaultScopes,
		verifier: &tokenVerifier{
			parser: newParser([]string{"RS256"}, 0, time.Now),
			algs:   []string{"RS256"},
			static: []verificationKey{{key: k.rsa.Public()}},
		},
		tokens: newTokenCache(DefaultTokenCacheSize, time.Now, metrics),
	}
	token := mint(b, jwt.SigningMethodRS256, k.rsa, "", entraClaims(time.Now()))
	ctx := context.Background()
	if _, problem := a.check(ctx, token); problem != "" {
		b.Fatal(problem)
	}
	b.ReportAllocs()
	for b.Loop() {
		if g, _ := a.check(ctx, token); g == nil {
			b.Fatal("not verified")
		}
	}
}
