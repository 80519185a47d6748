package caddymodule

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ucwa-edge/caddy-ucwa/internal/metrics"
	"github.com/ucwa-edge/caddy-ucwa/ucwa"
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

// answerCounts counts the answers the edge gives itself, to guarded
// requests and near misses: every refusal (the token's, the body's, the
// policy's, a limit's, idempotency's, the store's) and the 410, 502, 503
// and 504 it gives for the pools. Its labels are the answer's status and
// its UCWA code and subcode, as the access log's ucwa_error names them:
// a set fixed by the edge's code, never a value of the request.
type answerCounts struct {
	vec *prometheus.CounterVec
	mu  sync.RWMutex
	// The series of each answer given so far, so that counting one costs
	// no label lookup nor allocation.
	series map[answerKey]prometheus.Counter
}

type answerKey struct {
	status  int
	subcode string
}

// newAnswerCounts registers caddy_ucwa_edge_answers_total in reg (nil:
// none). The handlers of one configuration share it.
func newAnswerCounts(reg prometheus.Registerer) (*answerCounts, error) {
	vec, err := metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "ucwa", Name: "edge_answers_total",
		Help: "Answers the edge gave guarded UCWA requests and near misses itself, not a pool's: refusals at every step and the 410, 502, 503 and 504 it gives for the pools, by HTTP status and UCWA code/subcode.",
	}, []string{"status", "error"}))
	if err != nil {
		return nil, err
	}
	return &answerCounts{vec: vec, series: make(map[answerKey]prometheus.Counter)}, nil
}

// count counts e, an answer the edge gave itself.
func (a *answerCounts) count(e *ucwa.Error) {
	if a == nil {
		return
	}
	k := answerKey{e.Status, e.Subcode}
	a.mu.RLock()
	c, ok := a.series[k]
	a.mu.RUnlock()
	if !ok {
		c = a.vec.WithLabelValues(strconv.Itoa(e.Status), errorCode(e))
		a.mu.Lock()
		a.series[k] = c
		a.mu.Unlock()
	}
	c.Inc()
}
