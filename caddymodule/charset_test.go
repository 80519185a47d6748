package caddymodule

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/text/encoding/charmap"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// ebcdic percent-encodes s in IBM037 (EBCDIC), as a client would write a
// query for a pool told to read it in that character set.
func ebcdic(t *testing.T, s string) string {
	t.Helper()
	b, err := charmap.CodePage037.NewEncoder().Bytes([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for _, c := range b {
		fmt.Fprintf(&out, "%%%02X", c)
	}
	return out.String()
}

// TestRequestCharset: System.Web decodes a request's query (and a body it
// reads by ContentEncoding) in the character set that
// x-up-devcap-post-charset names (for a User-Agent "UP...") or else the
// Content-Type's charset, with a body or without one. The edge reads
// UTF-8: in EBCDIC, the bytes of an unknown name of no UTF-8 to the edge
// are "to" or "phoneNumber" to such a pool, with a number the edge never
// judged. A request, a batch or a batched request that names a character
// set other than UTF-8 is refused and not delivered; UTF-8 named passes.
func TestRequestCharset(t *testing.T) {
	e := startGuardEdge(t, "destinations {\n\t\t\tdeny +1900\n\t\t}")
	auth := callerBearer(t)
	header := func(kv ...string) http.Header {
		h := http.Header{"Authorization": {auth}}
		for i := 0; i < len(kv); i += 2 {
			h[kv[i]] = []string{kv[i+1]}
		}
		return h
	}
	// The query a pool reading EBCDIC takes as to=tel:+19005551234, and
	// the edge as to=sip:bob@contoso.com and a name it does not know.
	hidden := startOpsPath + "?to=sip%3Abob%40contoso.com&" + ebcdic(t, "to") + "=" + ebcdic(t, "tel:+19005551234")
	escalate := opsApp + "/communication/conversations/c1/audioVideo/escalateAudio?operationId=op1&sessionContext=s1"
	batchPart := func(extra string) string {
		return batchBody("POST " + hidden + " HTTP/1.1\r\n" + extra)
	}
	for _, tc := range []struct {
		name    string
		req     testkit.Request
		status  int
		message string // part of the refusal's message
	}{
		{"x-up-devcap-post-charset from a UP browser", testkit.Request{Method: "POST", URL: hidden,
			Header: header("User-Agent", "UP.Browser/6.2", "X-Up-Devcap-Post-Charset", "ibm037")}, 400, "x-up-devcap-post-charset"},
		{"x-up-devcap-post-charset from any User-Agent", testkit.Request{Method: "POST", URL: hidden,
			Header: header("X-Up-Devcap-Post-Charset", "ibm037")}, 400, "x-up-devcap-post-charset"},
		{"x-up-devcap-post-charset utf-8", testkit.Request{Method: "POST", URL: startOpsPath + "?to=sip%3Abob%40contoso.com",
			Header: header("X-Up-Devcap-Post-Charset", "utf-8")}, 400, "x-up-devcap-post-charset"},
		{"no body, a Content-Type in EBCDIC", testkit.Request{Method: "POST", URL: hidden, ContentType: "application/json; charset=ibm037",
			Header: header()}, 415, "character set"},
		{"no body, a Content-Type of another type in EBCDIC, quoted", testkit.Request{Method: "POST", URL: hidden, ContentType: `text/plain; charset="IBM037"`,
			Header: header()}, 415, "character set"},
		{"no body, a Content-Type that does not parse, naming a charset", testkit.Request{Method: "POST", URL: hidden, ContentType: "application/json; charset=ibm037; x",
			Header: header()}, 415, "character set"},
		{"no body, a Content-Type in UTF-8", testkit.Request{Method: "POST", URL: startOpsPath + "?to=sip%3Abob%40contoso.com",
			ContentType: "application/json; charset=utf-8", Header: header()}, 201, ""},
		{"no body, a Content-Type without a charset", testkit.Request{Method: "POST", URL: startOpsPath + "?to=sip%3Abob%40contoso.com",
			ContentType: "application/x-www-form-urlencoded", Header: header()}, 201, ""},
		{"an SDP body in EBCDIC", testkit.Request{Method: "POST", URL: escalate + "&" + ebcdic(t, "access_token") + "=x",
			ContentType: "application/sdp; charset=ibm037", Body: "v=0\r\n", Header: header()}, 415, "application/sdp"},
		{"an SDP body in UTF-8", testkit.Request{Method: "POST", URL: escalate,
			ContentType: "application/sdp; charset=UTF-8", Body: "v=0\r\n", Header: header()}, 201, ""},
		{"a batch in EBCDIC", testkit.Request{URL: opsApp + "/batch", ContentType: batchType + "; charset=ibm037",
			Body: batchPart(""), Header: header()}, 415, "UTF-8"},
		{"a batched request with x-up-devcap-post-charset", testkit.Request{URL: opsApp + "/batch", ContentType: batchType,
			Body: batchPart("User-Agent: UP.Browser/6.2\r\nx-up-devcap-post-charset: ibm037\r\n"), Header: header()}, 400, "Batch part 1: The request names a character set in x-up-devcap-post-charset"},
		// Caddy drops a request's own header names with '_' (its
		// expected_underscore_headers), not those of a batched request.
		{"a batched request with x_up_devcap_post_charset (IIS reads it as x-up-devcap-post-charset)", testkit.Request{URL: opsApp + "/batch", ContentType: batchType,
			Body: batchPart("User-Agent: UP.Browser/6.2\r\nx_up_devcap_post_charset: ibm037\r\n"), Header: header()}, 400, "Batch part 1: The request names a character set in x-up-devcap-post-charset"},
		{"a batched request without a body, its Content-Type in EBCDIC", testkit.Request{URL: opsApp + "/batch", ContentType: batchType,
			Body: batchPart("Content-Type: application/json; charset=ibm037\r\n"), Header: header()}, 415, "Batch part 1: The request's Content-Type names a character set other than UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.pool.Received())
			resp := e.send(tc.req)
			if resp.Status != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.Status, resp.Body, tc.status)
			}
			got := len(e.pool.Received()) - before
			if tc.status != http.StatusCreated {
				if got != 0 {
					t.Errorf("the pool got %d requests, want none", got)
				}
				if msg := ucwaError(t, resp.Body).Message; !strings.Contains(msg, tc.message) {
					t.Errorf("message %q, want one with %q", msg, tc.message)
				}
				return
			}
			if got != 1 {
				t.Errorf("the pool got %d requests, want 1", got)
			}
		})
	}
}

// TestOtherCharsetAnsweredInFormat: an XML body in a character set other
// than UTF-8 is refused 415 in XML, the request's format.
func TestOtherCharsetAnsweredInFormat(t *testing.T) {
	e := startGuardEdge(t, "")
	for _, ct := range []string{"application/xml; charset=iso-8859-1", "application/vnd.microsoft.com.ucwa+xml; charset=utf-16"} {
		resp := e.send(testkit.Request{URL: startOpsPath, ContentType: ct, Header: http.Header{"Authorization": {callerBearer(t)}},
			Body: `<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="to">sip:bob@contoso.com</property></input>`})
		if resp.Status != http.StatusUnsupportedMediaType {
			t.Fatalf("%s: status %d, want 415", ct, resp.Status)
		}
		assertUCWAError(t, resp, "UnsupportedMediaType", "UnsupportedMediaType", nil, true)
	}
}
