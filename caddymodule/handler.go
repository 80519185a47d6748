// Package caddymodule is the Caddy glue of caddy-ucwa: the HTTP handler
// http.handlers.ucwa, which terminates at the edge every UCWA request that
// can make a pool place a call, store a number or forward calls (the
// operations of ucwa.DefaultOperations, and batches of them), and its
// Caddyfile directive "ucwa".
package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"go.uber.org/zap"

	"github.com/ucwa-edge/caddy-ucwa/internal/bearer"
	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

func init() {
	caddy.RegisterModule(new(Handler))
	httpcaddyfile.RegisterHandlerDirective("ucwa", parseCaddyfile)
	// Before the routing directives (invoke, handle, handle_path, route),
	// which Caddy runs before the handlers that answer: a site's `ucwa`
	// beside `handle { reverse_proxy ... }` would otherwise never see the
	// requests that block sends to a pool. So before reverse_proxy too,
	// needing no `order` option in a site or a block.
	httpcaddyfile.RegisterDirectiveOrder("ucwa", httpcaddyfile.Before, "invoke")
}

// DefaultMaxBodySize is the default limit of a request body: 64 KiB.
const DefaultMaxBodySize = 64 << 10

// DefaultMaxBatchOperations is the default limit of the requests to
// guarded operations in one batch.
const DefaultMaxBatchOperations = 20

// maxMaxBodySize is the largest max_body_size accepted: 1 GiB.
const maxMaxBodySize = 1 << 30

