package caddymodule

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// recordedAnswer is an answer as the store holds it for replay.
type recordedAnswer struct {
	status                int
	location, contentType string
	body                  string
	// onEdge: location is what follows the edge's scheme and host in a
	// Location the edge rewrote onto them (see poolResponseWriter), which
	// a replay puts after the repeat's own: the first request's may name
	// the edge otherwise (another name of it, another site's edge).
	onEdge bool
	// inputs is the inputsDigest of the request answered; "" in answers
	// recorded without one, which answer any repeat.
	inputs string
	// retryAfter is the answer's Retry-After as recordedRetryAfter reads
	// it: delta-seconds or an IMF-fixdate; "" for none. recordedAt is
	// when the answer went out (Unix milliseconds): a replay counts
	// delta-seconds down from then.
	retryAfter string
	recordedAt int64
	// notEmergency: a failure (3xx and over) answered to a request that
	// was no emergency call when it came (see heldBackByFirst).
	notEmergency bool
	// sealed: body is sealed (see sealBody).
	sealed bool
}

// replayable reports whether an answer of status with the headers h
// (nil: not known) can be given again from its record, which keeps its
// Location, Content-Type and a failure's Retry-After, and no other
// header. Not so an answer whose meaning rests on another: a 401 (its
// WWW-Authenticate challenges), 407 (Proxy-Authenticate), 405 (Allow)
// or 426 (Upgrade), nor a failure that challenges the request's
// credentials (WWW-Authenticate or Proxy-Authenticate, as a 403 with
// error="insufficient_scope"). A challenge speaks of the first
// request's credentials too, which a repeat may have renewed: given
// again to a repeat with a token of more scopes, it would say that
// token falls short. Such an answer is not recorded, and its key stays
// reserved: repeats get 409 (use a new operationId).
func replayable(status int, h http.Header) bool {
	switch status {
	case http.StatusUnauthorized, http.StatusProxyAuthRequired, http.StatusMethodNotAllowed, http.StatusUpgradeRequired:
		return false
	}
	return status < http.StatusMultipleChoices || len(h["Www-Authenticate"]) == 0 && len(h["Proxy-Authenticate"]) == 0
}

// maxRetryAfterDigits bounds a Retry-After in delta-seconds that is
// recorded (over 300 years): a longer one is not a pool's.
const maxRetryAfterDigits = 10

// maxRetryAfterLen bounds a Retry-After HTTP-date that is read: the
// longest of the three forms (RFC 850's) is 33 bytes.
const maxRetryAfterLen = 40

// recordedRetryAfter is the Retry-After of an answer of status with the
// headers h, as it is recorded for replay: its delta-seconds without
// leading zeros, or its HTTP-date as an IMF-fixdate; "" when it has none,
// more than one, one that is neither, or when status is a success. A
// success keeps the record format that edges without Retry-After read
// (an older edge sharing the store replays it, and takes a repeat of an
// emergency call it answered as answered), and Retry-After means nothing
// on it.
func recordedRetryAfter(status int, h http.Header) string {
	if status < http.StatusMultipleChoices {
		return ""
	}
	vs := h.Values("Retry-After")
	if len(vs) != 1 || vs[0] == "" || len(vs[0]) > maxRetryAfterLen {
		return ""
	}
	v := vs[0]
	if digits(v) {
		if len(v) > maxRetryAfterDigits {
			return ""
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return ""
		}
		return strconv.FormatInt(n, 10)
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return ""
	}
	return t.UTC().Format(http.TimeFormat)
}

// digits reports whether s is ASCII digits only.
func digits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// idempotencyNow is the clock of recorded answers' Retry-After and of
// how long a request was in flight (see endedTTL); a test sets it to a
// fake clock.
var idempotencyNow = time.Now

// retryAfterNow is a's Retry-After for a replay at now (Unix
// milliseconds): an HTTP-date as recorded, delta-seconds counted down
// from when the answer went out, in whole seconds rounded up, at most
// the recorded value (a clock behind the recording edge's gives no more
// than the pool said); "" once it has passed. A repeat of the same
// operationId gets the same answer until its record expires, so a
// Retry-After of 0 (or a date gone by) would have a client that honours
// it send it again at once, and again, for the rest of the window.
func (a *recordedAnswer) retryAfterNow(now int64) string {
	if !digits(a.retryAfter) {
		if at, err := http.ParseTime(a.retryAfter); err != nil || at.UnixMilli() <= now {
			return ""
		}
		return a.retryAfter
	}
	n, err := strconv.ParseInt(a.retryAfter, 10, 64)
	if err != nil {
		return ""
	}
	left := a.recordedAt + n*1000 - now
	if left <= 0 {
		return ""
	}
	return strconv.FormatInt(min((left+999)/1000, n), 10)
}

// answers reports whether a is the answer to the repeat in: an answer to
// a request to the same resource with the same inputs, or one recorded
// without them.
func (a *recordedAnswer) answers(in *intake, keyed bool) bool {
	if a.inputs == "" {
		return true
	}
	if in.cleaned == nil {
		return false
	}
	digest := inputsDigest(keyed, in.path, in.cleaned)
	return a.inputs == string(digest[:])
}

