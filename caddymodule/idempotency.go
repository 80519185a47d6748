package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ucwa-edge/caddy-ucwa/internal/directive"
	"github.com/ucwa-edge/caddy-ucwa/internal/metrics"
	"github.com/ucwa-edge/caddy-ucwa/internal/store"
	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// IdempotencyConfig delivers a request with an operationId once across
// retries, backup pools and a fleet of edges sharing a Redis store: a
// repeat within the window is not delivered again. Its key is the SHA-256
// of the verified caller (the token's tid, or for a token without tid
// from an accepted issuer other than the first its iss, marked apart
// from a tid; and its oid, else its sub: see makeGrant), the
// application id of the path, the operation and the operationId (from
// the body, else the query); in a memory store, a hash of them keyed for
// the process (see storeDigest). The first request reserves the key in the
// store before it is delivered; while it is in flight a repeat is answered
// 409 Conflict / AlreadyExists. Once a pool answers (whatever the status,
// but an answer that needs a header the record does not keep: a 401,
// 405, 407 or 426, or a failure carrying a challenge), a repeat gets
// that answer again (status, Location, Content-Type, a failure's
// Retry-After, counted down in seconds, and a body up to 4 KiB) with the
// header `Idempotent-Replayed: true`; a Location the edge rewrote onto
// its own host is on the repeat's. A
// repeat whose inputs differ (the resource in its path and the
// operation's properties as the pool reads them, numbers normalized:
// another to, say) gets 409: the answer is not its own. The store holds
// a digest of them, not the values.
//
// A request that certainly reached no pool (the edge answered it 410
// CannotRedirect or 503 because no pool could take it, or the client went
// away before it was sent, also while the edge was connecting to a pool)
// releases its key, so that the client may send it again; so does, at
// best effort (see releaseUnanswered), one answered 503 because its
// Redis reservation got no answer in time, which Redis may have run. One that may
// have reached a pool and got no answer that can be replayed (the client
// went away once it may have reached the pool, the pool's answer
// was cut short, has a body over 4 KiB or needs a header the record does
// not keep, such as a 401's challenges) keeps it for the window: repeats
// get 409. The edge's own 502 and 504 after a pool attempt are recorded
// and replayed as a pool's answer. The answer is recorded before
// it goes out: once a client has it, a repeat gets it again.
//
// Without a verified caller (jwt off, web tickets forwarded) the key has
// no caller, and a repeat gets 409, never the first answer, since the
// edge cannot tell that it comes from the same caller. Not protected: a
// request without an operationId (or to an operation without one). A
// batch is protected part by part: it is delivered only when every
// guarded part with an operationId reserves its key, and a repeat of any
// of them, batched or alone, gets 409, never a replay (a batch's answer
// holds every part's). A token is never part of the key, and the store
// holds only the key's hash and the pool's answer, whose body a Redis
// store holds sealed (see answer_seal.go): it may echo the number the
// request rings. The memory store
// holds at most max_entries_per_caller reservations of one caller (see
// MemoryStore.MaxEntriesPerCaller), so that one caller's operationIds
// cannot fill it for all.
//
// Nothing the edge adds holds an emergency call back (startEmergencyCall,
// unless destinations' emergency_calls is emergency_numbers, or a request
// that dials an emergency number now): a repeat of one is
// held back only by an earlier one a pool answered with success (2xx),
// whose answer it gets again (409 when it was too long to record). A
// repeat of one still in flight, or of one that failed (any other
// status, the client gone), is delivered, at the risk of a second call
// to the emergency service. A repeat is an
// emergency call only if the first request was one too: a repeat with
// the first's inputs of a request that was none when it came (a reload
// since added its number to the emergency numbers, or its host to
// sip_domains; a batch's part too, sent again alone) is held back as
// the first would be, never delivered a second time. Reservations and failures recorded by older edges do not
// tell, so they do not hold such a repeat back: only a recorded success
// does, as for any emergency call. The reverse holds too: an emergency
// call that failed keeps its key for the window with its failure (or a
// mark, see emergencyEndedMark), which a repeat that is an emergency call
// takes over, and a repeat that is none now (a reload took its number
// off the emergency numbers) gets, never delivered a second time.
// Without a verified caller (jwt off, web tickets forwarded) nothing
// holds an emergency call back, not even a success, nor a first request
// that was none: the key is every such client's, and another client's
// request with the same operationId would hold the call back.
type IdempotencyConfig struct {
	// How long after the first request its operationId is remembered: a
	// repeat within the window is not delivered, after it the request is
	// taken as new. At least 1s (MinIdempotencyWindow: a shorter one,
	// such as 10ms for 10m, lets a client's retry through as new), and
	// with a Redis store at least 10 times its timeout (a reservation in
	// flight is renewed every third of the window, and each store call
	// may take the timeout). At most a century (store.MaxDuration);
	// every reservation and answer is held for the window, so a longer
	// one needs a store that much larger. Default: 10m.
	Window caddy.Duration `json:"window,omitempty"`
}

// DefaultIdempotencyWindow is the window of an IdempotencyConfig without
// one: longer than any client retries a call.
const DefaultIdempotencyWindow = 10 * time.Minute

