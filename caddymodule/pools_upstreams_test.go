package caddymodule

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// TestPoolOtherUpstreams: a pool is several front-end servers. A request
// that certainly did not reach the one reverse_proxy chose (its
// connections refused, or closed before the body went out) goes to
// another of the pool's upstreams before the backup or the 410, whatever
// the lb_policy and without lb_retries, each upstream at most once; one
// that may have reached it (reset after the request was read) is never
// sent to another.
func TestPoolOtherUpstreams(t *testing.T) {
	for _, tt := range otherUpstreamsCases {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, namedUpstreams) })
	}
}

// otherUpstreamsRequests is how many requests each case of
// otherUpstreamsCases sends.
const otherUpstreamsRequests = 20

// otherUpstreamsCase is a pool of several upstreams, each up or failing
// its own way, and what becomes of the requests sent to it.
type otherUpstreamsCase struct {
	name string
	// upstreams are the primary's, in order: down (connections
	// refused), up, reset (after reading the request), head (closes
	// the connection once the request's head arrived, before its
	// body went out).
	upstreams []string
	block     string // the primary's subdirectives
	backup    bool
	// wantStatus for every request; wantReceived the requests each
	// upstream received whole (none for one down), wantHeads the
	// heads alone each had, wantBackup the backup's.
	wantStatus              int
	wantSubcode             string
	wantReceived, wantHeads []int
	wantBackup              int
	wantFailovers, wantGone int
	wantAnswered            int // the primary's answered attempts
	wantUnavailable         int // the primary's unavailable attempts, when not 0
	wantFailed              int // the primary's failed attempts
	// wantCookie: the upstream (1 for the first) whose sticky cookie
	// of lb_policy cookie each answer sets
	wantCookie int
}

