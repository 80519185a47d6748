package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/golang-jwt/jwt/v5"
)

// provisionHandler builds a Handler from its JSON config, as Caddy does.
func provisionHandler(tb testing.TB, config string) *Handler {
	tb.Helper()
	h := new(Handler)
	if err := json.Unmarshal([]byte(config), h); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	tb.Cleanup(cancel)
	if err := h.Provision(ctx); err != nil {
		tb.Fatal(err)
	}
	if err := h.Validate(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = h.Cleanup() })
	return h
}

// poolStandIn reads the forwarded body and answers 201, as a pool does.
var poolStandIn = caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
	_, _ = io.Copy(io.Discard, r.Body)
	w.WriteHeader(http.StatusCreated)
	return nil
})

// passThrough is the baseline middleware: it only calls the next handler.
type passThrough struct{}

func (passThrough) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return next.ServeHTTP(w, r)
}

// BenchmarkHandler measures the whole handler in-process for the seed
// samples, beside a baseline that only builds the request and calls the
// next handler: the difference is the edge's own cost. "edge" runs with
// `jwt off`; "auth" runs the whole pipeline: an RS256 token (shaped like
// an Entra ID access token) checked against a jwks_file, issuer and
// audience, then parse, validate, normalize and re-encode. Every variant
// sends the same request, token included.
//
//	go test -run '^$' -bench BenchmarkHandler -benchmem ./caddymodule/
func BenchmarkHandler(b *testing.B) {
	k := getKeys(b)
	token := mint(b, jwt.SigningMethodRS256, k.rsa, "bench", entraClaims(time.Now()))
	jwksPath := writeFile(b, b.TempDir(), "jwks.json", jwksJSON(b, jwkOf(b, "bench", k.rsa)))
	edge := provisionHandler(b, `{"jwt":{"off":true},"default_region":"US"}`)
	auth := provisionHandler(b, fmt.Sprintf(`{"jwt":{"algorithms":["RS256"],"jwks_file":%q,
		"issuers":["https://issuer.example/"],"audiences":["api://ucwa"]},"default_region":"US"}`, jwksPath))
	for _, tc := range []struct{ name, contentType, body string }{
		{"JSON", "application/json", seedJSON},
		{"XML", "application/xml", seedXML},
	} {
		serve := func(b *testing.B, handler caddyhttp.MiddlewareHandler) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, startPath, strings.NewReader(tc.body))
				req.Header.Set("Content-Type", tc.contentType)
				req.Header.Set("Authorization", "Bearer "+token)
				req = req.WithContext(context.WithValue(req.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
				w := httptest.NewRecorder()
				if err := handler.ServeHTTP(w, req, poolStandIn); err != nil || w.Code != http.StatusCreated {
					b.Fatalf("status %d, error %v: %s", w.Code, err, w.Body)
				}
			}
		}
		b.Run(tc.name+"/baseline", func(b *testing.B) { serve(b, passThrough{}) })
		b.Run(tc.name+"/edge", func(b *testing.B) { serve(b, edge) })
		b.Run(tc.name+"/auth", func(b *testing.B) { serve(b, auth) })
	}
}
