package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// resetLimit posts body to the admin endpoint's /ucwa/limits/reset.
func (e limitEdge) resetLimit(body string) testkit.Response {
	e.t.Helper()
	return e.limitsAdmin("reset", body)
}

// limitsAdmin posts body to the admin endpoint's /ucwa/limits/<action>.
func (e limitEdge) limitsAdmin(action, body string) testkit.Response {
	e.t.Helper()
	return testkit.Send(e.t, e.Client(), testkit.Request{Method: http.MethodPost, URL: e.AdminURL("/ucwa/limits/" + action), ContentType: "application/json", Body: body})
}

// showLimit posts body to the admin endpoint's /ucwa/limits/show and
// returns its answer, failing the test unless it is 200.
func (e limitEdge) showLimit(body string) limitShowAnswer {
	e.t.Helper()
	resp := e.limitsAdmin("show", body)
	var got limitShowAnswer
	if resp.Status != http.StatusOK || json.Unmarshal([]byte(resp.Body), &got) != nil {
		e.t.Fatalf("show %s: %d %s", body, resp.Status, resp.Body)
	}
	return got
}

// TestLimitShow: through a real Caddy's admin endpoint, with the memory
// store and with Redis, an administrator reads a caller's budget of a
// limit: whole before its calls; after them, no event left, when the
// next comes back and when the budget is whole; a show takes nothing (the
// caller is still refused, and the budget reads the same); after a
// reset, whole again. Two sites with one limit name and key but two
// counts hold one budget, shown under each; a budget of a client
// address is shown by its client_ip. A show writes no line of its own.
func TestLimitShow(t *testing.T) {
	alice, carol := caller{"tenant-1", "alice"}.header(t), caller{"tenant-1", "carol"}.header(t)
	whole := func(count int, per string) limitBudgetShow {
		return limitBudgetShow{Count: count, Per: per, Remaining: count, NextIn: "0s", WholeIn: "0s"}
	}
	for _, st := range limitStores {
		t.Run(st.name, func(t *testing.T) {
			storeConfig := st.config(t)
			e := startLimitEdge(t, storeConfig, "limit calls 2 per 1h")
			show := func(what, body string, want ...limitBudgetShow) {
				t.Helper()
				got := e.showLimit(body)
				var req limitAdminRequest
				if err := json.Unmarshal([]byte(body), &req); err != nil {
					t.Fatal(err)
				}
				if got.Limit != req.Limit || !slices.Equal(got.Budgets, want) {
					t.Fatalf("%s: %+v, want %+v", what, got, want)
				}
			}
			alicesBudget := `{"limit":"calls","key":"tenant-1/alice"}`
			show("before a call", alicesBudget, whole(2, "1h0m0s"))
			start := time.Now()
			for i, want := range []int{201, 201, 429} {
				if got := e.callOp("", alice).Status; got != want {
					t.Fatalf("call %d: %d, want %d", i+1, got, want)
				}
			}
			// The next event comes back 30 minutes after the first call,
			// the budget is whole an hour after the second: each less the
			// time since, rounded up to the second.
			spent := e.showLimit(alicesBudget)
			if len(spent.Budgets) != 1 {
				t.Fatalf("after the calls: %+v", spent)
			}
			b := spent.Budgets[0]
			next, err1 := time.ParseDuration(b.NextIn)
			wholeIn, err2 := time.ParseDuration(b.WholeIn)
			since := time.Since(start).Truncate(time.Second)
			if b.Count != 2 || b.Per != "1h0m0s" || b.Remaining != 0 || err1 != nil || err2 != nil ||
				next > 30*time.Minute || next < 30*time.Minute-since || wholeIn > time.Hour || wholeIn < time.Hour-since {
				t.Fatalf("after the calls, %v after the first: %+v", since, b)
			}
			if got := e.callOp("", alice).Status; got != http.StatusTooManyRequests {
				t.Fatalf("a call after the show: %d, want 429", got)
			}
			if again := e.showLimit(alicesBudget); again.Budgets[0].Remaining != 0 {
				t.Fatalf("shown again: %+v", again)
			}
			show("another caller's", `{"limit":"calls","key":"tenant-1/carol"}`, whole(2, "1h0m0s"))
			if resp := e.resetLimit(alicesBudget); resp.Status != http.StatusOK {
				t.Fatalf("reset: %d %s", resp.Status, resp.Body)
			}
			show("after the reset", alicesBudget, whole(2, "1h0m0s"))

			// Two sites on the store, whose limits named calls count 2 and
			// 5 of one budget; one of them with a limit keyed by a header
			// that this client does not send: the client address's budget.
			e.Load("caddyfile", limitCaddyfile(t, e.pool, storeConfig, "limit calls 2 per 1h", "limit by_header 1 per 1h key {http.request.header.X-Client}")+
				"\n"+strings.Replace(limitCaddyfile(t, e.pool, storeConfig, "limit calls 5 per 1h"), ":EDGE_PORT", ":OTHER_PORT", 1))
			if got := e.callOp("", carol).Status; got != http.StatusCreated {
				t.Fatalf("carol: %d", got)
			}
			// The budget keeps a time, 30 minutes on by the call at 2 per
			// 1h: one event left of 2 per 1h, two of 5 per 1h (the edge
			// warns of such a config).
			shown := e.showLimit(`{"limit":"calls","key":"tenant-1/carol"}`)
			slices.SortFunc(shown.Budgets, func(a, b limitBudgetShow) int { return a.Count - b.Count })
			if len(shown.Budgets) != 2 || shown.Budgets[0].Count != 2 || shown.Budgets[0].Remaining != 1 || shown.Budgets[1].Count != 5 || shown.Budgets[1].Remaining != 2 {
				t.Fatalf("carol's budget under two counts: %+v", shown)
			}
			if addr := e.showLimit(`{"limit":"by_header","client_ip":"127.0.0.1"}`); len(addr.Budgets) != 1 || addr.Budgets[0].Remaining != 0 {
				t.Fatalf("the client address's budget: %+v", addr)
			}
			if lines := e.Logs().Lines(`"logger":"admin.api.ucwa"`); len(lines) != 1 {
				t.Errorf("%d lines of the endpoint, want the reset's alone: %q", len(lines), lines)
			}
		})
	}
}

