package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/netip"
	"net/textproto"
	"strconv"
	"time"

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
	expectAfterIdle := DefaultExpectContinueAfterIdle
	if h.ExpectContinueAfterIdle != nil {
		if expectAfterIdle = time.Duration(*h.ExpectContinueAfterIdle); expectAfterIdle < 0 {
			return fmt.Errorf("expect_continue_after_idle: %s is negative", expectAfterIdle)
		}
	}
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
	var proxies []namedProxy
	// The names each pool's dynamic upstream sources look up, read
	// before provisioning clears their configuration.
	var lookedUp [][]string
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
		if err := setPoolTransportDefaults(c.proxy); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		if plain := plainUpstreams(c.proxy); len(plain) > 0 {
			h.logger.Warn("pool gets requests over plain HTTP: bearer tokens and phone numbers cross the network unencrypted; "+
				"give its upstreams as https://host, or its transport http a tls block",
				zap.String("pool", c.name), zap.Strings("upstreams", plain))
		}
		proxies = append(proxies, namedProxy{c.name, c.proxy})
		lookedUp = append(lookedUp, sourceHosts(c.proxy.DynamicUpstreamsRaw))
	}
	if h.poolSet, err = loadPoolSet(ctx, proxies); err != nil {
		return err
	}
	h.noPoolRetryAfter = noPoolRetryAfter(proxies)
	h.poolWarnings = new(poolWarnings)
	h.poolWarnings.failover.now, h.poolWarnings.noPool.now = poolWarningClock, poolWarningClock
	// A Location on any pool's host is rewritten, whichever pool answers:
	// one naming the backup would send the client around the edge.
	hosts := map[string]bool{}
	for i, p := range proxies {
		pl := newPool(p.name, p.proxy, h.poolMetrics.requests, keepsExpect(p.proxy), expectAfterIdle)
		pl.set = h.poolSet
		maps.Copy(hosts, pl.hosts)
		for _, host := range lookedUp[i] {
			hosts[host] = true
		}
		h.pools = append(h.pools, pl)
	}
	for _, pl := range h.pools {
		pl.hosts = hosts
	}
	return nil
}

// poolWarnings are the warnings that a pool cannot take requests: while
// it cannot, every request finds it so, and the log would repeat the
// warning at each (throttled: the first, then once a minute at most, with
// the requests since). failover is the primary's, noPool that none can
// (410 without a backup, else 503). They name no client: the audit trail
// and the access log have each request.
type poolWarnings struct {
	failover, noPool throttledWarning
}

// poolWarningClock, when not nil, is the clock of the pool warnings of
// the handlers provisioned from then on: a test sets it before it loads a
// config, so that it drives the time between warnings.
var poolWarningClock func() time.Time

// plainUpstreams returns the upstreams of proxy, a pool, that its http
// transport reaches without TLS over the network: `primary fe1.contoso.com`
// (no scheme) is port 80, in plain HTTP, which a Skype for Business pool
// seldom means to be. Loopback, a Unix socket and another transport are
// not listed. Dynamic upstreams are not known at startup: their sources
// are listed instead (see plainSources).
func plainUpstreams(proxy *reverseproxy.Handler) []string {
	if proxy.TransportRaw != nil {
		var transport struct {
			Protocol string          `json:"protocol"`
			TLS      json.RawMessage `json:"tls"`
		}
		// A null tls is none, as Caddy's transport reads it.
		if json.Unmarshal(proxy.TransportRaw, &transport) != nil || transport.Protocol != "http" || transport.TLS != nil && string(transport.TLS) != "null" {
			return nil
		}
	}
	var plain []string
	for _, u := range proxy.Upstreams {
		addr, err := caddy.ParseNetworkAddress(u.Dial)
		if err != nil || addr.IsUnixNetwork() || addr.Host == "localhost" {
			continue
		}
		if ip, err := netip.ParseAddr(addr.Host); err == nil && ip.IsLoopback() {
			continue
		}
		plain = append(plain, u.Dial)
	}
	return append(plain, plainSources(proxy.DynamicUpstreamsRaw)...)
}

