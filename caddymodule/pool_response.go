package caddymodule

import (
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"

	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// poolResponseWriter passes a pool's answer to the client unchanged,
// except for a Location that points at a pool's host, the answer's own
// or a batch part's: that one gets the edge's scheme and host, so
// clients never learn internal host names (see rewriteLocation and
// holdBatch). It also records the final status written.
type poolResponseWriter struct {
	caddyhttp.ResponseWriterWrapper
	pool *pool
	// r is the client's request, whose replacer holds the host
	// reverse_proxy dialed: looked up only for a Location that names a
	// host.
	r *http.Request
	// The edge's scheme and host, as the client reached it.
	edgeScheme, edgeHost string
	// seen points at the upstreams the attempt's selection chose among
	// (attemptContext.seen), earlier holds those of the request's last
	// attempt at each pool tried before (nil for one whose selection
	// was not asked): a pool whose upstreams a dynamic source looks up
	// has, as its hosts, those its lookup found for the request (an srv
	// source's records name them, each dialed by name), which a
	// Location may name when another of them, or the other pool,
	// answers.
	seen    *reverseproxy.UpstreamPool
	earlier []reverseproxy.UpstreamPool
	// status is the final (non-1xx) status written; 0 before.
	status int
	// batch holds a batch's answer while it comes (see holdBatch): nil
	// for any other answer, and once it went out.
	batch *[]byte
	// stalled: the attempt ended for its pool's stallBound (see
	// pool.stallBound).
	stalled atomic.Bool
	// staleErr is the error of a round trip that met a kept-alive
	// connection the pool had closed, the request not having reached the
	// pool, which the pool's transport told reverse_proxy was cancelled
	// (see poolTransport.RoundTrip); nil for any other.
	staleErr error
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
	// reverse_proxy answers 499 for a round trip the transport said was
	// cancelled, and for the context the stall ended when the client went
	// away too (see poolTransport.RoundTrip): the edge answers for the
	// attempt instead.
	if status == statusClientClosed && (w.stalled.Load() || w.staleErr != nil) {
		return
	}
	if w.status == 0 && status >= http.StatusOK {
		w.status = status
		w.rewriteLocation()
		if w.holdBatch() {
			return
		}
	}
	w.ResponseWriterWrapper.WriteHeader(status)
}

func (w *poolResponseWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.batch != nil {
		if len(*w.batch)+len(b) <= maxBatchAnswer {
			*w.batch = append(*w.batch, b...)
			return len(b), nil
		}
		w.passBatch(false)
	}
	return w.ResponseWriterWrapper.Write(b)
}

// ReadFrom keeps io.Copy from writing past WriteHeader.
func (w *poolResponseWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.batch != nil {
		return io.Copy(struct{ io.Writer }{w}, r) // without ReadFrom, which would come back here
	}
	return w.ResponseWriterWrapper.ReadFrom(r)
}

// FlushError flushes the answer, but not a batch's while it is held: it
// goes out whole (see endBatch).
func (w *poolResponseWriter) FlushError() error {
	if w.batch != nil {
		return nil
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// maxBatchAnswer bounds the batch answer the edge holds to rewrite its
// parts' Locations; a longer one goes out as the pool wrote it.
const maxBatchAnswer = 1 << 20

// batchAnswers recycles the buffers of batch answers up to
// recycledBatchAnswer bytes.
var batchAnswers = sync.Pool{New: func() any { return new([]byte) }}

const recycledBatchAnswer = 64 << 10

// holdBatch starts holding the answer, once its header is final, when it
// is a batch's (multipart/batching, with a body of at most
// maxBatchAnswer and no trailers): its parts' Locations are rewritten
// as the answer's own are, once it came whole (see endBatch).
func (w *poolResponseWriter) holdBatch() bool {
	h := w.Header()
	if w.r.Method == http.MethodHead || w.status == http.StatusNoContent || w.status == http.StatusNotModified ||
		len(h["Trailer"]) > 0 || !isBatchAnswer(headerValue(h, "Content-Type")) {
		return false
	}
	if cl := headerValue(h, "Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err != nil || n < 0 || n > maxBatchAnswer {
			return false
		}
	}
	w.batch = batchAnswers.Get().(*[]byte)
	*w.batch = (*w.batch)[:0]
	return true
}

// endBatch sends the batch answer held, once it came whole, each part's
// Location that names a pool's host on the edge's scheme and host
// instead (see onEdge); an answer that does not read as a batch goes out
// as the pool wrote it.
func (w *poolResponseWriter) endBatch() {
	if w.batch == nil || w.clientGone() {
		return
	}
	body := *w.batch
	edited, changed, err := ucwa.EditBatchResponseHeader(headerValue(w.Header(), "Content-Type"), body, "Location", w.onEdge)
	if err == nil && changed {
		body = edited
		if _, ok := w.Header()["Content-Length"]; ok {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
	}
	w.ResponseWriterWrapper.WriteHeader(w.status)
	_, _ = w.ResponseWriterWrapper.Write(body)
	w.release()
}

// isBatchAnswer reports whether contentType names multipart/batching;
// whether the answer reads as a batch is for endBatch to find.
func isBatchAnswer(contentType string) bool {
	n := len(ucwa.BatchMediaType)
	return len(contentType) >= n && strings.EqualFold(contentType[:n], ucwa.BatchMediaType)
}

// passBatch sends the batch answer held as it came and passes the rest
// on as it comes: it grew past maxBatchAnswer or, with flush, reverse_proxy
// ended it short (and panics next), where the client gets what came.
func (w *poolResponseWriter) passBatch(flush bool) {
	if w.batch == nil || w.clientGone() {
		return
	}
	w.ResponseWriterWrapper.WriteHeader(w.status)
	_, _ = w.ResponseWriterWrapper.Write(*w.batch)
	w.release()
	if flush {
		_ = http.NewResponseController(w.ResponseWriter).Flush()
	}
}

// clientGone ends the batch answer held when the client went away while
// it came: it got none of it, and the edge answers 499 for it, as
// reverse_proxy does for a client gone before the answer (the status the
// audit trail and the access log record).
func (w *poolResponseWriter) clientGone() bool {
	if w.r.Context().Err() == nil {
		return false
	}
	w.status = statusClientClosed
	w.release()
	w.ResponseWriterWrapper.WriteHeader(statusClientClosed)
	return true
}

// release gives the batch buffer back, once what it held went out.
func (w *poolResponseWriter) release() {
	if cap(*w.batch) <= recycledBatchAnswer {
		batchAnswers.Put(w.batch)
	}
	w.batch = nil
}

// rewriteLocation gives every Location that names a pool's host the
// edge's scheme and host instead; one that names a pool's host and does
// not parse is dropped.
func (w *poolResponseWriter) rewriteLocation() {
	h := w.Header()
	locs := h["Location"]
	if len(locs) == 0 {
		return
	}
	// out holds the values once one changes: a pool's usual Location, a
	// path-absolute one, costs no allocation.
	var out []string
	changed := false
	for i, loc := range locs {
		edge, keep := w.onEdge(loc)
		if !changed && keep && edge == loc {
			continue
		}
		if !changed {
			changed, out = true, append(make([]string, 0, len(locs)), locs[:i]...)
		}
		if keep {
			out = append(out, edge)
		}
	}
	if !changed {
		return
	}
	if len(out) == 0 {
		delete(h, "Location")
		return
	}
	h["Location"] = out
	// Idempotency records the answer for repeats, which may reach the
	// edge by another name: it replays the Location on theirs.
	if rec, ok := w.ResponseWriter.(*answerRecorder); ok && len(out) == 1 {
		if origin := w.edgeScheme + "://" + w.edgeHost; strings.HasPrefix(out[0], origin) {
			rec.locationOnEdge(out[0], len(origin))
		}
	}
}

// onEdge returns loc, a pool's Location, on the edge's scheme and host
// when it names a pool's host, as a client reads it, and whether to keep
// it: not when it names a pool's host and does not parse. A client that
// follows a Location (a browser, any WHATWG URL reader) drops tabs and
// line breaks, trims spaces and controls, reads a backslash as a slash
// (/\pool/x is //pool/x) and decodes a host's escapes; a path-absolute
// Location, a pool's usual one, names no host.
func (w *poolResponseWriter) onEdge(loc string) (string, bool) {
	read := asClientReads.Replace(strings.TrimFunc(loc, func(r rune) bool { return r <= ' ' }))
	if read == "" || read[0] == '/' && (len(read) == 1 || read[1] != '/') {
		return loc, true
	}
	u, err := url.Parse(read)
	if err != nil {
		return loc, !w.namesOwnHost(read)
	}
	host := u.Hostname()
	if unescaped, err := url.PathUnescape(host); err == nil {
		host = unescaped
	}
	if u.Host == "" || !w.ownHost(host) {
		return loc, true
	}
	u.Scheme, u.Host, u.User = w.edgeScheme, w.edgeHost, nil
	return u.String(), true
}

// asClientReads drops the bytes a WHATWG URL reader drops and reads a
// backslash as it does (see onEdge), leaving every other byte as it is.
var asClientReads = strings.NewReplacer("\t", "", "\n", "", "\r", "", "\\", "/")

// namesOwnHost reports whether s, a Location that does not parse, holds
// the name of a pool's host anywhere, its escapes decoded where they
// decode.
func (w *poolResponseWriter) namesOwnHost(s string) bool {
	if unescaped, err := url.PathUnescape(s); err == nil {
		s = unescaped
	}
	s = strings.ToLower(s)
	for host := range w.pool.hosts {
		if strings.Contains(s, host) {
			return true
		}
	}
	dialed, _ := w.dialedHost()
	if dialed != "" && strings.Contains(s, strings.ToLower(strings.TrimSuffix(dialed, "."))) {
		return true
	}
	return w.lookedUp(func(host string) bool { return strings.Contains(s, host) })
}

// ownHost reports whether host is an upstream of one of the handler's
// pools, the one reverse_proxy dialed (which may come from a placeholder
// or a dynamic upstream source), or one a dynamic source's lookup found
// for the request (see lookedUp).
func (w *poolResponseWriter) ownHost(host string) bool {
	// A fully qualified name's trailing dot names the same host.
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if w.pool.hosts[host] {
		return true
	}
	dialed, _ := w.dialedHost()
	if dialed != "" && strings.EqualFold(strings.TrimSuffix(dialed, "."), host) {
		return true
	}
	return w.lookedUp(func(h string) bool { return h == host })
}

// lookedUp reports whether match holds for the host, lower case and
// without a trailing dot, of one of the upstreams the request's attempts
// chose among (see seen and earlier): a dynamic source's lookup for the
// request, or a pool's configured upstreams, already in pool.hosts.
func (w *poolResponseWriter) lookedUp(match func(host string) bool) bool {
	pools := w.earlier
	if w.seen != nil {
		pools = append(slices.Clip(pools), *w.seen)
	}
	for _, upstreams := range pools {
		for _, u := range upstreams {
			// An srv source's dial_network prefixes its network.
			addr, err := caddy.ParseNetworkAddress(u.Dial)
			if err != nil || addr.IsUnixNetwork() {
				continue
			}
			if host := strings.ToLower(strings.TrimSuffix(addr.Host, ".")); host != "" && match(host) {
				return true
			}
		}
	}
	return false
}

// dialedHost is the host reverse_proxy dialed for the request.
func (w *poolResponseWriter) dialedHost() (string, bool) {
	repl, ok := w.r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		return "", false
	}
	return repl.GetString("http.reverse_proxy.upstream.host")
}
