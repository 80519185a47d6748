package caddymodule

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// The callers deny_callers names in these tests.
const (
	deniedOID = "0f6e27c1-aaaa-4bbb-8ccc-000000000001"
	deniedTID = "11111111-2222-4333-8444-555555555555"
	// A tenant in upper case, as Windows tools show GUIDs, and a client
	// id of a GUID's length with a letter no GUID has.
	upperTID   = "0A1B2C3D-EEEE-4FFF-8AAA-BBBBBBBBBBBB"
	almostGUID = "0A1B2C3D-EEEE-4FFF-8AAA-BBBBBBBBBBBG"
)

// denyCallersCaddyfile is an edge with an access log and the audit trail
// in Caddy's log, tokens of testkit's EC key from either test issuer,
// the deny list given (its block's lines; "" for none) and pool as its
// primary, and a reverse_proxy to pool for the requests it does not
// guard, as a deployment has.
func denyCallersCaddyfile(t *testing.T, deny string, pool *testkit.Pool) string {
	block := ""
	if deny != "" {
		block = "deny_callers {\n\t\t\t" + deny + "\n\t\t}"
	}
	return fmt.Sprintf(`{
	log {
		level DEBUG
	}
}
:EDGE_PORT {
	log
	ucwa {
		default_region US
		%s
		%s
		primary %[3]s
	}
	reverse_proxy %[3]s
}`, issuersAuth(t, firstIssuer, secondIssuer), block, pool.Addr())
}

// denyCallersToken is an Authorization header with a token granting
// calls: an allowed caller's claims with those given set over them (nil
// removes one).
func denyCallersToken(t *testing.T, claims jwt.MapClaims) http.Header {
	c := jwt.MapClaims{"iss": firstIssuer, "sub": "caller-sub", "oid": "caller-oid", "tid": "caller-tid",
		"appid": "caller-app", "scp": "Conversations.Initiate User.ReadWrite"}
	maps.Copy(c, claims)
	token := testkit.Mint(t, jwt.SigningMethodES256, testkit.Keys(t).EC, "", testkit.Claims(time.Now(), c))
	return http.Header{"Authorization": {"Bearer " + token}}
}

// auditLineAfter waits for the audit line after the first n of e's log
// (a request refused before its body is read has no operation_id to
// find it by).
func auditLineAfter(t *testing.T, e edge, n int) auditLine {
	t.Helper()
	var lines []auditLine
	testkit.Eventually(t, "the next audit line", func() bool {
		lines = auditLines(t, e.Logs().String())
		return len(lines) > n
	})
	return lines[n]
}