// Handler terminates, before they reach a Skype for Business front-end
// pool, the UCWA requests that can make the pool place a call on the
// organisation's trunks, store a number it rings later, or forward calls
// (the operations of ucwa.DefaultOperations: startPhoneAudio and its
// family, the audio and video requests, makeMeAvailable, PUT
// communication, changeNumber, the forwarding requests), and batches of
// them. For each it checks the bearer token and the operation's scopes,
// reads and validates the JSON or XML body and the query, normalizes
// phone numbers to E.164, judges every destination by the destination
// policy (when one is configured) and delivers the cleaned request to the
// front-end pools (or the next handler). Bad input is answered with a UCWA
// error body. A path that spells a guarded operation with something added
// (a near miss) is answered 404. Each of these requests, once answered,
// gets a line in the audit trail, the logger http.handlers.ucwa.audit;
// one still in flight when a stop's grace_period is over gets its line as
// the process exits.
// Every other request passes to the next handler untouched.
type Handler struct {
	// Path suffixes added to startPhoneAudio's own
	// ("/communication/startPhoneAudio" and
	// "/communication/phoneAudioInvitations"), as
	// operations.startPhoneAudio.paths adds them. Default: none.
	Paths []string `json:"paths,omitempty"`

	// Changes to operations of the table, by their rel (link name, in
	// any letter case): path spellings added, scopes replaced (see
	// OperationConfig). Default: none, and the table is
	// ucwa.DefaultOperations as it is.
	Operations map[string]*OperationConfig `json:"operations,omitempty"`

	// The largest request body accepted, in bytes, at most 1 GiB; larger
	// bodies are answered 413 EntityTooLarge without reading past the
	// limit. It applies to a batch as a whole. Default: 65536 (64 KiB).
	MaxBodySize int64 `json:"max_body_size,omitempty"`

	// The most requests one batch may carry; a batch with more is
	// answered 400. Default: 100, the pool's own limit.
	MaxBatchParts int `json:"max_batch_parts,omitempty"`

	// The most requests to guarded operations one batch may carry; a
	// batch with more is answered 400, and the parts past the limit are
	// not read. Each such part is judged as a request alone: its numbers
	// normalized and, under a destination policy, its SIP users read as
	// dial strings, a fifth of a millisecond of CPU for a part with
	// three of them, so that a batch of 100 such parts costs the edge
	// about 20 ms. Set above max_batch_parts, it can never be reached,
	// and startup warns of it. Default: 20.
	MaxBatchOperations int `json:"max_batch_operations,omitempty"`

	// The ISO 3166-1 region (such as "US") of phone numbers written
	// without a country code. Default: none, and such numbers are answered
	// 400 NormalizationFailed.
	DefaultRegion string `json:"default_region,omitempty"`

	// How normalized phone numbers are forwarded: "tel" for
	// "tel:+14255551234" or "e164" for "+14255551234", in any letter
	// case. Default: "tel".
	NumberFormat string `json:"number_format,omitempty"`

	// Answer every request of a phone-audio operation (startPhoneAudio,
	// startPhoneAudioOnBehalfOfDelegator, addPhoneAudio,
	// replaceWithPhoneAudio, continuePhoneAudio, acceptWithPhoneAudio;
	// also inside a batch) 403 Forbidden ("Phone audio is not listed in
	// the capabilities"), after its other checks, for pools where
	// call-via-work is turned off. Default: false.
	DisablePhoneAudio bool `json:"disable_phone_audio,omitempty"`

	// How bearer tokens are verified: algorithms, key sources, issuers,
	// audiences, leeway and the verified-token cache (see bearer.Config
	// for its fields). Required: a configuration that means to run
	// without tokens says so with {"off": true} (Caddyfile: `jwt off`).
	JWT *bearer.Config `json:"jwt,omitempty"`

	// When given, the scopes of every operation, in place of the table's:
	// a token must grant at least one, read from its `scp` and `scope`
	// claims (space-separated strings) and its `roles` claim (an array).
	// Matched case-sensitively. operations.<rel>.scopes replaces them for
	// one operation. Not with jwt off. Default: each operation's own
	// scopes from the table (startPhoneAudio: Conversations.Initiate or
	// Conversations.Receive; the forwarding requests: User.ReadWrite; a
	// batch: any of the five UCWA scopes).
	Scopes []string `json:"scopes,omitempty"`

	// Callers whose tokens are refused 403 Forbidden/CallerDenied for
	// every guarded operation, by their sub, oid, tid, client_id or iss
	// (see CallerDenyList). Not with jwt off. Default: none.
	DenyCallers *CallerDenyList `json:"deny_callers,omitempty"`

	// What to do with on-premises web tickets (`Authorization: Bearer
	// cwt=...`), which only a pool can check: "reject" answers them 401;
	// "forward" passes them to the pool unchecked, with no scope check at
	// the edge. Any letter case. Not with jwt off. Default: "reject".
	WebTickets string `json:"web_tickets,omitempty"`

	// Extra parameters of the `WWW-Authenticate: Bearer` challenge sent
	// with every 401, such as authorization_uri, trusted_issuers or
	// client_id (the ones UCWA clients read). "realm" sets the realm;
	// error, error_description, error_uri and scope are the edge's own.
	// Names are case-insensitive: each once, in any letter case. A
	// value may be neither empty (an empty realm names no protection
	// space a client can tell apart; leave realm out for the default)
	// nor begin or end with a space, which a client would read as part
	// of it. Values may use global placeholders such as {env.*}, replaced at
	// startup; one that is empty there (an unset variable) stops
	// startup, naming it, as does a brace left open (a literal brace is
	// written \{). Not with jwt off. Default: {"realm": "ucwa"}.
	Challenge map[string]string `json:"challenge,omitempty"`

	// The home front-end pool: the JSON of a Caddy reverse_proxy handler
	// (its fields, without the "handler" key), with its upstreams (at
	// least one, each with a dial address, or dynamic_upstreams), load
	// balancing, health checks and transport. A pool may not set
	// load_balancing.retry_match nor
	// handle_response: both could send an accepted request a second time
	// or answer in its place; nor request_buffers (the edge holds the
	// body already); nor rewrite, which would change the method, path or
	// query after the edge judged them, nor a header_up that adds or sets
	// a header the edge refuses from a client (X-Original-URL, a method
	// override, ...); nor a negative count, or a duration neither 0 nor
	// at least 1ms, in load_balancing, health_checks (or an active
	// check's port past 65535) or its http transport's timeouts, which
	// Caddy takes without a word and some of which keep the pool from
	// ever taking a request (see the README's Front-end pools). Its http
	// transport (also the one used when none is configured) defaults
	// keep_alive.idle_timeout to 90s (Caddyfile:
	// `transport http { keepalive }`), below IIS's 120s,
	// expect_continue_timeout to 1s, tls.handshake_timeout to 10s
	// (Caddyfile: tls_timeout; its TLS handshakes with the pool and with
	// an https forward proxy), and versions to HTTP/1.1 alone (see the
	// README); requests to it carry `Expect: 100-continue` as
	// expect_continue_after_idle says (`header_up -Expect` removes it
	// from all). Default: none, and accepted requests go to the next
	// handler.
	Primary *reverseproxy.Handler `json:"primary,omitempty"`

	// The backup pool for disaster recovery, in the same form and with
	// the same transport defaults as primary. It receives a request only
	// when the primary could not take it (no upstream available, no
	// connection could be made to any upstream it tried, or the request
	// was certainly not received whole); one that neither can take is
	// answered 503 ServiceUnavailable with a Retry-After (see
	// noPoolRetryAfter). Requires primary. Default: none, and a request
	// the primary cannot take is answered 410 Gone / CannotRedirect.
	Backup *reverseproxy.Handler `json:"backup,omitempty"`

	// Which requests to a pool carry `Expect: 100-continue`: those on a
	// new connection and on a kept-alive connection idle for at least
	// this long; 0 is every request. The pool then asks for the body
	// before it gets it, so a request that meets a connection the pool
	// is closing (its keep-alive timeout ran out) certainly was not
	// received, and goes out again on another connection instead of
	// being answered 502; the expectation costs a round trip. A pool
	// closes a connection for idleness only once it has been idle for the
	// pool's keep-alive timeout (IIS: 120s), so a connection that carried
	// a request less than this long ago is not one it is closing for
	// that. Keep it below the shortest idle timeout on the way to the
	// pool (a load balancer's in front of it too): a request that meets a
	// connection closing for idleness without the expectation is
	// answered 502, although the pool never read it. Applies to pools
	// with the http transport over HTTP/1.1 or HTTP/2, except a request
	// on a kept-alive HTTP/2 connection over TLS, which never carries
	// the expectation (see the README's Front-end pools). Default: 1s.
	ExpectContinueAfterIdle *caddy.Duration `json:"expect_continue_after_idle,omitempty"`

	// The edge's shared state, which idempotency and limits keep: a
	// module of the namespace http.handlers.ucwa.stores chosen by its
	// "backend" key, {"backend": "memory", ...} for a store per edge (see
	// MemoryStore) or {"backend": "redis", ...} for one a fleet of edges
	// shares (see RedisStore); the edge's own backends in any letter
	// case; one without a backend is refused. Handlers with the same
	// store config share one store, across config reloads too; null is
	// no store config. Default: {"backend": "memory"} when idempotency
	// or a limit is on.
	StoreRaw json.RawMessage `json:"store,omitempty" caddy:"namespace=http.handlers.ucwa.stores inline_key=backend"`

	// Deliver a request with an operationId once across retries, pools
	// and edges (see IdempotencyConfig); {} turns it on with the default
	// window. Default: off.
	Idempotency *IdempotencyConfig `json:"idempotency,omitempty"`

	// The destination policy: which phone numbers and SIP addresses a
	// guarded request may make a pool dial, store or forward to (see
	// ucwa.DestinationPolicy for its fields and rules). Every destination
	// of every guarded request, and of every guarded part of a batch, is
	// judged in the normalized form the edge forwards; one the policy
	// refuses is answered 403 Forbidden / DialoutNotAllowed, naming the
	// property and the rule, and nothing is delivered. Emergency numbers
	// (its emergency list, else default_region's) and startEmergencyCall
	// are never refused (startEmergencyCall only when it dials an
	// emergency number, under emergency_calls emergency_numbers). {} is
	// the default policy: enforced, refusing
	// premium_rate, shared_cost, personal_number and uan numbers. Default:
	// none, and no destination is judged.
	Destinations *ucwa.DestinationPolicy `json:"destinations,omitempty"`

	// Velocity limits: at most so many requests that dial, store or
	// forward to a phone number per period, per caller or another key,
	// checked all at once, all or none (see LimitConfig); a refusal names
	// the first, in the order given, that has no room. Emergency calls
	// (see Destinations for which startEmergencyCall is one) are never
	// limited. Default: none.
	Limits []*LimitConfig `json:"limits,omitempty"`

	// What guarded requests get while the audit trail fails: "open"
	// delivers them, and counts and logs each line lost; "closed"
	// answers them 503 ServiceUnavailable with Retry-After: 1, all but
	// emergency calls, from the first line a log of the trail fails to
	// write (a full disk), or once lines have been being written for a
	// second with none done (a write that hangs), until a line is written
	// again (the refusals have lines of their own, which tell). The
	// request whose line failed was delivered already; so were those in
	// flight meanwhile, and with the buffered writer those whose lines
	// its failed write held. Any letter case. "closed" needs a log that
	// takes the trail (the logger http.handlers.ucwa.audit, at info).
	// Default: "open".
	AuditOnError string `json:"audit_on_error,omitempty"`

	cleaner *ucwa.Cleaner
	logger  *zap.Logger
	// caddy_ucwa_edge_answers_total (see nameAnswer).
	answers *answerCounts
	// The audit trail (see writeAudit), and its logger for each operation
	// and for a near miss (see setAudit); where its write errors are
	// reported, and whether they close the edge (audit_on_error closed).
	audit         *zap.Logger
	auditTrail    *auditErrorOutput
	auditClosed   bool
	auditOps      map[*ucwa.Operation]*zap.Logger
	nearMissAudit *zap.Logger

	// The guarded operations, and those phone_audio disabled refuses.
	matcher       *ucwa.Matcher
	phoneAudioOff map[*ucwa.Operation]bool

	// Bearer tokens (nil verifier: jwt off).
	verifier    *bearer.Verifier[*grant]
	realmParam  string // `realm="..."`
	extraParams string // `, name="value"` for each other challenge parameter
	// retired: cleaned up by a reload, h's requests in flight are checked
	// against the deny lists of the handlers live now (see
	// barredSinceReload).
	retired *atomic.Bool

	// Front-end pools, provisioned, in the order they are tried.
	pools        []*pool
	poolSet      *PoolSet // cleaned up once the requests at the pools are done
	poolMetrics  *poolMetrics
	poolWarnings *poolWarnings
	// noPoolRetryAfter is the Retry-After of the 503 a request gets
	// when no pool can take it (see noPoolRetryAfter).
	noPoolRetryAfter time.Duration

	// Shared state (nil: none), idempotency (nil: off) and the limits.
	store       *storeUse
	idempotency *idempotency
	limits      []limit
	// limitClaims are the handler's limits as noted in limitClaims, to
	// let go of at Cleanup.
	limitClaims []limitClaimKey
	// issuersApart, when not nil, is set once another handler of the
	// config load verifies tokens into the same store data with another
	// first issuer (see claimFirstIssuer): every token without tid then
	// has its iss for a tenant. issuerClaim is the claim to let go of at
	// Cleanup.
	issuersApart *atomic.Bool
	issuerClaim  issuerClaimKey

	// The destination policy (nil: none).
	destinations *destinations
}

