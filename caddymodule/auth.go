package caddymodule

import (
	"errors"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// authConfig is the bearer-token part of the handler's configuration.
// (Placeholder until the token check lands: only `jwt off` is accepted.)
type authConfig struct {
	// How bearer tokens are verified. Required: a configuration that means
	// to run without tokens says so with {"off": true} (Caddyfile: `jwt off`).
	JWT *JWTConfig `json:"jwt,omitempty"`
}

// JWTConfig configures bearer-token (JWT) verification.
type JWTConfig struct {
	// Turns token checks off. Only for setups where something else
	// authenticates every request. Default: false.
	Off bool `json:"off,omitempty"`
}

func (a *authConfig) provisionAuth(caddy.Context) error {
	if a.JWT == nil || !a.JWT.Off {
		return errors.New("ucwa: jwt is not configured; say `jwt off` to run without bearer tokens")
	}
	return nil
}

// authorize checks the bearer token. When it returns false it has written
// the answer (401 or 403) itself.
func (a *authConfig) authorize(http.ResponseWriter, *http.Request, ucwa.Format) bool {
	return true
}

// unmarshalAuthCaddyfile parses the auth subdirectives (jwt, scopes,
// web_tickets, challenge); d is on the subdirective's name.
func (a *authConfig) unmarshalAuthCaddyfile(d *caddyfile.Dispenser) error {
	switch d.Val() {
	case "jwt":
		if !d.NextArg() || d.Val() != "off" || d.NextArg() {
			return d.Err("jwt: only `jwt off` is supported so far")
		}
		a.JWT = &JWTConfig{Off: true}
		return nil
	}
	return d.Errf("unrecognized subdirective %q", d.Val())
}
