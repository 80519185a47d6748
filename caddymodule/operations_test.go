package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// allScopes are the five UCWA scopes: a token with them may make every
// request.
var allScopes = []string{ucwa.ScopeConversationsInitiate, ucwa.ScopeConversationsReceive, ucwa.ScopeUserReadWrite,
	ucwa.ScopeContactsReadWrite, ucwa.ScopeMeetingsReadWrite}

const opsApp = "/ucwa/oauth/v1/applications/104"

// opsEdge is an edge with HS256 tokens (default_region US) and options
// in its ucwa block, delivering to a primary pool, with a reverse_proxy
// to next behind it; Caddy logs at level.
type opsEdge struct {
	edge
	pool, next *testkit.Pool
}

// opsJWT is the jwt block of the edges of these tests: HS256 tokens of
// bearerFor, the secret from UCWA_TEST_JWT_SECRET.
const opsJWT = `jwt {
			algorithms HS256
			hmac_secret {env.UCWA_TEST_JWT_SECRET}
			issuer https://issuer.example/
			audience api://ucwa
		}`

func startOpsEdge(t *testing.T, level, options string) opsEdge {
	t.Helper()
	t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
	pool, next := testkit.NewUpstream(t), testkit.NewUpstream(t)
	e := startEdge(t, "caddyfile", fmt.Sprintf(`{
	log {
		level %s
	}
}
:EDGE_PORT {
	ucwa {
		`+opsJWT+`
		default_region US
		%s
		primary %s
	}
	reverse_proxy %s
}`, level, options, pool.Addr(), next.Addr()))
	return opsEdge{e, pool, next}
}

// bearerFor is the Authorization of a valid token granting scopes.
func bearerFor(t testing.TB, scopes ...string) string {
	t.Helper()
	return "Bearer " + testkit.Mint(t, jwt.SigningMethodHS256, testkit.Keys(t).HMAC, "",
		testkit.Claims(time.Now(), jwt.MapClaims{"scp": strings.Join(scopes, " ")}))
}

// opPath is a request path ending in one of an operation's suffixes, as a
// pool hands it out: after the application, and after a variable segment
// (a conversation id) for suffixes that do not start at the application.
func opPath(suffix string) string {
	if strings.HasPrefix(suffix, "/communication/") || strings.HasPrefix(suffix, "/me/") || suffix == "/batch" {
		return opsApp + suffix
	}
	return opsApp + "/communication/conversations/eee0" + suffix
}

// opRequest is a request to op: method, path, headers (a token, If-Match
// for a PUT) and, for a properties body, JSON.
func opRequest(op *ucwa.Operation, path, auth, query string, body map[string]any) testkit.Request {
	req := testkit.Request{Method: op.Method, URL: path, Header: http.Header{"If-Match": {`"1925102412"`}}}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if query != "" {
		req.URL += "?" + query
	}
	switch op.Body {
	case ucwa.SDPBody:
		req.ContentType, req.Body = "application/sdp", "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n"
	case ucwa.PropertiesBody:
		if body != nil {
			b, _ := json.Marshal(body)
			req.ContentType, req.Body = "application/json", string(b)
		}
	}
	return req
}

// goodValue is a good value of p as a client writes it (in JSON, as in),
// and what the edge forwards (text), normalized.
func goodValue(p *ucwa.Property) (in any, text, forwarded string) {
	switch p.Type {
	case ucwa.EnumValue:
		return strings.ToUpper(p.Values[0]), strings.ToUpper(p.Values[0]), p.Values[0]
	case ucwa.BooleanValue:
		return true, "True", "true"
	case ucwa.IntegerValue:
		n := strconv.FormatInt(p.Min+1, 10)
		return p.Min + 1, " " + n, n
	case ucwa.NumberValue:
		return "(425) 555-1234", "(425) 555-1234", "tel:+14255551234"
	case ucwa.DestinationValue:
		return "sip:+1-900-555-1234@gw.contoso.com;user=phone", "sip:+1-900-555-1234@gw.contoso.com;user=phone", "sip:+19005551234@gw.contoso.com;user=phone"
	case ucwa.DataURLValue:
		return "data : ,hello", "data : ,hello", "data:,hello"
	}
	return "v-" + p.Name, "v-" + p.Name, "v-" + p.Name
}

