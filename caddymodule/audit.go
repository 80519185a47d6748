package caddymodule

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ucwa-edge/caddy-ucwa/internal/metrics"
	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// The audit trail: one line per request the edge terminates (and per
// near miss), written at info level by the logger http.handlers.ucwa.audit
// once the request is answered, or as the process exits under it (see
// audit_stop.go), so that Caddy's `log` can route it to a
// file of its own (`include http.handlers.ucwa.audit`) and keep it out of
// the default log (`exclude http.handlers.ucwa.audit`). Its fields:
//
//   - operation: the operation's rel ("startPhoneAudio"; "(near miss)")
//   - application: the application id of the path, its long digit runs
//     masked as a destination is (at most their first seven digits
//     shown, never their last four): the client writes it, and may
//     write a number; its first 128 bytes and "…" when
//     it is longer, so that a client cannot make each line as long as a
//     request line may be
//   - caller: sub, oid, tid, iss and client_id of the verified token
//     (absent without one); iss whenever the token has one, so that two
//     accepted issuers' callers of one sub without tid are told apart,
//     whichever issuer was listed first when the line was written; a
//     claim that reads as a telephone number masked as a destination is
//   - remote_ip, client_ip: the connection's address and the client's
//     (Caddy's trusted_proxies)
//   - destinations: each destination of the request (of each part of a
//     batch), masked (+1425555****, sip:****@contoso.com), with its
//     property, part (in a batch), kind, region, type, and the decision
//     and rule of the destination policy
//   - decision, rule: the destination policy's decision on the request
//     (the first destination it refused or would refuse, else allowed)
//   - refused_by: the guard that refused the request:
//     "destinations:<rule>" ("destinations:deny_types"), "limit:<name>",
//     "caller:<claim>" (deny_callers), "audit" (audit_on_error closed,
//     while the trail fails), "store" (the store failing or full under
//     on_error closed, or the caller at its max_entries_per_caller)
//   - over_limit: the first velocity limit that had no room for an
//     emergency call, which was delivered all the same
//   - error: the UCWA code and subcode of an answer the edge gave itself
//   - idempotency: what idempotency did (reserved, replayed, conflict,
//     unprotected, store_error), when it is on
//   - reservation_lost: true on the line of a request that may have
//     reached a pool and, when it ended, found that a key of its no
//     longer held its reservation (the store dropped it, or it expired
//     unrenewed): a repeat sent meanwhile may have been delivered again
//   - pool: the pool that took the request
//   - status, duration (in seconds, or as the log's duration_format
//     says): the answer's status; 0 when the client got no answer (a
//     handler after the edge aborted or panicked, which Caddy does not
//     answer: net/http closes the connection) or went away before any
//     pool had its request; 499 when it went away while a pool had it
//     (reverse_proxy's status, as in Caddy's access log); without
//     pools, the status of the next handlers' error (see errorStatus),
//     which handle_errors routes, run after the edge, may answer
//     otherwise, and 200 when they returned without an answer:
//     net/http's empty 200, which Caddy's access log shows as 0
//   - cut_by_stop: on the line of a request still in flight when a
//     stop's grace_period was over, written as the process exits, where
//     the stop found it: before_delivery (no pool had it), at_pool (the
//     pool named had it or was being handed it), at_next_handler
//     (without pools, the handlers after the edge had it), answering
//     (its answer, of the status given, was on its way to the client);
//     status 0 but for answering
//   - operation_id: the request's operationId, the digits of any run of
//     more than four digits masked (a run goes on across anything but a
//     letter: "+1 (425) 555-1234" is "+* (***) ***-****"), so that it
//     cannot carry a number into the trail
//   - parts: each guarded part of a batch (those the edge took in before
//     any refusal): its part (position), operation and operation_id
//
// Tokens, full numbers and other property values never appear.

// auditLoggerName is the audit trail's logger, below the handler's own.
const auditLoggerName = "audit"

// auditMessage is the message of every audit line.
const auditMessage = "guarded request"

// auditProbeMessage is the message of the entry that startup checks,
// and never writes, to learn whether a log takes the trail (see
// provisionAudit).
const auditProbeMessage = "is the audit trail taken"

// nearMissOperation is the operation of a near miss in the audit trail.
const nearMissOperation = "(near miss)"

// Words of Handler.AuditOnError.
const (
	auditOnErrorOpen   = "open"
	auditOnErrorClosed = "closed"
)

