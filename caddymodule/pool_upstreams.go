package caddymodule

import (
	"net/http"
	"slices"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

// untriedSelection is a pool's provisioned selection policy (lb_policy)
// wrapped so that a request the pool's chosen upstream certainly did not
// get can go to another of the pool's upstreams, before the backup or
// the 410, and to none it was tried on already. A pool is several front
// ends, one of which may be down: reverse_proxy tries a request again
// only with lb_retries or lb_try_duration, and then by the same policy,
// which picks the same upstream again (first, or random half the time),
// and only after a dial error. The edge's own attempt at the pool (see
// Handler.deliver) knows more ways a request certainly did not reach an
// upstream (a TLS handshake that failed, a connection closed before the
// body went out), and tries the pool again after any of them while the
// pool has an available upstream no attempt of the request chose.
//
// The first attempt of a request chooses as the policy does; a later
// one, by the same policy, among the upstreams no earlier attempt of the
// request chose (by dial address: the upstreams of dynamic_upstreams are
// new values at every lookup). Each choice is recorded in the attempt's
// context (see attemptContext.picks).
type untriedSelection struct {
	reverseproxy.Selector
	// weights are those of a weighted_round_robin policy (weighted),
	// which go by an upstream's position in the pool: an upstream
	// without a weight above 0 takes no request, and a later attempt
	// chooses at random among the untried upstreams that have one.
	weights  []int
	weighted bool
}

// wrapSelection wraps proxy's provisioned selection policy in an
// untriedSelection, and returns it.
func wrapSelection(proxy *reverseproxy.Handler) untriedSelection {
	s := untriedSelection{Selector: proxy.LoadBalancing.SelectionPolicy}
	if w, ok := s.Selector.(*reverseproxy.WeightedRoundRobinSelection); ok {
		s.weights, s.weighted = w.Weights, true
	}
	proxy.LoadBalancing.SelectionPolicy = s
	return s
}

// Select chooses an upstream of pool for the request.
func (s untriedSelection) Select(pool reverseproxy.UpstreamPool, r *http.Request, w http.ResponseWriter) *reverseproxy.Upstream {
	c, _ := r.Context().Value(attemptContextKey{}).(*attemptContext)
	if c == nil {
		return s.Selector.Select(pool, r, w)
	}
	if r.Context().Err() != nil {
		// The client went away while the request waited for an upstream
		// (lb_try_duration): reverse_proxy waits between its tries on the
		// pool's context, not the request's, and would go on trying, the
		// request holding its operationId and limit events, until
		// lb_try_duration passed. An upstream it cannot dial ends its
		// tries at once, with nothing sent (see clientGoneUpstream).
		return clientGoneUpstream
	}
	c.seen = pool
	var u *reverseproxy.Upstream
	if len(c.tried) == 0 {
		u = s.Selector.Select(pool, r, w)
	} else {
		u = s.selectUntried(pool, c.tried, r, w)
	}
	if u != nil {
		c.picks = append(c.picks, u.Dial)
	}
	return u
}

// selectUntried chooses among the upstreams of pool not in tried.
func (s untriedSelection) selectUntried(pool reverseproxy.UpstreamPool, tried []string, r *http.Request, w http.ResponseWriter) *reverseproxy.Upstream {
	untried := make(reverseproxy.UpstreamPool, 0, len(pool))
	for i, u := range pool {
		if s.eligible(i, u, tried) {
			untried = append(untried, u)
		}
	}
	if len(untried) == 0 {
		// A policy that hashes may not expect an empty pool.
		return nil
	}
	if s.weighted {
		// Its weights would fall on other upstreams than they name.
		return reverseproxy.RandomSelection{}.Select(untried, r, w)
	}
	return s.Selector.Select(untried, r, w)
}

// eligible reports whether u, at position i of the pool, may take a
// request that was tried on the upstreams tried already.
func (s untriedSelection) eligible(i int, u *reverseproxy.Upstream, tried []string) bool {
	if s.weighted && (i >= len(s.weights) || s.weights[i] <= 0) {
		return false
	}
	return !slices.Contains(tried, u.Dial)
}

// untriedAvailable reports whether pool, the upstreams an attempt chose
// among, holds one that is available and that no attempt of the request
// chose (tried): the pool may take the request yet.
func (s untriedSelection) untriedAvailable(pool reverseproxy.UpstreamPool, tried []string) bool {
	for i, u := range pool {
		if s.eligible(i, u, tried) && u.Available() {
			return true
		}
	}
	return false
}

// clientGoneUpstream is the upstream a pool's selection hands
// reverse_proxy for a request whose client went away: its dial address
// names two ports, which reverse_proxy refuses before it dials or counts
// anything for the upstream's health, and it ends the request's tries
// with that error. The attempt then finds the client gone and the body
// unread: the request reached no pool.
var clientGoneUpstream = &reverseproxy.Upstream{Dial: "client-gone:1-2"}