// A recorded answer is "a" ("e" when its Location is on the edge, see
// onEdge; "A" and "E" when the inputsDigest of the request follows), its
// status in three digits, the lengths of Location and Content-Type in
// decimal each followed by ":", then Location, Content-Type and the
// body. A failure answered to a request that was no emergency call
// (notEmergency, with the inputsDigest) is "R" (as "A") or "S" (as "E"),
// its inputsDigest and status, the lengths of Location, Content-Type and
// Retry-After ("" for none) and recordedAt, each in decimal followed by
// ":", then Location, Content-Type, Retry-After and the body: an edge
// that knows only the first four letters takes it for a value it cannot
// read, and answers a repeat 409, never a replay without Retry-After,
// and never holds back an emergency call by it. It holds no token and no
// value of the request. A record whose body is sealed (see answer_seal.go)
// is "~" and the record, the sealed body for its body: an edge that
// does not know "~" answers its repeats 409.
//
// encodeWith encodes a so, with the inputsDigest inputs ("" for none)
// and the body body+bodyBytes (a recorder's are bytes), in one
// allocation: the numbers are formatted on the stack.
func (a *recordedAnswer) encodeWith(inputs []byte, body string, bodyBytes []byte) string {
	var b strings.Builder
	b.Grow(2 + len(inputs) + 5*20 + len(a.location) + len(a.contentType) + len(a.retryAfter) + len(body) + len(bodyBytes))
	if a.sealed {
		b.WriteByte('~')
	}
	var num [20]byte
	kind := byte('a')
	if a.onEdge {
		kind = 'e'
	}
	if len(inputs) > 0 {
		kind -= 'a' - 'A'
	}
	// Without notEmergency (a success), or without the inputsDigest
	// (none is recorded so), an answer is recorded without its
	// Retry-After: "R" and "S" are failures and hold the digest.
	retryAfter := a.notEmergency && a.status >= http.StatusMultipleChoices && len(inputs) > 0
	if retryAfter {
		kind = 'R'
		if a.onEdge {
			kind = 'S'
		}
	}
	b.WriteByte(kind)
	b.Write(inputs)
	b.Write(strconv.AppendInt(num[:0], int64(a.status), 10))
	b.Write(strconv.AppendInt(num[:0], int64(len(a.location)), 10))
	b.WriteByte(':')
	b.Write(strconv.AppendInt(num[:0], int64(len(a.contentType)), 10))
	b.WriteByte(':')
	if retryAfter {
		b.Write(strconv.AppendInt(num[:0], int64(len(a.retryAfter)), 10))
		b.WriteByte(':')
		b.Write(strconv.AppendInt(num[:0], a.recordedAt, 10))
		b.WriteByte(':')
	}
	b.WriteString(a.location)
	b.WriteString(a.contentType)
	if retryAfter {
		b.WriteString(a.retryAfter)
	}
	b.WriteString(body)
	b.Write(bodyBytes)
	return b.String()
}

// decodeAnswer reads a recorded answer; false for a reservation in
// flight or a value it cannot read.
func decodeAnswer(v string) (recordedAnswer, bool) {
	var a recordedAnswer
	if strings.HasPrefix(v, "~") {
		a.sealed, v = true, v[1:]
	}
	if v == "" {
		return a, false
	}
	rest := v[1:]
	switch v[0] {
	case 'A', 'E', 'R', 'S':
		if len(rest) < inputsDigestLen {
			return a, false
		}
		a.inputs, rest = rest[:inputsDigestLen], rest[inputsDigestLen:]
	case 'a', 'e':
	default:
		return a, false
	}
	a.onEdge = v[0] == 'e' || v[0] == 'E' || v[0] == 'S'
	withRetryAfter := v[0] == 'R' || v[0] == 'S'
	a.notEmergency = withRetryAfter
	if len(rest) < 3 {
		return a, false
	}
	status, err := strconv.Atoi(rest[:3])
	if err != nil || status < 200 || status > 999 {
		return a, false
	}
	a.status = status
	rest = rest[3:]
	// The lengths of Location, Content-Type and Retry-After, and
	// recordedAt.
	var lengths [4]int64
	fields := 2
	if withRetryAfter {
		fields = 4
	}
	for i := range fields {
		n, tail, ok := strings.Cut(rest, ":")
		l, err := strconv.ParseInt(n, 10, 64)
		if !ok || err != nil || l < 0 || i < 3 && l > int64(len(tail)) {
			return a, false
		}
		lengths[i], rest = l, tail
	}
	if lengths[0]+lengths[1]+lengths[2] > int64(len(rest)) {
		return a, false
	}
	a.location, rest = rest[:lengths[0]], rest[lengths[0]:]
	a.contentType, rest = rest[:lengths[1]], rest[lengths[1]:]
	a.retryAfter, a.body = rest[:lengths[2]], rest[lengths[2]:]
	if withRetryAfter {
		// A failure, whose Retry-After reads as recorded: a value
		// recordedRetryAfter gives, or none.
		a.recordedAt = lengths[3]
		if a.status < http.StatusMultipleChoices || a.retryAfter != "" && recordedRetryAfter(a.status, http.Header{"Retry-After": {a.retryAfter}}) != a.retryAfter {
			return a, false
		}
	}
	return a, true
}