// CaddyModule returns the Caddy module information. Its receiver is a
// pointer so that calling it reads nothing of the handler: the pools'
// health checkers emit events naming the handler as their origin, and
// call it while Provision still sets the handler up.
func (*Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.ucwa",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision applies the defaults, checks the settings that need more than
// their own value to be judged (the operation table, numbers, bearer
// tokens, pools), loads the keys and sets up the pools. Every problem
// stops startup with a message that names the setting.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	var err error
	if h.answers, err = newAnswerCounts(registerer(ctx)); err != nil {
		return err
	}
	if h.MaxBodySize == 0 {
		h.MaxBodySize = DefaultMaxBodySize
	}
	if h.MaxBatchParts == 0 {
		h.MaxBatchParts = ucwa.DefaultMaxBatchParts
	}
	if h.MaxBatchOperations == 0 {
		h.MaxBatchOperations = DefaultMaxBatchOperations
	} else if h.MaxBatchOperations > h.MaxBatchParts {
		h.logger.Warn(batchOperationsUnreachableWarning,
			zap.Int("max_batch_operations", h.MaxBatchOperations), zap.Int("max_batch_parts", h.MaxBatchParts))
	}
	if err := h.provisionOperations(); err != nil {
		return err
	}
	if err := h.provisionAudit(ctx); err != nil {
		return err
	}
	format, err := ucwa.ParseNumberFormat(h.NumberFormat)
	if err != nil {
		return err
	}
	if h.cleaner, err = h.newCleaner(format); err != nil {
		return err
	}
	if err := h.provisionDestinations(ctx); err != nil {
		return err
	}
	if err := h.provisionAuth(ctx); err != nil {
		return err
	}
	if err := h.provisionStore(ctx); err != nil {
		return err
	}
	if err := h.provisionIdempotency(ctx); err != nil {
		return err
	}
	if err := h.provisionLimits(ctx); err != nil {
		return err
	}
	h.warnEmergencyCallsUnset()
	h.claimFirstIssuer(ctx)
	return h.provisionPools(ctx)
}

