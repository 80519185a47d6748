package caddymodule

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"

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
//
// A reload cleans the old config up while its requests are still at the
// pools, and the transport of a pool over HTTP/3 closes every connection
// it holds when cleaned up, which would fail each request in flight (502,
// though the pool may act on it): the set loads the transports in a
// context of its own and cleans them and the proxies up only once the
// handler's requests it took in are done (hold, unhold).
//
// A proxy waits between its tries at a pool (lb_try_duration,
// lb_try_interval) only while the context it was provisioned in lasts,
// and its health checkers run as long: in the config's context, a
// request waiting for its pool to come back would stop waiting at a
// reload (and get 410 or the backup at once), and nothing would tell the
// old config's proxies that the pool came back. The set provisions the
// proxies in a context of its own, which ends when it cleans them up.
type PoolSet struct {
	proxies []*reverseproxy.Handler

	// stopProxies ends the context the proxies were provisioned in:
	// their waits between tries and their health checkers.
	stopProxies context.CancelFunc

	// closeTransports cleans up the context the transports were loaded
	// in, and so the transports.
	closeTransports context.CancelFunc

	// drained cleans the set up once Caddy did (Cleanup) and the
	// handler's requests that may still use the pools are done.
	drained closeWhenDrained

	// ended holds the HTTP/2 connections of the requests that ended
	// once Caddy had cleaned the set up (see endedOn), which the set
	// closes with the transports.
	endedMu sync.Mutex
	ended   map[*tls.Conn]struct{}
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
func loadPoolSet(ctx caddy.Context, proxies []namedProxy) (*PoolSet, error) {
	mod, err := ctx.WithValue(poolProxiesKey{}, proxies).LoadModuleByID("http.handlers.ucwa.pools", []byte("{}"))
	if err != nil {
		return nil, err
	}
	return mod.(*PoolSet), nil
}

// Provision provisions the proxies the ucwa handler put in ctx.
func (ps *PoolSet) Provision(ctx caddy.Context) error {
	proxies, _ := ctx.Value(poolProxiesKey{}).([]namedProxy)
	if len(proxies) == 0 {
		return errors.New("only the ucwa handler provisions its pools")
	}
	ps.drained.close = ps.cleanup
	// The config's context with its values, its logs and its metrics,
	// but an end of its own.
	lasting := ctx
	lasting.Context, ps.stopProxies = context.WithCancel(context.WithoutCancel(ctx.Context))
	// Caddy cleans up the modules a context loaded when the config is
	// unloaded; those of this one, when the set says so.
	transports, closeTransports := caddy.NewContext(lasting)
	ps.closeTransports = closeTransports
	for _, p := range proxies {
		if err := loadPoolTransport(transports, p.proxy); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		// Kept before Provision: a proxy that fails may have registered
		// upstream hosts, which Cleanup (called by Caddy on failure)
		// releases. Not before its transport loads: reverse_proxy's
		// Cleanup of a proxy whose Provision never ran panics.
		ps.proxies = append(ps.proxies, p.proxy)
		if err := p.proxy.Provision(lasting); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		makeProxyLoggerLazy(p.proxy)
	}
	return nil
}

// Cleanup stops what the proxies started (health checkers, connections,
// upstream hosts) once no request of the handler uses them, now if none
// does.
func (ps *PoolSet) Cleanup() error { return ps.drained.release() }

// endedOn tells the set that a request of the handler ended on conn, an
// HTTP/2 connection of one of its pools, before the request lets go of
// the set (unhold). Closing the transports closes the connections that
// have no stream open, and an HTTP/2 connection may still have one: the
// stream of a request that ended just before, until net/http's goroutine
// that wrote the request forgets it (an HTTP/1.1 connection that turns
// idle after the transport was closed is closed by net/http itself), or
// a health check the set's end cancelled a moment before. Such a
// connection would stay open until its idle timeout: the set closes the
// connections of the requests that end once Caddy cleaned it up when it
// closes the transports (a request that ended just before Caddy did may
// still leave its connection open). No request of the set's is on them
// then.
func (ps *PoolSet) endedOn(conn *tls.Conn) {
	if !ps.drained.released.Load() {
		return
	}
	ps.endedMu.Lock()
	defer ps.endedMu.Unlock()
	if ps.ended == nil {
		ps.ended = make(map[*tls.Conn]struct{})
	}
	ps.ended[conn] = struct{}{}
}

// hold keeps the pools as they are for a request until it calls unhold,
// once it is done with them.
func (ps *PoolSet) hold() { ps.drained.hold() }

func (ps *PoolSet) unhold() { ps.drained.unhold() }

func (ps *PoolSet) cleanup() error {
	if ps.stopProxies != nil {
		ps.stopProxies()
	}
	var errs []error
	for _, proxy := range ps.proxies {
		errs = append(errs, proxy.Cleanup())
	}
	if ps.closeTransports != nil {
		ps.closeTransports()
	}
	ps.endedMu.Lock()
	for conn := range ps.ended {
		// Without TLS's close_notify, which could wait for the pool to
		// read it, with the last request's answer.
		_ = conn.NetConn().Close()
	}
	ps.ended = nil
	ps.endedMu.Unlock()
	return errors.Join(errs...)
}

// Interface guards
var (
	_ caddy.Provisioner  = (*PoolSet)(nil)
	_ caddy.CleanerUpper = (*PoolSet)(nil)
)