var otherUpstreamsCases = func() []otherUpstreamsCase {
	const requests = otherUpstreamsRequests
	return []otherUpstreamsCase{
		// A pool of one front end: up, down, or failing after the
		// request may have reached it.
		{name: "one up", upstreams: []string{"up"},
			wantStatus: 201, wantReceived: []int{requests}, wantAnswered: requests},
		{name: "one down, backup", upstreams: []string{"down"}, backup: true,
			wantStatus: 201, wantBackup: requests, wantFailovers: requests, wantUnavailable: requests},
		{name: "one down, no backup", upstreams: []string{"down"},
			wantStatus: 410, wantSubcode: ucwa.SubcodeCannotRedirect, wantGone: requests, wantUnavailable: requests},
		{name: "one closes before the body, backup", upstreams: []string{"head"}, backup: true,
			wantStatus: 201, wantReceived: []int{0}, wantHeads: []int{requests}, wantBackup: requests,
			wantFailovers: requests, wantUnavailable: requests},
		{name: "one resets after reading the request, backup", upstreams: []string{"reset"}, backup: true,
			wantStatus: 502, wantSubcode: ucwa.SubcodeServiceFailure, wantReceived: []int{requests}, wantFailed: requests},
		{name: "random, fe1 down, no backup", upstreams: []string{"down", "up"},
			wantStatus: 201, wantReceived: []int{0, requests}, wantAnswered: requests},
		{name: "random, fe1 down, backup", upstreams: []string{"down", "up"}, backup: true,
			wantStatus: 201, wantReceived: []int{0, requests}, wantAnswered: requests},
		{name: "first, fe1 down, no backup", upstreams: []string{"down", "up"}, block: "lb_policy first",
			wantStatus: 201, wantReceived: []int{0, requests}, wantAnswered: requests, wantUnavailable: requests},
		{name: "first, fe1 down, backup", upstreams: []string{"down", "up"}, block: "lb_policy first", backup: true,
			wantStatus: 201, wantReceived: []int{0, requests}, wantAnswered: requests, wantUnavailable: requests},
		{name: "round_robin, fe1 down, no backup", upstreams: []string{"down", "up"}, block: "lb_policy round_robin",
			wantStatus: 201, wantReceived: []int{0, requests}, wantAnswered: requests},
		{name: "round_robin, fe1 down, backup", upstreams: []string{"down", "up"}, block: "lb_policy round_robin", backup: true,
			wantStatus: 201, wantReceived: []int{0, requests}, wantAnswered: requests},
		{name: "cookie, fe1 down, backup", upstreams: []string{"down", "up"}, block: "lb_policy cookie", backup: true,
			wantStatus: 201, wantReceived: []int{0, requests}, wantAnswered: requests, wantCookie: 2},
		{name: "weighted_round_robin 1 1, fe1 down, backup", upstreams: []string{"down", "up"}, block: "lb_policy weighted_round_robin 1 1", backup: true,
			wantStatus: 201, wantReceived: []int{0, requests}, wantAnswered: requests},
		// fe2's weight 0 takes it out of the pool: the request goes to
		// the backup, not to fe2.
		{name: "weighted_round_robin 1 0, fe1 down, backup", upstreams: []string{"down", "up"}, block: "lb_policy weighted_round_robin 1 0", backup: true,
			wantStatus: 201, wantReceived: []int{0, 0}, wantBackup: requests, wantFailovers: requests, wantUnavailable: requests},
		{name: "random, fe1 down, health checks, backup", upstreams: []string{"down", "up"}, block: "health_uri /health", backup: true,
			wantStatus: 201, wantReceived: []int{0, requests}, wantAnswered: requests},
		// Held back or not once it failed, fe1 never has a request: the
		// case asks nothing of how long. Caddy keeps a dynamic upstream's
		// failures by address past the test, for the port's next user.
		{name: "first, fe1 down, fail_duration, backup", upstreams: []string{"down", "up"}, block: "lb_policy first\n\t\t\tfail_duration 2s", backup: true,
			wantStatus: 201, wantReceived: []int{0, requests}, wantAnswered: requests},
		{name: "first, fe1 down, lb_retries, backup", upstreams: []string{"down", "up"}, block: "lb_policy first\n\t\t\tlb_retries 1", backup: true,
			wantStatus: 201, wantReceived: []int{0, requests}, wantAnswered: requests, wantUnavailable: requests},
		{name: "first, fe1 and fe2 down, fe3 up, no backup", upstreams: []string{"down", "down", "up"}, block: "lb_policy first",
			wantStatus: 201, wantReceived: []int{0, 0, requests}, wantAnswered: requests, wantUnavailable: 2 * requests},
		// Each had each request's head once, and never its body: tried
		// once per request, not again.
		{name: "first, fe1 closes before the body, backup", upstreams: []string{"head", "up"}, block: "lb_policy first", backup: true,
			wantStatus: 201, wantReceived: []int{0, requests}, wantHeads: []int{requests, 0}, wantAnswered: requests, wantUnavailable: requests},
		{name: "first, all close before the body, backup", upstreams: []string{"head", "head", "head"}, block: "lb_policy first", backup: true,
			wantStatus: 201, wantReceived: []int{0, 0, 0}, wantHeads: []int{requests, requests, requests}, wantBackup: requests,
			wantFailovers: requests, wantUnavailable: 3 * requests},
		{name: "random, all close before the body, no backup", upstreams: []string{"head", "head", "head"},
			wantStatus: 410, wantSubcode: ucwa.SubcodeCannotRedirect, wantReceived: []int{0, 0, 0}, wantHeads: []int{requests, requests, requests},
			wantGone: requests, wantUnavailable: 3 * requests},
		{name: "random, both down, backup", upstreams: []string{"down", "down"}, backup: true,
			wantStatus: 201, wantBackup: requests, wantFailovers: requests, wantUnavailable: 2 * requests},
		{name: "random, both down, no backup", upstreams: []string{"down", "down"},
			wantStatus: 410, wantSubcode: ucwa.SubcodeCannotRedirect, wantGone: requests, wantUnavailable: 2 * requests},
		// It may have reached fe1, which may have rung the phone.
		{name: "first, fe1 resets after reading the request, backup", upstreams: []string{"reset", "up"}, block: "lb_policy first", backup: true,
			wantStatus: 502, wantSubcode: ucwa.SubcodeServiceFailure, wantReceived: []int{requests, 0}, wantFailed: requests},
		{name: "first, fe1 resets after reading the request, no backup", upstreams: []string{"reset", "up"}, block: "lb_policy first",
			wantStatus: 502, wantSubcode: ucwa.SubcodeServiceFailure, wantReceived: []int{requests, 0}, wantFailed: requests},
	}
}()

