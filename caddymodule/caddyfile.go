package caddymodule

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"github.com/dustin/go-humanize"

	"github.com/ucwa-edge/caddy-ucwa/internal/bearer"
	"github.com/ucwa-edge/caddy-ucwa/internal/directive"
	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	handler := new(Handler)
	err := handler.UnmarshalCaddyfile(h.Dispenser)
	return handler, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	ucwa {
//		paths <suffix...>
//		operation <rel> {
//			paths <suffix...>
//			scopes <scope...>
//		}
//		max_body_size <size>
//		max_batch_parts <n>
//		max_batch_operations <n>
//		default_region <region>
//		number_format tel|e164
//		phone_audio enabled|disabled
//		jwt off
//		jwt {
//			algorithms <alg...>
//			jwks_file <path>
//			jwks_url <url> [<refresh>]
//			public_key_file <path...>
//			hmac_secret <secret>
//			issuer <iss...>
//			audience <aud...>
//			leeway <duration>
//			cache_size <tokens>
//		}
//		scopes <scope...>
//		deny_callers {
//			sub <value...>
//			oid <value...>
//			tid <value...>
//			client_id <value...>
//			iss <value...>
//		}
//		web_tickets reject|forward
//		challenge <name> <value>
//		primary <upstreams...> {
//			# any reverse_proxy subdirective (lb_policy, lb_try_duration,
//			# health_uri, health_interval, fail_duration, header_up,
//			# transport http { tls ... }, ...) except handle_response,
//			# replace_status, lb_retry_match, request_buffers, rewrite
//			# and method
//		}
//		backup <upstreams...> {
//			# the same as primary
//		}
//		expect_continue_after_idle <duration>
//		store memory [<max_entries>] {
//			on_error closed|open
//			max_entries_per_caller <n>
//		}
//		store redis <redis[s]://[user:password@]host:port/db> {
//			timeout <duration>
//			on_error closed|open
//			password <password>
//			key_prefix <prefix>
//			max_entries_per_caller <n>
//			tls {
//				ca <file>
//				server_name <name>
//				insecure_skip_verify
//			}
//			sentinel <master> [<addr...>]
//			cluster [<addr...>]
//		}
//		idempotency [<window>]
//		limit <name> <count> per <duration> [key <placeholder>] [international|forwarding]
//		audit_on_error open|closed
//		destinations {
//			mode enforce|report
//			allow_regions <region...>
//			deny_regions <region...>
//			deny_types <type...>
//			allow <e164-prefix...>
//			deny <e164-prefix...>
//			sip_domains <domain...>
//			emergency <number...>
//			emergency_calls any|emergency_numbers
//			max_extension_digits <n>
//			premium_short_codes refuse|allow
//			outside_line <digits...>
//		}
//	}
//
// A JSON field's name that the Caddyfile spells otherwise (issuers,
// max_entries, disable_phone_audio, ...) is refused with the Caddyfile's
// spelling (jsonSpellings), and a subdirective or option written in
// another block than its own with the block it belongs in
// (optionPlaces).
//
// Option words (tel|e164, enforce|report, ...) are read in any letter
// case, in JSON alike, and written into the adapted JSON in lower case.
//
// A subdirective given twice is an error ("<name>: given twice"), except
// the repeatable ones, whose values accumulate: operation (one block per
// operation), challenge (one parameter each, each name once in any
// letter case), limit (one
// velocity limit each, in order), in the jwt block public_key_file, and
// in the deny_callers block each claim's line.
//
// paths adds spellings to startPhoneAudio's; `operation <rel>` adds
// spellings to any operation of the table and replaces its scopes.
// scopes, when given, replaces the scopes of every operation, and an
// operation's own scopes replace them again for that one.
//
// The Caddyfile is read for its syntax only: argument counts, and that
// sizes, durations and numbers parse. Their values are judged at startup
// (Provision and Validate), where a Caddyfile and the same config in JSON
// get the same message. A 0 that JSON would read as "the default" is
// refused here: max_body_size 0, max_batch_parts 0, max_batch_operations
// 0, a jwks_url refresh of 0, cache_size 0; and so is an empty value
// ("") of an option of one value (key_prefix "", jwks_file "",
// default_region ""), of jwks_url, a limit's key and a sentinel master,
// which JSON reads as not given.
//
// jwt is required: either `jwt off` (no token checks at all) or a block;
// algorithms and every field are documented on Handler and bearer.Config,
// the JSON they become. leeway is 1m unless given; `leeway 0`, which
// allows no clock skew, is kept as an explicit 0. Placeholders such as
// {env.UCWA_AUDIENCE} in jwt's values and in challenge values are
// replaced at startup; an unset variable stops startup, naming it.
//
// deny_callers names callers whose verified tokens are refused 403
// Forbidden for every guarded operation (CallerDenyList), by the exact
// value of a claim (a GUID in any letter case): sub, oid, tid, client_id
// (appid, azp or client_id) or iss; {env.*} in its values is replaced at
// startup, as in jwt's; an empty value, or one with white space around
// or within it (a plain space only inside a sub or client_id), or one
// that begins or ends with a quotation mark, is refused at startup, as
// is deny_callers with jwt off. A block without lines bars nobody.
//
// primary and backup take reverse_proxy's own arguments and block, parsed
// by reverse_proxy's Caddyfile parser, but for a matcher (ucwa takes
// one), the subdirectives the syntax leaves out and response matchers
// (@name), which only handle_response and replace_status use. Without
// primary, accepted requests go to the next handler.
//
// store chooses the edge's shared state (MemoryStore, the default, or
// RedisStore); idempotency turns on "never twice" across retries and
// edges (IdempotencyConfig), with a window of 10m unless given, at least
// 1s (refused here too, with the message of startup: 10ms is a typo for
// 10m), and with a Redis store at least 10 times its timeout (judged at
// startup). The redis url, password and tls ca and server_name may be
// placeholders such as {env.UCWA_REDIS_PASSWORD}, read at startup; 0 is
// refused for max_entries, max_entries_per_caller, timeout and the
// window.
//
// destinations turns the destination policy on (ucwa.DestinationPolicy):
// a bare `destinations`, or a block without options, is the default
// policy (enforced; premium_rate, shared_cost, personal_number and uan
// numbers refused). Each option is given once, with one or more values;
// the mode, regions, types, prefixes, domains, emergency numbers,
// outside-line prefixes, emergency_calls, premium_short_codes and the
// range of max_extension_digits (0 to 20) are judged at startup.
// outside_line names the prefixes the site's gateways take for an
// outside line (9, or 0), default none: a SIP user of digits that starts
// with one is judged also as the digits after it, and a tel: URI, a
// bare number or a telephone SIP user that is exactly one and an
// emergency short code (tel:9911) is an emergency number, forwarded as
// written. premium_short_codes
// allow leaves phonenumbers' premium-rate short codes out of the rules
// (default refuse), for a site whose extensions the data takes for
// such codes. emergency_calls emergency_numbers makes startEmergencyCall
// an emergency call, never refused nor limited, only when it dials an
// emergency number, and judges and limits it as any call otherwise
// (default any: always one).
//
// limit adds a velocity limit (LimitConfig): at most <count> requests
// that dial, store or forward to a phone number per <duration>, for each
// verified caller unless key gives another placeholder (such as
// {http.ucwa.tid}); international counts only requests with a number
// outside default_region, forwarding only those that set a forwarding
// target. Its name, count, duration and the placeholders of its key
// (the edge's own, http.ucwa.*, and any known one in another letter
// case) are judged at startup.
//
// audit_on_error closed answers guarded requests but emergency calls 503
// while the audit trail fails to be written (default open: they are
// delivered; see Handler.AuditOnError).
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive's name
	if d.NextArg() {
		return directive.ArgCount(d, "ucwa", "no argument but a matcher, then its block")
	}
	return directive.Block(d, 0, "", []string{"operation", "challenge", "limit"}, func(name string) error {
		switch name {
		case "paths":
			var err error
			h.Paths, err = directive.Args(d)
			return err
		case "operation":
			return h.unmarshalOperation(d)
		case "max_body_size":
			return h.unmarshalMaxBodySize(d)
		case "max_batch_parts":
			return unmarshalCount(d, name, errMaxBatchParts, &h.MaxBatchParts)
		case "max_batch_operations":
			return unmarshalCount(d, name, errMaxBatchOperations, &h.MaxBatchOperations)
		case "default_region":
			return directive.OneArg(d, &h.DefaultRegion)
		case "number_format":
			return directive.Word(d, &h.NumberFormat, "tel", "e164")
		case "phone_audio":
			var arg string
			if err := directive.OneArg(d, &arg); err != nil {
				return err
			}
			switch ucwa.Word(arg, "enabled", "disabled") {
			case "enabled":
				h.DisablePhoneAudio = false
			case "disabled":
				h.DisablePhoneAudio = true
			default:
				return d.Err(ucwa.WordError("phone_audio", arg, "enabled", "disabled").Error())
			}
			return nil
		case "jwt":
			var err error
			h.JWT, err = unmarshalJWT(d)
			return err
		case "scopes":
			var err error
			h.Scopes, err = directive.Args(d)
			return err
		case "deny_callers":
			var err error
			h.DenyCallers, err = unmarshalDenyCallers(d)
			return err
		case "web_tickets":
			return directive.Word(d, &h.WebTickets, webTicketsReject, webTicketsForward)
		case "challenge":
			return h.unmarshalChallenge(d)
		case "primary":
			var err error
			h.Primary, err = unmarshalPool(d)
			return err
		case "backup":
			var err error
			h.Backup, err = unmarshalPool(d)
			return err
		case "expect_continue_after_idle":
			h.ExpectContinueAfterIdle = new(caddy.Duration)
			return directive.Duration(d, h.ExpectContinueAfterIdle, "1s")
		case "store":
			var err error
			h.StoreRaw, err = unmarshalStore(d)
			return err
		case "idempotency":
			var err error
			h.Idempotency, err = unmarshalIdempotency(d)
			return err
		case "destinations":
			var err error
			h.Destinations, err = unmarshalDestinations(d)
			return err
		case "audit_on_error":
			return directive.Word(d, &h.AuditOnError, auditOnErrorOpen, auditOnErrorClosed)
		case "limit":
			l, err := unmarshalLimit(d)
			if err != nil {
				return err
			}
			h.Limits = append(h.Limits, l)
			return nil
		}
		return unrecognized(d, "", "subdirective", name)
	})
}

