package caddymodule

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

const (
	testChallenge = `, authorization_uri="https://login.windows.net/common/oauth2/authorize", client_id="00000004-0000-0ff1-ce00-000000000000"`
	missingToken  = `Bearer realm="edge"` + testChallenge
	invalidToken  = `Bearer realm="edge", error="invalid_token"` + testChallenge
	scopeDenied   = `Bearer realm="edge", error="insufficient_scope", scope="Conversations.Initiate Conversations.Receive"` + testChallenge
)

// authSite is a Caddyfile whose ucwa handler has the given auth
// subdirectives, in front of a reverse_proxy to upstream that shows the
// identity placeholders as headers. Caddy logs at debug level, with an
// access log.
func authSite(auth, upstream string) string {
	return fmt.Sprintf(`{
	log {
		level DEBUG
	}
}
:EDGE_PORT {
	log
	ucwa {
		default_region US
		%[1]s
	}
	reverse_proxy %[2]s {
		header_up X-User {http.auth.user.id}
		header_up X-Ucwa-Sub {http.ucwa.sub}
		header_up X-Ucwa-Oid {http.ucwa.oid}
		header_up X-Ucwa-Tid {http.ucwa.tid}
		header_up X-Ucwa-Client {http.ucwa.client_id}
		header_up X-Ucwa-Scopes {http.ucwa.scopes}
		header_up X-Ucwa-Caller {http.ucwa.caller}
	}
}`, auth, upstream)
}

// sendWithAuth posts a startPhoneAudio request with the given Authorization
// header values (none when empty).
func (e edge) sendWithAuth(accept string, authorization ...string) testkit.Response {
	e.t.Helper()
	return e.send(testkit.Request{URL: startPath, ContentType: "application/json", Accept: accept,
		Body: `{"to":"4255551234"}`, Header: http.Header{"Authorization": authorization}})
}

// expect sends one token and checks the status and message.
func (e edge) expect(token string, status int, message string) {
	e.t.Helper()
	resp := e.sendWithAuth("", "Bearer "+token)
	if resp.Status != status {
		e.t.Fatalf("status %d, want %d: %s", resp.Status, status, resp.Body)
	}
	if message == "" {
		return
	}
	if got := ucwaError(e.t, resp.Body).Message; !strings.Contains(got, message) {
		e.t.Fatalf("message %q, want %q", got, message)
	}
}

// authCase is one request and what the edge must answer.
type authCase struct {
	name          string
	authorization []string
	status        int
	challenge     string // WWW-Authenticate, exactly
	message       string // part of the UCWA error message
}

// runAuthCases sends each case and checks both sides: the edge's answer
// and, for 201, that the pool got the Authorization header unchanged.
func runAuthCases(t *testing.T, e edge, up *testkit.Pool, cases []authCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(up.Received())
			resp := e.sendWithAuth("", tc.authorization...)
			if resp.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.Status, tc.status, resp.Body)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, tc.challenge)
			}
			got := up.Received()
			if tc.status != http.StatusCreated {
				if len(got) != before {
					t.Error("a refused request reached the pool")
				}
				body := ucwaError(t, resp.Body)
				if body.Code != map[int]string{401: "Unauthorized", 403: "Forbidden"}[tc.status] || !strings.Contains(body.Message, tc.message) {
					t.Errorf("body %s, want code for %d and message with %q", resp.Body, tc.status, tc.message)
				}
				for _, a := range tc.authorization {
					if _, token, _ := strings.Cut(a, " "); len(token) > 8 && strings.Contains(resp.Body, token) {
						t.Error("the body echoes the token")
					}
				}
				return
			}
			if len(got) != before+1 {
				t.Fatalf("the pool got %d requests, want 1", len(got)-before)
			}
			if a := got[len(got)-1].Header.Values("Authorization"); len(a) != 1 || a[0] != tc.authorization[0] {
				t.Errorf("the pool got Authorization %q, want it unchanged", a)
			}
		})
	}
}