// MinIdempotencyWindow is the shortest window the edge takes: shorter
// than a client's quickest retry, a window protects nothing, and one given
// in ms or us is a typo for minutes.
const MinIdempotencyWindow = time.Second

// redisWindowTimeouts is how many Redis timeouts a window must hold at
// least. A reservation is renewed every third of the window from its
// reservation until its request is answered (see reservationsInFlight),
// and each store call may take the timeout: a key must outlive the answer
// to its reservation, then two thirds of the window (a lost renewal and
// the next) and the next renewal's call, 2 timeouts and two thirds of the
// window, however many parts its request has or requests are in flight
// (a renewal renews the keys in calls of 500, each well within a
// timeout). That holds when the window is 6 timeouts; 10 leave the
// scheduling a margin.
const redisWindowTimeouts = 10

// checkWindow judges a window given (not 0, the default); timeout is
// that of the Redis store, 0 for the memory store, whose calls do not
// wait. The Caddyfile checks the window alone, the store being known only
// once provisioned.
func checkWindow(window, timeout time.Duration) error {
	if window < MinIdempotencyWindow {
		return fmt.Errorf("idempotency: window must be at least %s: %s", MinIdempotencyWindow, window)
	}
	if window > store.MaxDuration {
		return fmt.Errorf("idempotency: window must be at most %s: %s", store.MaxDuration, window)
	}
	if window < redisWindowTimeouts*timeout {
		return fmt.Errorf("idempotency: window must be at least %d times the Redis store's timeout (%s), %s: %s",
			redisWindowTimeouts, timeout, redisWindowTimeouts*timeout, window)
	}
	return nil
}

// maxRecordedBody is the largest answer body recorded for replay: a pool
// answers startPhoneAudio with an empty body, and errors in well under
// 4 KiB.
const maxRecordedBody = 4 << 10

// headerReplayed marks an answer the edge gives again for a repeat (the
// name Stripe and others use for the same).
const headerReplayed = "Idempotent-Replayed"

// idempotency is the provisioned IdempotencyConfig.
type idempotency struct {
	window   time.Duration
	results  [numIdempotencyResults]prometheus.Counter
	lost     prometheus.Counter // caddy_ucwa_idempotency_reservations_lost_total
	restored prometheus.Counter // caddy_ucwa_idempotency_reservations_restored_total
	inFlight reservationsInFlight
}

// idempotencyResult is what the edge did for a request of a guarded
// operation.
type idempotencyResult uint8

const (
	// resultReserved: the first request; its key reserved, delivered.
	resultReserved idempotencyResult = iota
	// resultReplayed: a repeat, answered with the first answer.
	resultReplayed
	// resultConflict: a repeat answered 409 (the first is in flight, or
	// its answer cannot be replayed, or the caller is not verified).
	resultConflict
	// resultUnprotected: no operationId, delivered as it is.
	resultUnprotected
	// resultStoreError: the store failed; answered 503 (on_error closed)
	// or delivered without protection (open).
	resultStoreError

	numIdempotencyResults
)

var idempotencyResultNames = [numIdempotencyResults]string{"reserved", "replayed", "conflict", "unprotected", "store_error"}

// idempotencyLogFields are the access log's ucwa_idempotency field, per
// result, made once. A request that was simply reserved, or had no
// operationId, gets none: setting a field costs Caddy allocations, and
// those are the requests of every call.
var idempotencyLogFields = func() (f [numIdempotencyResults]zap.Field) {
	for i, name := range idempotencyResultNames {
		f[i] = zap.String("ucwa_idempotency", name)
	}
	return f
}()

// errAlreadyExists answers a repeat that is not replayed, as a pool
// answers a repeated operationId while its invitation lives.
var errAlreadyExists = ucwa.NewError(http.StatusConflict, ucwa.SubcodeAlreadyExists,
	"A request with this operationId was received before and may have been carried out, so it was not sent again. Use a new operationId for a new request.")

// errOperationIDReused answers a repeat whose inputs differ from those of
// the request that was answered: the answer is not its own.
var errOperationIDReused = ucwa.NewError(http.StatusConflict, ucwa.SubcodeAlreadyExists,
	"This operationId was used before for a request with other inputs, which was not sent again. Use a new operationId for a new request.")

// errSameOperationID answers a batch whose parts at first and second
// have the same operationId (of the same operation and application): the
// second is a repeat of the first.
func errSameOperationID(first, second int) *ucwa.Error {
	return ucwa.NewError(http.StatusConflict, ucwa.SubcodeAlreadyExists,
		"Batch parts "+strconv.Itoa(first)+" and "+strconv.Itoa(second)+" have the same operationId, so the batch was not sent. Give each request an operationId of its own.")
}

// idempotencyWithoutCallerWarning is the warning that idempotency is on
// with jwt off: no request has a verified caller, and a repeat of a
// request without one is never given its first answer (the edge cannot
// tell that it comes from the same caller), so every repeat is answered
// 409.
const idempotencyWithoutCallerWarning = "idempotency with jwt off: no request has a verified caller, so a repeat of an operationId " +
	"is answered 409 Conflict within the window, never given the first answer again (said once per config load)"

