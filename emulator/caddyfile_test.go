package emulator

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestCaddyfileAdapt: the golden files in testdata/caddyfile_adapt, each
// a Caddyfile and the JSON Caddy's adapter makes of it.
func TestCaddyfileAdapt(t *testing.T) {
	testkit.AdaptGolden(t, "testdata/caddyfile_adapt")
}

// TestUnmarshalCaddyfileErrors: syntax errors, found while the Caddyfile
// is read.
func TestUnmarshalCaddyfileErrors(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"argument", "ucwa_pool_emulator x", "wrong argument count"},
		{"unknown", "ucwa_pool_emulator {\n nope\n}", `unrecognized subdirective "nope"`},
		{"outcome arguments", "ucwa_pool_emulator {\n outcome sip:a@b.c\n}", "wrong argument count"},
		{"outcome step", "ucwa_pool_emulator {\n outcome sip:a@b.c answer soon\n}", `outcome sip:a@b.c: "soon" is not a duration`},
		{"outcome step 0", "ucwa_pool_emulator {\n outcome sip:a@b.c answer 0\n}", `"0" is not a duration other than 0`},
		{"duration", "ucwa_pool_emulator {\n step_duration soon\n}", `step_duration: "soon" is not a duration`},
		{"duration 0", "ucwa_pool_emulator {\n poll_timeout 0s\n}", `poll_timeout: "0s" is not a duration other than 0`},
		{"count", "ucwa_pool_emulator {\n max_events many\n}", `max_events: "many" is not a whole number`},
		{"count 0", "ucwa_pool_emulator {\n max_events 0\n}", "other than 0"},
		{"event_channel", "ucwa_pool_emulator {\n event_channel maybe\n}", "neither required nor optional"},
		{"given twice", "ucwa_pool_emulator {\n step_duration 1s\n step_duration 2s\n}", "step_duration: given twice"},
		{"default_outcome given twice", "ucwa_pool_emulator {\n default_outcome answer\n default_outcome decline\n}", "default_outcome: given twice"},
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

// TestOutcomeRepeatable: outcome is the one repeatable subdirective; its
// values accumulate.
func TestOutcomeRepeatable(t *testing.T) {
	var e Emulator
	if err := e.UnmarshalCaddyfile(caddyfile.NewTestDispenser("ucwa_pool_emulator {\n outcome sip:a@b.c decline\n outcome sip:d@e.f no_answer 2s\n}")); err != nil {
		t.Fatal(err)
	}
	if len(e.Outcomes) != 2 || e.Outcomes[1].To != "sip:d@e.f" || e.Outcomes[1].Result != NoAnswer {
		t.Fatalf("outcomes %+v", e.Outcomes)
	}
}

// TestProvisionAndValidateErrors: values are judged at startup, with the
// same message whether they came from a Caddyfile or from JSON.
func TestProvisionAndValidateErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		caddyfile string // the block's lines
		json      string
		want      string
	}{
		{"destination", "outcome john answer", `{"outcomes":[{"to":"john","result":"answer"}]}`, "neither a SIP URI nor a phone number"},
		{"national number without a region", `outcome "(425) 555-0100" answer`, `{"outcomes":[{"to":"(425) 555-0100","result":"answer"}]}`, "neither a SIP URI nor a phone number"},
		{"result", "outcome sip:a@b.c hangup", `{"outcomes":[{"to":"sip:a@b.c","result":"hangup"}]}`, `outcome "hangup" is none of answer, decline, no_answer`},
		{"default outcome", "default_outcome maybe", `{"default_outcome":"maybe"}`, `default_outcome: outcome "maybe" is none of answer`},
		{"health path", "health_path health", `{"health_path":"health"}`, `health_path "health" must start with /`},
		{"region", "default_region XX", `{"default_region":"XX"}`, `default_region: default region "XX" is not a region`},
		{"negative duration", "step_duration -1s", `{"step_duration":"-1s"}`, "step_duration must not be negative"},
		{"negative count", "max_events -1", `{"max_events":-1}`, "max_events must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fromCaddyfile, fromJSON Emulator
			if err := fromCaddyfile.UnmarshalCaddyfile(caddyfile.NewTestDispenser("ucwa_pool_emulator {\n" + tc.caddyfile + "\n}")); err != nil {
				t.Fatalf("the Caddyfile refused a value it should leave to startup: %v", err)
			}
			if err := json.Unmarshal([]byte(tc.json), &fromJSON); err != nil {
				t.Fatal(err)
			}
			for source, e := range map[string]*Emulator{"Caddyfile": &fromCaddyfile, "JSON": &fromJSON} {
				err := e.Provision(caddy.Context{})
				if err == nil {
					err = e.Validate()
				}
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s: error = %v, want one saying %q", source, err, tc.want)
				}
				_ = e.Cleanup()
			}
		})
	}
}
