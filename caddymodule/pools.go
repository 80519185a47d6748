package caddymodule

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"go.uber.org/zap"

	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// Names of the pools, as the {http.ucwa.pool} placeholder, the access
// log's ucwa_pool field and the metrics' pool label give them.
const (
	poolPrimary = "primary"
	poolBackup  = "backup"
)

// poolsConfig is the front-end pool part of the handler's configuration:
// where accepted requests are delivered, and how a request that the
// primary pool cannot take fails over to the backup pool.
//
// A startPhoneAudio request that reached a pool may already have rung a
// phone, so a request is handed to the backup only when the primary
// certainly did not receive a byte of it, and it is never sent twice.
type poolsConfig struct {
	// The home front-end pool: the JSON of a Caddy reverse_proxy handler
	// (its fields, without the "handler" key), with its upstreams, load
	// balancing, health checks and transport. A pool may not set
	// load_balancing.retry_match nor handle_response: both could send an
	// accepted request a second time or answer in its place.
	// Default: none, and accepted requests go to the next handler.
	Primary *reverseproxy.Handler `json:"primary,omitempty"`

	// The backup pool for disaster recovery, in the same form as primary.
	// It receives a request only when the primary could not take it (no
	// upstream available, or no connection could be made to any upstream
	// it tried). Requires primary. Default: none, and a request the
	// primary cannot take is answered 410 Gone / CannotRedirect.
	Backup *reverseproxy.Handler `json:"backup,omitempty"`

	pools   []*pool // provisioned, in the order they are tried
	metrics *poolMetrics
	plog    *zap.Logger
}

// provisionPools sets up the pools' reverse proxies and the metrics.
func (p *poolsConfig) provisionPools(ctx caddy.Context) error {
	if p.Primary == nil {
		if p.Backup != nil {
			return errors.New("ucwa: a backup pool needs a primary pool")
		}
		return nil
	}
	p.plog = ctx.Logger()
	var err error
	if p.metrics, err = newPoolMetrics(ctx.GetMetricsRegistry()); err != nil {
		return err
	}
	for _, c := range []struct {
		name  string
		proxy *reverseproxy.Handler
	}{{poolPrimary, p.Primary}, {poolBackup, p.Backup}} {
		if c.proxy == nil {
			continue
		}
		if err := checkPoolProxy(c.proxy); err != nil {
			return fmt.Errorf("ucwa: %s pool: %w", c.name, err)
		}
		if err := c.proxy.Provision(ctx); err != nil {
			// Provision may have registered upstream hosts before it failed,
			// and nothing else cleans up a proxy this handler provisions.
			return fmt.Errorf("ucwa: %s pool: %w", c.name, errors.Join(err, c.proxy.Cleanup()))
		}
		p.pools = append(p.pools, newPool(c.name, c.proxy, p.metrics.requests))
	}
	return nil
}

// checkPoolProxy refuses reverse_proxy features that break "never twice".
func checkPoolProxy(proxy *reverseproxy.Handler) error {
	if proxy.LoadBalancing != nil && len(proxy.LoadBalancing.RetryMatchRaw) > 0 {
		return errors.New("retry_match could send a request that reached an upstream once more")
	}
	if len(proxy.HandleResponse) > 0 {
		return errors.New("handle_response is not supported: the pool's answer passes back unchanged")
	}
	return nil
}

// cleanupPools stops what the pools' reverse proxies started (health
// checkers, connections).
func (p *poolsConfig) cleanupPools() error {
	var errs []error
	for _, pl := range p.pools {
		errs = append(errs, pl.proxy.Cleanup())
	}
	p.pools = nil
	return errors.Join(errs...)
}