// run sends the case's requests through a real Caddy to a primary whose
// upstreams are the case's, in the case's order, found as from says
// (named by their addresses, or by dynamic upstream sources: see
// primaryPool), and checks
// what each upstream, the backup, the audit trail and the metrics saw.
func (tt otherUpstreamsCase) run(t *testing.T, from upstreamsFrom) {
	const requests = otherUpstreamsRequests
	fes := make([]*testkit.Pool, len(tt.upstreams))
	addrs := make([]string, len(tt.upstreams))
	for i, kind := range tt.upstreams {
		name := fmt.Sprintf("fe%d", i+1)
		switch kind {
		case "down":
			addrs[i] = testkit.DownAddr(t)
			continue
		case "up":
			fes[i] = testkit.NewPool(t, name, testkit.AnswerCreated)
		case "reset":
			fes[i] = testkit.NewPool(t, name, testkit.AnswerReset)
		case "head":
			fes[i] = testkit.NewPool(t, name, testkit.AnswerCreated)
			fes[i].SetEarly(func(_ *testkit.Pool, w http.ResponseWriter, _ *http.Request) bool {
				if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
					_ = conn.Close()
				}
				return true
			})
		default:
			t.Fatalf("unknown kind %q", kind)
		}
		addrs[i] = fes[i].Addr()
	}
	var (
		dns   *testkit.DNS
		pools string
		dials []string
	)
	if from == dynamicSRV {
		dns = testkit.NewDNS(t)
		pools, dials = srvPrimaryPool(t, dns, addrs, tt.block)
	} else {
		pools, dials = primaryPool(t, addrs, tt.block, from)
	}
	var backup *testkit.Pool
	if tt.backup {
		backup = testkit.NewPool(t, "backup", testkit.AnswerCreated)
		pools += "\t\tbackup " + backup.Addr() + "\n"
	}
	e := startEdge(t, "caddyfile", poolsCaddyfile(pools), testkit.WithAdmin())

	wantPool := "primary"
	switch {
	case tt.wantBackup > 0:
		wantPool = "backup"
	case tt.wantStatus == 410:
		wantPool = ""
	}
	for i := range requests {
		resp := e.startPhoneAudio(fmt.Sprintf("op-%d", i))
		if resp.Status != tt.wantStatus {
			t.Fatalf("request %d: status %d, want %d; body %s", i, resp.Status, tt.wantStatus, resp.Body)
		}
		if tt.wantSubcode != "" {
			if got := ucwaError(t, resp.Body); got.Subcode != tt.wantSubcode {
				t.Fatalf("request %d: subcode %q, want %q", i, got.Subcode, tt.wantSubcode)
			}
		}
		if got := resp.Header.Get("X-Ucwa-Pool"); got != "pool="+wantPool {
			t.Errorf("request %d: X-Ucwa-Pool %q, want pool=%s", i, got, wantPool)
		}
		if tt.wantCookie > 0 {
			// reverse_proxy's cookie: an HMAC of the upstream's dial
			// address, with an empty secret.
			mac := hmac.New(sha256.New, nil)
			mac.Write([]byte(dials[tt.wantCookie-1]))
			if got, want := resp.Header.Values("Set-Cookie"), "lb="+hex.EncodeToString(mac.Sum(nil))+";"; len(got) != 1 || !strings.HasPrefix(got[0], want) {
				t.Errorf("request %d: Set-Cookie %q, want fe%d's %s", i, got, tt.wantCookie, want)
			}
		}
	}
	// Every request received whole once at most, by one server.
	seen := map[string]string{}
	received := func(name string, p *testkit.Pool, want int) {
		t.Helper()
		got := p.OperationIDs()
		if len(got) != want {
			t.Errorf("%s received %d requests, want %d", name, len(got), want)
		}
		for _, op := range got {
			if other, ok := seen[op]; ok {
				t.Errorf("%s delivered twice: at %s and %s", op, other, name)
			}
			seen[op] = name
		}
	}
	for i, fe := range fes {
		if fe == nil {
			continue
		}
		received(fe.Name(), fe, tt.wantReceived[i])
		wantHeads := 0
		if tt.wantHeads != nil {
			wantHeads = tt.wantHeads[i]
		}
		if heads := fe.Arrived.Load() - fe.Requests.Load(); heads != int64(wantHeads) {
			t.Errorf("%s had %d heads alone, want %d", fe.Name(), heads, wantHeads)
		}
	}
	if backup != nil {
		received("backup", backup, tt.wantBackup)
	}
	// The audit trail names the pool that took each request.
	audited := 0
	for line := range strings.Lines(e.Logs().String()) {
		if !strings.Contains(line, `"msg":"guarded request"`) || !strings.Contains(line, fmt.Sprintf(`"status":%d`, tt.wantStatus)) {
			continue
		}
		if wantPool == "" && !strings.Contains(line, `"pool":`) || wantPool != "" && strings.Contains(line, `"pool":"`+wantPool+`"`) {
			audited++
		}
	}
	if audited != requests {
		t.Errorf("%d audit lines with status %d and pool %q, want %d", audited, tt.wantStatus, wantPool, requests)
	}
	if dns != nil {
		tt.checkLookups(t, dns, dials)
	}
	metrics := e.Metrics()
	for sample, want := range map[string]int{
		"caddy_ucwa_pool_failovers_total":                                   tt.wantFailovers,
		"caddy_ucwa_cannot_redirect_total":                                  tt.wantGone,
		`caddy_ucwa_pool_requests_total{outcome="answered",pool="primary"}`: tt.wantAnswered,
		`caddy_ucwa_pool_requests_total{outcome="failed",pool="primary"}`:   tt.wantFailed,
	} {
		if got := testkit.MetricValue(t, metrics, sample); got != float64(want) {
			t.Errorf("%s %v, want %d", sample, got, want)
		}
	}
	if tt.wantUnavailable != 0 {
		sample := `caddy_ucwa_pool_requests_total{outcome="unavailable",pool="primary"}`
		if got := testkit.MetricValue(t, metrics, sample); got != float64(tt.wantUnavailable) {
			t.Errorf("%s %v, want %d", sample, got, tt.wantUnavailable)
		}
	}
}