// goodBody is a JSON body of op with every property good, and one more a
// pool may get (forwarded as it is).
func goodBody(op *ucwa.Operation) map[string]any {
	body := map[string]any{"direction": nil}
	for i := range op.Properties {
		p := &op.Properties[i]
		in, _, _ := goodValue(p)
		if p.Type == ucwa.DataURLValue {
			links, _ := body["_links"].(map[string]any)
			if links == nil {
				links = map[string]any{}
				body["_links"] = links
			}
			links[p.Name] = map[string]any{"href": in}
			continue
		}
		body[p.Name] = in
	}
	return body
}

// goodQuery is a query with every property of op good (but links, which
// are in a body only), and one parameter the edge does not know.
func goodQuery(op *ucwa.Operation) url.Values {
	q := url.Values{"conversation": {"eee0"}}
	for i := range op.Properties {
		if p := &op.Properties[i]; p.Type != ucwa.DataURLValue {
			_, text, _ := goodValue(p)
			q.Set(p.Name, text)
		}
	}
	return q
}

// badValues are values of p that break one of its rules, in JSON and in
// the query ("" when the rule cannot be broken there).
func badValues(p *ucwa.Property) []struct {
	rule  string
	json  any
	query string
} {
	type bad = struct {
		rule  string
		json  any
		query string
	}
	const garbage = "+1 900 555 9999 garbage"
	switch p.Type {
	case ucwa.StringValue:
		if p.MaxLength > 0 { // over the limit in UTF-16 units, not in characters
			long := strings.Repeat("😀", p.MaxLength/2+1)
			return []bad{{"over-long", long, long}}
		}
	case ucwa.EnumValue:
		return []bad{{"not a value", "NotAValue", "NotAValue"}}
	case ucwa.BooleanValue:
		return []bad{{"not a boolean", "maybe", "maybe"}, {"a boolean as a string", "true", ""}}
	case ucwa.IntegerValue:
		out := []bad{{"not an integer", "x", "x"}, {"below the minimum", p.Min - 1, strconv.FormatInt(p.Min-1, 10)}}
		if p.Max < 1<<31-1 {
			out = append(out, bad{"above the maximum", p.Max + 1, strconv.FormatInt(p.Max+1, 10)})
		}
		return out
	case ucwa.NumberValue:
		return []bad{{"not a number", garbage, garbage}, {"a SIP URI", "sip:john@contoso.com", "sip:john@contoso.com"}}
	case ucwa.DestinationValue:
		return []bad{{"not a number", garbage, garbage}, {"a SIP URI with headers", "sip:john@contoso.com?Contact=x", "sip:john@contoso.com?Contact=x"}}
	case ucwa.DataURLValue:
		return []bad{{"not a data URL", "https://x.example/", ""}}
	}
	return nil
}