// checkPoolProxy refuses a pool with nowhere to send a request, and
// reverse_proxy features that break "never twice".
func checkPoolProxy(proxy *reverseproxy.Handler) error {
	if len(proxy.Upstreams) == 0 && proxy.DynamicUpstreamsRaw == nil {
		// reverse_proxy takes this for a config whose upstreams come
		// later; here every request would find no upstream available.
		return errors.New("no upstreams: name at least one host:port, or dynamic_upstreams")
	}
	for i, u := range proxy.Upstreams {
		// JSON's null: reverse_proxy would dereference it as it
		// provisions the pool, a panic at load.
		if u == nil {
			return fmt.Errorf("upstreams[%d]: missing", i)
		}
		// Without an address ({} or "dial": "") it would dial port 0 of
		// this machine at every request, and fail each over.
		if u.Dial == "" {
			return fmt.Errorf("upstreams[%d]: no dial address: name a host:port", i)
		}
	}
	if proxy.LoadBalancing != nil && len(proxy.LoadBalancing.RetryMatchRaw) > 0 {
		return errors.New("lb_retry_match (load_balancing.retry_match) could send a request that reached an upstream once more; leave it out: the edge tries another upstream by itself when none may have had the request")
	}
	if err := checkPoolBounds(proxy); err != nil {
		return err
	}
	if len(proxy.HandleResponse) > 0 {
		return errors.New("handle_response is not supported: the pool's answer passes back unchanged")
	}
	if proxy.Rewrite != nil {
		// It changes the method, path or query after the edge judged
		// them: a query of placeholders ({http.request.orig_uri}) brings
		// back the numbers as the client wrote them, before the edge
		// normalized them, and a path may name another operation.
		return errors.New("rewrite (and method) is not supported: a pool gets the request the edge judged; rewrite it before the edge, with Caddy's rewrite or uri directive")
	}
	if err := checkPoolHeaderUp(proxy); err != nil {
		return err
	}
	if proxy.RequestBuffers != 0 {
		// The edge holds the whole body already. reverse_proxy would read
		// it before the connection is had, hiding whether the pool asked
		// for it, and hands its buffer back to a pool of buffers as the
		// round trip returns, while the transport may still be writing it
		// to a pool that answered early. (poolTransport, which sends the
		// attempt's own reader, relies on it.)
		return errors.New("request_buffers is not supported: the edge holds the whole body already")
	}
	return nil
}

// poolBound is a number of a pool's load balancing or health checks,
// named as the Caddyfile and the JSON name it.
type poolBound struct {
	name     string
	value    int64
	duration bool
}

// minPoolDuration is the shortest duration a pool's load balancing,
// health checks and http transport take, other than 0 (unset).
const minPoolDuration = time.Millisecond

// checkPoolDuration refuses a duration of a pool that is neither 0
// (unset) nor at least minPoolDuration: a JSON number is nanoseconds,
// and "dial_timeout": 3, meant as 3s, is 3ns.
func checkPoolDuration(name string, d time.Duration) error {
	if d != 0 && d < minPoolDuration {
		return fmt.Errorf("%s must be 0 (unset) or at least %s (a JSON number is nanoseconds): %s", name, minPoolDuration, d)
	}
	return nil
}