// TestAuthTokens covers every key family and every way a token can fail,
// through a Caddyfile config, and checks that no log line holds a token
// while the debug log says why each was refused. Times are real: each
// claim is clear of the edge by minutes (leeway 10m), so that no test
// depends on how fast it runs.
func TestAuthTokens(t *testing.T) {
	k := testkit.Keys(t)
	now := time.Now()
	dir := t.TempDir()
	t.Setenv("UCWA_TEST_JWT_SECRET", string(k.HMAC))
	rsaPEM := testkit.PublicPEM(t, k.RSA)
	up := testkit.NewUpstream(t)
	e := startEdge(t, "caddyfile", authSite(fmt.Sprintf(`jwt {
			algorithms RS256 ES256 EdDSA HS256
			public_key_file %s %s
			public_key_file %s
			hmac_secret {env.UCWA_TEST_JWT_SECRET}
			issuer https://issuer.example/ https://sts.windows.net/tenant/
			audience api://ucwa 00000004-0000-0ff1-ce00-000000000000
			leeway 10m
		}
		challenge realm edge
		challenge authorization_uri https://login.windows.net/common/oauth2/authorize
		challenge client_id 00000004-0000-0ff1-ce00-000000000000`,
		testkit.WriteFile(t, dir, "rsa.pem", rsaPEM), testkit.WriteFile(t, dir, "ec.pem", testkit.PublicPEM(t, k.EC)),
		testkit.WriteFile(t, dir, "ed.pem", testkit.PublicPEM(t, k.Ed))), up.Addr()))

	bearer := func(s string) []string { return []string{"Bearer " + s} }
	rs := func(extra jwt.MapClaims) []string {
		return bearer(testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "", testkit.Claims(now, extra)))
	}
	validJSON := testkit.ClaimsJSON(t, testkit.Claims(now, nil))
	var tokens []string
	cases := []authCase{
		{"RS256 scp", rs(nil), 201, "", ""},
		{"ES256 scope", bearer(testkit.Mint(t, jwt.SigningMethodES256, k.EC, "", testkit.Claims(now, jwt.MapClaims{"scp": nil, "scope": "Conversations.Receive"}))), 201, "", ""},
		{"EdDSA roles", bearer(testkit.Mint(t, jwt.SigningMethodEdDSA, k.Ed, "", testkit.Claims(now, jwt.MapClaims{"scp": nil, "roles": []string{"Other", "Conversations.Initiate"}}))), 201, "", ""},
		{"HS256", bearer(testkit.Mint(t, jwt.SigningMethodHS256, k.HMAC, "", testkit.Claims(now, nil))), 201, "", ""},
		{"aud array, second matches", rs(jwt.MapClaims{"aud": []string{"https://graph.microsoft.com", "api://ucwa"}}), 201, "", ""},
		{"second issuer", rs(jwt.MapClaims{"iss": "https://sts.windows.net/tenant/"}), 201, "", ""},
		{"expired within leeway", rs(jwt.MapClaims{"exp": now.Add(-5 * time.Minute).Unix()}), 201, "", ""},
		{"lower-case scheme", []string{"bearer " + testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "", testkit.Claims(now, nil))}, 201, "", ""},
		{"upper-case scheme", []string{"BEARER " + testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "", testkit.Claims(now, nil))}, 201, "", ""},
		{"spaces after the scheme", []string{"Bearer    " + testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "", testkit.Claims(now, nil))}, 201, "", ""},
		{"nbf within leeway", rs(jwt.MapClaims{"nbf": now.Add(5 * time.Minute).Unix()}), 201, "", ""},
		// iat is informational (RFC 7519 4.1.6), as Envoy and golang-jwt
		// read it: an issuer's clock a little ahead of the edge's would
		// have a token refused as it is issued.
		{"iat in the future", rs(jwt.MapClaims{"iat": now.Add(time.Hour).Unix()}), 201, "", ""},

		{"missing", nil, 401, missingToken, "no bearer token"},
		{"basic scheme", []string{"Basic dXNlcjpwYXNz"}, 401, missingToken, "no bearer token"},
		{"empty bearer", []string{"Bearer "}, 401, invalidToken, "malformed"},
		{"malformed", bearer("not.a.jwt"), 401, invalidToken, "malformed"},
		{"two segments", bearer("eyJhbGciOiJSUzI1NiJ9.e30"), 401, invalidToken, "malformed"},
		{"alg none", bearer(testkit.Unsigned(t, testkit.Claims(now, nil))), 401, invalidToken, "algorithm"},
		{"alg not supported", bearer(testkit.Mint(t, jwt.SigningMethodRS512, k.RSA, "", testkit.Claims(now, nil))), 401, invalidToken, "algorithm"},
		{"HS256 with the RSA public key PEM as secret", bearer(testkit.Mint(t, jwt.SigningMethodHS256, rsaPEM, "", testkit.Claims(now, nil))), 401, invalidToken, "signature is invalid"},
		{"RS256 by another key", bearer(testkit.Mint(t, jwt.SigningMethodRS256, k.RSA2, "", testkit.Claims(now, nil))), 401, invalidToken, "signature is invalid"},
		{"ES256 with a P-384 key", bearer(testkit.Mint(t, &jwt.SigningMethodECDSA{Name: "ES256", Hash: crypto.SHA256, KeySize: 48, CurveBits: 384}, k.EC384, "", testkit.Claims(now, nil))), 401, invalidToken, "signature is invalid"},
		{"tampered claims", bearer(testkit.Tamper(t, testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "", testkit.Claims(now, nil)))), 401, invalidToken, "signature is invalid"},
		{"exp missing", rs(jwt.MapClaims{"exp": nil}), 401, invalidToken, "no expiry"},
		{"exp not a number", rs(jwt.MapClaims{"exp": "tomorrow"}), 401, invalidToken, "malformed"},
		{"expired", rs(jwt.MapClaims{"exp": now.Add(-11 * time.Minute).Unix()}), 401, invalidToken, "expired"},
		{"nbf in the future", rs(jwt.MapClaims{"nbf": now.Add(time.Hour).Unix()}), 401, invalidToken, "not valid yet"},
		{"wrong issuer", rs(jwt.MapClaims{"iss": "https://evil.example/"}), 401, invalidToken, "issuer"},
		// iss and aud are compared as written: no trailing slash, letter
		// case or other normalization.
		{"issuer without its trailing slash", rs(jwt.MapClaims{"iss": "https://issuer.example"}), 401, invalidToken, "issuer"},
		{"issuer in other letter case", rs(jwt.MapClaims{"iss": "https://ISSUER.example/"}), 401, invalidToken, "issuer"},
		{"issuer as an array", rs(jwt.MapClaims{"iss": []string{"https://issuer.example/"}}), 401, invalidToken, "issuer"},
		{"audience with a trailing slash", rs(jwt.MapClaims{"aud": "api://ucwa/"}), 401, invalidToken, "audience"},
		{"aud array with a number beside a match", rs(jwt.MapClaims{"aud": []any{"api://ucwa", 7}}), 401, invalidToken, "audience"},
		{"aud empty array", rs(jwt.MapClaims{"aud": []string{}}), 401, invalidToken, "audience"},
		// golang-jwt reads an exp of 0 as none.
		{"exp 0", rs(jwt.MapClaims{"exp": 0}), 401, invalidToken, "no expiry"},
		{"exp null", rs(jwt.MapClaims{"exp": json.RawMessage("null")}), 401, invalidToken, "malformed"},
		{"tab after the scheme", []string{"Bearer\t" + testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "", testkit.Claims(now, nil))}, 401, missingToken, "no bearer token: Bearer must be followed by a space"},
		{"a scheme that starts with Bearer", []string{"BearerToken abc"}, 401, missingToken, "no bearer token (Authorization: Bearer)"},
		// Only spaces (and tabs) surround a token (RFC 9110's OWS): a
		// pool reads a no-break space after it as part of the token.
		{"no-break space after the token", bearer(testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "", testkit.Claims(now, nil)) + "\u00a0"), 401, invalidToken, "malformed"},
		{"no-break space before the token", bearer("\u00a0" + testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "", testkit.Claims(now, nil))), 401, invalidToken, "malformed"},
		{"two tokens in one header", []string{"Bearer " + testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "", testkit.Claims(now, nil)) + ", Bearer " + testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "", testkit.Claims(now, nil))}, 401, invalidToken, "malformed"},
		{"issuer missing", rs(jwt.MapClaims{"iss": nil}), 401, invalidToken, "issuer"},
		{"wrong audience", rs(jwt.MapClaims{"aud": "api://other"}), 401, invalidToken, "audience"},
		{"aud array, none matches", rs(jwt.MapClaims{"aud": []string{"a", "b"}}), 401, invalidToken, "audience"},
		{"web ticket rejected by default", bearer("cwt=AAEAHAUHGkHigqyFLZ-Wd6o1tPkOgK5XHlEkBKdA4N3rE0y"), 401, invalidToken, "Web tickets"},
		{"oversized header", bearer(strings.Repeat(".", 9000)), 401, invalidToken, "longer than 8192 bytes"},
		{"two Authorization headers", append(rs(nil), rs(nil)...), 401, invalidToken, "more than one"},

		{"no scope claim", rs(jwt.MapClaims{"scp": nil}), 403, scopeDenied, "Conversations.Initiate, Conversations.Receive"},
		{"other scopes only", rs(jwt.MapClaims{"scp": "User.Read Calendars.Read"}), 403, scopeDenied, "none of the scopes"},
		{"scope match is case-sensitive", rs(jwt.MapClaims{"scp": "conversations.initiate"}), 403, scopeDenied, "none of the scopes"},
		// roles counts only as an array of strings, each one role.
		{"roles as a string", rs(jwt.MapClaims{"scp": nil, "roles": "Conversations.Initiate Conversations.Receive x"}), 403, scopeDenied, "none of the scopes"},
		{"roles entry with a space", rs(jwt.MapClaims{"scp": nil, "roles": []string{"Conversations.Initiate x"}}), 403, scopeDenied, "none of the scopes"},
		// Only U+0020 separates scopes: these are single scopes that grant
		// nothing.
		{"scp separated by a tab", rs(jwt.MapClaims{"scp": "Conversations.Initiate\tConversations.Receive"}), 403, scopeDenied, "none of the scopes"},
		{"scp separated by a no-break space", rs(jwt.MapClaims{"scp": "User.Read\u00a0Conversations.Initiate"}), 403, scopeDenied, "none of the scopes"},
		{"scope separated by a line feed", rs(jwt.MapClaims{"scp": nil, "scope": "Conversations.Receive\nUser.Read"}), 403, scopeDenied, "none of the scopes"},
		{"scp separated by two spaces", rs(jwt.MapClaims{"scp": "User.Read  Conversations.Receive"}), 201, "", ""},

		// Signed and valid, but read more strictly than the parser does.
		{"crit header", bearer(testkit.MintRaw(t, jwt.SigningMethodRS256, k.RSA, `{"alg":"RS256","typ":"JWT","crit":["exp"]}`, validJSON)),
			401, invalidToken, "critical extensions (crit)"},
		{"exp twice, the last valid", bearer(testkit.MintRaw(t, jwt.SigningMethodRS256, k.RSA, `{"alg":"RS256","typ":"JWT"}`,
			fmt.Sprintf(`{"exp":%d,`, now.Add(-time.Hour).Unix())+validJSON[1:])), 401, invalidToken, "give a member name twice"},
		{"scp twice, the last granting", bearer(testkit.MintRaw(t, jwt.SigningMethodRS256, k.RSA, `{"alg":"RS256","typ":"JWT"}`,
			`{"scp":"User.Read",`+validJSON[1:])), 401, invalidToken, "give a member name twice"},
		{"alg twice in the header", bearer(testkit.MintRaw(t, jwt.SigningMethodRS256, k.RSA, `{"alg":"none","alg":"RS256"}`, validJSON)),
			401, invalidToken, "give a member name twice"},
		// RFC 7515 4.1.4: kid is a string; any other is refused before a
		// key is tried, not read as no kid.
		{"kid a number", bearer(testkit.MintRaw(t, jwt.SigningMethodRS256, k.RSA, `{"alg":"RS256","typ":"JWT","kid":7}`, validJSON)),
			401, invalidToken, "malformed"},
		{"kid null", bearer(testkit.MintRaw(t, jwt.SigningMethodES256, k.EC, `{"alg":"ES256","kid":null}`, validJSON)),
			401, invalidToken, "malformed"},
		{"kid an object", bearer(testkit.MintRaw(t, jwt.SigningMethodEdDSA, k.Ed, `{"alg":"EdDSA","kid":{}}`, validJSON)),
			401, invalidToken, "malformed"},
		{"kid an array", bearer(testkit.MintRaw(t, jwt.SigningMethodHS256, k.HMAC, `{"alg":"HS256","kid":["a"]}`, validJSON)),
			401, invalidToken, "malformed"},
		{"kid a string", bearer(testkit.MintRaw(t, jwt.SigningMethodRS256, k.RSA, `{"alg":"RS256","kid":"any"}`, validJSON)), 201, "", ""},
	}
	for _, tc := range cases {
		for _, a := range tc.authorization {
			if _, token, _ := strings.Cut(a, " "); len(token) > 20 {
				tokens = append(tokens, token)
			}
		}
	}
	runAuthCases(t, e, up, cases)

	t.Run("placeholders", func(t *testing.T) {
		token := testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "", testkit.Claims(now, jwt.MapClaims{
			"oid": "oid-1", "tid": "tenant-1", "azp": "client-9", "scp": "Conversations.Receive Contacts.Read",
		}))
		if resp := e.sendWithAuth("", "Bearer "+token); resp.Status != 201 {
			t.Fatal(resp.Status, resp.Body)
		}
		h := up.Received()[len(up.Received())-1].Header
		want := map[string]string{"X-User": "user-sub", "X-Ucwa-Sub": "user-sub", "X-Ucwa-Oid": "oid-1",
			"X-Ucwa-Tid": "tenant-1", "X-Ucwa-Client": "client-9", "X-Ucwa-Scopes": "Conversations.Receive Contacts.Read", "X-Ucwa-Caller": "oid-1"}
		for name, v := range want {
			if h.Get(name) != v {
				t.Errorf("%s = %q, want %q", name, h.Get(name), v)
			}
		}
		// user id falls back to oid, client_id prefers appid
		token = testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "", testkit.Claims(now, jwt.MapClaims{"sub": nil, "oid": "oid-2", "appid": "app-1", "azp": "client-9"}))
		e.sendWithAuth("", "Bearer "+token)
		h = up.Received()[len(up.Received())-1].Header
		if h.Get("X-User") != "oid-2" || h.Get("X-Ucwa-Client") != "app-1" {
			t.Errorf("X-User %q, X-Ucwa-Client %q", h.Get("X-User"), h.Get("X-Ucwa-Client"))
		}
		tokens = append(tokens, token)
		// an RFC 9068 token names its client application client_id alone
		token = testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "", testkit.Claims(now, jwt.MapClaims{"client_id": "client-rfc9068"}))
		e.sendWithAuth("", "Bearer "+token)
		if h = up.Received()[len(up.Received())-1].Header; h.Get("X-Ucwa-Client") != "client-rfc9068" {
			t.Errorf("X-Ucwa-Client %q of a token with client_id alone", h.Get("X-Ucwa-Client"))
		}
		tokens = append(tokens, token)
	})

	t.Run("XML error body", func(t *testing.T) {
		resp := e.sendWithAuth("application/vnd.microsoft.com.ucwa+xml", "Bearer x.y.z")
		if resp.Status != 401 || !strings.Contains(resp.Body, "<code>Unauthorized</code>") || !strings.Contains(resp.Body, "malformed") {
			t.Fatal(resp.Status, resp.Body)
		}
	})

	t.Run("the debug log says why, and holds no token", func(t *testing.T) {
		// The last request's access log line is written after its answer.
		e.Logs().Wait(t, `"msg":"handled request"`, `"status":401`, `"uri":"`+startPath)
		logs := e.Logs().String()
		for _, want := range []string{
			// the client's message and the cause, for the operator
			`"msg":"bearer token rejected"`, `"reason":"The token has expired."`, `"cause":"token has invalid claims: token is expired"`,
			`"cause":"iss is not one of the configured issuers"`,
			`"reason":"The token's header lists critical extensions (crit), which are not supported here."`,
			`"cause":"the header has crit: critical extensions the edge does not understand"`,
			`"cause":"the claims give a member name twice"`,
			`"cause":"the header gives a member name twice"`,
			`"cause":"token is unverifiable: error while executing keyfunc: the header's kid is not a string"`,
			`"user_id":"user-sub"`, // the access log's identity
		} {
			if !strings.Contains(logs, want) {
				t.Errorf("the log lacks %s", want)
			}
		}
		for _, token := range tokens {
			// the signature alone is enough to give the token away
			if sig := token[strings.LastIndex(token, ".")+1:]; len(sig) > 20 && strings.Contains(logs, sig) {
				t.Errorf("a log line holds a token")
			}
		}
	})
}

