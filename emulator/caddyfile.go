package emulator

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/ucwa-edge/caddy-ucwa/internal/directive"
)

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	e := new(Emulator)
	err := e.UnmarshalCaddyfile(h.Dispenser)
	return e, err
}

// UnmarshalCaddyfile sets up the emulator from Caddyfile tokens. Syntax:
//
//	ucwa_pool_emulator {
//		step_duration <duration>
//		answer_delay <duration>
//		default_outcome answer|decline|no_answer
//		outcome <to> answer|decline|no_answer [<step_duration>]
//		event_channel required|optional
//		default_region <region>
//		health_path <path>
//		poll_timeout <duration>
//		max_poll_timeout <duration>
//		max_applications <n>
//		max_invitations <n>
//		max_events <n>
//		retain_completed <duration>
//		application_idle <duration>
//	}
//
// A subdirective given twice is an error ("<name>: given twice"), except
// outcome, which is repeatable: one destination each.
//
// The Caddyfile is read for its syntax only: argument counts, and that
// durations and numbers parse. Their values are judged at startup
// (Provision and Validate), where a Caddyfile and the same config in JSON
// get the same message. A 0 that JSON would read as "the default" is
// refused here.
func (e *Emulator) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive's name
	if d.NextArg() {
		return d.ArgErr()
	}
	return directive.Block(d, 0, "", []string{"outcome"}, func(name string) error {
		switch name {
		case "step_duration":
			return directive.NonZeroDuration(d, &e.StepDuration, "500ms or 2s")
		case "answer_delay":
			return directive.NonZeroDuration(d, &e.AnswerDelay, "500ms or 2s")
		case "poll_timeout":
			return directive.NonZeroDuration(d, &e.PollTimeout, "500ms or 2s")
		case "max_poll_timeout":
			return directive.NonZeroDuration(d, &e.MaxPollTimeout, "500ms or 2s")
		case "retain_completed":
			return directive.NonZeroDuration(d, &e.RetainCompleted, "500ms or 2s")
		case "application_idle":
			return directive.NonZeroDuration(d, &e.ApplicationIdle, "500ms or 2s")
		case "default_outcome":
			var arg string
			err := directive.OneArg(d, &arg)
			e.DefaultOutcome = Result(arg)
			return err
		case "outcome":
			return e.unmarshalOutcome(d)
		case "event_channel":
			var arg string
			if err := directive.OneArg(d, &arg); err != nil {
				return err
			}
			switch arg {
			case "required":
				e.EventChannelOptional = false
			case "optional":
				e.EventChannelOptional = true
			default:
				return d.Errf("event_channel: %q is neither required nor optional", arg)
			}
			return nil
		case "default_region":
			return directive.OneArg(d, &e.DefaultRegion)
		case "health_path":
			return directive.OneArg(d, &e.HealthPath)
		case "max_applications":
			return countArg(d, &e.MaxApplications)
		case "max_invitations":
			return countArg(d, &e.MaxInvitations)
		case "max_events":
			return countArg(d, &e.MaxEvents)
		}
		return d.Errf("unrecognized subdirective %q", name)
	})
}

func (e *Emulator) unmarshalOutcome(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) != 2 && len(args) != 3 {
		return d.ArgErr()
	}
	o := Outcome{To: args[0], Result: Result(args[1])}
	if len(args) == 3 {
		step, err := caddy.ParseDuration(args[2])
		if err != nil || step == 0 {
			return d.Errf("outcome %s: %q is not a duration other than 0 (such as 500ms or 2s)", args[0], args[2])
		}
		o.StepDuration = caddy.Duration(step)
	}
	e.Outcomes = append(e.Outcomes, o)
	return nil
}

// countArg reads the one whole-number argument of a subdirective.
func countArg(d *caddyfile.Dispenser, into *int) error {
	name := d.Val()
	var arg string
	if err := directive.OneArg(d, &arg); err != nil {
		return err
	}
	n, err := strconv.Atoi(arg)
	if err != nil || n == 0 {
		return d.Errf("%s: %q is not a whole number other than 0", name, arg)
	}
	*into = n
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Emulator)(nil)
