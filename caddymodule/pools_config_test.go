package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestPoolsJSON loads pools from JSON: two ucwa handlers of one
// configuration share the metrics, and the access log shows ucwa_pool.
func TestPoolsJSON(t *testing.T) {
	backup := testkit.NewPool(t, "backup", testkit.AnswerCreated)
	down := testkit.DownAddr(t)
	ucwaHandler := func(pools string) string {
		return `{"handler":"ucwa","jwt":{"off":true},"default_region":"US",` + pools + `}`
	}
	e := startEdge(t, "json", fmt.Sprintf(`{
	"apps": {"http": {"servers": {"edge": {
		"listen": [":EDGE_PORT"],
		"logs": {"default_logger_name": "edge"},
		"routes": [
			{"match": [{"path": ["/solo/*"]}], "handle": [%s]},
			{"handle": [%s]}
		]
	}}}}
}`,
		ucwaHandler(`"primary":{"upstreams":[{"dial":"`+down+`"}]}`),
		ucwaHandler(`"primary":{"upstreams":[{"dial":"`+down+`"}]},"backup":{"upstreams":[{"dial":"`+backup.Addr()+`"}]}`)),
		testkit.WithAdmin())

	resp := e.postJSON("/solo/ucwa/v1/applications/1/communication/startPhoneAudio", `{"to":"4255551234"}`, nil)
	if resp.Status != http.StatusGone {
		t.Fatalf("solo handler: %d %s, want 410", resp.Status, resp.Body)
	}
	resp = e.startPhoneAudio("op-json")
	if resp.Status != http.StatusCreated || len(backup.Received()) != 1 {
		t.Fatalf("with backup: %d %s, backup received %d", resp.Status, resp.Body, len(backup.Received()))
	}
	metrics := e.Metrics()
	for _, line := range []string{
		`caddy_ucwa_pool_requests_total{outcome="unavailable",pool="primary"} 2`,
		`caddy_ucwa_pool_failovers_total 1`,
		`caddy_ucwa_cannot_redirect_total 1`,
	} {
		if !strings.Contains(metrics, line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}

	// The access log is written after the answer went out: wait for the
	// second request's line.
	e.Logs().Wait(t, `"msg":"handled request"`, `"uri":"/ucwa/v1/applications/1/communication/startPhoneAudio"`)
	var pools []string
	for line := range strings.Lines(e.Logs().String()) {
		var entry struct {
			Msg  string  `json:"msg"`
			Pool *string `json:"ucwa_pool"`
		}
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "handled request" && entry.Pool != nil {
			pools = append(pools, *entry.Pool)
		}
	}
	if strings.Join(pools, ",") != ",backup" {
		t.Errorf("access log ucwa_pool fields %q, want \"\" then \"backup\"", pools)
	}
}

// TestPoolUnhealthyByActiveHealthCheck: a primary that its active health
// check marks down receives nothing; the backup takes the request.
func TestPoolUnhealthyByActiveHealthCheck(t *testing.T) {
	for _, adapter := range []string{"caddyfile", "json"} {
		t.Run(adapter, func(t *testing.T) {
			primary := testkit.NewPool(t, "primary", testkit.AnswerCreated)
			primary.SetHealthy(false)
			backup := testkit.NewPool(t, "backup", testkit.AnswerCreated)
			config := "{\n\tlog {\n\t\tlevel DEBUG\n\t}\n}\n" + poolsCaddyfile(fmt.Sprintf(`		primary %s {
			health_uri /health
			health_interval 50ms
		}
		backup %s`, primary.Addr(), backup.Addr()))
			if adapter == "json" {
				config = fmt.Sprintf(`{
	"logging": {"logs": {"default": {"level": "DEBUG"}}},
	"apps": {"http": {"servers": {"edge": {"listen": [":EDGE_PORT"], "routes": [{"handle": [{
		"handler": "ucwa", "jwt": {"off": true}, "default_region": "US",
		"primary": {"upstreams": [{"dial": %q}],
			"health_checks": {"active": {"uri": "/health", "interval": "50ms"}}},
		"backup": {"upstreams": [{"dial": %q}]}
	}]}]}}}}
}`, primary.Addr(), backup.Addr())
			}
			e := startEdge(t, adapter, config)
			// The health checker marks the primary down, then emits an
			// "unhealthy" event, which Caddy logs at debug level.
			// The pools' proxies are modules of their own
			// (http.handlers.ucwa.pools), not the handler: their loggers do
			// not carry the logs that include the handler's audit trail.
			e.Logs().Wait(t, `"msg":"event"`, `"name":"unhealthy"`, `"origin":"http.handlers.ucwa.pools"`, primary.Addr())
			resp := e.startPhoneAudio("op-health")
			if resp.Status != http.StatusCreated || len(primary.Received()) != 0 || len(backup.Received()) != 1 {
				t.Fatalf("%d %s; primary received %d, backup %d, want 0 and 1",
					resp.Status, resp.Body, len(primary.Received()), len(backup.Received()))
			}
			e.Logs().Wait(t, `"logger":"http.handlers.ucwa.pools"`, `"msg":"upstream roundtrip"`, backup.Addr())
		})
	}
}

// TestPoolTransportDefaults: a pool's http transport keeps idle
// connections for 90s (below IIS's 120s) and lets a body wait 1s for the
// pool's 100 Continue, and speaks HTTP/1.1 alone, unless its
// configuration says otherwise; other settings and other transports are
// left as configured.
// expect_continue_after_idle defaults to 1s.
func TestPoolTransportDefaults(t *testing.T) {
	ctx := benchContext(t)
	for _, tc := range []struct {
		name, transport string // the primary's "transport" JSON, if any
		wantIdle        time.Duration
		wantExpect      time.Duration
		wantPerHost     int
		wantVersions    []string
	}{
		{"none", "", 90 * time.Second, time.Second, 32, []string{"1.1"}},
		{"http, unset", `{"protocol":"http","dial_timeout":"2s"}`, 90 * time.Second, time.Second, 32, []string{"1.1"}},
		{"keep_alive without idle_timeout", `{"protocol":"http","keep_alive":{"max_idle_conns_per_host":4}}`, 90 * time.Second, time.Second, 4, []string{"1.1"}},
		{"set", `{"protocol":"http","keep_alive":{"idle_timeout":"5m"},"expect_continue_timeout":"3s","versions":["1.1","2"]}`, 5 * time.Minute, 3 * time.Second, 32, []string{"1.1", "2"}},
		{"h2c", `{"protocol":"http","versions":["h2c"]}`, 90 * time.Second, time.Second, 32, []string{"h2c"}},
		{"versions naming none", `{"protocol":"http","versions":[]}`, 90 * time.Second, time.Second, 32, []string{"1.1"}},
		{"versions null", `{"protocol":"http","versions":null}`, 90 * time.Second, time.Second, 32, []string{"1.1"}},
		// A null keep_alive is unset, as Caddy reads it: it panicked the
		// load (a nil map written to).
		{"keep_alive null", `{"protocol":"http","keep_alive":null}`, 90 * time.Second, time.Second, 32, []string{"1.1"}},
		{"set in nanoseconds", `{"protocol":"http","keep_alive":{"idle_timeout":30000000000},"expect_continue_timeout":2000000000}`, 30 * time.Second, 2 * time.Second, 32, []string{"1.1"}},
		{"fastcgi", `{"protocol":"fastcgi","root":"/srv"}`, 0, 0, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			primary := fmt.Sprintf(`{"upstreams":[{"dial":%q}]`, testkit.DownAddr(t))
			if tc.transport != "" {
				primary += `,"transport":` + tc.transport
			}
			h := provision(t, ctx, new(Handler), `{"jwt":{"off":true},"default_region":"US","primary":`+primary+`}}`)
			if got := h.pools[0].expectAfterIdle; got != time.Second {
				t.Errorf("expect_continue_after_idle %v, want 1s", got)
			}
			ht, ok := poolHTTPTransport(h.pools[0].proxy.Transport)
			if !ok {
				if tc.wantIdle != 0 {
					t.Fatalf("transport %T, want the http transport", h.pools[0].proxy.Transport)
				}
				if h.pools[0].reportsWrites || h.pools[0].hooksOnSend {
					t.Error("a transport other than net/http's counts as reporting its writes, or sending through its Proxy hook")
				}
				return
			}
			rt := ht.Transport
			if rt.IdleConnTimeout != tc.wantIdle || rt.ExpectContinueTimeout != tc.wantExpect || rt.MaxIdleConnsPerHost != tc.wantPerHost {
				t.Errorf("idle timeout %v, expect-continue timeout %v, idle connections per host %d; want %v, %v, %d",
					rt.IdleConnTimeout, rt.ExpectContinueTimeout, rt.MaxIdleConnsPerHost, tc.wantIdle, tc.wantExpect, tc.wantPerHost)
			}
			if !h.pools[0].reportsWrites {
				t.Error("net/http's transport does not count as reporting its writes")
			}
			// Its Proxy hook reports the request and its asking for a
			// connection (see reportOutgoing).
			c := new(connTrace)
			req := httptest.NewRequest(http.MethodPost, "http://pool/x", nil).
				WithContext(&attemptContext{Context: context.Background(), conn: c})
			if _, err := rt.Proxy(req); err != nil || c.outgoing == nil || !c.askedConn.Load() {
				t.Errorf("the transport's Proxy hook: %v; reported %v, asked for a connection %v", err, c.outgoing != nil, c.askedConn.Load())
			}
			if !slices.Equal(ht.Versions, tc.wantVersions) {
				t.Errorf("versions %q, want %q", ht.Versions, tc.wantVersions)
			}
			// Over HTTP/2 a request may go to a connection the transport
			// holds without passing its Proxy hook: the attempt's context
			// holds the trace hooks then.
			http2 := slices.Contains(tc.wantVersions, "2") || slices.Contains(tc.wantVersions, "h2c")
			if got, want := h.pools[0].hooksOnSend, !http2; got != want {
				t.Errorf("hooks set by the Proxy hook: %v, want %v", got, want)
			}
			// And it may send a request again without passing that hook:
			// the attempt stops it through the request's Cancel channel.
			if got := h.pools[0].stopsResends; got != http2 {
				t.Errorf("stops HTTP/2's own resends: %v, want %v", got, http2)
			}
			// A connection without TLS speaks HTTP/2 with h2c alone; over
			// TLS, with its ALPN's h2 (see connTrace.http2).
			if got, want := h.pools[0].plainHTTP2, slices.Contains(tc.wantVersions, "h2c"); got != want {
				t.Errorf("HTTP/2 without TLS: %v, want %v", got, want)
			}
		})
	}
}

