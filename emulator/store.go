package emulator

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// limits bound the state the emulator keeps.
type limits struct {
	maxApplications int
	maxInvitations  int
	maxEvents       int
	retainCompleted time.Duration
	applicationIdle time.Duration
	// requirePoll: an application must have polled its event channel
	// before it may start a call.
	requirePoll bool
}

// sweepInterval is how often, at most, expired state is swept away.
const sweepInterval = time.Second

// maxEventsPerResponse bounds one event channel answer.
const maxEventsPerResponse = 100

// store is the emulated pool's state: applications, their invitations
// and their event channels. One mutex guards it all: the emulator is a
// test peer, not a hot path.
type store struct {
	clock  Clock
	limits limits
	// done is closed by close: pending polls end and scheduled steps do
	// nothing.
	done chan struct{}

	mu          sync.Mutex
	apps        map[string]*application
	invitations int // in all applications
	nextID      uint64
	lastSweep   time.Time
	closed      bool
}

// application is one UCWA application (one client) on the pool.
type application struct {
	id       string
	polled   bool
	lastSeen time.Time
	// invitations by id; live ones also by operationId.
	invitations map[string]*invitation
	live        map[string]*invitation
	// events not yet acknowledged, ascending by seq.
	events  []event
	lastSeq uint64
	// changed is closed (and replaced) whenever events are added.
	changed chan struct{}
	// poll is the pending event channel GET, if any.
	poll *pendingPoll
}

type pendingPoll struct {
	replaced chan struct{}
}

// invitation is one phoneAudioInvitation.
type invitation struct {
	id   string
	self string // its path
	// base is the application's path (…/applications/{app}), which the
	// event sender's href is built from.
	base                                                      string
	state                                                     string
	operationID, phoneNumber, to, subject, importance, thread string
	completedAt                                               time.Time // zero while live
	timer                                                     Timer
}

// snapshot is an invitation as a client sees it at one moment.
type snapshot struct {
	Self        string
	State       string
	OperationID string
	PhoneNumber string
	To          string
	Subject     string
	Importance  string
	ThreadID    string
}

func (inv *invitation) snapshot() snapshot {
	return snapshot{Self: inv.self, State: inv.state, OperationID: inv.operationID, PhoneNumber: inv.phoneNumber,
		To: inv.to, Subject: inv.subject, Importance: inv.importance, ThreadID: inv.thread}
}

// event is one event of an application's event channel.
type event struct {
	seq    uint64
	typ    string // started, updated, completed
	sender string // href of the sender (…/communication)
	inv    snapshot
	status string  // completed only: Success or Failure
	reason *reason // completed with Failure only
}

func newStore(clock Clock, l limits) *store {
	return &store{clock: clock, limits: l, done: make(chan struct{}), apps: make(map[string]*application)}
}

// close ends pending polls and stops every scheduled step.
func (s *store) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	close(s.done)
	for _, app := range s.apps {
		for _, inv := range app.invitations {
			if inv.timer != nil {
				inv.timer.Stop()
			}
		}
	}
}

var errTooManyApplications = ucwa.NewError(http.StatusServiceUnavailable, "", "The emulator holds as many applications as it is configured to.")

// application returns the application with this id, creating it when
// create is set. Called with s.mu held.
func (s *store) application(id string, create bool) (*application, *ucwa.Error) {
	if app, ok := s.apps[id]; ok {
		return app, nil
	}
	if !create {
		return nil, nil
	}
	if len(s.apps) >= s.limits.maxApplications {
		s.sweep(s.clock.Now(), true)
	}
	if len(s.apps) >= s.limits.maxApplications {
		return nil, errTooManyApplications
	}
	app := &application{id: id, invitations: make(map[string]*invitation), live: make(map[string]*invitation), changed: make(chan struct{})}
	s.apps[id] = app
	return app, nil
}

// sweep forgets completed invitations past their retention and idle
// applications, at most once per sweepInterval unless forced (when a
// limit is reached). Called with s.mu held.
func (s *store) sweep(now time.Time, force bool) {
	if !force && now.Sub(s.lastSweep) < sweepInterval {
		return
	}
	s.lastSweep = now
	for id, app := range s.apps {
		for invID, inv := range app.invitations {
			if !inv.completedAt.IsZero() && now.Sub(inv.completedAt) >= s.limits.retainCompleted {
				delete(app.invitations, invID)
				s.invitations--
			}
		}
		if app.poll == nil && len(app.invitations) == 0 && now.Sub(app.lastSeen) >= s.limits.applicationIdle {
			delete(s.apps, id)
		}
	}
}

// newInvitation is what a startPhoneAudio request asks for.
type newInvitation struct {
	appID string
	// base is the application's path; collection is the path segment the
	// invitation's own path uses (invitations or phoneAudioInvitations).
	base, collection                                          string
	operationID, phoneNumber, to, subject, importance, thread string
	steps                                                     []step
}

