package caddymodule

import (
	"net/http"
	"sync"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestRedisReleaseEveryKey: a batch whose parts' keys are all reserved
// and that reaches no pool (410) releases every key, though the release
// of its first part's fails (Redis Cluster answers CLUSTERDOWN for a
// slot whose shard is down): its second part, sent again alone, is
// delivered, where the release stopped at the first failure and left
// the second part's key held, its repeats answered 409 for the window
// though it was never delivered. The first part's key, whose release
// failed, is held until the window ends: its repeat gets 409. The keys
// go to Redis in one pipeline: the proxy sees both releases.
func TestRedisReleaseEveryKey(t *testing.T) {
	srv := testkit.StartRedis(t)
	proxy := newRedisProxy(t, srv.Addr())
	pool := newIdemPool(t, "primary")
	e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t), "store redis redis://"+proxy.addr+" {\n\t\t\ttimeout 5s\n\t\t}", "primary "+pool.Addr()))
	caller := idemToken(t, "tenant-1", "oid-a", "sub-a")
	const app = "/ucwa/v1/applications/1"
	second := "POST " + app + "/communication/conversations/c1/phoneAudio/addPhoneAudio?to=4255550000&operationId=every-2 HTTP/1.1\r\n\r\n"
	batch := testkit.Request{URL: app + "/batch", ContentType: batchType, Header: caller, Body: batchBody(
		innerPOST(app+"/communication/startPhoneAudio", "application/json", `{"to":"4255551234","operationId":"every-1"}`), second)}

	var once sync.Once
	proxy.fail(func(args []string) bool {
		fail := false
		if isRelease(args) {
			once.Do(func() { fail = true })
		}
		return fail
	})
	pool.Kill()
	if resp := e.send(batch); resp.Status != http.StatusGone {
		t.Fatalf("the batch, the pool down: %d %s, want 410", resp.Status, resp.Body)
	}
	pool.Restart(t)
	alone := testkit.Request{Method: http.MethodPost, URL: app + "/communication/conversations/c1/phoneAudio/addPhoneAudio?to=4255550000&operationId=every-2", Header: caller}
	if resp := e.send(alone); resp.Status != http.StatusCreated {
		t.Fatalf("the batch's second part, sent again alone: %d %s, want 201", resp.Status, resp.Body)
	}
	assertConflict(t, e.call(idemCall{header: caller, op: "every-1"}))
	if got := proxy.releases.Load(); got != 1 {
		t.Errorf("Redis ran %d releases, want 1 (the other failed)", got)
	}
	if got := len(pool.Received()); got != 1 {
		t.Errorf("the pool got %d requests, want 1", got)
	}
}
