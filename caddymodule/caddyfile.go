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
			if err != nil || size == 0 || size > 1<<30 {
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
