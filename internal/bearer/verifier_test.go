package bearer

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/golang-jwt/jwt/v5"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestVerifyErrors: a refused token's Error says what was wrong for the
// client and keeps the cause for the operator, and neither repeats the
// token.
func TestVerifyErrors(t *testing.T) {
	k := testkit.Keys(t)
	v := newTester(t, &Config{Algorithms: []string{"RS256"}, Issuers: []string{"https://issuer.example/"},
		PublicKeyFiles: []string{testkit.WriteFile(t, t.TempDir(), "rsa.pem", testkit.PublicPEM(t, k.RSA))}})
	now := v.clock.Now()
	for _, tc := range []struct {
		name, token, message string
		cause                error
	}{
		{"expired beyond the leeway", testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "", testkit.Claims(now, jwt.MapClaims{"exp": now.Add(-DefaultLeeway - time.Second).Unix()})),
			"The token has expired.", jwt.ErrTokenExpired},
		{"other key", testkit.Mint(t, jwt.SigningMethodRS256, k.RSA2, "", testkit.Claims(now, nil)),
			"The token's signature is invalid.", jwt.ErrTokenSignatureInvalid},
		{"malformed", "not.a.jwt", "The bearer token is malformed.", jwt.ErrTokenMalformed},
		{"issuer", testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "", testkit.Claims(now, jwt.MapClaims{"iss": "https://evil.example/"})),
			"The token's issuer (iss) is not accepted here.", errIssuer},
		{"algorithm", testkit.Mint(t, jwt.SigningMethodHS256, k.HMAC, "", testkit.Claims(now, nil)),
			"The token's signing algorithm (alg) is not accepted here.", jwt.ErrTokenSignatureInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := v.refuse(t, tc.token, tc.message)
			if e.Message != tc.message {
				t.Errorf("message %q, want %q", e.Message, tc.message)
			}
			if !errors.Is(e, tc.cause) {
				t.Errorf("cause %v, want %v", e.Cause, tc.cause)
			}
			sig := tc.token[strings.LastIndex(tc.token, ".")+1:]
			if len(sig) > 8 && strings.Contains(e.Error(), sig) {
				t.Error("the error repeats the token")
			}
		})
	}
}

// TestLeeway: exp and nbf allow the configured clock skew, a minute
// when leeway is unset, so that a token whose nbf is the instant it was
// issued (IdentityServer, .NET's JwtSecurityTokenHandler) passes on an
// edge whose clock is milliseconds behind the issuer's; an explicit 0
// allows none. The edge's clock reads 30ms before the whole second S.
func TestLeeway(t *testing.T) {
	k := testkit.Keys(t)
	keyFile := testkit.WriteFile(t, t.TempDir(), "rsa.pem", testkit.PublicPEM(t, k.RSA))
	unset, zero, short := (*caddy.Duration)(nil), new(caddy.Duration(0)), new(caddy.Duration(10*time.Second))
	for _, tc := range []struct {
		name    string
		leeway  *caddy.Duration
		claims  func(s time.Time) jwt.MapClaims
		refused string // "" when the token passes
	}{
		{"issued at S, nbf S, unset", unset, func(s time.Time) jwt.MapClaims { return jwt.MapClaims{"nbf": s.Unix()} }, ""},
		{"issued at S, nbf S, leeway 0", zero, func(s time.Time) jwt.MapClaims { return jwt.MapClaims{"nbf": s.Unix()} }, "not valid yet"},
		{"nbf a minute ahead, unset", unset, func(s time.Time) jwt.MapClaims { return jwt.MapClaims{"nbf": s.Add(time.Minute - time.Second).Unix()} }, ""},
		{"nbf past the leeway, unset", unset, func(s time.Time) jwt.MapClaims { return jwt.MapClaims{"nbf": s.Add(time.Minute + time.Second).Unix()} }, "not valid yet"},
		{"nbf past the leeway, 10s", short, func(s time.Time) jwt.MapClaims { return jwt.MapClaims{"nbf": s.Add(11 * time.Second).Unix()} }, "not valid yet"},
		{"exp just past, unset", unset, func(s time.Time) jwt.MapClaims { return jwt.MapClaims{"exp": s.Add(-time.Second).Unix()} }, ""},
		{"exp just past, leeway 0", zero, func(s time.Time) jwt.MapClaims { return jwt.MapClaims{"exp": s.Add(-time.Second).Unix()} }, "expired"},
		{"exp a minute past, unset", unset, func(s time.Time) jwt.MapClaims { return jwt.MapClaims{"exp": s.Add(-time.Minute + time.Second).Unix()} }, ""},
		{"exp past the leeway, unset", unset, func(s time.Time) jwt.MapClaims { return jwt.MapClaims{"exp": s.Add(-time.Minute - time.Second).Unix()} }, "expired"},
		{"exp past the leeway, 10s", short, func(s time.Time) jwt.MapClaims { return jwt.MapClaims{"exp": s.Add(-11 * time.Second).Unix()} }, "expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newTester(t, &Config{Algorithms: []string{"RS256"}, PublicKeyFiles: []string{keyFile}, Leeway: tc.leeway})
			s := v.clock.Now()
			v.clock.Advance(-30 * time.Millisecond)
			token := testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "", testkit.Claims(s, tc.claims(s)))
			if tc.refused == "" {
				v.accept(t, token)
			} else {
				v.refuse(t, token, tc.refused)
			}
		})
	}
}

