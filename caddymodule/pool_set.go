package caddymodule

import (
	"errors"
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

func init() {
	caddy.RegisterModule(new(PoolSet))
}

// PoolSet provisions the reverse proxies of a ucwa handler's pools, in a
// module of its own: the proxies then log, and are cleaned up with the
// config, as http.handlers.ucwa.pools. Provisioned in the handler's own
// name, each proxy's logger would carry every log that includes one of
// the handler's loggers (such as the audit trail,
// http.handlers.ucwa.audit), and every round trip would encode its
// request once more for each of them. The handler loads it once for all
// its pools, so that no two pools' contexts share an ancestry slot that
// a health checker reads while the next pool is loaded.
//
// Only the ucwa handler loads this module, with the proxies in the
// context; it has no configuration of its own.
type PoolSet struct {
	proxies []*reverseproxy.Handler
}

// namedProxy is a pool's proxy and the pool's name, for errors.
type namedProxy struct {
	name  string
	proxy *reverseproxy.Handler
}

// CaddyModule returns the Caddy module information.
func (*PoolSet) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.ucwa.pools", New: func() caddy.Module { return new(PoolSet) }}
}

// poolProxiesKey is the context key under which the ucwa handler hands
// its pools' proxies to the PoolSet it loads.
type poolProxiesKey struct{}

// loadPoolSet provisions proxies in a PoolSet loaded from ctx.
func loadPoolSet(ctx caddy.Context, proxies []namedProxy) error {
	_, err := ctx.WithValue(poolProxiesKey{}, proxies).LoadModuleByID("http.handlers.ucwa.pools", []byte("{}"))
	return err
}

// Provision provisions the proxies the ucwa handler put in ctx.
func (ps *PoolSet) Provision(ctx caddy.Context) error {
	proxies, _ := ctx.Value(poolProxiesKey{}).([]namedProxy)
	if len(proxies) == 0 {
		return errors.New("only the ucwa handler provisions its pools")
	}
	for _, p := range proxies {
		if err := loadPoolTransport(ctx, p.proxy); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		// Kept before Provision: a proxy that fails may have registered
		// upstream hosts, which Cleanup (called by Caddy on failure)
		// releases. Not before its transport loads: reverse_proxy's
		// Cleanup of a proxy whose Provision never ran panics.
		ps.proxies = append(ps.proxies, p.proxy)
		if err := p.proxy.Provision(ctx); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		makeProxyLoggerLazy(p.proxy)
	}
	return nil
}

// Cleanup stops what the proxies started (health checkers, connections).
func (ps *PoolSet) Cleanup() error {
	var errs []error
	for _, proxy := range ps.proxies {
		errs = append(errs, proxy.Cleanup())
	}
	return errors.Join(errs...)
}

// Interface guards
var (
	_ caddy.Provisioner  = (*PoolSet)(nil)
	_ caddy.CleanerUpper = (*PoolSet)(nil)
)
