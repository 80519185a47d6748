// Package caddyucwa registers the caddy-ucwa edge with Caddy, so that
//
//	xcaddy build --with github.com/ucwa-edge/caddy-ucwa
//
// builds a Caddy with the `ucwa` directive (http.handlers.ucwa), the
// module that provisions its pools' reverse proxies
// (http.handlers.ucwa.pools), the stores it keeps its state in
// (http.handlers.ucwa.stores.*) and the log
// field filter that hides phone numbers in logged URIs
// (caddy.logging.encoders.filter.ucwa_numbers), and the log writer that
// writes the audit trail a buffer at a time (caddy.logging.writers.buffered),
// and the admin endpoint that shows a caller's budget of a velocity limit
// and makes it whole again (admin.api.ucwa, POST /ucwa/limits/show and
// /ucwa/limits/reset), with the command that calls it (caddy ucwa-limit).
// It registers nothing else: the pool emulator, which answers 201 to calls it never places,
// belongs in demos and tests only (cmd/caddy-ucwa).
package caddyucwa

import (
	_ "github.com/ucwa-edge/caddy-ucwa/caddymodule"
)
