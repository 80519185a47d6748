package main

import (
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/ucwa-edge/caddy-ucwa/internal/demotoken"
	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestMain lets the tests run this command (the test binary, which holds
// the same modules) as a Caddy child process.
func TestMain(m *testing.M) { testkit.Main(m) }

// repoRoot is where the demo runs, and its relative paths resolve.
const repoRoot = "../.."

// demoPorts are the demo Caddyfile's fixed ports and the names that stand
// for the test's own ports in their place.
var demoPorts = map[string]string{
	":8080": ":EDGE_PORT",
	":8081": ":EDGE_NO_BACKUP_PORT",
	":9001": ":PRIMARY_PORT",
	":9002": ":BACKUP_PORT",
}

// TestDemoEndToEnd runs the demo Caddyfile in this command, as the README
// does, and walks the README's steps with a token of the demo key: auth
// is on, a call completes through the edge, the 21st call of a caller is
// limited, an emergency call over the limit is placed and the admin
// endpoint lifts the limit, forwarding
// needs its own scope, every group of guarded operations (calls, a stored number,
// forwarding, a batch) reaches the emulated pools through the edge, the
// primary is removed through the admin API and the backup takes the next
// call, and the edge without a backup answers 410.
func TestDemoEndToEnd(t *testing.T) {
	demoFile, err := os.ReadFile(repoRoot + "/Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	b := string(demoFile)
	for from, to := range demoPorts {
		if !strings.Contains(b, from) {
			t.Fatalf("the demo Caddyfile does not use port %s", from[1:])
		}
		b = strings.ReplaceAll(b, from, to)
	}
	// Loopback by address: the test's ports are reserved on 127.0.0.1.
	b = strings.ReplaceAll(b, "localhost:", "127.0.0.1:")
	demo := testkit.StartCaddyProcess(t, "caddyfile", b, testkit.WithAdmin(), testkit.WithWorkingDirectory(repoRoot))
	token, err := demotoken.Mint(repoRoot+"/"+demotoken.KeyFile, demotoken.Issuer, demotoken.Audience, demotoken.Subject, demotoken.Scope, demotoken.TTL, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// A token for forwarding too, as the README's step 5 mints it.
	allToken, err := demotoken.Mint(repoRoot+"/"+demotoken.KeyFile, demotoken.Issuer, demotoken.Audience, demotoken.Subject,
		"Conversations.Initiate User.ReadWrite", demotoken.TTL, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	client := demo.Client()

	// call places a call through an edge, after opening the application's
	// event channel, as the README's steps 2 and 3 do.
	call := func(edge, app, auth string) testkit.Response {
		t.Helper()
		testkit.ParseEvents(t, testkit.Send(t, client, testkit.Request{URL: edge + app + "/events?timeout=1ms"}))
		return testkit.Send(t, client, testkit.Request{URL: edge + app + "/communication/startPhoneAudio",
			ContentType: "application/json", Header: http.Header{"Authorization": {auth}},
			Body: `{"to":"sip:john@contoso.com","phoneNumber":"(425) 555-1234","operationId":"demo-e2e"}`})
	}
	edge := demo.URL("EDGE_PORT", "")

	t.Run("auth is on", func(t *testing.T) {
		r := call(edge, "/ucwa/oauth/v1/applications/demo-no-token", "")
		if r.Status != http.StatusUnauthorized {
			t.Fatalf("call without a token = %d %s, want 401", r.Status, r.Body)
		}
		// mint-token -ttl -2m: expired past the edge's minute of leeway.
		expired, err := demotoken.Mint(repoRoot+"/"+demotoken.KeyFile, demotoken.Issuer, demotoken.Audience, demotoken.Subject, demotoken.Scope, -2*time.Minute, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		r = call(edge, "/ucwa/oauth/v1/applications/demo-expired", "Bearer "+expired)
		if r.Status != http.StatusUnauthorized || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Fatalf("call with an expired token = %d %v %s, want 401 invalid_token", r.Status, r.Header, r.Body)
		}
	})

	t.Run("call completes through the edge", func(t *testing.T) {
		const app = "/ucwa/oauth/v1/applications/demo-e2e"
		r := call(edge, app, "Bearer "+token)
		if r.Status != http.StatusCreated {
			t.Fatalf("call = %d %s, want 201", r.Status, r.Body)
		}
		got := testkit.FollowEvents(t, client, edge, app+"/events", r.Header.Get("Location"))
		if last := got[len(got)-1]; last.Status != "Success" {
			t.Fatalf("events = %+v, want the call to complete with Success", got)
		}
	})

	t.Run("the trunk guard", func(t *testing.T) {
		// The README's step 6, and the repeat of step 3's call.
		const app = "/ucwa/oauth/v1/applications/demo-guard"
		auth := http.Header{"Authorization": {"Bearer " + allToken}}
		for _, tc := range []struct{ name, path, body string }{
			{"a premium-rate call", "/communication/startPhoneAudio", `{"to":"+1 900 555 1234","operationId":"call-2"}`},
			{"a premium-rate callback", "/communication/startPhoneAudio", `{"to":"sip:john@contoso.com","phoneNumber":"+1 900 555 1234"}`},
			{"a premium-rate forwarding target", "/me/callForwardingSettings/immediateForwardSettings/immediateForwardToContact?target=%2B1%20900%20555%201234", ""},
			// +1 876 is Jamaica: the country code of the US and Canada,
			// the rates of an international call.
			{"a Caribbean number that shares +1", "/communication/startPhoneAudio", `{"to":"+1 876 555 1234"}`},
		} {
			r := testkit.Send(t, client, testkit.Request{Method: http.MethodPost, URL: edge + app + tc.path, ContentType: "application/json", Body: tc.body, Header: auth})
			if r.Status != http.StatusForbidden || !strings.Contains(r.Body, `"subcode":"DialoutNotAllowed"`) || strings.Contains(r.Body, "555") {
				t.Errorf("%s = %d %s, want 403 DialoutNotAllowed without the number", tc.name, r.Status, r.Body)
			}
		}
		first := call(edge, app, "Bearer "+token)
		again := call(edge, app, "Bearer "+token)
		if first.Status != http.StatusCreated || again.Status != first.Status || again.Header.Get("Idempotent-Replayed") != "true" ||
			again.Header.Get("Location") != first.Header.Get("Location") {
			t.Errorf("a call and its repeat = %d %v, %d %v; want 201 and its replay", first.Status, first.Header, again.Status, again.Header)
		}
		demo.WaitLog(t, `"logger":"http.handlers.ucwa.audit"`, `"application":"demo-guard"`, `"refused_by":"destinations:`)
		if strings.Contains(demo.Log(), "9005551234") {
			t.Errorf("the demo's log holds a full number")
		}
	})

	t.Run("the 21st call is limited, an emergency call is not", func(t *testing.T) {
		// The Caddyfile's limit and emergency numbers: a caller of its
		// own, so that the other steps' calls count for no limit here.
		limited, err := demotoken.Mint(repoRoot+"/"+demotoken.KeyFile, demotoken.Issuer, demotoken.Audience, "demo-limited",
			demotoken.Scope, demotoken.TTL, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		const app = "/ucwa/oauth/v1/applications/demo-limit"
		testkit.ParseEvents(t, testkit.Send(t, client, testkit.Request{URL: edge + app + "/events?timeout=1ms"}))
		send := func(body string) testkit.Response {
			return testkit.Send(t, client, testkit.Request{URL: edge + app + "/communication/startPhoneAudio", ContentType: "application/json",
				Header: http.Header{"Authorization": {"Bearer " + limited}}, Body: body})
		}
		for i := 1; i <= 21; i++ {
			r := send(`{"to":"sip:john@contoso.com","operationId":"limit-` + strconv.Itoa(i) + `"}`)
			want := http.StatusCreated
			if i == 21 {
				want = http.StatusTooManyRequests
			}
			if r.Status != want {
				t.Fatalf("call %d = %d %s, want %d", i, r.Status, r.Body, want)
			}
		}
		// The edge forwards 911 as tel:911; the emulated pools read it as
		// a pool with US dial rules does, and place the call.
		r := send(`{"to":"911","operationId":"limit-911"}`)
		if r.Status != http.StatusCreated {
			t.Fatalf("emergency call over the limit = %d %s, want 201", r.Status, r.Body)
		}
		got := testkit.FollowEvents(t, client, edge, app+"/events", r.Header.Get("Location"))
		if last := got[len(got)-1]; last.Status != "Success" {
			t.Fatalf("events = %+v, want the emergency call to complete with Success", got)
		}
		// The README's step 6 shows the caller's budget, spent, and lifts
		// the limit on the admin endpoint: the demo's tokens have no tid,
		// so the key is "/" and the sub.
		r = testkit.Send(t, client, testkit.Request{Method: http.MethodPost, URL: demo.AdminURL("/ucwa/limits/show"), ContentType: "application/json",
			Body: `{"limit":"calls","key":"/demo-limited"}`})
		if r.Status != http.StatusOK || !strings.HasPrefix(r.Body, `{"limit":"calls","budgets":[{"count":20,"per":"1h0m0s","remaining":0,"next_in":"`) {
			t.Fatalf("the show of the caller's budget = %d %s", r.Status, r.Body)
		}
		// The same through the README's command, and the list of limits.
		admin := testkit.Addr(demo.Port("ADMIN_PORT"))
		stdout, stderr, code := testkit.RunCaddyCommand(t, "ucwa-limit", "show", "--limit", "calls", "--key", "/demo-limited", "--address", admin)
		if code != 0 || !strings.HasPrefix(stdout, `{"limit":"calls","budgets":[{"count":20,"per":"1h0m0s","remaining":0,"next_in":"`) {
			t.Fatalf("caddy ucwa-limit show: exit %d, %q, stderr %s", code, stdout, stderr)
		}
		stdout, stderr, code = testkit.RunCaddyCommand(t, "ucwa-limit", "list", "--address", admin)
		if code != 0 || !strings.HasPrefix(stdout, `{"limits":[{"name":"calls","count":20,"per":"1h0m0s","key":"{http.ucwa.tenant_caller}","store":"memory","handlers":`) {
			t.Fatalf("caddy ucwa-limit list: exit %d, %q, stderr %s", code, stdout, stderr)
		}
		r = testkit.Send(t, client, testkit.Request{Method: http.MethodPost, URL: demo.AdminURL("/ucwa/limits/reset"), ContentType: "application/json",
			Body: `{"limit":"calls","key":"/demo-limited"}`})
		if r.Status != http.StatusOK || r.Body != `{"limit":"calls","budgets":1,"reset":1}`+"\n" {
			t.Fatalf("the reset of the caller's budget = %d %s", r.Status, r.Body)
		}
		if r := send(`{"to":"sip:john@contoso.com","operationId":"limit-22"}`); r.Status != http.StatusCreated {
			t.Fatalf("a call after the reset = %d %s, want 201", r.Status, r.Body)
		}
	})

	t.Run("forwarding needs its own scope", func(t *testing.T) {
		// The README's step 5.
		forward := edge + "/ucwa/oauth/v1/applications/demo-forward/me/callForwardingSettings/immediateForwardSettings/immediateForwardToContact?target=%2B1%20425%20555%200123"
		r := testkit.Send(t, client, testkit.Request{Method: http.MethodPost, URL: forward, Header: http.Header{"Authorization": {"Bearer " + token}}})
		if r.Status != http.StatusForbidden || r.Header.Get("WWW-Authenticate") != `Bearer realm="ucwa", error="insufficient_scope", scope="User.ReadWrite"` {
			t.Fatalf("forwarding with the default token = %d %v %s, want 403 naming User.ReadWrite", r.Status, r.Header, r.Body)
		}
		r = testkit.Send(t, client, testkit.Request{Method: http.MethodPost, URL: forward, Header: http.Header{"Authorization": {"Bearer " + allToken}}})
		if r.Status != http.StatusNoContent {
			t.Fatalf("forwarding = %d %s, want 204", r.Status, r.Body)
		}
	})

	t.Run("every group through the edge", func(t *testing.T) {
		const app = "/ucwa/oauth/v1/applications/demo-groups"
		testkit.ParseEvents(t, testkit.Send(t, client, testkit.Request{URL: edge + app + "/events?timeout=1ms"}))
		auth := http.Header{"Authorization": {"Bearer " + allToken}}
		for _, tc := range []struct {
			name, path, body string
			status           int
		}{
			{"a call from a conversation", "/communication/conversations/c1/phoneAudio/addPhoneAudio", `{"to":"sip:john@contoso.com","phoneNumber":"(425) 555-1234"}`, http.StatusCreated},
			{"a call from a conversation log", "/communication/conversationLogs/l1/continuePhoneAudio", `{"phoneNumber":"(425) 555-1234"}`, http.StatusCreated},
			{"a call on behalf of a delegator", "/communication/startPhoneAudioOnBehalfOfDelegator", `{"to":"sip:john@contoso.com","delegator":"sip:boss@contoso.com"}`, http.StatusCreated},
			{"a number stored for later", "/me/makeMeAvailable", `{"SupportedModalities":["PhoneAudio"],"phoneNumber":"(425) 555-1234"}`, http.StatusNoContent},
			{"a refused number", "/me/makeMeAvailable", `{"phoneNumber":"+1 425 555 1234 garbage"}`, http.StatusBadRequest},
		} {
			r := testkit.Send(t, client, testkit.Request{URL: edge + app + tc.path, ContentType: "application/json", Body: tc.body, Header: auth})
			if r.Status != tc.status {
				t.Errorf("%s = %d %s, want %d", tc.name, r.Status, r.Body, tc.status)
			}
		}
		r := testkit.Send(t, client, testkit.Request{URL: edge + app + "/batch", ContentType: "multipart/batching; boundary=b", Header: auth,
			Body: "--b\r\nContent-Type: application/http; msgtype=request\r\n\r\nGET " + app + "/communication/invitations/1 HTTP/1.1\r\n\r\n" +
				"--b\r\nContent-Type: application/http; msgtype=request\r\n\r\nPOST " + app + "/me/callForwardingSettings/simultaneousRingSettings/simultaneousRingToContact HTTP/1.1\r\n" +
				`Data: {"target":"(425) 555-0123"}` + "\r\n\r\n--b--\r\n"})
		if r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/batching") || strings.Count(r.Body, "msgtype=response") != 2 {
			t.Errorf("batch = %d %s %s, want a multipart/batching answer of two parts", r.Status, r.Header.Get("Content-Type"), r.Body)
		}
	})

	t.Run("failover to the backup, and 410 without one", func(t *testing.T) {
		// The README's failover step: remove the primary pool's server.
		if r := testkit.Send(t, client, testkit.Request{Method: http.MethodDelete, URL: demo.AdminURL("/config/apps/http/servers/primary_pool")}); r.Status != http.StatusOK {
			t.Fatalf("DELETE primary_pool = %d %s", r.Status, r.Body)
		}
		demo.AwaitReload()
		r := call(edge, "/ucwa/oauth/v1/applications/demo-failover", "Bearer "+token)
		if r.Status != http.StatusCreated {
			t.Fatalf("call with the primary gone = %d %s, want 201 from the backup", r.Status, r.Body)
		}
		// The edge without a backup: the request reaches no pool (and there
		// is no event channel to open).
		r = testkit.Send(t, client, testkit.Request{URL: demo.URL("EDGE_NO_BACKUP_PORT", "/ucwa/oauth/v1/applications/demo-no-backup/communication/startPhoneAudio"),
			ContentType: "application/json", Header: http.Header{"Authorization": {"Bearer " + token}}, Body: `{"to":"sip:john@contoso.com"}`})
		if r.Status != http.StatusGone || !strings.Contains(r.Body, `"subcode":"CannotRedirect"`) {
			t.Fatalf("call without a backup = %d %s, want 410 CannotRedirect", r.Status, r.Body)
		}
	})
}

// TestModules: this command has the edge and the pool emulator.
func TestModules(t *testing.T) {
	for _, id := range []string{"http.handlers.ucwa", "http.handlers.ucwa_pool_emulator", "http.handlers.reverse_proxy"} {
		if _, err := caddy.GetModule(id); err != nil {
			t.Errorf("%s is not registered: %v", id, err)
		}
	}
}
