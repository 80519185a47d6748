package emulator

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

const testStep = 10 * time.Second

func testLimits() limits {
	return limits{maxApplications: 10, maxInvitations: 10, maxEvents: 50,
		retainCompleted: time.Minute, applicationIdle: time.Hour, requirePoll: false}
}

func newTestStore(t *testing.T, l limits) (*store, *testkit.Clock) {
	t.Helper()
	c := testkit.NewClock(time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC))
	s := newStore(c, l)
	t.Cleanup(s.close)
	return s, c
}

func call(app, operationID string, r Result) newInvitation {
	return newInvitation{appID: app, base: "/ucwa/v1/applications/" + app, collection: "invitations",
		operationID: operationID, to: "sip:john@contoso.com", steps: script(r, testStep)}
}

type pollResult struct {
	events []event
	last   uint64
	err    *ucwa.Error
}

// startPoll runs a poll in its own goroutine and waits until it waits.
func startPoll(t *testing.T, s *store, c *testkit.Clock, app string, ack uint64, timeout time.Duration) <-chan pollResult {
	t.Helper()
	before := c.Pending()
	out := make(chan pollResult, 1)
	go func() {
		events, last, err := s.poll(context.Background(), app, ack, timeout)
		out <- pollResult{events, last, err}
	}()
	c.WaitPending(t, before+1) // the poll waits
	return out
}

func notYet(t *testing.T, res <-chan pollResult) {
	t.Helper()
	select {
	case r := <-res:
		t.Fatalf("the poll ended early: %+v", r)
	default:
	}
}

// summary is what a test compares an event by.
type summary struct{ typ, state, status, code, subcode string }

func summarize(events []event) []summary {
	var out []summary
	for _, e := range events {
		s := summary{typ: e.typ, state: e.inv.State, status: e.status}
		if e.reason != nil {
			s.code, s.subcode = e.reason.Code, e.reason.Subcode
		}
		out = append(out, s)
	}
	return out
}

func TestScriptedOutcomes(t *testing.T) {
	for _, tc := range []struct {
		result Result
		// stateAfterStep is the invitation's state one step after it started.
		stateAfterStep string
		want           []summary
	}{
		{Answer, stateAlerting, []summary{
			{"started", stateConnecting, "", "", ""},
			{"updated", stateAlerting, "", "", ""},
			{"updated", stateConnected, "", "", ""},
			{"completed", stateConnected, "Success", "", ""},
		}},
		{Decline, stateAlerting, []summary{
			{"started", stateConnecting, "", "", ""},
			{"updated", stateAlerting, "", "", ""},
			{"completed", stateFailed, "Failure", "RemoteFailure", "Declined"},
		}},
		{NoAnswer, stateConnecting, []summary{
			{"started", stateConnecting, "", "", ""},
			{"completed", stateFailed, "Failure", "LocalFailure", "PstnCallFailed"},
		}},
	} {
		t.Run(string(tc.result), func(t *testing.T) {
			s, c := newTestStore(t, testLimits())
			self, uerr := s.create(call("app", "op", tc.result))
			if uerr != nil {
				t.Fatal(uerr)
			}
			id := self[len("/ucwa/v1/applications/app/communication/invitations/"):]
			c.Advance(testStep - time.Nanosecond)
			if inv, _ := s.get("app", id); inv.State != stateConnecting {
				t.Fatalf("state before the first step = %q", inv.State)
			}
			c.Advance(time.Nanosecond)
			if inv, _ := s.get("app", id); inv.State != tc.stateAfterStep {
				t.Fatalf("state after the first step = %q, want %q", inv.State, tc.stateAfterStep)
			}
			c.Advance(10 * testStep)
			events, last, uerr := s.poll(context.Background(), "app", 0, time.Minute)
			if uerr != nil {
				t.Fatal(uerr)
			}
			got := summarize(events)
			if len(got) != len(tc.want) {
				t.Fatalf("events = %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("event %d = %+v, want %+v", i, got[i], tc.want[i])
				}
				if events[i].inv.Self != self || events[i].inv.OperationID != "op" || events[i].sender != "/ucwa/v1/applications/app/communication" {
					t.Errorf("event %d is about %+v from %q", i, events[i].inv, events[i].sender)
				}
			}
			if last != events[len(events)-1].seq {
				t.Errorf("last = %d, want the last event's seq %d", last, events[len(events)-1].seq)
			}
		})
	}
}

func TestLongPollEndsAtItsTimeout(t *testing.T) {
	s, c := newTestStore(t, testLimits())
	res := startPoll(t, s, c, "app", 0, 30*time.Second)
	c.Advance(30*time.Second - time.Nanosecond)
	notYet(t, res)
	c.Advance(time.Nanosecond)
	r := <-res
	if r.err != nil || len(r.events) != 0 || r.last != 0 {
		t.Fatalf("poll = %+v, want no events and last 0", r)
	}
}

func TestLongPollWakesOnEvent(t *testing.T) {
	l := testLimits()
	l.requirePoll = true
	s, c := newTestStore(t, l)
	res := startPoll(t, s, c, "app", 0, time.Minute)
	notYet(t, res)
	if _, uerr := s.create(call("app", "op", Answer)); uerr != nil {
		t.Fatal(uerr)
	}
	r := <-res
	if r.err != nil || len(r.events) != 1 || r.events[0].typ != "started" {
		t.Fatalf("poll = %+v, want the started event", r)
	}
	// Acknowledged events are not sent again; the next ones are.
	res = startPoll(t, s, c, "app", r.last, time.Minute)
	c.Advance(testStep)
	if r := <-res; r.err != nil || len(r.events) != 1 || r.events[0].typ != "updated" {
		t.Fatalf("second poll = %+v, want one updated event", r)
	}
}

