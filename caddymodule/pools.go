package caddymodule

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// poolsConfig is the front-end pool part of the handler's configuration.
// (Placeholder until pools land: accepted requests go to the next handler.)
type poolsConfig struct{}

func (p *poolsConfig) provisionPools(caddy.Context) error { return nil }

func (p *poolsConfig) cleanupPools() error { return nil }

// deliver sends the accepted, re-encoded request (body) on its way.
func (p *poolsConfig) deliver(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, body []byte, errFormat ucwa.Format) error {
	return next.ServeHTTP(w, r)
}

// unmarshalPoolsCaddyfile parses `primary` and `backup`; d is on the
// subdirective's name.
func (p *poolsConfig) unmarshalPoolsCaddyfile(d *caddyfile.Dispenser) error {
	return d.Errf("unrecognized subdirective %q", d.Val())
}
