package caddymodule

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"github.com/golang-jwt/jwt/v5"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// benchContext is a module context of a running Caddy config (empty, or
// config), as reverse_proxy needs one to provision (it looks up the
// events app).
func benchContext(tb testing.TB, config ...string) caddy.Context {
	tb.Helper()
	cfg := `{}`
	if len(config) > 0 {
		cfg = config[0]
	}
	testkit.Start(tb, "json", cfg)
	ctx, cancel := caddy.NewContext(caddy.ActiveContext())
	tb.Cleanup(cancel)
	return ctx
}

// provision builds a module from its JSON config, as Caddy does.
func provision[M caddy.Provisioner](tb testing.TB, ctx caddy.Context, m M, config string) M {
	tb.Helper()
	if err := json.Unmarshal([]byte(config), m); err != nil {
		tb.Fatal(err)
	}
	if err := m.Provision(ctx); err != nil {
		tb.Fatal(err)
	}
	if v, ok := any(m).(caddy.Validator); ok {
		if err := v.Validate(); err != nil {
			tb.Fatal(err)
		}
	}
	if c, ok := any(m).(caddy.CleanerUpper); ok {
		tb.Cleanup(func() { _ = c.Cleanup() })
	}
	return m
}

// poolStandIn reads the forwarded body and answers 201, as a pool does.
var poolStandIn = caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
	_, _ = io.Copy(io.Discard, r.Body)
	w.WriteHeader(http.StatusCreated)
	return nil
})

// seedOperationID is the operationId of the seed samples.
const seedOperationID = "74cb7404e0a247d5a2d4eb0376a47dbf"

// passThrough is the baseline middleware: it only calls the next handler.
type passThrough struct{}

func (passThrough) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return next.ServeHTTP(w, r)
}

