package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ucwa-edge/caddy-ucwa/internal/metrics"
	"github.com/ucwa-edge/caddy-ucwa/internal/store"
	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// LimitConfig is a velocity limit: at most Count requests per Per, for
// each key (by default each verified caller), counted in the handler's
// store: per edge with the memory store, across a fleet with Redis.
//
// A request counts when it carries a phone number the pool dials now,
// stores to ring later or forwards calls to (a destination of kind
// dialled now, stored for later or forwarding target that is a number:
// a tel: URI, a bare number, or a SIP URI whose user is a number or a
// dial string a gateway could dial, ucwa.DialString), and
// so does every request of an operation that calls a party it need not
// name (ucwa.Operation.CallsUnnamed: call-via-work rings the caller's
// own phone, the number the pool keeps for the caller when no
// phoneNumber is given; the continue requests call back a conversation
// log's party), which counts in no class but the default when it names
// no number. Any other request that carries no number (an audio call to
// a person, a settings change without a target, a delegator alone) does
// not. Each part of a batch counts as if it came alone: a batch takes
// as many events as it has parts that count, all or none, and the batch
// is refused whole when a limit cannot take them all. A batch with more
// such parts than a limit's Count is refused naming the first limit it
// is too large for, without Retry-After, whatever the budgets hold.
//
// Emergency calls are never limited: startEmergencyCall (under the
// destination policy's emergency_calls emergency_numbers, only one that
// dials an emergency number), and a request that dials an emergency
// number now (as to or phoneNumber: one of the policy's emergency list,
// else of default_region). An emergency number takes nothing from any budget,
// dialled, stored or set as a forwarding target; the other numbers of an
// emergency call take from the budgets that have room for them. In a SIP
// URI, an emergency number is one only at a host sip_domains lists
// (ucwa.Policy.IsEmergencyCall): elsewhere it counts as any number.
//
// The limit is a token bucket (GCRA): it holds Count events and one comes
// back every Per/Count, so a caller idle for Per has the whole Count
// again, and requests never wait for a window boundary. A request over a
// limit is answered 429 TooManyRequests / LimitExceeded, with
// Retry-After in whole seconds (rounded up) until the request would
// fit, and is not delivered. The limits are checked after idempotency
// (a replayed or conflicting repeat counts for nothing), just before
// delivery, all at once: every limit that counts the request takes its
// event, or none does, so that a request one limit refuses takes nothing
// from the others. The 429 names the first limit, in the order given,
// that has no room, and its Retry-After is the longest wait of those
// that have none. A request the limits allowed gives its events back,
// all or none as it took them, when it certainly reached no pool: the
// edge answered it 410 CannotRedirect or 503 because no pool could take
// it, or the client went away before it was sent (it is then not sent;
// the edge may have been connecting to a pool), as idempotency releases
// its operationId then. One that may have reached a pool (the edge's 502
// or 504, the client gone once it may have reached one, any answer of a
// pool's) keeps them. A budget is never given
// more than it took, nor more than its Count, nor what it refilled
// meanwhile (a refund gives back the events' share of the period less
// the time since they were taken); a refund the store fails leaves the
// events taken.
type LimitConfig struct {
	// The limit's name: letters, digits, '-', '_' and '.', unique among
	// the handler's limits in any letter case. It names the limit in the
	// 429's message, in the metric caddy_ucwa_limited_total{limit} and in
	// the store's keys: handlers that share a store, a limit name and its key
	// template share its budgets (the edges of a fleet on one Redis, or
	// several sites of one edge), and should give it the same count, per
	// and applies_to; handlers whose keys differ count in budgets of
	// their own, whatever the keys expand to. Two handlers of one config
	// that give one name another count, per, applies_to or key are warned
	// of at startup. Required.
	Name string `json:"name"`

	// How many requests a key may make per period; at least 1.
	// Required.
	Count int `json:"count"`

	// The period, such as 1h or 24h; at least 1s, at least a
	// microsecond per event of count, and at most a century
	// (store.MaxDuration). Required.
	Per caddy.Duration `json:"per"`

	// Whose budget a request takes from: a string expanded for each
	// request by Caddy's replacer, such as {http.ucwa.tid} for one
	// budget per tenant, or {http.ucwa.tid}/{http.ucwa.client_id}. A
	// key whose placeholders all expand to "" (jwt off, a web ticket
	// forwarded, claims the token lacks) takes from the budget of the
	// client's IP address ({http.vars.client_ip}; over IPv6 its /64, a
	// host's to spend one address per request) instead, also when
	// the key has text besides them ("/"); that budget is apart from the
	// one of a key that expands to the address's text. A key without
	// placeholders is one budget for every request (a global limit),
	// but one that is a class's word ("international", "forwarding":
	// the class written as the key) or a placeholder's name without its
	// braces ("tid", "http.ucwa.tid", "http.request.header.X-Tenant")
	// stops startup; an unknown
	// placeholder expands to "", but one of the edge's own
	// (http.ucwa.*) it does not publish, {http.ucwa.pool} (set after
	// the limits), a placeholder of the edge or of Caddy's request in
	// another letter case than its own ({HTTP.ucwa.tid},
	// {Http.Request.Header.X-Tenant}: names are case-sensitive, all but
	// the part after a namespace such as http.request.header.), one of
	// the edge's by its short name ({tid}), a Caddyfile shorthand, which
	// JSON does not expand ({client_ip}; {Header.X-Tenant} in a
	// Caddyfile, which expands it in lower case alone), or an {env.*}
	// whose variable is empty at startup (unset), stops startup, naming
	// the placeholder to write, as does a brace left open (Caddy keeps
	// it as text: one budget for every caller), {} or a doubled brace
	// (a literal brace is written \{). In a key of several
	// placeholders the values are written so that callers whose values
	// differ never share a budget ("x|y" and "z", "x" and "y|z" in
	// "{a}|{b}"). A request whose key falls back to its address is
	// warned of, once a minute at most per limit (naming the limit and
	// this template); with jwt off, a key of the verified caller's
	// placeholders alone, never set, is warned of at startup instead, as
	// is a placeholder that Caddy does not fill before the limits (a
	// typo such as {http.reqest.header.X-Tenant}: another plugin's
	// handler may set any name, so it does not stop startup). The store
	// holds only the SHA-256 of the expanded key,
	// never the key itself. Default:
	// "{http.ucwa.tenant_caller}", the verified caller told apart by
	// tenant as idempotency tells callers apart: the token's tid (for a
	// token without tid from an accepted issuer other than the first,
	// its iss), and its oid, else its sub (Entra ID gives one user a sub
	// for each client application, and one oid); the value of
	// "{http.ucwa.tenant}/{http.ucwa.caller}", but as every other
	// template, that one has budgets of its own (see Name).
	Key string `json:"key,omitempty"`

	// Which requests count: "" every request that carries a number (see
	// above); "international" those with a number outside default_region
	// (of another region, non-geographic, or of no known region; every
	// number when there is no default_region; a dial string when any
	// reading of it is, or when it has a dial character; with a
	// destination policy, a number whose extension max_extension_digits
	// refuses, see ucwa.Policy.DialsThrough, and a dial string that reads
	// as a short code after an outside-line prefix, DialsShortCode);
	// "forwarding" those that set a number as a forwarding target
	// (immediateForwardToContact, simultaneousRingToContact,
	// unansweredCallToContact). Any letter case. Default: "".
	AppliesTo string `json:"applies_to,omitempty"`
}