// jsonSpellings are the JSON fields whose Caddyfile spelling differs,
// by the block (as unrecognized names it) an operator would write them
// in: the godoc of the JSON, to which the README points for every
// field and its default, names them so.
var jsonSpellings = map[string]map[string]string{
	"": {
		"disable_phone_audio": "phone_audio disabled",
		"operations":          "operation <rel> { ... }",
		"limits":              "limit <name> <count> per <duration>",
	},
	"jwt": {
		"off":              "jwt off",
		"issuers":          "issuer <iss...>",
		"audiences":        "audience <aud...>",
		"public_key_files": "public_key_file <path...>",
		"jwks_refresh":     "jwks_url <url> <refresh>",
	},
	"store memory": {"max_entries": "store memory <max_entries> { ... }"},
	"store redis": {
		"url":             "store redis <url> { ... }",
		"sentinel_master": "sentinel <master> [<addr...>]",
		"addrs":           "sentinel <master> [<addr...>] or cluster [<addr...>]",
	},
}

// unrecognized is the error of a name that the block where (empty: the
// ucwa block itself) does not know, a subdirective or an option (kind),
// giving the Caddyfile's spelling when name is a JSON field's.
func unrecognized(d *caddyfile.Dispenser, where, kind, name string) error {
	msg := fmt.Sprintf("unrecognized %s %q", kind, name)
	if where != "" {
		msg = where + ": " + msg
	}
	if spelling, ok := jsonSpellings[where][name]; ok {
		msg += fmt.Sprintf(" (a JSON field's name: the Caddyfile writes `%s`)", spelling)
	} else if place, ok := optionPlaces[name]; ok {
		msg += " (it belongs in " + place + ")"
	}
	return d.Err(msg)
}

