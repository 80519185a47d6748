// Package caddyucwa registers the caddy-ucwa modules with Caddy, so that
//
//	xcaddy build --with github.com/ucwa-edge/caddy-ucwa
//
// builds a Caddy with the `ucwa` directive (http.handlers.ucwa).
package caddyucwa

import (
	_ "github.com/ucwa-edge/caddy-ucwa/caddymodule"
	_ "github.com/ucwa-edge/caddy-ucwa/emulator"
)
