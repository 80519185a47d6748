package caddymodule

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// FuzzAcceptBatch runs the edge's batch intake on any body: a refusal is
// a 4xx UCWA error; an accepted batch is forwarded as one that parses
// again into as many parts, its unguarded parts as they came, its guarded
// parts cleaned so that cleaning them again changes nothing.
func FuzzAcceptBatch(f *testing.F) {
	h := &Handler{DefaultRegion: "US", MaxBatchParts: 8, MaxBatchOperations: 8}
	if err := h.provisionOperations(); err != nil {
		f.Fatal(err)
	}
	var err error
	if h.cleaner, err = ucwa.NewCleaner("US", ucwa.TelURI); err != nil {
		f.Fatal(err)
	}
	batchOp := ucwa.FindOperation(h.matcher.Operations(), "batch")
	app := "/ucwa/v1/applications/1"
	accept := func(body []byte) (*intake, *ucwa.Error) {
		r := httptest.NewRequest(http.MethodPost, app+"/batch", nil)
		r.Header.Set("Content-Type", batchType)
		in := &intake{r: r, op: batchOp, buf: new(bodyBuffer)}
		in.buf.Write(body)
		return in, h.acceptBatch(in)
	}
	for _, body := range []string{
		batchBody("GET " + app + "/me HTTP/1.1\r\n"),
		batchBody("POST "+app+"/communication/startPhoneAudio?to=%2B1+425+555+1234 HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"+`{"operationId":"1","phoneNumber":"(425) 555-0100"}`,
			"POST "+app+"/communication/conversations/eee0/addParticipant HTTP/1.1\r\n"+`Data: {"to":"sip:+1-425-555-9999@gw;user=phone"}`+"\r\n"),
		batchBody("PUT "+app+"/communication HTTP/1.1\r\nIf-Match: 1\r\nContent-Type: application/xml\r\nContent-Length: 87\r\n\r\n"+
			`<resource><property name="phoneNumber">tel:+1-425-555-1234;ext=12</property></resource>`, "GET "+app+"/events?ack=1 HTTP/1.1\r\n\r\n"),
		batchBody("POST " + app + "/me/callForwardingSettings/unansweredCallSettings/unansweredCallToContact?target=4255551234&ringDelay=+07 HTTP/1.1\r\n"),
	} {
		if _, e := accept([]byte(body)); e != nil {
			f.Fatalf("seed refused: %v", e)
		}
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		in, e := accept(body)
		if e != nil {
			if e.Status < 400 || e.Status > 499 || e.Message == "" {
				t.Fatalf("refusal %#v", e)
			}
			return
		}
		sent, _ := ucwa.ParseBatch(batchType, body, 0)
		out, perr := ucwa.ParseBatch(batchType, in.body, 0)
		if perr != nil || len(out.Parts()) != len(sent.Parts()) {
			t.Fatalf("forwarded batch: %v, %d parts for %d\n%q", perr, len(out.Parts()), len(sent.Parts()), in.body)
		}
		if in.bodyInBuf != bytes.Equal(in.body, body) {
			t.Fatalf("bodyInBuf %v for a batch that changed: %v", in.bodyInBuf, !bytes.Equal(in.body, body))
		}
		for i, p := range out.Parts() {
			m, _ := h.matcher.MatchTarget(p.Method, p.Target())
			if m.Operation == nil && (p.Target() != sent.Parts()[i].Target() || !bytes.Equal(p.Body(), sent.Parts()[i].Body())) {
				t.Fatalf("unguarded part %d changed", i+1)
			}
		}
		again, e := accept(in.body)
		if e != nil || !bytes.Equal(again.body, in.body) {
			t.Fatalf("the cleaned batch, taken in again: %v\n%q\n%q", e, in.body, again.body)
		}
	})
}
