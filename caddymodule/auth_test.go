package caddymodule

import (
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/golang-jwt/jwt/v5"
)

const (
	testChallenge = `, authorization_uri="https://login.windows.net/common/oauth2/authorize", client_id="00000004-0000-0ff1-ce00-000000000000"`
	missingToken  = `Bearer realm="edge"` + testChallenge
	invalidToken  = `Bearer realm="edge", error="invalid_token"` + testChallenge
	scopeDenied   = `Bearer error="insufficient_scope", scope="Conversations.Initiate Conversations.Receive"`
)

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
func runAuthCases(t *testing.T, up *upstream, cases []authCase) {
	t.Helper()
	client := &http.Client{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(up.received())
			resp, body := sendWithAuth(t, client, "", tc.authorization...)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, tc.challenge)
			}
			got := up.received()
			if tc.status != http.StatusCreated {
				if len(got) != before {
					t.Error("a refused request reached the pool")
				}
				code, message := ucwaError(t, body)
				if code != map[int]string{401: "Unauthorized", 403: "Forbidden"}[tc.status] || !strings.Contains(message, tc.message) {
					t.Errorf("body %s, want code for %d and message with %q", body, tc.status, tc.message)
				}
				for _, a := range tc.authorization {
					if _, token, _ := strings.Cut(a, " "); len(token) > 8 && strings.Contains(body, token) {
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
// through a Caddyfile config, and checks that no log line holds a token.
func TestAuthTokens(t *testing.T) {
	k := getKeys(t)
	now := setClock(t).Now()
	dir := t.TempDir()
	t.Setenv("UCWA_TEST_JWT_SECRET", string(k.hmac))
	rsaPEM := publicPEM(t, k.rsa)
	logFile := filepath.Join(dir, "caddy.log")
	up := newUpstream(t)
	startCaddy(t, authSite(fmt.Sprintf(`jwt {
			algorithms RS256 ES256 EdDSA HS256
			public_key_file %s %s
			public_key_file %s
			hmac_secret {env.UCWA_TEST_JWT_SECRET}
			issuer https://issuer.example/ https://sts.windows.net/tenant/
			audience api://ucwa 00000004-0000-0ff1-ce00-000000000000
			leeway 30s
		}
		challenge realm edge
		challenge authorization_uri https://login.windows.net/common/oauth2/authorize
		challenge client_id 00000004-0000-0ff1-ce00-000000000000`,
		writeFile(t, dir, "rsa.pem", rsaPEM), writeFile(t, dir, "ec.pem", publicPEM(t, k.ec)),
		writeFile(t, dir, "ed.pem", publicPEM(t, k.ed))), up.hostport(), logFile), "caddyfile")

	bearer := func(s string) []string { return []string{"Bearer " + s} }
	rs := func(extra jwt.MapClaims) []string {
		return bearer(mint(t, jwt.SigningMethodRS256, k.rsa, "", claimsAt(now, extra)))
	}
	var tokens []string
	cases := []authCase{
		{"RS256 scp", rs(nil), 201, "", ""},
		{"ES256 scope", bearer(mint(t, jwt.SigningMethodES256, k.ec, "", claimsAt(now, jwt.MapClaims{"scp": nil, "scope": "Conversations.Receive"}))), 201, "", ""},
		{"EdDSA roles", bearer(mint(t, jwt.SigningMethodEdDSA, k.ed, "", claimsAt(now, jwt.MapClaims{"scp": nil, "roles": []string{"Other", "Conversations.Initiate"}}))), 201, "", ""},
		{"HS256", bearer(mint(t, jwt.SigningMethodHS256, k.hmac, "", claimsAt(now, nil))), 201, "", ""},
		{"aud array, second matches", rs(jwt.MapClaims{"aud": []string{"https://graph.microsoft.com", "api://ucwa"}}), 201, "", ""},
		{"second issuer", rs(jwt.MapClaims{"iss": "https://sts.windows.net/tenant/"}), 201, "", ""},
		{"expired within leeway", rs(jwt.MapClaims{"exp": now.Add(-20 * time.Second).Unix()}), 201, "", ""},
		{"lower-case scheme", []string{"bearer " + mint(t, jwt.SigningMethodRS256, k.rsa, "", claimsAt(now, nil))}, 201, "", ""},

		{"missing", nil, 401, missingToken, "no bearer token"},
		{"basic scheme", []string{"Basic dXNlcjpwYXNz"}, 401, missingToken, "no bearer token"},
		{"empty bearer", []string{"Bearer "}, 401, invalidToken, "malformed"},
		{"malformed", bearer("not.a.jwt"), 401, invalidToken, "malformed"},
		{"two segments", bearer("eyJhbGciOiJSUzI1NiJ9.e30"), 401, invalidToken, "malformed"},
		{"alg none", bearer(unsignedToken(t, claimsAt(now, nil))), 401, invalidToken, "algorithm"},
		{"alg not supported", bearer(mint(t, jwt.SigningMethodRS512, k.rsa, "", claimsAt(now, nil))), 401, invalidToken, "algorithm"},
		{"HS256 with the RSA public key PEM as secret", bearer(mint(t, jwt.SigningMethodHS256, rsaPEM, "", claimsAt(now, nil))), 401, invalidToken, "signature is invalid"},
		{"RS256 by another key", bearer(mint(t, jwt.SigningMethodRS256, k.rsa2, "", claimsAt(now, nil))), 401, invalidToken, "signature is invalid"},
		{"ES256 with a P-384 key", bearer(mint(t, &jwt.SigningMethodECDSA{Name: "ES256", Hash: crypto.SHA256, KeySize: 48, CurveBits: 384}, k.ec384, "", claimsAt(now, nil))), 401, invalidToken, "signature is invalid"},
		{"tampered claims", bearer(tamper(t, mint(t, jwt.SigningMethodRS256, k.rsa, "", claimsAt(now, nil)))), 401, invalidToken, "signature is invalid"},
		{"exp missing", rs(jwt.MapClaims{"exp": nil}), 401, invalidToken, "no expiry"},
		{"exp not a number", rs(jwt.MapClaims{"exp": "tomorrow"}), 401, invalidToken, "malformed"},
		{"expired", rs(jwt.MapClaims{"exp": now.Add(-31 * time.Second).Unix()}), 401, invalidToken, "expired"},
		{"nbf in the future", rs(jwt.MapClaims{"nbf": now.Add(time.Minute).Unix()}), 401, invalidToken, "not valid yet"},
		{"iat in the future", rs(jwt.MapClaims{"iat": now.Add(time.Minute).Unix()}), 401, invalidToken, "issued in the future"},
		{"wrong issuer", rs(jwt.MapClaims{"iss": "https://evil.example/"}), 401, invalidToken, "issuer"},
		{"issuer missing", rs(jwt.MapClaims{"iss": nil}), 401, invalidToken, "issuer"},
		{"wrong audience", rs(jwt.MapClaims{"aud": "api://other"}), 401, invalidToken, "audience"},
		{"aud array, none matches", rs(jwt.MapClaims{"aud": []string{"a", "b"}}), 401, invalidToken, "audience"},
		{"web ticket rejected by default", bearer("cwt=AAEAHAUHGkHigqyFLZ-Wd6o1tPkOgK5XHlEkBKdA4N3rE0y"), 401, invalidToken, "Web tickets"},
		{"oversized header", bearer(strings.Repeat(".", 9000)), 401, invalidToken, "longer than 8192 bytes"},
		{"two Authorization headers", append(rs(nil), rs(nil)...), 401, invalidToken, "more than one"},

		{"no scope claim", rs(jwt.MapClaims{"scp": nil}), 403, scopeDenied, "Conversations.Initiate, Conversations.Receive"},
		{"other scopes only", rs(jwt.MapClaims{"scp": "User.Read Calendars.Read"}), 403, scopeDenied, "none of the scopes"},
		{"scope match is case-sensitive", rs(jwt.MapClaims{"scp": "conversations.initiate"}), 403, scopeDenied, "none of the scopes"},
		{"roles as a string", rs(jwt.MapClaims{"scp": nil, "roles": "Conversations.Initiate Conversations.Receive x"}), 201, "", ""},
	}
	// A roles string is read like scp: accepted above; an array entry with
	// a space is one role and does not match.
	cases = append(cases, authCase{"roles entry with a space", rs(jwt.MapClaims{"scp": nil, "roles": []string{"Conversations.Initiate x"}}), 403, scopeDenied, "none of the scopes"})
	for _, tc := range cases {
		for _, a := range tc.authorization {
			if _, token, _ := strings.Cut(a, " "); len(token) > 20 {
				tokens = append(tokens, token)
			}
		}
	}
	runAuthCases(t, up, cases)

	t.Run("placeholders", func(t *testing.T) {
		token := mint(t, jwt.SigningMethodRS256, k.rsa, "", claimsAt(now, jwt.MapClaims{
			"oid": "oid-1", "tid": "tenant-1", "azp": "client-9", "scp": "Conversations.Receive Contacts.Read",
		}))
		resp, body := sendWithAuth(t, &http.Client{}, "", "Bearer "+token)
		if resp.StatusCode != 201 {
			t.Fatal(resp.StatusCode, body)
		}
		h := up.received()[len(up.received())-1].Header
		want := map[string]string{"X-User": "user-sub", "X-Ucwa-Sub": "user-sub", "X-Ucwa-Oid": "oid-1",
			"X-Ucwa-Tid": "tenant-1", "X-Ucwa-Client": "client-9", "X-Ucwa-Scopes": "Conversations.Receive Contacts.Read"}
		for name, v := range want {
			if h.Get(name) != v {
				t.Errorf("%s = %q, want %q", name, h.Get(name), v)
			}
		}
		// user id falls back to oid, client_id prefers appid
		token = mint(t, jwt.SigningMethodRS256, k.rsa, "", claimsAt(now, jwt.MapClaims{"sub": nil, "oid": "oid-2", "appid": "app-1", "azp": "client-9"}))
		sendWithAuth(t, &http.Client{}, "", "Bearer "+token)
		h = up.received()[len(up.received())-1].Header
		if h.Get("X-User") != "oid-2" || h.Get("X-Ucwa-Client") != "app-1" {
			t.Errorf("X-User %q, X-Ucwa-Client %q", h.Get("X-User"), h.Get("X-Ucwa-Client"))
		}
		tokens = append(tokens, token)
	})

	t.Run("XML error body", func(t *testing.T) {
		resp, body := sendWithAuth(t, &http.Client{}, "application/vnd.microsoft.com.ucwa+xml", "Bearer x.y.z")
		if resp.StatusCode != 401 || !strings.Contains(body, "<code>Unauthorized</code>") || !strings.Contains(body, "malformed") {
			t.Fatal(resp.StatusCode, body)
		}
	})

	t.Run("no token in any log line", func(t *testing.T) {
		logs, err := os.ReadFile(logFile)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(logs), "bearer token rejected") || !strings.Contains(string(logs), `"user_id":"user-sub"`) {
			t.Fatalf("the log lacks the debug rejections or the access log's user_id; is it captured? %d bytes", len(logs))
		}
		for _, token := range tokens {
			// the signature alone is enough to give the token away
			if sig := token[strings.LastIndex(token, ".")+1:]; len(sig) > 20 && strings.Contains(string(logs), sig) {
				t.Errorf("a log line holds a token")
			}
		}
	})
}

// tamper changes the payload of a signed token, keeping its signature.
func tamper(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	claims, err := jwt.NewParser().DecodeSegment(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(claims, &m); err != nil {
		t.Fatal(err)
	}
	m["scp"] = "Conversations.Initiate Conversations.Receive Admin"
	b, _ := json.Marshal(m)
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

// TestAuthAlgorithmConfusion: with only RS256 allowed, a token in any
// other algorithm is refused, even when signed with bytes the edge has
// (the RSA public key's PEM as an HMAC secret). Loaded from JSON.
func TestAuthAlgorithmConfusion(t *testing.T) {
	k := getKeys(t)
	now := setClock(t).Now()
	dir := t.TempDir()
	rsaPEM := publicPEM(t, k.rsa)
	up := newUpstream(t)
	startCaddy(t, fmt.Sprintf(`{
	"admin": {"listen": "localhost:ADMIN_PORT"},
	"apps": {"http": {"http_port": EDGE_PORT, "servers": {"edge": {
		"listen": [":EDGE_PORT"],
		"routes": [{"handle": [
			{"handler": "ucwa", "default_region": "US",
			 "jwt": {"algorithms": ["RS256"], "public_key_files": [%q], "audiences": ["api://ucwa"], "leeway": "5s"},
			 "challenge": {"realm": "edge", "authorization_uri": "https://login.windows.net/common/oauth2/authorize", "client_id": "00000004-0000-0ff1-ce00-000000000000"}},
			{"handler": "reverse_proxy", "upstreams": [{"dial": %q}]}
		]}]
	}}}}
}`, writeFile(t, dir, "rsa.pem", rsaPEM), up.hostport()), "json")
	bearer := func(s string) []string { return []string{"Bearer " + s} }
	runAuthCases(t, up, []authCase{
		{"RS256", bearer(mint(t, jwt.SigningMethodRS256, k.rsa, "", claimsAt(now, nil))), 201, "", ""},
		{"HS256 with the RSA public key PEM as secret", bearer(mint(t, jwt.SigningMethodHS256, rsaPEM, "", claimsAt(now, nil))), 401, invalidToken, "algorithm"},
		{"HS256 with the PEM without its newline", bearer(mint(t, jwt.SigningMethodHS256, []byte(strings.TrimSpace(string(rsaPEM))), "", claimsAt(now, nil))), 401, invalidToken, "algorithm"},
		{"ES256", bearer(mint(t, jwt.SigningMethodES256, k.ec, "", claimsAt(now, nil))), 401, invalidToken, "algorithm"},
		{"PS256 by the same RSA key", bearer(mint(t, jwt.SigningMethodPS256, k.rsa, "", claimsAt(now, nil))), 401, invalidToken, "algorithm"},
		{"alg none", bearer(unsignedToken(t, claimsAt(now, nil))), 401, invalidToken, "algorithm"},
		{"expired beyond leeway", bearer(mint(t, jwt.SigningMethodRS256, k.rsa, "", claimsAt(now, jwt.MapClaims{"exp": now.Add(-6 * time.Second).Unix()}))), 401, invalidToken, "expired"},
		{"web ticket", bearer("cwt=AAEAHAUHGkHigqyFLZ"), 401, invalidToken, "Web tickets"},
	})
}

// TestAuthWebTicketsForward: `web_tickets forward` passes a web ticket to
// the pool unchecked and unchanged; JWTs are still checked.
func TestAuthWebTicketsForward(t *testing.T) {
	k := getKeys(t)
	now := setClock(t).Now()
	dir := t.TempDir()
	up := newUpstream(t)
	startCaddy(t, authSite(fmt.Sprintf(`jwt {
			algorithms ES256
			public_key_file %s
		}
		scopes Conversations.Initiate
		web_tickets forward`, writeFile(t, dir, "ec.pem", publicPEM(t, k.ec))), up.hostport(), filepath.Join(dir, "caddy.log")), "caddyfile")
	bearer := func(s string) []string { return []string{"Bearer " + s} }
	runAuthCases(t, up, []authCase{
		{"web ticket forwarded", bearer("cwt=AAEAHAUHGkHigqyFLZ-Wd6o1tPkOgK5XHlEkBKdA4N3rE0y"), 201, "", ""},
		{"ES256 with the configured scope", bearer(mint(t, jwt.SigningMethodES256, k.ec, "", claimsAt(now, nil))), 201, "", ""},
		{"only the scope no longer configured", bearer(mint(t, jwt.SigningMethodES256, k.ec, "", claimsAt(now, jwt.MapClaims{"scp": "Conversations.Receive"}))), 403,
			`Bearer error="insufficient_scope", scope="Conversations.Initiate"`, "Conversations.Initiate"},
		{"bad JWT still refused", bearer("eyJ.eyJ.sig"), 401, `Bearer realm="ucwa", error="invalid_token"`, "malformed"},
		{"oversized web ticket", bearer("cwt=" + strings.Repeat("A", 9000)), 401, `Bearer realm="ucwa", error="invalid_token"`, "longer than"},
	})
}

// validateConfig adapts (when not JSON) and validates a config the way
// `caddy validate` does, provisioning every module without serving.
func validateConfig(t *testing.T, config, adapter string) error {
	t.Helper()
	cfgJSON := []byte(config)
	if adapter != "json" {
		var err error
		cfgJSON, _, err = caddyconfig.GetAdapter(adapter).Adapt(cfgJSON, nil)
		if err != nil {
			return err
		}
	}
	var cfg caddy.Config
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		t.Fatal(err)
	}
	return caddy.Validate(&cfg)
}

// TestAuthStartupErrors: configs that cannot work are refused at startup
// with a message that names the problem.
func TestAuthStartupErrors(t *testing.T) {
	k := getKeys(t)
	dir := t.TempDir()
	rsaFile := writeFile(t, dir, "rsa.pem", publicPEM(t, k.rsa))
	ecFile := writeFile(t, dir, "ec.pem", publicPEM(t, k.ec))
	privDER, err := x509.MarshalPKCS8PrivateKey(k.rsa)
	if err != nil {
		t.Fatal(err)
	}
	privFile := writeFile(t, dir, "private.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}))
	badJWKS := writeFile(t, dir, "bad.jwks", []byte(`{"keys": "nope"}`))
	encOnlyJWKS := writeFile(t, dir, "enc.jwks", []byte(`{"keys": [{"kty":"oct","k":"c2VjcmV0"}]}`))
	t.Setenv("UCWA_TEST_SHORT_SECRET", "short")
	site := func(ucwa string) string {
		return fmt.Sprintf(":8080 {\n\tucwa {\n\t\t%s\n\t}\n}", ucwa)
	}
	for _, tc := range []struct {
		name, config, adapter, want string
	}{
		{"no jwt", site("default_region US"), "caddyfile", "jwt is not configured; say `jwt off`"},
		{"no algorithms", site("jwt {\n public_key_file " + rsaFile + "\n}"), "caddyfile", "algorithms is required"},
		{"alg none", site("jwt {\n algorithms RS256 none\n public_key_file " + rsaFile + "\n}"), "caddyfile", "algorithm none is refused"},
		{"alg unknown", site("jwt {\n algorithms RS257\n public_key_file " + rsaFile + "\n}"), "caddyfile", `unsupported algorithm "RS257"`},
		{"no key at all", site("jwt {\n algorithms RS256\n}"), "caddyfile", "no key can verify RS256"},
		{"no key for ES256", site("jwt {\n algorithms RS256 ES256\n public_key_file " + rsaFile + "\n}"), "caddyfile", "no key can verify ES256: configure jwks_url, jwks_file or a public_key_file with an EC key"},
		{"P-256 key for ES384", site("jwt {\n algorithms ES384\n public_key_file " + ecFile + "\n}"), "caddyfile", "no key can verify ES384"},
		{"JWKS does not cover HS256", site("jwt {\n algorithms HS256\n jwks_url https://idp.example/keys\n}"), "caddyfile", "no key can verify HS256: configure hmac_secret"},
		{"missing key file", site("jwt {\n algorithms RS256\n public_key_file " + dir + "/nope.pem\n}"), "caddyfile", "nope.pem: no such file"},
		{"private key file", site("jwt {\n algorithms RS256\n public_key_file " + privFile + "\n}"), "caddyfile", "a private key does not belong on the edge"},
		{"not PEM", site("jwt {\n algorithms RS256\n public_key_file " + badJWKS + "\n}"), "caddyfile", "no PEM public key found"},
		{"short HMAC secret", site("jwt {\n algorithms HS256\n hmac_secret {env.UCWA_TEST_SHORT_SECRET}\n}"), "caddyfile", "hmac_secret is 5 bytes, but HS256 needs at least 32"},
		{"unset secret variable", site("jwt {\n algorithms HS256\n hmac_secret {env.UCWA_TEST_UNSET_VARIABLE}\n}"), "caddyfile", "hmac_secret is 0 bytes"},
		{"secret without HS alg", site("jwt {\n algorithms RS256\n public_key_file " + rsaFile + "\n hmac_secret 0123456789abcdef0123456789abcdef\n}"), "caddyfile", "hmac_secret is set but algorithms lists no HS256"},
		{"missing JWKS file", site("jwt {\n algorithms RS256\n jwks_file " + dir + "/nope.json\n}"), "caddyfile", "jwks_file: stat"},
		{"bad JWKS file", site("jwt {\n algorithms RS256\n jwks_file " + badJWKS + "\n}"), "caddyfile", "not a JWK Set"},
		{"JWKS file without signature keys", site("jwt {\n algorithms RS256\n jwks_file " + encOnlyJWKS + "\n}"), "caddyfile", "no usable signature key"},
		{"unknown jwt option", site("jwt {\n algorithms RS256\n secret x\n}"), "caddyfile", `jwt: unrecognized option "secret"`},
		{"jwt off with a block", site("jwt off {\n algorithms RS256\n}"), "caddyfile", "`jwt off` takes no block"},
		{"bad web_tickets", site("jwt off\n web_tickets maybe"), "caddyfile", `web_tickets: "maybe" is neither reject nor forward`},
		{"bad leeway", site("jwt {\n algorithms RS256\n leeway soon\n}"), "caddyfile", `leeway: "soon" is not a duration`},
		{"bad cache_size", site("jwt {\n algorithms RS256\n cache_size many\n}"), "caddyfile", `cache_size: "many" is not a number`},
		{"bad refresh", site("jwt {\n algorithms RS256\n jwks_url https://idp.example/keys often\n}"), "caddyfile", `jwks_url: refresh "often"`},
		{"reserved challenge parameter", site("jwt {\n algorithms RS256\n public_key_file " + rsaFile + "\n}\n challenge error x"), "caddyfile", `challenge: "error" is set by the edge itself`},
		{"off combined (JSON)", `{"apps":{"http":{"servers":{"s":{"listen":[":8080"],"routes":[{"handle":[{"handler":"ucwa","jwt":{"off":true,"algorithms":["RS256"]}}]}]}}}}}`, "json", "`off` cannot be combined"},
		{"bad web_tickets (JSON)", `{"apps":{"http":{"servers":{"s":{"listen":[":8080"],"routes":[{"handle":[{"handler":"ucwa","web_tickets":"allow","jwt":{"algorithms":["RS256"],"public_key_files":[` + fmt.Sprintf("%q", rsaFile) + `]}}]}]}}}}}`, "json", `web_tickets: "allow"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validateConfig(t, tc.config, tc.adapter)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	t.Run("good config validates", func(t *testing.T) {
		if err := validateConfig(t, site("jwt {\n algorithms RS256 ES256\n public_key_file "+rsaFile+" "+ecFile+"\n}"), "caddyfile"); err != nil {
			t.Fatal(err)
		}
	})
}