// checkPoolBounds refuses the numbers of a pool's load balancing and
// health checks that reverse_proxy takes without a word though none
// means anything, and some break the pool: a negative count, a duration
// neither 0 nor at least minPoolDuration, a health check port past
// 65535. reverse_proxy reads a negative lb_retries or lb_try_duration as
// no bound at all, so that a request to a pool that cannot take it is
// tried again, without a pause, until its client goes away; its active
// health checker panics at a negative health_interval (a line in the
// log) and never checks, and hammers the pool at a health_interval of
// nanoseconds; a negative max_fails, a port no upstream can have, a
// health_timeout of nanoseconds (every check fails) or an
// unhealthy_latency of nanoseconds (every request fails) holds every
// upstream back, the pool taking no request.
func checkPoolBounds(proxy *reverseproxy.Handler) error {
	var bounds []poolBound
	if lb := proxy.LoadBalancing; lb != nil {
		bounds = append(bounds,
			poolBound{"lb_retries (load_balancing.retries)", int64(lb.Retries), false},
			poolBound{"lb_try_duration (load_balancing.try_duration)", int64(lb.TryDuration), true},
			poolBound{"lb_try_interval (load_balancing.try_interval)", int64(lb.TryInterval), true})
	}
	if hc := proxy.HealthChecks; hc != nil && hc.Active != nil {
		a := hc.Active
		if a.Port < 0 || a.Port > math.MaxUint16 {
			return fmt.Errorf("health_port (health_checks.active.port) must be between 1 and 65535: %d", a.Port)
		}
		bounds = append(bounds,
			poolBound{"health_interval (health_checks.active.interval)", int64(a.Interval), true},
			poolBound{"health_timeout (health_checks.active.timeout)", int64(a.Timeout), true})
	}
	if hc := proxy.HealthChecks; hc != nil && hc.Passive != nil {
		p := hc.Passive
		bounds = append(bounds,
			poolBound{"fail_duration (health_checks.passive.fail_duration)", int64(p.FailDuration), true},
			poolBound{"max_fails (health_checks.passive.max_fails)", int64(p.MaxFails), false},
			poolBound{"unhealthy_request_count (health_checks.passive.unhealthy_request_count)", int64(p.UnhealthyRequestCount), false},
			poolBound{"unhealthy_latency (health_checks.passive.unhealthy_latency)", int64(p.UnhealthyLatency), true})
	}
	for _, b := range bounds {
		if b.duration {
			if err := checkPoolDuration(b.name, time.Duration(b.value)); err != nil {
				return err
			}
		} else if b.value < 0 {
			return fmt.Errorf("%s must not be negative: %d", b.name, b.value)
		}
	}
	return nil
}

// checkPoolHeaderUp refuses a pool's header_up that adds or sets a
// header the edge refuses a client's guarded request for: a method
// override, a rewritten URL (X-Original-URL, X-Rewrite-URL), a web ticket,
// a body in Data, a character set for the query. The pool would read it
// beside the request the edge judged: header_up X-Original-URL
// {http.request.orig_uri} hands a pool that takes it for the request's
// URL the query as the client wrote it, before the edge normalized its
// numbers.
func checkPoolHeaderUp(proxy *reverseproxy.Handler) error {
	if proxy.Headers == nil || proxy.Headers.Request == nil {
		return nil
	}
	ops := proxy.Headers.Request
	for _, names := range []http.Header{ops.Add, ops.Set} {
		for name := range names {
			h := ucwa.ReadHeader(http.Header{textproto.CanonicalMIMEHeaderKey(name): {""}})
			if h.OverridesMethod() || h.RewritesURL() || h.HasWatched(ucwa.WebTicketHeader) ||
				h.HasWatched(ucwa.DataHeader) || h.HasWatched(ucwa.CharsetHeader) {
				return fmt.Errorf("header_up %s: the edge refuses it from a client, and a pool would read it beside the request the edge judged", name)
			}
		}
	}
	return nil
}

