package caddymodule

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

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
	if h.verifier == nil {
		h.logger.Warn(idempotencyWithoutCallerWarning)
	}
	if s := h.store; s != nil && s.redis != nil && s.redis.MaxPerOwner() == 0 {
		h.logger.Warn(redisNoShareWarning)
	}
	h.idempotency = &idempotency{window: window, inFlight: reservationsInFlight{h: h, window: window}}
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
	if s.redis != nil {
		owner = s.redisOwner(in)
	}
	// A batch holds each key with a value of its own (see
	// batchValues); nil for a request, whose keys hold token.
	values := h.batchValues(in, len(keys), token)
	// The store has timeouts of its own, and a reservation is written
	// whether or not the client is still there.
	ctx := context.Background()
	start := time.Now()
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
		reserved, current, err := s.reserve(ctx, owner, key, valueAt(values, i, token), idem.window)
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
					tookOver, err := s.replace(ctx, owner, key, current, token, idem.window)
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
			return h.repeat(w, in, current, verified && in.cleaned != nil)
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
	delivered := r.Context().Err() == nil // else the client went away: nothing is sent
	if delivered {
		deliverErr = h.deliver(rec, r, next, in.rebuild(), in)
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
			_, err := s.replace(ctx, owner, keys[0], token, tookOverFrom, idem.window)
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
		epoch := s.begin()
		_, err := s.replace(ctx, owner, keys[0], token, value, max(idem.window-time.Since(start), idem.window/3, store.MinTTL))
		s.end(epoch, err)
	case (rec.overflow || rec.unreplayable) && h.isEmergencyCall(in):
		// An emergency call answered with success holds its repeats
		// back (see above), and this answer cannot be given again (its
		// body is too long to record): the key holds a mark of a success
		// with the request's inputs, which holds a repeat with them back
		// (409), as a recorded success would, where the token would hold
		// none back (see heldBackByFirst).
		digest = inputsDigest(s.keyed(), in.path, in.cleaned)
		epoch := s.begin()
		_, err := s.replace(ctx, owner, keys[0], token, emergencyAnsweredMark+string(digest[:]), max(idem.window-time.Since(start), idem.window/3, store.MinTTL))
		s.end(epoch, err)
	case !answered || rec.overflow || in.cleaned == nil || rec.unreplayable:
		// The request may have reached a pool, and there is no answer that
		// can be replayed (the client went away once it may have reached
		// the pool, the next handler failed, the body is too long, a
		// batch's answer holds other parts', an answer whose meaning
		// rests on a header the record does not keep, see replayable):
		// the keys stay
		// reserved for the window. So they do when a pool's answer is
		// cut short: reverse_proxy then panics with http.ErrAbortHandler,
		// which passes through here.
	default:
		// The rest of the window, counted from the first request; a third
		// of it at least, so that a pool slower than the window does not
		// leave the client an answer a repeat cannot get again.
		ttl := max(idem.window-time.Since(start), idem.window/3, store.MinTTL)
		if inputs == nil {
			digest = inputsDigest(s.keyed(), in.path, in.cleaned)
			inputs = &digest
		}
		// A failure recorded is no emergency call's (see above): the
		// record says so, for a repeat judged an emergency call by a
		// later config.
		rec.notEmergency = rec.status >= http.StatusMultipleChoices
		epoch := s.begin()
		_, err := s.replace(ctx, owner, keys[0], token, rec.encode(inputs), ttl)
		s.end(epoch, err)
	}
	return deliverErr
}

// release frees keys that a request of owner (see storeUse.reserve)
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
// owner's share, see storeUse.reserve), after a Redis
// reservation of it with value failed unanswered (timed out, or the
// connection failed): Redis may have run it all the same, and the
// request is not delivered, so the key would make every repeat 409 for
// the window though nothing was ever delivered. The compare-and-delete
// frees only a key that holds this request's value, which no other
// request has. It runs in the background, so that the client, answered
// 503 at once, does not wait a second timeout of a store that is likely
// failing: one goroutine per such request, which ends with its one
// store call, within the store's timeout (whose context bounds the dial,
// the wait for a connection, the write and the read), and holds the
// store open until then (hold), so that a config unload (Cleanup) closes
// the store once it is done. A reservation that Redis runs after the
// release (one still on its way, or one go-redis's cluster client sends
// again after a connection ended) holds the key again for the window:
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
		epoch := s.begin()
		_, err := s.redis.ReleaseFor(context.Background(), owner, key, value)
		s.settle(epoch, err)
	}()
}