// deliver sends the accepted, re-encoded request (body) to the primary
// pool and, when the primary cannot take it, to the backup pool. Every
// outcome ends in an answer written here or by a pool, so it returns nil
// once pools are configured. Without pools it calls next.
func (p *poolsConfig) deliver(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, body []byte, errFormat errorFormat) error {
	if len(p.pools) == 0 {
		return next.ServeHTTP(w, r)
	}
	var unavailable error // why the last pool could not take the request
	for i, pl := range p.pools {
		if i > 0 {
			p.metrics.failovers.Inc()
			p.plog.Warn("primary pool cannot take the request; failing over to the backup pool",
				zap.String("remote_ip", remoteIP(r)), zap.Error(unavailable))
		}
		// Set before the attempt, so that deferred header operations
		// see it when the pool's answer goes out.
		setServingPool(r, pl.placeholder, pl.logField)
		res := pl.attempt(w, r, next, body)
		pl.requests[res.outcome].Inc()
		if res.outcome == outcomeUnavailable {
			setServingPool(r, "", noPoolLogField)
			unavailable = res.err
			continue
		}
		switch res.outcome {
		case outcomeAnswered:
			if res.err != nil {
				p.plog.Warn("pool answer cut short", zap.String("pool", pl.name), zap.Error(res.err))
			}
		case outcomeClientGone:
			if c := p.plog.Check(zap.DebugLevel, "client went away; request not retried"); c != nil {
				c.Write(zap.String("pool", pl.name))
			}
		case outcomeTimeout:
			p.plog.Error("pool timed out after the request may have reached it; not sent again",
				zap.String("pool", pl.name), zap.Error(res.err))
			errPoolTimeout.Write(w, errFormat.get())
		case outcomeFailed:
			p.plog.Error("pool failed after the request may have reached it; not sent again",
				zap.String("pool", pl.name), zap.Error(res.err))
			errPoolFailed.Write(w, errFormat.get())
		}
		return nil
	}

	if len(p.pools) == 1 {
		p.metrics.cannotRedirect.Inc()
		p.plog.Warn("primary pool cannot take the request and no backup pool is configured: 410 CannotRedirect",
			zap.String("remote_ip", remoteIP(r)), zap.Error(unavailable))
		errCannotRedirect.Write(w, errFormat.get())
		return nil
	}
	p.plog.Error("no pool can take the request: 503", zap.String("remote_ip", remoteIP(r)), zap.Error(unavailable))
	errNoPool.Write(w, errFormat.get())
	return nil
}

// The answers the edge gives for the pools.
var (
	errCannotRedirect = ucwa.NewError(http.StatusGone, ucwa.SubcodeCannotRedirect, ucwa.MessageCannotRedirect)
	errNoPool         = ucwa.NewError(http.StatusServiceUnavailable, "",
		"No front-end pool can take the request now. It was not delivered and can be sent again later.")
	errPoolTimeout = ucwa.NewError(http.StatusGatewayTimeout, ucwa.SubcodeServiceTimeout,
		"The front-end pool did not answer in time. The request may have been carried out, so it was not sent again.")
	errPoolFailed = ucwa.NewError(http.StatusBadGateway, ucwa.SubcodeServiceFailure,
		"The front-end pool failed while handling the request. The request may have been carried out, so it was not sent again.")
)

// logFieldPool is the access log field naming the pool that served.
const logFieldPool = "ucwa_pool"

// noPoolLogField is ucwa_pool when no pool took the request.
var noPoolLogField = zap.String(logFieldPool, "")

// setServingPool records which pool the request went to ("" for none) in
// the {http.ucwa.pool} placeholder (name) and the access log's ucwa_pool
// field (field).
func setServingPool(r *http.Request, name any, field zap.Field) {
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set("http.ucwa.pool", name)
	}
	if extra, ok := r.Context().Value(caddyhttp.ExtraLogFieldsCtxKey).(*caddyhttp.ExtraLogFields); ok {
		extra.Set(field)
	}
}

// unmarshalPoolsCaddyfile parses `primary` and `backup`; d is on the
// subdirective's name. Its arguments and block are reverse_proxy's own,
// parsed by reverse_proxy's Caddyfile parser with the subdirective's name
// in the place of the directive's.
func (p *poolsConfig) unmarshalPoolsCaddyfile(d *caddyfile.Dispenser) error {
	name := d.Val()
	target := &p.Primary
	if name == poolBackup {
		target = &p.Backup
	}
	if *target != nil {
		return d.Errf("%s: only one %s pool may be configured", name, name)
	}
	segment := d.NewFromNextSegment()
	// reverse_proxy leaves handle_response blocks to its caller, which
	// needs the Caddyfile helper: refuse them rather than drop them
	// silently.
	for depth := 0; segment.Next(); {
		switch segment.Val() {
		case "{":
			depth++
		case "}":
			depth--
		case "handle_response":
			if depth == 1 {
				return segment.Errf("%s: handle_response is not supported in a pool", name)
			}
		}
	}
	segment.Reset()
	proxy := new(reverseproxy.Handler)
	if err := proxy.UnmarshalCaddyfile(segment); err != nil {
		return err
	}
	*target = proxy
	return nil
}