// TestEveryOperation sends every operation of the table, at every path
// spelling, what issue 10 lists: no token (401, nothing at the pool), a
// token without the operation's scopes (403), each bad field (400 naming
// it, in the body and in the query), the required ones missing, and a
// good request in JSON, in XML and in the query, delivered to the pool
// exactly once with its numbers normalized.
func TestEveryOperation(t *testing.T) {
	e := startOpsEdge(t, "INFO", "")
	good := bearerFor(t, allScopes...)
	for _, op := range ucwa.DefaultOperations() {
		if op.Body == ucwa.BatchBody {
			continue // TestBatch
		}
		t.Run(op.Rel, func(t *testing.T) {
			path := opPath(op.Paths[0])
			// send sends req and checks that it was refused with status
			// and parameters, the pool and the next handler getting
			// nothing.
			refused := func(what string, req testkit.Request, status int, params ...string) testkit.Response {
				t.Helper()
				before, beforeNext := len(e.pool.Received()), len(e.next.Received())
				resp := e.send(req)
				if resp.Status != status {
					t.Fatalf("%s: status %d (%s), want %d", what, resp.Status, resp.Body, status)
				}
				if len(e.pool.Received()) != before || len(e.next.Received()) != beforeNext {
					t.Fatalf("%s: a refused request was delivered", what)
				}
				if params != nil {
					body := ucwaError(t, resp.Body)
					var names []string
					for _, p := range body.Parameters {
						names = append(names, p.Name)
					}
					if !slices.Equal(names, params) {
						t.Errorf("%s: parameters %v (%s), want %v", what, names, resp.Body, params)
					}
				}
				return resp
			}
			// delivered sends req and returns what the pool got.
			delivered := func(what string, req testkit.Request) testkit.Received {
				t.Helper()
				before := len(e.pool.Received())
				resp := e.send(req)
				got := e.pool.Received()[before:]
				if resp.Status != http.StatusCreated || len(got) != 1 {
					t.Fatalf("%s: status %d (%s), the pool got %d requests; want 201 and exactly one", what, resp.Status, resp.Body, len(got))
				}
				if got[0].Method != op.Method || got[0].Path != strings.SplitN(req.URL, "?", 2)[0] {
					t.Errorf("%s: the pool got %s %s", what, got[0].Method, got[0].Path)
				}
				return got[0]
			}

			for _, suffix := range op.Paths {
				refused("no token at "+suffix, opRequest(&op, opPath(suffix), "", "", goodBody(&op)), http.StatusUnauthorized)
			}
			resp := refused("a token without its scopes", opRequest(&op, path, bearerFor(t, "Contacts.ReadWrite", "User.Read"), "", goodBody(&op)), http.StatusForbidden)
			if want := `Bearer realm="ucwa", error="insufficient_scope", scope="` + strings.Join(op.Scopes, " ") + `"`; resp.Header.Get("WWW-Authenticate") != want {
				t.Errorf("403 challenge %q, want %q", resp.Header.Get("WWW-Authenticate"), want)
			}
			if msg := ucwaError(t, resp.Body).Message; !strings.Contains(msg, op.Rel) || !strings.Contains(msg, op.Scopes[0]) {
				t.Errorf("403 message %q names neither the operation nor its scopes", msg)
			}
			if op.Method == http.MethodPost {
				req := opRequest(&op, path, good, "", nil)
				req.Method = http.MethodGet
				if op.PassesOn(req.Method) { // a collection (phones), which GET reads
					req.Method = http.MethodDelete
				}
				want := "POST"
				if op.PassesOn(http.MethodGet) {
					want = "GET, HEAD, OPTIONS, POST"
				}
				if resp := refused(req.Method, req, http.StatusMethodNotAllowed); resp.Header.Get("Allow") != want {
					t.Errorf("405 Allow %q, want %q", resp.Header.Get("Allow"), want)
				}
			}

			for i := range op.Properties {
				p := &op.Properties[i]
				inBody := op.Body == ucwa.PropertiesBody
				if p.Required {
					if inBody {
						body := goodBody(&op)
						delete(body, p.Name)
						refused(p.Name+" missing", opRequest(&op, path, good, "", body), http.StatusBadRequest, p.Name)
					}
					q := goodQuery(&op)
					q.Del(p.Name)
					refused(p.Name+" missing from the query", opRequest(&op, path, good, q.Encode(), nil), http.StatusBadRequest, p.Name)
				}
				for _, bad := range badValues(p) {
					if inBody {
						body := goodBody(&op)
						if p.Type == ucwa.DataURLValue {
							body["_links"].(map[string]any)[p.Name] = map[string]any{"href": bad.json}
						} else {
							body[p.Name] = bad.json
						}
						refused(p.Name+" "+bad.rule, opRequest(&op, path, good, "", body), http.StatusBadRequest, p.Name)
					}
					if bad.query != "" {
						q := goodQuery(&op)
						q.Set(p.Name, bad.query)
						refused(p.Name+" "+bad.rule+" in the query", opRequest(&op, path, good, q.Encode(), nil), http.StatusBadRequest, p.Name)
					}
				}
			}

			// Good requests, at every spelling.
			for _, suffix := range op.Paths {
				q := goodQuery(&op)
				got := delivered("in the query at "+suffix, opRequest(&op, opPath(suffix), good, q.Encode(), nil))
				forwarded, err := url.ParseQuery(got.RawQuery)
				if err != nil {
					t.Fatal(err)
				}
				for i := range op.Properties {
					if p := &op.Properties[i]; p.Type != ucwa.DataURLValue {
						if _, _, want := goodValue(p); forwarded.Get(p.Name) != want {
							t.Errorf("the pool got %s=%q in the query, want %q", p.Name, forwarded.Get(p.Name), want)
						}
					}
				}
				if forwarded.Get("conversation") != "eee0" {
					t.Errorf("the pool lost a query parameter: %q", got.RawQuery)
				}
			}
			switch op.Body {
			case ucwa.SDPBody:
				got := delivered("SDP", opRequest(&op, path, good, goodQuery(&op).Encode(), nil))
				if got.Body != "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n" || got.Header.Get("Content-Type") != "application/sdp" {
					t.Errorf("the pool got %q (%s), want the SDP body as it came", got.Body, got.Header.Get("Content-Type"))
				}
			case ucwa.PropertiesBody:
				got := delivered("JSON", opRequest(&op, path, good, "", goodBody(&op)))
				var forwarded map[string]any
				if err := json.Unmarshal([]byte(got.Body), &forwarded); err != nil {
					t.Fatalf("the pool got %q: %v", got.Body, err)
				}
				if _, ok := forwarded["direction"]; !ok {
					t.Error("the pool did not get a property the edge does not know")
				}
				for i := range op.Properties {
					p := &op.Properties[i]
					_, _, want := goodValue(p)
					v := forwarded[p.Name]
					if p.Type == ucwa.DataURLValue {
						v = forwarded["_links"].(map[string]any)[p.Name].(map[string]any)["href"]
					}
					if fmt.Sprint(v) != want {
						t.Errorf("the pool got %s = %v, want %s", p.Name, v, want)
					}
				}

				var x strings.Builder
				x.WriteString(`<` + op.XMLRoot + ` xmlns="` + ucwa.Namespace + `">`)
				for i := range op.Properties {
					p := &op.Properties[i]
					_, text, _ := goodValue(p)
					if p.Type == ucwa.DataURLValue {
						x.WriteString(`<link rel="` + p.Name + `" href="` + text + `"/>`)
					} else {
						x.WriteString(`<property name="` + p.Name + `">` + text + `</property>`)
					}
				}
				x.WriteString(`</` + op.XMLRoot + `>`)
				req := opRequest(&op, path, good, "", nil)
				req.ContentType, req.Body = "application/xml", x.String()
				got = delivered("XML", req)
				for i := range op.Properties {
					p := &op.Properties[i]
					_, _, want := goodValue(p)
					if !strings.Contains(got.Body, `="`+p.Name+`"`+map[bool]string{true: ` href="`, false: `>`}[p.Type == ucwa.DataURLValue]+want) {
						t.Errorf("the pool's XML lacks %s = %s: %s", p.Name, want, got.Body)
					}
				}
			case ucwa.NoBody:
				if got := delivered("no body", opRequest(&op, path, good, "", nil)); got.Body != "" {
					t.Errorf("the pool got a body %q", got.Body)
				}
			}
		})
	}
	if n := len(e.next.Received()); n != 0 {
		t.Errorf("the next handler got %d requests of guarded operations", n)
	}
}