// DefaultLimitKey is the key of a LimitConfig without one: the verified
// caller told apart by tenant, as idempotency tells callers apart (see
// makeGrant), whose grant hashes it once per token.
const DefaultLimitKey = "{http.ucwa.tenant_caller}"

// limitClass is which requests a limit counts.
type limitClass uint8

const (
	classNumbers limitClass = iota
	classInternational
	classForwarding
	numLimitClasses
)

// limitClassNames are the applies_to values of the classes.
var limitClassNames = [numLimitClasses]string{"", "international", "forwarding"}

// limit is a provisioned LimitConfig.
type limit struct {
	name  string
	class limitClass
	limit store.Limit
	// key is the key template; placeholder is its variable when the
	// template is exactly one placeholder, read without expanding.
	key, placeholder string
	// How the values of a template of several placeholders are written
	// into the key (see keyEncoding).
	keyEscapes string
	keyLengths bool
	// storePrefix starts the limit's store keys: "limit:<name>:".
	storePrefix string
	// refusedBy is the intake's refusedBy when this limit refuses.
	refusedBy string
	// The answers to a request over the limit, and to a batch that holds
	// more counted parts than the limit's Count.
	tooMany, tooLarge *ucwa.Error
	limited           prometheus.Counter // caddy_ucwa_limited_total{limit}
	// overByEmergency counts emergency calls delivered over the limit:
	// caddy_ucwa_limit_exempted_total{limit}.
	overByEmergency prometheus.Counter
	// keyless warns, with logger, of the requests whose key expanded to
	// nothing and that took from their client address's budget instead
	// (see noteKeyless); nil: no warning (a key that is never set, warned
	// of at startup).
	keyless *throttledWarning
	logger  *zap.Logger
}

