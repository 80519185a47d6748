package caddymodule

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ucwa-edge/caddy-ucwa/internal/directive"
	"github.com/ucwa-edge/caddy-ucwa/internal/metrics"
	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// destinations is the provisioned destination policy.
type destinations struct {
	policy *ucwa.Policy
	// counts[verdict][rule] is caddy_ucwa_destinations_total of that
	// pair; nil for a pair the policy never gives.
	counts [4][ucwa.RuleInvalid + 1]prometheus.Counter
}

// provisionDestinations compiles the destination policy and registers
// its metric. The emergency numbers and outside-line prefixes of the
// policy go to the number reader (see newCleaner), not here.
func (h *Handler) provisionDestinations(ctx caddy.Context) error {
	c := h.Destinations
	if c == nil {
		return nil
	}
	policy, err := ucwa.NewPolicy(*c)
	if err != nil {
		return fmt.Errorf("destinations: %w", err)
	}
	if policy.EmergencyNumbersOnly() && h.DefaultRegion == "" && len(c.Emergency) == 0 {
		// Without either, no number is an emergency number: the setting
		// then makes every startEmergencyCall a call like any other,
		// which is rarely what the one who set it meant.
		h.logger.Warn("emergency_calls emergency_numbers without default_region or an emergency list: no number is an emergency number, " +
			"so every startEmergencyCall is judged and limited as any call; set default_region, or list the site's emergency numbers in emergency")
	}
	vec, err := metrics.Register(registerer(ctx), prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "ucwa", Name: "destinations_total",
		Help: "Destinations of guarded UCWA requests judged by the destination policy, by decision (allowed, refused, would_refuse) and the rule that made it.",
	}, []string{"decision", "rule"}))
	if err != nil {
		return err
	}
	d := &destinations{policy: policy}
	// The series of every decision this policy can give, made once, so
	// that they show from the start and judging costs no label lookup: a
	// rule that refuses only reports (would_refuse) what report mode, or
	// the emergency call under emergency_calls any, reaches.
	for rule := ucwa.RuleEmergency; rule <= ucwa.RuleInvalid; rule++ {
		verdicts := []ucwa.Verdict{ucwa.VerdictRefused, ucwa.VerdictWouldRefuse}
		switch rule {
		case ucwa.RuleEmergency, ucwa.RuleNotDialled, ucwa.RuleAllow, ucwa.RuleDefault:
			verdicts = []ucwa.Verdict{ucwa.VerdictAllowed}
		default:
			if policy.Report() {
				verdicts = verdicts[1:]
			} else if !policy.LetsRefusalsThrough() {
				verdicts = verdicts[:1]
			}
		}
		for _, verdict := range verdicts {
			d.counts[verdict][rule] = vec.WithLabelValues(verdict.String(), rule.String())
		}
	}
	h.destinations = d
	return nil
}

// emergencyCallsUnsetWarning is logged at startup by a handler whose
// destination policy refuses destinations or whose limits count calls,
// and which leaves emergency_calls unset: its default lets a token ring
// any number with startEmergencyCall, which an administrator who wrote
// the policy rarely means. Setting it, either way, is the answer.
const emergencyCallsUnsetWarning = "emergency_calls not set: every startEmergencyCall passes the destination rules and the limits, whatever it dials (the default, any), " +
	"so a token can ring a number the policy refuses with it; set emergency_calls emergency_numbers in destinations where the site's emergency numbers are all known, " +
	"or emergency_calls any to keep this and silence the warning (with limits and no policy, in destinations { mode report ... }, which refuses nothing)"

// warnEmergencyCallsUnset logs emergencyCallsUnsetWarning where it
// applies: a policy in enforce mode or a limit, and emergency_calls
// unset.
func (h *Handler) warnEmergencyCallsUnset() {
	if h.Destinations != nil && h.Destinations.EmergencyCalls != "" {
		return
	}
	if h.destinations != nil && !h.destinations.policy.Report() || len(h.Limits) > 0 {
		h.logger.Warn(emergencyCallsUnsetWarning)
	}
}

// emergencyNumbers is the emergency list of the number reader: the
// policy's, or nil for the default region's.
func (h *Handler) emergencyNumbers() []string {
	if h.Destinations == nil {
		return nil
	}
	return h.Destinations.EmergencyNumbers()
}

// outsideLine is the outside-line prefixes of the number reader: the
// policy's, none without a policy (no rule judges dial strings then).
func (h *Handler) outsideLine() []string {
	if h.Destinations == nil {
		return nil
	}
	return h.Destinations.OutsideLine
}