// newAuditLogger returns the audit trail's logger, below the handler's
// logger l, with its write errors counted in
// caddy_ucwa_audit_write_errors_total and its hangs in
// caddy_ucwa_audit_write_hangs_total, registered in reg (nil: none;
// the handlers of one configuration share them), and reported on l, and
// the output they are reported to, which tells whether the trail is
// failing. closed says what the error line says of the requests
// (Handler.AuditOnError).
func newAuditLogger(l *zap.Logger, reg prometheus.Registerer, closed bool) (*zap.Logger, *auditErrorOutput, error) {
	refused, err := metrics.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "ucwa", Name: "audit_write_errors_total",
		Help: "Audit lines that a log taking the trail failed to write (a full disk, a net log's server gone): each is missing from that log.",
	}))
	if err != nil {
		return nil, nil, err
	}
	hangs, err := metrics.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "ucwa", Name: "audit_write_hangs_total",
		Help: "Times a ucwa handler found lines of the audit trail being written for a second with none done (a hung file system): once per hang, until a line is done.",
	}))
	if err != nil {
		return nil, nil, err
	}
	out := &auditErrorOutput{refused: refused, hangs: hangs, logger: l, message: auditWriteErrorOpen, hungMessage: auditWriteHungOpen}
	if closed {
		out.message, out.hungMessage = auditWriteErrorClosed, auditWriteHungClosed
	}
	return l.Named(auditLoggerName).WithOptions(zap.ErrorOutput(out)), out, nil
}

// The error, once a minute at most, that lines of the audit trail were
// not written, by what requests get meanwhile (Handler.AuditOnError);
// and the line, once a minute at most, that a line was written again
// after a failure, with audit_on_error closed.
const (
	auditWriteErrorOpen   = "audit lines not written: a log of the audit trail failed to write them; the requests went on"
	auditWriteErrorClosed = "audit lines not written: a log of the audit trail failed to write them; guarded requests but emergency calls are answered 503 until a line is written (audit_on_error closed)"
	auditWrittenAgain     = "audit trail written again: guarded requests are delivered again (audit_on_error closed)"
	auditWriteHungOpen    = "audit lines not written within 1s: a log of the audit trail is not taking them (a hung file system?); the requests go on, their answers waiting for their lines"
	auditWriteHungClosed  = "audit lines not written within 1s: a log of the audit trail is not taking them (a hung file system?); guarded requests but emergency calls are answered 503 until a line is written (audit_on_error closed)"
)

// auditWriteHungAfter is how long lines may be being written, none of
// them done, before the trail is taken for hung (and, with
// audit_on_error closed, for failing): a write to a hung file system (an
// NFS server gone) neither fails nor returns, and a local one takes
// microseconds.
const auditWriteHungAfter = time.Second

// auditNow is the clock of the trail's hung writes (see
// auditErrorOutput.begin).
var auditNow = time.Now

// auditErrorOutput is the audit logger's zap ErrorOutput, where zap
// reports a line that a log's writer refused ("<time> write error:
// <error>", the error naming the file, never a field of the line), and
// which is otherwise stderr, a line each time: under load on a full
// disk, one per request. Here each is counted, and logged on the
// handler's logger at the first and then once a minute at most, with
// the lines since and the error.
//
// It also keeps whether the trail is failing, for audit_on_error closed:
// zap reports a failed write before the line's Write returns, and says
// nothing of one that succeeded, so a line written with no report since
// it began (see write) is one every log took. A write that hangs reports
// nothing either: the lines being written, and when one was last done,
// tell it (see begin).
type auditErrorOutput struct {
	refused prometheus.Counter
	warning throttledWarning
	logger  *zap.Logger
	message string
	// state is twice the failures reported so far, plus 1 while the
	// trail is failing: the last line known written or not was not, or
	// lines were being written for auditWriteHungAfter.
	state        atomic.Uint64
	writtenAgain throttledWarning
	// writing counts the lines being written; progress is when one was
	// last done, or begun while none was being written (UnixNano of
	// auditNow).
	writing     atomic.Int64
	progress    atomic.Int64
	hungWarning throttledWarning
	hungMessage string
	// hangs counts the hangs found; hangCounted is set from the hang's
	// count until a line is done.
	hangs       prometheus.Counter
	hangCounted atomic.Bool
}

func (o *auditErrorOutput) Write(p []byte) (int, error) {
	_, cause, ok := bytes.Cut(p, []byte(" write error: "))
	if !ok {
		return os.Stderr.Write(p) // zap's other reports, as it would
	}
	// The count first: a line begun before it finds the state changed
	// and clears nothing (see write).
	o.state.Add(2)
	o.state.Or(1)
	o.refused.Inc()
	o.warning.note(func(lines uint64) {
		o.logger.Error(o.message, zap.Uint64("lines", lines), zap.ByteString("error", bytes.TrimSpace(cause)))
	})
	return len(p), nil
}

func (*auditErrorOutput) Sync() error { return nil }

// failing reports whether the last line of the trail known written or
// not was not, or the trail is hung, which makes it failing until a line
// begun after that is written.
func (o *auditErrorOutput) failing() bool {
	s := o.state.Load()
	if s&1 != 0 {
		return true
	}
	if !o.hung() {
		return false
	}
	o.state.CompareAndSwap(s, s|1)
	return true
}

