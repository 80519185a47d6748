package caddymodule

import (
	"net"
	"net/http"
	"time"
	"unicode"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// The audit trail: one line per request the edge terminates (and per
// near miss), written at info level by the logger http.handlers.ucwa.audit
// once the request is answered, so that Caddy's `log` can route it to a
// file of its own (`include http.handlers.ucwa.audit`) and keep it out of
// the default log (`exclude http.handlers.ucwa.audit`). Its fields:
//
//   - operation: the operation's rel ("startPhoneAudio"; "(near miss)")
//   - application: the application id of the path
//   - caller: sub, oid, tid and client_id of the verified token (absent
//     without one)
//   - remote_ip, client_ip: the connection's address and the client's
//     (Caddy's trusted_proxies)
//   - destinations: each destination of the request (of each part of a
//     batch), masked (+1425555****, sip:****@contoso.com), with its
//     property, part (in a batch), kind, region, type, and the decision
//     and rule of the destination policy
//   - decision, rule: the destination policy's decision on the request
//     (the first destination it refused or would refuse, else allowed)
//   - refused_by, refused_rule: the guard that refused the request and
//     why ("destinations", "deny_types")
//   - error: the UCWA code and subcode of an answer the edge gave itself
//   - idempotency: what idempotency did (reserved, replayed, conflict,
//     unprotected, store_error), when it is on
//   - pool: the pool that took the request
//   - status, duration (seconds)
//   - operation_id: the request's operationId, any run of more than four
//     digits masked, so that it cannot carry a number into the trail
//
// Tokens, full numbers and other property values never appear.

// auditLoggerName is the audit trail's logger, below the handler's own.
const auditLoggerName = "audit"

// auditMessage is the message of every audit line.
const auditMessage = "guarded request"

// nearMissOperation is the operation of a near miss in the audit trail.
const nearMissOperation = "(near miss)"

// auditing reports whether an audit line would be written at all: the
// audit logger's level. A log that excludes it by name still costs the
// line's status recorder, and no more.
func (h *Handler) auditing() bool {
	return h.audit != nil && h.audit.Core().Enabled(zapcore.InfoLevel)
}

// startAudit sets in up to be audited, and returns the ResponseWriter
// that records the status for it (one allocation, which idempotency
// shares: see intake.recorder).
func (in *intake) startAudit(w http.ResponseWriter) http.ResponseWriter {
	in.audit = true
	in.started = time.Now()
	in.rec = &answerRecorder{ResponseWriterWrapper: caddyhttp.ResponseWriterWrapper{ResponseWriter: w}}
	return in.rec
}

// recorder returns the recorder of the request's answer that keeps the
// answer's body too, for idempotency: the audit's, when there is one.
func (in *intake) recorder(w http.ResponseWriter) *answerRecorder {
	if in.rec == nil {
		in.rec = &answerRecorder{ResponseWriterWrapper: caddyhttp.ResponseWriterWrapper{ResponseWriter: w}}
	}
	in.rec.keepBody = true
	return in.rec
}

// auditPart is a cleaned part of a batch, kept for the audit line.
type auditPart struct {
	index   int
	cleaned *ucwa.Cleaned
}

// writeAudit writes the audit line of an answered request.
func (h *Handler) writeAudit(in *intake) {
	c := h.audit.Check(zap.InfoLevel, auditMessage)
	if c == nil {
		return
	}
	r := in.r
	status := 0
	if in.rec != nil {
		status = in.rec.status
	}
	fields := make([]zap.Field, 0, 16)
	fields = append(fields, zap.String("operation", in.op.Rel),
		zap.String("application", ucwa.ApplicationID(r.URL.Path)))
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if caller := callerOf(repl); caller != (auditCaller{}) {
		fields = append(fields, zap.Object("caller", caller))
	}
	fields = appendRemote(fields, r)
	dests := auditDestinations{parts: in.parts}
	if in.cleaned != nil {
		dests.parts = []auditPart{{cleaned: in.cleaned}}
	}
	if h.destinations != nil {
		dests.policy = h.destinations.policy
	}
	if dests.count() > 0 {
		fields = append(fields, zap.Array("destinations", dests))
	}
	if in.policy.Verdict != ucwa.VerdictNone {
		fields = append(fields, zap.String("decision", in.policy.Verdict.String()), zap.String("rule", in.policy.Rule.String()))
	}
	if in.refusedBy != "" {
		fields = append(fields, zap.String("refused_by", in.refusedBy), zap.String("refused_rule", in.refusedRule))
	}
	if in.failure != nil {
		fields = append(fields, zap.String("error", errorCode(in.failure)))
	}
	if in.idempotency > 0 {
		fields = append(fields, zap.String("idempotency", idempotencyResultNames[in.idempotency-1]))
	}
	if repl != nil {
		if pool, _ := repl.GetString("http.ucwa.pool"); pool != "" {
			fields = append(fields, zap.String("pool", pool))
		}
	}
	fields = append(fields, zap.Int("status", status), zap.Float64("duration", time.Since(in.started).Seconds()))
	if in.cleaned != nil {
		if id, _ := in.cleaned.Value("operationId"); id != "" {
			fields = append(fields, zap.String("operation_id", maskDigitRuns(id)))
		}
	}
	c.Write(fields...)
}

// auditNearMiss writes the audit line of a near miss, answered 404.
func (h *Handler) auditNearMiss(r *http.Request, started time.Time) {
	c := h.audit.Check(zap.InfoLevel, auditMessage)
	if c == nil {
		return
	}
	fields := make([]zap.Field, 0, 8)
	fields = append(fields, zap.String("operation", nearMissOperation))
	fields = appendRemote(fields, r)
	fields = append(fields, zap.String("error", errorCode(errNearMiss)), zap.Int("status", errNearMiss.Status),
		zap.Float64("duration", time.Since(started).Seconds()))
	c.Write(fields...)
}

// appendRemote appends the connection's address and the client's.
func appendRemote(fields []zap.Field, r *http.Request) []zap.Field {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	fields = append(fields, zap.String("remote_ip", host))
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != host {
		fields = append(fields, zap.String("client_ip", ip))
	}
	return fields
}

// errorCode is "code/subcode" of a UCWA error ("Forbidden/DialoutNotAllowed").
func errorCode(e *ucwa.Error) string {
	if e.Subcode == "" {
		return e.Code()
	}
	return e.Code() + "/" + e.Subcode
}

// auditCaller is the verified caller of a request, from the placeholders
// the token's grant published.
type auditCaller struct {
	sub, oid, tid, clientID string
}

func callerOf(repl *caddy.Replacer) auditCaller {
	var c auditCaller
	if repl == nil {
		return c
	}
	c.sub, _ = repl.GetString("http.ucwa.sub")
	c.oid, _ = repl.GetString("http.ucwa.oid")
	c.tid, _ = repl.GetString("http.ucwa.tid")
	c.clientID, _ = repl.GetString("http.ucwa.client_id")
	return c
}

// MarshalLogObject writes the caller's non-empty claims.
func (c auditCaller) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	for _, kv := range [...][2]string{{"sub", c.sub}, {"oid", c.oid}, {"tid", c.tid}, {"client_id", c.clientID}} {
		if kv[1] != "" {
			enc.AddString(kv[0], kv[1])
		}
	}
	return nil
}