// limitWarningClock, when not nil, is the clock of the limits' warnings
// of the handlers provisioned from then on: a test sets it before it
// loads a config, so that it drives the time between warnings.
var limitWarningClock func() time.Time

// keylessWarning is the warning that a limit's key expanded to nothing.
const keylessWarning = "a limit's key expanded to nothing: the request took from the budget of the client's address ({http.vars.client_ip}) instead, " +
	"which behind a load balancer or proxy without Caddy's trusted_proxies is one budget for every client"

// keyNeverSetWarning is the startup warning that a limit's key, of the
// verified caller's placeholders alone, is never set because jwt is off.
const keyNeverSetWarning = "a limit's key will expand to nothing at every request: it names the verified caller, and jwt off verifies none; " +
	"every request takes from the budget of its client's address ({http.vars.client_ip}), " +
	"which behind a load balancer or proxy without Caddy's trusted_proxies is one budget for every client"

// keyUnknownWarning is the startup warning that a limit's key names a
// placeholder that Caddy does not fill before the limits are checked (a
// typo, most likely; see unknownKeyPlaceholders).
const keyUnknownWarning = "a limit's key names a placeholder that Caddy does not fill before the limits: unless a handler before ucwa sets it, it expands to nothing, " +
	"and every request takes from the budget of its client's address ({http.vars.client_ip})"

// noteKeyless warns that a request's key expanded to nothing, at the
// first such request and then once a minute at most, with the number of
// such requests since: it names the limit and its key template, never a
// value of the request.
func (l *limit) noteKeyless() {
	if l.keyless == nil {
		return
	}
	l.keyless.note(func(requests uint64) {
		l.logger.Warn(keylessWarning, zap.String("limit", l.name), zap.String("key", l.key), zap.Uint64("requests", requests))
	})
}

// limitUsage is how many events a request brings to each class of limit.
type limitUsage [numLimitClasses]int

// usageOf is the usage of one cleaned request (see LimitConfig): one
// event for each class its numbers belong to, emergency numbers aside.
// It reports too whether the request is an emergency call, which no limit
// refuses: the emergency operation (under emergency_calls any), or one
// that dials an emergency number now. Its other numbers count all the
// same, so that an emergency number added to a request does not make the
// rest of it free.
func (h *Handler) usageOf(cl *ucwa.Cleaned) (_ limitUsage, emergency bool) {
	var u limitUsage
	var policy *ucwa.Policy
	if h.destinations != nil {
		policy = h.destinations.policy
	}
	emergency = policy.EmergencyOperation(cl.Operation)
	numbers := h.cleaner.Numbers()
	// A call to a party the request need not name (the number the pool
	// keeps for the caller, a conversation log's party) was judged, if at
	// all, when it was kept, but every ring of it is a call.
	counted := cl.Operation.CallsUnnamed
	var international, forwarding bool
	dests := cl.Destinations()
	for i := range dests {
		d := &dests[i]
		if !policy.IsDialled(&d.Destination) {
			continue
		}
		switch d.Kind {
		case ucwa.DialledNow, ucwa.StoredForLater, ucwa.ForwardingTarget:
		default:
			continue
		}
		// An emergency number in a SIP URI at a host sip_domains does not
		// list need not reach an emergency service: it counts as any
		// number does.
		if policy.IsEmergencyCall(d) {
			emergency = emergency || d.Kind == ucwa.DialledNow
			continue
		}
		counted = true
		forwarding = forwarding || d.Kind == ucwa.ForwardingTarget
		// An extension dialled through (see ucwa.Policy.DialsThrough), and
		// a short code after an outside line (DialsShortCode), are calls
		// to wherever their digits lead, as a short code is.
		international = international || numbers.International(&d.Destination) ||
			policy.DialsThrough(&d.Destination) || policy.DialsShortCode(&d.Destination)
	}
	for c, yes := range [numLimitClasses]bool{counted, international, forwarding} {
		if yes {
			u[c] = 1
		}
	}
	return u, emergency
}