// hung reports whether lines have been being written for
// auditWriteHungAfter with none done meanwhile, and counts the hang
// once and logs it (once a minute at most).
func (o *auditErrorOutput) hung() bool {
	if o.writing.Load() == 0 || auditNow().UnixNano()-o.progress.Load() < int64(auditWriteHungAfter) {
		return false
	}
	if o.hangCounted.CompareAndSwap(false, true) {
		o.hangs.Inc()
	}
	o.hungWarning.note(func(uint64) { o.logger.Error(o.hungMessage) })
	return true
}

// begin notes that a line is being written; end, that it is done,
// written or not. A line begun while others are being written leaves
// progress as it is: those may be hung, and a line begun after them
// waits for the same writer.
func (o *auditErrorOutput) begin() {
	if o.writing.Load() == 0 {
		o.progress.Store(auditNow().UnixNano())
	}
	o.writing.Add(1)
}

func (o *auditErrorOutput) end() {
	o.progress.Store(auditNow().UnixNano())
	o.writing.Add(-1)
	if o.hangCounted.Load() {
		o.hangCounted.Store(false) // a line done ends the hang
	}
}

// write writes c's line with fields, and notes whether it was written:
// with track (audit_on_error closed), a line whose write no failure was
// reported during ends a failure reported before it began. A failure
// reported meanwhile may be another line's, and leaves the trail
// failing: the next line tells.
func (o *auditErrorOutput) write(track bool, c *zapcore.CheckedEntry, fields ...zap.Field) {
	if !track {
		c.Write(fields...)
		return
	}
	before := o.state.Load()
	c.Write(fields...)
	if before&1 != 0 && o.state.CompareAndSwap(before, before&^1) {
		o.writtenAgain.note(func(uint64) { o.logger.Info(auditWrittenAgain) })
	}
}

// provisionAudit sets up the audit trail's logger (see setAudit) and
// audit_on_error.
func (h *Handler) provisionAudit(ctx caddy.Context) error {
	var err error
	if h.auditClosed, err = ucwa.Either("audit_on_error", h.AuditOnError, auditOnErrorOpen, auditOnErrorClosed); err != nil {
		return err
	}
	audit, trail, err := newAuditLogger(h.logger, registerer(ctx), h.auditClosed)
	if err != nil {
		return err
	}
	h.auditTrail = trail
	h.setAudit(audit)
	// Caddy's logs are open before any app is provisioned: a Check
	// finds a log that takes the trail by its name and level, if any.
	// A log's sampling counts each Check by its message, so that the
	// probe has a message of its own and takes none of the lines'.
	if audit.Check(zap.InfoLevel, auditProbeMessage) == nil {
		if h.auditClosed {
			return errors.New("audit_on_error closed: no log takes the audit trail (the logger http.handlers.ucwa.audit at level INFO), so no line could tell whether it is written")
		}
		h.logger.Warn(auditUntakenWarning)
	}
	return nil
}

// auditUntakenWarning is logged at startup by a handler under
// audit_on_error open whose trail no log takes: a log's level or exclude
// list cut for noise drops the trail too, and nothing else would say so.
const auditUntakenWarning = "no log takes the audit trail (the logger http.handlers.ucwa.audit at level INFO): guarded requests are served without an audit line; " +
	"a log with a level above INFO, or one that excludes the logger where no other log includes it, drops the trail"

// refuseUnaudited answers 503 a request that is no emergency call while
// the audit trail fails under audit_on_error closed, and reports whether
// it did. Under open, it notes a hung trail, which no failure reports.
func (h *Handler) refuseUnaudited(w http.ResponseWriter, in *intake) bool {
	if !h.auditClosed {
		h.auditTrail.hung()
		return false
	}
	if !h.auditTrail.failing() || h.isEmergencyCall(in) {
		return false
	}
	in.refusedBy = refusedByAudit
	setRetryAfter(w.Header(), time.Second)
	_ = h.fail(w, in, errAuditFailing)
	return true
}

// refusedByAudit is the audit line's refused_by of a request that
// audit_on_error closed refused.
const refusedByAudit = "audit"

// errAuditFailing answers a request refused while the audit trail fails
// (see refuseUnaudited).
var errAuditFailing = ucwa.NewError(http.StatusServiceUnavailable, "",
	"The edge cannot write its audit trail now. The request was not delivered and can be sent again later.")

// setAudit makes l the audit trail's logger, and from it a logger for
// each operation of the handler's table and one for a near miss, with
// the line's first field, its operation, added once: zap encodes a
// logger's fields when the logger is made and copies them into each
// line, right after the message, where the line's first field of its own
// would come (in Caddy's json, console and filter encoders alike). A line
// then costs a copy of those bytes, not their encoding.
func (h *Handler) setAudit(l *zap.Logger) {
	h.audit = l
	ops := h.matcher.Operations()
	h.auditOps = make(map[*ucwa.Operation]*zap.Logger, len(ops))
	for i := range ops {
		h.auditOps[&ops[i]] = l.With(zap.String("operation", ops[i].Rel))
	}
	h.nearMissAudit = l.With(zap.String("operation", nearMissOperation))
}

