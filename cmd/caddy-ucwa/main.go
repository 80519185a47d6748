// Command caddy-ucwa is Caddy with the standard modules, the caddy-ucwa
// edge and its pool emulator, so that the demo and the tests run with
// `go run` and no xcaddy:
//
//	go run ./cmd/caddy-ucwa run --config Caddyfile
//
// It is for demos and tests: a production Caddy is built with the edge
// only (xcaddy build --with github.com/ucwa-edge/caddy-ucwa), without the
// emulator, which answers 201 to calls it never places.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/ucwa-edge/caddy-ucwa"
	_ "github.com/ucwa-edge/caddy-ucwa/emulator"
)

func main() {
	caddycmd.Main()
}