// checkLookups checks what the case's dynamic srv source and its pool's
// transport asked dns, whose records name the upstreams dialed at dials:
// the SRV question once, for the source's cache answers within refresh
// (see srvSource), the edge's later attempts at the pool included, unless
// lb_retries has reverse_proxy try again itself, which clears the
// source's cache first (once each request); and each upstream that
// received a request looked up by the transport, by its name.
func (tt otherUpstreamsCase) checkLookups(t *testing.T, dns *testkit.DNS, dials []string) {
	t.Helper()
	host, _, _ := net.SplitHostPort(dials[0])
	domain := "_ucwa._tcp." + strings.SplitN(host, ".", 2)[1]
	wantSRV := 1
	if strings.Contains(tt.block, "lb_retries") {
		wantSRV += otherUpstreamsRequests
	}
	if got := dns.Asked("SRV", domain); got != wantSRV {
		t.Errorf("SRV %s asked %d times, want %d", domain, got, wantSRV)
	}
	for i, received := range tt.wantReceived {
		host, _, _ := net.SplitHostPort(dials[i])
		if got := dns.Asked("A", host); received > 0 && got == 0 {
			t.Errorf("fe%d received requests at %s, never looked up", i+1, host)
		}
	}
}

// TestPoolOtherUpstreamsIdempotency: with idempotency, a request the
// pool's first upstream refused and its second answered is delivered
// once (its repeat is not sent again), and one no upstream of the pool
// took is released: its repeat is tried anew, not refused as taken;
// whether the upstreams are named or found by dynamic upstream sources
// (dynamic a, or dynamic srv).
func TestPoolOtherUpstreamsIdempotency(t *testing.T) {
	for _, tc := range []struct {
		name       string
		second     bool          // the pool's second upstream is up, else down too
		from       upstreamsFrom // where the upstreams come from
		wantStatus int
		wantRepeat int
	}{
		// jwt off: a repeat of a delivered request is refused (409),
		// never given the first answer.
		{"second upstream up", true, namedUpstreams, http.StatusCreated, http.StatusConflict},
		{"both down", false, namedUpstreams, http.StatusGone, http.StatusGone},
		{"dynamic, second upstream up", true, dynamicA, http.StatusCreated, http.StatusConflict},
		{"dynamic, both down", false, dynamicA, http.StatusGone, http.StatusGone},
		{"dynamic srv, second upstream up", true, dynamicSRV, http.StatusCreated, http.StatusConflict},
		{"dynamic srv, both down", false, dynamicSRV, http.StatusGone, http.StatusGone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			second := testkit.DownAddr(t)
			var fe2 *testkit.Pool
			if tc.second {
				fe2 = testkit.NewPool(t, "fe2", testkit.AnswerCreated)
				second = fe2.Addr()
			}
			primary, _ := primaryPool(t, []string{testkit.DownAddr(t), second}, "lb_policy first", tc.from)
			e := startEdge(t, "caddyfile", poolsCaddyfile("\t\tidempotency\n"+primary))
			if resp := e.startPhoneAudio("op-once"); resp.Status != tc.wantStatus {
				t.Fatalf("status %d, want %d; body %s", resp.Status, tc.wantStatus, resp.Body)
			}
			if resp := e.startPhoneAudio("op-once"); resp.Status != tc.wantRepeat {
				t.Errorf("the repeat: status %d, want %d; body %s", resp.Status, tc.wantRepeat, resp.Body)
			}
			if fe2 != nil {
				if got := fe2.OperationIDs(); len(got) != 1 {
					t.Errorf("fe2 received %v, want op-once once", got)
				}
			}
		})
	}
}