// TestPhoneAudioDisabled: with phone_audio disabled, every phone-audio
// operation, alone or in a batch, is answered 403 once its other checks
// passed; every other operation is delivered.
func TestPhoneAudioDisabled(t *testing.T) {
	e := startOpsEdge(t, "INFO", "phone_audio disabled")
	good := bearerFor(t, allScopes...)
	for _, op := range ucwa.DefaultOperations() {
		if op.Body == ucwa.BatchBody {
			continue
		}
		t.Run(op.Rel, func(t *testing.T) {
			before := len(e.pool.Received())
			resp := e.send(opRequest(&op, opPath(op.Paths[0]), good, goodQuery(&op).Encode(), nil))
			delivered := len(e.pool.Received()) - before
			if !slices.Contains(phoneAudioOperations, op.Rel) {
				if resp.Status != http.StatusCreated || delivered != 1 {
					t.Fatalf("status %d (%s), delivered %d; want it delivered", resp.Status, resp.Body, delivered)
				}
				return
			}
			if resp.Status != http.StatusForbidden || delivered != 0 || ucwaError(t, resp.Body).Message != ucwa.MessagePhoneAudioNotInCapabilities {
				t.Fatalf("status %d (%s), delivered %d; want 403", resp.Status, resp.Body, delivered)
			}
			if op.Body == ucwa.PropertiesBody { // a bad request is told what is wrong first
				if resp := e.send(opRequest(&op, opPath(op.Paths[0]), good, "", map[string]any{"operationId": strings.Repeat("o", 51)})); resp.Status != http.StatusBadRequest {
					t.Errorf("a bad request: %d %s, want 400", resp.Status, resp.Body)
				}
			}
		})
	}
	t.Run("batch", func(t *testing.T) {
		resp := e.send(testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Header: http.Header{"Authorization": {good}},
			Body: batchBody("GET "+opsApp+"/me HTTP/1.1\r\n", "POST "+opsApp+"/communication/conversations/eee0/phoneAudio/addPhoneAudio?to=sip:a@b.c HTTP/1.1\r\n")})
		if resp.Status != http.StatusForbidden || !strings.HasPrefix(ucwaError(t, resp.Body).Message, "Batch part 2: ") {
			t.Fatalf("status %d (%s), want 403 naming part 2", resp.Status, resp.Body)
		}
	})
}