// BenchmarkHandler measures the whole handler in-process for the seed
// samples and a batch of ten GETs, beside a baseline that only builds the request and calls the
// next handler: the difference is the edge's own cost. "edge" runs with
// `jwt off`; "auth" runs the whole pipeline: an RS256 token (shaped like
// an Entra ID access token) checked against a jwks_file, issuer and
// audience, then parse, validate, normalize and re-encode. Every variant
// sends the same request, token and Accept header (as UCWA clients send
// it) included.
//
// "proxy" and "pool" go to a real loopback upstream: "proxy" is a plain
// reverse_proxy, "pool" the "auth" pipeline delivering to a primary pool
// (a reverse_proxy of its own, with the edge's failover bookkeeping).
// Their difference is what the edge adds to a proxied request. "idem" is
// "pool" with idempotency in the memory store; "guard" is "pool" with a
// realistic destination policy. "all" is the bench's all-features route:
// "pool" with idempotency in the memory store, the destination policy and
// one limit, loaded as Caddy loads it, so that its audit trail is the
// logger http.handlers.ucwa.audit, written to a file of its own as the
// README's audit example does (the other variants' audit lines go to the
// test's log). Every request has an operationId of its own.
//
//	go test -run '^$' -bench BenchmarkHandler -benchmem ./caddymodule/
func BenchmarkHandler(b *testing.B) {
	token, jwksPath := benchToken(b)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusCreated)
	}))
	b.Cleanup(upstream.Close)
	dial := strings.TrimPrefix(upstream.URL, "http://")
	auth := fmt.Sprintf(`"jwt":{"algorithms":["RS256"],"jwks_file":%q,
		"issuers":["https://issuer.example/"],"audiences":["api://ucwa"]},"default_region":"US"`, jwksPath)
	auditPath := filepath.Join(b.TempDir(), "audit.log")
	ctx := benchContext(b, fmt.Sprintf(`{"logging":{"logs":{
		"default":{"exclude":["http.handlers.ucwa.audit"]},
		"audit":{"include":["http.handlers.ucwa.audit"],"level":"INFO","encoder":{"format":"json"},
			"writer":{"output":"file","filename":%q,"roll_size_mb":1000,"roll_keep":2,"roll_compression":"zstd"}}}}}`,
		auditPath))
	const guard = `"destinations":{"allow_regions":["US","CA"],"deny":["+1900","+1976","+881","+882","+883"],"sip_domains":["contoso.com","*.contoso.com"]}`
	all, err := ctx.LoadModuleByID("http.handlers.ucwa", json.RawMessage(fmt.Sprintf(`{%s,"primary":{"upstreams":[{"dial":%q}]},
		"store":{"backend":"memory","max_entries":10000000,"max_entries_per_caller":10000000},"idempotency":{},%s,
		"limits":[{"name":"calls","count":1000000000,"per":"1h"}]}`, auth, dial, guard)))
	if err != nil {
		b.Fatal(err)
	}
	handlers := map[string]caddyhttp.MiddlewareHandler{
		"baseline": passThrough{},
		"edge":     provision(b, ctx, new(Handler), `{"jwt":{"off":true},"default_region":"US"}`),
		"auth":     provision(b, ctx, new(Handler), `{`+auth+`}`),
		"proxy":    provision(b, ctx, new(reverseproxy.Handler), fmt.Sprintf(`{"upstreams":[{"dial":%q}]}`, dial)),
		"pool":     provision(b, ctx, new(Handler), fmt.Sprintf(`{%s,"primary":{"upstreams":[{"dial":%q}]}}`, auth, dial)),
		// A store with room for every request of the runs: a full one
		// refuses new requests.
		"idem": provision(b, ctx, new(Handler), fmt.Sprintf(`{%s,"primary":{"upstreams":[{"dial":%q}]},
			"store":{"backend":"memory","max_entries":10000000},"idempotency":{}}`, auth, dial)),
		"guard": provision(b, ctx, new(Handler), fmt.Sprintf(`{%s,"primary":{"upstreams":[{"dial":%q}]},%s}`, auth, dial, guard)),
		"all":   all.(*Handler),
	}
	server := new(caddyhttp.Server)
	var gets []string
	for i := range 10 {
		gets = append(gets, fmt.Sprintf("GET /ucwa/v1/applications/192/people/contacts/%d HTTP/1.1\r\nHost: fe1.contoso.com\r\nAccept: application/json\r\n\r\n", i))
	}
	// Every request an operationId of its own, so that "idem" reserves
	// and records each one rather than replaying: counted across runs
	// (-count), which would otherwise repeat the first run's.
	n := 0
	for _, tc := range []struct{ name, path, contentType, body string }{
		{"JSON", startPath, "application/json", seedJSON},
		{"XML", startPath, "application/xml", seedXML},
		{"BatchOfTenGETs", "/ucwa/v1/applications/192/batch", batchType, batchBody(gets...)},
	} {
		for _, variant := range []string{"baseline", "edge", "auth", "proxy", "pool", "idem", "guard", "all"} {
			b.Run(tc.name+"/"+variant, func(b *testing.B) {
				handler := handlers[variant]
				prefix, suffix, _ := strings.Cut(tc.body, seedOperationID)
				b.ReportAllocs()
				for b.Loop() {
					n++
					body := tc.body
					if suffix != "" {
						body = fmt.Sprintf("%s%032x%s", prefix, n, suffix)
					}
					req := httptest.NewRequest(http.MethodPost, tc.path, strings.NewReader(body))
					// As a server's request has it: the edge sets it on the
					// request it forwards, and a header map that lacks it
					// grows there.
					req.Header.Set("Content-Length", strconv.Itoa(len(body)))
					req.Header.Set("Content-Type", tc.contentType)
					req.Header.Set("Accept", "application/vnd.microsoft.com.ucwa+json")
					req.Header.Set("Authorization", "Bearer "+token)
					w := httptest.NewRecorder()
					req = caddyhttp.PrepareRequest(req, caddy.NewReplacer(), w, server)
					if err := handler.ServeHTTP(w, req, poolStandIn); err != nil || w.Code != http.StatusCreated {
						b.Fatalf("status %d, error %v: %s", w.Code, err, w.Body)
					}
				}
			})
		}
	}
}

// benchToken is an RS256 token with Entra's claims, of key "bench", and
// the path of a JWKS file that holds the key.
func benchToken(b *testing.B) (token, jwksPath string) {
	k := testkit.Keys(b)
	token = testkit.Mint(b, jwt.SigningMethodRS256, k.RSA, "bench", testkit.EntraClaims(time.Now()))
	jwksPath = testkit.WriteFile(b, b.TempDir(), "jwks.json", testkit.JWKS(b, testkit.JWK(b, "bench", k.RSA)))
	return token, jwksPath
}