// TestClaims: the claims a grant is made from, and the scopes from scp,
// scope (strings or arrays) and roles (arrays only).
func TestClaims(t *testing.T) {
	k := testkit.Keys(t)
	v := newTester(t, &Config{Algorithms: []string{"ES256"},
		PublicKeyFiles: []string{testkit.WriteFile(t, t.TempDir(), "ec.pem", testkit.PublicPEM(t, k.EC))}})
	claims := v.accept(t, testkit.Mint(t, jwt.SigningMethodES256, k.EC, "", testkit.Claims(v.clock.Now(), jwt.MapClaims{
		"oid": "oid-1", "scp": "a b", "scope": []string{"c"}, "roles": []any{"d", 7},
	})))
	if claims.String("sub") != "user-sub" || claims.String("oid") != "oid-1" || claims.String("exp") != "" {
		t.Errorf("claims %v", claims)
	}
	if got := strings.Join(claims.Scopes(), " "); got != "a b c d" {
		t.Errorf("scopes %q, want a b c d", got)
	}
}

// TestScopes: scp and scope separate scopes with U+0020 only; roles
// counts only as an array of strings.
func TestScopes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		claims Claims
		want   []string
	}{
		{"spaces", Claims{"scp": " A  B "}, []string{"A", "B"}},
		{"tab", Claims{"scp": "A\tB"}, []string{"A\tB"}},
		{"no-break space", Claims{"scope": "A\u00a0B"}, []string{"A\u00a0B"}},
		{"line feed", Claims{"scp": "A\nB C"}, []string{"A\nB", "C"}},
		{"ideographic space", Claims{"scp": "A\u3000B"}, []string{"A\u3000B"}},
		{"arrays", Claims{"scp": []any{"A B"}, "scope": []any{"C", 1, nil}}, []string{"A B", "C"}},
		{"roles array", Claims{"roles": []any{"A", "B"}}, []string{"A", "B"}},
		{"roles string", Claims{"roles": "A B"}, nil},
		{"roles object", Claims{"roles": map[string]any{"A": true}}, nil},
		{"scp number", Claims{"scp": 7.0}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.claims.Scopes(); !slices.Equal(got, tc.want) {
				t.Errorf("scopes %q, want %q", got, tc.want)
			}
		})
	}
}

