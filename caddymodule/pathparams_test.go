package caddymodule

import (
	"net/http"
	"testing"
)

// TestPathParameterInputs: a terminated request whose path gives a phone
// destination or operationId as a segment's parameter
// (startPhoneAudio;to=tel:+1900..., communication;phoneNumber=...,
// startPhoneAudio;operationId=...), escaped or not, is refused with 400
// ParameterValidationFailure naming it, alone or as a batch part, and
// never reaches the pool. The edge matches such a path with the
// parameters cut, as a server reading RFC 3986's path parameters routes
// it, and forwards the path as written: a pool or proxy that reads its
// inputs there too (JAX-RS's @MatrixParam, Spring's matrix variables)
// would take a number no rule judged. Other parameters pass.
func TestPathParameterInputs(t *testing.T) {
	e := startBindingEdge(t)
	auth := callerBearer(t)
	const (
		call   = `{"to":"sip:john@x.contoso.com","operationId":"a"}`
		stored = `{"phoneNumber":"+14255551234"}`
	)
	for _, tc := range []struct {
		name, method, path, body, param string // param: "" for delivered
		alone                           bool   // not batched: a part's path may not escape '%'
	}{
		{"the call's to", "POST", startOpsPath + ";to=tel:+19005551234", call, "to", false},
		{"the call's to, escaped", "POST", startOpsPath + "%3Bto=tel:%2B19005551234", call, "to", true},
		{"the callback number before the operation's name", "POST", opsApp + "/communication;phoneNumber=+19005551234/startPhoneAudio", call, "phoneNumber", false},
		{"a second operationId", "POST", startOpsPath + ";operationId=b", call, "operationId", false},
		{"the stored number of PUT communication", "PUT", opsApp + "/communication;phoneNumber=+19005551234", stored, "phoneNumber", false},

		{"another parameter", "POST", startOpsPath + ";x=1", call, "", false},
	} {
		for _, batch := range []bool{false, true} {
			if batch && tc.alone {
				continue
			}
			name := tc.name
			if batch {
				name += ", batched"
			}
			t.Run(name, func(t *testing.T) {
				resp, got := e.sendBody(auth, tc.method, tc.path, "application/json", tc.body, batch)
				if tc.param == "" {
					if resp.Status != http.StatusCreated || len(got) != 1 {
						t.Fatalf("status %d (%s), the pool got %d requests; want 201 and one", resp.Status, resp.Body, len(got))
					}
					return
				}
				assertRefusedUndelivered(t, resp, got, tc.param, "ParameterValidationFailure")
			})
		}
	}
}