// provisionIdempotency checks the window and registers the metrics; the
// store is set up by provisionStore. With jwt off (no verifier: see
// provisionAuth, which runs before) it warns that no repeat is replayed,
// and with a Redis store without a share, that one caller can fill it
// for all.
func (h *Handler) provisionIdempotency(ctx caddy.Context) error {
	c := h.Idempotency
	if c == nil {
		return nil
	}
	window := time.Duration(c.Window)
	if window == 0 {
		window = DefaultIdempotencyWindow
	}
	var timeout time.Duration
	if h.store.redis != nil {
		timeout = h.store.redis.Timeout()
	}
	if err := checkWindow(window, timeout); err != nil {
		return err
	}
	results, err := metrics.Register(registerer(ctx), prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "ucwa", Name: "idempotency_total",
		Help: "Requests of guarded operations by what idempotency did: reserved, replayed, conflict, unprotected, store_error.",
	}, []string{"result"}))
	if err != nil {
		return err
	}
	lost, err := metrics.Register(registerer(ctx), prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "ucwa", Name: "idempotency_reservations_lost_total",
		Help: "Requests that may have reached a pool whose key no longer held their reservation when they ended: the store dropped it, or it expired unrenewed.",
	}))
	if err != nil {
		return err
	}
	restored, err := metrics.Register(registerer(ctx), prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "ucwa", Name: "idempotency_reservations_restored_total",
		Help: "Of the reservations lost, those the edge wrote back, the key found free: no repeat was delivered meanwhile, and repeats are held back again. The others' repeats within the window are delivered again.",
	}))
	if err != nil {
		return err
	}
	if h.verifier == nil {
		h.logger.Warn(idempotencyWithoutCallerWarning)
	}
	if s := h.store; s != nil && s.redis != nil && s.redis.MaxPerOwner() == 0 {
		h.logger.Warn(redisNoShareWarning)
	}
	h.idempotency = &idempotency{window: window, lost: lost, restored: restored, inFlight: reservationsInFlight{h: h, window: window}}
	for i, name := range idempotencyResultNames {
		h.idempotency.results[i] = results.WithLabelValues(name)
	}
	return nil
}

// count counts a result, keeps it for the audit trail and, unless it is
// reserved or unprotected, puts it on the access log line.
func (idem *idempotency) count(in *intake, res idempotencyResult) {
	idem.results[res].Inc()
	in.idempotency = res + 1
	r := in.r
	if res == resultReserved || res == resultUnprotected {
		return
	}
	if extra := accessLogFields(r); extra != nil {
		extra.Set(idempotencyLogFields[res])
	}
}