// isEmergencyCall reports whether the accepted request in is an
// emergency call (see usageOf).
func (h *Handler) isEmergencyCall(in *intake) bool {
	_, emergency := h.usage(in)
	return emergency
}

// usage is what the accepted request in brings to the limits, and
// whether it is an emergency call (see usageOf). A batch's parts count as
// if they came alone, and a batch is no emergency call: its parts are
// delivered all or none, and one part cannot make the others free.
func (h *Handler) usage(in *intake) (limitUsage, bool) {
	if in.cleaned != nil {
		return h.usageOf(in.cleaned)
	}
	return in.usage, false
}

// countPart adds a cleaned batch part to the batch's usage, when the
// handler has limits.
func (h *Handler) countPart(in *intake, cl *ucwa.Cleaned) {
	if len(h.limits) > 0 {
		u, _ := h.usageOf(cl)
		for c, n := range u {
			in.usage[c] += n
		}
	}
}

// limitNameOK reports whether a limit's name is letters, digits, '-',
// '_' and '.': it goes into metric labels, messages and store keys.
func limitNameOK(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range name {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// provisionLimits checks the limits and registers their metric; the store
// is set up by provisionStore.
func (h *Handler) provisionLimits(ctx caddy.Context) error {
	if len(h.Limits) == 0 {
		return nil
	}
	limited, err := metrics.Register(registerer(ctx), prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "ucwa", Name: "limited_total",
		Help: "Requests of guarded operations answered 429 because a velocity limit refused them, by limit.",
	}, []string{"limit"}))
	if err != nil {
		return err
	}
	overByEmergency, err := metrics.Register(registerer(ctx), prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "ucwa", Name: "limit_exempted_total",
		Help: "Emergency calls delivered although a velocity limit had no room for them (emergency calls are never refused), by limit.",
	}, []string{"limit"}))
	if err != nil {
		return err
	}
	seen := make(map[string]string, len(h.Limits)) // by the name in lower case
	h.limits = make([]limit, 0, len(h.Limits))
	for i, c := range h.Limits {
		where := "limits[" + strconv.Itoa(i) + "]"
		if c == nil {
			return fmt.Errorf("%s: missing", where)
		}
		if !limitNameOK(c.Name) {
			return fmt.Errorf("%s: name %q must be letters, digits, '-', '_' and '.', and not empty", where, c.Name)
		}
		where = "limit " + c.Name
		// Names that differ in letter case alone would be two limits
		// that the metrics, the audit trail and an operator read as one.
		switch first, ok := seen[strings.ToLower(c.Name)]; {
		case ok && first == c.Name:
			return fmt.Errorf("%s: name given twice", where)
		case ok:
			return fmt.Errorf("%s: name given twice, as %q too: names that differ in letter case alone are one name", where, first)
		}
		seen[strings.ToLower(c.Name)] = c.Name
		if c.Count < 1 {
			return fmt.Errorf("%s: count must be at least 1: %d", where, c.Count)
		}
		if c.Per <= 0 {
			return fmt.Errorf("%s: per must be a duration above 0: %s", where, time.Duration(c.Per))
		}
		if c.Per < caddy.Duration(time.Second) {
			return fmt.Errorf("%s: per must be at least 1s: %s", where, time.Duration(c.Per))
		}
		if time.Duration(c.Per) > store.MaxDuration {
			return fmt.Errorf("%s: per must be at most %s: %s", where, store.MaxDuration, time.Duration(c.Per))
		}
		if time.Duration(c.Per)/time.Duration(c.Count) < store.MinInterval {
			return fmt.Errorf("%s: count %d per %s is more than one event a microsecond", where, c.Count, time.Duration(c.Per))
		}
		l := limit{
			name:        c.Name,
			limit:       store.Limit{Count: c.Count, Period: time.Duration(c.Per)},
			key:         c.Key,
			storePrefix: "limit:" + c.Name + ":",
			refusedBy:   "limit:" + c.Name,
			limited:     limited.WithLabelValues(c.Name),

			overByEmergency: overByEmergency.WithLabelValues(c.Name),
			keyless:         &throttledWarning{now: limitWarningClock},
			logger:          h.logger,
		}
		switch ucwa.Word(c.AppliesTo, limitClassNames[:]...) {
		case limitClassNames[classNumbers]:
			l.class = classNumbers
		case limitClassNames[classInternational]:
			l.class = classInternational
		case limitClassNames[classForwarding]:
			l.class = classForwarding
		default:
			return fmt.Errorf("%s: %w", where, ucwa.WordError("applies_to", c.AppliesTo, limitClassNames[classInternational], limitClassNames[classForwarding]))
		}
		if l.key == "" {
			l.key = DefaultLimitKey
		}
		// `limit calls 20 per 1h key international` reads as the class
		// and is a key of plain text: one budget for every request.
		for _, class := range limitClassNames[classInternational:] {
			if strings.EqualFold(l.key, class) {
				return fmt.Errorf("%s: key %q is a class, not a placeholder: a key of text is one budget for every request; give the class after the key (key {http.ucwa.tid} %s), or name one budget for all otherwise (key global)", where, l.key, class)
			}
		}
		// `limit tenant 500 per 1h key tid` (or http.ucwa.tid) is a
		// placeholder's name without its braces: a key of text too.
		if name, ok := unbracedPlaceholder(l.key); ok {
			return fmt.Errorf("%s: key %q is a placeholder's name without its braces: a key of text is one budget for every request; write {%s}, or name one budget for all otherwise (key global)", where, l.key, name)
		}
		if err := checkKeyPlaceholders(l.key); err != nil {
			return fmt.Errorf("%s: key: %w", where, err)
		}
		// With jwt off, a key of the verified caller's placeholders
		// alone falls back at every request, by the config's own
		// making: that is said at startup, where validate shows it,
		// and not again every minute for a deliberate setup.
		if h.JWT != nil && h.JWT.Off && keyOfGrantAlone(l.key) {
			l.keyless = nil
			h.logger.Warn(keyNeverSetWarning, zap.String("limit", l.name), zap.String("key", l.key))
		}
		for _, name := range unknownKeyPlaceholders(l.key) {
			h.logger.Warn(keyUnknownWarning, zap.String("limit", l.name), zap.String("key", l.key), zap.String("placeholder", name))
		}
		if v, ok := strings.CutPrefix(l.key, "{"); ok && strings.HasSuffix(v, "}") && !strings.ContainsAny(v[:len(v)-1], "{}") {
			l.placeholder = v[:len(v)-1]
		} else {
			l.keyEscapes, l.keyLengths = keyEncoding(l.key)
		}
		l.tooMany = ucwa.NewError(http.StatusTooManyRequests, ucwa.SubcodeLimitExceeded,
			"The limit "+strconv.Quote(c.Name)+" allows no more of these requests now. The request was not delivered; send it again after Retry-After.")
		l.tooLarge = ucwa.NewError(http.StatusTooManyRequests, ucwa.SubcodeLimitExceeded,
			"The batch holds more requests that count against the limit "+strconv.Quote(c.Name)+" than it ever allows at once. The batch was not delivered; send its requests in smaller batches.")
		h.limits = append(h.limits, l)
	}
	h.claimLimits(ctx)
	h.listLimits()
	return nil
}