// Defaults of a pool's http transport, for settings its configuration
// leaves unset (or sets to 0).
const (
	// DefaultPoolKeepAlive is how long a connection to a pool is kept
	// while idle (transport http { keepalive }): below IIS's 120s
	// connection timeout, so that the edge, not the pool, closes an idle
	// connection, and a request does not meet one the pool is closing.
	DefaultPoolKeepAlive = 90 * time.Second

	// DefaultPoolExpectContinueTimeout is how long the body of a request
	// waits for the pool's 100 Continue before it is sent all the same
	// (transport http { expect_continue_timeout }).
	DefaultPoolExpectContinueTimeout = time.Second

	// (A pool's http transport speaks HTTP/1.1 unless it sets versions:
	// see setPoolTransportDefaults.)

	// DefaultPoolTLSHandshakeTimeout is how long a TLS handshake of a
	// pool's transport may take, with the pool or with an https forward
	// proxy (transport http { tls_timeout }), as in Go's default
	// transport: Caddy's sets none, and a pool (or proxy) that takes the
	// TCP connection but never answers the handshake (its TLS layer hung,
	// an appliance in front accepting for it) would hold the request,
	// which it never had and the backup could take, until the client
	// gives up, past any response_header_timeout (whose clock starts once
	// the request went out). See loadPoolTransport.
	DefaultPoolTLSHandshakeTimeout = 10 * time.Second

	// DefaultExpectContinueAfterIdle is how long a kept-alive connection
	// to a pool may have been idle and still carry a request without
	// `Expect: 100-continue` (expect_continue_after_idle).
	DefaultExpectContinueAfterIdle = time.Second
)

// setPoolTransportDefaults gives a pool's http transport (the one
// reverse_proxy uses when none is configured, too) the edge's defaults
// before it is provisioned: Caddy's own are a keep-alive as long as
// IIS's, no wait for 100 Continue, and HTTP/2 to a TLS pool that offers
// it, over which Go sends a request without a body again by itself after
// the pool refused its stream, which the edge stops once the request was
// written whole (see connTrace.stopResend), answering 502 a request the
// pool may well not have acted on. So versions defaults to HTTP/1.1
// alone. Other transports are left alone.
func setPoolTransportDefaults(proxy *reverseproxy.Handler) error {
	transport := map[string]json.RawMessage{"protocol": json.RawMessage(`"http"`)}
	if proxy.TransportRaw != nil {
		if err := json.Unmarshal(proxy.TransportRaw, &transport); err != nil {
			return fmt.Errorf("transport: %w", err)
		}
		var protocol string
		if _ = json.Unmarshal(transport["protocol"], &protocol); protocol != "http" {
			return nil
		}
	}
	var keepAlive map[string]json.RawMessage
	if raw := transport["keep_alive"]; raw != nil {
		if err := json.Unmarshal(raw, &keepAlive); err != nil {
			return fmt.Errorf("transport: keep_alive: %w", err)
		}
	}
	if keepAlive == nil {
		// Unset, or null, which Caddy reads as unset too.
		keepAlive = map[string]json.RawMessage{}
	}
	if err := checkTransportBounds(transport, keepAlive); err != nil {
		return err
	}
	for _, d := range []struct {
		object map[string]json.RawMessage
		name   string
		value  time.Duration
	}{
		{keepAlive, "idle_timeout", DefaultPoolKeepAlive},
		{transport, "expect_continue_timeout", DefaultPoolExpectContinueTimeout},
	} {
		var set caddy.Duration
		if raw := d.object[d.name]; raw != nil {
			if err := json.Unmarshal(raw, &set); err != nil {
				return fmt.Errorf("transport: %s: %w", d.name, err)
			}
		}
		if set == 0 {
			d.object[d.name] = json.RawMessage(strconv.FormatInt(int64(d.value), 10))
		}
	}
	// A versions that names none (null, []) is unset: Caddy's transport
	// would then speak HTTP/2 too.
	var versions []string
	if raw := transport["versions"]; raw != nil {
		if err := json.Unmarshal(raw, &versions); err != nil {
			return fmt.Errorf("transport: versions: %w", err)
		}
	}
	if len(versions) == 0 {
		transport["versions"] = json.RawMessage(`["1.1"]`)
	}
	var err error
	if transport["keep_alive"], err = json.Marshal(keepAlive); err != nil {
		return err
	}
	proxy.TransportRaw, err = json.Marshal(transport)
	return err
}