// deliverOnce delivers the accepted request in, as deliver does, once per
// key within the window (see IdempotencyConfig), within the velocity
// limits. A batch has a key for each guarded part with an operationId; it
// is delivered only when it reserves them all, and its answer, which holds
// every part's, is never replayed: its keys stay reserved for the window.
// The limits are checked once the keys are reserved, so that a repeat
// counts for nothing, and a request they refuse releases its keys: it
// reached no pool. An emergency call (isEmergencyCall) is held back only
// by an earlier one that a pool answered with success, whose answer it
// gets again; one in flight or one that failed does not hold it back,
// unless it was no emergency call when it came (see heldBackByFirst).
func (h *Handler) deliverOnce(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, in *intake) error {
	idem := h.idempotency
	if idem == nil {
		return h.deliverLimited(w, r, next, in)
	}
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	var one [1]string
	// A request that is no emergency call has the inputsDigest in its
	// reservation token, so that a repeat is judged as it was (see
	// heldBackByFirst) whatever a reload since made of its numbers.
	var inputs *[inputsDigestLen]byte
	var digest [inputsDigestLen]byte
	if hasOperationID(in.cleaned) && !h.isEmergencyCall(in) {
		digest = inputsDigest(h.store.keyed(), in.path, in.cleaned)
		inputs = &digest
	}
	s := h.store // held open for the request by ServeHTTP
	// A memory store bounds each caller's share of it: owner; and so
	// does a Redis store with max_entries_per_caller (redisOwner).
	keys, token, owner, verified := in.idempotencyKeys(one[:0], inputs, s.memory != nil)
	if len(keys) == 0 {
		idem.count(in, resultUnprotected)
		return h.deliverLimited(w, r, next, in)
	}
	if first, second, ok := in.sameOperationID(keys); ok {
		// The second would be a repeat of the first, delivered with it.
		idem.count(in, resultConflict)
		return h.fail(w, in, errSameOperationID(first, second))
	}
	if s.redis != nil {
		owner = s.redisOwner(in)
	}
	// A batch holds each key with a value of its own (see
	// batchValues); nil for a request, whose keys hold token.
	values := h.batchValues(in, len(keys), token)
	// The store has timeouts of its own, and a reservation is written
	// whether or not the client is still there.
	ctx := context.Background()
	start := idempotencyNow()
	result := resultReserved
	// The keys reserved so far and their values, in the arrays of keys
	// and values: each is written at or before the index being read.
	held, heldValues := keys[:0], values[:0]
	// tookOverFrom is the value of the key that an emergency call took
	// over (see emergencyEnded), "" for none.
	var tookOverFrom string
	// kept: the request's keys are renewed until it returns, each from
	// its reservation on (see reservationsInFlight).
	kept := false
	defer func() {
		if kept {
			idem.inFlight.forget(token)
		}
	}()
	for i, key := range keys {
		// rereads counts the times the key was read again after a
		// takeover found it changed.
		rereads := 0
		// replacing is the value that the last takeover of the key (see
		// emergencyEnded) went to replace with token; "" before any.
		replacing := ""
	reserve:
		epoch := s.begin()
		reserved, current, err := s.Reserve(ctx, owner, key, valueAt(values, i, token), idem.window)
		if err == nil && !reserved && current == valueAt(values, i, token) && !slices.Contains(held, key) {
			// The key holds this request's own value, which no other
			// request has (its token's random bits), and not for an
			// earlier part of it (a batch that holds one operationId
			// twice): the store ran this request's reservation (or, after
			// a takeover, its Replace) and ran it again when its client
			// sent it once more after the reply was lost (go-redis's
			// cluster client does so when a connection ends before the
			// reply). The key is this request's, not a repeat's.
			reserved = true
			if replacing != "" {
				tookOverFrom = replacing
			}
		}
		// A request goes on without the store when it fails with
		// on_error open (see goesOnWithout), and an emergency call
		// always: nothing the edge adds refuses it.
		goesOn := err != nil && (s.goesOnWithout(err) || h.isEmergencyCall(in))
		if err != nil && !goesOn || err == nil && !reserved {
			// Not delivered: the parts reserved so far may be sent again.
			h.release(ctx, owner, held, heldValues, token)
		}
		if err != nil && !goesOn {
			// Nor this part, whose reservation Redis may have run.
			h.releaseUnanswered(err, owner, key, valueAt(values, i, token))
		}
		if !s.end(epoch, err) && !goesOn {
			idem.count(in, resultStoreError)
			return h.failStore(w, in, err)
		}
		if err != nil {
			// Delivered without the keys the store could not take. The
			// keys it took (a batch's parts before this one) stay
			// reserved as any delivered request's: released, a repeat of
			// their parts, which the store can take again once it has
			// room or answers, would be delivered a second time. A full
			// store still answers for the keys it holds: a later part
			// that repeats a request it holds is still a repeat.
			result = resultStoreError
			if errors.Is(err, store.ErrFull) || errors.Is(err, store.ErrOwnerFull) {
				continue
			}
			break
		}
		if !reserved {
			if h.isEmergencyCall(in) && !(verified && heldBackByFirst(current, in, s.keyed())) {
				// Nothing the edge adds holds an emergency call back: a
				// repeat of one in flight, or of one that failed, is
				// delivered, at the risk of a second call to the
				// emergency service. Only an answered one is replayed,
				// and a repeat of a request that was no emergency call
				// when it came is held back as it would have been then.
				// The key of an emergency call that ended without
				// success is taken over, so that this one's answer is
				// recorded for its own repeats.
				if emergencyEnded(current) {
					beforeTakeover()
					replacing = current
					epoch := s.begin()
					tookOver, err := s.Replace(ctx, owner, key, current, token, idem.window)
					s.end(epoch, err)
					if tookOver {
						held = append(held, key) // a request's: no values
						tookOverFrom = current
						idem.inFlight.keep(token, owner, key, token)
						kept = true
						continue
					}
					if err == nil && rereads < maxTakeoverRereads {
						// The key changed since it was read (another
						// repeat took it over, and may have been answered
						// with success since): it is read again, rather
						// than this one delivered on a value gone.
						rereads++
						goto reserve
					}
				}
				idem.count(in, resultUnprotected)
				return h.deliverLimited(w, r, next, in)
			}
			if in.cleaned == nil {
				// A batch's part, which names it (a batch's answer is
				// never replayed).
				idem.count(in, resultConflict)
				return h.fail(w, in, inPart(in.keyedPart(i), errAlreadyExists))
			}
			return h.repeat(w, in, current, verified)
		}
		held = append(held, key)
		if values != nil {
			heldValues = append(heldValues, values[i])
		}
		idem.inFlight.keep(token, owner, key, valueAt(values, i, token))
		kept = true
	}
	keys, values = held, heldValues
	idem.count(in, result)
	if len(keys) == 0 {
		return h.deliverLimited(w, r, next, in)
	}
	taken, ok := h.checkLimits(w, in)
	if !ok {
		// Refused before delivery: the client may send it again.
		h.release(ctx, owner, keys, values, token)
		return nil
	}

	rec := in.recorder(w)
	if s.redis != nil {
		if key, ok := in.answerSealKey(); ok {
			rec.seal = &key
		}
	}
	// An answer that may be recorded (not a batch's) is replayed to
	// repeats that may accept other content codings than this request,
	// without its headers: the pool is asked for it without the client's
	// Accept-Encoding (Go's transport then asks for gzip itself, and
	// decodes it).
	if in.cleaned != nil {
		delete(r.Header, "Accept-Encoding")
	}
	var deliverErr error
	delivered := !h.goneBeforeDelivery(rec, in) // else nothing is sent
	if delivered {
		deliverErr = h.deliverKept(rec, r, next, in, func() {
			h.keepUnreplayable(ctx, in, owner, keys, values, token, start)
		})
	}
	answered := rec.status != 0 && rec.status != statusClientClosed
	switch {
	case !delivered || h.reachedNoPool(repl):
		// No pool took the request (the client went away before it was
		// sent, or before it reached the pool it went to, or the edge
		// answered 410 or 503 because no pool could take it): the client
		// may send it again, and the limits give back what it took. A key
		// taken over gets its value back: the call before this one may
		// have been placed.
		if tookOverFrom != "" {
			epoch := s.begin()
			_, err := s.Replace(ctx, owner, keys[0], token, tookOverFrom, idem.window)
			s.end(epoch, err)
		} else {
			h.release(ctx, owner, keys, values, token)
		}
		h.refundLimits(in, taken)
	case (!answered || rec.status >= http.StatusMultipleChoices) && h.isEmergencyCall(in):
		// An emergency call that may not have been placed holds no
		// repeat that is an emergency call back (see above): such a
		// repeat takes the key over (see emergencyEnded). The key is not
		// released: a repeat that is no emergency call now (a reload
		// took its number off the emergency numbers, or its host off
		// sip_domains) is held back, for the call may have been placed.
		// It gets the failure again, or 409 when there is none to give.
		value := emergencyEndedMark
		if answered && !rec.overflow && !rec.unreplayable {
			// Recorded as no failure of a request that was no emergency
			// call (notEmergency false): it holds no emergency call back.
			digest = inputsDigest(s.keyed(), in.path, in.cleaned)
			value = rec.encode(&digest)
		}
		h.keepEnded(ctx, in, owner, keys[0], token, value, idem.endedTTL(start))
	case (rec.overflow || rec.unreplayable) && h.isEmergencyCall(in):
		// An emergency call answered with success holds its repeats
		// back (see above), and this answer cannot be given again (its
		// body is too long to record): the key holds a mark of a success
		// with the request's inputs, which holds a repeat with them back
		// (409), as a recorded success would, where the token would hold
		// none back (see heldBackByFirst).
		digest = inputsDigest(s.keyed(), in.path, in.cleaned)
		h.keepEnded(ctx, in, owner, keys[0], token, emergencyAnsweredMark+string(digest[:]), idem.endedTTL(start))
	case !answered || rec.overflow || in.cleaned == nil || rec.unreplayable:
		// The request may have reached a pool, and there is no answer that
		// can be replayed (the client went away once it may have reached
		// the pool, the next handler failed, the body is too long, a
		// batch's answer holds other parts', an answer whose meaning
		// rests on a header the record does not keep, see replayable).
		// So it is when a pool's answer is cut short (see deliverKept).
		h.keepUnreplayable(ctx, in, owner, keys, values, token, start)
	default:
		if inputs == nil {
			digest = inputsDigest(s.keyed(), in.path, in.cleaned)
			inputs = &digest
		}
		// A failure recorded is no emergency call's (see above): the
		// record says so, for a repeat judged an emergency call by a
		// later config.
		rec.notEmergency = rec.status >= http.StatusMultipleChoices
		h.keepEnded(ctx, in, owner, keys[0], token, rec.encode(inputs), idem.endedTTL(start))
	}
	return deliverErr
}

