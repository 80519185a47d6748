package bearer

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ucwa-edge/caddy-ucwa/internal/metrics"
)

// cacheMetrics are the Prometheus metrics of the verified-token cache.
type cacheMetrics struct {
	// caddy_ucwa_token_cache_entries: verified tokens cached.
	entries prometheus.Gauge
	// caddy_ucwa_token_cache_lookups_total{result="hit"|"miss"}: bearer
	// tokens looked up in the cache; a miss is verified in full.
	hits, misses prometheus.Counter
}

// newCacheMetrics registers the metrics in reg (nil: none). The
// verifiers of one configuration share them.
func newCacheMetrics(reg prometheus.Registerer) (*cacheMetrics, error) {
	const ns, sub = "caddy", "ucwa"
	entries, err := metrics.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: ns, Subsystem: sub, Name: "token_cache_entries",
		Help: "Verified bearer tokens held in the token cache.",
	}))
	if err != nil {
		return nil, err
	}
	lookups, err := metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Subsystem: sub, Name: "token_cache_lookups_total",
		Help: "Bearer tokens looked up in the token cache, by result (hit, or miss: verified in full).",
	}, []string{"result"}))
	if err != nil {
		return nil, err
	}
	return &cacheMetrics{entries: entries, hits: lookups.WithLabelValues("hit"), misses: lookups.WithLabelValues("miss")}, nil
}
