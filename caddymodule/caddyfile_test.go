package caddymodule

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/ucwa-edge/caddy-ucwa/internal/bearer"
	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// TestCaddyfileAdapt: the golden files in testdata/caddyfile_adapt, each
// a Caddyfile and the JSON Caddy's adapter makes of it.
func TestCaddyfileAdapt(t *testing.T) {
	testkit.AdaptGolden(t, "testdata/caddyfile_adapt")
}

// TestUnmarshalCaddyfileErrors: syntax errors, found while the Caddyfile
// is read, each naming the subdirective.
func TestUnmarshalCaddyfileErrors(t *testing.T) {
	for _, tc := range []struct{ name, block, want string }{
		{"argument", "ucwa x {\n}", "ucwa: wrong argument count: expected no argument but a matcher"},
		{"unknown subdirective", "colour blue", `unrecognized subdirective "colour"`},
		{"paths without suffixes", "paths", "paths: wrong argument count: expected one or more arguments"},
		{"max_body_size not a size", "max_body_size lots", `max_body_size: "lots" is not a size`},
		{"max_body_size 0", "max_body_size 0", "max_body_size must be between 1 byte and 1GiB"},
		{"default_region arguments", "default_region US DE", "default_region: wrong argument count: expected one argument"},
		// Caddy's ArgErr named only the last token ("after 'KiB'").
		{"max_body_size with a space", "max_body_size 64 KiB", "max_body_size: wrong argument count: expected one argument"},
		{"jwks_url arguments", "jwt {\n jwks_url https://idp.example/keys 1h 2h\n}", "jwks_url: wrong argument count: expected <url> [<refresh>]"},
		{"phone_audio", "phone_audio maybe", `phone_audio: "maybe" is neither enabled nor disabled`},
		{"jwt offline", "jwt Offline", "expected `jwt off` or a `jwt { ... }` block"},
		{"jwt off with more", "jwt off now", "expected `jwt off` or a `jwt { ... }` block"},
		{"jwt off with a block", "jwt off {\n algorithms RS256\n}", "`jwt off` takes no block"},
		{"unknown jwt option", "jwt {\n secret x\n}", `jwt: unrecognized option "secret"`},
		// The JSON fields' names, as the godoc gives them, which the
		// Caddyfile writes otherwise: the message says how.
		{"jwt issuers, the JSON field", "jwt {\n issuers https://a/\n}", "jwt: unrecognized option \"issuers\" (a JSON field's name: the Caddyfile writes `issuer <iss...>`)"},
		{"jwt audiences, the JSON field", "jwt {\n audiences api://a\n}", "jwt: unrecognized option \"audiences\" (a JSON field's name: the Caddyfile writes `audience <aud...>`)"},
		{"jwt public_key_files, the JSON field", "jwt {\n public_key_files a.pem\n}", "jwt: unrecognized option \"public_key_files\" (a JSON field's name: the Caddyfile writes `public_key_file <path...>`)"},
		{"jwt jwks_refresh, the JSON field", "jwt {\n jwks_url https://idp.example/keys\n jwks_refresh 5m\n}", "jwt: unrecognized option \"jwks_refresh\" (a JSON field's name: the Caddyfile writes `jwks_url <url> <refresh>`)"},
		{"jwt off in the block", "jwt {\n off\n}", "jwt: unrecognized option \"off\" (a JSON field's name: the Caddyfile writes `jwt off`)"},
		{"disable_phone_audio, the JSON field", "disable_phone_audio", "unrecognized subdirective \"disable_phone_audio\" (a JSON field's name: the Caddyfile writes `phone_audio disabled`)"},
		{"operations, the JSON field", "operations {\n}", "unrecognized subdirective \"operations\" (a JSON field's name: the Caddyfile writes `operation <rel> { ... }`)"},
		{"limits, the JSON field", "limits calls 20 per 1h", "unrecognized subdirective \"limits\" (a JSON field's name: the Caddyfile writes `limit <name> <count> per <duration>`)"},
		// A subdirective or option written in another block than its
		// own: the message says which.
		{"allow_regions beside destinations", "allow_regions US CA", "unrecognized subdirective \"allow_regions\" (it belongs in the destinations block)"},
		{"default_region in destinations", "destinations {\n default_region US\n}", "destinations: unrecognized option \"default_region\" (it belongs in the ucwa block itself)"},
		{"scopes in jwt", "jwt {\n scopes Conversations.Initiate\n}", "jwt: unrecognized option \"scopes\" (it belongs in the ucwa block itself)"},
		{"issuer beside jwt", "issuer https://a/", "unrecognized subdirective \"issuer\" (it belongs in the jwt block)"},
		{"on_error beside store", "on_error open", "unrecognized subdirective \"on_error\" (it belongs in the block of a store)"},
		{"backup in primary's block", "primary a:1 {\n backup b:1\n}", "primary: backup is a subdirective of ucwa, not of a pool: close primary's block before it"},
		{"limit in backup's block", "primary a:1\nbackup b:1 {\n lb_policy first\n limit calls 20 per 1h\n}", "backup: limit is a subdirective of ucwa, not of a pool: close backup's block before it"},
		{"leeway not a duration", "jwt {\n leeway soon\n}", `leeway: "soon" is not a duration`},
		{"cache_size not a number", "jwt {\n cache_size many\n}", `cache_size: "many" is not a number`},
		{"cache_size 0", "jwt {\n cache_size 0\n}", `cache_size: "0" is not a number of tokens other than 0`},
		{"jwks_url refresh", "jwt {\n jwks_url https://idp.example/keys often\n}", `jwks_url: refresh "often"`},
		{"jwks_url refresh 0", "jwt {\n jwks_url https://idp.example/keys 0s\n}", `jwks_url: refresh "0s" is not a duration other than 0`},
		{"challenge arguments", "challenge realm", "expected `challenge <name> <value>`"},
		{"operation without a rel", "operation {\n scopes a\n}", "operation: expected `operation <rel> {"},
		{"operation with two rels", "operation a b {\n scopes a\n}", "operation: expected `operation <rel> {"},
		{"operation option unknown", "operation startPhoneAudio {\n path /x\n}", `operation startPhoneAudio: unrecognized option "path"`},
		{"operation paths without suffixes", "operation startPhoneAudio {\n paths\n}", "wrong argument count"},
		{"operation scopes twice", "operation startPhoneAudio {\n scopes a\n scopes b\n}", "operation startPhoneAudio: scopes: given twice"},
		{"same operation twice", "operation batch {\n scopes a\n}\noperation batch {\n scopes b\n}", `operation: "batch" given twice`},
		{"max_batch_parts not a number", "max_batch_parts many", `max_batch_parts: "many" is not a whole number`},
		{"max_batch_parts 0", "max_batch_parts 0", "max_batch_parts must be at least 1"},
		{"deny_callers with an argument", "deny_callers oid {\n}", "deny_callers: wrong argument count: expected no argument, then a block of claims"},
		{"deny_callers unknown claim", "deny_callers {\n upn a@contoso.com\n}", `deny_callers: unrecognized claim "upn" (sub, oid, tid, client_id or iss)`},
		{"deny_callers claim without values", "deny_callers {\n oid\n}", "wrong argument count"},
		{"expect_continue_after_idle not a duration", "expect_continue_after_idle soon", `expect_continue_after_idle: "soon" is not a duration`},
		{"expect_continue_after_idle twice", "expect_continue_after_idle 1s\n expect_continue_after_idle 2s", "expect_continue_after_idle: given twice"},
		{"max_batch_parts twice", "max_batch_parts 1\n max_batch_parts 2", "max_batch_parts: given twice"},
		{"max_batch_operations not a number", "max_batch_operations many", `max_batch_operations: "many" is not a whole number`},
		{"max_batch_operations 0", "max_batch_operations 0", "max_batch_operations must be at least 1"},
		{"max_batch_operations twice", "max_batch_operations 1\n max_batch_operations 2", "max_batch_operations: given twice"},
		{"handle_response in a pool", "primary a:1 {\n handle_response {\n respond 200\n }\n}", "primary: handle_response is not supported"},
		// reverse_proxy makes a handle_response of it: the message names
		// what the Caddyfile says.
		{"replace_status in a pool", "primary a:1 {\n @e status 500\n replace_status @e 503\n}", "primary: replace_status is not supported in a pool"},
		{"replace_status in a backup", "primary a:1\nbackup b:1 {\n replace_status 200\n}", "backup: replace_status is not supported in a pool"},
		// A quoted brace is a header's value, not the block's edge.
		{"replace_status after a quoted brace", "primary a:1 {\n header_up X-Open \"{\"\n replace_status 503\n}", "primary: replace_status is not supported in a pool"},
		{"response matcher in a pool", "primary a:1 {\n @e status 500\n}", "primary: response matcher @e: a pool takes neither handle_response nor replace_status"},
		// reverse_proxy's parser would take a matcher for an upstream.
		{"path matcher before a backup's upstreams", "primary a:1\nbackup /ucwa* b:1", `backup: "/ucwa*" is a matcher, not an upstream`},
		{"named matcher before a pool's upstreams", "primary @ucwa a:1", `primary: "@ucwa" is a matcher, not an upstream`},
		{"wildcard matcher before a pool's upstreams", "primary * a:1", `primary: "*" is a matcher, not an upstream`},
		{"unknown reverse_proxy subdirective", "primary a:1 {\n no_such_thing\n}", "no_such_thing"},

		// One rule for every subdirective given twice.
		{"paths twice", "paths /a\n paths /b", "paths: given twice"},
		{"scopes twice", "scopes a\n scopes b", "scopes: given twice"},
		{"jwt twice", "jwt off\n jwt off", "jwt: given twice"},
		{"primary twice", "primary a:1\n primary b:1", "primary: given twice"},
		{"backup twice", "backup a:1\n backup b:1", "backup: given twice"},
		{"web_tickets twice", "web_tickets reject\n web_tickets forward", "web_tickets: given twice"},
		{"same challenge twice", "challenge realm a\n challenge realm b", `challenge: "realm" given twice`},
		{"jwks_url twice", "jwt {\n jwks_url https://a/k\n jwks_url https://b/k\n}", "jwt: jwks_url: given twice"},
		{"hmac_secret twice", "jwt {\n hmac_secret a\n hmac_secret b\n}", "jwt: hmac_secret: given twice"},
		{"algorithms twice", "jwt {\n algorithms RS256\n algorithms ES256\n}", "jwt: algorithms: given twice"},
		{"issuer twice", "jwt {\n issuer a\n issuer b\n}", "jwt: issuer: given twice"},
		{"destinations twice", "destinations\n destinations", "destinations: given twice"},
		{"destinations with an argument", "destinations report", "destinations: wrong argument count: expected no argument, then a block of options"},
		{"destinations option unknown", "destinations {\n block +1900\n}", `destinations: unrecognized option "block"`},
		{"destinations option without values", "destinations {\n deny\n}", "wrong argument count"},
		{"destinations mode with two values", "destinations {\n mode report enforce\n}", "mode: wrong argument count: expected one argument"},
		{"deny twice", "destinations {\n deny +1900\n deny +1976\n}", "destinations: deny: given twice"},
		{"emergency twice", "destinations {\n emergency 911\n emergency 112\n}", "destinations: emergency: given twice"},
		{"max_extension_digits not a number", "destinations {\n max_extension_digits six\n}", `destinations: max_extension_digits: "six" is not a whole number`},
		{"outside_line twice", "destinations {\n outside_line 9\n outside_line 0\n}", "destinations: outside_line: given twice"},
		{"premium_short_codes without a value", "destinations {\n premium_short_codes\n}", "wrong argument count"},
		{"premium_short_codes with two values", "destinations {\n premium_short_codes allow refuse\n}", "wrong argument count"},
		{"premium_short_codes twice", "destinations {\n premium_short_codes allow\n premium_short_codes refuse\n}", "destinations: premium_short_codes: given twice"},
		{"emergency_calls without a value", "destinations {\n emergency_calls\n}", "wrong argument count"},
		{"emergency_calls with two values", "destinations {\n emergency_calls any emergency_numbers\n}", "wrong argument count"},
		{"emergency_calls twice", "destinations {\n emergency_calls any\n emergency_calls emergency_numbers\n}", "destinations: emergency_calls: given twice"},
		{"max_extension_digits twice", "destinations {\n max_extension_digits 4\n max_extension_digits 5\n}", "destinations: max_extension_digits: given twice"},

		// JSON reads "" as a setting not given: the option would quietly
		// be its default, or none.
		{"default_region empty", `default_region ""`, `default_region: "" is read as not given, its default: leave default_region out for the default, or give a value`},
		{"number_format empty", `number_format ""`, `number_format: "" is read as not given, its default: leave number_format out`},
		{"web_tickets empty", `web_tickets ""`, `web_tickets: "" is read as not given, its default: leave web_tickets out`},
		{"jwks_file empty", "jwt {\n algorithms RS256\n jwks_file \"\"\n}", `jwks_file: "" is read as not given, its default: leave jwks_file out`},
		{"jwks_url empty", "jwt {\n algorithms RS256\n jwks_url \"\" 1h\n}", `jwks_url: "" is read as not given, its default: leave jwks_url out`},
		{"hmac_secret empty", "jwt {\n algorithms HS256\n hmac_secret \"\"\n}", `hmac_secret: "" is read as not given, its default: leave hmac_secret out`},
		{"leeway empty", "jwt {\n leeway \"\"\n}", `leeway: "" is read as not given, its default: leave leeway out`},
		{"destinations mode empty", "destinations {\n mode \"\"\n}", `mode: "" is read as not given, its default: leave mode out`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "ucwa {\n" + tc.block + "\n}"
			if strings.HasPrefix(tc.block, "ucwa ") {
				src = tc.block
			}
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// TestUnmarshalCaddyfileRepeatable: the repeatable subdirectives
// accumulate.
func TestUnmarshalCaddyfileRepeatable(t *testing.T) {
	var h Handler
	err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`ucwa {
		operation startPhoneAudio {
			paths /communication/callViaWork /x/call
		}
		operation immediateForwardToContact {
			scopes User.ReadWrite Calls.Forward
		}
		challenge realm edge
		challenge client_id abc
		jwt {
			algorithms RS256
			public_key_file a.pem b.pem
			public_key_file c.pem
		}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"realm": "edge", "client_id": "abc"}; !reflect.DeepEqual(h.Challenge, want) {
		t.Errorf("challenge %v, want %v", h.Challenge, want)
	}
	if want := map[string]*OperationConfig{
		"startPhoneAudio":           {Paths: []string{"/communication/callViaWork", "/x/call"}},
		"immediateForwardToContact": {Scopes: []string{"User.ReadWrite", "Calls.Forward"}},
	}; !reflect.DeepEqual(h.Operations, want) {
		t.Errorf("operations %v, want %v", h.Operations, want)
	}
	if want := []string{"a.pem", "b.pem", "c.pem"}; !reflect.DeepEqual(h.JWT.PublicKeyFiles, want) {
		t.Errorf("public_key_file %v, want %v", h.JWT.PublicKeyFiles, want)
	}
}

// handlerJSON is a config whose one route is a ucwa handler with fields.
func handlerJSON(fields string) string {
	return `{"apps":{"http":{"servers":{"s":{"listen":["127.0.0.1:0"],"routes":[{"handle":[{"handler":"ucwa",` + fields + `}]}]}}}}}`
}

// TestStartupErrors: configs that cannot work are refused at startup with
// a message that names the problem, once, whether it came from a
// Caddyfile or from JSON, and without repeating the module's name, which
// Caddy gives.
func TestStartupErrors(t *testing.T) {
	k := testkit.Keys(t)
	dir := t.TempDir()
	rsaFile := testkit.WriteFile(t, dir, "rsa.pem", testkit.PublicPEM(t, k.RSA))
	ecFile := testkit.WriteFile(t, dir, "ec.pem", testkit.PublicPEM(t, k.EC))
	privFile := testkit.WriteFile(t, dir, "private.pem", testkit.PrivatePEM(t, k.RSA))
	badJWKS := testkit.WriteFile(t, dir, "bad.jwks", []byte(`{"keys": "nope"}`))
	encOnlyJWKS := testkit.WriteFile(t, dir, "enc.jwks", []byte(`{"keys": [{"kty":"oct","k":"c2VjcmV0"}]}`))
	// An RSA public key of 16384 bits, an odd modulus the edge judges by
	// its size.
	largeModulus := new(big.Int).Lsh(big.NewInt(1), 16383)
	largeFile := testkit.WriteFile(t, dir, "large.pem", pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY",
		Bytes: x509.MarshalPKCS1PublicKey(&rsa.PublicKey{N: largeModulus.SetBit(largeModulus, 0, 1), E: 65537})}))
	t.Setenv("UCWA_TEST_SHORT_SECRET", "short")
	t.Setenv("UCWA_TEST_UNSET_VARIABLE", "")
	// Barred callers kept one a line in a file, or several in one
	// variable: each placeholder is one value, which no claim equals.
	barredFile := testkit.WriteFile(t, dir, "barred-oids", []byte("0f6e27c1-aaaa-4bbb-8ccc-000000000001\n0f6e27c1-aaaa-4bbb-8ccc-000000000002\n"))
	// A Docker --env-file keeps a value's quotes.
	t.Setenv("UCWA_TEST_QUOTED_OID", `"0f6e27c1-aaaa-4bbb-8ccc-000000000001"`)
	t.Setenv("UCWA_TEST_BARRED_TENANTS", "11111111-2222-4333-8444-555555555555 11111111-2222-4333-8444-555555555556")
	rsaJWT := `jwt {
			algorithms RS256
			public_key_file ` + rsaFile + `
		}`
	rsaJSON := fmt.Sprintf(`"jwt":{"algorithms":["RS256"],"public_key_files":[%q]}`, rsaFile)
	for _, tc := range []struct {
		name      string
		caddyfile string // the ucwa block's lines; "" for a JSON-only case
		json      string // the handler's fields; "" for a Caddyfile-only case
		want      string
	}{
		{"no jwt", "default_region US", `"default_region":"US"`, "jwt is not configured; say `jwt off`"},
		{"deny_callers with jwt off", "jwt off\ndeny_callers {\noid a\n}", `"jwt":{"off":true},"deny_callers":{"oid":["a"]}`, "jwt: `off` cannot be combined with other jwt settings, scopes, web_tickets, challenge or deny_callers"},
		{"deny_callers empty value", rsaJWT + "\ndeny_callers {\ntid \"\"\n}", rsaJSON + `,"deny_callers":{"tid":[""]}`, "deny_callers: tid: an empty value would match every token without tid"},
		{"deny_callers unset variable", rsaJWT + "\ndeny_callers {\noid {env.UCWA_TEST_UNSET_VARIABLE}\n}", rsaJSON + `,"deny_callers":{"oid":["{env.UCWA_TEST_UNSET_VARIABLE}"]}`,
			"deny_callers: oid: evaluated placeholder {env.UCWA_TEST_UNSET_VARIABLE} is empty"},
		{"deny_callers placeholder left open", rsaJWT + "\ndeny_callers {\niss {env.UCWA_TEST_ISSUER\n}", rsaJSON + `,"deny_callers":{"iss":["{env.UCWA_TEST_ISSUER"]}`,
			"deny_callers: iss: a brace is not closed: a placeholder is written {env.NAME}, a literal brace \\{"},
		{"deny_callers unknown placeholder", rsaJWT + "\ndeny_callers {\ntid {tenantid}\n}", rsaJSON + `,"deny_callers":{"tid":["{tenantid}"]}`,
			"deny_callers: tid: unrecognized placeholder {tenantid}"},
		{"deny_callers trailing space", rsaJWT + "\ndeny_callers {\noid \"a \"\n}", rsaJSON + `,"deny_callers":{"oid":["a "]}`, "begins or ends with white space or an invisible character"},
		{"deny_callers leading no-break space", rsaJWT + "\ndeny_callers {\nsub \"\u00a0a\"\n}", rsaJSON + `,"deny_callers":{"sub":["\u00a0a"]}`, "begins or ends with white space or an invisible character"},
		{"deny_callers trailing zero-width space", rsaJWT + "\ndeny_callers {\nclient_id \"a\u200b\"\n}", rsaJSON + `,"deny_callers":{"client_id":["a\u200b"]}`, "begins or ends with white space or an invisible character"},
		{"deny_callers leading tab", "", rsaJSON + `,"deny_callers":{"iss":["\thttps://x/"]}`, "begins or ends with white space or an invisible character"},
		// A Caddyfile quotes with " and ` only: ' is part of the value.
		{"deny_callers value in single quotes", rsaJWT + "\ndeny_callers {\noid '0f6e27c1-aaaa-4bbb-8ccc-000000000001'\n}", rsaJSON + `,"deny_callers":{"oid":["'0f6e27c1-aaaa-4bbb-8ccc-000000000001'"]}`,
			"deny_callers: oid: a value begins or ends with a quotation mark"},
		{"deny_callers variable in quotes", rsaJWT + "\ndeny_callers {\noid {env.UCWA_TEST_QUOTED_OID}\n}", "", "deny_callers: oid: a value begins or ends with a quotation mark"},
		{"deny_callers value in typographic quotes", rsaJWT + "\ndeny_callers {\nsub \u201cbarred-sub\u201d\n}", "", "deny_callers: sub: a value begins or ends with a quotation mark"},
		{"deny_callers value in backquotes", "", rsaJSON + ",\"deny_callers\":{\"client_id\":[\"`denied-app`\"]}", "deny_callers: client_id: a value begins or ends with a quotation mark"},
		{"deny_callers values one a line in a file", rsaJWT + "\ndeny_callers {\noid {file." + barredFile + "}\n}", rsaJSON + `,"deny_callers":{"oid":["{file.` + barredFile + `}"]}`,
			"deny_callers: oid: a value holds white space or an invisible character"},
		{"deny_callers values in one variable", rsaJWT + "\ndeny_callers {\ntid {env.UCWA_TEST_BARRED_TENANTS}\n}", rsaJSON + `,"deny_callers":{"tid":["{env.UCWA_TEST_BARRED_TENANTS}"]}`,
			"deny_callers: tid: a value holds white space or an invisible character"},
		{"deny_callers tab inside a sub", "", rsaJSON + `,"deny_callers":{"sub":["a\tb"]}`, "deny_callers: sub: a value holds white space or an invisible character"},
		{"deny_callers unknown claim in JSON", "", rsaJSON + `,"deny_callers":{"appid":["a"]}`, "unknown field"},
		{"bad default_region", "jwt off\ndefault_region XX", `"jwt":{"off":true},"default_region":"XX"`, `default_region: default region "XX" is not a region`},
		{"bad number_format", "jwt off\nnumber_format national", `"jwt":{"off":true},"number_format":"national"`, `number_format: "national" is neither tel nor e164`},
		{"max_body_size over 1GiB", "jwt off\nmax_body_size 2GiB", `"jwt":{"off":true},"max_body_size":2147483648`, "max_body_size must be between 1 byte and 1GiB: 2147483648"},
		{"negative max_body_size", "", `"jwt":{"off":true},"max_body_size":-1`, "max_body_size must be between 1 byte and 1GiB: -1"},
		{"unclean path suffix", "jwt off\npaths /communication/call/", `"jwt":{"off":true},"paths":["/communication/call/"]`, `paths: path suffix "/communication/call/" has an empty, dot or dot-ended segment`},
		{"relative path suffix", "jwt off\npaths communication/call", `"jwt":{"off":true},"paths":["communication/call"]`, `paths: path suffix "communication/call" must start with /`},
		{"path suffix of another operation", "jwt off\npaths /immediateForwardSettings/immediateForwardToContact", `"jwt":{"off":true},"paths":["/immediateForwardSettings/immediateForwardToContact"]`,
			`operation immediateForwardToContact: path "/immediateForwardSettings/immediateForwardToContact" is also startPhoneAudio's`},
		{"unknown operation", "jwt off\noperation startPhone {\npaths /x\n}", `"jwt":{"off":true},"operations":{"startPhone":{"paths":["/x"]}}`, "operation startPhone: no such operation; the operations are startPhoneAudio, "},
		{"operation with nothing", "jwt off\noperation batch", `"jwt":{"off":true},"operations":{"batch":{}}`, "operation batch: gives neither paths nor scopes"},
		{"operation named twice", "", `"jwt":{"off":true},"operations":{"batch":{"paths":["/b"]},"BATCH":{"paths":["/c"]}}`, "operation batch: the same operation as BATCH"},
		{"operation path suffix with a query", "jwt off\noperation addPhoneAudio {\npaths /x/add?y\n}", `"jwt":{"off":true},"operations":{"addPhoneAudio":{"paths":["/x/add?y"]}}`, `operation addPhoneAudio: paths: path suffix "/x/add?y" must be ASCII without`},
		{"jwt off with an operation's scopes", "jwt off\noperation batch {\nscopes a\n}", `"jwt":{"off":true},"operations":{"batch":{"scopes":["a"]}}`, "`off` cannot be combined with other jwt settings, scopes"},
		{"bad operation scope", rsaJWT + "\noperation batch {\nscopes \"a\\\"b\"\n}", rsaJSON + `,"operations":{"batch":{"scopes":["a\"b"]}}`, `operation batch: scopes: "a\"b" is not a scope token`},
		{"negative max_batch_parts", "", `"jwt":{"off":true},"max_batch_parts":-1`, "max_batch_parts must be at least 1: -1"},
		{"negative max_batch_operations", "jwt off\nmax_batch_operations -1", `"jwt":{"off":true},"max_batch_operations":-1`, "max_batch_operations must be at least 1: -1"},
		{"jwt off with scopes", "jwt off\nscopes Conversations.Initiate", `"jwt":{"off":true},"scopes":["Conversations.Initiate"]`, "`off` cannot be combined with other jwt settings, scopes"},
		{"jwt off with algorithms", "", `"jwt":{"off":true,"algorithms":["RS256"]}`, "`off` cannot be combined"},
		{"bad web_tickets", rsaJWT + "\nweb_tickets maybe", rsaJSON + `,"web_tickets":"maybe"`, `web_tickets: "maybe" is neither reject nor forward`},
		{"bad scope", rsaJWT + "\nscopes \"a b\"", rsaJSON + `,"scopes":["a b"]`, `scopes: "a b" is not a scope token`},
		{"unset challenge variable", rsaJWT + "\nchallenge client_id {env.UCWA_TEST_UNSET_VARIABLE}", rsaJSON + `,"challenge":{"client_id":"{env.UCWA_TEST_UNSET_VARIABLE}"}`,
			`challenge: the value of "client_id": evaluated placeholder {env.UCWA_TEST_UNSET_VARIABLE} is empty`},
		{"unknown challenge placeholder", rsaJWT + "\nchallenge client_id {env_CLIENT}", rsaJSON + `,"challenge":{"client_id":"{env_CLIENT}"}`,
			`challenge: the value of "client_id": unrecognized placeholder {env_CLIENT}`},
		{"reserved challenge parameter", rsaJWT + "\nchallenge error x", rsaJSON + `,"challenge":{"error":"x"}`, `challenge: "error" is set by the edge itself`},
		// Parameter names are case-insensitive (RFC 9110 11.2): one realm
		// would silently win, two client_ids go out side by side.
		{"challenge parameter twice in two cases", rsaJWT + "\nchallenge client_id a\nchallenge Client_ID b", rsaJSON + `,"challenge":{"client_id":"a","Client_ID":"b"}`,
			`challenge: "Client_ID" and "client_id" are the same parameter (names are case-insensitive)`},
		{"realm twice in two cases", rsaJWT + "\nchallenge Realm a\nchallenge realm b", "", `challenge: "Realm" and "realm" are the same parameter`},
		// An empty quoted-string is no realm a client can tell from
		// another's, and an empty parameter one it reads as given: both
		// loaded, and the challenge said realm="" or client_id="".
		{"empty realm", rsaJWT + "\nchallenge realm \"\"", rsaJSON + `,"challenge":{"realm":""}`,
			"challenge: the value of \"realm\" is empty: leave `challenge realm` out for the default realm \"ucwa\", or give one"},
		{"blank realm", rsaJWT + "\nchallenge Realm \"  \"", rsaJSON + `,"challenge":{"Realm":"  "}`, `challenge: the value of "Realm" is empty: leave`},
		{"empty challenge parameter", rsaJWT + "\nchallenge authorization_uri \"\"", rsaJSON + `,"challenge":{"authorization_uri":""}`,
			`challenge: the value of "authorization_uri" is empty, which a client would read as given: leave the parameter out, or give its value`},
		{"challenge value with a space after it", rsaJWT + "\nchallenge client_id \"0f6e27c1-aaaa-4bbb-8ccc-000000000001 \"", rsaJSON + `,"challenge":{"client_id":" 0f6e27c1-aaaa-4bbb-8ccc-000000000001"}`,
			`challenge: the value of "client_id" begins or ends with a space, which a client would read as part of it`},
		{"backup without primary", "jwt off\nbackup a:1", `"jwt":{"off":true},"backup":{"upstreams":[{"dial":"a:1"}]}`, "backup: a backup pool needs a primary pool"},
		{"primary without upstreams", "jwt off\nprimary", `"jwt":{"off":true},"primary":{}`, "primary: no upstreams: name at least one host:port, or dynamic_upstreams"},
		// A null upstream is an error naming it, not a panic at load.
		{"null upstream", "", `"jwt":{"off":true},"primary":{"upstreams":[{"dial":"a:1"},null]}`, "primary: upstreams[1]: missing"},
		{"null backup upstream", "", `"jwt":{"off":true},"primary":{"upstreams":[{"dial":"a:1"}]},"backup":{"upstreams":[null]}`, "backup: upstreams[0]: missing"},
		// An upstream without a dial address would dial port 0 of this
		// machine at every request, and every request would fail over.
		{"upstream without dial", "", `"jwt":{"off":true},"primary":{"upstreams":[{"dial":"a:1"},{}]}`, "primary: upstreams[1]: no dial address: name a host:port"},
		{"backup upstream without dial", "", `"jwt":{"off":true},"primary":{"upstreams":[{"dial":"a:1"}]},"backup":{"upstreams":[{"dial":""}]}`, "backup: upstreams[0]: no dial address: name a host:port"},
		{"backup without upstreams", "jwt off\nprimary a:1\nbackup {\nlb_policy first\n}", `"jwt":{"off":true},"primary":{"upstreams":[{"dial":"a:1"}]},"backup":{"load_balancing":{"selection_policy":{"policy":"first"}}}`, "backup: no upstreams"},
		{"retry_match", "jwt off\nprimary a:1 {\nlb_retry_match {\nmethod POST\n}\n}", `"jwt":{"off":true},"primary":{"upstreams":[{"dial":"a:1"}],"load_balancing":{"retry_match":[{"method":["POST"]}]}}`, "primary: lb_retry_match (load_balancing.retry_match) could send a request"},
		// reverse_proxy takes them without a word: it reads a negative
		// lb_retries or lb_try_duration as no bound (a request to a pool
		// that cannot take it tried again, without a pause, until its
		// client goes away), its health checker panics at a negative
		// interval, and a negative max_fails or a port past 65535 holds
		// every upstream back for good (every request answered 410).
		{"negative lb_retries", "jwt off\nprimary a:1 {\nlb_retries -1\n}", `"jwt":{"off":true},"primary":{"upstreams":[{"dial":"a:1"}],"load_balancing":{"retries":-1}}`, "primary: lb_retries (load_balancing.retries) must not be negative: -1"},
		{"negative lb_try_duration", "jwt off\nprimary a:1\nbackup b:1 {\nlb_try_duration -1s\n}", `"jwt":{"off":true},"primary":{"upstreams":[{"dial":"a:1"}]},"backup":{"upstreams":[{"dial":"b:1"}],"load_balancing":{"try_duration":-1}}`,
			"backup: lb_try_duration (load_balancing.try_duration) must be 0 (unset) or at least 1ms (a JSON number is nanoseconds): -1"},
		{"negative lb_try_interval", "jwt off\nprimary a:1 {\nlb_try_duration 5s\nlb_try_interval -250ms\n}", `"jwt":{"off":true},"primary":{"upstreams":[{"dial":"a:1"}],"load_balancing":{"try_duration":"5s","try_interval":"-250ms"}}`,
			"primary: lb_try_interval (load_balancing.try_interval) must be 0 (unset) or at least 1ms (a JSON number is nanoseconds): -250ms"},
		{"negative health_interval", "jwt off\nprimary a:1 {\nhealth_uri /health\nhealth_interval -1s\n}", `"jwt":{"off":true},"primary":{"upstreams":[{"dial":"a:1"}],"health_checks":{"active":{"uri":"/health","interval":-1}}}`,
			"primary: health_interval (health_checks.active.interval) must be 0 (unset) or at least 1ms (a JSON number is nanoseconds): -1"},
		{"negative health_timeout", "jwt off\nprimary a:1 {\nhealth_uri /health\nhealth_timeout -5s\n}", `"jwt":{"off":true},"primary":{"upstreams":[{"dial":"a:1"}],"health_checks":{"active":{"uri":"/health","timeout":"-5s"}}}`,
			"primary: health_timeout (health_checks.active.timeout) must be 0 (unset) or at least 1ms (a JSON number is nanoseconds): -5s"},
		{"health_port past 65535", "jwt off\nprimary a:1 {\nhealth_uri /health\nhealth_port 70000\n}", `"jwt":{"off":true},"primary":{"upstreams":[{"dial":"a:1"}],"health_checks":{"active":{"uri":"/health","port":70000}}}`,
			"primary: health_port (health_checks.active.port) must be between 1 and 65535: 70000"},
		{"negative health_port", "", `"jwt":{"off":true},"primary":{"upstreams":[{"dial":"a:1"}],"health_checks":{"active":{"uri":"/health","port":-1}}}`,
			"primary: health_port (health_checks.active.port) must be between 1 and 65535: -1"},
		{"negative max_fails", "jwt off\nprimary a:1 {\nfail_duration 10s\nmax_fails -1\n}", `"jwt":{"off":true},"primary":{"upstreams":[{"dial":"a:1"}],"health_checks":{"passive":{"fail_duration":"10s","max_fails":-1}}}`,
			"primary: max_fails (health_checks.passive.max_fails) must not be negative: -1"},
		{"negative fail_duration", "jwt off\nprimary a:1\nbackup b:1 {\nfail_duration -10s\n}", `"jwt":{"off":true},"primary":{"upstreams":[{"dial":"a:1"}]},"backup":{"upstreams":[{"dial":"b:1"}],"health_checks":{"passive":{"fail_duration":"-10s"}}}`,
			"backup: fail_duration (health_checks.passive.fail_duration) must be 0 (unset) or at least 1ms (a JSON number is nanoseconds): -10s"},
		{"negative unhealthy_request_count", "jwt off\nprimary a:1 {\nunhealthy_request_count -1\n}", `"jwt":{"off":true},"primary":{"upstreams":[{"dial":"a:1"}],"health_checks":{"passive":{"unhealthy_request_count":-1}}}`,
			"primary: unhealthy_request_count (health_checks.passive.unhealthy_request_count) must not be negative: -1"},
		{"negative unhealthy_latency", "jwt off\nprimary a:1 {\nfail_duration 10s\nunhealthy_latency -1s\n}", `"jwt":{"off":true},"primary":{"upstreams":[{"dial":"a:1"}],"health_checks":{"passive":{"fail_duration":"10s","unhealthy_latency":"-1s"}}}`,
			"primary: unhealthy_latency (health_checks.passive.unhealthy_latency) must be 0 (unset) or at least 1ms (a JSON number is nanoseconds): -1s"},
		// A pool's http transport likewise: a negative dial or TLS
		// timeout fails every dial or handshake at once; a negative
		// keepalive or expect_continue_timeout is not the edge's default.
		{"negative dial_timeout", "jwt off\nprimary a:1 {\ntransport http {\ndial_timeout -1s\n}\n}", `"jwt":{"off":true},"primary":{"upstreams":[{"dial":"a:1"}],"transport":{"protocol":"http","dial_timeout":-1}}`,
			"primary: transport http: dial_timeout (transport.dial_timeout) must be 0 (unset) or at least 1ms (a JSON number is nanoseconds): -1"},
		{"negative tls_timeout", "jwt off\nprimary a:1 {\ntransport http {\ntls\ntls_timeout -10s\n}\n}", `"jwt":{"off":true},"primary":{"upstreams":[{"dial":"a:1"}],"transport":{"protocol":"http","tls":{"handshake_timeout":"-10s"}}}`,
			"primary: transport http: tls_timeout (transport.tls.handshake_timeout) must be 0 (unset) or at least 1ms (a JSON number is nanoseconds): -10s"},
		{"negative keepalive", "jwt off\nprimary a:1\nbackup b:1 {\ntransport http {\nkeepalive -1m\n}\n}", `"jwt":{"off":true},"primary":{"upstreams":[{"dial":"a:1"}]},"backup":{"upstreams":[{"dial":"b:1"}],"transport":{"protocol":"http","keep_alive":{"idle_timeout":"-1m"}}}`,
			"backup: transport http: keepalive (transport.keep_alive.idle_timeout) must be 0 (unset) or at least 1ms (a JSON number is nanoseconds): -1m0s"},
		{"negative expect_continue_timeout", "jwt off\nprimary a:1 {\ntransport http {\nexpect_continue_timeout -1s\n}\n}", `"jwt":{"off":true},"primary":{"upstreams":[{"dial":"a:1"}],"transport":{"protocol":"http","expect_continue_timeout":"-1s"}}`,
			"primary: transport http: expect_continue_timeout (transport.expect_continue_timeout) must be 0 (unset) or at least 1ms (a JSON number is nanoseconds): -1s"},
		{"negative response_header_timeout", "", `"jwt":{"off":true},"primary":{"upstreams":[{"dial":"a:1"}],"transport":{"protocol":"http","response_header_timeout":"-1s","read_timeout":"-1s"}}`,
			"primary: transport http: response_header_timeout (transport.response_header_timeout) must be 0 (unset) or at least 1ms (a JSON number is nanoseconds): -1s"},
		// A JSON number is nanoseconds: 3 meant as 3s fails every dial,
		// 5 every health check, and 20 answers 504 every request the pool
		// took.
		{"dial_timeout in nanoseconds", "jwt off\nprimary a:1 {\ntransport http {\ndial_timeout 3ns\n}\n}", `"jwt":{"off":true},"primary":{"upstreams":[{"dial":"a:1"}],"transport":{"protocol":"http","dial_timeout":3}}`,
			"primary: transport http: dial_timeout (transport.dial_timeout) must be 0 (unset) or at least 1ms (a JSON number is nanoseconds): 3ns"},
		{"health_timeout in nanoseconds", "", `"jwt":{"off":true},"primary":{"upstreams":[{"dial":"a:1"}],"health_checks":{"active":{"uri":"/health","timeout":5}}}`,
			"primary: health_timeout (health_checks.active.timeout) must be 0 (unset) or at least 1ms (a JSON number is nanoseconds): 5ns"},
		{"response_header_timeout under 1ms", "jwt off\nprimary a:1\nbackup b:1 {\ntransport http {\nresponse_header_timeout 999us\n}\n}", `"jwt":{"off":true},"primary":{"upstreams":[{"dial":"a:1"}]},"backup":{"upstreams":[{"dial":"b:1"}],"transport":{"protocol":"http","response_header_timeout":20}}`,
			"backup: transport http: response_header_timeout (transport.response_header_timeout) must be 0 (unset) or at least 1ms (a JSON number is nanoseconds): "},
		{"health_interval in nanoseconds", "jwt off\nprimary a:1 {\nhealth_uri /health\nhealth_interval 30ns\n}", `"jwt":{"off":true},"primary":{"upstreams":[{"dial":"a:1"}],"health_checks":{"active":{"uri":"/health","interval":30}}}`,
			"primary: health_interval (health_checks.active.interval) must be 0 (unset) or at least 1ms (a JSON number is nanoseconds): 30ns"},
		{"destinations mode", "jwt off\ndestinations {\nmode audit\n}", `"jwt":{"off":true},"destinations":{"mode":"audit"}`, `destinations: mode: "audit" is neither enforce nor report`},
		{"destinations region", "jwt off\ndestinations {\nallow_regions US XX\n}", `"jwt":{"off":true},"destinations":{"allow_regions":["US","XX"]}`, `destinations: allow_regions: entry 2 of 2 ("XX") is not a region`},
		{"destinations type", "jwt off\ndestinations {\ndeny_types premium\n}", `"jwt":{"off":true},"destinations":{"deny_types":["premium"]}`, `destinations: deny_types: entry 1 of 1 ("premium") is not a number type`},
		{"destinations prefix without +", "jwt off\ndestinations {\ndeny 1900\n}", `"jwt":{"off":true},"destinations":{"deny":["1900"]}`, "destinations: deny: entry 1 of 1 is not an E.164 prefix"},
		{"destinations max_extension_digits", "jwt off\ndestinations {\nmax_extension_digits 21\n}", `"jwt":{"off":true},"destinations":{"max_extension_digits":21}`, "destinations: max_extension_digits must be between 0 and 20, the most an extension may have: 21"},
		{"destinations premium_short_codes", "jwt off\ndestinations {\npremium_short_codes ignore\n}", `"jwt":{"off":true},"destinations":{"premium_short_codes":"ignore"}`,
			`destinations: premium_short_codes: "ignore" is neither refuse nor allow`},
		{"destinations emergency_calls", "jwt off\ndestinations {\nemergency_calls none\n}", `"jwt":{"off":true},"destinations":{"emergency_calls":"none"}`,
			`destinations: emergency_calls: "none" is neither any nor emergency_numbers`},
		// Words are read in any letter case; one that is none of them
		// stops startup, naming them.
		{"web_tickets", rsaJWT + "\nweb_tickets Pass", rsaJSON + `,"web_tickets":"Pass"`, `web_tickets: "Pass" is neither reject nor forward`},
		{"audit_on_error", "jwt off\naudit_on_error Refuse", `"jwt":{"off":true},"audit_on_error":"Refuse"`, `audit_on_error: "Refuse" is neither open nor closed`},
		{"destinations mode in capitals", "jwt off\ndestinations {\nmode Audit\n}", `"jwt":{"off":true},"destinations":{"mode":"Audit"}`, `destinations: mode: "Audit" is neither enforce nor report`},
		{"destinations type in capitals", "jwt off\ndestinations {\ndeny_types Premium\n}", `"jwt":{"off":true},"destinations":{"deny_types":["Premium"]}`, `destinations: deny_types: entry 1 of 1 ("Premium") is not a number type (one of unknown, `},
		{"destinations prefix in allow and deny", "jwt off\ndestinations {\nallow +1900555\ndeny +1900555\n}", `"jwt":{"off":true},"destinations":{"allow":["+1900555"],"deny":["+1900555"]}`,
			"destinations: deny: entry 1 of 1 is within allow's entry 1 of 1, and allow comes first: it would refuse nothing"},
		{"destinations region allowed and denied", "jwt off\ndestinations {\nallow_regions US\ndeny_regions US\n}", `"jwt":{"off":true},"destinations":{"allow_regions":["US"],"deny_regions":["US"]}`,
			`destinations: deny_regions: entry 1 of 1 ("US") is in allow_regions too`},
		{"destinations SIP domain", "jwt off\ndestinations {\nsip_domains contoso..com\n}", `"jwt":{"off":true},"destinations":{"sip_domains":["contoso..com"]}`, `destinations: sip_domains: entry 1 of 1 ("contoso..com") is not a host name`},
		{"destinations emergency", "jwt off\ndefault_region US\ndestinations {\nemergency 911 +1425\n}", `"jwt":{"off":true},"default_region":"US","destinations":{"emergency":["911","+1425"]}`, "destinations: emergency: emergency number 2 of 2 is neither a short code"},
		{"destinations outside_line", "jwt off\ndestinations {\noutside_line 9 +0\n}", `"jwt":{"off":true},"destinations":{"outside_line":["9","+0"]}`, "destinations: outside_line: entry 2 of 2 is not an outside-line prefix: 1 to 4 digits (9, or 0)"},
		{"destinations outside_line, too many", "jwt off\ndestinations {\noutside_line 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26\n}",
			`"jwt":{"off":true},"destinations":{"outside_line":["10","11","12","13","14","15","16","17","18","19","20","21","22","23","24","25","26"]}`,
			"destinations: outside_line: 17 prefixes given, at most 16 are allowed"},
		{"destinations emergency, bad region", "jwt off\ndefault_region XX\ndestinations {\nemergency 911\n}", `"jwt":{"off":true},"default_region":"XX","destinations":{"emergency":["911"]}`, `default_region: default region "XX" is not a region`},
		{"negative expect_continue_after_idle", "jwt off\nexpect_continue_after_idle -1s", `"jwt":{"off":true},"expect_continue_after_idle":"-1s"`, "expect_continue_after_idle: -1s is negative"},
		{"handle_response (JSON)", "", `"jwt":{"off":true},"primary":{"upstreams":[{"dial":"a:1"}],"handle_response":[{"routes":[]}]}`, "primary: handle_response is not supported"},
		{"rewrite in a pool", "jwt off\nprimary a:1 {\nrewrite /ucwa{http.request.orig_uri}\n}", `"jwt":{"off":true},"primary":{"upstreams":[{"dial":"a:1"}],"rewrite":{"uri":"/ucwa{http.request.orig_uri}"}}`, "primary: rewrite (and method) is not supported"},
		{"method in a backup", "jwt off\nprimary a:1\nbackup b:1 {\nmethod PUT\n}", `"jwt":{"off":true},"primary":{"upstreams":[{"dial":"a:1"}]},"backup":{"upstreams":[{"dial":"b:1"}],"rewrite":{"method":"PUT"}}`, "backup: rewrite (and method) is not supported"},
		{"header_up X-Original-URL in a pool", "jwt off\nprimary a:1 {\nheader_up X-Original-URL {http.request.orig_uri}\n}", `"jwt":{"off":true},"primary":{"upstreams":[{"dial":"a:1"}],"headers":{"request":{"set":{"X-Original-Url":["{http.request.orig_uri}"]}}}}`, "primary: header_up X-Original-Url: the edge refuses it from a client"},
		{"header_up of a method override in a backup", "jwt off\nprimary a:1\nbackup b:1 {\nheader_up +x_http_method_override PUT\n}", `"jwt":{"off":true},"primary":{"upstreams":[{"dial":"a:1"}]},"backup":{"upstreams":[{"dial":"b:1"}],"headers":{"request":{"add":{"x_http_method_override":["PUT"]}}}}`, "backup: header_up "},
		{"header_up of a web ticket", "", `"jwt":{"off":true},"primary":{"upstreams":[{"dial":"a:1"}],"headers":{"request":{"set":{"x-ms-webticket":["t"]}}}}`, "primary: header_up x-ms-webticket: the edge refuses it"},
		{"request_buffers", "jwt off\nprimary a:1 {\nrequest_buffers 4k\n}", `"jwt":{"off":true},"primary":{"upstreams":[{"dial":"a:1"}],"request_buffers":4000}`, "primary: request_buffers is not supported"},
		// A pool whose transport fails to load is an error, not a panic
		// of cleaning up a proxy never provisioned (a backup's too, after
		// the primary was).
		{"primary transport fails to load", "jwt off\nprimary a:1 {\ntransport http {\nversions 9\n}\n}", `"jwt":{"off":true},"primary":{"upstreams":[{"dial":"a:1"}],"transport":{"protocol":"http","versions":["9"]}}`, "primary: loading transport: "},
		{"backup transport fails to load", "jwt off\nprimary a:1\nbackup b:1 {\ntransport http {\nversions 9\n}\n}", `"jwt":{"off":true},"primary":{"upstreams":[{"dial":"a:1"}]},"backup":{"upstreams":[{"dial":"b:1"}],"transport":{"protocol":"http","versions":["9"]}}`, "backup: loading transport: "},

		{"no algorithms", "jwt {\npublic_key_file " + rsaFile + "\n}", fmt.Sprintf(`"jwt":{"public_key_files":[%q]}`, rsaFile), "jwt: algorithms is required"},
		{"alg none", "jwt {\nalgorithms RS256 none\npublic_key_file " + rsaFile + "\n}", "", "jwt: algorithm none is refused"},
		{"alg unknown", "jwt {\nalgorithms RS257\npublic_key_file " + rsaFile + "\n}", "", `jwt: unsupported algorithm "RS257"`},
		{"no key at all", "jwt {\nalgorithms RS256\n}", `"jwt":{"algorithms":["RS256"]}`, "jwt: no key can verify RS256"},
		{"no key for ES256", "jwt {\nalgorithms RS256 ES256\npublic_key_file " + rsaFile + "\n}", "", "no key can verify ES256: configure jwks_url, jwks_file or a public_key_file with an EC key"},
		{"P-256 key for ES384", "jwt {\nalgorithms ES384\npublic_key_file " + ecFile + "\n}", "", "no key can verify ES384"},
		{"JWKS does not cover HS256", "jwt {\nalgorithms HS256\njwks_url https://idp.example/keys\n}", "", "no key can verify HS256: configure hmac_secret"},
		{"jwks_url in the clear", "jwt {\nalgorithms RS256\njwks_url http://login.example.com/keys\n}", `"jwt":{"algorithms":["RS256"],"jwks_url":"http://login.example.com/keys"}`, `jwks_url "http://login.example.com/keys" must use https`},
		// A URL without a host name, or with a port no server has, would
		// fail at every fetch, while the edge refuses every token.
		{"jwks_url without a host name", "jwt {\nalgorithms RS256\njwks_url https://:443/keys\n}", `"jwt":{"algorithms":["RS256"],"jwks_url":"https://:443/keys"}`, `jwks_url "https://:443/keys" is not an absolute URL`},
		{"jwks_url port past 65535", "jwt {\nalgorithms RS256\njwks_url https://idp.example:99999/keys\n}", `"jwt":{"algorithms":["RS256"],"jwks_url":"https://idp.example:99999/keys"}`, `jwks_url "https://idp.example:99999/keys": its port must be between 1 and 65535`},
		{"jwks_url port 0", "", `"jwt":{"algorithms":["RS256"],"jwks_url":"http://127.0.0.1:0/keys"}`, `jwks_url "http://127.0.0.1:0/keys": its port must be between 1 and 65535`},
		{"missing key file", "jwt {\nalgorithms RS256\npublic_key_file " + dir + "/nope.pem\n}", "", "nope.pem: no such file"},
		{"private key file", "jwt {\nalgorithms RS256\npublic_key_file " + privFile + "\n}", "", "a private key does not belong on the edge"},
		{"not PEM", "jwt {\nalgorithms RS256\npublic_key_file " + badJWKS + "\n}", "", "no PEM public key found"},
		{"key file that never ends", "jwt {\nalgorithms RS256\npublic_key_file /dev/zero\n}", "", "public_key_file: /dev/zero: larger than 4194304 bytes"},
		{"JWKS file that never ends", "jwt {\nalgorithms RS256\njwks_file /dev/zero\n}", "", "jwks_file: /dev/zero: larger than 1048576 bytes"},
		{"RSA key file over 8192 bits", "jwt {\nalgorithms RS256\npublic_key_file " + largeFile + "\n}", fmt.Sprintf(`"jwt":{"algorithms":["RS256"],"public_key_files":[%q]}`, largeFile),
			"public_key_file " + largeFile + ": RSA PUBLIC KEY block: RSA key of 16384 bits is longer than 8192"},
		{"short HMAC secret", "jwt {\nalgorithms HS256\nhmac_secret {env.UCWA_TEST_SHORT_SECRET}\n}", `"jwt":{"algorithms":["HS256"],"hmac_secret":"{env.UCWA_TEST_SHORT_SECRET}"}`, "hmac_secret is 5 bytes, but HS256 needs at least 32"},
		{"HMAC secret file missing", "jwt {\nalgorithms HS256\nhmac_secret {file." + dir + "/missing}\n}", `"jwt":{"algorithms":["HS256"],"hmac_secret":"{file.` + dir + `/missing}"}`, "hmac_secret: evaluated placeholder {file." + dir + "/missing} is empty"},
		{"unset secret variable", "jwt {\nalgorithms HS256\nhmac_secret {env.UCWA_TEST_UNSET_VARIABLE}\n}", "", "jwt: hmac_secret: evaluated placeholder {env.UCWA_TEST_UNSET_VARIABLE} is empty"},
		{"unset audience variable", "jwt {\nalgorithms RS256\npublic_key_file " + rsaFile + "\naudience {env.UCWA_TEST_UNSET_VARIABLE}\n}", "", "jwt: audience: evaluated placeholder {env.UCWA_TEST_UNSET_VARIABLE} is empty"},
		// An unknown placeholder would be the secret's text, which anyone
		// who reads the config could sign tokens with.
		{"secret placeholder misspelled", "jwt {\nalgorithms HS256\nhmac_secret {ENV.UCWA_TEST_JWT_SECRET_FOR_THE_EDGE}\n}", `"jwt":{"algorithms":["HS256"],"hmac_secret":"{ENV.UCWA_TEST_JWT_SECRET_FOR_THE_EDGE}"}`,
			"jwt: hmac_secret: unrecognized placeholder {ENV.UCWA_TEST_JWT_SECRET_FOR_THE_EDGE}"},
		// A placeholder left open is the setting's text to Caddy's
		// replacer: a secret that anyone who reads the config has.
		{"secret placeholder left open", "jwt {\nalgorithms HS256\nhmac_secret {env.UCWA_TEST_JWT_SECRET_FOR_THE_EDGE\n}", `"jwt":{"algorithms":["HS256"],"hmac_secret":"{env.UCWA_TEST_JWT_SECRET_FOR_THE_EDGE"}`,
			"jwt: hmac_secret: a brace is not closed: a placeholder is written {env.NAME}, a literal brace \\{"},
		{"audience placeholder left open", "jwt {\nalgorithms RS256\npublic_key_file " + rsaFile + "\naudience api://{env.UCWA_TEST_AUDIENCE\n}", "",
			"jwt: audience: a brace is not closed: a placeholder is written {env.NAME}, a literal brace \\{"},
		{"challenge placeholder left open", rsaJWT + "\nchallenge client_id {env.UCWA_TEST_CLIENT_ID", rsaJSON + `,"challenge":{"client_id":"{env.UCWA_TEST_CLIENT_ID"}`,
			`challenge: the value of "client_id": a brace is not closed: a placeholder is written {env.NAME}, a literal brace \{`},
		{"issuer with an IdP's template", "jwt {\nalgorithms RS256\npublic_key_file " + rsaFile + "\nissuer https://login.microsoftonline.com/{tenantid}/v2.0\n}", "",
			"jwt: issuer: unrecognized placeholder {tenantid}"},
		{"secret without HS alg", "jwt {\nalgorithms RS256\npublic_key_file " + rsaFile + "\nhmac_secret 0123456789abcdef0123456789abcdef\n}", "", "hmac_secret is set but algorithms lists no HS256"},
		{"missing JWKS file", "jwt {\nalgorithms RS256\njwks_file " + dir + "/nope.json\n}", "", "jwks_file: open"},
		{"bad JWKS file", "jwt {\nalgorithms RS256\njwks_file " + badJWKS + "\n}", "", "not a JWK Set"},
		{"JWKS file without signature keys", "jwt {\nalgorithms RS256\njwks_file " + encOnlyJWKS + "\n}", "", "no usable signature key"},
		{"empty issuer", "jwt {\nalgorithms RS256\npublic_key_file " + rsaFile + "\nissuer https://sts.contoso.test/ \"\"\n}", fmt.Sprintf(`"jwt":{"algorithms":["RS256"],"public_key_files":[%q],"issuers":["https://sts.contoso.test/",""]}`, rsaFile),
			"jwt: issuer: an empty value would accept tokens without iss"},
		{"empty audience", "jwt {\nalgorithms RS256\npublic_key_file " + rsaFile + "\naudience \"\"\n}", fmt.Sprintf(`"jwt":{"algorithms":["RS256"],"public_key_files":[%q],"audiences":[""]}`, rsaFile),
			"jwt: audience: an empty value would accept tokens whose aud is empty"},
		{"jwks_refresh without jwks_url", "", fmt.Sprintf(`"jwt":{"algorithms":["RS256"],"public_key_files":[%q],"jwks_refresh":"5m"}`, rsaFile), "jwt: jwks_refresh is set but there is no jwks_url"},
		{"negative leeway", "jwt {\nalgorithms RS256\npublic_key_file " + rsaFile + "\nleeway -1s\n}", fmt.Sprintf(`"jwt":{"algorithms":["RS256"],"public_key_files":[%q],"leeway":"-1s"}`, rsaFile), "jwt: leeway must not be negative: -1s"},
		{"negative jwks_refresh", "", `"jwt":{"algorithms":["RS256"],"jwks_url":"https://login.example.com/keys","jwks_refresh":"-1h"}`, "jwt: jwks_refresh must not be negative: -1h0m0s"},
		{"leeway past the most", "jwt {\nalgorithms RS256\npublic_key_file " + rsaFile + "\nleeway 100000h\n}", fmt.Sprintf(`"jwt":{"algorithms":["RS256"],"public_key_files":[%q],"leeway":"100000h"}`, rsaFile), "jwt: leeway 100000h0m0s is more than 10m0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			configs := map[string][2]string{}
			if tc.caddyfile != "" {
				configs["Caddyfile"] = [2]string{"caddyfile", "127.0.0.1:0 {\n\tucwa {\n" + tc.caddyfile + "\n\t}\n}\n"}
			}
			if tc.json != "" {
				configs["JSON"] = [2]string{"json", handlerJSON(tc.json)}
			}
			for source, cfg := range configs {
				err := testkit.Validate(t, cfg[0], cfg[1])
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s: error %v, want one containing %q", source, err, tc.want)
					continue
				}
				if strings.Contains(err.Error(), "http.handlers.ucwa: ucwa:") {
					t.Errorf("%s: the error names the module twice: %v", source, err)
				}
			}
		})
	}
	t.Run("good configs validate", func(t *testing.T) {
		for _, config := range []string{
			"127.0.0.1:0 {\n\tucwa {\n\t\tjwt off\n\t\tdefault_region de\n\t\tnumber_format e164\n\t\tmax_body_size 16KiB\n\t}\n\trespond 204\n}\n",
			"127.0.0.1:0 {\n\tucwa {\n\t\tjwt off\n\t\tprimary {\n\t\t\tdynamic a fe.contoso.test 443\n\t\t}\n\t}\n}\n",
			"127.0.0.1:0 {\n\tucwa {\n\t\tjwt {\n\t\t\talgorithms RS256 ES256\n\t\t\tpublic_key_file " + rsaFile + " " + ecFile + "\n\t\t}\n\t}\n}\n",
			// RFC 7519's sub and RFC 6749's client_id may hold a space.
			"127.0.0.1:0 {\n\tucwa {\n\t\tjwt {\n\t\t\talgorithms RS256\n\t\t\tpublic_key_file " + rsaFile + "\n\t\t}\n\t\tdeny_callers {\n\t\t\tsub \"John Smith\"\n\t\t\tclient_id \"field app\"\n\t\t}\n\t}\n}\n",
			// A deny list of no caller bars nobody, as a template that
			// renders the block around no line means.
			"127.0.0.1:0 {\n\tucwa {\n\t\tjwt {\n\t\t\talgorithms RS256\n\t\t\tpublic_key_file " + rsaFile + "\n\t\t}\n\t\tdeny_callers {\n\t\t}\n\t}\n}\n",
		} {
			if err := testkit.Validate(t, "caddyfile", config); err != nil {
				t.Errorf("%v\n%s", err, config)
			}
		}
		for _, fields := range []string{
			rsaJSON + `,"deny_callers":{}`,
			rsaJSON + `,"deny_callers":{"oid":[],"tid":null}`,
		} {
			if err := testkit.Validate(t, "json", handlerJSON(fields)); err != nil {
				t.Errorf("%v\n%s", err, fields)
			}
		}
	})
}