// ucwaBlockPlace is where optionPlaces puts the ucwa block's own
// subdirectives.
const ucwaBlockPlace = "the ucwa block itself"

// optionPlaces names, for each subdirective and option of the syntax,
// the block it belongs in, for the message of one written in another
// block (allow_regions beside destinations rather than in it,
// default_region in it), where it is unrecognized. A name of two blocks
// is placed in the first added. deny_callers' claims are left out: one
// written in the jwt block (iss for issuer) is no claim to bar, and
// the hint would turn an issuer to accept into one to refuse.
var optionPlaces = func() map[string]string {
	places := make(map[string]string)
	add := func(place string, names ...string) {
		for _, name := range names {
			if _, ok := places[name]; !ok {
				places[name] = place
			}
		}
	}
	add(ucwaBlockPlace, "paths", "operation", "max_body_size", "max_batch_parts",
		"max_batch_operations", "default_region", "number_format", "phone_audio", "jwt", "scopes",
		"deny_callers", "web_tickets", "challenge", "primary", "backup", "expect_continue_after_idle",
		"store", "idempotency", "limit", "audit_on_error", "destinations")
	add("the jwt block", "algorithms", "jwks_file", "jwks_url", "public_key_file", "hmac_secret",
		"issuer", "audience", "leeway", "cache_size")
	add("the block of a store", "on_error", "max_entries_per_caller")
	add("the block of store redis", "timeout", "password", "key_prefix", "tls", "sentinel", "cluster")
	add("the tls block of store redis", "ca", "server_name", "insecure_skip_verify")
	add("the destinations block", "mode", "allow_regions", "deny_regions", "deny_types", "allow",
		"deny", "sip_domains", "emergency", "emergency_calls", "max_extension_digits",
		"premium_short_codes", "outside_line")
	return places
}()

