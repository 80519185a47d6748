package caddymodule

import (
	"fmt"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// TestFraming: a terminated request reaches the pool with exactly the
// headers the edge checked, Content-Length framing, no trailers and no
// Expect; one that declares trailers, whose Connection names a header,
// that asks for an Upgrade, or that asks to be taken as another method
// (also on a resource guarded for PUT alone) is refused 400 and the pool
// and the next handler see nothing. Each
// request is written raw to the edge, and the pool records what it gets
// on the wire.
func TestFraming(t *testing.T) {
	k := testkit.Keys(t)
	t.Setenv("UCWA_TEST_JWT_SECRET", string(k.HMAC))
	token := testkit.Mint(t, jwt.SigningMethodHS256, k.HMAC, "", testkit.Claims(time.Now(), jwt.MapClaims{"scp": "Conversations.Initiate User.ReadWrite"}))
	pool := testkit.NewRawUpstream(t)
	next := testkit.NewUpstream(t)
	e := startEdge(t, "caddyfile", fmt.Sprintf(`:EDGE_PORT {
	ucwa {
		jwt {
			algorithms HS256
			hmac_secret {env.UCWA_TEST_JWT_SECRET}
		}
		default_region US
		primary %s
		expect_continue_after_idle 0
	}
	reverse_proxy %s
}`, pool.Addr(), next.Addr()))
	addr := testkit.Addr(e.Port("EDGE_PORT"))

	const xmlBody = `<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="to">4255551234</property></input>`
	const cleanedXML = `<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="to">tel:+14255551234</property></input>`
	// request writes a POST of startPhoneAudio with extra header lines and
	// a body, framed by Content-Length unless the lines say chunked.
	request := func(path string, lines []string, body string) string {
		head := "POST " + path + " HTTP/1.1\r\nHost: edge.contoso.com\r\nAuthorization: Bearer " + token + "\r\n" +
			"X-Ms-Origin: https://app.contoso.com\r\n"
		chunked := false
		for _, l := range lines {
			head += l + "\r\n"
			chunked = chunked || strings.EqualFold(l, "Transfer-Encoding: chunked")
		}
		if !chunked {
			head += "Content-Length: " + strconv.Itoa(len(body)) + "\r\n"
		}
		return head + "\r\n" + body
	}
	chunk := func(body, trailers string) string {
		return fmt.Sprintf("%x\r\n%s\r\n0\r\n%s\r\n", len(body), body, trailers)
	}
	forgedTrailers := "Authorization: Bearer forged\r\nContent-Type: application/xml\r\nTo: sip:+19005551234@gw\r\n"
	batch := func(body string) string {
		return "--b\r\nContent-Type: application/http; msgtype=request\r\n\r\nPOST /ucwa/v1/applications/1/communication/startPhoneAudio HTTP/1.1\r\n" +
			"Content-Type: application/xml\r\n\r\n" + body + "\r\n--b--\r\n"
	}
	const batchPath = "/ucwa/v1/applications/1/batch"

	for _, tc := range []struct {
		name    string
		request string
		// 400 and nothing at the pool, or what the pool gets: its body.
		refused  bool
		poolBody string
	}{
		{name: "trailers declared and sent", refused: true,
			request: request(startPath, []string{"Content-Type: application/json", "Transfer-Encoding: chunked", "Trailer: Authorization, Content-Type, To"},
				chunk(`{"to":"4255551234"}`, forgedTrailers))},
		{name: "trailers declared, none sent", refused: true,
			request: request(startPath, []string{"Content-Type: application/json", "Transfer-Encoding: chunked", "Trailer: X-Checksum"}, chunk(`{"to":"4255551234"}`, ""))},
		{name: "Trailer header without chunked framing", refused: true,
			request: request(startPath, []string{"Content-Type: application/json", "Trailer: Authorization"}, `{"to":"4255551234"}`)},
		{name: "trailers sent undeclared: never forwarded", poolBody: `{"to":"tel:+14255551234"}`,
			request: request(startPath, []string{"Content-Type: application/json", "Transfer-Encoding: chunked"}, chunk(`{"to":"4255551234"}`, forgedTrailers))},
		{name: "chunked body: forwarded with Content-Length", poolBody: cleanedXML,
			request: request(startPath, []string{"Content-Type: application/xml", "Transfer-Encoding: chunked"}, chunk(xmlBody, ""))},
		{name: "Expect 100-continue: the edge's own, once", poolBody: cleanedXML,
			request: request(startPath, []string{"Content-Type: application/xml", "Expect: 100-continue"}, xmlBody)},
		{name: "Connection names Content-Type and Authorization", refused: true,
			request: request(startPath, []string{"Content-Type: application/xml", "Connection: Content-Type, Authorization"}, xmlBody)},
		{name: "Connection names Authorization", refused: true,
			request: request(startPath, []string{"Content-Type: application/xml", "Connection: keep-alive, Authorization"}, xmlBody)},
		{name: "Connection names Content-Length", refused: true,
			request: request(startPath, []string{"Content-Type: application/xml", "Connection: Content-Length"}, xmlBody)},
		{name: "Connection names Host", refused: true,
			request: request(startPath, []string{"Content-Type: application/xml", "Connection: host"}, xmlBody)},
		{name: "Connection names X-Ms-Origin", refused: true,
			request: request(startPath, []string{"Content-Type: application/xml", "Connection: X-Ms-Origin"}, xmlBody)},
		{name: "Connection names an unknown header", refused: true,
			request: request(startPath, []string{"Content-Type: application/xml", "Connection: X-Anything"}, xmlBody)},
		{name: "Connection in two lines", refused: true,
			request: request(startPath, []string{"Content-Type: application/xml", "Connection: keep-alive", "Connection: Content-Type"}, xmlBody)},
		{name: "Connection keep-alive and close", poolBody: cleanedXML,
			request: request(startPath, []string{"Content-Type: application/xml", "Connection: Keep-Alive, close"}, xmlBody)},
		{name: "Upgrade websocket", refused: true,
			request: request(startPath, []string{"Content-Type: application/xml", "Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13",
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="}, xmlBody)},
		{name: "Upgrade h2c", refused: true,
			request: request(startPath, []string{"Content-Type: application/xml", "Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAAQAAP__"}, xmlBody)},
		{name: "Upgrade without Connection", refused: true,
			request: request(startPath, []string{"Content-Type: application/xml", "Upgrade: websocket"}, xmlBody)},
		{name: "another operation: Upgrade", refused: true,
			request: request("/ucwa/v1/applications/1/me/callForwardingSettings/immediateForwardSettings/immediateForwardToContact?target=sip:a@b.c", []string{"Upgrade: websocket", "Connection: Upgrade"}, "")},
		{name: "method override: a POST taken as the PUT that stores a number", refused: true,
			request: request("/ucwa/v1/applications/1/communication", []string{"Content-Type: application/json", "If-Match: x", "X-HTTP-Method-Override: PUT"},
				`{"phoneNumber":"+1 900 555 1234"}`)},
		{name: "method override in another spelling: X-HTTP-Method", refused: true,
			request: request("/ucwa/v1/applications/1/me/callForwardingSettings", []string{"Content-Type: application/json", "If-Match: x", "X-HTTP-Method: put"},
				`{"activeSetting":"ImmediateForward"}`)},
		{name: "method override naming another method: X-Method-Override", refused: true,
			request: request(startPath, []string{"Content-Type: application/xml", "X-Method-Override: GET"}, xmlBody)},
		{name: "batch: a part taken as the PUT that stores a number", refused: true,
			request: request(batchPath, []string{"Content-Type: multipart/batching; boundary=b"},
				"--b\r\nContent-Type: application/http; msgtype=request\r\n\r\nPOST /ucwa/v1/applications/1/communication HTTP/1.1\r\n"+
					"Content-Type: application/json\r\nIf-Match: x\r\nX-HTTP-Method-Override: PUT\r\n\r\n{\"phoneNumber\":\"+1 900 555 1234\"}\r\n--b--\r\n")},
		{name: "batch: trailers declared", refused: true,
			request: request(batchPath, []string{"Content-Type: multipart/batching; boundary=b", "Transfer-Encoding: chunked", "Trailer: Content-Type"},
				chunk(batch(xmlBody), "Content-Type: multipart/batching; boundary=c\r\n"))},
		{name: "batch: Connection names Content-Type", refused: true,
			request: request(batchPath, []string{"Content-Type: multipart/batching; boundary=b", "Connection: Content-Type"}, batch(xmlBody))},
		{name: "batch: Upgrade", refused: true,
			request: request(batchPath, []string{"Content-Type: multipart/batching; boundary=b", "Upgrade: websocket", "Connection: Upgrade"}, batch(xmlBody))},
		{name: "batch: a guarded part with Upgrade", refused: true,
			request: request(batchPath, []string{"Content-Type: multipart/batching; boundary=b"},
				strings.Replace(batch(xmlBody), "Content-Type: application/xml\r\n", "Content-Type: application/xml\r\nUpgrade: websocket\r\n", 1))},
		{name: "batch: a guarded part whose Connection names a header", refused: true,
			request: request(batchPath, []string{"Content-Type: multipart/batching; boundary=b"},
				strings.Replace(batch(xmlBody), "Content-Type: application/xml\r\n", "Content-Type: application/xml\r\nConnection: Authorization\r\n", 1))},
		{name: "a '#' in the query: a pool may cut the query there", refused: true,
			request: request(startPath+"?operationId=a#b&subject=x", []string{"Content-Type: application/xml"}, xmlBody)},
		{name: "a '#' in the query of another operation", refused: true,
			request: request("/ucwa/v1/applications/1/me/callForwardingSettings/immediateForwardSettings/immediateForwardToContact?target=sip:a@b.c&operationId=x#", nil, "")},
		{name: "an encoded '#' in the query: forwarded as it came", poolBody: cleanedXML,
			request: request(startPath+"?operationId=a%23b", []string{"Content-Type: application/xml"}, xmlBody)},
		{name: "batch: chunked, forwarded with Content-Length", poolBody: batch(cleanedXML),
			request: request(batchPath, []string{"Content-Type: multipart/batching; boundary=b", "Transfer-Encoding: chunked", "Expect: 100-continue"}, chunk(batch(xmlBody), ""))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(pool.Received())
			resp := testkit.SendRaw(t, addr, tc.request)
			got := pool.Received()[before:]
			if tc.refused {
				if resp.Status != http.StatusBadRequest || len(got) != 0 {
					t.Fatalf("status %d (%s), the pool got %d requests; want 400 and none", resp.Status, resp.Body, len(got))
				}
				if len(next.Received()) != 0 {
					t.Fatal("the next handler got a request")
				}
				head, _, _ := strings.Cut(tc.request, "\r\n\r\n")
				assertUCWAError(t, resp, "BadRequest", "DeserializationFailure", nil, strings.Contains(head, "Content-Type: application/xml"))
				return
			}
			if resp.Status != http.StatusCreated || len(got) != 1 {
				t.Fatalf("status %d (%s), the pool got %d requests; want 201 and one", resp.Status, resp.Body, len(got))
			}
			rec := got[0]
			head, _, _ := strings.Cut(rec.Raw, "\r\n\r\n")
			if rec.Body != tc.poolBody {
				t.Errorf("the pool got body %q, want %q", rec.Body, tc.poolBody)
			}
			if rec.ContentLength != int64(len(tc.poolBody)) || len(rec.TransferEncoding) != 0 || len(rec.Trailer) != 0 ||
				!strings.HasSuffix(rec.Raw, "\r\n\r\n"+tc.poolBody) {
				t.Errorf("the pool got framing other than Content-Length (Content-Length %d, Transfer-Encoding %v, trailers %v):\n%s",
					rec.ContentLength, rec.TransferEncoding, rec.Trailer, rec.Raw)
			}
			// The edge asks the pool to accept the body before it is sent
			// (here on every request); whatever the client expected is
			// not passed on.
			if v := rec.Header.Values("Expect"); len(v) != 1 || v[0] != "100-continue" {
				t.Errorf("the pool got Expect: %q, want the edge's own 100-continue\n%s", v, head)
			}
			for _, name := range []string{"Trailer", "Transfer-Encoding", "Upgrade", "To"} {
				if v := rec.Header.Values(name); len(v) > 0 {
					t.Errorf("the pool got %s: %q\n%s", name, v, head)
				}
			}
			if rec.Header.Get("Authorization") != "Bearer "+token || rec.Header.Get("X-Ms-Origin") != "https://app.contoso.com" || rec.Header.Get("Content-Type") == "" {
				t.Errorf("the pool did not get the headers the edge checked:\n%s", head)
			}
		})
	}
}

// FuzzCheckFraming holds checkFraming to what the reverse proxy does
// with a request it lets through: the proxy strips every header its
// Connection header names (as Caddy's removeConnectionHeaders reads it,
// with textproto.TrimString) and the hop-by-hop headers, and of those
// only the hop-by-hop ones may go missing; no header the edge checked
// (Authorization, Content-Type, X-Ms-Origin, or any other end-to-end one)
// may. Conversely a request whose Connection names only keep-alive or
// close and that has no Trailer, Upgrade or method override is let
// through.
func FuzzCheckFraming(f *testing.F) {
	for _, seed := range [][2]string{{"keep-alive", "X-Custom"}, {"close, Authorization", "Accept"}, {"keep-alive,\tauthorization ", "Te"},
		{"Keep-Alive, ,close", "Trailer"}, {"\u00a0keep-alive", "Upgrade"}, {"x-ms-origin", "X-Http-Method-Override"}, {",", "content-type"}} {
		f.Add(seed[0], seed[1], "v")
	}
	hop := map[string]bool{}
	for _, h := range []string{"Alt-Svc", "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade"} {
		hop[h] = true
	}
	f.Fuzz(func(t *testing.T, connection, name, value string) {
		h := http.Header{"Authorization": {"Bearer x"}, "Content-Type": {"application/json"}, "X-Ms-Origin": {"https://client.example"}}
		h.Add("Connection", connection)
		if isToken(name) {
			h.Add(name, value)
		}
		e := checkFraming(ucwa.ReadHeader(h), nil)
		if e == nil {
			forwarded := h.Clone()
			for _, v := range forwarded["Connection"] {
				for token := range strings.SplitSeq(v, ",") {
					if token = textproto.TrimString(token); token != "" {
						forwarded.Del(token)
					}
				}
			}
			for k, v := range h {
				if !hop[k] && !slices.Equal(forwarded[k], v) {
					t.Fatalf("Connection %q, %s: %q: passed, but the proxy would forward %s as %q", connection, name, value, k, forwarded[k])
				}
			}
			return
		}
		plain := true
		for token := range strings.SplitSeq(connection, ",") {
			token = textproto.TrimString(token)
			plain = plain && (token == "" || strings.EqualFold(token, "keep-alive") || strings.EqualFold(token, "close"))
		}
		switch http.CanonicalHeaderKey(name) {
		case "Trailer", "Upgrade", "X-Http-Method-Override", "X-Http-Method", "X-Method-Override", "Connection":
			plain = plain && !isToken(name)
		}
		if plain {
			t.Fatalf("Connection %q, %s: %q: refused (%s)", connection, name, value, e.Message)
		}
	})
}

// TestOpaqueTarget: an HTTP/1.1 request target that is a URL without
// "//" after its scheme (POST http:http://pool/ucwa/.../startPhoneAudio)
// is one Go's server reads as a URL with no path, only an opaque part,
// which names no operation by its path; reverse_proxy would write the
// opaque part as the request target it sends (POST
// http://pool/ucwa/.../startPhoneAudio), an absolute-form target a pool
// routes by its path, unjudged. Such a target is no http(s) URL a client
// sends; the edge refuses every one as a near miss (404), whatever it
// names, and neither the pool nor the next handler gets anything. An
// absolute-form target with "//" has a path the edge judges.
func TestOpaqueTarget(t *testing.T) {
	k := testkit.Keys(t)
	t.Setenv("UCWA_TEST_JWT_SECRET", string(k.HMAC))
	token := testkit.Mint(t, jwt.SigningMethodHS256, k.HMAC, "", testkit.Claims(time.Now(), jwt.MapClaims{"scp": "Conversations.Initiate"}))
	pool := testkit.NewRawUpstream(t)
	next := testkit.NewRawUpstream(t)
	e := startEdge(t, "caddyfile", fmt.Sprintf(`:EDGE_PORT {
	ucwa {
		jwt {
			algorithms HS256
			hmac_secret {env.UCWA_TEST_JWT_SECRET}
		}
		default_region US
		destinations {
			deny +1900
		}
		primary %s
	}
	reverse_proxy %s
}`, pool.Addr(), next.Addr()))
	addr := testkit.Addr(e.Port("EDGE_PORT"))
	const body = `{"to":"tel:+19005551234"}`
	for _, tc := range []struct {
		method, target string
		token          bool
		status         int // 404: a near miss; else the edge's answer to a request it judged
	}{
		{"POST", "http:http://pool" + startPath, false, http.StatusNotFound},
		{"POST", "HTTP:http://pool" + startPath, false, http.StatusNotFound},
		{"POST", "x:http://pool" + startPath, false, http.StatusNotFound},
		{"POST", "https:https://pool" + startPath + "?to=tel:%2B19005551234", false, http.StatusNotFound},
		{"POST", "http:ucwa/v1/applications/192/communication/startPhoneAudio", false, http.StatusNotFound},
		{"POST", "http:..%2F" + startPath, false, http.StatusNotFound},
		{"GET", "http:http://pool/ucwa/v1/applications/192/me", false, http.StatusNotFound},
		// With "//", the path is the edge's to judge.
		{"POST", "http://pool" + startPath, false, http.StatusUnauthorized},
		{"POST", "http://pool" + startPath, true, http.StatusForbidden},
	} {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			beforePool, beforeNext := len(pool.Received()), len(next.Received())
			head := tc.method + " " + tc.target + " HTTP/1.1\r\nHost: edge.contoso.com\r\nContent-Type: application/json\r\n"
			if tc.token {
				head += "Authorization: Bearer " + token + "\r\n"
			}
			resp := testkit.SendRaw(t, addr, head+"Content-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
			if resp.Status != tc.status {
				t.Errorf("status %d (%s), want %d", resp.Status, resp.Body, tc.status)
			} else if tc.status == http.StatusNotFound {
				assertUCWAError(t, resp, "NotFound", "", nil, false)
			}
			for name, got := range map[string][]testkit.RawRequest{"pool": pool.Received()[beforePool:], "next handler": next.Received()[beforeNext:]} {
				for _, r := range got {
					t.Errorf("the %s got %q", name, strings.SplitN(r.Raw, "\r\n", 2)[0])
				}
			}
		})
	}
}
