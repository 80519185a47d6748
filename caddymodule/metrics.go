package caddymodule

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ucwa-edge/caddy-ucwa/internal/metrics"
)

// poolMetrics are the Prometheus metrics of pool delivery.
type poolMetrics struct {
	// caddy_ucwa_pool_requests_total{pool, outcome}: requests handed to a
	// pool, one per attempt, by how that ended (answered, unavailable,
	// stale_connection, failed, timeout, client_gone, cut_short).
	requests *prometheus.CounterVec
	// caddy_ucwa_pool_failovers_total: requests handed to the backup
	// because the primary could not take them.
	failovers prometheus.Counter
	// caddy_ucwa_cannot_redirect_total: 410 CannotRedirect answers.
	cannotRedirect prometheus.Counter
}

// newPoolMetrics registers the metrics in Caddy's registry (nil: none).
// The handlers of one configuration share them.
func newPoolMetrics(reg prometheus.Registerer) (*poolMetrics, error) {
	const ns, sub = "caddy", "ucwa"
	m := &poolMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "pool_requests_total",
			Help: "Requests of guarded UCWA operations handed to a front-end pool, by pool and outcome.",
		}, []string{"pool", "outcome"}),
		failovers: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "pool_failovers_total",
			Help: "Requests of guarded UCWA operations handed to the backup pool because the primary could not take them.",
		}),
		cannotRedirect: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "cannot_redirect_total",
			Help: "Requests of guarded UCWA operations answered 410 CannotRedirect: the primary could not take them and no backup is configured.",
		}),
	}
	var err error
	if m.requests, err = metrics.Register(reg, m.requests); err != nil {
		return nil, err
	}
	if m.failovers, err = metrics.Register(reg, m.failovers); err != nil {
		return nil, err
	}
	if m.cannotRedirect, err = metrics.Register(reg, m.cannotRedirect); err != nil {
		return nil, err
	}
	return m, nil
}