// TestAuthAlgorithmConfusion: with only RS256 allowed, a token in any
// other algorithm is refused, even when signed with bytes the edge has
// (the RSA public key's PEM as an HMAC secret). Loaded from JSON.
func TestAuthAlgorithmConfusion(t *testing.T) {
	k := testkit.Keys(t)
	now := time.Now()
	rsaPEM := testkit.PublicPEM(t, k.RSA)
	up := testkit.NewUpstream(t)
	e := startEdge(t, "json", fmt.Sprintf(`{
	"apps": {"http": {"servers": {"edge": {
		"listen": [":EDGE_PORT"],
		"routes": [{"handle": [
			{"handler": "ucwa", "default_region": "US",
			 "jwt": {"algorithms": ["RS256"], "public_key_files": [%q], "audiences": ["api://ucwa"], "leeway": "5s"},
			 "challenge": {"realm": "edge", "authorization_uri": "https://login.windows.net/common/oauth2/authorize", "client_id": "00000004-0000-0ff1-ce00-000000000000"}},
			{"handler": "reverse_proxy", "upstreams": [{"dial": %q}]}
		]}]
	}}}}
}`, testkit.WriteFile(t, t.TempDir(), "rsa.pem", rsaPEM), up.Addr()))
	bearer := func(s string) []string { return []string{"Bearer " + s} }
	runAuthCases(t, e, up, []authCase{
		{"RS256", bearer(testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "", testkit.Claims(now, nil))), 201, "", ""},
		{"HS256 with the RSA public key PEM as secret", bearer(testkit.Mint(t, jwt.SigningMethodHS256, rsaPEM, "", testkit.Claims(now, nil))), 401, invalidToken, "algorithm"},
		{"HS256 with the PEM without its newline", bearer(testkit.Mint(t, jwt.SigningMethodHS256, []byte(strings.TrimSpace(string(rsaPEM))), "", testkit.Claims(now, nil))), 401, invalidToken, "algorithm"},
		{"ES256", bearer(testkit.Mint(t, jwt.SigningMethodES256, k.EC, "", testkit.Claims(now, nil))), 401, invalidToken, "algorithm"},
		{"PS256 by the same RSA key", bearer(testkit.Mint(t, jwt.SigningMethodPS256, k.RSA, "", testkit.Claims(now, nil))), 401, invalidToken, "algorithm"},
		{"alg none", bearer(testkit.Unsigned(t, testkit.Claims(now, nil))), 401, invalidToken, "algorithm"},
		{"expired beyond leeway", bearer(testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "", testkit.Claims(now, jwt.MapClaims{"exp": now.Add(-6 * time.Second).Unix()}))), 401, invalidToken, "expired"},
		{"web ticket", bearer("cwt=AAEAHAUHGkHigqyFLZ"), 401, invalidToken, "Web tickets"},
	})
}

