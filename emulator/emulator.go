// Package emulator is an EMULATOR of the part of a Skype for Business
// front-end pool that the caddy-ucwa edge talks to: the Caddy HTTP handler
// http.handlers.ucwa_pool_emulator (Caddyfile directive
// ucwa_pool_emulator). It is not a pool and places no calls. It exists for
// the one-command demo, for UCWA client developers working offline, and as
// the upstream of the project's own tests.
//
// For any application id, under /ucwa/v1/applications/{app}/... and
// /ucwa/oauth/v1/applications/{app}/..., it answers:
//
//   - The call-via-work requests (startPhoneAudio at either of its
//     spellings, startPhoneAudioOnBehalfOfDelegator, addPhoneAudio,
//     replaceWithPhoneAudio, continuePhoneAudio), JSON or XML, taken in
//     through the same ucwa Intake as the edge's: 201 Created with
//     Location …/communication/invitations/{n} (…/phoneAudioInvitations/{n}
//     for that spelling), an empty body and X-MS-UcwaVersion, and a
//     scripted call on the event channel; errors as UCWA bodies, among
//     them 409 Conflict/AlreadyExists for an operationId whose invitation
//     is still in progress and 500 ServiceFailure/CallbackChannelError for
//     an application that has never polled its event channel.
//   - acceptWithPhoneAudio, makeMeAvailable, changeNumber and the
//     forwarding requests (immediateForwardToContact,
//     simultaneousRingToContact, unansweredCallToContact), taken in the
//     same way: 204 No Content, as a pool answers them.
//   - PUT communication: 200 OK with the resource as cleaned.
//   - POST batch (multipart/batching): each part answered as if it came
//     alone, in a multipart/batching answer of one
//     application/http; msgtype=response part per request, in request
//     order. A part for the event channel is answered 400: UCWA does not
//     batch it.
//   - Any other operation of the edge's table: 404 (not emulated).
//   - GET communication/invitations/{n} (or phoneAudioInvitations/{n}): the
//     invitation, in JSON or XML by Accept.
//   - GET events?ack=N[&timeout=S]: the event channel, a long poll. ack is
//     the seq of the last event the client received (the next link carries
//     it); a newer poll of the same application ends the pending one with
//     409 Conflict/PGetReplaced. Events come from sender communication:
//     started, updated, completed (status Success, or Failure with a reason).
//   - GET the health path (default /health): 200, for active health checks.
//
// What each call does (answer, decline, no_answer) and how fast is
// scripted by destination in the configuration. The emulator does not
// check Authorization: that is the edge's job in the demo and the tests.
package emulator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

func init() {
	caddy.RegisterModule(Emulator{})
	httpcaddyfile.RegisterHandlerDirective("ucwa_pool_emulator", parseCaddyfile)
	// Before respond, so that a site block of its own needs no `order`.
	httpcaddyfile.RegisterDirectiveOrder("ucwa_pool_emulator", httpcaddyfile.Before, "respond")
}

// Defaults of the configuration.
const (
	DefaultStepDuration    = time.Second
	DefaultHealthPath      = "/health"
	DefaultPollTimeout     = 180 * time.Second
	DefaultMaxPollTimeout  = 1800 * time.Second
	DefaultMaxApplications = 1000
	DefaultMaxInvitations  = 10000
	DefaultMaxEvents       = 256
	DefaultRetainCompleted = 5 * time.Minute
	DefaultApplicationIdle = 30 * time.Minute
	// UcwaVersion is the X-MS-UcwaVersion the emulator answers with.
	UcwaVersion = "2"
	// maxBodySize bounds a request body, as a pool's IIS does; a
	// batch's may be maxBatchSize.
	maxBodySize  = 64 << 10
	maxBatchSize = 1 << 20
	// maxAppIDLength bounds an application id.
	maxAppIDLength = 128
)

