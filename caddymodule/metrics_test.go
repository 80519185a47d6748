package caddymodule

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestMetrics scrapes /metrics from a real Caddy's admin endpoint, with
// every feature that has a metric configured (the audit trail through a
// buffered log writer among them): each answer the edge gives
// itself is counted by status and UCWA code, with no value of the
// request in a label; the metrics registered are those the README lists,
// with the labels it gives; counters end in _total and every metric has
// a help text.
func TestMetrics(t *testing.T) {
	e := startGuardEdgeWith(t, fmt.Sprintf(`{
	log ucwa_audit {
		include http.handlers.ucwa.audit
		output buffered {
			output file %s
		}
		format json
	}
}`, filepath.Join(t.TempDir(), "audit.log")), "US", `store memory
		idempotency
		limit calls 100 per 1h
		destinations`)
	bearer := callerBearer(t)
	send := func(path, body, authorization string) {
		t.Helper()
		header := http.Header{}
		if authorization != "" {
			header.Set("Authorization", authorization)
		}
		e.postJSON(path, body, header)
	}
	send(startOpsPath, `{"to":"+14255551234"}`, "")                          // 401
	send(startOpsPath, `{"to":"+14255551234"}`, "Bearer not-a-token")        // 401
	send(startOpsPath+"/4255551234", `{"to":"+14255551234"}`, bearer)        // 404, a near miss
	send(startOpsPath, `{"to":"+19005551234","operationId":"op-1"}`, bearer) // 403, the policy
	send(startOpsPath, `{"to":"+1425555123x","operationId":"op-2"}`, bearer) // 400
	send(startOpsPath, `{"to":"+14255551234","operationId":"op-3"}`, bearer) // 201, the pool's
	send(startOpsPath, `{"to":"+14255550000","operationId":"op-3"}`, bearer) // op-3 again, another request
	exposition := e.Metrics()

	answers := map[string]float64{}
	for line := range strings.Lines(exposition) {
		if rest, ok := strings.CutPrefix(line, "caddy_ucwa_edge_answers_total{"); ok {
			labels, _, _ := strings.Cut(rest, "} ")
			answers[labels] = testkit.MetricValue(t, line, "caddy_ucwa_edge_answers_total{"+labels+"}")
		}
	}
	for labels, want := range map[string]float64{
		`error="Unauthorized",status="401"`:                2,
		`error="NotFound",status="404"`:                    1,
		`error="Forbidden/DialoutNotAllowed",status="403"`: 1,
	} {
		if answers[labels] != want {
			t.Errorf("caddy_ucwa_edge_answers_total{%s} = %v, want %v; all: %v", labels, answers[labels], want, answers)
		}
	}
	var total float64
	for labels, n := range answers {
		total += n
		for _, secret := range []string{"4255551234", "9005551234", "op-", callerOID, callerSub, callerTID} {
			if strings.Contains(labels, secret) {
				t.Errorf("a label holds a value of the request: {%s}", labels)
			}
		}
	}
	// The 400 and the answer to op-3's reuse are the edge's too, whatever
	// their codes; the 201 is the pool's.
	if total != 6 {
		t.Errorf("caddy_ucwa_edge_answers_total sums to %v, want 6: %v", total, answers)
	}

	// What is registered, and its labels.
	registered := map[string][]string{}
	types := map[string]string{}
	for line := range strings.Lines(exposition) {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" && strings.HasPrefix(f[2], "caddy_ucwa_") {
			types[f[2]] = f[3]
			registered[f[2]] = nil
		}
	}
	series := regexp.MustCompile(`^(caddy_ucwa_[a-z_]+)(?:\{(.*)\})? `)
	labelName := regexp.MustCompile(`([a-z_]+)="`)
	for line := range strings.Lines(exposition) {
		if m := series.FindStringSubmatch(line); m != nil {
			for _, l := range labelName.FindAllStringSubmatch(m[2], -1) {
				if !slices.Contains(registered[m[1]], l[1]) {
					registered[m[1]] = append(registered[m[1]], l[1])
				}
			}
		}
	}
	for name, typ := range types {
		if typ == "counter" != strings.HasSuffix(name, "_total") {
			t.Errorf("%s is a %s: only counters end in _total", name, typ)
		}
		if !strings.Contains(exposition, "# HELP "+name+" ") {
			t.Errorf("%s has no help text", name)
		}
	}

	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(readme), "\n## Metrics\n")
	section, _, _ = strings.Cut(section, "\n## ")
	documented := map[string][]string{}
	row := regexp.MustCompile("^\\| `(caddy_ucwa_[a-z_]+)` \\| ([a-z]+) \\| ?([^|]*?) ?\\|")
	values := regexp.MustCompile(`\([^)]*\)`)
	for line := range strings.Lines(section) {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		labels := []string{}
		for _, l := range regexp.MustCompile("(?:^|, )`([a-z_]+)`").FindAllStringSubmatch(values.ReplaceAllString(m[3], ""), -1) {
			labels = append(labels, l[1])
		}
		documented[m[1]] = labels
		if types[m[1]] != "" && types[m[1]] != m[2] {
			t.Errorf("README: %s is a %s, registered as a %s", m[1], m[2], types[m[1]])
		}
	}
	for name, labels := range registered {
		doc, ok := documented[name]
		if !ok {
			t.Errorf("%s is registered, and not in the README's list of metrics", name)
			continue
		}
		slices.Sort(labels)
		slices.Sort(doc)
		if !slices.Equal(labels, doc) {
			t.Errorf("%s has the labels %v, the README says %v", name, labels, doc)
		}
	}
	for name := range documented {
		if _, ok := registered[name]; !ok {
			t.Errorf("the README lists %s, which is not registered", name)
		}
	}
}