// reservationsInFlight keeps the keys of the requests in flight
// reserved for the window, renewing them every third of the window until
// each request is answered: a pool slower than the window would otherwise
// see a repeat sent after the window as new, and take it while it still
// acts on the first. One timer serves every request of the handler,
// ticking every third of the window while any request is in flight, so
// that a request costs an entry in a map rather than a timer of its own.
// A key is renewed from the moment it is reserved, not once its request
// has reserved all of its keys (a batch's parts, one store call each) and
// passed the limits: each store call may take the store's timeout, and a
// batch's first key would otherwise wait for all of them. Every key in
// flight is renewed at every tick, the first within a third of the window
// of its reservation, 500 in one store call (see storeUse.renew): one
// after another, the last would wait a timeout for each key before it. A
// renewal that finds a key replaced (the answer recorded) or released
// changes nothing.
type reservationsInFlight struct {
	h      *Handler
	window time.Duration

	mu    sync.Mutex
	keys  map[string]reservedKeys // by reservation token
	timer renewalTimer            // nil until the first request
	armed bool                    // the timer is to tick
}

// reservedKeys are the keys a request in flight holds: its first, held
// with value, and a batch's others in a slice of their own, so that a
// request of one key costs no allocation; all of them for owner (see
// storeUse.reserve), whose share counts each until its renewed TTL is
// over.
type reservedKeys struct {
	owner, key, value string
	more              []heldKey
}

// heldKey is a key reserved and the value that holds it.
type heldKey struct{ key, value string }

// renewalTimer is the timer of reservationsInFlight.
type renewalTimer interface {
	Stop() bool
	Reset(time.Duration) bool
}

// renewAfter makes reservationsInFlight's timer: time.AfterFunc, or a
// test's fake clock, on which it renews a memory store's reservations.
var renewAfter = func(d time.Duration, f func()) renewalTimer { return time.AfterFunc(d, f) }

// keep renews key, which token's request has just reserved for owner
// with value (a batch's, see batchValues; else token), until
// forget(token).
func (rs *reservationsInFlight) keep(token, owner, key, value string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.keys == nil {
		rs.keys = make(map[string]reservedKeys)
	}
	if held, ok := rs.keys[token]; ok {
		held.more = append(held.more, heldKey{key, value})
		rs.keys[token] = held
	} else {
		rs.keys[token] = reservedKeys{owner: owner, key: key, value: value}
	}
	switch {
	case rs.timer == nil:
		rs.timer = renewAfter(rs.window/3, rs.tick)
	case !rs.armed:
		rs.timer.Reset(rs.window / 3)
	}
	rs.armed = true
}

// forget stops renewing the keys of token, once its request is answered
// or refused.
func (rs *reservationsInFlight) forget(token string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	delete(rs.keys, token)
	if len(rs.keys) == 0 && rs.armed {
		rs.armed = false
		rs.timer.Stop()
	}
}

// tick renews the reservations of every request in flight, and has the
// timer tick again while any is.
func (rs *reservationsInFlight) tick() {
	rs.mu.Lock()
	if len(rs.keys) == 0 || !rs.armed {
		rs.mu.Unlock()
		return
	}
	owners := make([]string, 0, len(rs.keys))
	keys := make([]string, 0, len(rs.keys))
	values := make([]string, 0, len(rs.keys))
	for _, held := range rs.keys {
		owners, keys, values = append(owners, held.owner), append(keys, held.key), append(values, held.value)
		for _, k := range held.more {
			owners, keys, values = append(owners, held.owner), append(keys, k.key), append(values, k.value)
		}
	}
	rs.timer.Reset(rs.window / 3)
	rs.mu.Unlock()
	// A key that fails (a Redis Cluster shard down, one command lost)
	// costs the others nothing: a request left unrenewed two ticks
	// running may see its key expire while it is in flight.
	s := rs.h.store
	s.renew(context.Background(), s.begin(), owners, keys, values, rs.window)
}

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
	if r.Context().Err() != nil {
		h.refundLimits(in, taken)
		return nil
	}
	err := h.deliver(w, r, next, in.rebuild(), in)
	if repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); h.reachedNoPool(repl) {
		h.refundLimits(in, taken)
	}
	return err
}

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