// create starts an invitation and its scripted progress, and returns its
// path.
func (s *store) create(n newInvitation) (string, *ucwa.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.sweep(now, false)
	app, uerr := s.application(n.appID, !s.limits.requirePoll)
	if uerr != nil {
		return "", uerr
	}
	if app == nil || (s.limits.requirePoll && !app.polled) {
		return "", ucwa.NewError(http.StatusInternalServerError, ucwa.SubcodeCallbackChannelError, "The remote event channel is not reachable.")
	}
	app.lastSeen = now
	if n.operationID != "" && app.live[n.operationID] != nil {
		return "", ucwa.NewError(http.StatusConflict, ucwa.SubcodeAlreadyExists, "An invitation with this operationId is already in progress.")
	}
	if s.invitations >= s.limits.maxInvitations {
		s.sweep(now, true)
	}
	if s.invitations >= s.limits.maxInvitations {
		return "", ucwa.NewError(http.StatusServiceUnavailable, "", "The emulator holds as many invitations as it is configured to.")
	}
	s.nextID++
	id := strconv.FormatUint(s.nextID, 10)
	inv := &invitation{id: id, self: n.base + "/communication/" + n.collection + "/" + id, base: n.base, state: stateConnecting,
		operationID: n.operationID, phoneNumber: n.phoneNumber, to: n.to, subject: n.subject, importance: n.importance, thread: n.thread}
	app.invitations[id] = inv
	if inv.operationID != "" {
		app.live[inv.operationID] = inv
	}
	s.invitations++
	s.emit(app, inv, "started", "", nil)
	s.schedule(app, inv, n.steps)
	return inv.self, nil
}

// schedule runs the first of steps after its delay, and the rest after it.
// Called with s.mu held.
func (s *store) schedule(app *application, inv *invitation, steps []step) {
	if len(steps) == 0 {
		return
	}
	st := steps[0]
	inv.timer = s.clock.AfterFunc(st.after, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed {
			return
		}
		inv.state = st.state
		if st.updated {
			s.emit(app, inv, "updated", "", nil)
		}
		if st.completed != "" {
			inv.completedAt = s.clock.Now()
			inv.timer = nil
			if app.live[inv.operationID] == inv {
				delete(app.live, inv.operationID)
			}
			s.emit(app, inv, "completed", st.completed, st.reason)
			return
		}
		s.schedule(app, inv, steps[1:])
	})
}

// emit appends an event to the application's channel and wakes its poll.
// The oldest events are dropped beyond maxEvents. Called with s.mu held.
func (s *store) emit(app *application, inv *invitation, typ, status string, r *reason) {
	app.lastSeq++
	app.events = append(app.events, event{seq: app.lastSeq, typ: typ, sender: inv.base + "/communication",
		inv: inv.snapshot(), status: status, reason: r})
	if extra := len(app.events) - s.limits.maxEvents; extra > 0 {
		app.events = append(app.events[:0], app.events[extra:]...)
	}
	close(app.changed)
	app.changed = make(chan struct{})
}

// get returns a snapshot of an invitation.
func (s *store) get(appID, id string) (snapshot, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(s.clock.Now(), false)
	if app := s.apps[appID]; app != nil {
		if inv := app.invitations[id]; inv != nil {
			return inv.snapshot(), true
		}
	}
	return snapshot{}, false
}

var errPGetReplaced = ucwa.NewError(http.StatusConflict, "PGetReplaced", "The pending GET was replaced by a newer one from the application.")

// poll is an event channel GET: it returns the events after ack at once
// when there are any, or waits for some until timeout passes, the client
// goes away, a newer poll replaces it (409 PGetReplaced) or the emulator
// stops. last is the seq of the last event returned (ack when none).
func (s *store) poll(ctx context.Context, appID string, ack uint64, timeout time.Duration) (events []event, last uint64, uerr *ucwa.Error) {
	s.mu.Lock()
	now := s.clock.Now()
	s.sweep(now, false)
	app, uerr := s.application(appID, true)
	if uerr != nil {
		s.mu.Unlock()
		return nil, ack, uerr
	}
	app.polled = true
	app.lastSeen = now
	app.acknowledge(ack)
	if app.poll != nil {
		close(app.poll.replaced)
		app.poll = nil
	}
	if events, last = app.after(ack); len(events) > 0 {
		s.mu.Unlock()
		return events, last, nil
	}
	p := &pendingPoll{replaced: make(chan struct{})}
	app.poll = p
	changed := app.changed
	s.mu.Unlock()

	timedOut := make(chan struct{})
	timer := s.clock.AfterFunc(timeout, func() { close(timedOut) })
	defer timer.Stop()
	for {
		select {
		case <-p.replaced:
			return nil, ack, errPGetReplaced
		case <-changed:
		case <-timedOut:
		case <-ctx.Done():
		case <-s.done:
		}
		s.mu.Lock()
		select {
		case <-p.replaced: // replaced while it was waking up
			s.mu.Unlock()
			return nil, ack, errPGetReplaced
		default:
		}
		events, last = app.after(ack)
		if len(events) > 0 || isDone(timedOut) || ctx.Err() != nil || isDone(s.done) {
			app.poll = nil
			app.lastSeen = s.clock.Now()
			s.mu.Unlock()
			return events, last, nil
		}
		changed = app.changed
		s.mu.Unlock()
	}
}

func isDone(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// acknowledge drops the events the client has received (seq <= ack).
func (app *application) acknowledge(ack uint64) {
	i := 0
	for i < len(app.events) && app.events[i].seq <= ack {
		i++
	}
	if i > 0 {
		app.events = append(app.events[:0], app.events[i:]...)
	}
}

// after copies up to maxEventsPerResponse events after ack, and returns
// the seq of the last one (ack when there are none).
func (app *application) after(ack uint64) ([]event, uint64) {
	var out []event
	last := ack
	for _, e := range app.events {
		if e.seq <= ack {
			continue
		}
		out = append(out, e)
		last = e.seq
		if len(out) == maxEventsPerResponse {
			break
		}
	}
	return out, last
}
