package caddymodule

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// marker is the phone number put in every property; markerDigits are
// what no log line and no error body may hold, however the number was
// written.
const (
	marker       = "+19005551234"
	markerDigits = "9005551234"
)

// TestNoValueInLogs: with Caddy logging at DEBUG, the marker number goes
// into every property of every operation, through every error path the
// edge answers itself (tokens, methods, media types, sizes, bodies that do
// not parse, XML entities, queries, numbers and SIP URIs, batches and
// their parts, near misses) and through delivery: no line of the handler's
// (nor any other but the access log, whose request>uri a log filter
// masks) and no error body holds it.
func TestNoValueInLogs(t *testing.T) {
	e := startOpsEdge(t, "DEBUG", "max_body_size 4KiB")
	good := bearerFor(t, allScopes...)
	sent := 0
	send := func(req testkit.Request) {
		t.Helper()
		resp := e.send(req)
		sent++
		if strings.Contains(resp.Body, markerDigits) {
			t.Errorf("%s %s: the answer holds the number: %s", req.Method, req.URL, resp.Body)
		}
	}
	digits := strings.TrimPrefix(marker, "+")
	for _, op := range ucwa.DefaultOperations() {
		if op.Body == ucwa.BatchBody {
			continue
		}
		path := opPath(op.Paths[0])
		for i := range op.Properties {
			p := &op.Properties[i]
			name := p.Name
			bodies := map[string]string{ // content type -> bodies with the marker in p
				"application/json": `{"` + name + `":"` + marker + `"}`,
			}
			query := url.Values{name: {marker}}.Encode()
			if p.Type == ucwa.DataURLValue {
				bodies["application/json"] = `{"_links":{"` + name + `":{"href":"data:,` + marker + `"}}}`
			}
			withBody := func(auth, method, rawQuery, contentType, body string) testkit.Request {
				req := opRequest(&op, path, auth, rawQuery, nil)
				req.Method = method
				if body != "" || contentType != "" {
					req.ContentType, req.Body = contentType, body
				}
				return req
			}
			jsonBody := bodies["application/json"]
			// Tokens and methods.
			send(withBody("", op.Method, query, "application/json", jsonBody))
			send(withBody("Bearer "+marker, op.Method, query, "application/json", jsonBody))
			send(withBody(bearerFor(t, "Contacts.ReadWrite"), op.Method, query, "application/json", jsonBody))
			if op.Method == http.MethodPost { // another method on a PUT resource is a read or a write the edge passes
				send(withBody(good, "PATCH", query, "application/json", jsonBody))
			}
			// Media types, sizes, encodings.
			send(withBody(good, op.Method, "", "text/plain", marker))
			send(withBody(good, op.Method, "", "application/json", `{"`+name+`":"`+strings.Repeat(marker, 400)+`"}`))
			gz := withBody(good, op.Method, "", "application/json", jsonBody)
			gz.Header.Set("Content-Encoding", "gzip")
			send(gz)
			// The value where it belongs: delivered or refused.
			send(withBody(good, op.Method, "", "application/json", jsonBody))
			send(withBody(good, op.Method, "", "application/xml",
				`<`+op.XMLRoot+` xmlns="`+ucwa.Namespace+`"><property name="`+name+`">`+marker+`</property></`+op.XMLRoot+`>`))
			send(withBody(good, op.Method, "", "application/json", `{"`+name+`":"sip:`+marker+`@gw;maddr=evil.example"}`))
			send(withBody(good, op.Method, "", "application/json", `{"`+name+`":"tel:`+marker+`;phone-context=x"}`))
			send(withBody(good, op.Method, "", "application/json", `{"`+name+`":"`+marker+` garbage"}`))
			send(withBody(good, op.Method, "", "application/json", `{"`+name+`":"sip:john@contoso.com?Contact=`+marker+`"}`))
			// Bodies that do not parse.
			for _, b := range []string{
				`{"` + name + `":"` + marker + `"`, `{"` + name + `":` + marker + `}`, `{"` + name + `":` + digits + `x}`,
				`{"` + name + `":"` + marker + "\x01\"}", `{"` + name + `":"` + marker + `"}` + marker, `{"` + marker + `":1}`,
				`{"` + name + `":"` + marker + `","` + name + `":"` + marker + `"}`,
			} {
				send(withBody(good, op.Method, "", "application/json", b))
			}
			for _, b := range []string{
				`<property name="` + name + `">&T` + digits + `</property>`, `<property name="` + name + `">&#` + digits + `;</property>`,
				`<property name="` + name + `">` + marker + `</propert>`, `<property name="` + name + `">` + marker + `<` + digits + `/></property>`,
				`<property name="` + marker + `">1</property>`,
			} {
				send(withBody(good, op.Method, "", "application/xml", `<`+op.XMLRoot+` xmlns="`+ucwa.Namespace+`">`+b+`</`+op.XMLRoot+`>`))
			}
			// Queries the edge refuses. (One it accepts is delivered, and
			// reverse_proxy's own debug line shows the URI it sends.)
			for _, q := range []string{"%ZZ" + digits, url.QueryEscape(marker) + ";x", "%u002B" + digits} {
				send(withBody(good, op.Method, name+"="+q, "", ""))
			}
			send(withBody(good, op.Method, strings.ToUpper(name[:1])+name[1:]+"="+url.QueryEscape(marker), "", ""))
			if p.Type == ucwa.NumberValue || p.Type == ucwa.DestinationValue {
				send(withBody(good, op.Method, name+"="+url.QueryEscape(marker+" garbage"), "", ""))
			}
			// Batches and their parts.
			for _, part := range []string{
				"POST " + path + "?" + query + " HTTP/1.1\r\nContent-Type: application/json\r\n\r\n" + `{"` + name + `":"` + marker + ` garbage"}`,
				"POST " + path + " HTTP/1.1\r\nContent-Type: application/json\r\n\r\n" + `{"` + name + `":"` + marker + `"`,
				"POST " + path + " HTTP/1.1\r\nData: " + `{"` + name + `":"` + marker + `x"}` + "\r\n",
				"POST " + path + "/" + digits + " HTTP/1.1\r\n",
				"POST " + path + "?" + name + "=%" + digits + " HTTP/1.1\r\n",
				"POST /" + marker + " HTTP/1.0\r\n",
			} {
				send(testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Body: batchBody(part), Header: http.Header{"Authorization": {good}}})
				send(testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Body: batchBody(part)})
			}
		}
		// Near misses (a PUT resource has sub-resources: a segment after it
		// is no near miss).
		if op.Method != http.MethodPost {
			continue
		}
		for _, suffix := range []string{"/" + digits, "." + digits, "%E2%80%8B/" + digits} {
			send(testkit.Request{Method: "POST", URL: path + suffix + "?x=" + url.QueryEscape(marker), ContentType: "application/json", Body: `{"to":"` + marker + `"}`})
		}
	}
	t.Logf("%d requests", sent)
	lines := 0
	for line := range strings.Lines(e.Logs().String()) {
		var entry struct {
			Logger string `json:"logger"`
		}
		_ = json.Unmarshal([]byte(line), &entry)
		if strings.HasPrefix(entry.Logger, "http.log.access") {
			continue
		}
		lines++
		if strings.Contains(line, markerDigits) {
			t.Errorf("a log line holds the number: %s", line)
		}
	}
	// The test must have seen the handler's own lines.
	if logs := e.Logs().String(); lines < sent || !strings.Contains(logs, `"logger":"http.handlers.ucwa"`) || !strings.Contains(logs, "request rejected at the edge") {
		t.Fatalf("%d log lines for %d requests, none of the handler's rejections", lines, sent)
	}
}