// TestLimitList: through a real Caddy's admin endpoint, the limits of
// the running config's handlers, by name: each definition once, with its
// key template (the default's too), what it counts, its store and how
// many handlers define it so; a reload lists the new config's alone; a
// config without limits lists none; a POST is refused.
func TestLimitList(t *testing.T) {
	e := startLimitEdge(t, "store memory")
	list := func() []limitDefinition {
		t.Helper()
		resp := testkit.Send(t, e.Client(), testkit.Request{URL: e.AdminURL("/ucwa/limits")})
		var got limitListAnswer
		if resp.Status != http.StatusOK || json.Unmarshal([]byte(resp.Body), &got) != nil || got.Limits == nil {
			t.Fatalf("list: %d %s", resp.Status, resp.Body)
		}
		return got.Limits
	}
	if got := list(); len(got) != 0 {
		t.Fatalf("without limits: %+v", got)
	}
	redis := testkit.StartRedis(t).URL()
	site := func(port string, subdirectives ...string) string {
		return "\n" + strings.Replace(limitCaddyfile(t, e.pool, subdirectives...), ":EDGE_PORT", ":"+port, 1)
	}
	e.Load("caddyfile", site("EDGE_PORT", "store memory", "limit calls 5 per 1h", "limit abroad 10 per 1d key {http.ucwa.tid} international")+
		site("OTHER_PORT", "store memory", "limit calls 2 per 1h")+
		site("THIRD_PORT", "store memory", "limit calls 2 per 1h")+
		site("FOURTH_PORT", "store redis "+redis, "limit calls 2 per 1h"))
	want := []limitDefinition{
		{Name: "abroad", Count: 10, Per: "24h0m0s", Key: "{http.ucwa.tid}", AppliesTo: "international", Store: "memory", Handlers: 1},
		{Name: "calls", Count: 2, Per: "1h0m0s", Key: DefaultLimitKey, Store: "memory", Handlers: 2},
		{Name: "calls", Count: 2, Per: "1h0m0s", Key: DefaultLimitKey, Store: "redis", Handlers: 1},
		{Name: "calls", Count: 5, Per: "1h0m0s", Key: DefaultLimitKey, Store: "memory", Handlers: 1},
	}
	if got := list(); !slices.Equal(got, want) {
		t.Fatalf("list:\n%+v\nwant\n%+v", got, want)
	}
	e.Load("caddyfile", limitCaddyfile(t, e.pool, "store memory", "limit calls 3 per 1m"))
	if got := list(); !slices.Equal(got, []limitDefinition{{Name: "calls", Count: 3, Per: "1m0s", Key: DefaultLimitKey, Store: "memory", Handlers: 1}}) {
		t.Fatalf("after a reload: %+v", got)
	}
	if resp := testkit.Send(t, e.Client(), testkit.Request{Method: http.MethodPost, URL: e.AdminURL("/ucwa/limits"), ContentType: "application/json", Body: `{}`}); resp.Status != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d %s, want 405", resp.Status, resp.Body)
	}
}

