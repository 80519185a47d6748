package caddymodule

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestRecycledStateStaysOwn: many concurrent requests, each with its
// own application, caller, number and operationId, through one edge that
// recycles body buffers, cleaned requests, audit records and answer
// recorders, and shares its number and token caches and its memory store.
// Every request is sent twice (the second a replay). Each delivery, each
// answer (the replay's too), each audit line and each access log line
// must carry its own request's values and no other's.
func TestRecycledStateStaysOwn(t *testing.T) {
	t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
	// The pool answers with what it received, so that an answer (and its
	// replay) names its own request.
	pool := testkit.NewPool(t, "echo", func(_ *testkit.Pool, w http.ResponseWriter, r *http.Request) {
		app := strings.Split(r.URL.Path, "/")[5]
		w.Header().Set("Location", "/ucwa/oauth/v1/applications/"+app+"/communication/invitations/x")
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, app+" "+r.Header.Get("Authorization"))
	})
	e := startEdge(t, "caddyfile", fmt.Sprintf(`:EDGE_PORT {
	log
	ucwa {
		`+opsJWT+`
		default_region US
		idempotency
		destinations
		primary %s
	}
}`, pool.Addr()))

	const callers, requests, workers = 8, 240, 16
	tokens := make([]string, callers)
	for c := range callers {
		tokens[c] = "Bearer " + testkit.Mint(t, jwt.SigningMethodHS256, testkit.Keys(t).HMAC, "",
			testkit.Claims(time.Now(), jwt.MapClaims{"scp": strings.Join(allScopes, " "),
				"sub": fmt.Sprintf("sub-%c", 'a'+c), "oid": fmt.Sprintf("oid-%c", 'a'+c), "tid": "tid-x"}))
	}
	letters := func(i int) string { return fmt.Sprintf("%c%c", 'a'+i/26, 'a'+i%26) }
	type request struct {
		app, token, sub, oid, exchange, contentType, body, cleaned string
		batch                                                      bool
	}
	reqs := make([]request, requests)
	for i := range reqs {
		c := i % callers
		exchange := fmt.Sprint(200 + i)
		id := "call-" + letters(i)
		r := request{app: "app" + letters(i), token: tokens[c], sub: fmt.Sprintf("sub-%c", 'a'+c), oid: fmt.Sprintf("oid-%c", 'a'+c), exchange: exchange}
		switch i % 4 {
		case 3: // a batch of one guarded part, normalized
			target := "/ucwa/oauth/v1/applications/app" + letters(i) + "/communication/startPhoneAudio"
			r.batch, r.contentType = true, batchType
			r.body = batchBody(innerPOST(target, "application/json", fmt.Sprintf(`{"to":"(425) %s-1234","operationId":"%s"}`, exchange, id)))
			r.cleaned = batchBody(innerPOST(target, "application/json", fmt.Sprintf(`{"to":"tel:+1425%s1234","operationId":"%s"}`, exchange, id)))
		case 0: // normalized: a new body
			r.contentType = "application/json"
			r.body = fmt.Sprintf(`{"to":"(425) %s-1234","operationId":"%s"}`, exchange, id)
			r.cleaned = fmt.Sprintf(`{"to":"tel:+1425%s1234","operationId":"%s"}`, exchange, id)
		case 1: // forwarded as it came
			r.contentType = "application/json"
			r.body = fmt.Sprintf(`{"to":"tel:+1425%s1234","operationId":"%s"}`, exchange, id)
			r.cleaned = r.body
		default:
			r.contentType = "application/xml"
			r.body = fmt.Sprintf(`<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="to">tel:+1425%s1234</property><property name="operationId">%s</property></input>`, exchange, id)
			r.cleaned = r.body
		}
		reqs[i] = r
	}
	path := func(r request) string {
		if r.batch {
			return "/ucwa/oauth/v1/applications/" + r.app + "/batch"
		}
		return "/ucwa/oauth/v1/applications/" + r.app + "/communication/startPhoneAudio"
	}
	// A batch's answer is not recorded: its repeat is refused 409.
	wantStatus := func(r request, round int) int {
		if r.batch && round == 1 {
			return http.StatusConflict
		}
		return http.StatusCreated
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for round := range 2 {
				for i := w; i < requests; i += workers {
					r := reqs[i]
					resp, err := testkit.Do(e.Client(), testkit.Request{URL: e.url(path(r)), ContentType: r.contentType, Body: r.body,
						Header: http.Header{"Authorization": {r.token}}})
					if err != nil {
						t.Error(err)
						return
					}
					want := r.app + " " + r.token
					if wantStatus(r, round) != http.StatusCreated {
						if resp.Status != wantStatus(r, round) {
							t.Errorf("request %d round %d: %d %q, want %d", i, round, resp.Status, resp.Body, wantStatus(r, round))
						}
					} else if resp.Status != http.StatusCreated || resp.Body != want ||
						!strings.Contains(resp.Header.Get("Location"), "/applications/"+r.app+"/") {
						t.Errorf("request %d round %d: %d %q Location %q, want 201 %q", i, round, resp.Status, resp.Body, resp.Header.Get("Location"), want)
					}
				}
			}
		})
	}
	wg.Wait()

	byApp := map[string]request{}
	for _, r := range reqs {
		byApp[r.app] = r
	}
	received := pool.Received()
	if len(received) != requests {
		t.Errorf("the pool received %d requests, want %d", len(received), requests)
	}
	for _, got := range received {
		app := strings.Split(got.Path, "/")[5]
		r, ok := byApp[app]
		switch {
		case !ok:
			t.Errorf("a delivery to an unknown application: %s", got.Path)
		case got.Body != r.cleaned:
			t.Errorf("%s: delivered %q, want %q", app, got.Body, r.cleaned)
		case got.Header.Get("Authorization") != r.token:
			t.Errorf("%s: delivered with another request's token", app)
		}
	}

	var audits int
	testkit.Eventually(t, "every audit line", func() bool {
		audits = len(auditLines(t, e.Logs().String()))
		return audits >= 2*requests
	})
	seen := map[string]int{}
	for _, a := range auditLines(t, e.Logs().String()) {
		r, ok := byApp[a.Application]
		seen[a.Application]++
		switch {
		case !ok:
			t.Errorf("an audit line of an unknown application: %+v", a)
		case a.Caller.Sub != r.sub || a.Caller.OID != r.oid:
			t.Errorf("%s: audit caller %+v, want %s/%s", a.Application, a.Caller, r.sub, r.oid)
		case len(a.Destinations) != 1 || !strings.HasPrefix(strings.TrimPrefix(a.Destinations[0].Destination, "tel:"), "+1425"+r.exchange):
			t.Errorf("%s: audit destinations %+v, want +1425%s****", a.Application, a.Destinations, r.exchange)
		case r.batch && (len(a.Parts) != 1 || a.Parts[0].OperationID != "call-"+strings.TrimPrefix(a.Application, "app")):
			t.Errorf("%s: audit parts %+v", a.Application, a.Parts)
		case !r.batch && a.OperationID != "call-"+strings.TrimPrefix(a.Application, "app"):
			t.Errorf("%s: audit operation_id %q", a.Application, a.OperationID)
		case a.Status != http.StatusCreated && a.Status != wantStatus(r, 1):
			t.Errorf("%s: audit status %d", a.Application, a.Status)
		}
	}
	for app, n := range seen {
		if n != 2 {
			t.Errorf("%s: %d audit lines, want 2", app, n)
		}
	}

	accessLines := 0
	for line := range strings.Lines(e.Logs().String()) {
		if !strings.Contains(line, `"http.log.access`) {
			continue
		}
		var l struct {
			UserID  string `json:"user_id"`
			Status  int    `json:"status"`
			Request struct {
				URI string `json:"uri"`
			} `json:"request"`
			Pool        string `json:"ucwa_pool"`
			Idempotency string `json:"ucwa_idempotency"`
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("an access log line is not JSON: %v: %s", err, line)
		}
		parts := strings.Split(l.Request.URI, "/")
		if len(parts) < 6 {
			continue
		}
		r, ok := byApp[parts[5]]
		if !ok {
			t.Errorf("an access log line of an unknown application: %s", line)
			continue
		}
		accessLines++
		if l.UserID != r.sub || l.Status != http.StatusCreated && l.Status != wantStatus(r, 1) {
			t.Errorf("%s: access log user_id %q status %d, want %q 201: %s", parts[5], l.UserID, l.Status, r.sub, line)
		}
	}
	if accessLines != 2*requests {
		t.Logf("%d access log lines, want %d", accessLines, 2*requests)
	}
}