// judge judges every destination of a cleaned request (a batch's part
// part, 0 for a request alone) by the destination policy, counts each
// decision, and returns the refusal of the first it refuses. In report
// mode it refuses none, and logs each it would refuse. It records the
// request's decision, and each destination's, in in for the audit
// trail. It allocates nothing while every destination is allowed.
func (h *Handler) judge(in *intake, cl *ucwa.Cleaned, part int) *ucwa.Error {
	d := h.destinations
	if d == nil {
		return nil
	}
	var refusal *ucwa.Error
	dests := cl.Destinations()
	for i := range dests {
		dest := &dests[i]
		dec := d.policy.Judge(cl.Operation, dest)
		if in.audit != nil {
			in.audit.keepDecision(dest, dec)
		}
		if c := d.counts[dec.Verdict&3][min(dec.Rule, ucwa.RuleInvalid)]; c != nil {
			c.Inc()
		}
		if dec.Verdict == ucwa.VerdictAllowed {
			if in.policy.Verdict == ucwa.VerdictNone {
				in.policy = dec
			}
			continue
		}
		if in.policy.Verdict != ucwa.VerdictRefused && in.policy.Verdict != ucwa.VerdictWouldRefuse {
			in.policy = dec
		}
		if dec.Verdict == ucwa.VerdictWouldRefuse {
			h.logWouldRefuse(in.r, cl.Operation, dest, dec, part)
			continue
		}
		if refusal == nil {
			refusal = ucwa.RefusalError(dest, dec)
			in.refusedBy = refusedByRule[min(dec.Rule, ucwa.RuleInvalid)]
		}
	}
	return refusal
}

// count counts each destination of a cleaned request by its decision,
// as judge does, without logging or refusing: for the parts of a batch
// after the one the policy refused (see countRefusedBatchPart).
func (d *destinations) count(cl *ucwa.Cleaned) {
	dests := cl.Destinations()
	for i := range dests {
		dec := d.policy.Judge(cl.Operation, &dests[i])
		if c := d.counts[dec.Verdict&3][min(dec.Rule, ucwa.RuleInvalid)]; c != nil {
			c.Inc()
		}
	}
}

// refusedByRule names the destination policy and a rule as what refused
// a request, in the audit trail: "destinations:deny".
var refusedByRule = func() (names [ucwa.RuleInvalid + 1]string) {
	for r := range names {
		names[r] = "destinations:" + ucwa.Rule(r).String()
	}
	return names
}()

// logWouldRefuse logs, at info level, a destination that report mode
// lets pass and enforce mode would refuse: masked, with its property and
// the rule. It is written when the destination is judged, before the
// request's outcome is known (a later batch part may fail, a limit or
// idempotency may answer), so it says only that the policy does not
// refuse it: whether it was delivered is the audit line's to tell.
func (h *Handler) logWouldRefuse(r *http.Request, op *ucwa.Operation, d *ucwa.PropertyDestination, dec ucwa.Decision, part int) {
	c := h.logger.Check(zap.InfoLevel, "destination policy would refuse this destination (report mode): not refused by the policy")
	if h.destinations.policy.EmergencyOperation(op) {
		// A client that uses the emergency call to reach anything else is
		// one to look at, in any mode.
		c = h.logger.Check(zap.WarnLevel, "destination policy would refuse this destination of an emergency call: not refused by the policy, as no emergency call is")
	}
	if c == nil {
		return
	}
	fields := []zap.Field{zap.String("operation", op.Rel), zap.String("property", d.Property),
		zap.String("rule", dec.Rule.String()), zap.String("destination", dec.Masked(&d.Destination)),
		zap.String("remote_ip", remoteIP(r))}
	if part > 0 {
		fields = append(fields, zap.Int("part", part))
	}
	c.Write(fields...)
}

// unmarshalDestinations parses the destinations block; d is on
// `destinations`. A bare `destinations` is the default policy.
func unmarshalDestinations(d *caddyfile.Dispenser) (*ucwa.DestinationPolicy, error) {
	if d.NextArg() {
		return nil, directive.ArgCount(d, "destinations", "no argument, then a block of options (mode report)")
	}
	c := new(ucwa.DestinationPolicy)
	err := directive.Block(d, d.Nesting(), "destinations", nil, func(option string) error {
		var err error
		switch option {
		case "mode":
			err = directive.Word(d, &c.Mode, ucwa.PolicyEnforce, ucwa.PolicyReport)
		case "allow_regions":
			c.AllowRegions, err = directive.Args(d)
		case "deny_regions":
			c.DenyRegions, err = directive.Args(d)
		case "deny_types":
			c.DenyTypes, err = directive.Args(d)
			for i, name := range c.DenyTypes {
				if t, typeErr := ucwa.ParseNumberType(name); typeErr == nil {
					c.DenyTypes[i] = t.String()
				} else {
					c.DenyTypes[i] = ucwa.Word(name, "none")
				}
			}
		case "allow":
			c.Allow, err = directive.Args(d)
		case "deny":
			c.Deny, err = directive.Args(d)
		case "sip_domains":
			c.SIPDomains, err = directive.Args(d)
		case "emergency":
			c.Emergency, err = directive.Args(d)
		case "outside_line":
			c.OutsideLine, err = directive.Args(d)
		case "emergency_calls":
			err = directive.Word(d, &c.EmergencyCalls, ucwa.EmergencyCallsAny, ucwa.EmergencyCallsNumbers)
		case "premium_short_codes":
			err = directive.Word(d, &c.PremiumShortCodes, ucwa.PremiumShortCodesRefuse, ucwa.PremiumShortCodesAllow)
		case "max_extension_digits":
			var arg string
			if err = directive.OneArg(d, &arg); err != nil {
				return err
			}
			n, convErr := strconv.Atoi(arg)
			if convErr != nil {
				return d.Errf("destinations: max_extension_digits: %q is not a whole number", arg)
			}
			c.MaxExtensionDigits = &n
		default:
			return unrecognized(d, "destinations", "option", option)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}