// TestLimitReset: through a real Caddy's admin endpoint, with the memory
// store and with Redis, an administrator makes one caller's budget of a
// limit whole again: the caller, refused 429, is delivered its calls
// again, and another caller's budget is left as it was. The answer counts
// the budgets found and those that were not whole; a budget of a client
// address (a key that expanded to nothing) is reset by its client_ip; two
// sites whose limit of one name and key share the store hold one budget,
// reset once. The log line names the limit, never the key's value.
func TestLimitReset(t *testing.T) {
	alice, bob, carol := caller{"tenant-1", "alice"}.header(t), caller{"tenant-1", "bob"}.header(t), caller{"tenant-1", "carol"}.header(t)
	for _, st := range limitStores {
		t.Run(st.name, func(t *testing.T) {
			storeConfig := st.config(t)
			e := startLimitEdge(t, storeConfig, "limit calls 2 per 1h")
			calls := func(who string, h http.Header, want ...int) {
				t.Helper()
				for i, status := range want {
					if got := e.callOp("", h).Status; got != status {
						t.Fatalf("%s, call %d: %d, want %d", who, i+1, got, status)
					}
				}
			}
			reset := func(body string, budgets, reset int) {
				t.Helper()
				resp := e.resetLimit(body)
				var got limitResetAnswer
				if resp.Status != http.StatusOK || json.Unmarshal([]byte(resp.Body), &got) != nil {
					t.Fatalf("reset %s: %d %s", body, resp.Status, resp.Body)
				}
				var req limitAdminRequest
				if err := json.Unmarshal([]byte(body), &req); err != nil {
					t.Fatal(err)
				}
				if want := (limitResetAnswer{Limit: req.Limit, Budgets: budgets, Reset: reset}); got != want {
					t.Fatalf("reset %s: %+v, want %+v", body, got, want)
				}
			}
			calls("alice", alice, 201, 201, 429)
			calls("bob", bob, 201)
			reset(`{"limit":"calls","key":"tenant-1/alice"}`, 1, 1)
			calls("alice after the reset", alice, 201, 201, 429)
			calls("bob, untouched", bob, 201, 429)
			reset(`{"limit":"calls","key":"tenant-1/carol"}`, 1, 0)
			if n := len(e.pool.Received()); n != 6 {
				t.Fatalf("the pool got %d calls, want 6", n)
			}

			// Two sites on the store, one of them with a limit keyed by a
			// header that this client does not send: the client address's
			// budget.
			e.Load("caddyfile", limitCaddyfile(t, e.pool, storeConfig, "limit calls 2 per 1h", "limit by_header 1 per 1h key {http.request.header.X-Client}")+
				"\n"+strings.Replace(limitCaddyfile(t, e.pool, storeConfig, "limit calls 2 per 1h"), ":EDGE_PORT", ":OTHER_PORT", 1))
			calls("carol", carol, 201, 429)
			reset(`{"limit":"by_header","client_ip":"127.0.0.1"}`, 1, 1)
			calls("carol after the address's reset", carol, 201)
			reset(`{"limit":"by_header","client_ip":"::ffff:127.0.0.1"}`, 1, 1)
			reset(`{"limit":"calls","key":"tenant-1/carol"}`, 1, 1)
			other := e.site(t, "OTHER_PORT")
			for i, want := range []int{201, 201, 429} {
				if got := other.send(limitRequest("/communication/startPhoneAudio", `{"to":"+14255551234"}`, carol)).Status; got != want {
					t.Fatalf("carol on the other site, call %d: %d, want %d", i+1, got, want)
				}
			}

			lines := e.Logs().Lines(`"logger":"admin.api.ucwa"`)
			if n := len(lines); n != 5 {
				t.Errorf("%d lines of the endpoint, want one for each reset, 5", n)
			}
			for _, line := range lines {
				if !strings.Contains(line, `"level":"info"`) || !strings.Contains(line, `"msg":"limit budgets reset"`) || !strings.Contains(line, `"limit":"`) {
					t.Errorf("a reset's line: %s", line)
				}
				for _, value := range []string{"alice", "carol", "127.0.0.1"} {
					if strings.Contains(line, value) {
						t.Errorf("a reset's line holds %q: %s", value, line)
					}
				}
			}
		})
	}
}