// deliverKept is deliver, for a request that holds idempotency keys:
// kept runs if delivering it panics, before the panic goes on. A pool's
// answer cut short ends so (reverse_proxy panics with
// http.ErrAbortHandler, for net/http to cut the client's connection),
// as may the next handler; either way the request may have reached a
// pool, and its keys stay reserved (kept).
func (h *Handler) deliverKept(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, in *intake, kept func()) error {
	defer func() {
		if v := recover(); v != nil {
			kept()
			panic(v)
		}
	}()
	return h.deliver(w, r, next, in.rebuild(), in)
}

// keepUnreplayable keeps the keys of a request that may have reached a
// pool and left no answer that can be replayed, reserved with their
// own values for the rest of the window from start (a third of it at
// least): a repeat gets 409. These are the answers a client retries, so
// a key the store dropped while the request was in flight is found here
// and written back (see keepEnded). A batch's keys go in one round trip
// (see storeUse.renew), so that its parts do not wait a store timeout
// each while the store fails.
func (h *Handler) keepUnreplayable(ctx context.Context, in *intake, owner string, keys, values []string, token string, start time.Time) {
	s, ttl := h.store, h.idempotency.endedTTL(start)
	if values == nil {
		h.keepEnded(ctx, in, owner, keys[0], token, token, ttl)
		return
	}
	owners := make([]string, len(keys))
	for i := range owners {
		owners[i] = owner
	}
	for i, lost := range s.renew(ctx, s.begin(), owners, keys, values, ttl) {
		if lost {
			h.writeBack(ctx, in, owner, keys[i], values[i], ttl)
		}
	}
}

// endedTTL is how long the key of a request that came at start and may
// have reached a pool is kept once the request ends: the rest of the
// window, counted from the request; a third of it at least, so that a
// pool slower than the window does not leave the client an answer a
// repeat cannot get again.
func (idem *idempotency) endedTTL(start time.Time) time.Duration {
	return max(idem.window-idempotencyNow().Sub(start), idem.window/3, store.MinTTL)
}