// TestMetricsAcrossReload: a config reload (a limit's count changed)
// registers every metric again, once, with no error, and the new
// config's handlers count in them: a refusal, a delivery and a limit's
// 429 after the reload each show in the new config's series, which start
// at 0 (the counts before the reload are the old config's).
func TestMetricsAcrossReload(t *testing.T) {
	t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
	pool := testkit.NewUpstream(t)
	config := func(calls int) string {
		return fmt.Sprintf(`:EDGE_PORT {
	ucwa {
		`+opsJWT+`
		default_region US
		store memory
		idempotency
		limit calls %d per 1h
		destinations
		primary %s
	}
}`, calls, pool.Addr())
	}
	e := startEdge(t, "caddyfile", config(100), testkit.WithAdmin())
	auth := http.Header{"Authorization": {callerBearer(t)}}
	refused := `caddy_ucwa_edge_answers_total{error="Forbidden/DialoutNotAllowed",status="403"}`
	registered := func() []string {
		var names []string
		for line := range strings.Lines(e.Metrics()) {
			if rest, ok := strings.CutPrefix(line, "# HELP caddy_ucwa_"); ok {
				name, _, _ := strings.Cut(rest, " ")
				names = append(names, name)
			}
		}
		return names
	}

	e.postJSON(startOpsPath, `{"to":"+19005551234","operationId":"before"}`, auth)
	if got := e.Metric(refused); got != 1 {
		t.Fatalf("before the reload: %s = %v, want 1", refused, got)
	}
	before := registered()
	e.Load("caddyfile", config(1))

	e.postJSON(startOpsPath, `{"to":"+19005551234","operationId":"after-1"}`, auth)
	for i, want := range []int{http.StatusCreated, http.StatusTooManyRequests} {
		body := fmt.Sprintf(`{"to":"+14255551234","operationId":"after-%d"}`, i+2)
		if got := e.postJSON(startOpsPath, body, auth).Status; got != want {
			t.Fatalf("call %d after the reload: status %d, want %d", i+1, got, want)
		}
	}
	// (edge_answers_total shows once the edge has given an answer, as
	// the README says: compared after the requests.)
	after := registered()
	if !slices.Equal(before, after) {
		t.Errorf("registered before the reload %v, after it %v", before, after)
	}
	for i, name := range after {
		if i > 0 && after[i-1] == name {
			t.Errorf("caddy_ucwa_%s is registered twice", name)
		}
	}
	for sample, want := range map[string]float64{
		refused: 1,
		`caddy_ucwa_pool_requests_total{outcome="answered",pool="primary"}`:                 1,
		`caddy_ucwa_limited_total{limit="calls"}`:                                           1,
		`caddy_ucwa_idempotency_total{result="reserved"}`:                                   2,
		`caddy_ucwa_destinations_total{decision="refused",rule="deny_types"}`:               1,
		`caddy_ucwa_edge_answers_total{error="TooManyRequests/LimitExceeded",status="429"}`: 1,
	} {
		if got := e.Metric(sample); got != want {
			t.Errorf("after the reload: %s = %v, want %v", sample, got, want)
		}
	}
}

// TestMetricsAfterRefusedReload pins what the README's Metrics section
// says of Caddy's admin endpoint: a reload that Caddy refuses while it
// provisions the new config (a typo in a region) leaves the running
// config serving, but /metrics then serves the refused config's
// registry, without the running edge's series, and its
// caddy_config_last_reload_successful at 0, until a config loads; a load
// of the running config again (caddy reload --force) brings them back.
// Should Caddy keep its endpoint on the running config's registry, this
// test fails: the README's warning can then go.
func TestMetricsAfterRefusedReload(t *testing.T) {
	t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
	pool := testkit.NewUpstream(t)
	config := func(region string) string {
		return fmt.Sprintf(`:EDGE_PORT {
	ucwa {
		%s
		default_region %s
		store memory
		idempotency
		primary %s
	}
}`, opsJWT, region, pool.Addr())
	}
	e := startEdge(t, "caddyfile", config("US"), testkit.WithAdmin())
	bearer := http.Header{"Authorization": {callerBearer(t)}}
	call := func(op string) {
		t.Helper()
		if resp := e.postJSON(startOpsPath, `{"to":"+14255551234","operationId":"`+op+`"}`, bearer); resp.Status != http.StatusCreated {
			t.Fatalf("a call: %d %s", resp.Status, resp.Body)
		}
	}
	const answered = `caddy_ucwa_pool_requests_total{outcome="answered",pool="primary"}`
	call("op-before")
	if got := e.Metric(answered); got != 1 {
		t.Fatalf("%s %v, want 1", answered, got)
	}

	if err := e.LoadRefused("caddyfile", config("USA")); !strings.Contains(err.Error(), "default_region") {
		t.Fatalf("the refused reload's error: %v", err)
	}
	call("op-after-refused") // the running config goes on
	exposition := e.Metrics()
	if strings.Contains(exposition, "caddy_ucwa_pool_requests_total") {
		t.Errorf("after a refused reload /metrics still shows the running edge's series: Caddy keeps its registry now, and the README's warning can go")
	}
	if got := testkit.MetricValue(t, exposition, "caddy_config_last_reload_successful"); got != 0 {
		t.Errorf("caddy_config_last_reload_successful %v after a refused reload, want 0", got)
	}

	e.Load("caddyfile", config("US")) // caddy reload --force
	call("op-after-forced")
	if got := e.Metric(answered); got != 1 {
		t.Errorf("%s %v after the running config was loaded again and a call, want 1", answered, got)
	}
	if got := e.Metric("caddy_config_last_reload_successful"); got != 1 {
		t.Errorf("caddy_config_last_reload_successful %v, want 1", got)
	}
}