// TestDenyCallers: through a real Caddy, a verified token whose sub, oid,
// tid, client application (appid or azp) or iss deny_callers names is
// answered 403 Forbidden/CallerDenied without a Bearer challenge (a new token would
// not help) and never delivered, whatever its scopes; its audit line
// names the claim that matched, never the value; a batch of such a
// caller is refused whole. Values are compared exactly, but a GUID in
// any letter case; a claim the token lacks matches nothing, and other callers' requests, and the denied
// caller's reads the edge does not guard, are delivered.
func TestDenyCallers(t *testing.T) {
	pool := newIdemPool(t, "primary")
	e := startEdge(t, "caddyfile", denyCallersCaddyfile(t, `sub denied-sub
			oid `+deniedOID+`
			tid `+deniedTID+`
			client_id denied-app
			client_id other-denied-app
			tid `+upperTID+`
			client_id `+almostGUID+`
			iss `+secondIssuer, pool.Pool))
	for i, tc := range []struct {
		name   string
		claims jwt.MapClaims
		denied string // the claim that matches; "" for a caller delivered
	}{
		{"allowed caller", nil, ""},
		{"sub", jwt.MapClaims{"sub": "denied-sub"}, "sub"},
		{"sub in another letter case", jwt.MapClaims{"sub": "Denied-Sub"}, ""},
		{"oid", jwt.MapClaims{"oid": deniedOID}, "oid"},
		{"oid in upper case", jwt.MapClaims{"oid": strings.ToUpper(deniedOID)}, "oid"},
		{"tid of the list's upper case", jwt.MapClaims{"tid": upperTID}, "tid"},
		{"tid of the list's upper case in lower case", jwt.MapClaims{"tid": strings.ToLower(upperTID)}, "tid"},
		{"client_id almost a GUID, another case", jwt.MapClaims{"appid": strings.ToLower(almostGUID)}, ""},
		{"client_id almost a GUID", jwt.MapClaims{"appid": almostGUID}, "client_id"},
		{"tid", jwt.MapClaims{"tid": deniedTID}, "tid"},
		{"appid", jwt.MapClaims{"appid": "denied-app"}, "client_id"},
		{"azp", jwt.MapClaims{"appid": nil, "azp": "other-denied-app"}, "client_id"},
		{"azp beside an allowed appid", jwt.MapClaims{"azp": "denied-app"}, "client_id"},
		{"client_id claim (RFC 9068)", jwt.MapClaims{"appid": nil, "client_id": "denied-app"}, "client_id"},
		{"client_id claim beside an allowed appid", jwt.MapClaims{"client_id": "other-denied-app"}, "client_id"},
		{"iss", jwt.MapClaims{"iss": secondIssuer}, "iss"},
		{"first claim named", jwt.MapClaims{"tid": deniedTID, "sub": "denied-sub"}, "sub"},
		{"without the claims", jwt.MapClaims{"oid": nil, "tid": nil, "appid": nil}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := fmt.Sprintf("deny-%d", i)
			n := len(auditLines(t, e.Logs().String()))
			resp := e.call(idemCall{header: denyCallersToken(t, tc.claims), op: op})
			line := auditLineAfter(t, e, n)
			if tc.denied == "" {
				if resp.Status != http.StatusCreated || deliveries(pool.Pool, op) != 1 || line.RefusedBy != "" {
					t.Fatalf("%d %s, %d deliveries, refused_by %q; want 201, one delivery", resp.Status, resp.Body, deliveries(pool.Pool, op), line.RefusedBy)
				}
				return
			}
			if resp.Status != http.StatusForbidden {
				t.Fatalf("%d %s, want 403", resp.Status, resp.Body)
			}
			if body := ucwaError(t, resp.Body); body.Code != "Forbidden" || body.Subcode != "CallerDenied" || !strings.Contains(body.Message, "barred this caller from startPhoneAudio") {
				t.Errorf("body %+v", body)
			}
			if c := resp.Header.Get("WWW-Authenticate"); c != "" {
				t.Errorf("WWW-Authenticate %q: a new token would be refused the same", c)
			}
			if n := deliveries(pool.Pool, op); n != 0 {
				t.Errorf("delivered %d times", n)
			}
			if line.RefusedBy != "caller:"+tc.denied || line.Error != "Forbidden/CallerDenied" || line.Status != http.StatusForbidden || line.Pool != "" || line.Caller.Sub == "" {
				t.Errorf("audit line %+v", line)
			}
		})
	}

	t.Run("batch", func(t *testing.T) {
		before := len(pool.Received())
		resp := e.send(testkit.Request{URL: "/ucwa/v1/applications/1/batch", ContentType: batchType, Accept: "multipart/batching",
			Header: denyCallersToken(t, jwt.MapClaims{"oid": deniedOID}),
			Body: batchBody(innerPOST("/ucwa/v1/applications/1/communication/startPhoneAudio", "application/json", `{"to":"4255551234","operationId":"deny-batch"}`),
				"GET /ucwa/v1/applications/1/me HTTP/1.1\r\nHost: fe1.contoso.com\r\n\r\n")})
		if resp.Status != http.StatusForbidden || len(pool.Received()) != before {
			t.Fatalf("%d %s, the pool got %d requests; want 403 and none", resp.Status, resp.Body, len(pool.Received())-before)
		}
	})

	t.Run("unguarded read", func(t *testing.T) {
		before := len(pool.Received())
		resp := e.send(testkit.Request{Method: http.MethodGet, URL: "/ucwa/v1/applications/1/me",
			Header: denyCallersToken(t, jwt.MapClaims{"oid": deniedOID})})
		if resp.Status != http.StatusCreated || len(pool.Received()) != before+1 {
			t.Fatalf("%d %s, the pool got %d requests; want the pool's answer", resp.Status, resp.Body, len(pool.Received())-before)
		}
	})

	log := e.Logs().String()
	for _, value := range []string{deniedOID, deniedTID, "denied-app", "denied-sub"} {
		for line := range strings.Lines(log) {
			if strings.Contains(line, value) && !strings.Contains(line, `"http.handlers.ucwa.audit"`) && !strings.Contains(line, `"http.log.access`) {
				t.Errorf("a log line other than the audit trail's and the access log's holds %q: %s", value, line)
			}
		}
	}
}

