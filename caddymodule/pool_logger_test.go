package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

func init() {
	caddy.RegisterModule(requestFieldsEncoder{})
}

// requestFieldsEncoded counts the "request" fields that loggers of
// requestFieldsEncoder logs encoded into a logger's context (With).
var requestFieldsEncoded atomic.Int64

// requestFieldsEncoder is Caddy's json format, counting each "request"
// field it encodes outside a line's own fields: those a logger's With
// gives it.
type requestFieldsEncoder struct{ zapcore.Encoder }

func (requestFieldsEncoder) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "caddy.logging.encoders.ucwa_test_request_fields",
		New: func() caddy.Module { return &requestFieldsEncoder{} },
	}
}

func (e *requestFieldsEncoder) Provision(caddy.Context) error {
	e.Encoder = zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	return nil
}

func (*requestFieldsEncoder) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	return nil
}

func (e *requestFieldsEncoder) Clone() zapcore.Encoder {
	return &requestFieldsEncoder{e.Encoder.Clone()}
}

func (e *requestFieldsEncoder) AddObject(key string, m zapcore.ObjectMarshaler) error {
	if key == "request" {
		requestFieldsEncoded.Add(1)
	}
	return e.Encoder.AddObject(key, m)
}

// TestPoolLoggerLazy: the pools' reverse proxies encode a request into
// their logger only for a line some log writes. At WARN, reverse_proxy's
// "upstream roundtrip" debug lines are written by no log, and no request
// is encoded for them; at DEBUG each round trip's line is written, with
// the request (credentials redacted) as reverse_proxy writes it.
func TestPoolLoggerLazy(t *testing.T) {
	if !proxyLoggerFound {
		t.Fatal("reverseproxy.Handler has no field logger of type *zap.Logger: the pools' proxies encode every request into their logger; see pool_logger.go")
	}
	const requests = 3
	for _, tc := range []struct {
		level   string
		encoded int64 // requests encoded into a logger's context
		lines   int   // "upstream roundtrip" lines written
	}{
		{level: "WARN", encoded: 0, lines: 0},
		{level: "DEBUG", encoded: requests, lines: requests},
	} {
		t.Run(tc.level, func(t *testing.T) {
			t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
			logFile := filepath.Join(t.TempDir(), "pools.log")
			pool := testkit.NewUpstream(t)
			e := startEdge(t, "caddyfile", fmt.Sprintf(`{
	log default {
		exclude http.handlers.ucwa.pools
	}
	log pools {
		include http.handlers.ucwa.pools
		output file %s
		format ucwa_test_request_fields
		level %s
	}
}
:EDGE_PORT {
	ucwa {
		`+opsJWT+`
		default_region US
		primary %s
	}
}`, logFile, tc.level, pool.Addr()))
			requestFieldsEncoded.Store(0)
			auth := callerBearer(t)
			for i := range requests {
				resp := e.send(testkit.Request{URL: startOpsPath, ContentType: "application/json",
					Body:   fmt.Sprintf(`{"to":"+14255551234","operationId":"lazy-%d"}`, i),
					Header: http.Header{"Authorization": {auth}}})
				if resp.Status != http.StatusCreated {
					t.Fatalf("request %d: %d %s", i, resp.Status, resp.Body)
				}
			}
			if got := requestFieldsEncoded.Load(); got != tc.encoded {
				t.Errorf("requests encoded into a logger's context: %d, want %d", got, tc.encoded)
			}
			b, err := os.ReadFile(logFile)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			lines := 0
			for line := range strings.Lines(string(b)) {
				var entry struct {
					Msg     string `json:"msg"`
					Request struct {
						Method  string              `json:"method"`
						URI     string              `json:"uri"`
						Headers map[string][]string `json:"headers"`
					} `json:"request"`
				}
				if err := json.Unmarshal([]byte(line), &entry); err != nil {
					t.Fatalf("%v: %s", err, line)
				}
				if entry.Msg != "upstream roundtrip" {
					continue
				}
				lines++
				if entry.Request.Method != http.MethodPost || entry.Request.URI != startOpsPath {
					t.Errorf("request of the line: %+v, want POST %s", entry.Request, startOpsPath)
				}
				if strings.Contains(line, auth[len("Bearer "):]) {
					t.Errorf("the token is in the line: %s", line)
				}
			}
			if lines != tc.lines {
				t.Errorf("upstream roundtrip lines: %d, want %d", lines, tc.lines)
			}
		})
	}
}

// TestPoolLogRedactsRequest: a pool that cuts its answer short makes
// reverse_proxy warn ("aborting with incomplete response") with the
// request it sent the pool, in Caddy's default log, which a site's log
// filters do not filter: its URI's and its Referer's property values are
// redacted, and no number of the request is in any line.
func TestPoolLogRedactsRequest(t *testing.T) {
	primary := newCutShortPool(t)
	e := startEdge(t, "caddyfile", fmt.Sprintf(`:EDGE_PORT {
	ucwa {
		jwt off
		default_region US
		primary %s
	}
}`, primary.Addr()))
	resp, err := testkit.Do(e.Client(), testkit.Request{Method: http.MethodPost, URL: e.url(startPath + "?to=%2B14255550123"),
		Header: http.Header{"Referer": {"https://app.contoso.com/call?to=4255550177"}}})
	if err == nil {
		t.Logf("answered %d", resp.Status)
	}
	line := e.Logs().Wait(t, `"msg":"aborting with incomplete response"`)
	if !strings.Contains(line, `"uri":"`+startPath+`?to=REDACTED"`) || !strings.Contains(line, `"Referer":["https://app.contoso.com/call?to=REDACTED"]`) {
		t.Errorf("the warning's request is not redacted: %s", line)
	}
	for _, number := range []string{"4255550123", "4255550177"} {
		if strings.Contains(e.Logs().String(), number) {
			t.Errorf("the log holds %s: %s", number, e.Logs().String())
		}
	}
}