// TestAuthLeeway: through a real Caddy, a token whose nbf is the second
// its issuer stamped it in (IdentityServer, .NET's
// JwtSecurityTokenHandler), used at once on an edge whose clock is 30ms
// behind the issuer's, passes with leeway unset (a minute), as does one
// a second past its exp; an explicit `leeway 0` refuses both. The edge's
// token clock is the test's.
func TestAuthLeeway(t *testing.T) {
	k := testkit.Keys(t)
	s := time.Now().Truncate(time.Second) // the second the issuer stamps
	clk := testkit.NewClock(s.Add(-30 * time.Millisecond))
	bearerNow = clk.Now
	t.Cleanup(func() { bearerNow = time.Now })
	keyFile := testkit.WriteFile(t, t.TempDir(), "rsa.pem", testkit.PublicPEM(t, k.RSA))
	mint := func(claims jwt.MapClaims) []string {
		return []string{"Bearer " + testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "", testkit.Claims(s, claims))}
	}
	fresh := mint(jwt.MapClaims{"nbf": s.Unix()})
	justExpired := mint(jwt.MapClaims{"iat": s.Add(-time.Hour).Unix(), "exp": s.Add(-time.Second).Unix()})
	for _, tc := range []struct {
		name, leeway string
		cases        []authCase
	}{
		{"unset", "", []authCase{
			{"nbf the second of issue", fresh, 201, "", ""},
			{"a second past exp", justExpired, 201, "", ""},
		}},
		{"leeway 0", "leeway 0", []authCase{
			{"nbf the second of issue", fresh, 401, invalidToken, "not valid yet"},
			{"a second past exp", justExpired, 401, invalidToken, "expired"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := testkit.NewUpstream(t)
			e := startEdge(t, "caddyfile", authSite(fmt.Sprintf(`jwt {
			algorithms RS256
			public_key_file %s
			%s
		}
		challenge realm edge
		challenge authorization_uri https://login.windows.net/common/oauth2/authorize
		challenge client_id 00000004-0000-0ff1-ce00-000000000000`, keyFile, tc.leeway), up.Addr()))
			runAuthCases(t, e, up, tc.cases)
		})
	}
}

// TestAuthWebTicketsForward: `web_tickets forward` passes a web ticket to
// the pool unchecked and unchanged; JWTs are still checked.
func TestAuthWebTicketsForward(t *testing.T) {
	k := testkit.Keys(t)
	now := time.Now()
	up := testkit.NewUpstream(t)
	e := startEdge(t, "caddyfile", authSite(fmt.Sprintf(`jwt {
			algorithms ES256
			public_key_file %s
		}
		scopes Conversations.Initiate
		web_tickets forward`, testkit.WriteFile(t, t.TempDir(), "ec.pem", testkit.PublicPEM(t, k.EC))), up.Addr()))
	bearer := func(s string) []string { return []string{"Bearer " + s} }
	runAuthCases(t, e, up, []authCase{
		{"web ticket forwarded", bearer("cwt=AAEAHAUHGkHigqyFLZ-Wd6o1tPkOgK5XHlEkBKdA4N3rE0y"), 201, "", ""},
		{"ES256 with the configured scope", bearer(testkit.Mint(t, jwt.SigningMethodES256, k.EC, "", testkit.Claims(now, nil))), 201, "", ""},
		{"only the scope no longer configured", bearer(testkit.Mint(t, jwt.SigningMethodES256, k.EC, "", testkit.Claims(now, jwt.MapClaims{"scp": "Conversations.Receive"}))), 403,
			`Bearer realm="ucwa", error="insufficient_scope", scope="Conversations.Initiate"`, "Conversations.Initiate"},
		{"bad JWT still refused", bearer("eyJ.eyJ.sig"), 401, `Bearer realm="ucwa", error="invalid_token"`, "malformed"},
		{"oversized web ticket", bearer("cwt=" + strings.Repeat("A", 9000)), 401, `Bearer realm="ucwa", error="invalid_token"`, "longer than"},
	})
}

