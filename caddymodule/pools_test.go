package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// poolsCaddyfile is an edge whose ucwa handler has the given pool
// subdirectives; a deferred header shows {http.ucwa.pool}.
func poolsCaddyfile(pools string) string {
	return fmt.Sprintf(`{
	admin localhost:ADMIN_PORT
	http_port EDGE_PORT
	skip_install_trust
}
:EDGE_PORT {
	header >X-Ucwa-Pool "pool={http.ucwa.pool}"
	ucwa {
		jwt off
		default_region US
%s
	}
}`, pools)
}

const conflictBody = `{"code":"Conflict","subcode":"AlreadyExists","message":"The already exists error."}`

func TestPoolDelivery(t *testing.T) {
	tests := []struct {
		name string
		// primary and backup: up, down, reset, hang, conflict,
		// unavailable, abs-location, foreign-location, tls-untrusted;
		// backup "" is none.
		primary, backup string
		primaryBlock    string // reverse_proxy subdirectives of the primary
		wantStatus      int
		wantSubcode     string // for answers the edge writes
		wantMessage     string
		wantBody        string // for answers a pool writes
		wantHeader      map[string]string
		wantPrimary     int // requests the primary received
		wantBackup      int
		wantMetrics     []string
	}{
		{
			name: "primary up", primary: "up", backup: "up",
			wantStatus: 201, wantPrimary: 1,
			wantHeader: map[string]string{"Location": "/ucwa/v1/applications/1/communication/invitations/primary",
				"X-MS-UcwaVersion": "2", "X-Ucwa-Pool": "pool=primary"},
			wantMetrics: []string{`caddy_ucwa_pool_requests_total{outcome="answered",pool="primary"} 1`},
		},
		{
			name: "primary down, backup up", primary: "down", backup: "up",
			wantStatus: 201, wantBackup: 1,
			wantHeader: map[string]string{"Location": "/ucwa/v1/applications/1/communication/invitations/backup",
				"X-Ucwa-Pool": "pool=backup"},
			wantMetrics: []string{
				`caddy_ucwa_pool_requests_total{outcome="unavailable",pool="primary"} 1`,
				`caddy_ucwa_pool_requests_total{outcome="answered",pool="backup"} 1`,
				`caddy_ucwa_pool_failovers_total 1`,
			},
		},
		{
			name: "primary down, no backup", primary: "down",
			wantStatus: 410, wantSubcode: ucwa.SubcodeCannotRedirect, wantMessage: ucwa.MessageCannotRedirect,
			wantHeader:  map[string]string{"X-Ucwa-Pool": "pool="},
			wantMetrics: []string{`caddy_ucwa_cannot_redirect_total 1`},
		},
		{
			name: "both down", primary: "down", backup: "down",
			wantStatus: 503,
			wantMetrics: []string{
				`caddy_ucwa_pool_requests_total{outcome="unavailable",pool="backup"} 1`,
				`caddy_ucwa_cannot_redirect_total 0`,
			},
		},
		{
			name: "primary TLS handshake fails, backup up", primary: "tls-untrusted", backup: "up",
			wantStatus: 201, wantBackup: 1,
		},
		{
			name: "primary resets after reading the request", primary: "reset", backup: "up",
			wantStatus: 502, wantSubcode: ucwa.SubcodeServiceFailure, wantPrimary: 1,
			wantHeader:  map[string]string{"X-Ucwa-Pool": "pool=primary"},
			wantMetrics: []string{`caddy_ucwa_pool_requests_total{outcome="failed",pool="primary"} 1`},
		},
		{
			name: "primary hangs past response_header_timeout", primary: "hang", backup: "up",
			primaryBlock: "transport http {\n\t\t\t\tresponse_header_timeout 300ms\n\t\t\t}",
			wantStatus:   504, wantSubcode: ucwa.SubcodeServiceTimeout, wantPrimary: 1,
			wantMetrics: []string{`caddy_ucwa_pool_requests_total{outcome="timeout",pool="primary"} 1`},
		},
		{
			name: "primary answers 409 AlreadyExists", primary: "conflict", backup: "up",
			wantStatus: 409, wantBody: conflictBody, wantPrimary: 1,
			wantHeader: map[string]string{"X-Ms-diagnostics": "1000;reason=\"test\"", "Content-Type": "application/json"},
		},
		{
			name: "primary answers its own 503", primary: "unavailable", backup: "up",
			wantStatus: 503, wantBody: "busy", wantPrimary: 1,
			wantHeader: map[string]string{"Retry-After": "30"},
		},
		{
			name: "absolute Location on another host", primary: "foreign-location",
			wantStatus: 201, wantPrimary: 1,
			wantHeader: map[string]string{"Location": "https://elsewhere.example/ucwa/x"},
		},
		{
			name: "absolute Location on the pool's host", primary: "abs-location",
			wantStatus: 201, wantPrimary: 1,
			wantHeader: map[string]string{"Location": edgeURL("/ucwa/v1/applications/1/communication/invitations/7?x=1")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			servers := map[string]*poolServer{}
			pools := ""
			for _, side := range []struct{ name, kind, block string }{
				{"primary", tt.primary, tt.primaryBlock}, {"backup", tt.backup, ""},
			} {
				var addr string
				switch side.kind {
				case "":
					continue
				case "down":
					addr = closedAddr(t)
				case "tls-untrusted":
					servers[side.name] = newTLSPoolServer(t, side.name)
				default:
					answer := map[string]func(*poolServer, http.ResponseWriter, *http.Request){
						"up":           answerCreated,
						"reset":        answerReset,
						"hang":         answerHang,
						"abs-location": answerAbsoluteLocation,
						"conflict": answerStatus(409, map[string]string{
							"Content-Type": "application/json", "X-Ms-diagnostics": "1000;reason=\"test\""}, conflictBody),
						"unavailable":      answerStatus(503, map[string]string{"Retry-After": "30"}, "busy"),
						"foreign-location": answerStatus(201, map[string]string{"Location": "https://elsewhere.example/ucwa/x"}, ""),
					}[side.kind]
					servers[side.name] = newPoolServer(t, side.name, answer)
				}
				if s := servers[side.name]; s != nil {
					addr = s.url()
				}
				pools += fmt.Sprintf("\t\t%s %s {\n\t\t\t%s\n\t\t}\n", side.name, addr, side.block)
			}
			tester := startCaddy(t, poolsCaddyfile(pools), "caddyfile")

			resp, body := startPhoneAudio(t, tester.Client, "op-1")
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.wantStatus, body)
			}
			if tt.wantStatus != 201 && tt.wantBody == "" {
				var e struct{ Code, Subcode, Message string }
				if err := json.Unmarshal([]byte(body), &e); err != nil {
					t.Fatalf("not a UCWA error body: %q", body)
				}
				if e.Code != ucwa.Code(tt.wantStatus) || e.Subcode != tt.wantSubcode || e.Message == "" ||
					tt.wantMessage != "" && e.Message != tt.wantMessage {
					t.Errorf("error body %s, want code %s subcode %q message %q", body, ucwa.Code(tt.wantStatus), tt.wantSubcode, tt.wantMessage)
				}
			}
			if tt.wantBody != "" && body != tt.wantBody {
				t.Errorf("body %q, want the pool's %q", body, tt.wantBody)
			}
			for k, v := range tt.wantHeader {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("header %s: %q, want %q", k, got, v)
				}
			}
			for side, want := range map[string]int{"primary": tt.wantPrimary, "backup": tt.wantBackup} {
				got := 0
				if s := servers[side]; s != nil {
					got = len(s.received())
				}
				if got != want {
					t.Errorf("%s received %d requests, want %d", side, got, want)
				}
			}
			if len(tt.wantMetrics) > 0 {
				metrics := adminMetrics(t)
				for _, line := range tt.wantMetrics {
					if !strings.Contains(metrics, line+"\n") {
						t.Errorf("/metrics lacks %q", line)
					}
				}
			}
		})
	}
}