// TestPoolOtherUpstreamsAfterStaleConnections: a request that met
// 1+maxStaleConns kept-alive connections of one front end that ended
// before the front end took it (here fe1 resets each after the headers)
// counts that front end as unable to take it, as any upstream that
// certainly did not get it: it goes to the pool's other front end, fe2,
// once, and neither to the backup nor to the edge's 410 CannotRedirect
// while fe2 can take it.
func TestPoolOtherUpstreamsAfterStaleConnections(t *testing.T) {
	const idle = maxStaleConns + 2 // kept-alive connections to fe1 made beforehand
	for _, withBackup := range []bool{false, true} {
		t.Run(fmt.Sprintf("backup=%v", withBackup), func(t *testing.T) {
			fe1, reset := newStalePool(t, idle)
			fe2 := testkit.NewPool(t, "fe2", testkit.AnswerCreated)
			pools := expectOnEveryRequest + "\t\tprimary " + fe1.Addr() + " " + fe2.Addr() +
				" {\n\t\t\tlb_policy first\n\t\t\ttransport http {\n\t\t\t\texpect_continue_timeout 10m\n\t\t\t}\n\t\t}"
			var backup *testkit.Pool
			if withBackup {
				backup = testkit.NewPool(t, "backup", testkit.AnswerCreated)
				pools += "\n\t\tbackup " + backup.Addr() + waitForBody
			}
			e := startEdge(t, "caddyfile", poolsCaddyfile(pools), testkit.WithAdmin())

			warmStalePool(t, e, fe1, idle)

			reset.Store(idle)
			resp := e.startPhoneAudio("op-stale")
			if resp.Status != http.StatusCreated || resp.Header.Get("X-Ucwa-Pool") != "pool=primary" {
				t.Errorf("status %d from %q, want the primary's 201; body %s", resp.Status, resp.Header.Get("X-Ucwa-Pool"), resp.Body)
			}
			if got := countOp(fe1.OperationIDs(), "op-stale"); got != 0 {
				t.Errorf("fe1 received the request %d times, want none", got)
			}
			if got := countOp(fe2.OperationIDs(), "op-stale"); got != 1 {
				t.Errorf("fe2 received the request %d times, want once", got)
			}
			if backup != nil && len(backup.Received()) != 0 {
				t.Errorf("the backup received %d requests, want none", len(backup.Received()))
			}
			for sample, want := range map[string]float64{
				`caddy_ucwa_pool_requests_total{outcome="stale_connection",pool="primary"}`: 1 + maxStaleConns,
				`caddy_ucwa_pool_requests_total{outcome="answered",pool="primary"}`:         idle + 1,
				"caddy_ucwa_pool_failovers_total":                                           0,
				"caddy_ucwa_cannot_redirect_total":                                          0,
			} {
				if got := e.Metric(sample); got != want {
					t.Errorf("%s %v, want %v", sample, got, want)
				}
			}
		})
	}
}

