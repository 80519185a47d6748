package emulator

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	var e Emulator
	err := e.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`ucwa_pool_emulator {
		step_duration 250ms
		default_outcome no_answer
		outcome sip:busy@contoso.com decline
		outcome +14255550100 answer 2s
		event_channel optional
		default_region US
		health_path /healthz
		poll_timeout 30s
		max_poll_timeout 60s
		max_applications 5
		max_invitations 6
		max_events 7
		retain_completed 1m
		application_idle 2m
	}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Emulator{
		StepDuration:   caddy.Duration(250 * time.Millisecond),
		DefaultOutcome: NoAnswer,
		Outcomes: []Outcome{
			{To: "sip:busy@contoso.com", Result: Decline},
			{To: "+14255550100", Result: Answer, StepDuration: caddy.Duration(2 * time.Second)},
		},
		EventChannelOptional: true, DefaultRegion: "US", HealthPath: "/healthz",
		PollTimeout: caddy.Duration(30 * time.Second), MaxPollTimeout: caddy.Duration(time.Minute),
		MaxApplications: 5, MaxInvitations: 6, MaxEvents: 7,
		RetainCompleted: caddy.Duration(time.Minute), ApplicationIdle: caddy.Duration(2 * time.Minute),
	}
	if !reflect.DeepEqual(e, want) {
		t.Fatalf("got  %+v\nwant %+v", e, want)
	}
}

func TestUnmarshalCaddyfileErrors(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"argument", "ucwa_pool_emulator x", "wrong argument count"},
		{"unknown", "ucwa_pool_emulator {\n nope\n}", `unrecognized subdirective "nope"`},
		{"outcome result", "ucwa_pool_emulator {\n outcome sip:a@b.c hangup\n}", "none of answer, decline, no_answer"},
		{"outcome arguments", "ucwa_pool_emulator {\n outcome sip:a@b.c\n}", "wrong argument count"},
		{"outcome step", "ucwa_pool_emulator {\n outcome sip:a@b.c answer soon\n}", "not a positive duration"},
		{"duration", "ucwa_pool_emulator {\n step_duration -1s\n}", "not a positive duration"},
		{"count", "ucwa_pool_emulator {\n max_events 0\n}", "not a positive whole number"},
		{"event_channel", "ucwa_pool_emulator {\n event_channel maybe\n}", "neither required nor optional"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e Emulator
			err := e.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one saying %q", err, tc.want)
			}
		})
	}
}

func TestProvisionAndValidateErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		e    Emulator
		want string
	}{
		{"destination", Emulator{Outcomes: []Outcome{{To: "john", Result: Answer}}}, "neither a SIP URI nor a phone number"},
		{"national number without a region", Emulator{Outcomes: []Outcome{{To: "(425) 555-0100", Result: Answer}}}, "neither a SIP URI nor a phone number"},
		{"result", Emulator{Outcomes: []Outcome{{To: "sip:a@b.c", Result: "maybe"}}}, "none of answer"},
		{"default outcome", Emulator{DefaultOutcome: "maybe"}, "default_outcome"},
		{"health path", Emulator{HealthPath: "health"}, "must start with /"},
		{"region", Emulator{DefaultRegion: "XX"}, "region"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.e.Provision(caddy.Context{})
			if err == nil {
				err = tc.e.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one saying %q", err, tc.want)
			}
		})
	}
}