// TestLimitResetRefused: a reset or show the admin endpoint cannot do is
// answered with Caddy's admin error and what was wrong, resets nothing,
// and puts no value of its body in the log.
func TestLimitResetRefused(t *testing.T) {
	e := startLimitEdge(t, "store memory", "limit calls 1 per 1h")
	alice := caller{"tenant-1", "alice"}.header(t)
	if got := e.callOp("", alice).Status; got != http.StatusCreated {
		t.Fatalf("first call: %d", got)
	}
	for _, tc := range []struct {
		method, body string
		status       int
		message      string
	}{
		{http.MethodGet, "", http.StatusMethodNotAllowed, "method not allowed"},
		{http.MethodPost, "", http.StatusBadRequest, "reading the request"},
		{http.MethodPost, `{"limit":"calls","key":"tenant-1/alice"`, http.StatusBadRequest, "reading the request"},
		{http.MethodPost, `{"limit":"calls","caller":"tenant-1/alice"}`, http.StatusBadRequest, `unknown field "caller"`},
		{http.MethodPost, `{"limit":"calls","key":"tenant-1/alice"} {}`, http.StatusBadRequest, "more than one JSON object"},
		{http.MethodPost, `{"limit":"calls","key":"tenant-1/alice"} x`, http.StatusBadRequest, "more than one JSON object"},
		{http.MethodPost, `{"key":"tenant-1/alice"}`, http.StatusBadRequest, "the name of a limit is required"},
		{http.MethodPost, `{"limit":"calls"}`, http.StatusBadRequest, "give key"},
		{http.MethodPost, `{"limit":"calls","key":""}`, http.StatusBadRequest, "give its client_ip"},
		{http.MethodPost, `{"limit":"calls","key":"tenant-1/alice","client_ip":"127.0.0.1"}`, http.StatusBadRequest, "not both"},
		{http.MethodPost, `{"limit":"calls","client_ip":"127.0.0.300"}`, http.StatusBadRequest, "not an IP address"},
		{http.MethodPost, `{"limit":"calls","client_ip":"fe80::1%eth0"}`, http.StatusBadRequest, "not an IP address"},
		{http.MethodPost, `{"limit":"call","key":"tenant-1/alice"}`, http.StatusNotFound, `no handler of the running config has a limit named "call"`},
		// The audit line's sub alone, or a slash escaped as a tenant's:
		// no value of the default key, whose budget would read whole.
		{http.MethodPost, `{"limit":"calls","key":"alice"}`, http.StatusBadRequest, "a key without that slash names no caller's budget"},
		{http.MethodPost, `{"limit":"calls","key":"tenant-1\\/alice"}`, http.StatusBadRequest, "a key without that slash names no caller's budget"},
		{http.MethodPost, `{"limit":"calls","key":"` + strings.Repeat("a", maxLimitRequestBody) + `"}`, http.StatusBadRequest, "request body too large"},
	} {
		for _, action := range []string{"reset", "show"} {
			t.Run(fmt.Sprintf("%s %s %.40s", action, tc.method, tc.body), func(t *testing.T) {
				resp := testkit.Send(t, e.Client(), testkit.Request{Method: tc.method, URL: e.AdminURL("/ucwa/limits/" + action), ContentType: "application/json", Body: tc.body})
				var answer struct{ Error string }
				if resp.Status != tc.status || json.Unmarshal([]byte(resp.Body), &answer) != nil || !strings.Contains(answer.Error, tc.message) {
					t.Errorf("%d %s, want %d and an error holding %q", resp.Status, resp.Body, tc.status, tc.message)
				}
			})
		}
	}
	if got := e.callOp("", alice).Status; got != http.StatusTooManyRequests {
		t.Fatalf("after the refused resets: %d, want 429", got)
	}
	// Caddy logs each refusal's error: it holds no value of the body.
	e.Logs().Wait(t, `"logger":"admin.api"`, `"msg":"request error"`, `client_ip: not an IP address`)
	for _, value := range []string{"127.0.0.300", "tenant-1/alice"} {
		if lines := e.Logs().Lines(value); len(lines) > 0 {
			t.Errorf("the log holds %q: %s", value, lines[0])
		}
	}
}

