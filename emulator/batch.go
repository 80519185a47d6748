package emulator

import (
	"bytes"
	"net/http"
	"path"
	"strings"

	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// serveBatch answers a batch (op is the batch row): each part as if it
// came alone, in one multipart/batching answer of a response part per
// request, in request order.
func (e *Emulator) serveBatch(w http.ResponseWriter, r *http.Request, op *ucwa.Operation, body []byte, errFormat ucwa.Format) {
	if !op.AllowsMethod(r.Method) {
		op.MethodError(r.Method).Write(w, errFormat)
		return
	}
	b, uerr := ucwa.ParseBatch(r.Header.Get("Content-Type"), body, ucwa.DefaultMaxBatchParts)
	if uerr != nil {
		uerr.Write(w, errFormat)
		return
	}
	answers := make([]ucwa.BatchResponse, len(b.Parts()))
	for i, p := range b.Parts() {
		var rec recorder
		e.servePart(&rec, r, p)
		rec.WriteHeader(http.StatusOK) // a handler that wrote nothing answered 200
		answers[i] = ucwa.BatchResponse{Status: rec.status, Header: rec.header, Body: rec.body.Bytes()}
	}
	contentType, out, err := ucwa.EncodeBatchResponse(answers)
	if err != nil {
		ucwa.NewError(http.StatusInternalServerError, ucwa.SubcodeServiceFailure, "The batch's answers cannot be written.").Write(w, errFormat)
		return
	}
	writeBody(w, http.StatusOK, contentType, out)
}

// servePart answers one part of the batch r: a request with the part's
// method, target, headers and body (a Data header's value as a JSON body,
// as Microsoft's batch.js sends it), on the batch's connection.
func (e *Emulator) servePart(w *recorder, batch *http.Request, p *ucwa.BatchPart) {
	req, err := http.NewRequestWithContext(batch.Context(), p.Method, p.Target(), bytes.NewReader(p.Body()))
	if err != nil {
		ucwa.NewError(http.StatusBadRequest, ucwa.SubcodeDeserializationFailure, "The request target cannot be read.").Write(w, ucwa.JSON)
		return
	}
	req.Header = p.Header.Clone()
	req.Header.Del("Content-Length")
	if p.Source() == ucwa.BodyInDataHeader {
		req.Header.Del("Data")
		if req.Header.Get("Content-Type") == "" {
			req.Header.Set("Content-Type", "application/json")
		}
	}
	req.Host, req.RemoteAddr = batch.Host, batch.RemoteAddr
	if strings.EqualFold(path.Base(req.URL.Path), "events") {
		w.Header().Set("X-MS-UcwaVersion", UcwaVersion)
		ucwa.NewError(http.StatusBadRequest, "", "The event channel cannot be batched.").Write(w, ucwa.ErrorFormat(0, req.Header.Get("Accept")))
		return
	}
	e.serve(w, req)
}

// recorder is the http.ResponseWriter of a batch part's answer.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *recorder) Header() http.Header {
	if w.header == nil {
		w.header = http.Header{}
	}
	return w.header
}

func (w *recorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *recorder) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}
