package caddymodule

import (
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// TestIdempotencyEmergencyRelativeBatchPart: a batch's part whose target
// names no application is keyed with the batch's application, so the
// part sent again alone to the application's resource is a repeat of it;
// a reload that since made its number an emergency number does not let
// that repeat through: it is held back (409) as a part with a full path
// is.
func TestIdempotencyEmergencyRelativeBatchPart(t *testing.T) {
	token := testkit.Mint(t, jwt.SigningMethodES256, testkit.Keys(t).EC, "", testkit.Claims(time.Now(),
		jwt.MapClaims{"tid": "tenant-1", "oid": "oid-a", "scp": "Conversations.Initiate"}))
	caller := http.Header{"Authorization": {"Bearer " + token}}
	const app = "/ucwa/v1/applications/1"
	body := func(op, to string) string { return `{"to":"` + to + `","operationId":"` + op + `"}` }
	for _, st := range idemStores {
		t.Run(st.name, func(t *testing.T) {
			pool := newIdemPool(t, "primary")
			storeConfig := st.config(t)
			config := emergencyCaddyfile(t, storeConfig, pool)
			e := startEdge(t, "caddyfile", config("911"))
			batch := e.send(testkit.Request{URL: app + "/batch", ContentType: batchType, Header: caller.Clone(),
				Body: batchBody(innerPOST("/communication/startPhoneAudio", "application/json", body("relative-part", "4255550100")))})
			if batch.Status != http.StatusCreated || len(pool.Received()) != 1 {
				t.Fatalf("batch: %d %s, %d requests at the pool", batch.Status, batch.Body, len(pool.Received()))
			}

			e.Load("caddyfile", config("911 +14255550100"))

			assertConflict(t, e.call(idemCall{header: caller, op: "relative-part", body: body("relative-part", "4255550100")}))
			if got := len(pool.Received()); got != 1 {
				t.Fatalf("the part alone, an emergency call now, reached the pool: %d requests", got)
			}
		})
	}
}

// TestPartResourcePath: a part that names no application goes below the
// batch's, in the same application the key names.
func TestPartResourcePath(t *testing.T) {
	for _, c := range []struct{ part, batch, want string }{
		{"/ucwa/v1/applications/2/communication/startPhoneAudio", "/ucwa/v1/applications/1/batch", "/ucwa/v1/applications/2/communication/startPhoneAudio"},
		{"/communication/startPhoneAudio", "/ucwa/v1/applications/1/batch", "/ucwa/v1/applications/1/communication/startPhoneAudio"},
		{"/communication/startPhoneAudio", "/ucwa/v1/Applications/A7/batch", "/ucwa/v1/Applications/A7/communication/startPhoneAudio"},
		{"/communication/startPhoneAudio", "/ucwa/v1/./applications/1/../1/batch", "/ucwa/v1/applications/1/communication/startPhoneAudio"},
		{"/communication/startPhoneAudio", "/ucwa/v1/applications/1", "/ucwa/v1/applications/1/communication/startPhoneAudio"},
		{"/communication/startPhoneAudio", "/ucwa/v1/batch", "/communication/startPhoneAudio"},
		{"/communication/startPhoneAudio", "/ucwa/v1/applications", "/communication/startPhoneAudio"},
	} {
		got := partResourcePath(c.part, c.batch)
		if got != c.want {
			t.Errorf("partResourcePath(%q, %q) = %q, want %q", c.part, c.batch, got, c.want)
		}
		if want := ucwa.ApplicationID(c.part); want == "" && ucwa.ApplicationID(got) != ucwa.ApplicationID(c.batch) {
			t.Errorf("partResourcePath(%q, %q) = %q: application %q, the batch's is %q", c.part, c.batch, got, ucwa.ApplicationID(got), ucwa.ApplicationID(c.batch))
		}
	}
}