// Emulator is the pool emulator's HTTP handler. It answers every request
// itself (unknown paths: 404 NotFound as a UCWA body) and never calls the
// next handler. State lives in memory and is lost on a config reload.
type Emulator struct {
	// What happens to calls to particular destinations. Default: none,
	// and every call has the default_outcome.
	Outcomes []Outcome `json:"outcomes,omitempty"`

	// What happens to calls to any other destination: "answer",
	// "decline" or "no_answer". Default: "answer".
	DefaultOutcome Result `json:"default_outcome,omitempty"`

	// Time between the steps of a call (ringing, alerting, connected,
	// completed). Default: 1s.
	StepDuration caddy.Duration `json:"step_duration,omitempty"`

	// How long every request but a GET or HEAD (a call, settings,
	// forwarding, a batch) waits, once its body is read, before the
	// emulator answers it: a pool slow to answer, for watching what an edge does with a
	// request in flight (a repeat of its operationId, a reload). A client
	// that goes away meanwhile is not answered and places no call.
	// Default: 0, no wait.
	AnswerDelay caddy.Duration `json:"answer_delay,omitempty"`

	// Accept a call from an application that has never polled its event
	// channel, instead of answering 500 ServiceFailure/CallbackChannelError
	// as a pool does. Default: false.
	EventChannelOptional bool `json:"event_channel_optional,omitempty"`

	// The ISO 3166-1 region (such as "US") of phone numbers written
	// without a country code, as the pool's normalization rules would
	// have it. Default: none, and such numbers are answered 400
	// NormalizationFailed.
	DefaultRegion string `json:"default_region,omitempty"`

	// The path of the health endpoint (GET: 200 OK). Default: "/health".
	HealthPath string `json:"health_path,omitempty"`

	// How long an event channel GET without a timeout parameter waits
	// for events. Default: 180s.
	PollTimeout caddy.Duration `json:"poll_timeout,omitempty"`

	// The longest wait a timeout parameter may ask for; longer ones are
	// cut to it. Default: 1800s.
	MaxPollTimeout caddy.Duration `json:"max_poll_timeout,omitempty"`

	// The most applications (event channels) held at once; a new one
	// beyond it is answered 503 ServiceUnavailable. Default: 1000.
	MaxApplications int `json:"max_applications,omitempty"`

	// The most invitations held at once, in progress or completed; a new
	// one beyond it is answered 503 ServiceUnavailable. Default: 10000.
	MaxInvitations int `json:"max_invitations,omitempty"`

	// The most unacknowledged events held per application; older ones
	// are dropped. Default: 256.
	MaxEvents int `json:"max_events,omitempty"`

	// How long a completed invitation can still be read. Default: 5m.
	RetainCompleted caddy.Duration `json:"retain_completed,omitempty"`

	// How long an application without invitations and without a pending
	// poll is remembered after its last request. Default: 30m.
	ApplicationIdle caddy.Duration `json:"application_idle,omitempty"`

	// clock is the wall clock unless a test set another before Provision.
	clock    Clock
	cleaner  *ucwa.Cleaner
	matcher  *ucwa.Matcher
	outcomes map[string]Outcome
	store    *store
}

// CaddyModule returns the Caddy module information.
func (Emulator) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.ucwa_pool_emulator",
		New: func() caddy.Module { return new(Emulator) },
	}
}

