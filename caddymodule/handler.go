// Package caddymodule is the Caddy glue of caddy-ucwa: the HTTP handler
// http.handlers.ucwa, which terminates UCWA startPhoneAudio requests at the
// edge, and its Caddyfile directive "ucwa".
package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

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
	// Before reverse_proxy, so that `ucwa` in front of a user's own
	// reverse_proxy needs no `order` option.
	httpcaddyfile.RegisterDirectiveOrder("ucwa", httpcaddyfile.Before, "reverse_proxy")
}

// DefaultPaths are the path suffixes the handler terminates by default:
// the reference's startPhoneAudio link and the spelling a real pool hands
// out for the same link.
var DefaultPaths = []string{"/communication/startPhoneAudio", "/communication/phoneAudioInvitations"}

// DefaultMaxBodySize is the default limit of a request body: 64 KiB.
const DefaultMaxBodySize = 64 << 10

// maxMaxBodySize is the largest max_body_size accepted: 1 GiB.
const maxMaxBodySize = 1 << 30

// Handler terminates UCWA startPhoneAudio (call-via-work) requests before
// they reach a Skype for Business front-end pool: it checks the bearer
// token, reads and validates the JSON or XML body, normalizes phone numbers
// to E.164 and delivers the cleaned request to the front-end pools (or the
// next handler). Bad input is answered with a UCWA error body. Requests on
// other paths pass to the next handler untouched.
type Handler struct {
	// Path suffixes that identify a startPhoneAudio request, matched
	// case-insensitively (pools run on IIS, which matches paths that way)
	// against the cleaned request path, after any prefix and application
	// id. Each starts with / and is clean (no trailing /, no . or ..
	// segments, ASCII). Default: ["/communication/startPhoneAudio",
	// "/communication/phoneAudioInvitations"].
	Paths []string `json:"paths,omitempty"`

	// The largest request body accepted, in bytes, at most 1 GiB; larger
	// bodies are answered 413 EntityTooLarge without reading past the
	// limit. Default: 65536 (64 KiB).
	MaxBodySize int64 `json:"max_body_size,omitempty"`

	// The ISO 3166-1 region (such as "US") of phone numbers written
	// without a country code. Default: none, and such numbers are answered
	// 400 NormalizationFailed.
	DefaultRegion string `json:"default_region,omitempty"`

	// How normalized phone numbers are forwarded: "tel" for
	// "tel:+14255551234" or "e164" for "+14255551234". Default: "tel".
	NumberFormat string `json:"number_format,omitempty"`

	// Answer every startPhoneAudio request 403 Forbidden ("Phone audio is
	// not listed in the capabilities"), for pools where call-via-work is
	// turned off. Default: false.
	DisablePhoneAudio bool `json:"disable_phone_audio,omitempty"`

	// How bearer tokens are verified: algorithms, key sources, issuers,
	// audiences, leeway and the verified-token cache (see bearer.Config
	// for its fields). Required: a configuration that means to run
	// without tokens says so with {"off": true} (Caddyfile: `jwt off`).
	JWT *bearer.Config `json:"jwt,omitempty"`

	// The scopes of which a token must grant at least one, read from its
	// `scp` and `scope` claims (space-separated strings) and its `roles`
	// claim (an array). Matched case-sensitively. Not with jwt off.
	// Default: ["Conversations.Initiate", "Conversations.Receive"].
	Scopes []string `json:"scopes,omitempty"`

	// What to do with on-premises web tickets (`Authorization: Bearer
	// cwt=...`), which only a pool can check: "reject" answers them 401;
	// "forward" passes them to the pool unchecked, with no scope check at
	// the edge. Not with jwt off. Default: "reject".
	WebTickets string `json:"web_tickets,omitempty"`

	// Extra parameters of the `WWW-Authenticate: Bearer` challenge sent
	// with every 401, such as authorization_uri, trusted_issuers or
	// client_id (the ones UCWA clients read). "realm" sets the realm;
	// error, error_description, error_uri and scope are the edge's own.
	// Values may use global placeholders such as {env.*}, replaced at
	// startup. Not with jwt off. Default: {"realm": "ucwa"}.
	Challenge map[string]string `json:"challenge,omitempty"`

	// The home front-end pool: the JSON of a Caddy reverse_proxy handler
	// (its fields, without the "handler" key), with its upstreams, load
	// balancing, health checks and transport. A pool may not set
	// load_balancing.retry_match nor handle_response: both could send an
	// accepted request a second time or answer in its place.
	// Default: none, and accepted requests go to the next handler.
	Primary *reverseproxy.Handler `json:"primary,omitempty"`

	// The backup pool for disaster recovery, in the same form as primary.
	// It receives a request only when the primary could not take it (no
	// upstream available, or no connection could be made to any upstream
	// it tried). Requires primary. Default: none, and a request the
	// primary cannot take is answered 410 Gone / CannotRedirect.
	Backup *reverseproxy.Handler `json:"backup,omitempty"`

	// The edge's shared state, which idempotency keeps: a module of the
	// namespace http.handlers.ucwa.stores chosen by its "backend" key,
	// {"backend": "memory", ...} for a store per edge (see MemoryStore) or
	// {"backend": "redis", ...} for one a fleet of edges shares (see
	// RedisStore). Handlers with the same store config share one store,
	// across config reloads too. Default: {"backend": "memory"} when
	// idempotency is on.
	StoreRaw json.RawMessage `json:"store,omitempty" caddy:"namespace=http.handlers.ucwa.stores inline_key=backend"`

	// Deliver a request with an operationId once across retries, pools
	// and edges (see IdempotencyConfig); {} turns it on with the default
	// window. Default: off.
	Idempotency *IdempotencyConfig `json:"idempotency,omitempty"`

	paths   []string
	cleaner *ucwa.Cleaner
	logger  *zap.Logger

	// Bearer tokens (nil verifier: jwt off).
	verifier       *bearer.Verifier[*grant]
	realmParam     string // `realm="..."`
	extraParams    string // `, name="value"` for each other challenge parameter
	scopeChallenge string // the 403's WWW-Authenticate value

	// Front-end pools, provisioned, in the order they are tried.
	pools       []*pool
	poolMetrics *poolMetrics

	// Shared state (nil: none) and idempotency (nil: off).
	store       *storeUse
	idempotency *idempotency
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
// their own value to be judged (numbers, bearer tokens, pools), loads the
// keys and sets up the pools. Every problem stops startup with a message
// that names the setting.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if h.MaxBodySize == 0 {
		h.MaxBodySize = DefaultMaxBodySize
	}
	h.paths = h.Paths
	if len(h.paths) == 0 {
		h.paths = DefaultPaths
	}
	format, err := ucwa.ParseNumberFormat(h.NumberFormat)
	if err != nil {
		return fmt.Errorf("number_format: %w", err)
	}
	if h.cleaner, err = ucwa.NewCleaner(h.DefaultRegion, format); err != nil {
		return fmt.Errorf("default_region: %w", err)
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
	return h.provisionPools(ctx)
}

// errMaxBodySize is the rule of max_body_size, for the Caddyfile's 0 and
// Validate alike.
var errMaxBodySize = errors.New("max_body_size must be between 1 byte and 1GiB")

// Validate checks the settings judged by their own value.
func (h *Handler) Validate() error {
	if h.MaxBodySize < 0 || h.MaxBodySize > maxMaxBodySize {
		return fmt.Errorf("%w: %d", errMaxBodySize, h.MaxBodySize)
	}
	for _, p := range h.paths {
		if !strings.HasPrefix(p, "/") || !strings.EqualFold(ucwa.CanonicalPath(p), p) {
			return fmt.Errorf("paths: %q must start with / and be clean (no trailing /, no . or .. segments, ASCII)", p)
		}
	}
	return nil
}

// Cleanup releases what Provision set up.
func (h *Handler) Cleanup() error {
	return errors.Join(h.cleanupAuth(), h.cleanupPools())
}

// Interface guards
var (
	_ caddy.Module                = (*Handler)(nil)
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
