package caddyucwa

import (
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// TestRegistersOnlyTheEdge: a Caddy built with this package (xcaddy
// --with github.com/ucwa-edge/caddy-ucwa) has the edge, its log filter and
// its admin endpoint, and not the pool emulator, which answers 201 to calls it never places.
func TestRegistersOnlyTheEdge(t *testing.T) {
	if _, err := caddy.GetModule("http.handlers.ucwa"); err != nil {
		t.Errorf("the edge is not registered: %v", err)
	}
	if _, err := caddy.GetModule("caddy.logging.encoders.filter.ucwa_numbers"); err != nil {
		t.Errorf("the log filter is not registered: %v", err)
	}
	if _, err := caddy.GetModule("admin.api.ucwa"); err != nil {
		t.Errorf("the admin endpoint of the limits is not registered: %v", err)
	}
	if _, err := caddy.GetModule("http.handlers.ucwa_pool_emulator"); err == nil {
		t.Error("the pool emulator is registered in a production build")
	}
}