// limitClaims holds, for each config load, store data, limit name and
// key template, how the first handler of that load to define the limit
// so on that data defines it: two handlers (two sites) of one config
// that share a store and give one limit name and key another count, per
// or applies_to take from the same buckets, each at its own rate, and
// fight over them; two that give one name another key count in buckets
// apart (see limitKeyTemplate), where one name suggests one budget. It
// is scoped to a config load (configLoad), so that a reload that changes
// a limit is not taken for such a conflict while the old config's
// handlers are still provisioned.
var limitClaims = struct {
	mu     sync.Mutex
	claims map[limitClaimKey]*limitClaim
	// claimed numbers the claims in the order they were made.
	claimed uint64
}{claims: map[limitClaimKey]*limitClaim{}}

// limitClaimKey is a config load, the data of a store (sharedStore.data),
// a limit name and its key template.
type limitClaimKey struct {
	load            any
	data, name, key string
}

// limitClaim is how a limit is defined, by how many handlers, and when it
// was first (limitClaims.claimed).
type limitClaim struct {
	limit    store.Limit
	class    limitClass
	handlers int
	order    uint64
}

// claimLimits notes the handler's limits in limitClaims, and warns of
// each one that another handler of the config load defines on the same
// store data with another count, per or applies_to, or with another key
// (naming the first other key claimed). Cleanup lets go of them
// (releaseLimitClaims).
func (h *Handler) claimLimits(ctx caddy.Context) {
	if h.store == nil {
		return
	}
	load := configLoad(ctx)
	limitClaims.mu.Lock()
	defer limitClaims.mu.Unlock()
	for i := range h.limits {
		l := &h.limits[i]
		k := limitClaimKey{load, h.store.data, l.name, l.key}
		if otherKey, ok := firstOtherKeyClaimed(k); ok {
			h.logger.Warn("two handlers of this config define the limit "+strconv.Quote(l.name)+" with different keys on one store: "+
				"each key counts in budgets of its own, and a caller may take the count from each; give one of them another name, or both the same key",
				zap.String("limit", l.name), zap.String("key", l.key), zap.String("other_key", otherKey))
		}
		c := limitClaims.claims[k]
		if c == nil {
			limitClaims.claimed++
			c = &limitClaim{limit: l.limit, class: l.class, order: limitClaims.claimed}
			limitClaims.claims[k] = c
		} else if c.limit != l.limit || c.class != l.class {
			h.logger.Warn("two handlers of this config define the limit "+strconv.Quote(l.name)+" differently on one store: "+
				"they take from the same buckets, each at its own rate; give one of them another name, or both the same count, per and applies_to",
				zap.String("limit", l.name),
				zap.Int("count", l.limit.Count), zap.Duration("per", l.limit.Period), zap.String("applies_to", limitClassNames[l.class]),
				zap.Int("other_count", c.limit.Count), zap.Duration("other_per", c.limit.Period), zap.String("other_applies_to", limitClassNames[c.class]))
		}
		c.handlers++
		h.limitClaims = append(h.limitClaims, k)
	}
}

