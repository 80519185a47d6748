package caddymodule

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// poolMetrics are the Prometheus metrics of pool delivery.
type poolMetrics struct {
	// caddy_ucwa_pool_requests_total{pool, outcome}: requests handed to a
	// pool, by how that ended (answered, unavailable, failed, timeout,
	// client_gone).
	requests *prometheus.CounterVec
	// caddy_ucwa_pool_failovers_total: requests handed to the backup
	// because the primary could not take them.
	failovers prometheus.Counter
	// caddy_ucwa_cannot_redirect_total: 410 CannotRedirect answers.
	cannotRedirect prometheus.Counter
}

// newPoolMetrics registers the metrics in Caddy's registry (nil: none).
// Two handlers of one configuration share them.
func newPoolMetrics(reg *prometheus.Registry) (*poolMetrics, error) {
	const ns, sub = "caddy", "ucwa"
	m := &poolMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "pool_requests_total",
			Help: "startPhoneAudio requests handed to a front-end pool, by pool and outcome.",
		}, []string{"pool", "outcome"}),
		failovers: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "pool_failovers_total",
			Help: "startPhoneAudio requests handed to the backup pool because the primary could not take them.",
		}),
		cannotRedirect: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "cannot_redirect_total",
			Help: "startPhoneAudio requests answered 410 CannotRedirect: the primary could not take them and no backup is configured.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.requests, err = register(reg, m.requests); err != nil {
		return nil, err
	}
	if m.failovers, err = register(reg, m.failovers); err != nil {
		return nil, err
	}
	if m.cannotRedirect, err = register(reg, m.cannotRedirect); err != nil {
		return nil, err
	}
	return m, nil
}

// tokenCacheMetrics are the Prometheus metrics of the verified-token cache.
type tokenCacheMetrics struct {
	// caddy_ucwa_token_cache_entries: verified tokens cached.
	entries prometheus.Gauge
	// caddy_ucwa_token_cache_lookups_total{result="hit"|"miss"}: bearer
	// tokens looked up in the cache; a miss is verified in full.
	hits, misses prometheus.Counter
}

// newTokenCacheMetrics registers the metrics in Caddy's registry (nil:
// none). The handlers of one configuration share them.
func newTokenCacheMetrics(reg *prometheus.Registry) (*tokenCacheMetrics, error) {
	const ns, sub = "caddy", "ucwa"
	entries := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: ns, Subsystem: sub, Name: "token_cache_entries",
		Help: "Verified bearer tokens held in the token cache.",
	})
	lookups := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Subsystem: sub, Name: "token_cache_lookups_total",
		Help: "Bearer tokens looked up in the token cache, by result (hit, or miss: verified in full).",
	}, []string{"result"})
	if reg != nil {
		var err error
		if entries, err = register(reg, entries); err != nil {
			return nil, err
		}
		if lookups, err = register(reg, lookups); err != nil {
			return nil, err
		}
	}
	return &tokenCacheMetrics{entries: entries, hits: lookups.WithLabelValues("hit"), misses: lookups.WithLabelValues("miss")}, nil
}

// register registers c, or returns the collector registered before under
// the same name.
func register[C prometheus.Collector](reg *prometheus.Registry, c C) (C, error) {
	err := reg.Register(c)
	var already prometheus.AlreadyRegisteredError
	if errors.As(err, &already) {
		if existing, ok := already.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}