// write answers r, a repeat, with a recorded answer, marked as a replay.
func (a *recordedAnswer) write(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	switch {
	case a.onEdge:
		scheme, host := edgeOrigin(r)
		h.Set("Location", scheme+"://"+host+a.location)
	case a.location != "":
		h.Set("Location", a.location)
	}
	if a.contentType != "" {
		h.Set("Content-Type", a.contentType)
	}
	if retryAfter := a.retryAfterNow(idempotencyNow().UnixMilli()); retryAfter != "" {
		h.Set("Retry-After", retryAfter)
	}
	h.Set(headerReplayed, "true")
	w.WriteHeader(a.status)
	_, _ = io.WriteString(w, a.body)
}

// answerRecorder passes an answer on to the client and records it: its
// final status, Location and Content-Type as they go out, and, with
// keepBody (idempotency), its body up to maxRecordedBody. The audit trail
// and idempotency share one per request.
type answerRecorder struct {
	caddyhttp.ResponseWriterWrapper
	recordedAnswer
	keepBody bool
	recorded []byte // the body
	overflow bool   // the body is longer than maxRecordedBody
	// unreplayable: the answer needs a header its record does not keep
	// (see replayable).
	unreplayable bool
	// seal is the key that seals the recorded body (see
	// answer_seal.go); nil: it is recorded as it is.
	seal *[32]byte
	// edgeLocation is the Location a pool's answer got rewritten onto
	// the edge's scheme and host (see poolResponseWriter), which take its
	// first edgeOriginLen bytes; "" for none.
	edgeLocation  string
	edgeOriginLen int
	// line says who writes the audit line of the request, and marks its
	// answer under way (see lineClaim).
	line lineClaim
}

// locationOnEdge tells w that the pool's Location was rewritten to loc,
// whose first originLen bytes are the edge's scheme and host as the
// client reached it: a replay puts the rest on the repeat's.
func (w *answerRecorder) locationOnEdge(loc string, originLen int) {
	w.edgeLocation, w.edgeOriginLen = loc, originLen
}

// WriteHeader records the final status and its headers. An answer in a
// content coding (one the pool sent unasked) cannot be replayed as it
// went out, for the replay has no Content-Encoding: its body is not
// recorded (overflow), and repeats get 409.
func (w *answerRecorder) WriteHeader(status int) {
	if w.status == 0 && status >= http.StatusOK {
		w.status = status
		h := w.Header()
		w.location, w.contentType = headerValue(h, "Location"), headerValue(h, "Content-Type")
		if w.keepBody {
			w.unreplayable = !replayable(status, h)
			if w.retryAfter = recordedRetryAfter(status, h); w.retryAfter != "" {
				w.recordedAt = idempotencyNow().UnixMilli()
			}
		}
		if w.edgeLocation != "" && w.location == w.edgeLocation {
			w.location, w.onEdge = w.location[w.edgeOriginLen:], true
		}
		if w.keepBody {
			if ce := headerValue(h, "Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
				w.overflow, w.recorded = true, nil
			}
		}
		// Marked under way once status is set, which the line a stop
		// writes of an answer under way reads; and held back here for
		// good once the stop wrote the line.
		w.line.answering()
	}
	w.ResponseWriterWrapper.WriteHeader(status)
}

func (w *answerRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.keepBody && !w.overflow {
		if len(w.recorded)+len(b) > maxRecordedBody {
			w.overflow, w.recorded = true, nil
		} else {
			w.recorded = append(w.recorded, b...)
		}
	}
	return w.ResponseWriterWrapper.Write(b)
}

// FlushError holds back the flushes of an answer whose body is recorded
// (reverse_proxy flushes as it copies an answer of unknown length): the
// client gets an answer that fits the server's buffer once it is
// recorded, so that a repeat sent as soon as the answer arrives is
// replayed, not answered 409. Other answers, and one too long to record
// (overflow), are flushed as they come.
func (w *answerRecorder) FlushError() error {
	if w.keepBody && !w.overflow {
		return nil
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// ReadFrom copies through Write when the body is recorded, and passes
// on to the client's ReadFrom when it is not.
func (w *answerRecorder) ReadFrom(r io.Reader) (int64, error) {
	if !w.keepBody {
		if w.status == 0 {
			w.WriteHeader(http.StatusOK)
		}
		return w.ResponseWriterWrapper.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{w}, r)
}

// encode is the recorded answer as the store holds it, with the
// inputsDigest of the request it answers: its body sealed under seal,
// when the recorder has one and there is a body.
func (w *answerRecorder) encode(inputs *[inputsDigestLen]byte) string {
	if w.seal == nil || len(w.recorded) == 0 {
		return w.recordedAnswer.encodeWith(inputs[:], "", w.recorded)
	}
	a := w.recordedAnswer
	a.sealed = true
	return a.encodeWith(inputs[:], "", sealBody(w.seal, w.recorded))
}