// auditing reports whether an audit line would be written at all: the
// audit logger's level. A log that excludes it by name still costs the
// line's status recorder, and no more.
func (h *Handler) auditing() bool {
	return h.audit != nil && h.audit.Core().Enabled(zapcore.InfoLevel)
}

// startAudit sets in up to be audited by h, in the set of requests in
// flight (see auditInFlight), and returns the ResponseWriter that records
// the status for it: the audit record's own (a recycled record holds the
// line and its recorder, which idempotency shares: see intake.recorder).
func (in *intake) startAudit(h *Handler, w http.ResponseWriter) http.ResponseWriter {
	w = in.startRecording(w)
	in.audit.started = time.Now()
	in.register(h)
	return w
}

// recorder returns the recorder of the request's answer that keeps the
// answer's body too, for idempotency: the audit's, when there is one.
func (in *intake) recorder(w http.ResponseWriter) *answerRecorder {
	if in.rec == nil {
		in.startRecording(w)
	}
	in.rec.keepBody = true
	return in.rec
}

// startRecording takes a record from auditRecords for in, and returns
// its recorder, which passes the answer on to w; release gives the
// record back.
func (in *intake) startRecording(w http.ResponseWriter) *answerRecorder {
	in.audit = auditRecords.Get().(*auditRecord)
	in.audit.rec.ResponseWriterWrapper.ResponseWriter = w
	in.rec = &in.audit.rec
	return in.rec
}

// auditRecords recycles audit records. A record is the request's own
// from startRecording to release, which runs once the request is
// answered and its audit line written: a handler does not use its
// ResponseWriter once it returns, and the encoders of zap's cores are
// done with a line's fields once they have written it. A record whose
// line the stop took is never given back (see intake.release).
var auditRecords = sync.Pool{New: func() any {
	return &auditRecord{shard: uint8(nextShard.Add(1) % inFlightShardCount)}
}}

// releaseRecord gives in's record back to auditRecords, out of the set
// of requests in flight and cleared, so that it keeps nothing of the
// request but the shard it was made for.
func (in *intake) releaseRecord() {
	if rec := in.audit; rec != nil {
		in.audit, in.rec = nil, nil
		if rec.handler != nil {
			auditInFlight.remove(rec)
		}
		shard := rec.shard
		*rec = auditRecord{}
		rec.shard = shard
		auditRecords.Put(rec)
	}
}

// auditRecord is what an audit line is written from: what the line says,
// which writeAudit gathers, what its caller and destinations marshal
// from, and the recorder of the request's answer. It is recycled (see
// auditRecords), and the marshalers zap takes are views of it, pointers
// that an interface holds without allocating: a line costs no allocation
// of its own.
type auditRecord struct {
	rec answerRecorder
	// The record in the set of requests in flight (see auditInFlight):
	// its shard there, its neighbours in the shard's list, and how far
	// the request has come (see stageAuthorized), which says which of
	// the fields below the stop may read.
	shard      uint8
	prev, next *auditRecord
	stage      atomic.Uint32
	// The handler that took the request in, its operation and when it
	// came (stage 0); its caller's grant (stageAuthorized; nil without
	// one); the pool it is handed to (see intake.atPool).
	handler    *Handler
	op         *ucwa.Operation
	started    time.Time
	grant      *grant
	attempting atomic.Pointer[pool]
	// line is the line's one field: the record itself (auditFields), which
	// writes the line's fields.
	line [1]zap.Field
	// The operation, when the line's logger does not have it (nil when
	// it does), and whether the logger has the application and caller
	// (prefixed).
	operation *ucwa.Operation
	prefixed  bool
	// The application id as the line has it (auditApplicationID; stage
	// 0), and whether it has digits to mask.
	application       string
	maskedApplication bool
	caller            auditCaller
	// The connection's address, and the client's when it is another
	// (hasClientIP): stage 0.
	remoteIP, clientIP string
	hasClientIP        bool
	// The destinations: of the request alone (single), or of a batch's
	// parts, and the policy that judged them (gatherJudged, as the rest
	// of what the line says of the request's judging).
	single *ucwa.Cleaned
	parts  []cleanedPart
	policy *ucwa.Policy
	// The policy's decisions on the first destinations, as judge made
	// them, in the order the line writes them (judge takes a request's
	// destinations, and a batch's parts, in that order), each with the
	// destination it was made on: a destination that does not find its
	// own there (past them, say) is judged again as it is written, by
	// the same policy, which decides it the same.
	judged  [maxJudged]judgedDestination
	njudged int
	// The destination being written, and its place in the line.
	cur     *ucwa.PropertyDestination
	curPart int
	curOp   *ucwa.Operation
	curAt   int
	// The batch part being written, an index of parts.
	partIndex int
	// The policy's decision on the request, the line's error when
	// hasError, and its other fields ("" for none).
	decision                          ucwa.Decision
	errorCode                         string
	hasError                          bool
	refusedBy, overLimit, idempotency string
	reservationLost                   bool
	pool                              string
	status                            int
	duration                          time.Duration
	// cutByStop says where the request was when the process exited
	// under it ("" for a request that got to its own line; see
	// writeStopped).
	cutByStop string
	// The request's operationId, and whether it has digits to mask.
	operationID       string
	maskedOperationID bool
	// Where a masked value is written for the encoder, which copies it.
	scratch [maskScratch]byte
}

