package bearer

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// FuzzVerify holds Verify to a second reading of the rules, written from
// RFC 7515/7519 and the configuration rather than from the parser: a
// token passes only when it has three segments of base64url with its
// unused bits zero and nothing else (RFC 7515 2), its header is a JSON
// object with alg HS256, no crit, a kid (when given) that is a string
// and no name twice, its HMAC is right, its claims are a JSON object
// with no name twice, a numeric exp not past, nbf and iat (when given)
// numeric, nbf not in the future (iat is informational), the configured
// issuer and one of the configured audiences. Times within a second or
// two of a boundary, and beyond any real date, are left unjudged (the
// parser keeps whole seconds). A token that passes yields
// exactly the claims its payload holds, from the cache as in full.
func FuzzVerify(f *testing.F) {
	const (
		secret   = "fuzz-secret-fuzz-secret-fuzz-secret!"
		issuer   = "https://sts.example/"
		audience = "api://ucwa"
		now      = 1_800_000_000
		leeway   = 30
	)
	v, err := New(&Config{Algorithms: []string{"HS256"}, HMACSecret: secret, Issuers: []string{issuer}, Audiences: []string{audience},
		Leeway: new(caddy.Duration(leeway * time.Second))}, func(c Claims) Claims { return c }, Options{Now: func() time.Time { return time.Unix(now, 0) }})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = v.Close() })

	hs := `{"alg":"HS256","typ":"JWT"}`
	good := `{"iss":"https://sts.example/","aud":"api://ucwa","exp":1800003600,"iat":1799999990,"scp":"a b"}`
	for _, seed := range []struct {
		header, claims string
		mode           uint8
	}{
		{hs, good, 0},
		{hs, `{"iss":"https://sts.example/","aud":["x","api://ucwa"],"exp":1800000100,"nbf":1800000020}`, 0},
		{hs, `{"iss":"https://sts.example/","aud":"api://ucwa","exp":1799999969.5}`, 0},
		{hs, `{"iss":"https://sts.example/","aud":"api://ucwa","exp":1800003600,"\u0065xp":1}`, 0},
		{`{"alg":"HS256","crit":["b64"]}`, good, 0},
		{`{"alg":"none"}`, good, 0},
		{`{"alg":"HS256","alg":"HS256"}`, good, 0},
		{`{"alg":"HS256","kid":"k1"}`, good, 0},
		{`{"alg":"HS256","kid":7}`, good, 0},
		{`{"alg":"HS256","kid":null}`, good, 0},
		{`{"alg":"HS256","kid":["k1"]}`, good, 0},
		{hs, `{"iss":"https://sts.example/","aud":[1,"api://ucwa"],"exp":1800003600}`, 0},
		{hs, `{"iss":"https://sts.example/","aud":"api://ucwa","exp":"1800003600"}`, 0},
		{hs, good, 1},
		{"eyJhbGciOiJIUzI1NiJ9.e30.", "", 2},
	} {
		f.Add(seed.header, seed.claims, []byte("sig"), seed.mode)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	input := b64([]byte(hs)) + "." + b64([]byte(good))
	genuine := input + "." + b64(hmacSHA256(secret, input))
	f.Add(testkit.PadBitSet(f, genuine), "", []byte(nil), uint8(2))
	f.Add(genuine[:len(genuine)-10]+"\n"+genuine[len(genuine)-10:], "", []byte(nil), uint8(2))
	f.Fuzz(func(t *testing.T, header, claims string, sig []byte, mode uint8) {
		var raw string
		switch mode % 3 {
		case 0:
			input := b64([]byte(header)) + "." + b64([]byte(claims))
			raw = input + "." + b64(hmacSHA256(secret, input))
		case 1:
			raw = b64([]byte(header)) + "." + b64([]byte(claims)) + "." + string(sig)
		default:
			raw = header
		}
		want, payload, judged := referenceVerify(raw, secret, issuer, audience, now, leeway)
		for _, from := range []string{"in full", "from the cache"} {
			got, err := v.Verify(context.Background(), raw)
			if err != nil {
				if _, ok := err.(*Error); !ok {
					t.Fatalf("%q: %T %v, want a *bearer.Error", raw, err, err)
				}
			}
			if !judged {
				continue
			}
			if (err == nil) != want {
				t.Fatalf("%q %s: Verify: %v; the reference says passes=%v", raw, from, err, want)
			}
			if err == nil && !reflect.DeepEqual(map[string]any(got), payload) {
				t.Fatalf("%q %s: claims %v, the payload holds %v", raw, from, got, payload)
			}
		}
	})
}

func hmacSHA256(secret, input string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(input))
	return m.Sum(nil)
}

// referenceVerify is whether raw should pass, and the claims it carries;
// judged is false when raw sits on a time boundary the reference does
// not try to place exactly.
func referenceVerify(raw, secret, issuer, audience string, now, leeway float64) (pass bool, payload map[string]any, judged bool) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return false, nil, true
	}
	// A base64 decoder skips CR and LF, even a strict one.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
	if strings.ContainsFunc(raw, func(r rune) bool { return !strings.ContainsRune(alphabet, r) }) {
		return false, nil, true
	}
	dec := base64.RawURLEncoding.Strict()
	headerJSON, err1 := dec.DecodeString(parts[0])
	claimsJSON, err2 := dec.DecodeString(parts[1])
	sig, err3 := dec.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return false, nil, true
	}
	var header map[string]any
	if json.Unmarshal(headerJSON, &header) != nil || header == nil {
		return false, nil, true
	}
	if header["alg"] != "HS256" {
		return false, nil, true
	}
	if _, ok := header["crit"]; ok {
		return false, nil, true
	}
	if kid, ok := header["kid"]; ok {
		if _, isString := kid.(string); !isString {
			return false, nil, true
		}
	}
	if !hmac.Equal(sig, hmacSHA256(secret, parts[0]+"."+parts[1])) {
		return false, nil, true
	}
	if dup, ok := duplicateMemberReference(headerJSON); !ok || dup {
		return false, nil, true
	}
	if json.Unmarshal(claimsJSON, &payload) != nil || payload == nil {
		return false, nil, true
	}
	if dup, ok := duplicateMemberReference(claimsJSON); !ok || dup {
		return false, nil, true
	}
	judged = true
	// when reads a NumericDate claim: ok is false for a claim given but
	// not a number; unsure for one near its boundary or beyond any date.
	when := func(name string) (secs float64, given, ok bool) {
		v, given := payload[name]
		if !given {
			return 0, false, true
		}
		n, isNumber := v.(float64)
		if isNumber && math.Abs(n) > 1e11 {
			judged = false
		}
		return n, isNumber && n != 0, isNumber
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 2 }
	exp, given, ok := when("exp")
	if !ok || !given {
		return false, payload, judged
	}
	if near(exp, now-leeway) {
		judged = false
	}
	pass = exp > now-leeway
	for _, name := range []string{"nbf", "iat"} {
		at, given, ok := when(name)
		if !ok {
			return false, payload, judged
		}
		if given && name == "nbf" {
			if near(at, now+leeway) {
				judged = false
			}
			pass = pass && at <= now+leeway
		}
	}
	if iss, _ := payload["iss"].(string); iss != issuer {
		pass = false
	}
	switch aud := payload["aud"].(type) {
	case string:
		pass = pass && aud == audience
	case []any:
		for _, a := range aud {
			if _, ok := a.(string); !ok {
				pass = false
			}
		}
		pass = pass && slices.Contains(aud, any(audience))
	default:
		pass = false
	}
	return pass, payload, judged
}
