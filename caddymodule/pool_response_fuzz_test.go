package caddymodule

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

// FuzzRewriteLocation: no Location goes out naming the pool's host as a
// client reads it (a browser drops tabs and line breaks, reads a
// backslash as a slash, decodes a host's escapes); one that names it and
// parses goes out on the host and scheme the client reached the edge
// by, with no userinfo, and still names the same resource (path, query
// and fragment as the pool wrote them); one that does not mention the
// pool's host at all goes out untouched. The pool's host is a configured
// upstream's, or that of an upstream a dynamic source's lookup found for
// the request (via 1: this attempt's, by name as an srv source's records
// give it; 2: an earlier pool's).
func FuzzRewriteLocation(f *testing.F) {
	for _, seed := range []string{"/ucwa/v1/applications/1", "http://POOL.internal:4443/ucwa/v1/x?a=%2B1#f", "//pool.internal/x", "https://other.example/x",
		"http://user:pw@pool.internal/a%2Fb", "pool.internal/x", "http://pool.internal", "http://pool.internal?", "http://[::1]/x", "http:///x", "http://pool.internal./x",
		"/\\pool.internal/x", "http:\\\\pool.internal\\x", "http://pool.internal/a%zz", "http://%70ool.internal/x", "http://pool.in\tternal/x"} {
		for via := range uint8(3) {
			f.Add(seed, "edge.example:8443", false, via)
		}
	}
	configured := &pool{hosts: map[string]bool{"pool.internal": true}}
	lookedUp := &pool{hosts: map[string]bool{}}
	f.Fuzz(func(t *testing.T, loc, edgeHost string, secure bool, via uint8) {
		if e, err := url.Parse("http://" + edgeHost + "/"); err != nil || e.Host != edgeHost || edgeHost == "" {
			return
		}
		r := httptest.NewRequest(http.MethodPost, "/ucwa/v1/applications", nil)
		r.Host = edgeHost
		scheme := "http"
		if secure {
			r.TLS, scheme = &tls.ConnectionState{}, "https"
		}
		rec := httptest.NewRecorder()
		var w poolResponseWriter
		switch via % 3 {
		case 0:
			w.init(rec, r, configured)
		case 1:
			w.init(rec, r, lookedUp)
			w.seen = &reverseproxy.UpstreamPool{{Dial: "pool.internal.:443"}}
		case 2:
			w.init(rec, r, lookedUp)
			w.seen = &reverseproxy.UpstreamPool{}
			w.earlier = []reverseproxy.UpstreamPool{nil, {{Dial: "tcp/POOL.internal:4443"}}}
		}
		w.Header()["Location"] = []string{loc}
		w.WriteHeader(http.StatusCreated)
		got, kept := rec.Header()["Location"]
		if kept && clientReadsHost(got[0]) == "pool.internal" {
			t.Fatalf("Location %q went out as %q, naming the pool", loc, got[0])
		}
		// As a client reads it: "po\tol" names the pool too.
		mentioned := strings.Contains(strings.ToLower(clientReads(loc)), "pool") || strings.Contains(loc, "%")
		if !mentioned && (!kept || got[0] != loc) {
			t.Fatalf("Location %q went out as %q (kept %v)", loc, got, kept)
		}
		if !kept || got[0] == loc {
			return
		}
		out, err := url.Parse(got[0])
		if err != nil {
			t.Fatalf("Location %q went out as %q, which does not parse: %v", loc, got[0], err)
		}
		if out.Scheme != scheme || out.Host != edgeHost || out.User != nil {
			t.Fatalf("Location %q went out as %q, want %s://%s", loc, got[0], scheme, edgeHost)
		}
		if u, err := url.Parse(clientReads(loc)); err == nil &&
			(out.EscapedPath() != u.EscapedPath() || out.RawQuery != u.RawQuery || out.EscapedFragment() != u.EscapedFragment()) {
			t.Fatalf("Location %q went out as %q, another resource", loc, got[0])
		}
	})
}

// clientReadsHost is the host a client that follows Location reads in
// loc, lower case, without a trailing dot: as a browser reads it, tabs
// and line breaks dropped, backslashes read as slashes, escapes decoded.
func clientReadsHost(loc string) string {
	u, err := url.Parse(clientReads(loc))
	if err != nil {
		return ""
	}
	host := u.Hostname()
	if h, err := url.PathUnescape(host); err == nil {
		host = h
	}
	return strings.ToLower(strings.TrimSuffix(host, "."))
}

// clientReads is loc as a browser reads it before it parses it: spaces
// and controls trimmed, tabs and line breaks dropped, backslashes read
// as slashes.
func clientReads(loc string) string {
	return strings.NewReplacer("\t", "", "\n", "", "\r", "", "\\", "/").Replace(strings.TrimFunc(loc, func(r rune) bool { return r <= ' ' }))
}
