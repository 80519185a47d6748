package caddymodule

import (
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestRedisNoShareWarning: idempotency on a Redis store without
// max_entries_per_caller is warned of at startup, once, naming no value
// of the config; with a share, with a memory store, or with a Redis
// store that only limits use (which holds nothing per operationId), it
// is not.
func TestRedisNoShareWarning(t *testing.T) {
	const warning = `"msg":"idempotency uses a redis store without max_entries_per_caller`
	url := testkit.StartRedis(t).URL()
	for _, tc := range []struct {
		name, config string
		warned       bool
	}{
		{"redis, idempotency", "store redis " + url + "\n\t\tidempotency", true},
		{"redis with a share, idempotency", "store redis " + url + " {\n\t\t\tmax_entries_per_caller 100\n\t\t}\n\t\tidempotency", false},
		{"redis, a limit", "store redis " + url + "\n\t\tlimit calls 5 per 1h", false},
		{"memory, idempotency", "store memory\n\t\tidempotency", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startEdge(t, "caddyfile", "127.0.0.1:{$EDGE_PORT} {\n\tucwa {\n\t\tjwt off\n\t\t"+tc.config+"\n\t}\n}\n")
			logs := e.Logs().String()
			if got := strings.Count(logs, warning); got != map[bool]int{true: 1}[tc.warned] {
				t.Fatalf("warned %d times, want %v:\n%s", got, tc.warned, logs)
			}
			for line := range strings.Lines(logs) {
				if strings.Contains(line, warning) && strings.Contains(line, strings.TrimPrefix(url, "redis://")) {
					t.Errorf("the warning names the store's address: %s", line)
				}
			}
		})
	}
}
