// Command caddy-ucwa is Caddy with the standard modules and caddy-ucwa,
// so that the demo and the tests run with `go run` and no xcaddy:
//
//	go run ./cmd/caddy-ucwa run --config Caddyfile
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/ucwa-edge/caddy-ucwa"
)

func main() {
	caddycmd.Main()
}