// TestPoolMarkedDownMidRequest: a primary that its active health check
// marks down while it holds a request still answers it, and its answer
// reaches the client: nothing goes to the backup for it, then or for a
// repeat, which gets the answer again although the primary is down.
func TestPoolMarkedDownMidRequest(t *testing.T) {
	primary, backup := newIdemPool(t, "primary"), newIdemPool(t, "backup")
	e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t), "store memory",
		fmt.Sprintf("primary %s {\n\t\t\thealth_uri /health\n\t\t\thealth_interval 50ms\n\t\t}", primary.Addr()),
		"backup "+backup.Addr()))
	c := idemCall{header: idemToken(t, "tenant-1", "oid-a", "sub-a"), op: "marked-down-1", answer: "hold"}
	answer := e.sendHeld(t, c)
	primary.Requests.WaitFor(t, 1, "requests at the primary")
	primary.SetHealthy(false)
	e.Logs().Wait(t, `"msg":"event"`, `"name":"unhealthy"`, primary.Addr())
	primary.Release()
	first := <-answer
	if first.Status != http.StatusCreated || first.Header.Get("Location") != "/ucwa/v1/applications/1/communication/invitations/primary-1" {
		t.Fatalf("%d %v %s, want the primary's 201", first.Status, first.Header, first.Body)
	}
	assertReplay(t, e.call(c), first)
	if got := len(backup.Received()); got != 0 {
		t.Errorf("the backup received %d requests", got)
	}
	if got := deliveries(primary.Pool, c.op); got != 1 {
		t.Errorf("the primary received it %d times, want once", got)
	}
}