// TestTokenCacheMetrics: the verified-token cache reports to Caddy's
// metrics; many distinct tokens never grow it past cache_size. Loaded
// from JSON; the tokens are HS256 so that minting them is cheap.
func TestTokenCacheMetrics(t *testing.T) {
	k := testkit.Keys(t)
	now := time.Now()
	t.Setenv("UCWA_TEST_JWT_SECRET", string(k.HMAC))
	e := startEdge(t, "json", fmt.Sprintf(`{
	"apps": {"http": {"servers": {"edge": {
		"listen": [":EDGE_PORT"],
		"routes": [{"handle": [
			{"handler": "ucwa", "default_region": "US",
			 "jwt": {"algorithms": ["HS256"], "hmac_secret": "{env.UCWA_TEST_JWT_SECRET}", "cache_size": 50}},
			{"handler": "reverse_proxy", "upstreams": [{"dial": %q}]}
		]}]
	}}}}
}`, testkit.NewUpstream(t).Addr()), testkit.WithAdmin())
	const distinct = 120
	var last string
	for i := range distinct {
		last = testkit.Mint(t, jwt.SigningMethodHS256, k.HMAC, "", testkit.Claims(now, jwt.MapClaims{"sub": fmt.Sprint("user-", i)}))
		e.expect(last, 201, "")
	}
	e.expect(last, 201, "")
	for sample, want := range map[string]float64{
		"caddy_ucwa_token_cache_entries":                      50,
		`caddy_ucwa_token_cache_lookups_total{result="hit"}`:  1,
		`caddy_ucwa_token_cache_lookups_total{result="miss"}`: distinct,
	} {
		if got := e.Metric(sample); got != want {
			t.Errorf("%s = %v, want %v", sample, got, want)
		}
	}
}

// TestTokenCacheOff: cache_size -1 keeps no cache, nor its metrics.
func TestTokenCacheOff(t *testing.T) {
	k := testkit.Keys(t)
	e := startEdge(t, "caddyfile", authSite(fmt.Sprintf(`jwt {
			algorithms RS256
			public_key_file %s
			cache_size -1
		}`, testkit.WriteFile(t, t.TempDir(), "rsa.pem", testkit.PublicPEM(t, k.RSA))), testkit.NewUpstream(t).Addr()), testkit.WithAdmin())
	token := testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "", testkit.Claims(time.Now(), nil))
	e.expect(token, 201, "")
	e.expect(token, 201, "")
	if got := e.Metric("caddy_ucwa_token_cache_entries"); got != -1 {
		t.Errorf("token cache entries %v with the cache off, want no such metric", got)
	}
}

// TestJWKSURLSharedAcrossReload: a config reload while the identity
// provider is down keeps the last good key set and fetches nothing: the
// new config shares the jwks_url fetcher.
func TestJWKSURLSharedAcrossReload(t *testing.T) {
	k := testkit.Keys(t)
	idp := testkit.NewJWKSServer(t, testkit.JWKS(t, testkit.JWK(t, "k1", k.RSA)))
	up := testkit.NewUpstream(t)
	config := func(scopes string) string {
		return authSite(fmt.Sprintf(`jwt {
			algorithms RS256
			jwks_url %s/keys 2h
		}
		scopes %s`, idp.URL, scopes), up.Addr())
	}
	e := startEdge(t, "caddyfile", config("Conversations.Initiate"))
	token := testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "k1", testkit.Claims(time.Now(), nil))
	e.expect(token, 201, "")
	idp.Serve(500, []byte("down"))
	e.Load("caddyfile", config("Conversations.Receive Conversations.Initiate"))
	e.expect(token, 201, "")
	if got := idp.Hits.Load(); got != 1 {
		t.Fatalf("the identity provider was asked %d times, want 1", got)
	}
}

// TestJWKSURLReplacedAcrossReloadWhileDown: a reload while the identity
// provider is down that names the same jwks_url with another refresh
// starts a fetcher of its own, whose first fetch fails: it starts from
// the last good set of the fetcher it replaces, and tokens signed with
// its keys still pass. A reload to another URL takes no key from the
// old one.
func TestJWKSURLReplacedAcrossReloadWhileDown(t *testing.T) {
	k := testkit.Keys(t)
	up := testkit.NewUpstream(t)
	token := testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "k1", testkit.Claims(time.Now(), nil))
	for _, tc := range []struct {
		name, url, refresh string
		status             int
		message            string
	}{
		{"same url, another refresh", "/keys", "3h", 201, ""},
		// No set was ever fetched from it: the client is told so.
		{"another url", "/other-keys", "2h", 401, "has not yet fetched the identity provider's keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			idp := testkit.NewJWKSServer(t, testkit.JWKS(t, testkit.JWK(t, "k1", k.RSA)))
			config := func(path, refresh string) string {
				return authSite(fmt.Sprintf(`jwt {
			algorithms RS256
			jwks_url %s%s %s
		}`, idp.URL, path, refresh), up.Addr())
			}
			e := startEdge(t, "caddyfile", config("/keys", "2h"))
			e.expect(token, 201, "")
			idp.Serve(500, []byte("down"))
			e.Load("caddyfile", config(tc.url, tc.refresh))
			if got := idp.Hits.Load(); got != 2 {
				t.Fatalf("the identity provider was asked %d times, want 2 (once by each fetcher)", got)
			}
			e.expect(token, tc.status, tc.message)
		})
	}
}

// TestJWKSURLStoppedByReloadWaitsNot: a reload whose config names the
// jwks_url no more stops its fetcher while a request of the old config
// still runs (Caddy does not wait for it; here a forward_auth before the
// edge holds it until the reload is done). Its token names a kid the set
// lacks, past the minute between fetches: it is refused 401 at once, as
// with an unknown kid, and the identity provider is asked nothing more.
// The kid wait is an hour here: a request that waited for the fetch the
// stopped fetcher never makes would get no answer (the test gives up on
// it after a minute, a bound for an answer that never comes).
func TestJWKSURLStoppedByReloadWaitsNot(t *testing.T) {
	k := testkit.Keys(t)
	clk := testkit.NewClock(time.Now().Truncate(time.Second))
	bearerNow, unknownKidWait = clk.Now, time.Hour
	t.Cleanup(func() { bearerNow, unknownKidWait = time.Now, 0 })
	idp := testkit.NewJWKSServer(t, testkit.JWKS(t, testkit.JWK(t, "k1", k.RSA)))
	var checks testkit.Counter
	hold := make(chan struct{})
	gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		checks.Add()
		<-hold
	}))
	t.Cleanup(gate.Close)
	t.Cleanup(func() { close(hold) }) // runs before gate.Close, if the test ends early
	up := testkit.NewUpstream(t)
	config := func(jwt string) string {
		return fmt.Sprintf(`:EDGE_PORT {
	route {
		forward_auth %s {
			uri /check
		}
		ucwa {
			default_region US
			jwt {
				algorithms RS256
				%s
			}
		}
		reverse_proxy %s
	}
}`, gate.Listener.Addr(), jwt, up.Addr())
	}
	e := startEdge(t, "caddyfile", config("jwks_url "+idp.URL+"/keys"))
	clk.Advance(time.Minute) // an unknown kid may ask for a fetch again
	unknown := testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "k9", testkit.Claims(clk.Now(), nil))
	type answered struct {
		resp testkit.Response
		err  error
	}
	answer := make(chan answered, 1)
	go func() {
		resp, err := testkit.Do(e.Client(), testkit.Request{URL: e.url(startPath), ContentType: "application/json",
			Body: `{"to":"4255551234"}`, Header: http.Header{"Authorization": {"Bearer " + unknown}}})
		answer <- answered{resp, err}
	}()
	checks.WaitFor(t, 1, "requests held by forward_auth")
	e.Load("caddyfile", config("public_key_file "+testkit.WriteFile(t, t.TempDir(), "rsa.pem", testkit.PublicPEM(t, k.RSA2))))
	hold <- struct{}{} // the old config's request goes on, to the edge
	select {
	case a := <-answer:
		if a.err != nil {
			t.Fatalf("no answer (%v): the request of the old config waits for a fetch the stopped fetcher never makes", a.err)
		}
		if a.resp.Status != http.StatusUnauthorized || !strings.Contains(a.resp.Body, "key id (kid)") {
			t.Fatalf("%d %s, want 401 for the unknown kid", a.resp.Status, a.resp.Body)
		}
	case <-time.After(time.Minute):
		t.Fatal("no answer: the request of the old config waits for a fetch the stopped fetcher never makes")
	}
	if got := idp.Hits.Load(); got != 1 {
		t.Fatalf("the identity provider was asked %d times, want 1 (at startup)", got)
	}
	if got := len(up.Received()); got != 0 {
		t.Fatalf("the pool got %d requests", got)
	}
}