// storeOwnerVersion starts the hashed input of appendStoreOwner; the
// byte after it tells what follows: a client's address, a verified
// caller of a tid (or of none), or a verified caller of an issuer.
const storeOwnerVersion = "caddy-ucwa store owner 1"

const (
	storeOwnerOfAddress byte = iota
	storeOwnerOfTenant
	storeOwnerOfIssuer
)

// appendStoreOwner appends to b whom in's reservations count for in a
// memory store (max_entries_per_caller), storeOwnerLen bytes: the
// verified caller as idempotency knows it (its tenant, and its oid or
// else its sub: caller), else the client's address, apart from any
// caller. It is a digest, so that the store holds no caller id or
// address. A verified caller's is its grant's, made with the grant (see
// verifiedStoreOwner): the same for every request of the token.
func (in *intake) appendStoreOwner(b []byte, caller string) []byte {
	if g := in.grant; g != nil && caller != "" {
		return append(b, g.storeOwner[:]...)
	}
	var buf [128]byte
	h := append(buf[:0], storeOwnerVersion...)
	h = append(h, storeOwnerOfAddress)
	h = append(h, clientNetwork(in.r)...)
	sum := storeDigest(true, h, storeOwnerLen) // the owner is a memory store's alone
	return append(b, sum[:storeOwnerLen]...)
}

// verifiedStoreOwner is the store owner (see appendStoreOwner) of the
// verified caller of tenant tid, or of the issuer that stands for its
// tenant (see makeGrant), and caller ("" for none: no owner of its own).
// A tid and an issuer of the same text are told apart by the byte
// before them.
func verifiedStoreOwner(tid, issuer, caller string) (owner [storeOwnerLen]byte) {
	if caller == "" {
		return owner
	}
	tenant, of := tid, storeOwnerOfTenant
	if issuer != "" {
		tenant, of = issuer, storeOwnerOfIssuer
	}
	h := append([]byte(storeOwnerVersion), of)
	h = binary.AppendUvarint(h, uint64(len(tenant)))
	h = append(h, tenant...)
	h = append(h, caller...)
	sum := sha256.Sum256(h)
	copy(owner[:], sum[:])
	return owner
}

// storeOwnerLen is the length of a store owner: half a SHA-256.
const storeOwnerLen = 16

// idempotencyKeyPrefix starts the store keys of idempotency.
const idempotencyKeyPrefix = "idem:"