// Provision applies the defaults and sets up the emulated pool's state.
func (e *Emulator) Provision(caddy.Context) error {
	// Outcomes are matched in lower case; Validate accepts any case.
	e.DefaultOutcome = Result(strings.ToLower(string(e.DefaultOutcome)))
	if e.DefaultOutcome == "" {
		e.DefaultOutcome = Answer
	}
	setDefault(&e.StepDuration, caddy.Duration(DefaultStepDuration))
	setDefault(&e.PollTimeout, caddy.Duration(DefaultPollTimeout))
	setDefault(&e.MaxPollTimeout, caddy.Duration(DefaultMaxPollTimeout))
	setDefault(&e.RetainCompleted, caddy.Duration(DefaultRetainCompleted))
	setDefault(&e.ApplicationIdle, caddy.Duration(DefaultApplicationIdle))
	setDefault(&e.MaxApplications, DefaultMaxApplications)
	setDefault(&e.MaxInvitations, DefaultMaxInvitations)
	setDefault(&e.MaxEvents, DefaultMaxEvents)
	if e.HealthPath == "" {
		e.HealthPath = DefaultHealthPath
	}
	var err error
	if e.cleaner, err = ucwa.NewCleaner(e.DefaultRegion, ucwa.TelURI); err != nil {
		return fmt.Errorf("default_region: %w", err)
	}
	if e.matcher, err = ucwa.NewMatcher(ucwa.DefaultOperations()); err != nil {
		return err
	}
	e.outcomes = make(map[string]Outcome, len(e.Outcomes))
	for _, o := range e.Outcomes {
		key, ok := destinationKey(e.cleaner, o.To)
		if !ok {
			return fmt.Errorf("outcome %q: the destination is neither a SIP URI nor a phone number the emulator can normalize (with default_region %q)", o.To, e.DefaultRegion)
		}
		o.Result = Result(strings.ToLower(string(o.Result)))
		e.outcomes[key] = o
	}
	if e.clock == nil {
		e.clock = wallClock{}
	}
	e.store = newStore(e.clock, limits{
		maxApplications: e.MaxApplications,
		maxInvitations:  e.MaxInvitations,
		maxEvents:       e.MaxEvents,
		retainCompleted: time.Duration(e.RetainCompleted),
		applicationIdle: time.Duration(e.ApplicationIdle),
		requirePoll:     !e.EventChannelOptional,
	})
	return nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Validate checks the configuration.
func (e *Emulator) Validate() error {
	if _, err := parseResult(string(e.DefaultOutcome)); err != nil {
		return fmt.Errorf("default_outcome: %w", err)
	}
	for _, o := range e.Outcomes {
		if strings.TrimSpace(o.To) == "" {
			return errors.New("outcome: the destination (to) is required")
		}
		if _, err := parseResult(string(o.Result)); err != nil {
			return err
		}
		if o.StepDuration < 0 {
			return fmt.Errorf("outcome %q: step_duration must not be negative", o.To)
		}
	}
	for name, d := range map[string]caddy.Duration{"step_duration": e.StepDuration, "answer_delay": e.AnswerDelay, "poll_timeout": e.PollTimeout,
		"max_poll_timeout": e.MaxPollTimeout, "retain_completed": e.RetainCompleted, "application_idle": e.ApplicationIdle} {
		if d < 0 {
			return fmt.Errorf("%s must not be negative", name)
		}
	}
	for name, n := range map[string]int{"max_applications": e.MaxApplications, "max_invitations": e.MaxInvitations, "max_events": e.MaxEvents} {
		if n < 0 {
			return fmt.Errorf("%s must not be negative", name)
		}
	}
	if !strings.HasPrefix(e.HealthPath, "/") {
		return fmt.Errorf("health_path %q must start with /", e.HealthPath)
	}
	return nil
}

// Cleanup ends pending polls and scheduled call steps.
func (e *Emulator) Cleanup() error {
	if e.store != nil {
		e.store.close()
	}
	return nil
}

// route is a parsed UCWA request path.
type route struct {
	base  string // …/applications/{app}, as the client wrote it
	appID string
	rest  []string // the segments after the application id
}

// parseRoute splits /ucwa/v1/applications/{app}/… and
// /ucwa/oauth/v1/applications/{app}/…; prefixes match case-insensitively,
// as on IIS.
func parseRoute(p string) (route, bool) {
	segs := strings.Split(strings.Trim(p, "/"), "/")
	var prefix int
	switch {
	case len(segs) >= 4 && strings.EqualFold(segs[0], "ucwa") && strings.EqualFold(segs[1], "v1") && strings.EqualFold(segs[2], "applications"):
		prefix = 3
	case len(segs) >= 5 && strings.EqualFold(segs[0], "ucwa") && strings.EqualFold(segs[1], "oauth") && strings.EqualFold(segs[2], "v1") && strings.EqualFold(segs[3], "applications"):
		prefix = 4
	default:
		return route{}, false
	}
	app := segs[prefix]
	if app == "" || len(app) > maxAppIDLength {
		return route{}, false
	}
	return route{base: "/" + strings.Join(segs[:prefix+1], "/"), appID: app, rest: segs[prefix+1:]}, true
}

// ServeHTTP answers a request to the emulated pool, after answer_delay
// for one that is no GET or HEAD.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if e.AnswerDelay > 0 && r.Method != http.MethodGet && r.Method != http.MethodHead {
		// The body is read before the wait, as far as any request may
		// have one, for net/http notices a client that goes away only
		// once the body is read; a failed read fails the handler's own
		// read as it would have.
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBatchSize+1))
		rest := io.Reader(http.NoBody)
		if err != nil {
			rest = failedRead{err}
		}
		r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), rest))
		if !e.wait(r.Context(), time.Duration(e.AnswerDelay)) {
			return nil
		}
	}
	e.serve(w, r)
	return nil
}

// failedRead is a body whose read failed with err.
type failedRead struct{ err error }

func (f failedRead) Read([]byte) (int, error) { return 0, f.err }

// wait waits d on the emulator's clock; false when ctx ends first.
func (e *Emulator) wait(ctx context.Context, d time.Duration) bool {
	done := make(chan struct{})
	t := e.clock.AfterFunc(d, func() { close(done) })
	select {
	case <-done:
		return true
	case <-ctx.Done():
		t.Stop()
		return false
	}
}

