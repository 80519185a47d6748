package caddymodule

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// unmarshalAuthCaddyfile parses the auth subdirectives (jwt, scopes,
// web_tickets, challenge); d is on the subdirective's name. The syntax is
// in (*Handler).UnmarshalCaddyfile's comment.
func (a *authConfig) unmarshalAuthCaddyfile(d *caddyfile.Dispenser) error {
	switch d.Val() {
	case "jwt":
		if a.JWT != nil {
			return d.Err("jwt: only one jwt setting is allowed")
		}
		a.JWT = new(JWTConfig)
		if d.NextArg() {
			if d.Val() != "off" || d.NextArg() {
				return d.Err("jwt: expected `jwt off` or a `jwt { ... }` block")
			}
			a.JWT.Off = true
			if d.NextBlock(d.Nesting()) {
				return d.Err("jwt: `jwt off` takes no block")
			}
			return nil
		}
		return a.JWT.unmarshalCaddyfile(d)
	case "scopes":
		a.Scopes = append(a.Scopes, d.RemainingArgs()...)
		if len(a.Scopes) == 0 {
			return d.ArgErr()
		}
	case "web_tickets":
		if !d.Args(&a.WebTickets) || d.NextArg() {
			return d.ArgErr()
		}
		if a.WebTickets != webTicketsReject && a.WebTickets != webTicketsForward {
			return d.Errf("web_tickets: %q is neither reject nor forward", a.WebTickets)
		}
	case "challenge":
		var name, value string
		if !d.Args(&name, &value) || d.NextArg() {
			return d.Err("challenge: expected `challenge <name> <value>`")
		}
		if a.Challenge == nil {
			a.Challenge = make(map[string]string)
		}
		if _, dup := a.Challenge[name]; dup {
			return d.Errf("challenge: %q is given twice", name)
		}
		a.Challenge[name] = value
	default:
		return d.Errf("unrecognized subdirective %q", d.Val())
	}
	return nil
}

// unmarshalCaddyfile parses the jwt block; d is on `jwt`.
func (c *JWTConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		option := d.Val()
		var one string
		single := func() error {
			if !d.Args(&one) || d.NextArg() {
				return d.ArgErr()
			}
			return nil
		}
		switch option {
		case "algorithms", "public_key_file", "issuer", "audience":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			switch option {
			case "algorithms":
				c.Algorithms = append(c.Algorithms, args...)
			case "public_key_file":
				c.PublicKeyFiles = append(c.PublicKeyFiles, args...)
			case "issuer":
				c.Issuers = append(c.Issuers, args...)
			case "audience":
				c.Audiences = append(c.Audiences, args...)
			}
		case "jwks_file":
			if err := single(); err != nil {
				return err
			}
			c.JWKSFile = one
		case "hmac_secret":
			if err := single(); err != nil {
				return err
			}
			c.HMACSecret = one
		case "jwks_url":
			args := d.RemainingArgs()
			if len(args) == 0 || len(args) > 2 {
				return d.ArgErr()
			}
			c.JWKSURL = args[0]
			if len(args) == 2 {
				refresh, err := caddy.ParseDuration(args[1])
				if err != nil || refresh <= 0 {
					return d.Errf("jwks_url: refresh %q is not a positive duration (such as 1h)", args[1])
				}
				c.JWKSRefresh = caddy.Duration(refresh)
			}
		case "leeway":
			if err := single(); err != nil {
				return err
			}
			leeway, err := caddy.ParseDuration(one)
			if err != nil || leeway < 0 {
				return d.Errf("leeway: %q is not a duration (such as 30s)", one)
			}
			c.Leeway = caddy.Duration(leeway)
		case "cache_size":
			if err := single(); err != nil {
				return err
			}
			size, err := strconv.Atoi(one)
			if err != nil || size == 0 {
				return d.Errf("cache_size: %q is not a number of tokens (or -1 for no cache)", one)
			}
			c.CacheSize = size
		default:
			return d.Errf("jwt: unrecognized option %q", option)
		}
	}
	return nil
}