// TestPoolStaleConnectionsOfEachUpstream: each front end of a pool may
// meet 1+maxStaleConns kept-alive connections that ended before it took
// the request, not the pool as a whole: an appliance that drops idle
// flows drops those of every front end. Here fe1's kept-alive
// connections all reset after the headers and fe2's first three: the
// request goes out on fe2's fourth, once, where a count kept across the
// pool would have answered 410 CannotRedirect at fe2's first.
func TestPoolStaleConnectionsOfEachUpstream(t *testing.T) {
	const idle = maxStaleConns + 2 // kept-alive connections to each front end made beforehand
	var fe1Warm sync.WaitGroup
	fe1Warm.Add(idle)
	var fe1Closed atomic.Bool // fe1 resets every new connection: the warm-up goes to fe2
	fe1Closed.Store(true)
	fe1Reset := new(atomic.Int64)
	fe1 := newRawPool(t, func(_ *http.Request, nth int) rawAction {
		switch {
		case fe1Closed.Load():
			return rawReset
		case nth == 0:
			fe1Warm.Done()
			fe1Warm.Wait()
			return rawServe
		case fe1Reset.Add(-1) >= 0:
			return rawReset
		}
		return rawServe
	})
	fe2, fe2Reset := newStalePool(t, idle)
	pools := expectOnEveryRequest + "\t\tprimary " + fe1.Addr() + " " + fe2.Addr() +
		" {\n\t\t\tlb_policy first\n\t\t\ttransport http {\n\t\t\t\texpect_continue_timeout 10m\n\t\t\t}\n\t\t}"
	e := startEdge(t, "caddyfile", poolsCaddyfile(pools), testkit.WithAdmin())

	warmStalePool(t, e, fe2, idle)
	if got := fe1.Conns(); got != idle {
		t.Fatalf("the warm-up met fe1 on %d connections, want %d", got, idle)
	}
	fe1Closed.Store(false)
	warmStalePool(t, e, fe1, idle)

	fe1Reset.Store(idle)
	fe2Reset.Store(3)
	resp := e.startPhoneAudio("op-stale")
	if resp.Status != http.StatusCreated {
		t.Errorf("status %d, want fe2's 201; body %s", resp.Status, resp.Body)
	}
	if got := countOp(fe1.OperationIDs(), "op-stale"); got != 0 {
		t.Errorf("fe1 received the request %d times, want none", got)
	}
	if got := countOp(fe2.OperationIDs(), "op-stale"); got != 1 {
		t.Errorf("fe2 received the request %d times, want once", got)
	}
	if got, want := e.Metric(`caddy_ucwa_pool_requests_total{outcome="stale_connection",pool="primary"}`), float64(1+maxStaleConns+3); got != want {
		t.Errorf("stale connections %v, want %v", got, want)
	}
}