// TestLimitShowKeyOfAnotherTemplate: a key without a slash is refused
// for a limit of the default key only, whose values all have one: a
// limit keyed by the tenant alone ({http.ucwa.tid}) shows the tenant's
// budget by its tid, while the default key's limit shows the caller's by
// tid/sub and refuses the sub alone, which an administrator reading the
// audit line's caller might give, rather than answer it whole.
func TestLimitShowKeyOfAnotherTemplate(t *testing.T) {
	e := startLimitEdge(t, "store memory", "limit calls 1 per 1h", "limit tenant 1 per 1h key {http.ucwa.tid}")
	alice := caller{"tenant-1", "alice"}.header(t)
	if got := e.callOp("", alice).Status; got != http.StatusCreated {
		t.Fatalf("first call: %d", got)
	}
	for _, body := range []string{`{"limit":"tenant","key":"tenant-1"}`, `{"limit":"calls","key":"tenant-1/alice"}`} {
		if got := e.showLimit(body); len(got.Budgets) != 1 || got.Budgets[0].Count != 1 || got.Budgets[0].Remaining != 0 {
			t.Errorf("show %s: %+v, want one budget with nothing left", body, got)
		}
	}
	for _, action := range []string{"show", "reset"} {
		resp := e.limitsAdmin(action, `{"limit":"calls","key":"alice"}`)
		var answer struct{ Error string }
		if resp.Status != http.StatusBadRequest || json.Unmarshal([]byte(resp.Body), &answer) != nil ||
			!strings.Contains(answer.Error, "names no caller's budget") || !strings.Contains(answer.Error, DefaultLimitKey) {
			t.Errorf("%s of the default key's limit by a sub alone: %d %s, want 400 naming the key's form", action, resp.Status, resp.Body)
		}
	}
	if got := e.callOp("", alice).Status; got != http.StatusTooManyRequests {
		t.Errorf("a call after the refused reset: %d, want 429", got)
	}
}