// TestVerifyStrict: a token with a valid signature and valid claims is
// still refused when its header has crit or a kid that is not a string,
// its header or claims give a member name twice, or its text is not the
// one base64url spelling of its bytes (unused bits set, padding, a line
// feed); such a token is never cached. A member given twice
// deeper down is no concern of the edge's.
func TestVerifyStrict(t *testing.T) {
	k := testkit.Keys(t)
	v := newTester(t, &Config{Algorithms: []string{"RS256", "HS256"}, HMACSecret: string(k.HMAC),
		PublicKeyFiles: []string{testkit.WriteFile(t, t.TempDir(), "rsa.pem", testkit.PublicPEM(t, k.RSA))}})
	now := v.clock.Now()
	valid := testkit.ClaimsJSON(t, testkit.Claims(now, nil)) // {"aud":...,"exp":...,...}
	past := now.Add(-time.Hour).Unix()
	rs := func(header, claims string) string {
		return testkit.MintRaw(t, jwt.SigningMethodRS256, k.RSA, header, claims)
	}
	const header = `{"alg":"RS256","typ":"JWT"}`
	for _, tc := range []struct {
		name, token, message string
		cause                error
	}{
		{"crit naming a claim", rs(`{"alg":"RS256","crit":["exp"],"exp":1}`, valid),
			"The token's header lists critical extensions (crit), which are not supported here.", errCritical},
		{"crit empty", rs(`{"alg":"RS256","crit":[]}`, valid), "critical extensions (crit)", errCritical},
		{"crit not an array", rs(`{"alg":"RS256","crit":"b64"}`, valid), "critical extensions (crit)", errCritical},
		{"exp twice, the last valid", rs(header, fmt.Sprintf(`{"exp":%d,`, past)+valid[1:]),
			"The token's header or claims give a member name twice.", errDuplicateClaim},
		{"exp twice, once escaped", rs(header, fmt.Sprintf(`{"\u0065xp":%d,`, past)+valid[1:]), "a member name twice", errDuplicateClaim},
		{"scp twice", rs(header, `{"scp":"Admin",`+valid[1:]), "a member name twice", errDuplicateClaim},
		{"kid twice", rs(`{"alg":"RS256","kid":"a","kid":"b"}`, valid), "a member name twice", errDuplicateHeader},
		{"alg twice, the last RS256", rs(`{"alg":"HS256","alg":"RS256"}`, valid), "a member name twice", errDuplicateHeader},
		{"crit with another key's signature", testkit.MintRaw(t, jwt.SigningMethodRS256, k.RSA2, `{"alg":"RS256","crit":["x"]}`, valid),
			"The token's signature is invalid.", jwt.ErrTokenSignatureInvalid},
		// RFC 7515 4.1.4: kid is a string. Read as no kid, any other
		// would have every key of its family tried on it.
		{"kid a number", rs(`{"alg":"RS256","kid":7}`, valid), "The bearer token is malformed.", errKidNotString},
		{"kid null", rs(`{"alg":"RS256","kid":null}`, valid), "The bearer token is malformed.", errKidNotString},
		{"kid an object", rs(`{"alg":"RS256","kid":{}}`, valid), "The bearer token is malformed.", errKidNotString},
		{"kid an array", rs(`{"alg":"RS256","kid":["a"]}`, valid), "The bearer token is malformed.", errKidNotString},
		{"kid false, HS256", testkit.MintRaw(t, jwt.SigningMethodHS256, k.HMAC, `{"alg":"HS256","kid":false}`, valid),
			"The bearer token is malformed.", errKidNotString},
		{"kid a number with another key's signature", testkit.MintRaw(t, jwt.SigningMethodRS256, k.RSA2, `{"alg":"RS256","kid":7}`, valid),
			"The bearer token is malformed.", errKidNotString},
		// RFC 7515 2: base64url as RFC 4648 defines it, its unused bits
		// zero. The same signature in another string is a token no
		// issuer wrote.
		{"RS256 signature with an unused bit set", testkit.PadBitSet(t, rs(header, valid)), "The bearer token is malformed.", jwt.ErrTokenMalformed},
		{"HS256 signature with an unused bit set", testkit.PadBitSet(t, testkit.MintRaw(t, jwt.SigningMethodHS256, k.HMAC, `{"alg":"HS256"}`, valid)),
			"The bearer token is malformed.", jwt.ErrTokenMalformed},
		{"signature padded", rs(header, valid) + "==", "The bearer token is malformed.", jwt.ErrTokenMalformed},
		{"a line feed in the signature", lineFeedInSignature(rs(header, valid)), "The bearer token is malformed.", errNotBase64URL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := v.refuse(t, tc.token, tc.message)
			if !errors.Is(e, tc.cause) {
				t.Errorf("cause %v, want %v", e.Cause, tc.cause)
			}
			if sig := tc.token[strings.LastIndex(tc.token, ".")+1:]; strings.Contains(e.Error(), sig) {
				t.Error("the error repeats the token")
			}
		})
	}
	v.wantCache(t, 0, 0, 19)

	t.Run("a member twice in a nested object", func(t *testing.T) {
		claims := v.accept(t, rs(header, `{"ext":{"a":1,"a":2},"list":[{"b":1,"b":2}],`+valid[1:]))
		if claims.String("sub") != "user-sub" {
			t.Errorf("claims %v", claims)
		}
	})
	t.Run("names that differ in case only", func(t *testing.T) {
		v.accept(t, rs(header, `{"EXP":1,"Scp":"x",`+valid[1:]))
	})
	t.Run("kid an empty string", func(t *testing.T) {
		v.accept(t, rs(`{"alg":"RS256","kid":""}`, valid))
	})
}