// TestDenyCallersReload: a reload that adds a caller to deny_callers
// refuses the very token the edge verified and cached before it, at the
// next request, and a reload that takes it out delivers it again: the
// list is an administrator's answer to a stolen token, and the token
// stays valid at its identity provider.
func TestDenyCallersReload(t *testing.T) {
	pool := newIdemPool(t, "primary")
	e := startEdge(t, "caddyfile", denyCallersCaddyfile(t, "", pool.Pool))
	token := denyCallersToken(t, jwt.MapClaims{"oid": deniedOID})
	for i, step := range []struct {
		deny string
		want int
	}{
		{"", http.StatusCreated},
		{"oid " + deniedOID, http.StatusForbidden},
		{"tid other-tenant", http.StatusCreated},
	} {
		if i > 0 {
			e.Load("caddyfile", denyCallersCaddyfile(t, step.deny, pool.Pool))
		}
		op := fmt.Sprintf("reload-%d", i)
		resp := e.call(idemCall{header: token, op: op})
		want := 0
		if step.want == http.StatusCreated {
			want = 1
		}
		if resp.Status != step.want || deliveries(pool.Pool, op) != want {
			t.Fatalf("deny_callers %q: %d %s, %d deliveries; want %d", step.deny, resp.Status, resp.Body, deliveries(pool.Pool, op), step.want)
		}
	}
}

// TestDenyCallersPlaceholders: a deny list's values take global
// placeholders, {env.*}, as the jwt issuer they are often copied beside
// does: the caller an environment variable names is refused 403 and
// never delivered, through a real Caddy. Left as their text, the values
// matched no token and barred nobody.
func TestDenyCallersPlaceholders(t *testing.T) {
	t.Setenv("UCWA_TEST_DENIED_OID", deniedOID)
	t.Setenv("UCWA_TEST_DENIED_ISS", secondIssuer)
	pool := newIdemPool(t, "primary")
	e := startEdge(t, "caddyfile", denyCallersCaddyfile(t, `oid {env.UCWA_TEST_DENIED_OID}
			iss {env.UCWA_TEST_DENIED_ISS}`, pool.Pool))
	for i, tc := range []struct {
		name   string
		claims jwt.MapClaims
		want   int
	}{
		{"allowed caller", nil, http.StatusCreated},
		{"oid of the variable", jwt.MapClaims{"oid": deniedOID}, http.StatusForbidden},
		{"iss of the variable", jwt.MapClaims{"iss": secondIssuer}, http.StatusForbidden},
		{"oid the placeholder's text", jwt.MapClaims{"oid": "{env.UCWA_TEST_DENIED_OID}"}, http.StatusCreated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := fmt.Sprintf("deny-env-%d", i)
			resp := e.call(idemCall{header: denyCallersToken(t, tc.claims), op: op})
			want := 0
			if tc.want == http.StatusCreated {
				want = 1
			}
			if resp.Status != tc.want || deliveries(pool.Pool, op) != want {
				t.Fatalf("%d %s, %d deliveries; want %d, %d", resp.Status, resp.Body, deliveries(pool.Pool, op), tc.want, want)
			}
		})
	}
}