// TestJWKSURLWithoutIssuerWarns: Entra ID signs every tenant's tokens
// with the same keys, and an audience does not tell tenants apart (any
// tenant gets tokens for a multi-tenant application, and may name its
// own service principal after the edge's URL): with a jwks_url and an
// audience but no issuer, another tenant's token passes, and startup
// says so; an issuer refuses it, and startup is quiet.
func TestJWKSURLWithoutIssuerWarns(t *testing.T) {
	k := testkit.Keys(t)
	idp := testkit.NewJWKSServer(t, testkit.JWKS(t, testkit.JWK(t, "k1", k.RSA)))
	up := testkit.NewUpstream(t)
	const warning = `jwks_url without issuer`
	other := testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "k1", testkit.Claims(time.Now(), jwt.MapClaims{
		"iss": "https://sts.windows.net/other-tenant/", "tid": "other-tenant"}))
	for _, tc := range []struct {
		name, issuer string
		status       int
		warns        bool
	}{
		{"audience only", "", 201, true},
		{"audience and issuer", "issuer https://sts.windows.net/our-tenant/", 401, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startEdge(t, "caddyfile", authSite(fmt.Sprintf(`jwt {
			algorithms RS256
			jwks_url %s/keys
			audience api://ucwa
			%s
		}`, idp.URL, tc.issuer), up.Addr()))
			e.expect(other, tc.status, "")
			if got := strings.Contains(e.Logs().String(), warning); got != tc.warns {
				t.Errorf("the log has %q: %v, want %v", warning, got, tc.warns)
			}
		})
	}
}

// TestIssuersShareKeysWarns: keys are chosen by a token's alg and kid,
// not its iss, so with two issuers and keys from two sources the holder
// of one (an internal service's HMAC secret) signs tokens that pass as
// the other issuer's: startup warns of it. One key source, or one
// issuer, is quiet.
func TestIssuersShareKeysWarns(t *testing.T) {
	k := testkit.Keys(t)
	t.Setenv("UCWA_TEST_JWT_SECRET", string(k.HMAC))
	rsaFile := testkit.WriteFile(t, t.TempDir(), "rsa.pem", testkit.PublicPEM(t, k.RSA))
	up := testkit.NewUpstream(t)
	const warning = `keys are not bound to issuers`
	const idp, internal = "https://sts.windows.net/our-tenant/", "https://internal.example/"
	// The internal service's secret, signing as the identity provider.
	forged := testkit.Mint(t, jwt.SigningMethodHS256, k.HMAC, "", testkit.Claims(time.Now(), jwt.MapClaims{"iss": idp}))
	for _, tc := range []struct {
		name, algorithms, keys, issuers string
		status                          int
		warns                           bool
	}{
		{"two issuers, two key sources", "RS256 HS256", "public_key_file " + rsaFile + "\n\t\t\thmac_secret {env.UCWA_TEST_JWT_SECRET}", idp + " " + internal, 201, true},
		{"two issuers, one key source", "HS256", "hmac_secret {env.UCWA_TEST_JWT_SECRET}", idp + " " + internal, 201, false},
		{"one issuer, two key sources", "RS256 HS256", "public_key_file " + rsaFile + "\n\t\t\thmac_secret {env.UCWA_TEST_JWT_SECRET}", idp, 201, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startEdge(t, "caddyfile", authSite(fmt.Sprintf(`jwt {
			algorithms %s
			%s
			issuer %s
		}`, tc.algorithms, tc.keys, tc.issuers), up.Addr()))
			e.expect(forged, tc.status, "")
			if got := strings.Contains(e.Logs().String(), warning); got != tc.warns {
				t.Errorf("the log has %q: %v, want %v", warning, got, tc.warns)
			}
		})
	}
}

// TestJWKSURLDownAtStartupLogged: an edge whose identity provider fails
// the first fetch starts, and its error says that no key set was ever
// fetched and that tokens are refused until one is, not that a last good
// set serves; a token is refused 401.
func TestJWKSURLDownAtStartupLogged(t *testing.T) {
	k := testkit.Keys(t)
	idp := testkit.NewJWKSServer(t, testkit.JWKS(t, testkit.JWK(t, "r", k.RSA)))
	idp.Serve(http.StatusServiceUnavailable, []byte("down"))
	e := startEdge(t, "caddyfile", fmt.Sprintf(`:EDGE_PORT {
	ucwa {
		jwt {
			algorithms RS256
			jwks_url %s/keys
			issuer https://issuer.test/
		}
	}
}`, idp.URL))
	line := e.Logs().Wait(t, `"logger":"http.handlers.ucwa.jwks"`, "jwks_url fetch failed")
	if !strings.Contains(line, "no key set was ever fetched") || strings.Contains(line, "last good") || !strings.Contains(line, `"retry_in"`) {
		t.Fatalf("the failed first fetch says: %s", line)
	}
	token := testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "r", testkit.Claims(time.Now(), nil))
	if got := e.postJSON(startOpsPath, `{"to":"sip:john@contoso.com"}`, http.Header{"Authorization": {"Bearer " + token}}).Status; got != http.StatusUnauthorized {
		t.Errorf("a token with no key set: %d, want 401", got)
	}
}