// firstOtherKeyClaimed returns the key template of the first claim of
// k's config load, store data and limit name with another key than k's;
// limitClaims.mu is held.
func firstOtherKeyClaimed(k limitClaimKey) (key string, ok bool) {
	var first *limitClaim
	for ck, c := range limitClaims.claims {
		if ck.load == k.load && ck.data == k.data && ck.name == k.name && ck.key != k.key && (first == nil || c.order < first.order) {
			first, key = c, ck.key
		}
	}
	return key, first != nil
}

// releaseLimitClaims lets go of the handler's claims in limitClaims.
func (h *Handler) releaseLimitClaims() {
	limitClaims.mu.Lock()
	defer limitClaims.mu.Unlock()
	for _, k := range h.limitClaims {
		if c := limitClaims.claims[k]; c != nil {
			if c.handlers--; c.handlers <= 0 {
				delete(limitClaims.claims, k)
			}
		}
	}
	h.limitClaims = nil
}

// checkLimits takes the accepted request in's events from every limit
// that counts it, just before it is delivered, and reports whether it may
// be delivered. The limits take their events at once, all or none (see
// store.Store.AllowAll): a request one of them refuses takes nothing
// from the others. When it may not be delivered, it has answered: 429
// for a request over a limit (naming the first limit that refuses it in
// in.refusedBy, with the longest wait of those that refuse it), or 503
// when the store fails and on_error is closed, or when it is full. With
// on_error open any other store failure lets the request through,
// uncounted by the limits; so it does an emergency call, which no limit
// refuses either (see usageOf, checkEmergencyLimits). It returns the takes it took, for
// refundLimits.
func (h *Handler) checkLimits(w http.ResponseWriter, in *intake) (taken []store.Take, ok bool) {
	if len(h.limits) == 0 {
		return nil, true
	}
	u, emergency := h.usage(in)
	repl, _ := in.r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if emergency {
		return h.checkEmergencyLimits(in, u, repl), true
	}
	var whichArr [len(in.takes)]*limit
	takes, which := in.takes[:0], whichArr[:0]
	var tooLarge *limit // the first limit the request is too large for
	for i := range h.limits {
		l := &h.limits[i]
		n := u[l.class]
		if n == 0 {
			continue
		}
		if n > l.limit.Count {
			// Never allowed, whatever the budgets hold; every limit
			// without room counts the request (the first when it is
			// refused).
			if tooLarge == nil {
				tooLarge = l
			} else {
				l.limited.Inc()
			}
			continue
		}
		takes = append(takes, store.Take{Key: l.storeKey(repl, in.r, in.grant), Limit: l.limit, N: n})
		which = append(which, l)
	}
	if tooLarge != nil {
		return nil, h.refuseOverLimit(w, in, tooLarge, tooLarge.tooLarge, 0)
	}
	if len(takes) == 0 {
		return nil, true
	}
	s := h.store
	epoch := s.begin()
	in.limitsTaken = time.Now()
	var dsArr [len(in.takes)]store.Decision
	ds := dsArr[:]
	if len(takes) > len(ds) {
		ds = make([]store.Decision, len(takes))
	}
	ds = ds[:len(takes)]
	// The store has timeouts of its own.
	err := s.allowAll(context.Background(), takes, ds)
	// A full store refuses the request even with on_error open: callers
	// can fill it (with Redis, one caller's requests that no limit
	// counts, each holding its operationId for the window), and a limit
	// that let requests through uncounted while it is full would count
	// none of theirs, nor any caller's whose budget needs a new entry.
	if !s.end(epoch, err) || errors.Is(err, store.ErrFull) {
		_ = h.failStore(w, in, err)
		return nil, false
	}
	if err != nil {
		return nil, true
	}
	if ds[0].Allowed {
		return takes, true
	}
	var first *limit
	var wait time.Duration
	for j, d := range ds {
		if d.RetryAfter <= 0 {
			continue
		}
		if first == nil {
			first = which[j]
		} else {
			which[j].limited.Inc()
		}
		wait = max(wait, d.RetryAfter)
	}
	if first == nil {
		// A store that refused without saying which budget had no room.
		first = which[0]
	}
	return nil, h.refuseOverLimit(w, in, first, first.tooMany, wait)
}