// reservationLostWarning is the error, once a minute at most, that a
// request that may have reached a pool no longer held its key when it
// ended. It names no key, caller or value.
const reservationLostWarning = "idempotency reservation lost: a request that may have reached a pool no longer held its key when it ended " +
	"(the key expired unrenewed while the request was in flight, or the store dropped it: evicted, deleted, or lost in a Redis restart or failover); " +
	"the edge wrote it back where the key was free (caddy_ucwa_idempotency_reservations_restored_total), " +
	"else a repeat of the request within the window is delivered again"

// keepEnded writes value to key, which the request in reserved for owner
// with expect, for ttl, as a request that may have reached a pool ends:
// its answer, a mark of how it ended, or expect itself (the reservation
// renewed) where nothing can be replayed. A key that no longer holds
// expect lost the reservation while the request was in flight (the store
// dropped it, or it expired unrenewed): see writeBack. A store error is
// counted as one (see storeUse.end), and ends it there.
func (h *Handler) keepEnded(ctx context.Context, in *intake, owner, key, expect, value string, ttl time.Duration) {
	s := h.store
	epoch := s.begin()
	replaced, err := s.Replace(ctx, owner, key, expect, value, ttl)
	s.end(epoch, err)
	if !replaced && err == nil {
		h.writeBack(ctx, in, owner, key, value, ttl)
	}
}

// writeBack writes value to key for ttl, for owner, if the key holds
// nothing, for the request in, which may have reached a pool, ended, and
// found that its key no longer held its reservation. Nothing else shows
// such a loss: it is counted in
// caddy_ucwa_idempotency_reservations_lost_total, logged at error level,
// at the first and then once a minute at most, for all the handlers that
// share the store, and marked on the request's audit line
// (reservation_lost), which names the caller and the operationId that
// the error line leaves out. A key found free is written
// back (Reserve): a repeat sent while it was gone would hold it still
// (its answer, its own reservation in flight), or have reached no pool,
// so a free key tells that none was delivered meanwhile, and its repeats
// are held back again (counted in _restored_total too). A key that holds
// another value is a repeat's, which may have been delivered: the
// request's answer is not recorded. A key that holds value was not lost:
// Redis ran the Replace, and ran it again when go-redis sent it once more
// after a connection ended before the reply (see store.Redis); or, rarer
// still, it was lost and the Reserve here ran twice so, which is not
// counted.
func (h *Handler) writeBack(ctx context.Context, in *intake, owner, key, value string, ttl time.Duration) {
	s := h.store
	epoch := s.begin()
	reserved, current, err := s.Reserve(ctx, owner, key, value, ttl)
	s.end(epoch, err)
	if err == nil && !reserved && current == value {
		return
	}
	h.idempotency.lost.Inc()
	in.reservationLost = true
	if err == nil && reserved {
		h.idempotency.restored.Inc()
	}
	h.store.reservationLost.note(func(requests uint64) {
		h.logger.Error(reservationLostWarning, zap.Uint64("requests", requests))
	})
}

// release frees keys that a request of owner (see redisOwner)
// reserved with token (a batch: with values, see batchValues), for a
// request that reached no pool: every one of them, whichever fail (see
// storeUse.release), in one round trip on Redis, so that the client
// waits one store timeout at most, and the caller's share with them.
func (h *Handler) release(ctx context.Context, owner string, keys, values []string, token string) {
	if values == nil {
		values = make([]string, len(keys))
		for i := range values {
			values[i] = token
		}
	}
	h.store.release(ctx, owner, keys, values)
}

// releaseUnanswered frees key, if it holds value (and its count in
// owner's share, see redisOwner), after a Redis
// reservation of it with value failed unanswered (timed out, or the
// connection failed): Redis may have run it all the same, and the
// request is not delivered, so the key would make every repeat 409 for
// the window though nothing was ever delivered. The compare-and-delete
// frees only a key that holds this request's value, which no other
// request has. It runs in the background, so that the client, answered
// 503 at once, does not wait a second timeout of a store that is likely
// failing: one goroutine per such request, which ends with its store
// calls (one, or releaseUnansweredAttempts at most while they time out,
// each within the store's timeout, whose context bounds the dial, the wait for a connection, the
// write and the read), and holds the store open until then (hold), so
// that a config unload (Cleanup) closes the store once it is done. A
// reservation that Redis runs after the release (one still on its way,
// or one go-redis's cluster client sends again after a connection
// ended) holds the key again for the window:
// its repeats get 409, as every one of them did before, and nothing is
// delivered twice. A store failure that Redis answered (refused, full)
// ran no reservation, and a reload's closed store takes no call: those
// are not released. The release's failure is judged for the outage (see
// settle) and not counted in caddy_ucwa_store_errors_total: the request's
// failure with this key was counted at its reservation, and a failing
// request counts once for each key it could not reserve.
func (h *Handler) releaseUnanswered(err error, owner, key, value string) {
	s := h.store
	if s.redis == nil || !errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrClosed) {
		return
	}
	s.hold()
	go func() {
		defer s.unhold()
		for range releaseUnansweredAttempts {
			epoch := s.begin()
			_, err := s.redis.Release(context.Background(), owner, key, value)
			s.settle(epoch, err)
			if !errors.Is(err, store.ErrTimeout) {
				return
			}
		}
	}()
}