// newCleaner returns the Cleaner of the handler's numbers: numbers without
// a country code read in default_region, forwarded in format, with the
// emergency numbers of the destination policy (else default_region's)
// and its outside-line prefixes.
func (h *Handler) newCleaner(format ucwa.NumberFormat) (*ucwa.Cleaner, error) {
	if err := ucwa.CheckOutsideLine(h.outsideLine()); err != nil {
		return nil, fmt.Errorf("destinations: %w", err)
	}
	emergency := h.emergencyNumbers()
	numbers, err := ucwa.NewNumbers(h.DefaultRegion, format, emergency, h.outsideLine()...)
	if err == nil {
		return ucwa.CleanerFor(numbers), nil
	}
	// Which setting is wrong: a list of no numbers reads none of them.
	if _, regionErr := ucwa.NewNumbers(h.DefaultRegion, format, []string{}); regionErr == nil && emergency != nil {
		return nil, fmt.Errorf("destinations: emergency: %w", err)
	}
	return nil, fmt.Errorf("default_region: %w", err)
}

// The rules of max_body_size, max_batch_parts and max_batch_operations,
// for the Caddyfile's 0 and Validate alike.
var (
	errMaxBodySize        = errors.New("max_body_size must be between 1 byte and 1GiB")
	errMaxBatchParts      = errors.New("max_batch_parts must be at least 1")
	errMaxBatchOperations = errors.New("max_batch_operations must be at least 1")
)

// batchOperationsUnreachableWarning is the warning that max_batch_operations
// was set above max_batch_parts. The default (20) is not warned of: below
// 20 parts, every part may be a guarded request.
const batchOperationsUnreachableWarning = "max_batch_operations is above max_batch_parts: no batch can hold that many requests, " +
	"so max_batch_parts alone bounds a batch's requests to guarded operations"

// Validate checks the settings judged by their own value.
func (h *Handler) Validate() error {
	if h.MaxBodySize < 0 || h.MaxBodySize > maxMaxBodySize {
		return fmt.Errorf("%w: %d", errMaxBodySize, h.MaxBodySize)
	}
	if h.MaxBatchParts < 0 {
		return fmt.Errorf("%w: %d", errMaxBatchParts, h.MaxBatchParts)
	}
	if h.MaxBatchOperations < 0 {
		return fmt.Errorf("%w: %d", errMaxBatchOperations, h.MaxBatchOperations)
	}
	return nil
}

// Cleanup releases what Provision set up.
func (h *Handler) Cleanup() error {
	h.releaseLimitClaims()
	h.unlistLimits()
	h.releaseFirstIssuer()
	return h.cleanupAuth()
}

// Interface guards
var (
	_ caddy.Module                = (*Handler)(nil)
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