// judgedDestination is the policy's decision on a destination.
type judgedDestination struct {
	dest *ucwa.PropertyDestination
	dec  ucwa.Decision
}

// maxJudged is how many decisions a record keeps: those of a request's
// destinations (two at most) and of a small batch's.
const maxJudged = 8

// keepDecision keeps the policy's decision dec on d, the next destination
// of the request judged, for its audit line.
func (rec *auditRecord) keepDecision(d *ucwa.PropertyDestination, dec ucwa.Decision) {
	if rec.njudged < len(rec.judged) {
		rec.judged[rec.njudged] = judgedDestination{dest: d, dec: dec}
		rec.njudged++
	}
}

// destinationDecision is the policy's decision on d, the destination at
// at in the line: the one judge kept, else d judged again.
func (rec *auditRecord) destinationDecision(at int, d *ucwa.PropertyDestination, op *ucwa.Operation) ucwa.Decision {
	if at < rec.njudged && rec.judged[at].dest == d {
		return rec.judged[at].dec
	}
	if rec.policy == nil {
		return ucwa.Decision{}
	}
	return rec.policy.Judge(op, d)
}

// maskScratch is room for a typical masked destination or operationId.
const maskScratch = 128

// writeAudit writes the audit line of an answered request; *handlerErr
// is what ServeHTTP returned. A request whose line the stop took (the
// process is exiting under it) gets none here.
func (h *Handler) writeAudit(in *intake, handlerErr *error) {
	// Before the line is taken: a line taken is one being written.
	h.auditTrail.begin()
	defer h.auditTrail.end()
	rec := in.audit
	if !rec.rec.line.take() {
		in.stopped = true
		return
	}
	if rec.stage.Load() < stageDelivering {
		rec.gatherJudged(h, in)
	}
	audit := h.auditLogger(rec, in.op, in.grant, rec.application)
	c := audit.Check(zap.InfoLevel, auditMessage)
	if c == nil {
		return
	}
	r := in.r
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !rec.prefixed && in.grant == nil {
		rec.caller = callerOf(nil, repl)
	}
	status := 0
	if in.rec != nil && !in.goneUnsent {
		status = in.rec.status
	}
	if status == 0 && *handlerErr != nil {
		status = errorStatus(*handlerErr)
	}
	if status == 0 && *handlerErr == nil && in.nextReturned && r.Context().Err() == nil {
		// The handlers after the edge returned without an answer (the
		// edge was the last of its handle block, say): net/http answers
		// them 200, empty, once they have returned.
		status = http.StatusOK
	}
	switch {
	case in.failure != nil:
		rec.errorCode, rec.hasError = errorCode(in.failure), true
	case in.unauthorized:
		rec.errorCode, rec.hasError = ucwa.Code(status), true
	}
	if repl != nil {
		rec.pool, _ = repl.GetString("http.ucwa.pool")
	}
	rec.status, rec.duration = status, auditDuration(c, rec.started)
	rec.reservationLost = in.reservationLost
	rec.line[0] = zap.Inline((*auditFields)(rec))
	h.auditTrail.write(h.auditClosed, c, rec.line[:]...)
}

// auditLogger returns the logger of the line rec writes of a request to
// op, with application (as auditApplicationID has it) and g's caller:
// the operation's, with the line's application and caller added once
// per grant when the request has one (see grant.auditLogger), and rec
// prefixed; else rec holds them, and the operation too when the
// handler's table has no logger of it.
func (h *Handler) auditLogger(rec *auditRecord, op *ucwa.Operation, g *grant, application string) *zap.Logger {
	audit := h.auditOps[op]
	switch {
	case audit == nil:
		// An operation of no table of the handler's (none is, but the
		// line must not lose its operation).
		audit, rec.operation = h.audit, op
	case g != nil:
		rec.prefixed = true
		return g.auditLogger(audit, application)
	}
	rec.application, rec.maskedApplication = application, hasLongDigitRun(application)
	if g != nil {
		rec.caller = callerOf(g, nil)
	}
	return audit
}