// TestDenyCallersReloadInFlight: a request of a caller whose token was
// authorized before a reload that bars it, and whose body arrives only
// after the reload, is refused 403 and never delivered, through a real
// Caddy over HTTP/1.1. Caddy's old server goes on serving the requests
// it took in after a reload, with the old handler and its old list, for
// as long as their bodies take (without read_body, forever): a thief who
// holds requests open with their bodies unsent, before he is barred,
// would otherwise have each delivered after it. A request of a caller
// the new config does not bar is delivered as before.
func TestDenyCallersReloadInFlight(t *testing.T) {
	for _, tc := range []struct {
		name string
		deny string // the reloaded config's list
		want int
	}{
		{"barred by the reload", "oid " + deniedOID, http.StatusForbidden},
		{"another caller barred", "oid other-oid", http.StatusCreated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := newIdemPool(t, "primary")
			// The old server's grace period, a minute (testkit's is 5s),
			// bounds the request in flight across the reload, not its
			// wait on a busy machine.
			config := func(deny string) string {
				return strings.Replace(denyCallersCaddyfile(t, deny, pool.Pool), "{\n\tlog {", "{\n\tgrace_period 1m\n\tlog {", 1)
			}
			e := startEdge(t, "caddyfile", config(""))
			op := "in-flight"
			body := fmt.Sprintf(`{"to":"4255551234","operationId":%q}`, op)
			conn := rawConn(t, testkit.Addr(e.Port("EDGE_PORT")))
			head := "POST " + startPath + " HTTP/1.1\r\nHost: edge.contoso.com\r\nContent-Type: application/json\r\n" +
				"Authorization: " + denyCallersToken(t, jwt.MapClaims{"oid": deniedOID}).Get("Authorization") + "\r\n" +
				fmt.Sprintf("Expect: 100-continue\r\nContent-Length: %d\r\n\r\n", len(body))
			if _, err := io.WriteString(conn, head); err != nil {
				t.Fatal(err)
			}
			// 100 Continue: the token was authorized, the body is asked for.
			br := bufio.NewReader(conn)
			if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusContinue {
				t.Fatalf("no 100 Continue: %v %v", resp, err)
			}
			e.Load("caddyfile", config(tc.deny))
			if _, err := io.WriteString(conn, body); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			answer, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			want := 0
			if tc.want == http.StatusCreated {
				want = 1
			}
			if resp.StatusCode != tc.want || deliveries(pool.Pool, op) != want {
				t.Fatalf("%d %s, %d deliveries; want %d", resp.StatusCode, answer, deliveries(pool.Pool, op), tc.want)
			}
			if tc.want == http.StatusForbidden {
				if body := ucwaError(t, string(answer)); body.Code != "Forbidden" || body.Subcode != "CallerDenied" || !strings.Contains(body.Message, "barred this caller") {
					t.Errorf("body %+v", body)
				}
				if line := auditLineAfter(t, e, 0); line.RefusedBy != "caller:oid" || line.Status != http.StatusForbidden || line.Pool != "" {
					t.Errorf("audit line %+v", line)
				}
			}
		})
	}
}

// TestDenyCallersIssuerNotAccepted: an iss of deny_callers that is none of
// the jwt issuers (the first issuer without its trailing '/') bars
// nobody, as tokens of such an issuer never pass: the edge warns of it
// at startup, through a real Caddy, naming the value and the issuers it
// accepts; an accepted issuer's value gets no warning.
func TestDenyCallersIssuerNotAccepted(t *testing.T) {
	pool := newIdemPool(t, "primary")
	slip := strings.TrimSuffix(firstIssuer, "/")
	e := startEdge(t, "caddyfile", denyCallersCaddyfile(t, "iss "+slip+" "+secondIssuer, pool.Pool))
	lines := e.Logs().Lines("an iss that is none of the jwt issuers bars nobody")
	if len(lines) != 1 || !strings.Contains(lines[0], `"iss":"`+slip+`"`) || !strings.Contains(lines[0], `"issuers":["`+firstIssuer+`","`+secondIssuer+`"]`) {
		t.Fatalf("want one warning of %s: %q", slip, lines)
	}
	// What it warns of: the first issuer's tokens are delivered.
	if resp := e.call(idemCall{header: denyCallersToken(t, nil), op: "iss-slip"}); resp.Status != http.StatusCreated {
		t.Fatalf("%d %s, want 201", resp.Status, resp.Body)
	}
}
