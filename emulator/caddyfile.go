package emulator

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
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
// outcome may be repeated, one destination each.
func (e *Emulator) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive's name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		name := d.Val()
		switch name {
		case "step_duration":
			if err := durationArg(d, &e.StepDuration); err != nil {
				return err
			}
		case "poll_timeout":
			if err := durationArg(d, &e.PollTimeout); err != nil {
				return err
			}
		case "max_poll_timeout":
			if err := durationArg(d, &e.MaxPollTimeout); err != nil {
				return err
			}
		case "retain_completed":
			if err := durationArg(d, &e.RetainCompleted); err != nil {
				return err
			}
		case "application_idle":
			if err := durationArg(d, &e.ApplicationIdle); err != nil {
				return err
			}
		case "default_outcome":
			var arg string
			if !d.Args(&arg) || d.NextArg() {
				return d.ArgErr()
			}
			r, err := parseResult(arg)
			if err != nil {
				return d.Err(err.Error())
			}
			e.DefaultOutcome = r
		case "outcome":
			args := d.RemainingArgs()
			if len(args) != 2 && len(args) != 3 {
				return d.ArgErr()
			}
			r, err := parseResult(args[1])
			if err != nil {
				return d.Err(err.Error())
			}
			o := Outcome{To: args[0], Result: r}
			if len(args) == 3 {
				step, err := caddy.ParseDuration(args[2])
				if err != nil || step <= 0 {
					return d.Errf("outcome %s: %q is not a positive duration", args[0], args[2])
				}
				o.StepDuration = caddy.Duration(step)
			}
			e.Outcomes = append(e.Outcomes, o)
		case "event_channel":
			var arg string
			if !d.Args(&arg) || d.NextArg() {
				return d.ArgErr()
			}
			switch arg {
			case "required":
				e.EventChannelOptional = false
			case "optional":
				e.EventChannelOptional = true
			default:
				return d.Errf("event_channel: %q is neither required nor optional", arg)
			}
		case "default_region":
			if !d.Args(&e.DefaultRegion) || d.NextArg() {
				return d.ArgErr()
			}
		case "health_path":
			if !d.Args(&e.HealthPath) || d.NextArg() {
				return d.ArgErr()
			}
		case "max_applications":
			if err := countArg(d, &e.MaxApplications); err != nil {
				return err
			}
		case "max_invitations":
			if err := countArg(d, &e.MaxInvitations); err != nil {
				return err
			}
		case "max_events":
			if err := countArg(d, &e.MaxEvents); err != nil {
				return err
			}
		default:
			return d.Errf("unrecognized subdirective %q", name)
		}
	}
	return nil
}

// durationArg reads the one positive duration argument of a subdirective.
func durationArg(d *caddyfile.Dispenser, into *caddy.Duration) error {
	name := d.Val()
	var arg string
	if !d.Args(&arg) || d.NextArg() {
		return d.ArgErr()
	}
	v, err := caddy.ParseDuration(arg)
	if err != nil || v <= 0 {
		return d.Errf("%s: %q is not a positive duration (such as 500ms or 2s)", name, arg)
	}
	*into = caddy.Duration(v)
	return nil
}

// countArg reads the one positive whole-number argument of a subdirective.
func countArg(d *caddyfile.Dispenser, into *int) error {
	name := d.Val()
	var arg string
	if !d.Args(&arg) || d.NextArg() {
		return d.ArgErr()
	}
	n, err := strconv.Atoi(arg)
	if err != nil || n <= 0 {
		return d.Errf("%s: %q is not a positive whole number", name, arg)
	}
	*into = n
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Emulator)(nil)
