package caddymodule

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzRewriteLocation: a pool's Location that names the pool's host (in
// any case, with or without a scheme or a trailing dot) goes out on the
// host and scheme the client reached the edge by, with no userinfo, and
// still names the same resource (path, query and fragment as the pool
// wrote them); any other Location goes out untouched.
func FuzzRewriteLocation(f *testing.F) {
	for _, seed := range []string{"/ucwa/v1/applications/1", "http://POOL.internal:4443/ucwa/v1/x?a=%2B1#f", "//pool.internal/x", "https://other.example/x",
		"http://user:pw@pool.internal/a%2Fb", "pool.internal/x", "http://pool.internal", "http://pool.internal?", "http://[::1]/x", "http:///x", "http://pool.internal./x"} {
		f.Add(seed, "edge.example:8443", false)
	}
	pl := &pool{hosts: map[string]bool{"pool.internal": true}}
	f.Fuzz(func(t *testing.T, loc, edgeHost string, secure bool) {
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
		w.init(rec, r, pl)
		w.Header()["Location"] = []string{loc}
		w.WriteHeader(http.StatusCreated)
		got := rec.Header().Get("Location")

		u, err := url.Parse(loc)
		pathAbsolute := strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, "//")
		if err != nil || pathAbsolute || !strings.EqualFold(strings.TrimSuffix(u.Hostname(), "."), "pool.internal") {
			if got != loc {
				t.Fatalf("Location %q went out as %q", loc, got)
			}
			return
		}
		out, err := url.Parse(got)
		if err != nil {
			t.Fatalf("Location %q went out as %q, which does not parse: %v", loc, got, err)
		}
		if out.Scheme != scheme || out.Host != edgeHost || out.User != nil {
			t.Fatalf("Location %q went out as %q, want %s://%s", loc, got, scheme, edgeHost)
		}
		if out.EscapedPath() != u.EscapedPath() || out.RawQuery != u.RawQuery || out.EscapedFragment() != u.EscapedFragment() {
			t.Fatalf("Location %q went out as %q, another resource", loc, got)
		}
	})
}
