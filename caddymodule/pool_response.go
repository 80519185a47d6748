package caddymodule

import (
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// poolResponseWriter passes a pool's answer to the client unchanged,
// except for an absolute Location that points at the pool's own host:
// that one gets the edge's scheme and host, so clients never learn
// internal host names. It also records the final status written.
type poolResponseWriter struct {
	caddyhttp.ResponseWriterWrapper
	pool *pool
	// r is the client's request, whose replacer holds the host
	// reverse_proxy dialed: looked up only for a Location that names a
	// host.
	r *http.Request
	// The edge's scheme and host, as the client reached it.
	edgeScheme, edgeHost string
	// status is the final (non-1xx) status written; 0 before.
	status int
}

// init sets w up to pass the pool's answer to r on to the client.
func (w *poolResponseWriter) init(rw http.ResponseWriter, r *http.Request, pl *pool) {
	scheme, host := edgeOrigin(r)
	w.ResponseWriterWrapper.ResponseWriter = rw
	w.pool, w.r, w.edgeScheme, w.edgeHost = pl, r, scheme, host
}

// edgeOrigin is the scheme and host by which the client of r reached
// the edge.
func edgeOrigin(r *http.Request) (scheme, host string) {
	if r.TLS != nil {
		return "https", r.Host
	}
	return "http", r.Host
}

// WriteHeader rewrites Location before the final status goes out. The
// pool's informational answers are dropped: a 100 Continue answers the
// edge's own Expect (see deliver), not the client, whose body the edge
// has read already; a 102 or 103 speaks of an attempt that may yet end
// in another pool's answer or the edge's own, and its headers (a 103's
// Link) may name the pool's hosts, which only Location is rewritten
// from. A 101 is left to reverse_proxy (see attempt).
func (w *poolResponseWriter) WriteHeader(status int) {
	if status < http.StatusOK && status != http.StatusSwitchingProtocols {
		return
	}
	if w.status == 0 && status >= http.StatusOK {
		w.status = status
		w.rewriteLocation()
	}
	w.ResponseWriterWrapper.WriteHeader(status)
}

func (w *poolResponseWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriterWrapper.Write(b)
}

// ReadFrom keeps io.Copy from writing past WriteHeader.
func (w *poolResponseWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriterWrapper.ReadFrom(r)
}

func (w *poolResponseWriter) rewriteLocation() {
	loc := headerValue(w.Header(), "Location")
	// A path-absolute Location, a pool's usual one, names no host: only
	// one with a scheme or starting with "//" may name the pool's.
	if loc == "" || loc[0] == '/' && (len(loc) == 1 || loc[1] != '/') {
		return
	}
	u, err := url.Parse(loc)
	if err != nil || u.Host == "" || !w.ownHost(u.Hostname()) {
		return
	}
	u.Scheme, u.Host, u.User = w.edgeScheme, w.edgeHost, nil
	rewritten := u.String()
	w.Header().Set("Location", rewritten)
	// Idempotency records the answer for repeats, which may reach the
	// edge by another name: it replays the Location on theirs.
	if rec, ok := w.ResponseWriter.(*answerRecorder); ok {
		if origin := w.edgeScheme + "://" + w.edgeHost; strings.HasPrefix(rewritten, origin) {
			rec.locationOnEdge(rewritten, len(origin))
		}
	}
}

// ownHost reports whether host is one of the pool's upstreams, or the
// one reverse_proxy dialed (which may come from a placeholder or a
// dynamic upstream source).
func (w *poolResponseWriter) ownHost(host string) bool {
	// A fully qualified name's trailing dot names the same host.
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if w.pool.hosts[host] {
		return true
	}
	repl, ok := w.r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		return false
	}
	dialed, _ := repl.GetString("http.reverse_proxy.upstream.host")
	return dialed != "" && strings.EqualFold(strings.TrimSuffix(dialed, "."), host)
}