// checkTransportBounds refuses a timeout of a pool's http transport (in
// its JSON, and that of its keep_alive) that is neither 0 (unset) nor at
// least minPoolDuration, which Caddy's transport takes without a word: a
// negative dial_timeout or tls_timeout, or one of nanoseconds, fails
// every dial or handshake at once (the pool never takes a request); a
// response_header_timeout of nanoseconds answers 504 every request the
// pool took; a negative keepalive or expect_continue_timeout is not the
// edge's default (which 0 is), but connections kept however long they
// idle and bodies sent without waiting for the pool's 100 Continue. (A
// negative dial_fallback_delay or keepalive_interval turns that feature
// off, as Go documents.)
func checkTransportBounds(transport, keepAlive map[string]json.RawMessage) error {
	var tls map[string]json.RawMessage
	if raw := transport["tls"]; raw != nil {
		if err := json.Unmarshal(raw, &tls); err != nil {
			return fmt.Errorf("transport: tls: %w", err)
		}
	}
	for _, d := range []struct {
		object map[string]json.RawMessage
		// key in object; name the Caddyfile's, path the JSON's.
		key, name, path string
	}{
		{transport, "dial_timeout", "dial_timeout", "dial_timeout"},
		{tls, "handshake_timeout", "tls_timeout", "tls.handshake_timeout"},
		{transport, "response_header_timeout", "response_header_timeout", "response_header_timeout"},
		{transport, "expect_continue_timeout", "expect_continue_timeout", "expect_continue_timeout"},
		{transport, "read_timeout", "read_timeout", "read_timeout"},
		{transport, "write_timeout", "write_timeout", "write_timeout"},
		{keepAlive, "idle_timeout", "keepalive", "keep_alive.idle_timeout"},
	} {
		raw := d.object[d.key]
		if raw == nil {
			continue
		}
		var v caddy.Duration
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("transport: %s: %w", d.path, err)
		}
		if err := checkPoolDuration(d.name+" (transport."+d.path+")", time.Duration(v)); err != nil {
			return fmt.Errorf("transport http: %w", err)
		}
	}
	return nil
}