// TestJWKSURLPasswordNotLogged: a jwks_url with a password in its user
// information (sent to the provider as Basic credentials) and a secret
// in its query (?code=..., as Azure Functions and some identity provider
// proxies take a key), each given as an {env.*} placeholder, shows neither
// in any log line at any level: not the fetched set's debug line, nor the
// failed fetch's (a status, a refused connection, whose error names the
// URL, a redirect refused, whose error names the target), which name the
// URL with the password and the query's values redacted and the query's
// names kept; nor the startup error of such a URL in plain http to
// another host, or of one that does not parse.
func TestJWKSURLPasswordNotLogged(t *testing.T) {
	const password, code = "jwks-password-4f1d", "jwks-code-9b2e"
	t.Setenv("UCWA_TEST_JWKS_URL_PASSWORD", password)
	t.Setenv("UCWA_TEST_JWKS_URL_CODE", code)
	k := testkit.Keys(t)
	const query = "/keys?code={env.UCWA_TEST_JWKS_URL_CODE}&api-version=2"
	const redactedQuery = "/keys?code=xxxxx&api-version=xxxxx"
	jwks := func(t *testing.T, status int) string {
		idp := testkit.NewJWKSServer(t, testkit.JWKS(t, testkit.JWK(t, "r", k.RSA)))
		idp.Serve(status, testkit.JWKS(t, testkit.JWK(t, "r", k.RSA)))
		return idp.URL
	}
	// A redirect to plain http on another host, with the secret in its
	// query: refused before it is followed.
	redirecting := func(t *testing.T, _ int) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://idp.contoso.test/keys?code="+code, http.StatusFound)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	// A loopback port nobody listens on: the client's error names the URL.
	refusing := func(t *testing.T, _ int) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return "http://" + addr
	}
	for _, tc := range []struct {
		name   string
		server func(*testing.T, int) string
		status int
		line   string // the fetch's log line
		want   []string
	}{
		{"fetched", jwks, http.StatusOK, "jwks_url fetched", []string{`"url":"http://edge:xxxxx@`, redactedQuery}},
		{"fetch failed", jwks, http.StatusServiceUnavailable, "jwks_url fetch failed", []string{`"url":"http://edge:xxxxx@`, redactedQuery}},
		{"connection refused", refusing, 0, "jwks_url fetch failed", []string{`"url":"http://edge:xxxxx@`, redactedQuery + `\": dial tcp`}},
		{"redirect refused", redirecting, 0, "jwks_url fetch failed", []string{`"url":"http://edge:xxxxx@`, `http://idp.contoso.test/keys?code=xxxxx`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			withUser := strings.Replace(tc.server(t, tc.status), "://", "://edge:{env.UCWA_TEST_JWKS_URL_PASSWORD}@", 1)
			e := startEdge(t, "caddyfile", authSite(`jwt {
			algorithms RS256
			jwks_url "`+withUser+query+`"
			issuer https://issuer.test/
		}`, testkit.NewUpstream(t).Addr()))
			line := e.Logs().Wait(t, `"logger":"http.handlers.ucwa.jwks"`, tc.line)
			for _, want := range tc.want {
				if !strings.Contains(line, want) {
					t.Errorf("the line does not hold %s (the URL, its password and query's values redacted): %s", want, line)
				}
			}
			if logs := e.Logs().String(); strings.Contains(logs, password) || strings.Contains(logs, code) {
				t.Errorf("the log shows the jwks_url's password or code:\n%s", logs)
			}
		})
	}
	t.Run("startup error", func(t *testing.T) {
		err := testkit.Validate(t, "caddyfile", `:0 {
	ucwa {
		jwt {
			algorithms RS256
			jwks_url "http://edge:{env.UCWA_TEST_JWKS_URL_PASSWORD}@idp.contoso.test`+query+`"
		}
	}
}`)
		if err == nil || !strings.Contains(err.Error(), `jwks_url "http://edge:xxxxx@idp.contoso.test/keys?code=xxxxx&api-version=xxxxx" must use https`) ||
			strings.Contains(err.Error(), password) || strings.Contains(err.Error(), code) {
			t.Fatalf("error %v, want one naming the URL with its password and query's values redacted", err)
		}
		// A URL that does not parse (a port that is none) is shown without
		// what follows its scheme, or, without user information, with its
		// query's values redacted.
		for _, tc := range []struct{ url, want string }{
			{"https://edge:{env.UCWA_TEST_JWKS_URL_PASSWORD}@idp.contoso.test:port" + query, `jwks_url "https://xxxxx@..." is not an absolute URL`},
			{"https://idp.contoso.test:port" + query, `jwks_url "https://idp.contoso.test:port/keys?code=xxxxx&api-version=xxxxx" is not an absolute URL`},
			// No "//" after the scheme: Go reads it as opaque, its user
			// information in the opaque part.
			{"https:edge:{env.UCWA_TEST_JWKS_URL_PASSWORD}@idp.contoso.test" + query, `jwks_url "https:xxxxx@..."`},
			{"https:://edge:{env.UCWA_TEST_JWKS_URL_PASSWORD}@idp.contoso.test" + query, `jwks_url "https:xxxxx@..."`},
		} {
			err = testkit.Validate(t, "json", handlerJSON(`"jwt":{"algorithms":["RS256"],"jwks_url":"`+tc.url+`"}`))
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), password) || strings.Contains(err.Error(), code) {
				t.Fatalf("error %v, want one containing %s", err, tc.want)
			}
		}
	})
}

// TestUnverifiableAlgorithmWarnedAtStartup: an edge whose jwks_file holds
// only EC keys under algorithms RS256 ES256 starts, and warns once, on the
// handler's logger, that RS256 tokens are refused until a key verifies
// them; the RS256 token is refused, the ES256 one passes.
func TestUnverifiableAlgorithmWarnedAtStartup(t *testing.T) {
	k := testkit.Keys(t)
	keys := testkit.WriteFile(t, t.TempDir(), "keys.json", testkit.JWKS(t, testkit.JWK(t, "e", k.EC)))
	up := testkit.NewUpstream(t)
	e := startEdge(t, "caddyfile", fmt.Sprintf(`:EDGE_PORT {
	ucwa {
		jwt {
			algorithms RS256 ES256
			jwks_file %s
		}
		primary %s
	}
}`, keys, up.Addr()))
	line := e.Logs().Wait(t, `"logger":"http.handlers.ucwa"`, "verifies these algorithms now")
	if !strings.Contains(line, `"algorithms":["RS256"]`) || !strings.Contains(line, `"level":"warn"`) {
		t.Fatalf("the warning does not name RS256 alone: %s", line)
	}
	send := func(method jwt.SigningMethod, key any, kid string) int {
		token := testkit.Mint(t, method, key, kid, testkit.Claims(time.Now(), nil))
		return e.postJSON(startOpsPath, `{"to":"sip:john@contoso.com"}`, http.Header{"Authorization": {"Bearer " + token}}).Status
	}
	if got := send(jwt.SigningMethodRS256, k.RSA, ""); got != http.StatusUnauthorized {
		t.Errorf("RS256 token: %d, want 401", got)
	}
	if got := send(jwt.SigningMethodES256, k.EC, "e"); got == http.StatusUnauthorized {
		t.Errorf("ES256 token: 401")
	}
}