// lineFeedInSignature returns token with a line feed in the middle of
// its signature, which a base64 decoder skips even when strict.
func lineFeedInSignature(token string) string {
	i := strings.LastIndexByte(token, '.') + (len(token)-strings.LastIndexByte(token, '.'))/2
	return token[:i] + "\n" + token[i:]
}

// TestNewErrors: settings that cannot work are refused with a message
// naming the problem; an unset environment variable is named too.
func TestNewErrors(t *testing.T) {
	k := testkit.Keys(t)
	rsaFile := testkit.WriteFile(t, t.TempDir(), "rsa.pem", testkit.PublicPEM(t, k.RSA))
	t.Setenv("UCWA_TEST_EMPTY", "")
	for _, tc := range []struct {
		name string
		c    Config
		want string
	}{
		{"off", Config{Off: true}, "off"},
		{"unset audience", Config{Algorithms: []string{"RS256"}, PublicKeyFiles: []string{rsaFile}, Audiences: []string{"{env.UCWA_TEST_EMPTY}"}},
			"audience: evaluated placeholder {env.UCWA_TEST_EMPTY} is empty ({env.*} is read from the environment of the Caddy process that loads the config, not of `caddy reload`: " +
				"set the variable where Caddy is started (a service's Environment=) and restart it)"},
		{"unset jwks_url part", Config{Algorithms: []string{"RS256"}, JWKSURL: "https://login.example/{env.UCWA_TEST_EMPTY}/keys"},
			"jwks_url: evaluated placeholder {env.UCWA_TEST_EMPTY} is empty"},
		{"negative leeway", Config{Algorithms: []string{"RS256"}, PublicKeyFiles: []string{rsaFile}, Leeway: new(caddy.Duration(-1))}, "must not be negative"},
		{"leeway past the most", Config{Algorithms: []string{"RS256"}, PublicKeyFiles: []string{rsaFile}, Leeway: new(caddy.Duration(MaxLeeway + time.Second))}, "leeway 10m1s is more than 10m0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(&tc.c, func(c Claims) Claims { return c }, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one with %q", err, tc.want)
			}
		})
	}
}

// TestDateRange: an exp or nbf too large (or small) for the clock
// checks to read is malformed, not read as another date: the parser
// turns seconds into a time through int64 without a range check, and an
// nbf past about 9.2e18 (1e20, "never") wrapped to a date long past, so
// the token passed. Dates far off but within range keep their meaning.
func TestDateRange(t *testing.T) {
	k := testkit.Keys(t)
	v := newTester(t, &Config{Algorithms: []string{"RS256"},
		PublicKeyFiles: []string{testkit.WriteFile(t, t.TempDir(), "rsa.pem", testkit.PublicPEM(t, k.RSA))}})
	now := v.clock.Now()
	for _, tc := range []struct {
		name    string
		claims  jwt.MapClaims
		refused string // "" when the token passes
	}{
		{"nbf 1e20", jwt.MapClaims{"nbf": 1e20}, "malformed"},
		{"nbf 9.2233720e18, past int64 with Go's epoch offset", jwt.MapClaims{"nbf": 9.2233720e18}, "malformed"},
		{"nbf 2^63", jwt.MapClaims{"nbf": 0x1p63}, "malformed"},
		{"nbf -1e20", jwt.MapClaims{"nbf": -1e20}, "malformed"},
		{"exp 1e20", jwt.MapClaims{"exp": 1e20}, "expired"},
		{"iat 1e20, not checked against the clock", jwt.MapClaims{"iat": 1e20}, ""},
		{"nbf 1e15, far ahead", jwt.MapClaims{"nbf": 1e15}, "not valid yet"},
		{"nbf 4e18, far ahead", jwt.MapClaims{"nbf": 4e18}, "not valid yet"},
		{"exp 2^53-1, far ahead", jwt.MapClaims{"exp": float64(1<<53 - 1)}, ""},
		{"exp 4e18, far ahead", jwt.MapClaims{"exp": 4e18}, ""},
		{"nbf long past", jwt.MapClaims{"nbf": float64(now.Add(-24 * time.Hour).Unix())}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			token := testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "", testkit.Claims(now, tc.claims))
			if tc.refused == "" {
				v.accept(t, token)
			} else {
				v.refuse(t, token, tc.refused)
			}
		})
	}
}