// TestReadmeJSONExample: the README's JSON handler decodes into Handler
// with no unknown field, so its field names follow the code.
func TestReadmeJSONExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```json\n(\\{\n  \"handler\": \"ucwa\".*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("the README has no JSON example of the ucwa handler")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(m[1], &raw); err != nil {
		t.Fatalf("README JSON example: %v", err)
	}
	delete(raw, "handler") // the module's name, not a field
	b, _ := json.Marshal(raw)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var h Handler
	if err := dec.Decode(&h); err != nil {
		t.Fatalf("README JSON example does not match Handler: %v", err)
	}
	if h.JWT == nil || len(h.JWT.Algorithms) == 0 || h.Primary == nil || h.Backup == nil {
		t.Fatalf("README JSON example lost its jwt or pools: %+v", h)
	}

	// The README calls it the same handler as its ```caddyfile example
	// and says `caddy adapt` prints it: the two must hold the same
	// settings (compared as the Handler each decodes into, so that "1h"
	// and its nanoseconds, or the order of keys, do not count).
	c := regexp.MustCompile("(?s)```caddyfile\n(.*?)```").FindSubmatch(readme)
	if c == nil {
		t.Fatal("the README has no ```caddyfile example")
	}
	adapted, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(c[1], nil)
	if err != nil {
		t.Fatalf("adapting the README's Caddyfile example: %v", err)
	}
	fromCaddyfile := findUcwaHandler(t, adapted)
	if fromCaddyfile == nil {
		t.Fatal("the README's Caddyfile example adapts to no ucwa handler")
	}
	if want, got := normalizeHandlerJSON(t, m[1]), normalizeHandlerJSON(t, fromCaddyfile); !reflect.DeepEqual(want, got) {
		t.Errorf("the README's JSON example is not the handler its Caddyfile example adapts to:\nJSON:      %v\nCaddyfile: %v", want, got)
	}
}