// TestPoolPlainHTTPWarns: a pool reached over plain HTTP on the network
// gets bearer tokens and numbers unencrypted, as `primary fe1.contoso.com`
// (no scheme, so port 80 and no TLS) does: the edge warns at startup,
// naming the pool and its upstreams (a dynamic upstream source by what
// it looks up). Loopback and TLS are quiet.
func TestPoolPlainHTTPWarns(t *testing.T) {
	const warning = `"msg":"pool gets requests over plain HTTP`
	for _, tc := range []struct {
		name, pools string
		want        []string // the upstreams warned of, by pool; none: no warning
	}{
		{"no scheme", "primary 192.0.2.10 192.0.2.11:8080 127.0.0.1:9\n\t\tbackup https://192.0.2.20", []string{"primary: 192.0.2.10:80 192.0.2.11:8080"}},
		{"backup plain", "primary 192.0.2.10:443 {\n\t\t\ttransport http {\n\t\t\t\ttls\n\t\t\t}\n\t\t}\n\t\tbackup http://192.0.2.20", []string{"backup: 192.0.2.20:80"}},
		{"loopback", "primary 127.0.0.1:9 [::1]:9 localhost:9", nil},
		// Dynamic upstreams are found at each request: their sources are
		// named, each a source by its name and port (80 unless given),
		// each srv source by its domain; loopback names are quiet.
		{"dynamic a", "primary {\n\t\t\tdynamic a fe.contoso.test\n\t\t}\n\t\tbackup {\n\t\t\tdynamic a localhost 9\n\t\t}", []string{"primary: a fe.contoso.test:80"}},
		{"dynamic multi", "primary {\n\t\t\tdynamic multi {\n\t\t\t\ta localhost 9\n\t\t\t\ta 127.0.0.1 9\n\t\t\t\ta ::1 9\n\t\t\t\ta fe.contoso.test 8080\n\t\t\t\tsrv _ucwa._tcp.contoso.test\n\t\t\t\tsrv {\n\t\t\t\t\tservice ucwa\n\t\t\t\t\tproto tcp\n\t\t\t\t\tname pool.contoso.test\n\t\t\t\t}\n\t\t\t}\n\t\t}",
			[]string{"primary: a fe.contoso.test:8080 srv _ucwa._tcp.contoso.test srv _ucwa._tcp.pool.contoso.test"}},
		{"dynamic a, tls", "primary {\n\t\t\tdynamic a fe.contoso.test 443\n\t\t\ttransport http {\n\t\t\t\ttls\n\t\t\t}\n\t\t}", nil},
		// An srv source's records may name any host, loopback or not.
		{"dynamic srv", "primary {\n\t\t\tdynamic srv _ucwa._tcp.contoso.test\n\t\t}\n\t\tbackup {\n\t\t\tdynamic srv localhost\n\t\t}",
			[]string{"primary: srv _ucwa._tcp.contoso.test", "backup: srv localhost"}},
		{"dynamic srv, tls", "primary {\n\t\t\tdynamic srv {\n\t\t\t\tservice ucwa\n\t\t\t\tproto tcp\n\t\t\t\tname contoso.test\n\t\t\t}\n\t\t\ttransport http {\n\t\t\t\ttls\n\t\t\t}\n\t\t}", nil},
		// JSON's null tls is no TLS to Caddy's transport.
		{"tls null (JSON)", `"primary":{"upstreams":[{"dial":"192.0.2.10:443"}],"transport":{"protocol":"http","tls":null}}`, []string{"primary: 192.0.2.10:443"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			adapter, config := "caddyfile", `:EDGE_PORT {
	ucwa {
		jwt off
		`+tc.pools+`
	}
}`
			if strings.HasPrefix(tc.pools, `"`) {
				adapter, config = "json", `{"apps":{"http":{"servers":{"edge":{"listen":[":EDGE_PORT"],"routes":[{"handle":[{"handler":"ucwa","jwt":{"off":true},`+tc.pools+`}]}]}}}}}`
			}
			e := startEdge(t, adapter, config)
			var got []string
			for line := range strings.Lines(e.Logs().String()) {
				if !strings.Contains(line, warning) {
					continue
				}
				var w struct {
					Level     string   `json:"level"`
					Pool      string   `json:"pool"`
					Upstreams []string `json:"upstreams"`
				}
				if err := json.Unmarshal([]byte(line), &w); err != nil {
					t.Fatalf("%v: %s", err, line)
				}
				if w.Level != "warn" {
					t.Errorf("level %s: %s", w.Level, line)
				}
				got = append(got, w.Pool+": "+strings.Join(w.Upstreams, " "))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("warned of %q, want %q", got, tc.want)
			}
		})
	}
}