// checkEmergencyLimits takes the emergency call in's events from every
// limit that counts it and has room for them, one limit at a time: the
// call is delivered whatever they answer, and takes from each budget
// that holds its events, as any delivered request. A limit without room
// is noted in in.overLimit and counted in
// caddy_ucwa_limit_exempted_total; a store failure lets the call
// through, uncounted by that limit. It returns the takes it took.
func (h *Handler) checkEmergencyLimits(in *intake, u limitUsage, repl *caddy.Replacer) (taken []store.Take) {
	s := h.store
	in.limitsTaken = time.Now()
	for i := range h.limits {
		l := &h.limits[i]
		n := u[l.class]
		if n == 0 {
			continue
		}
		var d store.Decision
		var err error
		if n <= l.limit.Count {
			epoch := s.begin()
			key := l.storeKey(repl, in.r, in.grant)
			// The store has timeouts of its own.
			d, err = s.AllowN(context.Background(), key, l.limit, n)
			s.end(epoch, err)
			if err == nil && d.Allowed {
				taken = append(taken, store.Take{Key: key, Limit: l.limit, N: n})
			}
		}
		if err == nil && !d.Allowed {
			// Delivered all the same, taking nothing (a refused AllowN
			// takes nothing).
			l.overByEmergency.Inc()
			if in.overLimit == "" {
				in.overLimit = l.name
			}
		}
	}
	return taken
}