// releaseUnansweredAttempts bounds the store calls releaseUnanswered
// makes: a release that itself times out (the store still slow) is sent
// again, which the compare-and-delete makes harmless if Redis ran it,
// since a key left holding the value answers every repeat 409 for the
// window, though nothing was delivered. One whose connection failed is
// not: a Redis that is down or hangs up would only be dialed again and
// again, by every request the outage fails. Each call is bounded by the
// store's timeout.
const releaseUnansweredAttempts = 3

// deliverLimited delivers the accepted request in, as deliver does, if
// the velocity limits allow it. A request that took events and certainly
// reached no pool gives them back (see refundLimits): the client went
// away before it was sent (it is then not sent), or the edge answered
// 410 or 503 because no pool could take it.
func (h *Handler) deliverLimited(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, in *intake) error {
	taken, ok := h.checkLimits(w, in)
	if !ok {
		return nil
	}
	if len(taken) == 0 {
		return h.deliver(w, r, next, in.rebuild(), in)
	}
	if h.goneBeforeDelivery(w, in) {
		h.refundLimits(in, taken)
		return nil
	}
	err := h.deliver(w, r, next, in.rebuild(), in)
	if repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); h.reachedNoPool(repl) {
		h.refundLimits(in, taken)
	}
	return err
}

// goneBeforeDelivery reports whether the client of in went away before
// its request was handed to a pool or the next handler: it is then not
// sent. The answer is reverse_proxy's for a client gone (499, the status
// the access log records), as a pool's attempt gives one the client left
// before the request went out: with no answer at all, net/http would
// send an empty 200 once the handler returns, which a client that only
// half-closed its side of the connection (Go's server takes that for a
// client gone) reads as a success of a request never delivered. The
// audit line says 0 for it, as for any client gone before a pool had its
// request (goneUnsent).
func (h *Handler) goneBeforeDelivery(w http.ResponseWriter, in *intake) bool {
	beforeDelivery(in.r)
	if in.r.Context().Err() == nil {
		return false
	}
	in.goneUnsent = true
	w.WriteHeader(statusClientClosed)
	return true
}

// beforeDelivery is called as a request is about to be handed to a pool
// or the next handler, once the edge took its keys and limit events: a
// test's, to have its client go away then.
var beforeDelivery = func(*http.Request) {}

// heldBackByFirst reports whether current, the value of a key, holds
// back in, a repeat that is an emergency call now: current is a recorded
// answer of success (2xx) that in gets again, the mark of a success with
// in's inputs that the record could not hold (emergencyAnsweredMark),
// or the reservation or the
// recorded failure of a request with in's inputs that was no emergency
// call when it came (a reload since made one of its numbers an emergency
// number, or its host one of sip_domains). Reservations and failures
// recorded by edges that do not mark them so (a token "f", kinds "A" and
// "E") hold nothing back: the first may have been an emergency call.
func heldBackByFirst(current string, in *intake, keyed bool) bool {
	if len(current) == heldTokenLen && current[0] == 'n' ||
		len(current) == len(emergencyAnsweredMark)+inputsDigestLen && strings.HasPrefix(current, emergencyAnsweredMark) {
		if in.cleaned == nil {
			return false
		}
		d := inputsDigest(keyed, in.path, in.cleaned)
		return current[1:1+inputsDigestLen] == string(d[:])
	}
	a, ok := decodeAnswer(current)
	return ok && (a.status < http.StatusMultipleChoices || a.notEmergency) && a.answers(in, keyed)
}

// maxTakeoverRereads bounds the times deliverOnce reads again the key of
// an emergency call that a takeover found changed: past it, the repeat is
// delivered as one of a request in flight is.
const maxTakeoverRereads = 3

// beforeTakeover is called as an emergency call is about to take over
// the key of one that ended without success (see emergencyEnded): a
// test's, to let another request change the key first.
var beforeTakeover = func() {}

// emergencyEndedMark is the value of the key of an emergency call that
// may have been placed and has no answer that can be given again (none,
// or one the record cannot hold): a repeat that is an emergency call takes
// the key over, one that is no emergency call now gets 409. It reads as
// no recorded answer and as no reservation token of either kind, and an
// edge that knows neither takes it, as any value it cannot read, for a
// reservation in flight.
const emergencyEndedMark = "x"

// emergencyAnsweredMark, followed by the request's inputsDigest, is the
// value of the key of an emergency call answered with success that the
// record cannot hold (a body over maxRecordedBody): it holds a repeat
// with the same inputs back (see heldBackByFirst), as a recorded success
// does, and answers any repeat 409. Edges that do not know it take it,
// as any value they cannot read, for a reservation in flight.
const emergencyAnsweredMark = "y"

// emergencyEnded reports whether current, the value of a key, is that of
// an emergency call that ended without success (see deliverOnce): the
// mark, or a failure recorded as no request's that was no emergency
// call (notEmergency unset; edges a version older than this record any
// failure so). A repeat that is an emergency call takes such a key over.
func emergencyEnded(current string) bool {
	if current == emergencyEndedMark {
		return true
	}
	a, ok := decodeAnswer(current)
	return ok && a.status >= http.StatusMultipleChoices && !a.notEmergency
}