// idempotencyKeys appends to keys the store keys of in (see
// IdempotencyConfig): one for a request with an operationId, one for each
// guarded part of a batch that has one, none for any other. With keys
// it returns the request's reservation token (see
// appendReservationToken) and, when owned (a memory store, whose keys
// are keyed for the process: see storeDigest), its store owner (see
// appendStoreOwner);
// one string holds the keys, the token and the owner, so that they cost
// one allocation together (the store keeps the key, which keeps that
// string, for the window in any case). It reports whether the caller is
// verified. The caller comes
// from the verified token's grant (nil when no token was verified): its
// tenant (tid, or an iss: see makeGrant), and its oid or else its sub.
//
// With inputs (a request that is no emergency call), the token is a held
// one: "n", inputs, and the random bits (see heldBackByFirst).
func (in *intake) idempotencyKeys(keys []string, inputs *[inputsDigestLen]byte, owned bool) (_ []string, token, owner string, verified bool) {
	var tid, issuer, caller string
	if in.grant != nil {
		tid, issuer, caller = in.grant.caller()
	}
	var room [idempotencyKeyLen + heldTokenLen + storeOwnerLen]byte
	b := room[:0]
	if in.cleaned != nil {
		b = appendIdempotencyKey(b, owned, tid, issuer, caller, in.application, in.cleaned)
	}
	for _, p := range in.parts {
		// A part's path may be relative to the batch's application.
		application := ucwa.ApplicationID(p.path)
		if application == "" {
			application = in.application
		}
		b = appendIdempotencyKey(b, owned, tid, issuer, caller, application, p.cleaned)
	}
	if len(b) == 0 {
		return keys, "", "", caller != ""
	}
	tokenLen := reservationTokenLen
	if inputs != nil && in.cleaned != nil && len(in.parts) == 0 {
		b = append(b, 'n')
		b = appendRandomBits(append(b, inputs[:]...))
		tokenLen = heldTokenLen
	} else {
		b = appendReservationToken(b)
	}
	if owned {
		b = in.appendStoreOwner(b, caller)
	}
	all := string(b)
	if owned {
		all, owner = all[:len(all)-storeOwnerLen], all[len(all)-storeOwnerLen:]
	}
	for ; len(all) > tokenLen; all = all[idempotencyKeyLen:] {
		keys = append(keys, all[:idempotencyKeyLen])
	}
	return keys, all, owner, caller != ""
}

// idempotencyKeyLen is the length of a store key: the prefix, and the
// base64 of a storeDigest (32 bytes, unpadded).
const idempotencyKeyLen = len(idempotencyKeyPrefix) + 43

// idempotencyKeyVersion starts the hashed input of a caller's key
// whose tenant is its tid, or none; idempotencyIssuerKeyVersion that of
// one whose tenant is an issuer's iss (see makeGrant). The two differ
// within the first's length, so that no input of one kind is one of the
// other, whatever the tid and the iss.
const (
	idempotencyKeyVersion       = "caddy-ucwa idempotency 1"
	idempotencyIssuerKeyVersion = "caddy-ucwa idempotency by issuer 1"
)

// appendIdempotencyKey appends to b the store key of a request to the
// application (its id, see ucwa.ApplicationID) cleaned as c by the
// caller of tenant tid, or of the issuer that stands for its tenant, and
// id caller, and nothing for one without an operationId; keyed: for a
// store of this process alone (see storeDigest). The key of a caller
// without issuer is what every version of the edge makes of it (see the
// README's "Upgrading a fleet on one store").
func appendIdempotencyKey(b []byte, keyed bool, tid, issuer, caller, application string, c *ucwa.Cleaned) []byte {
	var buf [256]byte
	h := appendIdempotencyKeyInput(buf[:0], tid, issuer, caller, application, c)
	if len(h) == 0 {
		return b
	}
	sum := storeDigest(keyed, h, sha256.Size)
	b = append(b, idempotencyKeyPrefix...)
	return base64.RawURLEncoding.AppendEncode(b, sum[:])
}

// appendIdempotencyKeyInput appends to h the hashed input of the store
// key that appendIdempotencyKey makes, and nothing for a request without
// an operationId.
func appendIdempotencyKeyInput(h []byte, tid, issuer, caller, application string, c *ucwa.Cleaned) []byte {
	operationID, _ := c.Value("operationId")
	if operationID == "" {
		return h
	}
	start := len(h)
	h = append(h, idempotencyKeyVersion...)
	tenant := tid
	if issuer != "" {
		h, tenant = append(h[:start], idempotencyIssuerKeyVersion...), issuer
	}
	// Each part with its length before it, so that no two requests'
	// parts run together into the same bytes.
	for _, part := range [...]string{tenant, caller, application, c.Operation.Rel, operationID} {
		h = binary.AppendUvarint(h, uint64(len(part)))
		h = append(h, part...)
	}
	return h
}

// reservationTokenLen is the length of a reservation token: "f" and the
// base64 of 16 bytes, unpadded.
const reservationTokenLen = 1 + 22

// heldTokenLen is the length of a held reservation token (see
// idempotencyKeys): "n", an inputsDigest and the base64 of 16 random
// bytes. Neither kind of token reads as a recorded answer: an edge that
// knows only "f" tokens takes an "n" one as it takes those, for a
// reservation in flight.
const heldTokenLen = 1 + inputsDigestLen + 22