// deliver sends the accepted, re-encoded request (body) to the primary
// pool and, when the primary cannot take it, to the backup pool. A
// startPhoneAudio request that reached a pool may already have rung a
// phone, so a request goes out again (on another connection or upstream
// of the same pool, or to the backup) only when the pool certainly did
// not receive it whole, and never once it may have. Every outcome ends
// in an answer written here or by a pool, so it returns nil once pools
// are configured. Without pools it calls next.
func (h *Handler) deliver(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, body []byte, in *intake) error {
	in.delivering(h)
	if len(h.pools) == 0 {
		forwarded := new(bodyReader)
		forwarded.Reset(body)
		r.Body = forwarded
		err := next.ServeHTTP(w, r)
		in.nextReturned = true // it did not panic (abort)
		return err
	}
	if in.op.Body == ucwa.BatchBody {
		// A batch's answer is read for its parts' Locations (see
		// holdBatch): the pool is asked for it without the client's
		// Accept-Encoding (the proxy asks for gzip itself and decodes it).
		delete(r.Header, "Accept-Encoding")
	}
	// A pool may act on a request whose inputs are in its query as soon
	// as it has the head, before the body (see attemptState.unsent); a
	// request without a body is its head.
	headActs := len(body) > 0 && in.cleaned != nil && in.cleaned.InputsInQuery()
	// Why the last pool tried could not take the request, and its name;
	// seen, once one could not, the upstreams each one's last attempt
	// chose among (see upstreamOnlyFull).
	var unavailable error
	var unavailablePool string
	var seen []reverseproxy.UpstreamPool
	for i, pl := range h.pools {
		if i > 0 {
			h.poolMetrics.failovers.Inc()
			h.poolWarnings.failover.note(func(requests uint64) {
				h.logger.Warn("primary pool cannot take the request; failing over to the backup pool",
					zap.Uint64("requests", requests), zap.String("pool", unavailablePool), zap.Error(unavailable))
			})
		}
		// Set before the attempt, so that deferred header operations
		// see it when the pool's answer goes out.
		setServingPool(r, pl.placeholder, pl.logField)
		in.atPool(pl)
		// A Location naming an upstream an earlier pool's lookup found
		// names a pool's host (see poolResponseWriter.lookedUp).
		var earlier []reverseproxy.UpstreamPool
		if seen != nil {
			earlier = seen[:i]
		}
		res := h.attemptPool(pl, w, r, next, body, headActs, earlier)
		if res.outcome == outcomeUnavailable || res.outcome == outcomeStale {
			setServingPool(r, "", noPoolLogField)
			in.atPool(nil)
			unavailable, unavailablePool = res.err, pl.name
			if seen == nil {
				seen = make([]reverseproxy.UpstreamPool, len(h.pools))
			}
			seen[i] = res.seen
			continue
		}
		switch res.outcome {
		case outcomeClientGone:
			if res.unsent {
				// It reached no pool: released and refunded as a request
				// the client left before it was sent (see reachedNoPool).
				setServingPool(r, "", noPoolLogField)
				in.atPool(nil)
				in.goneUnsent = true
			}
			if c := h.logger.Check(zap.DebugLevel, "client went away; request not retried"); c != nil {
				c.Write(zap.String("pool", pl.name), zap.Bool("reached_no_pool", res.unsent))
			}
		case outcomeTimeout:
			h.logger.Error("pool timed out after the request may have reached it; not sent again",
				zap.String("pool", pl.name), zap.Error(res.err))
			h.answerForPools(w, in, errPoolTimeout)
		case outcomeFailed:
			h.logger.Error("pool failed after the request may have reached it; not sent again",
				zap.String("pool", pl.name), zap.Error(res.err))
			h.answerForPools(w, in, errPoolFailed)
		}
		return nil
	}

	if len(h.pools) == 1 {
		h.poolMetrics.cannotRedirect.Inc()
		h.poolWarnings.noPool.note(func(requests uint64) {
			h.logger.Warn("primary pool cannot take the request and no backup pool is configured: 410 CannotRedirect",
				zap.Uint64("requests", requests), zap.String("pool", unavailablePool), zap.Error(unavailable))
		})
		h.answerForPools(w, in, errCannotRedirect)
		return nil
	}
	h.poolWarnings.noPool.note(func(requests uint64) {
		h.logger.Error("no pool can take the request: 503", zap.Uint64("requests", requests),
			zap.String("pool", unavailablePool), zap.Error(unavailable))
	})
	retryAfter := h.noPoolRetryAfter
	if upstreamOnlyFull(h.pools, seen) {
		// A pool was busy rather than held back: it takes a request
		// again as soon as one of its own is done.
		retryAfter = time.Second
	}
	if h.poolSet.drained.released.Load() {
		// A reload unloaded this configuration: the retry reaches the
		// new one's pools, whose active checks start anew; the failures
		// this one's passive checks counted are forgotten once its pools
		// are cleaned up, when the last request that holds them (this
		// one, often) is done. How long the new pools hold an upstream
		// back is theirs to say.
		retryAfter = time.Second
	}
	setRetryAfter(w.Header(), retryAfter)
	h.answerForPools(w, in, errNoPool)
	return nil
}

