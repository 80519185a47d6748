package emulator

import (
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// Result is what happens to an emulated call-via-work call.
type Result string

const (
	// Answer: the caller's phone and then the callee answer; the
	// invitation goes Connecting, Alerting, Connected and completes with
	// status Success.
	Answer Result = "answer"
	// Decline: the caller answers, the callee declines; the invitation
	// goes Connecting, Alerting and completes with status Failure, reason
	// RemoteFailure/Declined.
	Decline Result = "decline"
	// NoAnswer: the caller's own phone is never answered; the invitation
	// stays Connecting and completes with status Failure, reason
	// LocalFailure/PstnCallFailed.
	NoAnswer Result = "no_answer"
)

func parseResult(s string) (Result, error) {
	switch r := Result(strings.ToLower(s)); r {
	case Answer, Decline, NoAnswer:
		return r, nil
	}
	return "", fmt.Errorf("outcome %q is none of answer, decline, no_answer", s)
}

// Invitation states the emulator uses (a subset of UCWA's).
const (
	stateConnecting = "Connecting"
	stateAlerting   = "Alerting"
	stateConnected  = "Connected"
	stateFailed     = "Failed"
)

// reason is the UCWA reason of a failed invitation, sent with its
// completed event.
type reason struct {
	Code    string `json:"code"`
	Subcode string `json:"subcode,omitempty"`
	Message string `json:"message,omitempty"`
}

var (
	reasonDeclined = &reason{Code: "RemoteFailure", Subcode: "Declined", Message: "The outgoing invitation was declined."}
	reasonNoAnswer = &reason{Code: "LocalFailure", Subcode: "PstnCallFailed", Message: "For an outgoing call scenario, the first stage, PSTN call establishment, failed."}
)

// step is one scripted change of an invitation, after the previous one.
type step struct {
	after time.Duration
	state string
	// updated: announce the new state with an updated event.
	updated bool
	// completed: end the invitation with a completed event of this status
	// ("Success" or "Failure") and reason (nil on success).
	completed string
	reason    *reason
}

// script returns the steps of a call with the given result, d apart. The
// started event (state Connecting) is sent when the invitation is created.
func script(r Result, d time.Duration) []step {
	switch r {
	case Decline:
		return []step{
			{after: d, state: stateAlerting, updated: true},
			{after: d, state: stateFailed, completed: "Failure", reason: reasonDeclined},
		}
	case NoAnswer:
		return []step{
			{after: 2 * d, state: stateFailed, completed: "Failure", reason: reasonNoAnswer},
		}
	}
	return []step{
		{after: d, state: stateAlerting, updated: true},
		{after: d, state: stateConnected, updated: true, completed: "Success"},
	}
}

// Outcome scripts the calls to one destination.
type Outcome struct {
	// The destination ("to") this outcome applies to: a SIP URI
	// (sip:john@contoso.com, matched case-insensitively) or a phone number
	// in any form the emulator can normalize (tel:+14255551234,
	// +1 425 555 1234, ...). Required.
	To string `json:"to"`

	// What happens: "answer", "decline" or "no_answer". Required.
	Result Result `json:"result"`

	// Time between the call's steps for this destination. Default: the
	// emulator's step_duration.
	StepDuration caddy.Duration `json:"step_duration,omitempty"`
}

// destinationKey is the form destinations are matched in: the E.164 tel:
// URI of a phone number, or the lower-cased SIP URI (white space around
// its scheme's colon removed). ok is false for anything else.
func destinationKey(c *ucwa.Cleaner, to string) (string, bool) {
	if n, p := c.Numbers().Number(to); p.OK() {
		return n.Forwarded(), true
	}
	scheme, rest, found := strings.Cut(strings.ToLower(strings.TrimSpace(to)), ":")
	scheme = strings.TrimSpace(scheme)
	if !found || (scheme != "sip" && scheme != "sips") || !strings.Contains(rest, "@") {
		return "", false
	}
	return scheme + ":" + strings.TrimSpace(rest), true
}