// findUcwaHandler returns the JSON of the first ucwa handler in an adapted
// config.
func findUcwaHandler(t *testing.T, config []byte) json.RawMessage {
	t.Helper()
	var walk func(raw json.RawMessage) json.RawMessage
	walk = func(raw json.RawMessage) json.RawMessage {
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) == nil {
			if string(obj["handler"]) == `"ucwa"` {
				return raw
			}
			for _, v := range obj {
				if found := walk(v); found != nil {
					return found
				}
			}
			return nil
		}
		var arr []json.RawMessage
		if json.Unmarshal(raw, &arr) == nil {
			for _, v := range arr {
				if found := walk(v); found != nil {
					return found
				}
			}
		}
		return nil
	}
	return walk(config)
}

// normalizeHandlerJSON decodes a ucwa handler's JSON into Handler and
// back into generic values, so that two spellings of the same settings
// compare equal.
func normalizeHandlerJSON(t *testing.T, raw []byte) any {
	t.Helper()
	var h Handler
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(&h)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestFieldsDocumented: every JSON field of Handler, of the jwt object,
// of the store, idempotency, limit and destination objects and of the
// buffered log writer is an exported field of its own type (none hides
// in an embedded struct), with a doc comment that gives its default or
// says it is required, as godoc and Caddy's module docs show them.
func TestFieldsDocumented(t *testing.T) {
	for _, tc := range []struct {
		file, typ string
		value     any
	}{
		{"handler.go", "Handler", Handler{}},
		{"operations.go", "OperationConfig", OperationConfig{}},
		{"../internal/bearer/config.go", "Config", bearer.Config{}},
		{"idempotency.go", "IdempotencyConfig", IdempotencyConfig{}},
		{"limits.go", "LimitConfig", LimitConfig{}},
		{"store_memory.go", "MemoryStore", MemoryStore{}},
		{"store_redis.go", "RedisStore", RedisStore{}},
		{"store_redis.go", "RedisTLS", RedisTLS{}},
		{"../ucwa/policy.go", "DestinationPolicy", ucwa.DestinationPolicy{}},
		{"logwriter.go", "BufferedWriter", BufferedWriter{}},
	} {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, tc.file, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		docs := map[string]string{} // JSON name -> doc comment
		ast.Inspect(f, func(n ast.Node) bool {
			spec, ok := n.(*ast.TypeSpec)
			if !ok || spec.Name.Name != tc.typ {
				return true
			}
			for _, field := range spec.Type.(*ast.StructType).Fields.List {
				if field.Tag == nil {
					continue
				}
				if len(field.Names) == 0 {
					t.Errorf("%s embeds %v: its JSON fields would not show in godoc", tc.typ, field.Type)
					continue
				}
				name, _, _ := strings.Cut(reflect.StructTag(strings.Trim(field.Tag.Value, "`")).Get("json"), ",")
				docs[name] = field.Doc.Text()
			}
			return false
		})
		rt := reflect.TypeOf(tc.value)
		for i := range rt.NumField() {
			name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			doc, ok := docs[name]
			switch {
			case !ok:
				t.Errorf("%s.%s (%s) is not a field of %s's own", tc.typ, rt.Field(i).Name, name, tc.typ)
			case !strings.Contains(doc, "Default") && !strings.Contains(doc, "Required"):
				t.Errorf("%s.%s (%s): its doc comment gives no default: %q", tc.typ, rt.Field(i).Name, name, doc)
			}
		}
		if len(docs) == 0 {
			t.Errorf("found no JSON fields of %s in %s", tc.typ, tc.file)
		}
	}
}

// TestCaddyfileSyntaxDocumented: the syntax of the ucwa directive in
// UnmarshalCaddyfile's comment and in the README are the same, every
// subdirective they show is one the parser reads, and every name the
// parser reads is shown.
func TestCaddyfileSyntaxDocumented(t *testing.T) {
	src, err := os.ReadFile("caddyfile.go")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	comment := regexp.MustCompile(`(?s)\n//\tucwa \{\n.*?\n//\t\}\n`).Find(src)
	readmeBlock := regexp.MustCompile("(?s)\nucwa \\{\n.*?\n\\}\n").Find(readme)
	if comment == nil || readmeBlock == nil {
		t.Fatalf("syntax not found: in the comment %t, in the README %t", comment != nil, readmeBlock != nil)
	}
	// The lines of a syntax block, without blank lines and the free text
	// inside primary and backup.
	lines := func(block []byte, prefix string) []string {
		var out []string
		for line := range strings.Lines(string(block)) {
			line = strings.TrimSpace(strings.TrimPrefix(line, prefix))
			if line != "" && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "<") {
				out = append(out, line)
			}
		}
		return out
	}
	commentLines, readmeLines := lines(comment, "//"), lines(readmeBlock, "")
	if !slices.Equal(commentLines, readmeLines) {
		t.Errorf("UnmarshalCaddyfile's syntax and the README's differ:\ncomment:\n%s\nREADME:\n%s",
			strings.Join(commentLines, "\n"), strings.Join(readmeLines, "\n"))
	}

	// The names the parser's switches read.
	read := map[string]bool{}
	fset := token.NewFileSet()
	for _, file := range []string{"caddyfile.go", "store.go", "store_memory.go", "store_redis.go", "destinations.go", "limits.go", "idempotency.go", "deny_callers.go"} {
		f, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || !strings.HasPrefix(strings.ToLower(fn.Name.Name), "unmarshal") {
				continue
			}
			ast.Inspect(fn, func(n ast.Node) bool {
				if cc, ok := n.(*ast.CaseClause); ok {
					for _, e := range cc.List {
						if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
							read[strings.Trim(lit.Value, `"`)] = true
						}
					}
				}
				return true
			})
		}
	}
	for _, line := range commentLines[1:] {
		fields := strings.Fields(line)
		if fields[0] == "}" {
			continue
		}
		if !read[fields[0]] {
			t.Errorf("the syntax shows %q, which the parser does not read", fields[0])
		}
		if fields[0] == "store" && !read[fields[1]] {
			t.Errorf("the syntax shows `store %s`, which the parser does not read", fields[1])
		}
	}
	// The README's table of subdirectives has a row for each, or for the
	// block it is in.
	var rows strings.Builder
	for line := range strings.Lines(string(readme)) {
		if strings.HasPrefix(line, "| `") {
			rows.WriteString(line)
		}
	}
	for _, line := range commentLines[1:] {
		if name := strings.Fields(line)[0]; name != "}" && !strings.Contains(rows.String(), "`"+name+"`") {
			t.Errorf("the README's table of subdirectives has no row for %q", name)
		}
	}

	// Each name of the syntax has a place for the message of one written
	// in another block (optionPlaces), but deny_callers' claims.
	for _, line := range commentLines[1:] {
		if name := strings.Fields(line)[0]; name != "}" && optionPlaces[name] == "" && !slices.Contains(deniedCallerClaims[:], name) {
			t.Errorf("optionPlaces has no place for %q", name)
		}
	}

	shown := map[string]bool{}
	for _, word := range regexp.MustCompile(`[a-z_]+`).FindAllString(string(comment), -1) {
		shown[word] = true
	}
	for name := range read {
		if regexp.MustCompile(`^[a-z_]+$`).MatchString(name) && !shown[name] {
			t.Errorf("the parser reads %q, which the syntax does not show", name)
		}
	}
}