// gatherJudged sets what rec's line says of in's judging: its
// destinations and the policy's decisions, the guard that refused it,
// the limit an emergency call went over, what idempotency did and its
// operationId. None of it changes once the request is delivered.
func (rec *auditRecord) gatherJudged(h *Handler, in *intake) {
	rec.single, rec.parts = in.cleaned, in.parts
	if h.destinations != nil {
		rec.policy = h.destinations.policy
	}
	rec.decision, rec.refusedBy, rec.overLimit = in.policy, in.refusedBy, in.overLimit
	if in.idempotency > 0 {
		rec.idempotency = idempotencyResultNames[in.idempotency-1]
	}
	if in.cleaned != nil {
		if id, _ := in.cleaned.Value("operationId"); id != "" {
			rec.operationID, rec.maskedOperationID = id, hasLongDigitRun(id)
		}
	}
}

// auditFields writes the fields of a record's line after those its logger
// has: one field of zap's, rather than one for each of the line's,
// which zap would build, copy and dispatch one by one. Each is written
// by the encoder's method that zap's field of it calls (AddString for a
// zap.String, AddArray for a zap.Array, ...), so that every encoder,
// Caddy's filter encoder and its filters by field name too, writes the
// line as it would those fields.
type auditFields auditRecord

func (v *auditFields) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	rec := (*auditRecord)(v)
	if rec.operation != nil {
		enc.AddString("operation", rec.operation.Rel)
	}
	if !rec.prefixed {
		if rec.maskedApplication {
			addMasked(enc, "application", appendMaskedRunTails(rec.scratch[:0], rec.application))
		} else {
			enc.AddString("application", rec.application)
		}
		if rec.caller != (auditCaller{}) {
			addObject(enc, "caller", &rec.caller)
		}
	}
	enc.AddString("remote_ip", rec.remoteIP)
	if rec.hasClientIP {
		enc.AddString("client_ip", rec.clientIP)
	}
	if rec.count() > 0 {
		if err := enc.AddArray("destinations", (*auditDestinations)(rec)); err != nil {
			enc.AddString("destinationsError", err.Error())
		}
	}
	if rec.decision.Verdict != ucwa.VerdictNone {
		enc.AddString("decision", rec.decision.Verdict.String())
		enc.AddString("rule", rec.decision.Rule.String())
	}
	addNonEmpty(enc, "refused_by", rec.refusedBy)
	addNonEmpty(enc, "over_limit", rec.overLimit)
	if rec.hasError {
		enc.AddString("error", rec.errorCode)
	}
	addNonEmpty(enc, "idempotency", rec.idempotency)
	if rec.reservationLost {
		enc.AddBool("reservation_lost", true)
	}
	addNonEmpty(enc, "pool", rec.pool)
	enc.AddInt64("status", int64(rec.status))
	enc.AddDuration("duration", rec.duration)
	addNonEmpty(enc, "cut_by_stop", rec.cutByStop)
	if len(rec.parts) > 0 {
		if err := enc.AddArray("parts", (*auditParts)(rec)); err != nil {
			enc.AddString("partsError", err.Error())
		}
	}
	if rec.operationID != "" {
		if rec.maskedOperationID {
			addMasked(enc, "operation_id", appendMaskedDigitRuns(rec.scratch[:0], rec.operationID))
		} else {
			enc.AddString("operation_id", rec.operationID)
		}
	}
	return nil
}

// addObject adds obj under key as a zap.Object field adds it, with the
// error zap adds for a marshaler that fails.
func addObject(enc zapcore.ObjectEncoder, key string, obj zapcore.ObjectMarshaler) {
	if err := enc.AddObject(key, obj); err != nil {
		enc.AddString(key+"Error", err.Error())
	}
}

// addMasked adds a masked value under key as a string. zap's JSON
// encoder (Caddy's json and console formats write fields through it)
// takes the bytes as they are, without a string of their own; any other
// gets a string: Caddy's filter encoder hands a byte string to its
// filters as zap.Any does, as binary, which they do not read (hash,
// regexp, ucwa_numbers) and which it then writes in base64, the masked
// value unfiltered.
func addMasked(enc zapcore.ObjectEncoder, key string, masked []byte) {
	if reflect.TypeOf(enc) == zapJSONEncoder {
		enc.AddByteString(key, masked)
		return
	}
	enc.AddString(key, string(masked))
}

// zapJSONEncoder is the type of zap's JSON encoder.
var zapJSONEncoder = reflect.TypeOf(zapcore.NewJSONEncoder(zapcore.EncoderConfig{}))

// addNonEmpty adds the string field key unless value is "".
func addNonEmpty(enc zapcore.ObjectEncoder, key, value string) {
	if value != "" {
		enc.AddString(key, value)
	}
}

// auditPrefix is an operation's audit logger with a grant's first fields
// of the line after the operation, its application and caller, added
// (see grant.auditLogger).
type auditPrefix struct {
	// op is the operation's audit logger it was made from (of one
	// handler), application the request's application id, unmasked.
	op          *zap.Logger
	application string
	logger      *zap.Logger
}