// TestLimitResetStoreDown: a reset while the Redis store does not
// answer is 503, with what failed and the advice to send it again, and
// an error line of the endpoint; so is a show, with what failed; each
// counts as a failed store call, and once Redis is back the same reset
// succeeds.
func TestLimitResetStoreDown(t *testing.T) {
	srv := testkit.StartRedis(t)
	e := startLimitEdge(t, "store redis "+srv.URL()+" {\n\t\t\ttimeout 5s\n\t\t}", "limit calls 1 per 1h")
	alice := caller{"tenant-1", "alice"}.header(t)
	if got := e.callOp("", alice).Status; got != http.StatusCreated {
		t.Fatalf("first call: %d", got)
	}
	srv.Kill()
	resp := e.resetLimit(`{"limit":"calls","key":"tenant-1/alice"}`)
	var answer struct{ Error string }
	if resp.Status != http.StatusServiceUnavailable || json.Unmarshal([]byte(resp.Body), &answer) != nil ||
		!strings.Contains(answer.Error, "0 of the limit's budgets reset, the others not: store: reset") || !strings.HasSuffix(answer.Error, "send the reset again") {
		t.Fatalf("a reset with Redis down: %d %s", resp.Status, resp.Body)
	}
	e.Logs().Wait(t, `"logger":"admin.api.ucwa"`, `"level":"error"`, `"msg":"limit budgets not all reset: a store failed"`, `"limit":"calls"`)
	resp = e.limitsAdmin("show", `{"limit":"calls","key":"tenant-1/alice"}`)
	if resp.Status != http.StatusServiceUnavailable || json.Unmarshal([]byte(resp.Body), &answer) != nil ||
		!strings.HasPrefix(answer.Error, "reading the limit's budgets: store: peek") {
		t.Fatalf("a show with Redis down: %d %s", resp.Status, resp.Body)
	}
	if got := e.Metric(`caddy_ucwa_store_errors_total{on_error="closed"}`); got != 2 {
		t.Errorf("store errors %v, want 2: the reset's and the show's", got)
	}
	srv.Restart()
	testkit.Eventually(t, "the reset to succeed once Redis is back", func() bool {
		return e.resetLimit(`{"limit":"calls","key":"tenant-1/alice"}`).Status == http.StatusOK
	})
}

// FuzzLimitReset posts any body to the reset and show endpoints' handlers, with no
// handler listed (its seeds name a limit no test has): it never panics, and answers 400 (a body it cannot
// read, or that names no budget) or 404 (a budget well named, of a limit
// no handler has), and a client_ip it takes is reset as an address, or
// over IPv6 a /64, that Caddy's client_ip can be.
func FuzzLimitReset(f *testing.F) {
	for _, body := range []string{
		`{"limit":"fuzzed","key":"tenant-1/alice"}`,
		`{"limit":"fuzzed","client_ip":"127.0.0.1"}`,
		`{"limit":"fuzzed","client_ip":"2001:db8::1"}`,
		`{"limit":"fuzzed","client_ip":"::ffff:10.0.0.1"}`,
		`{"limit":"fuzzed","key":""}`,
		`{"limit":"","key":"k"}`,
		`{"limit":"fuzzed","key":"k","client_ip":"127.0.0.1"}`,
		`{"limit":"fuzzed","key":null}`,
		`{"limit":"fuzzed"} trailing`,
		`[]`,
		``,
	} {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var req limitAdminRequest
		if json.Unmarshal([]byte(body), &req) == nil {
			if v, address, err := req.budget(); err == nil && address {
				if _, err := netip.ParseAddr(v); err != nil {
					if p, err := netip.ParsePrefix(v); err != nil || p.Bits() != 64 || !p.Addr().Is6() {
						t.Fatalf("client_ip %q reset as %q", req.ClientIP, v)
					}
				}
			}
		}
		for path, serve := range map[string]caddy.AdminHandlerFunc{"/ucwa/limits/reset": resetLimitBudgets, "/ucwa/limits/show": showLimitBudgets} {
			w := httptest.NewRecorder()
			err := serve(w, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)))
			var apiErr caddy.APIError
			if !errors.As(err, &apiErr) || apiErr.HTTPStatus != http.StatusBadRequest && apiErr.HTTPStatus != http.StatusNotFound {
				t.Fatalf("%s %q: %v (%d %s)", path, body, err, w.Code, w.Body)
			}
		}
	})
}
