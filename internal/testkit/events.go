package testkit

import (
	"encoding/json"
	"net/http"
	"testing"
)

// EventsPage is a UCWA event channel answer as a client reads it.
type EventsPage struct {
	Links  map[string]struct{ Href string } `json:"_links"`
	Sender []struct {
		Rel    string
		Href   string
		Events []struct {
			Link   struct{ Rel, Href string }
			Type   string
			Status string
			Reason *struct{ Code, Subcode, Message string }
			// _embedded.phoneAudioInvitation
			Embedded map[string]struct {
				State       string
				OperationID string `json:"operationId"`
			} `json:"_embedded"`
		}
	}
}

// Event is one event about an invitation, as tests compare it.
type Event struct {
	Href, Type, State, Status, Reason string
}

// Events are the page's events, in order.
func (p EventsPage) Events() []Event {
	var out []Event
	for _, s := range p.Sender {
		for _, e := range s.Events {
			ev := Event{Href: e.Link.Href, Type: e.Type, State: e.Embedded["phoneAudioInvitation"].State, Status: e.Status}
			if e.Reason != nil {
				ev.Reason = e.Reason.Code + "/" + e.Reason.Subcode
			}
			out = append(out, ev)
		}
	}
	return out
}

// ParseEvents reads an event channel answer, which must be a 200 with
// self and next links.
func ParseEvents(t testing.TB, r Response) EventsPage {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("event channel: %d %s", r.Status, r.Body)
	}
	var p EventsPage
	if err := json.Unmarshal([]byte(r.Body), &p); err != nil {
		t.Fatalf("event channel body %q: %v", r.Body, err)
	}
	if p.Links["self"].Href == "" || p.Links["next"].Href == "" {
		t.Fatalf("event channel body without self and next links: %s", r.Body)
	}
	return p
}

// FollowEvents follows an application's event channel at origin (an
// emulated pool, or an edge in front of one), from its path (…/events)
// and then the next links, as a UCWA client does, until an event about
// invitation completes, and returns the events about it.
func FollowEvents(t testing.TB, client *http.Client, origin, eventsPath, invitation string) []Event {
	t.Helper()
	var got []Event
	next := eventsPath + "?ack=0"
	for range 100 {
		p := ParseEvents(t, Send(t, client, Request{URL: origin + next + "&timeout=5"}))
		for _, e := range p.Events() {
			if e.Href != invitation {
				continue
			}
			got = append(got, e)
			if e.Type == "completed" {
				return got
			}
		}
		next = p.Links["next"].Href
	}
	t.Fatalf("no completed event for %s; saw %+v", invitation, got)
	return nil
}