// auditLogger returns op, an operation's audit logger (Handler.auditOps),
// with the line's application and the grant's caller added: the fields
// that follow the operation, as writeAudit writes them. zap encodes a
// logger's fields once, when the logger is made, and copies their bytes
// into each line, through the same encoder (so a log's format, filters
// and all apply to them alike): a caller's requests to one operation of
// one application, nearly all of a client's, have these fields encoded
// once rather than on every line. The grant keeps the logger of its last
// request (its token's requests share it; another operation or
// application makes another).
func (g *grant) auditLogger(op *zap.Logger, application string) *zap.Logger {
	if p := g.audit.Load(); p != nil && p.op == op && p.application == application {
		return p.logger
	}
	masked := application
	if hasLongDigitRun(application) {
		masked = string(appendMaskedRunTails(nil, application))
	}
	fields := []zap.Field{zap.String("application", masked)}
	if caller := callerOf(g, nil); caller != (auditCaller{}) {
		fields = append(fields, zap.Object("caller", &caller))
	}
	p := &auditPrefix{op: op, application: application, logger: op.With(fields...)}
	g.audit.Store(p)
	return p.logger
}

// errorStatus is the status Caddy answers a handler's error with: a
// HandlerError's (reverse_proxy's 502, say), else 500.
func errorStatus(err error) int {
	if he, ok := errors.AsType[caddyhttp.HandlerError](err); ok && he.StatusCode > 0 {
		return he.StatusCode
	}
	return http.StatusInternalServerError
}

// auditNearMiss writes the audit line of a near miss, answered 404.
func (h *Handler) auditNearMiss(r *http.Request, started time.Time) {
	c := h.nearMissAudit.Check(zap.InfoLevel, auditMessage)
	if c == nil {
		return
	}
	var buf [5]zap.Field
	fields := appendRemote(buf[:0], r)
	fields = append(fields, zap.String("error", errorCode(errNearMiss)), zap.Int("status", errNearMiss.Status),
		zap.Duration("duration", auditDuration(c, started)))
	h.auditTrail.write(h.auditClosed, c, fields...)
}

// auditDuration is the duration of an audit line: from started to the
// line's own time (its ts), which c read from the clock already. It is
// written as a duration, so that the log's duration_format applies, as it
// does to Caddy's access log (seconds by default).
func auditDuration(c *zapcore.CheckedEntry, started time.Time) time.Duration {
	return c.Time.Sub(started)
}

// appendRemote appends the connection's address and the client's.
func appendRemote(fields []zap.Field, r *http.Request) []zap.Field {
	host, client, hasClient := remoteAddresses(r)
	fields = append(fields, zap.String("remote_ip", host))
	if hasClient {
		fields = append(fields, zap.String("client_ip", client))
	}
	return fields
}

// remoteAddresses returns the connection's address and the client's,
// which the line has when it is another (hasClient).
func remoteAddresses(r *http.Request) (host, client string, hasClient bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != host {
		return host, ip, true
	}
	return host, "", false
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
	sub, oid, tid, iss, clientID string
}

// callerOf returns the caller: from the request's grant, which
// published the placeholders, when it has one (no replacer lookups),
// else from the placeholders in repl.
func callerOf(g *grant, repl *caddy.Replacer) auditCaller {
	var c auditCaller
	if g != nil {
		c.sub, _ = g.placeholders[1].(string)
		c.oid, _ = g.placeholders[2].(string)
		c.tid, _ = g.placeholders[3].(string)
		c.clientID, _ = g.placeholders[4].(string)
		c.iss, _ = g.placeholders[7].(string)
		return c
	}
	if repl == nil {
		return c
	}
	c.sub, _ = repl.GetString("http.ucwa.sub")
	c.oid, _ = repl.GetString("http.ucwa.oid")
	c.tid, _ = repl.GetString("http.ucwa.tid")
	c.clientID, _ = repl.GetString("http.ucwa.client_id")
	c.iss, _ = repl.GetString("http.ucwa.iss")
	return c
}

// MarshalLogObject writes the caller's non-empty claims. iss is written
// whether or not it tells the caller apart (see makeGrant): which issuer
// is first may change with the config, and a line must say whose caller
// it was by itself. It is the issuer's public name, no secret.
//
// A claim that reads as a telephone number, or holds one as its user
// (an identity provider that names its users by their numbers), is
// masked as a destination is (+1425555****,
// sip:+1425555****@contoso.com): the trail holds no full number, and
// still tells callers apart. Any other claim is written as the token has
// it: masking the digits of an object id (a GUID) would keep an
// administrator from finding its caller.
func (c *auditCaller) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	for _, kv := range [...][2]string{{"sub", c.sub}, {"oid", c.oid}, {"tid", c.tid}, {"iss", c.iss}, {"client_id", c.clientID}} {
		switch {
		case kv[1] == "":
		case numberLike(kv[1]):
			addMasked(enc, kv[0], appendMaskedRunTails(nil, kv[1]))
		default:
			enc.AddString(kv[0], kv[1])
		}
	}
	return nil
}