// refundLimits gives back the events that checkLimits took (taken) for
// in, a request that certainly reached no pool (see reachedNoPool): it
// was never delivered, and a client that sends it again must find them,
// as it finds its operationId released. All or none, as they were
// taken, and only what they still hold of their budgets: a request that
// took longer than an event's share of a period to fail (dial timeouts
// on every pool) gives back less, or nothing, since its budgets refilled
// meanwhile (see store.Store.RefundAll). A refund the store fails leaves
// them taken: never more than was taken is given back.
func (h *Handler) refundLimits(in *intake, taken []store.Take) {
	if len(taken) == 0 {
		return
	}
	s := h.store
	epoch := s.begin()
	held := max(time.Since(in.limitsTaken)-refundGrace, 0)
	// The store has timeouts of its own, and the client may be gone.
	err := s.refundAll(context.Background(), taken, held)
	s.end(epoch, err)
}

// refundGrace is how long after the limits took a request's events a
// refund still gives all of them back. The edge times the take by its
// own clock, the store (Redis) by its own, a round trip apart: a refund
// timed to the microsecond would give back a little less than a request
// that failed at once took, and its client's next request, which needs
// the whole budget again, would wait. Within a second a budget is given
// back at most a second's refill more than it missed.
const refundGrace = time.Second

// refuseOverLimit answers a request that l refuses with e and, when
// retryAfter is not 0, Retry-After in whole seconds, rounded up. It
// returns false, for checkLimits.
func (h *Handler) refuseOverLimit(w http.ResponseWriter, in *intake, l *limit, e *ucwa.Error, retryAfter time.Duration) bool {
	l.limited.Inc()
	in.refusedBy = l.refusedBy
	if retryAfter > 0 {
		setRetryAfter(w.Header(), retryAfter)
	}
	_ = h.fail(w, in, e)
	return false
}

// unmarshalLimit parses `limit <name> <count> per <duration> [key
// <placeholder>] [international|forwarding]`; d is on `limit`.
func unmarshalLimit(d *caddyfile.Dispenser) (*LimitConfig, error) {
	const syntax = "limit: expected `limit <name> <count> per <duration> [key <placeholder>] [international|forwarding]`"
	var name, count, per, period string
	if !d.Args(&name, &count, &per, &period) || ucwa.Word(per, "per") != "per" {
		return nil, d.Err(syntax)
	}
	c := &LimitConfig{Name: name}
	n, err := strconv.Atoi(count)
	if err != nil {
		return nil, d.Errf("limit %s: %q is not a whole number", name, count)
	}
	c.Count = n
	dur, err := caddy.ParseDuration(period)
	if err != nil {
		return nil, d.Errf("limit %s: %q is not a duration (such as 1h)", name, period)
	}
	c.Per = caddy.Duration(dur)
	var keyGiven bool
	for d.NextArg() {
		switch arg := ucwa.Word(d.Val(), "key", limitClassNames[classInternational], limitClassNames[classForwarding]); arg {
		case "key":
			if keyGiven {
				return nil, d.Errf("limit %s: key given twice", name)
			}
			if !d.NextArg() {
				return nil, d.Err(syntax)
			}
			if d.Val() == "" {
				// JSON's "not given": the default key, a budget per
				// caller, where the line names another.
				return nil, d.Errf(`limit %s: key "" is read as not given, the default key (each verified caller): leave key out for it, or give a placeholder`, name)
			}
			c.Key, keyGiven = d.Val(), true
		case limitClassNames[classInternational], limitClassNames[classForwarding]:
			if c.AppliesTo != "" {
				return nil, d.Errf("limit %s: give at most one of international and forwarding", name)
			}
			c.AppliesTo = arg
		default:
			return nil, d.Err(ucwa.WordError("limit "+name, arg, "key", limitClassNames[classInternational], limitClassNames[classForwarding]).Error())
		}
	}
	if d.NextBlock(d.Nesting()) {
		return nil, d.Errf("limit %s: takes no block", name)
	}
	return c, nil
}