// noPoolRetryAfter is the Retry-After of the 503 a request gets when no
// pool can take it, from the pools' provisioned proxies: how long until
// the pool whose health checks hold an upstream back the shortest has
// let one that came back be tried again. Passive checks forget each
// failure fail_duration after they counted it, so by then every failure
// counted up to the 503 is forgotten; active checks put an unhealthy
// upstream back after health_passes passing checks, health_interval
// apart (not for dynamic upstreams, which they do not check). A pool
// with both may be held back by either, which the edge cannot tell, and
// takes the longer. A pool with neither is tried again at the next
// request: what kept it from the request (connections refused, every
// upstream at its max_requests) says nothing of how long it lasts, so
// the answer says the shortest Retry-After, a second. The pools'
// configuration cannot tell how long ago a failure was counted or a
// check ran: a pool may come back sooner, not later, unless it fails
// again, or another reverse_proxy that names the same upstream (Caddy
// shares passive health state among them) counts a failure it forgets
// later, or a circuit breaker, which says nothing of how long it holds
// an upstream back, holds one. A request answered once a reload
// unloaded the configuration gets a second instead, and so does one a
// pool only too busy could not take (see upstreamOnlyFull).
func noPoolRetryAfter(proxies []namedProxy) time.Duration {
	soonest := time.Duration(math.MaxInt64)
	for _, p := range proxies {
		var held time.Duration
		if hc := p.proxy.HealthChecks; hc != nil {
			if hc.Passive != nil {
				held = time.Duration(hc.Passive.FailDuration)
			}
			// Provisioned: Interval and Passes hold their defaults (30s,
			// 1) when unset; a negative interval stops startup (see
			// checkPoolBounds).
			if a := hc.Active; a != nil && a.IsEnabled() && a.Interval > 0 && p.proxy.DynamicUpstreams == nil {
				// A product past a Duration's range stays at its largest.
				checks := time.Duration(math.MaxInt64)
				if interval := time.Duration(a.Interval); int64(a.Passes) <= math.MaxInt64/int64(interval) {
					checks = interval * time.Duration(a.Passes)
				}
				held = max(held, checks)
			}
		}
		soonest = min(soonest, held)
	}
	return max(soonest, time.Second)
}

// upstreamOnlyFull reports whether an upstream of the pools is at its
// max_requests (or unhealthy_request_count) and held back by none of
// their health checks (active, passive, a circuit breaker): what kept the
// request from it lasts until one of its requests is done, not the pools'
// configured hold (noPoolRetryAfter). seen[i], when not nil, holds the
// upstreams the request's last attempt at pools[i] chose among: a pool
// with dynamic_upstreams has its upstreams from its source's lookup, new
// values at each request (whose state reverse_proxy keeps by dial
// address), not from its configuration. The configured upstreams stand
// for a pool whose selection was not asked.
func upstreamOnlyFull(pools []*pool, seen []reverseproxy.UpstreamPool) bool {
	for i, pl := range pools {
		upstreams := pl.proxy.Upstreams
		if i < len(seen) && seen[i] != nil {
			upstreams = seen[i]
		}
		for _, u := range upstreams {
			if u.Full() && u.Healthy() {
				return true
			}
		}
	}
	return false
}

