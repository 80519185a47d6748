package caddymodule

import (
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"
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
//		max_body_size <size>
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
//		web_tickets reject|forward
//		challenge <name> <value>
//		primary <upstreams...> {
//			# any reverse_proxy subdirective (lb_policy, lb_try_duration,
//			# health_uri, health_interval, fail_duration, header_up,
//			# transport http { tls ... }, ...) except handle_response
//			# and lb_retry_match
//		}
//		backup <upstreams...> {
//			# the same as primary
//		}
//	}
//
// jwt is required: either `jwt off` (no token checks at all) or a block.
// In the block, algorithms is required (RS256 RS384 RS512 PS256 PS384
// PS512 ES256 ES384 ES512 EdDSA HS256 HS384 HS512; never none) and every
// listed algorithm needs a key source: jwks_url, jwks_file or
// public_key_file (repeatable) for the asymmetric ones, hmac_secret for
// HS*. jwks_url's refresh defaults to 1h. issuer and audience accept any
// one of their values. cache_size (default 10000; -1 for none) bounds the
// cache of verified tokens. scopes defaults to Conversations.Initiate
// Conversations.Receive, web_tickets to reject; challenge is repeatable and
// adds a parameter (such as authorization_uri, trusted_issuers, client_id
// or realm) to the 401's WWW-Authenticate: Bearer challenge.
//
// primary and backup take reverse_proxy's own arguments and block, parsed
// by reverse_proxy's Caddyfile parser. Without primary, accepted requests
// go to the next handler.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive's name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "paths":
			h.Paths = d.RemainingArgs()
			if len(h.Paths) == 0 {
				return d.ArgErr()
			}
		case "max_body_size":
			var arg string
			if !d.Args(&arg) || d.NextArg() {
				return d.ArgErr()
			}
			size, err := humanize.ParseBytes(arg)
			if err != nil || size == 0 || size > maxMaxBodySize {
				return d.Errf("max_body_size: %q is not a size between 1 byte and 1GiB (such as 64KiB)", arg)
			}
			h.MaxBodySize = int64(size)
		case "default_region":
			if !d.Args(&h.DefaultRegion) || d.NextArg() {
				return d.ArgErr()
			}
		case "number_format":
			if !d.Args(&h.NumberFormat) || d.NextArg() {
				return d.ArgErr()
			}
			if f := strings.ToLower(h.NumberFormat); f != "tel" && f != "e164" {
				return d.Errf("number_format: %q is neither tel nor e164", h.NumberFormat)
			}
		case "phone_audio":
			var arg string
			if !d.Args(&arg) || d.NextArg() {
				return d.ArgErr()
			}
			switch arg {
			case "enabled":
				h.DisablePhoneAudio = false
			case "disabled":
				h.DisablePhoneAudio = true
			default:
				return d.Errf("phone_audio: %q is neither enabled nor disabled", arg)
			}
		case "jwt", "scopes", "web_tickets", "challenge":
			if err := h.unmarshalAuthCaddyfile(d); err != nil {
				return err
			}
		case "primary", "backup":
			if err := h.unmarshalPoolsCaddyfile(d); err != nil {
				return err
			}
		default:
			return d.Errf("unrecognized subdirective %q", d.Val())
		}
	}
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
