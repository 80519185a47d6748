package caddymodule

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// FuzzIdempotencyKeyInput: two requests of startPhoneAudio share an
// idempotency key's input exactly when they have the same tenant (or
// the same issuer standing for it), caller, application and
// operationId (as the edge reads it): no two callers' or applications'
// parts run together into one key, and a request without an
// operationId, or with a blank one, has none.
func FuzzIdempotencyKeyInput(f *testing.F) {
	f.Add("t1", "", "oid-a", "192", "op-1", "t1", "", "oid-a", "192", "op-1")
	f.Add("t1", "", "oid-a", "192", "op-1", "t1", "", "oid-a1", "92", "op-1")
	f.Add("t1", "", "oid-a", "192", "op-1", "", "t1", "oid-a", "192", "op-1")
	f.Add("", "https://issuer.example/", "a", "b", "c", "https://issuer.example/", "", "a", "b", "c")
	f.Add("t", "", "a", "b", "", "t", "", "a", "b", "")
	cleaner, err := ucwa.NewCleaner("US", ucwa.TelURI)
	if err != nil {
		f.Fatal(err)
	}
	op := ucwa.FindOperation(ucwa.DefaultOperations(), "startPhoneAudio")
	// input is the key input of a call with operationId id, and id as the
	// edge reads it (blank is none), or false when the edge refuses the
	// body.
	input := func(tid, issuer, caller, application, id string) ([]byte, string, bool) {
		body, err := json.Marshal(map[string]string{"to": "sip:a@contoso.com", "operationId": id})
		if err != nil {
			return nil, "", false
		}
		c, e := cleaner.Intake(op, ucwa.Incoming{Method: "POST", Header: http.Header{"Content-Type": {"application/json"}}, Body: body})
		if e != nil {
			return nil, "", false
		}
		read, _ := c.Value("operationId")
		return appendIdempotencyKeyInput(nil, tid, issuer, caller, application, c), read, true
	}
	f.Fuzz(func(t *testing.T, tid1, issuer1, caller1, app1, id1, tid2, issuer2, caller2, app2, id2 string) {
		in1, read1, ok1 := input(tid1, issuer1, caller1, app1, id1)
		in2, read2, ok2 := input(tid2, issuer2, caller2, app2, id2)
		if !ok1 || !ok2 {
			return
		}
		if (len(in1) == 0) != (read1 == "") {
			t.Fatalf("operationId %q, read as %q: key input %q", id1, read1, in1)
		}
		if len(in1) == 0 || len(in2) == 0 {
			return
		}
		// The tenant part: the issuer where there is one (a token of an
		// issuer that stands for its tenant), else tid.
		tenant := func(tid, issuer string) [2]string {
			if issuer != "" {
				return [2]string{"issuer", issuer}
			}
			return [2]string{"tid", tid}
		}
		same := tenant(tid1, issuer1) == tenant(tid2, issuer2) && caller1 == caller2 && app1 == app2 && read1 == read2
		if bytes.Equal(in1, in2) != same {
			t.Fatalf("key inputs equal: %v, requests alike: %v\n%q\n%q", bytes.Equal(in1, in2), same, in1, in2)
		}
	})
}