func TestNewerPollReplacesPendingOne(t *testing.T) {
	s, c := newTestStore(t, testLimits())
	first := startPoll(t, s, c, "app", 0, time.Minute)
	second := make(chan pollResult, 1)
	go func() {
		events, last, err := s.poll(context.Background(), "app", 0, time.Minute)
		second <- pollResult{events, last, err}
	}()
	r := <-first
	if r.err == nil || r.err.Status != http.StatusConflict || r.err.Subcode != "PGetReplaced" {
		t.Fatalf("first poll = %+v, want 409 PGetReplaced", r)
	}
	// The first poll's timer is stopped; the second's is the one pending.
	c.WaitPending(t, 1) // the second poll waits
	notYet(t, second)
	if _, uerr := s.create(call("app", "", Answer)); uerr != nil {
		t.Fatal(uerr)
	}
	if r := <-second; r.err != nil || len(r.events) != 1 {
		t.Fatalf("second poll = %+v, want the started event", r)
	}
}

func TestCreateErrors(t *testing.T) {
	t.Run("CallbackChannelError", func(t *testing.T) {
		l := testLimits()
		l.requirePoll = true
		s, _ := newTestStore(t, l)
		_, uerr := s.create(call("app", "op", Answer))
		if uerr == nil || uerr.Status != http.StatusInternalServerError || uerr.Subcode != ucwa.SubcodeCallbackChannelError {
			t.Fatalf("create = %v, want 500 CallbackChannelError", uerr)
		}
	})
	t.Run("AlreadyExists while live, accepted once completed", func(t *testing.T) {
		s, c := newTestStore(t, testLimits())
		if _, uerr := s.create(call("app", "op", Decline)); uerr != nil {
			t.Fatal(uerr)
		}
		_, uerr := s.create(call("app", "op", Decline))
		if uerr == nil || uerr.Status != http.StatusConflict || uerr.Subcode != ucwa.SubcodeAlreadyExists {
			t.Fatalf("repeat = %v, want 409 AlreadyExists", uerr)
		}
		if _, uerr := s.create(call("other-app", "op", Decline)); uerr != nil {
			t.Fatalf("same operationId in another application = %v", uerr)
		}
		c.Advance(2 * testStep)
		if _, uerr := s.create(call("app", "op", Decline)); uerr != nil {
			t.Fatalf("after completion = %v", uerr)
		}
	})
}

func TestStateIsBounded(t *testing.T) {
	t.Run("applications", func(t *testing.T) {
		l := testLimits()
		l.maxApplications = 2
		s, _ := newTestStore(t, l)
		for _, app := range []string{"a", "b"} {
			if _, uerr := s.create(call(app, "", Answer)); uerr != nil {
				t.Fatal(uerr)
			}
		}
		if _, uerr := s.create(call("c", "", Answer)); uerr == nil || uerr.Status != http.StatusServiceUnavailable {
			t.Fatalf("third application = %v, want 503", uerr)
		}
	})
	t.Run("invitations, freed after retain_completed", func(t *testing.T) {
		l := testLimits()
		l.maxInvitations = 2
		s, c := newTestStore(t, l)
		first, _ := s.create(call("app", "", NoAnswer))
		s.create(call("app", "", NoAnswer))
		if _, uerr := s.create(call("app", "", NoAnswer)); uerr == nil || uerr.Status != http.StatusServiceUnavailable {
			t.Fatalf("third invitation = %v, want 503", uerr)
		}
		c.Advance(2 * testStep) // both complete
		c.Advance(l.retainCompleted - time.Nanosecond)
		if _, ok := s.get("app", first[len(first)-1:]); !ok {
			t.Fatal("a completed invitation was forgotten before retain_completed")
		}
		c.Advance(time.Nanosecond)
		if _, uerr := s.create(call("app", "", NoAnswer)); uerr != nil {
			t.Fatalf("after retain_completed = %v", uerr)
		}
		if _, ok := s.get("app", first[len(first)-1:]); ok {
			t.Fatal("a completed invitation outlived retain_completed")
		}
	})
	t.Run("events", func(t *testing.T) {
		l := testLimits()
		l.maxEvents = 3
		s, c := newTestStore(t, l)
		s.create(call("app", "", Answer))
		c.Advance(2 * testStep) // 4 events: the oldest is dropped
		events, _, _ := s.poll(context.Background(), "app", 0, time.Minute)
		if got := summarize(events); len(got) != 3 || got[0].typ != "updated" || got[2].typ != "completed" {
			t.Fatalf("events = %+v, want the newest 3", got)
		}
	})
	t.Run("idle applications", func(t *testing.T) {
		s, c := newTestStore(t, testLimits())
		res := startPoll(t, s, c, "app", 0, time.Second)
		c.Advance(time.Second)
		<-res
		c.Advance(time.Hour)
		s.get("app", "1") // any request sweeps
		s.mu.Lock()
		n := len(s.apps)
		s.mu.Unlock()
		if n != 0 {
			t.Fatalf("%d applications remembered after application_idle", n)
		}
	})
}

func TestCloseEndsPollsAndSteps(t *testing.T) {
	s, c := newTestStore(t, testLimits())
	s.create(call("other", "", Answer))
	res := startPoll(t, s, c, "app", 0, time.Minute)
	s.close()
	if r := <-res; r.err != nil || len(r.events) != 0 {
		t.Fatalf("poll after close = %+v", r)
	}
	if n := c.Pending(); n != 0 {
		t.Fatalf("%d timers still pending after close", n)
	}
}