// auditDestinations are the destinations of a request's cleaned parts,
// judged again by the policy (deterministic, and cheaper than keeping
// each decision) as the audit line writes them.
type auditDestinations struct {
	parts  []auditPart
	policy *ucwa.Policy // nil: no destination policy
}

func (a auditDestinations) count() int {
	n := 0
	for _, p := range a.parts {
		n += len(p.cleaned.Destinations())
	}
	return n
}

// MarshalLogArray writes each destination, masked.
func (a auditDestinations) MarshalLogArray(enc zapcore.ArrayEncoder) error {
	for _, p := range a.parts {
		dests := p.cleaned.Destinations()
		for i := range dests {
			err := enc.AppendObject(auditDestination{d: &dests[i], part: p.index, op: p.cleaned.Operation, policy: a.policy})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// auditDestination is one destination of the audit line.
type auditDestination struct {
	d      *ucwa.PropertyDestination
	part   int // its batch part, 0 alone
	op     *ucwa.Operation
	policy *ucwa.Policy
}

func (a auditDestination) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	d := a.d
	enc.AddString("property", d.Property)
	if a.part > 0 {
		enc.AddInt("part", a.part)
	}
	enc.AddString("kind", d.Kind.String())
	enc.AddString("destination", d.Masked())
	if d.IsNumber() {
		if d.Number.Region != "" {
			enc.AddString("region", d.Number.Region)
		}
		enc.AddString("type", d.Number.Type.String())
		if d.Number.Emergency {
			enc.AddBool("emergency", true)
		}
	}
	if a.policy != nil {
		dec := a.policy.Judge(a.op, d)
		enc.AddString("decision", dec.Verdict.String())
		enc.AddString("rule", dec.Rule.String())
	}
	return nil
}

// maskDigitRuns returns s with every run of more than four digits (any
// Unicode decimal digit, as numbers are read) replaced by as many '*': a
// client's string (an operationId) is logged, and a phone number in it is
// not. s is returned as it is when it has no such run.
func maskDigitRuns(s string) string {
	run := 0
	for _, c := range s {
		if !unicode.IsDigit(c) {
			run = 0
			continue
		}
		if run++; run > maxShownDigitRun {
			return maskRuns(s)
		}
	}
	return s
}

// maxShownDigitRun is the longest run of digits maskDigitRuns shows.
const maxShownDigitRun = 4

func maskRuns(s string) string {
	rs := []rune(s)
	for i := 0; i < len(rs); {
		j := i
		for j < len(rs) && unicode.IsDigit(rs[j]) {
			j++
		}
		if j-i > maxShownDigitRun {
			for k := i; k < j; k++ {
				rs[k] = '*'
			}
		}
		i = max(j, i+1)
	}
	return string(rs)
}