// appendReservationToken appends a new reservation token to b: the value
// of a reservation in flight, "f" and 128 random bits, unique to the
// request that holds the key, so that it alone replaces or releases it.
// The bits need not be secret (the token never leaves the edge and its
// store), only unique: math/rand/v2's generator, seeded by the system
// per process, gives them without a system call.
func appendReservationToken(b []byte) []byte {
	return appendRandomBits(append(b, 'f'))
}

// appendRandomBits appends the base64 of 16 random bytes to b.
func appendRandomBits(b []byte) []byte {
	var raw [16]byte
	binary.LittleEndian.PutUint64(raw[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(raw[8:], rand.Uint64())
	return base64.RawURLEncoding.AppendEncode(b, raw[:])
}

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

// idempotencyNow is the clock of recorded answers' Retry-After; a test
// sets it to a fake clock.
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

// inputsDigestLen is the length of an inputsDigest: the base64 of 16
// bytes, unpadded.
const inputsDigestLen = 22

// inputsDigest is what a repeat must match to get the first request's
// answer again: a digest of the resource the request went to (its path
// in canonical form, see ucwa.CanonicalPath, which resource is, taken
// in lower case, as IIS matches paths: a conversation or log is in it) and of its operation's inputs as the pool reads them,
// normalized (numbers in E.164; an SDP body as it came), so that a
// repeat sent in another format or spelling matches, and one with
// another to, another offer, or to another conversation, does not. It holds no value: the store keeps no phone
// number. keyed: for a store of this process alone (see storeDigest).
func inputsDigest(keyed bool, resource string, c *ucwa.Cleaned) (digest [inputsDigestLen]byte) {
	var buf [512]byte
	h := append(buf[:0], "caddy-ucwa inputs 1"...)
	h = binary.AppendUvarint(h, uint64(len(resource)))
	for i := range len(resource) {
		h = append(h, lowerASCII(resource[i]))
	}
	for i := range c.Operation.Properties {
		v, ok := c.ValueAt(i)
		if !ok {
			h = append(h, 0)
			continue
		}
		h = append(h, 1)
		h = binary.AppendUvarint(h, uint64(len(v)))
		h = append(h, v...)
	}
	if c.Operation.Body == ucwa.SDPBody {
		// The offer is an input too, forwarded as it came: a repeat with
		// another offer was not sent, and the first answer is not its own.
		body := c.Body()
		h = binary.AppendUvarint(h, uint64(len(body)))
		h = append(h, body...)
	}
	sum := storeDigest(keyed, h, 16)
	base64.RawURLEncoding.Encode(digest[:], sum[:16])
	return digest
}

// storeDigest is the digest of h that idempotency keeps in its store,
// in its keys and in the inputsDigest of its values: the SHA-256 of h,
// which every edge of a fleet sharing a Redis computes alike, whatever
// its version (see the README's "Upgrading a fleet on one store"); or,
// keyed, for a memory store, which this process alone reads and writes
// (across config reloads too), four 64-bit hashes of h keyed by seeds
// drawn for the process (hash/maphash), which no one outside it can
// foresee, at a fraction of SHA-256's cost, which is most of the
// instructions of idempotency in a memory store. The caller uses the
// first n bytes (a multiple of 8): keyed, only those are made.
func storeDigest(keyed bool, h []byte, n int) (sum [sha256.Size]byte) {
	if !keyed {
		return sha256.Sum256(h)
	}
	for i := range n / 8 {
		binary.LittleEndian.PutUint64(sum[8*i:], maphash.Bytes(processSeeds[i], h))
	}
	return sum
}

// processSeeds key storeDigest for this process's stores: one per 64
// bits of the digest.
var processSeeds = [sha256.Size / 8]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed(), maphash.MakeSeed(), maphash.MakeSeed()}

// lowerASCII is c in lower case when it is an ASCII letter.
func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
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
		return nil, d.ArgErr()
	}
	if d.NextBlock(d.Nesting()) {
		return nil, d.Err("idempotency takes no block")
	}
	return c, nil
}
