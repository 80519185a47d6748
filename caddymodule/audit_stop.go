package caddymodule

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// A stop with a grace_period exits the process under the requests still
// in flight when the period is over: Caddy's http app stops waiting for
// its servers (their connections stay open, the handlers run on), cleans
// the config's modules up and runs its exit callbacks, then exits. Such a
// request never reaches its own audit line, though a pool may have it
// and have rung a phone. Each audited request's record is therefore in
// auditInFlight from the moment it is taken in until its line is
// written, and the exit callback (writeStoppedLines) writes the line of
// every request still there, those an earlier config took in too, with
// what the record holds by then: the stage a record has reached tells
// what that is (see stageAuthorized). A reload, which runs no exit callback,
// never writes such a line: the old config's requests run on and write
// their own.
//
// Exactly one line is written per request: the request's own goroutine
// (writeAudit) and the stop each take the record's line (see lineClaim)
// before they write it, and the one that does not get it writes none.

func init() {
	// Once for the process, as caddy.OnExit asks: Caddy runs it after
	// the last config's modules are cleaned up, before the process exits.
	// The log writers are still open then (Caddy v2.11 closes none when
	// it unloads a config, and the buffered writer takes lines after its
	// exit flush: see lineBuffer).
	caddy.OnExit(func(context.Context) { writeStoppedLines() })
}

// auditInFlight holds the records of the audited requests in flight in
// the process.
var auditInFlight inFlightRecords

// inFlightShardCount is how many shards auditInFlight has: a request takes
// one shard's lock to come in and once more to go, and requests that
// share no shard never wait for each other.
const inFlightShardCount = 64

// inFlightRecords is a set of audit records, split in shards, each a list
// of its records under a lock of its own. A record goes to the shard it
// was made for (see auditRecords), whichever request it serves.
type inFlightRecords struct {
	shards [inFlightShardCount]inFlightShard
}

type inFlightShard struct {
	mu    sync.Mutex
	first *auditRecord
	// A shard has a cache line of its own, so that requests of two
	// shards do not contend for one line.
	_ [64 - 16]byte
}

// nextShard spreads records over the shards as they are made.
var nextShard atomic.Uint32

// add puts rec in the set.
func (s *inFlightRecords) add(rec *auditRecord) {
	sh := &s.shards[rec.shard]
	sh.mu.Lock()
	rec.next, rec.prev = sh.first, nil
	if sh.first != nil {
		sh.first.prev = rec
	}
	sh.first = rec
	sh.mu.Unlock()
}

// remove takes rec, which add put in the set, out of it.
func (s *inFlightRecords) remove(rec *auditRecord) {
	sh := &s.shards[rec.shard]
	sh.mu.Lock()
	if rec.prev != nil {
		rec.prev.next = rec.next
	} else {
		sh.first = rec.next
	}
	if rec.next != nil {
		rec.next.prev = rec.prev
	}
	rec.prev, rec.next = nil, nil
	sh.mu.Unlock()
}

// stop takes the line of every record in the set that has no line
// written yet, and returns them with the state each was taken in.
func (s *inFlightRecords) stop() (recs []*auditRecord, states []uint32) {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for rec := sh.first; rec != nil; rec = rec.next {
			if state, ok := rec.rec.line.takeForStop(); ok {
				recs, states = append(recs, rec), append(states, state)
			}
		}
		sh.mu.Unlock()
	}
	return recs, states
}

// writeStoppedLines writes the line of each request still in flight as
// the process exits.
func writeStoppedLines() {
	recs, states := auditInFlight.stop()
	for i, rec := range recs {
		rec.writeStopped(states[i])
	}
}

// lineClaim says who writes the line of a request in flight, and whether
// its answer is under way; it is a record's answerRecorder's, which
// marks the answer (see answering).
type lineClaim struct{ atomic.Uint32 }

// The states of a lineClaim.
const (
	// lineNone: the record is in no set (not audited, or not yet).
	lineNone uint32 = iota
	// lineInFlight: no answer went out yet, and no line is written.
	lineInFlight
	// lineAnswering: the answer's status went out (its body may be on
	// its way), and no line is written.
	lineAnswering
	// lineOwn: the request's goroutine writes the line.
	lineOwn
	// lineStopped, lineStoppedAnswering: the stop writes the line, taken
	// in flight or answering.
	lineStopped
	lineStoppedAnswering
)

// take takes the line for the request's own goroutine, unless the stop
// took it.
func (c *lineClaim) take() bool {
	for {
		switch s := c.Load(); s {
		case lineInFlight, lineAnswering:
			if c.CompareAndSwap(s, lineOwn) {
				return true
			}
		default:
			return false
		}
	}
}