// waitForMetric polls the admin /metrics endpoint until it shows line.
func waitForMetric(t *testing.T, line string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if strings.Contains(adminMetrics(t), line+"\n") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics never showed %q", line)
		}
	}
}

// waitForFails polls the admin API until reverse_proxy counted a failure
// of the upstream at addr.
func waitForFails(t *testing.T, addr string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(fmt.Sprintf("http://localhost:%d/reverse_proxy/upstreams", adminPort))
		if err != nil {
			t.Fatal(err)
		}
		var upstreams []struct {
			Address string `json:"address"`
			Fails   int    `json:"fails"`
		}
		err = json.NewDecoder(resp.Body).Decode(&upstreams)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range upstreams {
			if u.Address == addr && u.Fails > 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failure counted for %s: %+v", addr, upstreams)
		}
	}
}

// TestPoolClientDisconnect: a client that goes away stops the attempt,
// and nothing is sent to the backup for it.
func TestPoolClientDisconnect(t *testing.T) {
	tests := []struct {
		name string
		// setup returns the primary subdirective and a function that
		// returns once the edge is busy with the request.
		setup func(t *testing.T) (string, func())
	}{
		{"primary received the request and hangs", func(t *testing.T) (string, func()) {
			primary := newPoolServer(t, "primary", answerHang)
			return "primary " + primary.addr, func() { <-primary.arrived }
		}},
		{"primary down, edge retrying within lb_try_duration", func(t *testing.T) (string, func()) {
			down := closedAddr(t)
			return "primary " + down + " {\n\t\t\tlb_try_duration 1s\n\t\t\tfail_duration 30s\n\t\t}",
				func() { waitForFails(t, down) }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			primaryConfig, busy := tt.setup(t)
			backup := newPoolServer(t, "backup", answerCreated)
			tester := startCaddy(t, poolsCaddyfile("\t\t"+primaryConfig+"\n\t\tbackup "+backup.addr), "caddyfile")

			ctx, cancel := context.WithCancel(context.Background())
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, edgeURL("/ucwa/v1/applications/1/communication/startPhoneAudio"),
				strings.NewReader(`{"to":"4255551234","operationId":"op-gone"}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			done := make(chan error, 1)
			go func() {
				resp, err := tester.Client.Do(req)
				if err == nil {
					resp.Body.Close()
				}
				done <- err
			}()
			busy()
			cancel()
			if err := <-done; err == nil {
				t.Fatal("the request was answered although the client went away")
			}
			waitForMetric(t, `caddy_ucwa_pool_requests_total{outcome="client_gone",pool="primary"} 1`)
			if got := len(backup.received()); got != 0 {
				t.Errorf("backup received %d requests for a client that was gone", got)
			}
			if strings.Contains(adminMetrics(t), "caddy_ucwa_pool_failovers_total 1") {
				t.Error("failed over for a client that was gone")
			}
		})
	}
}

// TestNoTransportReplay: Go's transport replays a written POST that has a
// GetBody and an Idempotency-Key when a kept-alive connection dies. The
// edge gives it no GetBody, whether it delivers to its own pools or to the
// next handler (a user's reverse_proxy), so the request is sent once.
func TestNoTransportReplay(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config func(primary, backup string) string
	}{
		{"primary pool", func(primary, backup string) string {
			return poolsCaddyfile("\t\tprimary " + primary + "\n\t\tbackup " + backup)
		}},
		{"next handler's reverse_proxy", func(primary, _ string) string {
			return strings.Replace(poolsCaddyfile(""), "\t}\n}", "\t}\n\treverse_proxy "+primary+"\n}", 1)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int64
			primary := newPoolServer(t, "primary", func(p *poolServer, w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) == 1 {
					answerCreated(p, w, r) // leaves a kept-alive connection
					return
				}
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					_ = conn.Close() // read the request, then close without an answer
				}
			})
			backup := newPoolServer(t, "backup", answerCreated)
			tester := startCaddy(t, tc.config(primary.addr, backup.addr), "caddyfile")

			if resp, body := startPhoneAudio(t, tester.Client, "op-first"); resp.StatusCode != http.StatusCreated {
				t.Fatalf("first request: %d %s", resp.StatusCode, body)
			}
			resp, _ := send(t, tester.Client, http.MethodPost, edgeURL("/ucwa/v1/applications/1/communication/startPhoneAudio"),
				"application/json", "", `{"to":"4255551234","operationId":"op-keyed"}`, http.Header{"Idempotency-Key": {"op-keyed"}})
			if resp.StatusCode != http.StatusBadGateway {
				t.Errorf("status %d, want 502", resp.StatusCode)
			}
			if got := primary.received(); len(got) != 2 || got[1] != "op-keyed" {
				t.Errorf("primary received %q, want op-first and op-keyed once", got)
			}
			if got := len(backup.received()); got != 0 {
				t.Errorf("backup received %d requests", got)
			}
		})
	}
}

// TestPoolErrorsInXML: the edge's own pool answers follow the request's
// format.
func TestPoolErrorsInXML(t *testing.T) {
	tester := startCaddy(t, poolsCaddyfile("\t\tprimary "+closedAddr(t)), "caddyfile")
	resp, body := send(t, tester.Client, "POST", edgeURL("/ucwa/v1/applications/1/communication/startPhoneAudio"), "application/xml", "",
		`<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="to">sip:john@contoso.com</property></input>`, nil)
	if resp.StatusCode != http.StatusGone || !strings.Contains(body, "<reason") ||
		!strings.Contains(body, "<subcode>CannotRedirect</subcode>") || !strings.Contains(body, ucwa.MessageCannotRedirect) {
		t.Errorf("%d %s, want a 410 CannotRedirect reason in XML", resp.StatusCode, body)
	}
}