// TestOperationConfig: paths and operation blocks add path spellings
// (the table's own stay guarded), operation scopes replace one
// operation's, and top-level scopes replace every operation's.
func TestOperationConfig(t *testing.T) {
	forward := opsApp + "/me/callForwardingSettings/immediateForwardSettings/immediateForwardToContact?target=%2B14255551234"
	type check struct {
		name, url, body string
		scopes          []string // the token's; nil: no token
		status          int
		challenge       string // of a 403
	}
	for _, tc := range []struct {
		name, options string
		checks        []check
	}{
		{"paths and scopes of operations", `paths /communication/callViaWork
		operation addPhoneAudio {
			paths /phoneAudio/addPhoneAudio2
		}
		operation immediateForwardToContact {
			scopes Conversations.Initiate
		}`, []check{
			{"a path added by paths", opsApp + "/communication/callViaWork", `{"to":"4255551234"}`, []string{"Conversations.Initiate"}, 201, ""},
			{"a path added by paths, no token", opsApp + "/communication/callViaWork", `{"to":"4255551234"}`, nil, 401, ""},
			{"the table's own path", startPath, `{"to":"4255551234"}`, nil, 401, ""},
			{"a path added by operation", opsApp + "/communication/conversations/1/phoneAudio/addPhoneAudio2", `{"to":"4255551234"}`, []string{"Conversations.Receive"}, 201, ""},
			{"a path added by operation, no token", opsApp + "/communication/conversations/1/phoneAudio/addPhoneAudio2", `{"to":"4255551234"}`, nil, 401, ""},
			{"scopes replaced", forward, "", []string{"Conversations.Initiate"}, 201, ""},
			{"the table's scopes replaced", forward, "", []string{"User.ReadWrite"}, 403, `Bearer realm="ucwa", error="insufficient_scope", scope="Conversations.Initiate"`},
		}},
		{"top-level scopes", `scopes Conversations.Receive
		operation batch {
			scopes Contacts.ReadWrite
		}`, []check{
			{"every operation's scopes replaced", forward, "", []string{"User.ReadWrite"}, 403, `Bearer realm="ucwa", error="insufficient_scope", scope="Conversations.Receive"`},
			{"granted", forward, "", []string{"Conversations.Receive"}, 201, ""},
			{"an operation's own", opsApp + "/batch", batchBody("GET /x HTTP/1.1\r\n"), []string{"Conversations.Receive"}, 403, `Bearer realm="ucwa", error="insufficient_scope", scope="Contacts.ReadWrite"`},
			{"a part under the top-level scopes", opsApp + "/batch", batchBody("POST " + startPath + "?to=sip:a@b.c HTTP/1.1\r\n"), []string{"Contacts.ReadWrite"}, 403,
				`Bearer realm="ucwa", error="insufficient_scope", scope="Conversations.Receive"`},
			{"a batch granted", opsApp + "/batch", batchBody("POST " + startPath + "?to=sip:a@b.c HTTP/1.1\r\n"), []string{"Contacts.ReadWrite", "Conversations.Receive"}, 201, ""},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startOpsEdge(t, "INFO", tc.options)
			for _, c := range tc.checks {
				t.Run(c.name, func(t *testing.T) {
					req := testkit.Request{Method: "POST", URL: c.url, Body: c.body, Header: http.Header{}}
					switch {
					case strings.HasPrefix(c.body, "{"):
						req.ContentType = "application/json"
					case c.body != "":
						req.ContentType = batchType
					}
					if c.scopes != nil {
						req.Header.Set("Authorization", bearerFor(t, c.scopes...))
					}
					before := len(e.pool.Received())
					resp := e.send(req)
					delivered := len(e.pool.Received()) - before
					if resp.Status != c.status || delivered != map[bool]int{true: 1, false: 0}[c.status == 201] {
						t.Fatalf("status %d (%s), delivered %d; want %d", resp.Status, resp.Body, delivered, c.status)
					}
					if c.challenge != "" && resp.Header.Get("WWW-Authenticate") != c.challenge {
						t.Errorf("WWW-Authenticate %q, want %q", resp.Header.Get("WWW-Authenticate"), c.challenge)
					}
				})
			}
		})
	}
}