// serve answers a request, alone or a part of a batch.
func (e *Emulator) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-MS-UcwaVersion", UcwaVersion)
	p := path.Clean("/" + r.URL.Path)
	if p == e.HealthPath {
		if !allow(w, r, ucwa.JSON, http.MethodGet, http.MethodHead) {
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "OK\n")
		return
	}
	rt, ok := parseRoute(p)
	accept := ucwa.ErrorFormat(0, r.Header.Get("Accept"))
	switch {
	case !ok: // not a UCWA application path: 404 below
	case len(rt.rest) == 3 && strings.EqualFold(rt.rest[0], "communication") &&
		(strings.EqualFold(rt.rest[1], "invitations") || strings.EqualFold(rt.rest[1], "phoneAudioInvitations")):
		if allow(w, r, accept, http.MethodGet) {
			e.serveInvitation(w, rt, accept)
		}
		return
	case len(rt.rest) == 1 && strings.EqualFold(rt.rest[0], "events"):
		if allow(w, r, accept, http.MethodGet) {
			e.serveEvents(w, r, p, rt, accept)
		}
		return
	default:
		if op := e.matcher.Match(r.Method, r.URL.Path).Operation; op != nil {
			e.serveOperation(w, r, rt, op)
			return
		}
	}
	ucwa.NewError(http.StatusNotFound, "", "The emulator has no resource at this path.").Write(w, accept)
}

// answer is how the emulator answers an operation it serves.
type answer uint8

const (
	notEmulated answer = iota
	// answerCall creates an invitation and plays its call: 201 Created
	// with its Location.
	answerCall
	// answerNoContent answers 204, as a pool answers the requests that
	// change a setting.
	answerNoContent
	// answerResource answers 200 with the resource as cleaned.
	answerResource
	// answerBatch answers every part, in a multipart/batching answer.
	answerBatch
)

// answers are the operations the emulator serves, by rel.
var answers = map[string]answer{
	"startPhoneAudio": answerCall, "startPhoneAudioOnBehalfOfDelegator": answerCall, "addPhoneAudio": answerCall,
	"replaceWithPhoneAudio": answerCall, "continuePhoneAudio": answerCall,
	"acceptWithPhoneAudio": answerNoContent, "makeMeAvailable": answerNoContent, "changeNumber": answerNoContent,
	"immediateForwardToContact": answerNoContent, "simultaneousRingToContact": answerNoContent, "unansweredCallToContact": answerNoContent,
	"communication": answerResource,
	"batch":         answerBatch,
}

// allow answers 405 and reports false unless r uses one of methods.
func allow(w http.ResponseWriter, r *http.Request, f ucwa.Format, methods ...string) bool {
	if slices.Contains(methods, r.Method) {
		return true
	}
	list := strings.Join(methods, ", ")
	w.Header().Set("Allow", list)
	ucwa.NewError(http.StatusMethodNotAllowed, ucwa.SubcodeMethodNotAllowed, "This resource accepts "+list+" only.").Write(w, f)
	return false
}

// serveOperation takes a request to op in as a pool would, through ucwa's
// Intake, and answers it as the pool does.
func (e *Emulator) serveOperation(w http.ResponseWriter, r *http.Request, rt route, op *ucwa.Operation) {
	reqFormat, _ := ucwa.MediaFormat(r.Header.Get("Content-Type"))
	errFormat := ucwa.ErrorFormat(reqFormat, r.Header.Get("Accept"))
	how := answers[op.Rel]
	if how == notEmulated {
		ucwa.NewError(http.StatusNotFound, "", "The emulator does not serve "+op.Rel+".").Write(w, errFormat)
		return
	}
	limit := int64(maxBodySize)
	if how == answerBatch {
		limit = maxBatchSize
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			ucwa.NewError(http.StatusRequestEntityTooLarge, ucwa.SubcodeEntityTooLarge, "The body is too large.").Write(w, errFormat)
		} else {
			ucwa.NewError(http.StatusBadRequest, ucwa.SubcodeDeserializationFailure, "The body could not be read completely.").Write(w, errFormat)
		}
		return
	}
	if how == answerBatch {
		e.serveBatch(w, r, op, body, errFormat)
		return
	}
	cleaned, uerr := e.cleaner.Intake(op, ucwa.Incoming{Method: r.Method, Header: r.Header, RawQuery: r.URL.RawQuery, Body: body})
	if uerr != nil {
		uerr.Write(w, errFormat)
		return
	}
	switch how {
	case answerCall:
		e.placeCall(w, r, rt, cleaned, errFormat)
	case answerNoContent:
		w.WriteHeader(http.StatusNoContent)
	case answerResource:
		writeBody(w, http.StatusOK, reqFormat.ContentType(), cleaned.Body())
	}
}

