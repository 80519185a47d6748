package emulator

import (
	"encoding/json"
	"encoding/xml"
	"strconv"

	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// direction: every invitation the emulator creates is an outgoing call.
const direction = "Outgoing"

type link struct {
	Href string `json:"href"`
}

// invitationJSON is a phoneAudioInvitation resource in JSON, as the UCWA
// reference shows it (without the links the emulator does not serve).
type invitationJSON struct {
	Rel         string          `json:"rel"`
	Direction   string          `json:"direction"`
	Importance  string          `json:"importance,omitempty"`
	OperationID string          `json:"operationId,omitempty"`
	PhoneNumber string          `json:"phoneNumber,omitempty"`
	State       string          `json:"state"`
	Subject     string          `json:"subject,omitempty"`
	ThreadID    string          `json:"threadId,omitempty"`
	To          string          `json:"to,omitempty"`
	Links       map[string]link `json:"_links"`
}

func (s snapshot) json() invitationJSON {
	return invitationJSON{Rel: "phoneAudioInvitation", Direction: direction, Importance: s.Importance,
		OperationID: s.OperationID, PhoneNumber: s.PhoneNumber, State: s.State, Subject: s.Subject,
		ThreadID: s.ThreadID, To: s.To, Links: map[string]link{"self": {Href: s.Self}}}
}

type xmlProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:",chardata"`
}

// invitationXML is a phoneAudioInvitation resource in XML: UCWA writes a
// resource's self link as the href of its <resource> element.
type invitationXML struct {
	XMLName    xml.Name      `xml:"resource"`
	Rel        string        `xml:"rel,attr"`
	Href       string        `xml:"href,attr"`
	Xmlns      string        `xml:"xmlns,attr"`
	Properties []xmlProperty `xml:"property"`
}

func (s snapshot) xml() invitationXML {
	x := invitationXML{Rel: "phoneAudioInvitation", Href: s.Self, Xmlns: ucwa.Namespace}
	for _, p := range []xmlProperty{
		{"direction", direction}, {"importance", s.Importance}, {"operationId", s.OperationID},
		{"phoneNumber", s.PhoneNumber}, {"state", s.State}, {"subject", s.Subject},
		{"threadId", s.ThreadID}, {"to", s.To},
	} {
		if p.Value != "" {
			x.Properties = append(x.Properties, p)
		}
	}
	return x
}

// marshalInvitation renders an invitation resource.
func marshalInvitation(s snapshot, f ucwa.Format) []byte {
	if f == ucwa.XML {
		b, _ := xml.Marshal(s.xml()) // cannot fail: strings only
		return append([]byte(xml.Header), b...)
	}
	b, _ := json.Marshal(s.json()) // cannot fail: strings only
	return b
}

// The event channel answer, in the UCWA shape:
//
//	{"_links": {"self": {"href": "…/events?ack=1"}, "next": {"href": "…/events?ack=3"}},
//	 "sender": [{"rel": "communication", "href": "…/communication",
//	   "events": [{"link": {"rel": "phoneAudioInvitation", "href": "…"}, "type": "started",
//	               "_embedded": {"phoneAudioInvitation": {…}}}, …]}]}
type eventsJSON struct {
	Links  map[string]link `json:"_links"`
	Sender []senderJSON    `json:"sender"`
}

type senderJSON struct {
	Rel    string      `json:"rel"`
	Href   string      `json:"href"`
	Events []eventJSON `json:"events"`
}

type relLink struct {
	Rel  string `json:"rel"`
	Href string `json:"href"`
}

type eventJSON struct {
	Link     relLink                   `json:"link"`
	Type     string                    `json:"type"`
	Status   string                    `json:"status,omitempty"`
	Reason   *reason                   `json:"reason,omitempty"`
	Embedded map[string]invitationJSON `json:"_embedded,omitempty"`
}

// marshalEvents renders one event channel answer. eventsPath is the
// channel's path; ack the request's, next the ack of the next poll.
func marshalEvents(eventsPath string, ack, next uint64, events []event) []byte {
	out := eventsJSON{
		Links: map[string]link{
			"self": {Href: eventsPath + "?ack=" + strconv.FormatUint(ack, 10)},
			"next": {Href: eventsPath + "?ack=" + strconv.FormatUint(next, 10)},
		},
		Sender: []senderJSON{},
	}
	for _, e := range events {
		// Every event embeds the invitation as it was then, so that a
		// client can correlate by operationId without another GET.
		ej := eventJSON{Link: relLink{Rel: "phoneAudioInvitation", Href: e.inv.Self}, Type: e.typ, Status: e.status,
			Reason: e.reason, Embedded: map[string]invitationJSON{"phoneAudioInvitation": e.inv.json()}}
		// Consecutive events of one sender share its entry, as on a pool.
		if n := len(out.Sender); n > 0 && out.Sender[n-1].Href == e.sender {
			out.Sender[n-1].Events = append(out.Sender[n-1].Events, ej)
			continue
		}
		out.Sender = append(out.Sender, senderJSON{Rel: "communication", Href: e.sender, Events: []eventJSON{ej}})
	}
	b, _ := json.Marshal(out) // cannot fail: strings only
	return b
}