// TestReadmeOperationsTable: the README's table of guarded operations has
// a row for every operation of the table, with its method, every path
// suffix, every scope and every property.
func TestReadmeOperationsTable(t *testing.T) {
	rows := map[string]string{}
	for line := range strings.Lines(readRepoFile(t, "../README.md")) {
		if rel, ok := strings.CutPrefix(line, "| `"); ok {
			rel, _, _ = strings.Cut(rel, "`")
			rows[rel] = line
		}
	}
	for _, op := range ucwa.DefaultOperations() {
		row, ok := rows[op.Rel]
		if !ok {
			t.Errorf("the README has no row for %s", op.Rel)
			continue
		}
		cells := strings.Split(row, " | ")
		if len(cells) != 7 || !strings.HasPrefix(cells[1], op.Method) {
			t.Errorf("%s: the row is not operation | method | paths | scopes | body | properties | destinations: %s", op.Rel, row)
			continue
		}
		for _, p := range op.Paths {
			if !strings.Contains(cells[2], "`"+p+"`") {
				t.Errorf("%s: the row lacks the path %s", op.Rel, p)
			}
		}
		if cells[3] != strings.Join(op.Scopes, ", ") {
			t.Errorf("%s: the row's scopes are %q, want %q", op.Rel, cells[3], strings.Join(op.Scopes, ", "))
		}
		for _, p := range op.Properties {
			if !strings.Contains(cells[5], "`"+p.Name+"`") {
				t.Errorf("%s: the row lacks the property %s", op.Rel, p.Name)
			}
		}
	}
}