// attemptPool runs pl's attempts at the request until one did not end
// with the request certainly not received and nothing written, or the
// pool has nothing else to try it on, and returns how the last ended. A
// kept-alive connection that ended before the pool took the request (the
// pool closed it while it was idle) took nothing: the request goes out
// again on another connection of the pool, which the transport dials
// unless a live one is idle, and which may be the same upstream's. An
// upstream that certainly did not get it (no connection, or the request
// not received whole on a new one, or on maxStaleConns+1 kept-alive ones
// in a row) says nothing of the pool's other upstreams: the request goes
// to one of those no attempt chose, while one is available (see
// untriedSelection).
func (h *Handler) attemptPool(pl *pool, w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, body []byte, headActs bool, earlier []reverseproxy.UpstreamPool) attemptResult {
	// tried: the upstreams the attempts left out, not those of a stale
	// connection while the request may go out again on another.
	var tried []string
	for stale := 0; ; {
		res := h.attempt(pl, w, r, next, body, headActs, tried, earlier)
		switch {
		case res.outcome == outcomeStale && stale < maxStaleConns:
			stale++
			if c := h.logger.Check(zap.DebugLevel, "kept-alive pool connection ended before the pool took the request; trying another connection"); c != nil {
				c.Write(zap.String("pool", pl.name), zap.Int("stale_connections", stale), zap.Error(res.err))
			}
		case (res.outcome == outcomeUnavailable || res.outcome == outcomeStale) && res.untried:
			// The next upstream's kept-alive connections may have
			// been closed as the last one's were (an appliance that
			// drops idle flows drops them all): it meets as many.
			tried, stale = res.tried, 0
			if c := h.logger.Check(zap.DebugLevel, "pool upstream cannot take the request; trying another upstream of the pool"); c != nil {
				c.Write(zap.String("pool", pl.name), zap.Strings("tried", res.tried), zap.Error(res.err))
			}
		default:
			return res
		}
	}
}

// attempt runs pl's attempt at the request and counts its outcome. An
// attempt that does not return is a pool's answer that reverse_proxy
// could not pass on whole once it began to (the pool cut it short, or
// the client's connection failed under it): it panics with
// http.ErrAbortHandler, which has net/http cut the client's connection,
// and which goes on up from here, past deliverOnce, which keeps the
// request's keys reserved. On its way the attempt is counted, as
// cut_short, or client_gone when the client went away, and a cut-short
// answer is warned of: the pool had the request, and the client got
// part of its answer at most.
func (h *Handler) attempt(pl *pool, w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, body []byte, headActs bool, tried []string, earlier []reverseproxy.UpstreamPool) attemptResult {
	returned := false
	defer func() {
		if returned {
			return
		}
		if r.Context().Err() != nil {
			pl.requests[outcomeClientGone].Inc()
			if c := h.logger.Check(zap.DebugLevel, "client went away while the pool's answer went out"); c != nil {
				c.Write(zap.String("pool", pl.name))
			}
			return
		}
		pl.requests[outcomeCutShort].Inc()
		h.logger.Warn("pool answer cut short", zap.String("pool", pl.name), zap.String("remote_ip", remoteIP(r)))
	}()
	cookies := w.Header()["Set-Cookie"]
	res := pl.attempt(w, r, next, body, headActs, tried, earlier)
	returned = true
	pl.requests[res.outcome].Inc()
	if res.outcome == outcomeUnavailable || res.outcome == outcomeStale {
		// A pool's lb_policy cookie sets the cookie of the upstream it
		// chose before the round trip: the request goes on to another
		// connection or pool, or gets the edge's answer, and the client
		// must not be made to stick to an upstream that did not take it.
		if cookies == nil {
			delete(w.Header(), "Set-Cookie")
		} else {
			w.Header()["Set-Cookie"] = cookies
		}
	}
	return res
}

// answerForPools writes e, the answer the edge gives for the pools (none
// could take the request, or the one that took it failed), and names it
// for the access log (ucwa_error) and the audit trail (error), as it
// names its refusals. The warning or error logged for it says why.
func (h *Handler) answerForPools(w http.ResponseWriter, in *intake, e *ucwa.Error) {
	in.failure = e
	h.nameAnswer(in.r, e)
	e.Write(w, in.errFormat.get())
}

// maxStaleConns is how many kept-alive connections that ended before
// the pool took the request one request may meet on a pool before the
// upstream of the last counts as unable to take it: the request goes to
// another upstream of the pool, or, with none left, the pool counts as
// unable to take it. The transport closes each such connection, and
// net/http notices most others closing by themselves, so it bounds a
// burst of them, such as an upstream that restarted leaves behind; an
// upstream that closes more than this in a row behaves like one that
// cannot take requests.
const maxStaleConns = 8

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
	if extra := accessLogFields(r); extra != nil {
		extra.Set(field)
	}
}