// numberLike reports whether s reads as a telephone number: more than
// four digits, with '+' and visual separators between them, alone or as
// the user of a tel:, sip: or sips: URI or of a user name
// (sip:+14255551234@contoso.com, as Skype for Business may name a user).
func numberLike(s string) bool {
	for _, scheme := range [...]string{"tel:", "sip:", "sips:"} {
		if len(s) >= len(scheme) && strings.EqualFold(s[:len(scheme)], scheme) {
			s = s[len(scheme):]
			break
		}
	}
	if end := strings.IndexAny(s, "@;"); end >= 0 {
		s = s[:end]
	}
	digits := 0
	for _, r := range s {
		switch n := ucwa.DialDigits(r); {
		case n > 0:
			digits += n
		case r == '+' || ucwa.IsVisualSeparator(r):
		default:
			return false
		}
	}
	return digits > maxShownDigitRun
}

// each calls f with each cleaned request of the record and its part.
func (rec *auditRecord) each(f func(part int, cl *ucwa.Cleaned)) {
	if rec.single != nil {
		f(0, rec.single)
	}
	for _, p := range rec.parts {
		f(p.index, p.cleaned)
	}
}

// count is how many destinations the record has.
func (rec *auditRecord) count() int {
	n := 0
	if rec.single != nil {
		n += len(rec.single.Destinations())
	}
	for _, p := range rec.parts {
		n += len(p.cleaned.Destinations())
	}
	return n
}

// auditDestinations writes a record's destinations, with the policy's
// decision on each.
type auditDestinations auditRecord

// MarshalLogArray writes each destination, masked.
func (v *auditDestinations) MarshalLogArray(enc zapcore.ArrayEncoder) error {
	rec := (*auditRecord)(v)
	var err error
	at := 0
	rec.each(func(part int, cl *ucwa.Cleaned) {
		dests := cl.Destinations()
		for i := range dests {
			if err != nil {
				return
			}
			rec.cur, rec.curPart, rec.curOp, rec.curAt = &dests[i], part, cl.Operation, at
			err = enc.AppendObject((*auditDestination)(rec))
			at++
		}
	})
	return err
}

// auditDestination writes a record's current destination.
type auditDestination auditRecord

func (v *auditDestination) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	d := v.cur
	enc.AddString("property", d.Property)
	if v.curPart > 0 {
		enc.AddInt("part", v.curPart)
	}
	enc.AddString("kind", d.Kind.String())
	dec := (*auditRecord)(v).destinationDecision(v.curAt, d, v.curOp)
	// A SIP name of digits a gateway could dial shows the number it was
	// judged as, in the destination as in its region and type.
	addMasked(enc, "destination", dec.AppendMasked(v.scratch[:0], &d.Destination))
	// A user of digits of no reading is a dial string only as the policy
	// judges it a short code (or an emergency one); up to
	// max_extension_digits, and without a policy, it is a name.
	if (d.Dial != nil || d.Keypad != nil) && v.policy.IsDialled(&d.Destination) {
		enc.AddBool("dial_string", true)
	}
	if num := dec.Number(&d.Destination); num != nil {
		if num.Region != "" {
			enc.AddString("region", num.Region)
		}
		enc.AddString("type", num.Type.String())
		if num.Emergency {
			enc.AddBool("emergency", true)
		}
	} else if d.Dial != nil && d.Dial.Emergency && v.policy != nil {
		enc.AddBool("emergency", true)
	}
	if v.policy != nil {
		enc.AddString("decision", dec.Verdict.String())
		enc.AddString("rule", dec.Rule.String())
	}
	return nil
}

// auditParts writes the guarded parts of a record's batch.
type auditParts auditRecord

// MarshalLogArray writes each guarded part.
func (v *auditParts) MarshalLogArray(enc zapcore.ArrayEncoder) error {
	rec := (*auditRecord)(v)
	for i := range rec.parts {
		rec.partIndex = i
		if err := enc.AppendObject((*auditPart)(rec)); err != nil {
			return err
		}
	}
	return nil
}

// auditPart writes a record's current part (partIndex): its position in
// the batch, its operation and its operationId, masked as a single
// request's is.
type auditPart auditRecord

func (v *auditPart) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	p := &v.parts[v.partIndex]
	enc.AddInt("part", p.index)
	enc.AddString("operation", p.cleaned.Operation.Rel)
	if id, _ := p.cleaned.Value("operationId"); id != "" {
		addMasked(enc, "operation_id", appendMaskedDigitRuns(v.scratch[:0], id))
	}
	return nil
}