// TestAuthJWKSKeyOps: a JWK Set key whose key_ops (RFC 7517 4.3) does not
// list "verify" is not a signature key: a token it signed is refused as
// one with an unknown kid, while a key whose key_ops lists "verify", or
// that has none, still verifies. The provider meant the key for
// encryption (or for nothing), and the edge must not trust a signature
// made with it.
func TestAuthJWKSKeyOps(t *testing.T) {
	k := testkit.Keys(t)
	withOps := func(jwk map[string]string, ops []string) map[string]any {
		m := map[string]any{"key_ops": ops}
		for name, v := range jwk {
			if name != "use" {
				m[name] = v
			}
		}
		return m
	}
	set, err := json.Marshal(map[string]any{"keys": []any{
		withOps(testkit.JWK(t, "encrypt-only", k.RSA), []string{"encrypt", "wrapKey"}),
		withOps(testkit.JWK(t, "no-operation", k.Ed), []string{}),
		withOps(testkit.JWK(t, "verify", k.EC), []string{"verify"}),
		testkit.JWK(t, "plain", k.RSA2),
	}})
	if err != nil {
		t.Fatal(err)
	}
	up := testkit.NewUpstream(t)
	e := startEdge(t, "caddyfile", authSite(fmt.Sprintf(`jwt {
			algorithms RS256 ES256 EdDSA
			jwks_file %s
		}
		challenge realm edge`, testkit.WriteFile(t, t.TempDir(), "keys.json", set)), up.Addr()))
	now := time.Now()
	bearer := func(method jwt.SigningMethod, key any, kid string) []string {
		return []string{"Bearer " + testkit.Mint(t, method, key, kid, testkit.Claims(now, nil))}
	}
	const refused = `Bearer realm="edge", error="invalid_token"`
	runAuthCases(t, e, up, []authCase{
		{"key_ops verify", bearer(jwt.SigningMethodES256, k.EC, "verify"), 201, "", ""},
		{"no key_ops", bearer(jwt.SigningMethodRS256, k.RSA2, "plain"), 201, "", ""},
		{"key_ops encrypt and wrapKey", bearer(jwt.SigningMethodRS256, k.RSA, "encrypt-only"), 401, refused, "key id (kid)"},
		{"key_ops encrypt, no kid", bearer(jwt.SigningMethodRS256, k.RSA, ""), 401, refused, "signature is invalid"},
		{"key_ops empty", bearer(jwt.SigningMethodEdDSA, k.Ed, "no-operation"), 401, refused, "key id (kid)"},
	})
}

// TestAuthKeyHeadersNotFollowed: the keys that verify a token are the
// configured ones only. A token that carries its own key (jwk, x5c) or
// points at one (jku, x5u) is refused, and the edge fetches nothing from
// where it points; a kid that both the jwks_file and the jwks_url name
// (each for a key of its own) verifies with either key, and with no
// other. Passes as it is: no behaviour change.
func TestAuthKeyHeadersNotFollowed(t *testing.T) {
	k := testkit.Keys(t)
	attacker := k.RSA2
	elsewhere := testkit.NewJWKSServer(t, testkit.JWKS(t, testkit.JWK(t, "k1", attacker)))
	idp := testkit.NewJWKSServer(t, testkit.JWKS(t, testkit.JWK(t, "k1", k.RSA)))
	file := testkit.WriteFile(t, t.TempDir(), "keys.json", testkit.JWKS(t, testkit.JWK(t, "k1", k.EC)))
	up := testkit.NewUpstream(t)
	e := startEdge(t, "caddyfile", authSite(fmt.Sprintf(`jwt {
			algorithms RS256 ES256
			jwks_file %s
			jwks_url %s/keys
			issuer https://issuer.example/
		}
		challenge realm edge`, file, idp.URL), up.Addr()))
	now := time.Now()
	claims := testkit.ClaimsJSON(t, testkit.Claims(now, nil))
	ownJWK, err := json.Marshal(testkit.JWK(t, "k1", attacker))
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := pem.Decode(testkit.CACertificatePEM(t)) // any certificate: x5c is never read
	x5c := base64.StdEncoding.EncodeToString(cert.Bytes)
	signed := func(method jwt.SigningMethod, key any, header string) []string {
		return []string{"Bearer " + testkit.MintRaw(t, method, key, header, claims)}
	}
	const refused = `Bearer realm="edge", error="invalid_token"`
	runAuthCases(t, e, up, []authCase{
		{"kid k1 of the jwks_url", signed(jwt.SigningMethodRS256, k.RSA, `{"alg":"RS256","kid":"k1"}`), 201, "", ""},
		{"kid k1 of the jwks_file", signed(jwt.SigningMethodES256, k.EC, `{"alg":"ES256","kid":"k1"}`), 201, "", ""},
		{"kid k1 signed by another key", signed(jwt.SigningMethodRS256, attacker, `{"alg":"RS256","kid":"k1"}`), 401, refused, "signature is invalid"},
		{"own key in jwk", signed(jwt.SigningMethodRS256, attacker, `{"alg":"RS256","kid":"k1","jwk":`+string(ownJWK)+`}`), 401, refused, "signature is invalid"},
		{"own key in jwk, no kid", signed(jwt.SigningMethodRS256, attacker, `{"alg":"RS256","jwk":`+string(ownJWK)+`}`), 401, refused, "signature is invalid"},
		{"jku elsewhere", signed(jwt.SigningMethodRS256, attacker, `{"alg":"RS256","kid":"k1","jku":"`+elsewhere.URL+`/keys"}`), 401, refused, "signature is invalid"},
		{"jku elsewhere, unknown kid", signed(jwt.SigningMethodRS256, attacker, `{"alg":"RS256","kid":"k9","jku":"`+elsewhere.URL+`/keys"}`), 401, refused, "key id (kid)"},
		{"x5u elsewhere", signed(jwt.SigningMethodRS256, attacker, `{"alg":"RS256","x5u":"`+elsewhere.URL+`/cert.pem"}`), 401, refused, "signature is invalid"},
		{"x5c", signed(jwt.SigningMethodRS256, attacker, `{"alg":"RS256","x5c":["`+x5c+`"]}`), 401, refused, "signature is invalid"},
	})
	if got := elsewhere.Hits.Load(); got != 0 {
		t.Fatalf("the edge fetched %d times from where a token pointed", got)
	}
}

// TestAuthCauseHoldsNoNumber: the debug line of a refused token gives
// why it failed (cause), and the JSON decoder's error of a header or
// claims that do not decode quotes a number it could not read: a number
// out of float64's range, which a client may write with a telephone
// number's digits, is masked in the cause as in the reason.
func TestAuthCauseHoldsNoNumber(t *testing.T) {
	k := testkit.Keys(t)
	up := testkit.NewUpstream(t)
	e := startEdge(t, "caddyfile", authSite(fmt.Sprintf(`jwt {
			algorithms RS256
			public_key_file %s
		}`, testkit.WriteFile(t, t.TempDir(), "rsa.pem", testkit.PublicPEM(t, k.RSA))), up.Addr()))
	seg := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	claims := seg(testkit.ClaimsJSON(t, testkit.Claims(time.Now(), nil)))
	for _, token := range []string{
		seg(`{"alg":"RS256","typ":"JWT","x":`+markerDigits+`e999}`) + "." + claims + ".c2ln",
		seg(`{"alg":"RS256","typ":"JWT"}`) + "." + seg(`{"exp":`+markerDigits+`e999}`) + ".c2ln",
	} {
		e.expect(token, http.StatusUnauthorized, "malformed")
	}
	e.Logs().Wait(t, `"msg":"bearer token rejected"`, `"cause":"token is malformed: could not JSON decode claim`)
	for line := range strings.Lines(e.Logs().String()) {
		if strings.Contains(line, markerDigits) {
			t.Errorf("a log line holds the number: %s", line)
		}
	}
}