// unmarshalCount reads the whole number of the subdirective name into
// n; 0, which JSON reads as the default, is refused with zero.
func unmarshalCount(d *caddyfile.Dispenser, name string, zero error, n *int) error {
	var arg string
	if err := directive.OneArg(d, &arg); err != nil {
		return err
	}
	v, err := strconv.Atoi(arg)
	if err != nil {
		return d.Errf("%s: %q is not a whole number", name, arg)
	}
	if v == 0 {
		return d.Err(zero.Error())
	}
	*n = v
	return nil
}

func (h *Handler) unmarshalMaxBodySize(d *caddyfile.Dispenser) error {
	var arg string
	if err := directive.OneArg(d, &arg); err != nil {
		return err
	}
	size, err := humanize.ParseBytes(arg)
	if err != nil || size > 1<<62 {
		return d.Errf("max_body_size: %q is not a size (such as 64KiB)", arg)
	}
	if size == 0 {
		return d.Err(errMaxBodySize.Error())
	}
	h.MaxBodySize = int64(size)
	return nil
}

// unmarshalOperation parses `operation <rel> { paths ...; scopes ... }`;
// d is on `operation`. Whether rel is an operation, and the values, are
// judged at startup.
func (h *Handler) unmarshalOperation(d *caddyfile.Dispenser) error {
	var rel string
	if !d.Args(&rel) || d.NextArg() {
		return d.Err("operation: expected `operation <rel> { paths <suffix...> scopes <scope...> }`")
	}
	if _, dup := h.Operations[rel]; dup {
		return d.Errf("operation: %q given twice", rel)
	}
	oc := new(OperationConfig)
	where := "operation " + rel
	err := directive.Block(d, d.Nesting(), where, nil, func(option string) error {
		var err error
		switch option {
		case "paths":
			oc.Paths, err = directive.Args(d)
		case "scopes":
			oc.Scopes, err = directive.Args(d)
		default:
			return d.Errf("%s: unrecognized option %q", where, option)
		}
		return err
	})
	if err != nil {
		return err
	}
	if h.Operations == nil {
		h.Operations = make(map[string]*OperationConfig)
	}
	h.Operations[rel] = oc
	return nil
}

func (h *Handler) unmarshalChallenge(d *caddyfile.Dispenser) error {
	var name, value string
	if !d.Args(&name, &value) || d.NextArg() {
		return d.Err("challenge: expected `challenge <name> <value>`")
	}
	if err := directive.NoBlock(d, "challenge"); err != nil {
		return err
	}
	if _, dup := h.Challenge[name]; dup {
		return d.Errf("challenge: %q given twice", name)
	}
	if h.Challenge == nil {
		h.Challenge = make(map[string]string)
	}
	h.Challenge[name] = value
	return nil
}

