package caddymodule

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// Names of the pools, as the {http.ucwa.pool} placeholder, the access
// log's ucwa_pool field and the metrics' pool label give them.
const (
	poolPrimary = "primary"
	poolBackup  = "backup"
)

// provisionPools sets up the pools' reverse proxies and the metrics.
func (h *Handler) provisionPools(ctx caddy.Context) error {
	if h.Primary == nil {
		if h.Backup != nil {
			return errors.New("backup: a backup pool needs a primary pool")
		}
		return nil
	}
	// A nil *Registry in a Registerer would not be nil.
	var registerer prometheus.Registerer
	if reg := ctx.GetMetricsRegistry(); reg != nil {
		registerer = reg
	}
	var err error
	if h.poolMetrics, err = newPoolMetrics(registerer); err != nil {
		return err
	}
	for _, c := range []struct {
		name  string
		proxy *reverseproxy.Handler
	}{{poolPrimary, h.Primary}, {poolBackup, h.Backup}} {
		if c.proxy == nil {
			continue
		}
		if err := checkPoolProxy(c.proxy); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		if err := c.proxy.Provision(ctx); err != nil {
			// Provision may have registered upstream hosts before it failed,
			// and nothing else cleans up a proxy this handler provisions.
			return fmt.Errorf("%s: %w", c.name, errors.Join(err, c.proxy.Cleanup()))
		}
		h.pools = append(h.pools, newPool(c.name, c.proxy, h.poolMetrics.requests))
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
func (h *Handler) cleanupPools() error {
	var errs []error
	for _, pl := range h.pools {
		errs = append(errs, pl.proxy.Cleanup())
	}
	h.pools = nil
	return errors.Join(errs...)
}

// deliver sends the accepted, re-encoded request (body) to the primary
// pool and, when the primary cannot take it, to the backup pool. A
// startPhoneAudio request that reached a pool may already have rung a
// phone, so a request goes to the backup only when the primary certainly
// did not receive a byte of it, and it is never sent twice. Every
// outcome ends in an answer written here or by a pool, so it returns nil
// once pools are configured. Without pools it calls next.
func (h *Handler) deliver(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, body []byte, errFormat errorFormat) error {
	if len(h.pools) == 0 {
		return next.ServeHTTP(w, r)
	}
	var unavailable error // why the last pool could not take the request
	for i, pl := range h.pools {
		if i > 0 {
			h.poolMetrics.failovers.Inc()
			h.logger.Warn("primary pool cannot take the request; failing over to the backup pool",
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
				h.logger.Warn("pool answer cut short", zap.String("pool", pl.name), zap.Error(res.err))
			}
		case outcomeClientGone:
			if c := h.logger.Check(zap.DebugLevel, "client went away; request not retried"); c != nil {
				c.Write(zap.String("pool", pl.name))
			}
		case outcomeTimeout:
			h.logger.Error("pool timed out after the request may have reached it; not sent again",
				zap.String("pool", pl.name), zap.Error(res.err))
			errPoolTimeout.Write(w, errFormat.get())
		case outcomeFailed:
			h.logger.Error("pool failed after the request may have reached it; not sent again",
				zap.String("pool", pl.name), zap.Error(res.err))
			errPoolFailed.Write(w, errFormat.get())
		}
		return nil
	}

	if len(h.pools) == 1 {
		h.poolMetrics.cannotRedirect.Inc()
		h.logger.Warn("primary pool cannot take the request and no backup pool is configured: 410 CannotRedirect",
			zap.String("remote_ip", remoteIP(r)), zap.Error(unavailable))
		errCannotRedirect.Write(w, errFormat.get())
		return nil
	}
	h.logger.Error("no pool can take the request: 503", zap.String("remote_ip", remoteIP(r)), zap.Error(unavailable))
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