// placeCall creates the invitation of a call-via-work request and answers
// 201 with its Location.
func (e *Emulator) placeCall(w http.ResponseWriter, r *http.Request, rt route, cleaned *ucwa.Cleaned, errFormat ucwa.Format) {
	get := func(name string) string { v, _ := cleaned.Value(name); return v }
	to := get("to")
	collection := "invitations"
	if strings.EqualFold(path.Base(r.URL.Path), "phoneAudioInvitations") {
		collection = "phoneAudioInvitations"
	}
	location, uerr := e.store.create(newInvitation{
		appID: rt.appID, base: rt.base, collection: collection,
		operationID: get("operationId"), phoneNumber: get("phoneNumber"), to: to,
		subject: get("subject"), importance: get("importance"), thread: get("threadId"),
		steps: e.scriptFor(to),
	})
	if uerr != nil {
		uerr.Write(w, errFormat)
		return
	}
	w.Header().Set("Location", location)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// scriptFor returns the steps of a call to the destination to.
func (e *Emulator) scriptFor(to string) []step {
	result, d := e.DefaultOutcome, time.Duration(e.StepDuration)
	key, _ := destinationKey(e.cleaner, to)
	if o, ok := e.outcomes[key]; ok {
		result = o.Result
		if o.StepDuration > 0 {
			d = time.Duration(o.StepDuration)
		}
	}
	return script(result, d)
}

// serveInvitation answers GET of an invitation.
func (e *Emulator) serveInvitation(w http.ResponseWriter, rt route, f ucwa.Format) {
	inv, ok := e.store.get(rt.appID, rt.rest[2])
	if !ok {
		ucwa.NewError(http.StatusNotFound, "", "The invitation does not exist.").Write(w, f)
		return
	}
	writeBody(w, http.StatusOK, f.ContentType(), marshalInvitation(inv, f))
}

// serveEvents answers an event channel GET. Events are always JSON (the
// emulator has no XML event rendering); errors follow Accept.
func (e *Emulator) serveEvents(w http.ResponseWriter, r *http.Request, eventsPath string, rt route, f ucwa.Format) {
	q := r.URL.Query()
	var ack uint64
	if v := q.Get("ack"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			(&ucwa.Error{Status: http.StatusBadRequest, Subcode: ucwa.SubcodeParameterValidationFailure, Message: "ack must be a whole number.",
				Parameters: []ucwa.Parameter{{Name: "ack", Reason: "must be a whole number"}}}).Write(w, f)
			return
		}
		ack = n
	}
	timeout := time.Duration(e.PollTimeout)
	if v := q.Get("timeout"); v != "" {
		d, ok := parsePollTimeout(v)
		if !ok {
			(&ucwa.Error{Status: http.StatusBadRequest, Subcode: ucwa.SubcodeParameterValidationFailure, Message: "timeout must be a number of seconds.",
				Parameters: []ucwa.Parameter{{Name: "timeout", Reason: "must be a number of seconds"}}}).Write(w, f)
			return
		}
		timeout = min(d, time.Duration(e.MaxPollTimeout))
	}
	events, next, uerr := e.store.poll(r.Context(), rt.appID, ack, timeout)
	if uerr != nil {
		uerr.Write(w, f)
		return
	}
	writeBody(w, http.StatusOK, ucwa.JSON.ContentType(), marshalEvents(eventsPath, ack, next, events))
}

// parsePollTimeout reads a timeout parameter: whole seconds as UCWA
// clients send it, or (an emulator extension for tests) a Go duration
// such as 50ms.
func parsePollTimeout(v string) (time.Duration, bool) {
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second, true
	}
	d, err := time.ParseDuration(v)
	return d, err == nil && d > 0
}

func writeBody(w http.ResponseWriter, status int, contentType string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Emulator)(nil)
	_ caddy.Validator             = (*Emulator)(nil)
	_ caddy.CleanerUpper          = (*Emulator)(nil)
	_ caddyhttp.MiddlewareHandler = (*Emulator)(nil)
)