// unmarshalJWT parses `jwt off` or the jwt block; d is on `jwt`.
func unmarshalJWT(d *caddyfile.Dispenser) (*bearer.Config, error) {
	c := new(bearer.Config)
	if d.NextArg() {
		if ucwa.Word(d.Val(), "off") != "off" || d.NextArg() {
			return nil, d.Err("jwt: expected `jwt off` or a `jwt { ... }` block")
		}
		c.Off = true
		if d.NextBlock(d.Nesting()) {
			return nil, d.Err("jwt: `jwt off` takes no block")
		}
		return c, nil
	}
	err := directive.Block(d, d.Nesting(), "jwt", []string{"public_key_file"}, func(option string) error {
		var err error
		switch option {
		case "algorithms":
			c.Algorithms, err = directive.Args(d)
		case "public_key_file":
			var files []string
			files, err = directive.Args(d)
			c.PublicKeyFiles = append(c.PublicKeyFiles, files...)
		case "issuer":
			c.Issuers, err = directive.Args(d)
		case "audience":
			c.Audiences, err = directive.Args(d)
		case "jwks_file":
			err = directive.OneArg(d, &c.JWKSFile)
		case "hmac_secret":
			err = directive.OneArg(d, &c.HMACSecret)
		case "jwks_url":
			args := d.RemainingArgs()
			if len(args) == 0 || len(args) > 2 {
				return directive.ArgCount(d, option, "<url> [<refresh>]")
			}
			if args[0] == "" {
				return directive.EmptyArg(d, option)
			}
			c.JWKSURL = args[0]
			if len(args) == 2 {
				refresh, err := caddy.ParseDuration(args[1])
				if err != nil || refresh == 0 {
					return d.Errf("jwks_url: refresh %q is not a duration other than 0 (such as 1h)", args[1])
				}
				c.JWKSRefresh = caddy.Duration(refresh)
			}
			return directive.NoBlock(d, option)
		case "leeway":
			c.Leeway = new(caddy.Duration)
			if err := directive.Duration(d, c.Leeway, "30s"); err != nil {
				return err
			}
		case "cache_size":
			var arg string
			if err := directive.OneArg(d, &arg); err != nil {
				return err
			}
			size, err := strconv.Atoi(arg)
			if err != nil || size == 0 {
				return d.Errf("cache_size: %q is not a number of tokens other than 0 (-1 for no cache)", arg)
			}
			c.CacheSize = size
		default:
			return unrecognized(d, "jwt", "option", option)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// unmarshalPool parses `primary` or `backup`; d is on the subdirective's
// name. Its arguments and block are reverse_proxy's own, parsed by
// reverse_proxy's Caddyfile parser with the subdirective's name in the
// place of the directive's.
func unmarshalPool(d *caddyfile.Dispenser) (*reverseproxy.Handler, error) {
	name := d.Val()
	segment := d.NewFromNextSegment()
	if err := checkPoolBlock(segment, name); err != nil {
		return nil, err
	}
	segment.Reset()
	proxy := new(reverseproxy.Handler)
	if err := proxy.UnmarshalCaddyfile(segment); err != nil {
		return nil, err
	}
	return proxy, nil
}

// checkPoolBlock refuses, on the line and in the block of the pool name
// (segment, on its name), what reverse_proxy's parser would take and the
// pool misread or drop without a word: a matcher among the upstreams,
// and subdirectives. reverse_proxy leaves handle_response
// blocks to its caller, which needs the Caddyfile helper: they would be
// dropped. replace_status is a handle_response of its own making, which
// startup would refuse naming handle_response, a subdirective the
// Caddyfile does not hold. A response matcher (@name) serves those two
// alone: it would be read and never used; it is named once the block
// holds neither, which the error names first. The block is walked as
// reverse_proxy's parser walks it, so that a quoted brace ("{" or "}",
// a header's value) is an argument, not a block's edge.
func checkPoolBlock(segment *caddyfile.Dispenser, name string) error {
	segment.Next() // the pool's name
	for _, upstream := range segment.RemainingArgs() {
		// reverse_proxy's first argument may be a matcher, which the
		// Caddyfile takes off before its parser sees the line; here the
		// parser would read it as an upstream: /ucwa* the host ucwa*
		// on port 80 in plain HTTP, @name a host no one has.
		if strings.HasPrefix(upstream, "/") || strings.HasPrefix(upstream, "@") || upstream == "*" {
			return segment.Errf("%s: %q is a matcher, not an upstream: a pool takes none, and ucwa needs none: it picks the requests it guards by the end of their path, as IIS reads it, where a path matcher would let some pass unjudged", name, upstream)
		}
	}
	var matcher error
	for nesting := segment.Nesting(); segment.NextBlock(nesting); {
		switch sub := segment.Val(); {
		case sub == "handle_response", sub == "replace_status":
			return segment.Errf("%s: %s is not supported in a pool", name, sub)
		case optionPlaces[sub] == ucwaBlockPlace:
			// reverse_proxy's parser would say only "unrecognized
			// subdirective backup", naming no pool.
			return segment.Errf("%s: %s is a subdirective of ucwa, not of a pool: close %s's block before it", name, sub, name)
		case strings.HasPrefix(sub, "@") && matcher == nil:
			matcher = segment.Errf("%s: response matcher %s: a pool takes neither handle_response nor replace_status, the only users of response matchers", name, sub)
		}
		segment.RemainingArgs()
		for inner := segment.Nesting(); segment.NextBlock(inner); {
			// the subdirective's own block
		}
	}
	return matcher
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
