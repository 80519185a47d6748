package caddymodule

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestAccessLogHidesHeaders: with the README's log filters,
// through a real Caddy at debug level, a request that carries a body in
// a Data header (where batch.js puts a batched POST's) or names another
// URL for itself in X-Original-URL or X-Rewrite-URL (with a number in its
// query), refused by the edge or passed on untouched, leaves the number
// in no log line: Caddy's access log records every request header but
// Authorization and Cookie, and its default log a request's headers too.
// The URL headers are still logged, their property values REDACTED. A
// web ticket leaves no log line either. Each is hidden also when its name
// is spelled with '_' or '.' for '-' (X_MS_WEBTICKET, as IIS reads it
// too), which Caddy drops from the request but its access log records.
func TestAccessLogHidesHeaders(t *testing.T) {
	pool := testkit.NewPool(t, "primary", func(p *testkit.Pool, w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
	})
	e := startEdge(t, "caddyfile", readmeLoggedConfig(t, "jwt off\n\t\tdefault_region US\n\t\tprimary "+pool.Addr()))
	const (
		app    = "/ucwa/oauth/v1/applications/104"
		start  = app + "/communication/startPhoneAudio"
		search = app + "/people/search"
	)
	for _, tc := range []struct {
		name, method, path, header, value string
		number                            string // its national digits
		status                            int
		logged                            string // the header as the access log has it; "" for none
	}{
		{name: "a body in Data, refused", method: http.MethodPost, path: start, header: "Data", value: `{"to":"tel:+14255550181"}`,
			number: "4255550181", status: http.StatusBadRequest},
		{name: "a body in Data, passed on", method: http.MethodGet, path: search + "?limit=2", header: "Data", value: `{"to":"sip:+14255550182@contoso.com;user=phone"}`,
			number: "4255550182", status: http.StatusOK},
		{name: "X-Original-URL, refused", method: http.MethodPost, path: start, header: "X-Original-Url", value: start + "?to=tel:%2B14255550183",
			number: "4255550183", status: http.StatusBadRequest, logged: `"X-Original-Url":["` + start + `?to=REDACTED"]`},
		{name: "X-Rewrite-URL, passed on", method: http.MethodGet, path: search + "?limit=4", header: "X-Rewrite-Url", value: search + "?query=%2B14255550184&limit=5",
			number: "4255550184", status: http.StatusOK, logged: `"X-Rewrite-Url":["` + search + `?query=REDACTED&limit=5"]`},
		{name: "X_ORIGINAL_URL, passed on", method: http.MethodGet, path: search + "?limit=6", header: "X_ORIGINAL_URL", value: search + "?query=%2B14255550186",
			number: "4255550186", status: http.StatusOK, logged: `"X_original_url":["` + search + `?query=REDACTED"]`},
		{name: "x.rewrite.url, passed on", method: http.MethodGet, path: search + "?limit=7", header: "x.rewrite.url", value: "/call/14255550187",
			number: "4255550187", status: http.StatusOK, logged: `"X.rewrite.url":["/call/1425555****"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := testkit.Request{Method: tc.method, URL: tc.path, Header: http.Header{tc.header: {tc.value}}}
			if tc.method == http.MethodPost {
				req.ContentType, req.Body = "application/json", `{"to":"sip:john@contoso.com"}`
			}
			if resp := e.send(req); resp.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.Status, tc.status, resp.Body)
			}
			want := []string{`"logger":"http.log.access.`, `"uri":"` + tc.path + `"`, `"remote_port":"`}
			if tc.logged != "" {
				want = append(want, tc.logged)
			}
			line := e.Logs().Wait(t, want...)
			if tc.logged == "" && strings.Contains(line, `"`+tc.header+`":`) {
				t.Errorf("the access log line has %s: %s", tc.header, line)
			}
			for l := range strings.Lines(withoutTimings(e.Logs().String())) {
				if strings.Contains(asASCIIDigits(l), tc.number[3:]) {
					t.Errorf("a log line holds the number %s: %s", tc.number, l)
				}
			}
		})
	}
	for i, name := range []string{"X-Ms-Webticket", "X_MS_WEBTICKET", "x.ms.webticket", "X-Ms_WebTicket", "DATA"} {
		t.Run(name, func(t *testing.T) {
			path := search + "?limit=" + strconv.Itoa(10+i)
			ticket := "cwt=AAEBHAAAWebTicketSecret" + strconv.Itoa(i)
			if resp := e.send(testkit.Request{Method: http.MethodGet, URL: path, Header: http.Header{name: {ticket}}}); resp.Status != http.StatusOK {
				t.Fatalf("status %d: %s", resp.Status, resp.Body)
			}
			e.Logs().Wait(t, `"logger":"http.log.access.`, `"uri":"`+path+`"`)
			for l := range strings.Lines(e.Logs().String()) {
				if strings.Contains(l, ticket) {
					t.Errorf("a log line holds the web ticket: %s", l)
				}
			}
		})
	}
}