// takeForStop takes the line for the stop, unless the request's
// goroutine took it, and returns the state it took it in.
func (c *lineClaim) takeForStop() (uint32, bool) {
	for {
		switch s := c.Load(); s {
		case lineInFlight:
			if c.CompareAndSwap(s, lineStopped) {
				return s, true
			}
		case lineAnswering:
			if c.CompareAndSwap(s, lineStoppedAnswering) {
				return s, true
			}
		default:
			return 0, false
		}
	}
}

// answering marks the answer under way, as its status is about to go
// out. Once the stop wrote the request's line, which says the client got
// no answer, it never goes out: the process is exiting (the stop runs as
// its last step, see init), and the goroutine waits for the exit here,
// writing nothing more, as it would have been cut wherever it was.
func (c *lineClaim) answering() {
	for {
		switch s := c.Load(); s {
		case lineInFlight:
			if c.CompareAndSwap(s, lineAnswering) {
				return
			}
		case lineStopped:
			select {}
		default:
			return
		}
	}
}

// The stages of an audited request (auditRecord.stage): how far it has
// come, and so what its record holds for a line the stop writes. Each
// stage's fields are set before the stage is, and not changed while the
// request is in flight. A record is taken in at stage 0, with the
// handler, the operation, the application, the addresses and when the
// request came (see register), set before it goes in the set.
const (
	// stageAuthorized: the caller's grant too (see authorized).
	stageAuthorized uint32 = iota + 1
	// stageDelivering: what the line says of the request's judging
	// (gatherJudged), once it goes to the pools or the next handler:
	// a pool it is at is then in attempting.
	stageDelivering
)

// The values of an audit line's cut_by_stop: where a stop found the
// request when the process exited under it.
const (
	cutBeforeDelivery = "before_delivery"
	cutAtPool         = "at_pool"
	cutAtNextHandler  = "at_next_handler"
	cutAnswering      = "answering"
)

// register puts in's record, just taken (see startAudit), in the set of
// requests in flight, for h.
func (in *intake) register(h *Handler) {
	rec := in.audit
	rec.handler, rec.op = h, in.op
	rec.application = auditApplicationID(in.application)
	rec.remoteIP, rec.clientIP, rec.hasClientIP = remoteAddresses(in.r)
	rec.rec.line.Store(lineInFlight)
	auditInFlight.add(rec)
}

// audited returns in's record when it is in the set of requests in
// flight, else nil.
func (in *intake) audited() *auditRecord {
	if rec := in.audit; rec != nil && rec.handler != nil {
		return rec
	}
	return nil
}

// authorized records in's grant, once authorize took the request.
func (in *intake) authorized() {
	if rec := in.audited(); rec != nil && in.grant != nil {
		rec.grant = in.grant
		rec.stage.Store(stageAuthorized)
	}
}

// delivering records what in's line says of its judging, as the request
// goes to the pools or the next handler.
func (in *intake) delivering(h *Handler) {
	if rec := in.audited(); rec != nil {
		rec.gatherJudged(h, in)
		rec.stage.Store(stageDelivering)
	}
}

// atPool records the pool the request is handed to (nil: none, after
// one that could not take it).
func (in *intake) atPool(pl *pool) {
	if rec := in.audited(); rec != nil {
		rec.attempting.Store(pl)
	}
}

// writeStopped writes the line of a request the stop found in flight,
// its line taken in state (lineInFlight or lineAnswering), from what the
// record holds at its stage: into a record of its own, since the
// request's goroutine may still be filling this one's later stage.
func (rec *auditRecord) writeStopped(state uint32) {
	h := rec.handler
	out := new(auditRecord)
	stage := rec.stage.Load()
	var g *grant
	if stage >= stageAuthorized {
		g = rec.grant
	}
	audit := h.auditLogger(out, rec.op, g, rec.application)
	c := audit.Check(zap.InfoLevel, auditMessage)
	if c == nil {
		return
	}
	out.remoteIP, out.clientIP, out.hasClientIP = rec.remoteIP, rec.clientIP, rec.hasClientIP
	out.cutByStop = cutBeforeDelivery
	if stage >= stageDelivering {
		out.single, out.parts, out.policy = rec.single, rec.parts, rec.policy
		out.judged, out.njudged = rec.judged, rec.njudged
		out.decision, out.refusedBy, out.overLimit = rec.decision, rec.refusedBy, rec.overLimit
		out.idempotency = rec.idempotency
		out.operationID, out.maskedOperationID = rec.operationID, rec.maskedOperationID
		if pl := rec.attempting.Load(); pl != nil {
			out.pool, out.cutByStop = pl.name, cutAtPool
		} else if len(h.pools) == 0 {
			out.cutByStop = cutAtNextHandler
		}
	}
	if state == lineAnswering {
		// Set before the answering state (see answerRecorder.WriteHeader).
		out.status, out.cutByStop = rec.rec.status, cutAnswering
	}
	out.duration = auditDuration(c, rec.started)
	out.line[0] = zap.Inline((*auditFields)(out))
	c.Write(out.line[:]...)
}