// TestCaddyfileJSONRoundTrip: the handler JSON of every golden adapt file
// decodes into Handler with no unknown field and encodes back to the
// same JSON, so that nothing a Caddyfile says is lost on the way to a
// running handler (or to `caddy adapt` and back).
func TestCaddyfileJSONRoundTrip(t *testing.T) {
	files, err := filepath.Glob("testdata/caddyfile_adapt/*.caddyfiletest")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		_, adapted, _ := strings.Cut(string(data), "\n----------")
		adapted = strings.TrimLeft(adapted, "-")
		if !strings.HasPrefix(strings.TrimSpace(adapted), "{") {
			continue // a golden error
		}
		handlers := ucwaHandlerJSON(t, []byte(adapted))
		if len(handlers) == 0 {
			continue
		}
		for _, raw := range handlers {
			if err := handlerRoundTrip(raw); err != nil {
				t.Errorf("%s: %v", path, err)
			}
		}
	}
}

// TestOptionWordsAnyLetterCase: every option word is read in any letter
// case, from a Caddyfile and from JSON alike, so that a config written
// `mode Report` or "E164" starts and means what it says: through a real
// Caddy, a premium-rate number is delivered (report mode) in E.164 (not
// a tel URI), a web ticket is forwarded, and the second forwarding
// request is over the forwarding limit.
func TestOptionWordsAnyLetterCase(t *testing.T) {
	t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
	configs := map[string]func(pool string) (string, string){
		"Caddyfile": func(pool string) (string, string) {
			return "caddyfile", `:EDGE_PORT {
	ucwa {
		` + opsJWT + `
		default_region US
		number_format E164
		phone_audio ENABLED
		web_tickets Forward
		store Memory {
			on_error Open
		}
		limit forwarding 1 PER 1h Forwarding KEY {http.ucwa.tid}
		destinations {
			mode Report
			deny_types Premium_Rate UAN
			premium_short_codes Allow
		}
		primary ` + pool + `
	}
}`
		},
		"JSON": func(pool string) (string, string) {
			return "json", `{"apps":{"http":{"servers":{"edge":{"listen":[":EDGE_PORT"],"routes":[{"handle":[{"handler":"ucwa",
	"jwt":{"algorithms":["HS256"],"hmac_secret":"{env.UCWA_TEST_JWT_SECRET}","issuers":["https://issuer.example/"],"audiences":["api://ucwa"]},
	"default_region":"US","number_format":"E164","web_tickets":"Forward",
	"store":{"backend":"Memory","on_error":"Open"},
	"limits":[{"name":"forwarding","count":1,"per":"1h","key":"{http.ucwa.tid}","applies_to":"Forwarding"}],
	"destinations":{"mode":"Report","deny_types":["Premium_Rate","UAN"],"premium_short_codes":"Allow"},
	"primary":{"upstreams":[{"dial":"` + pool + `"}]}}]}]}}}}}`
		},
	}
	for name, config := range configs {
		t.Run(name, func(t *testing.T) {
			pool := testkit.NewUpstream(t)
			adapter, cfg := config(pool.Addr())
			e := startEdge(t, adapter, cfg)
			auth := http.Header{"Authorization": {callerBearer(t)}}
			if resp := e.postJSON(startOpsPath, `{"to":"+19005551234"}`, auth); resp.Status != http.StatusCreated {
				t.Fatalf("report mode: status %d (%s), want 201", resp.Status, resp.Body)
			}
			if got := pool.Received(); len(got) != 1 || got[0].Body != `{"to":"+19005551234"}` {
				t.Fatalf("the pool got %+v, want the number in E.164", got)
			}
			ticket := http.Header{"Authorization": {"Bearer cwt=AAEAHAUHGkHigqyFLZ-Wd6o1tPkOgK5XHlEkBKdA4N3rE0y"}}
			if resp := e.postJSON(startOpsPath, `{"to":"+14255551234"}`, ticket); resp.Status != http.StatusCreated {
				t.Fatalf("web ticket: status %d (%s), want 201 (forwarded)", resp.Status, resp.Body)
			}
			for i, want := range []int{http.StatusCreated, http.StatusTooManyRequests} {
				if resp := e.postJSON(immediateForwardPath, `{"target":"tel:+14255551234"}`, auth); resp.Status != want {
					t.Fatalf("forwarding request %d: status %d (%s), want %d", i+1, resp.Status, resp.Body, want)
				}
			}
		})
	}
}

// handlerRoundTrip decodes raw, a handler's adapted JSON, into Handler
// with no field unknown, and reports whether it encodes back the same.
func handlerRoundTrip(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var h Handler
	if err := dec.Decode(&h); err != nil {
		return fmt.Errorf("the adapted handler does not decode: %v\n%s", err, raw)
	}
	again, err := json.Marshal(&h)
	if err != nil {
		return err
	}
	var want, got any
	_ = json.Unmarshal(raw, &want)
	_ = json.Unmarshal(again, &got)
	if !reflect.DeepEqual(want, got) {
		return fmt.Errorf("the adapted handler does not come back the same:\nadapted: %s\nagain:   %s", raw, again)
	}
	return nil
}