// batchValues returns the values with which the batch in holds its n
// keys, reserved with token (see idempotencyKeys), nil for a request
// that is no batch, whose keys hold token: the key of a part that is no
// emergency call by itself holds a held value of that part's inputs, "n",
// its inputsDigest and token's random bits, as a request that is no
// emergency call holds its key (see heldBackByFirst): a repeat of the
// part alone that a reload since made an emergency call is held back as
// the part would be, never delivered a second time. The key of a part
// that is an emergency call by itself holds token, which holds no
// emergency call back.
func (h *Handler) batchValues(in *intake, n int, token string) []string {
	if len(in.parts) == 0 || n == 0 {
		return nil
	}
	values := make([]string, 0, n)
	for _, p := range in.parts {
		if !hasOperationID(p.cleaned) {
			continue // no key (see idempotencyKeys)
		}
		if _, emergency := h.usageOf(p.cleaned); emergency {
			values = append(values, token)
			continue
		}
		digest := inputsDigest(h.store.keyed(), ucwa.CanonicalPath(partResourcePath(p.path, in.path)), p.cleaned)
		values = append(values, "n"+string(digest[:])+token[1:])
	}
	return values
}

// partResourcePath is the path of the resource a batch's part goes to, as
// the part sent alone would name it, for its inputsDigest: the part's own
// path, or, for one that names no application (which idempotencyKeys keys
// with the batch's application), that path below the batch's application
// (/ucwa/v1/applications/1 and /communication/startPhoneAudio), so that
// the part's held value holds back a repeat of it alone, as its key does.
func partResourcePath(partPath, batchPath string) string {
	if ucwa.ApplicationID(partPath) != "" {
		return partPath
	}
	// As ApplicationID reads the batch's path: up to the segment after
	// "applications".
	p := ucwa.CanonicalPath(batchPath)
	for i := 0; i < len(p); {
		seg, _, _ := strings.Cut(p[i+1:], "/")
		i += 1 + len(seg)
		if strings.EqualFold(seg, "applications") && i < len(p) {
			id, _, _ := strings.Cut(p[i+1:], "/")
			return p[:i+1+len(id)] + partPath
		}
	}
	return partPath
}

// valueAt is the value that holds the i-th key of a request reserved
// with token: values[i], or token when values is nil.
func valueAt(values []string, i int, token string) string {
	if values == nil {
		return token
	}
	return values[i]
}

// hasOperationID reports whether c, a request's (nil for a batch), has
// an operationId.
func hasOperationID(c *ucwa.Cleaned) bool {
	if c == nil {
		return false
	}
	id, _ := c.Value("operationId")
	return id != ""
}

// repeat answers a request whose key holds current: the recorded answer
// again for a verified caller, else 409. A 401, 405, 407 or 426, which
// older edges recorded without the header it needs, is not given again
// (see replayable).
func (h *Handler) repeat(w http.ResponseWriter, in *intake, current string, verified bool) error {
	a, ok := decodeAnswer(current)
	if ok && a.sealed {
		key, keyed := in.answerSealKey()
		ok = keyed
		if ok {
			a.body, ok = openBody(&key, a.body)
		}
	}
	switch {
	case !ok || !verified || !replayable(a.status, nil):
		h.idempotency.count(in, resultConflict)
		return h.fail(w, in, errAlreadyExists)
	case !a.answers(in, h.store.keyed()):
		h.idempotency.count(in, resultConflict)
		return h.fail(w, in, errOperationIDReused)
	}
	h.idempotency.count(in, resultReplayed)
	a.write(w, in.r)
	return nil
}

// reachedNoPool reports whether the request of repl, which deliver has
// handled, certainly reached no pool: the handler has pools, and deliver
// answered it 410 or 503 itself because none could take it, or the client
// went away before it reached the pool it went to (see servedByPool). A
// request that may have reached one (the edge's 502 or 504, the client
// gone once the request may have reached it, a pool's answer) did.
func (h *Handler) reachedNoPool(repl *caddy.Replacer) bool {
	return len(h.pools) > 0 && !servedByPool(repl)
}

// servedByPool reports whether deliver handed the request of repl to a
// pool that took it: deliver names that pool in {http.ucwa.pool}, and
// leaves it empty when it answered 410 or 503 itself because no pool could
// take the request, or when the client went away before the request
// reached the pool.
func servedByPool(repl *caddy.Replacer) bool {
	if repl == nil {
		return true // unknown: not released
	}
	name, _ := repl.GetString("http.ucwa.pool")
	return name != ""
}

// unmarshalIdempotency parses `idempotency [<window>]`; d is on
// `idempotency`.
func unmarshalIdempotency(d *caddyfile.Dispenser) (*IdempotencyConfig, error) {
	c := new(IdempotencyConfig)
	if d.NextArg() {
		window, err := caddy.ParseDuration(d.Val())
		if err != nil || window == 0 {
			return nil, d.Errf("idempotency: %q is not a window other than 0 (such as 10m)", d.Val())
		}
		if err := checkWindow(window, 0); err != nil {
			return nil, d.Err(err.Error())
		}
		c.Window = caddy.Duration(window)
	}
	if d.NextArg() {
		return nil, directive.ArgCount(d, "idempotency", "at most one argument, <window>")
	}
	if d.NextBlock(d.Nesting()) {
		return nil, d.Err("idempotency takes no block: its window is its argument (idempotency 10m)")
	}
	return c, nil
}
