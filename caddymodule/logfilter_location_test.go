package caddymodule

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// readmeLoggedConfig is the Caddyfile of an edge on EDGE_PORT whose
// ucwa block holds ucwaBlock, logged with the README's log filters (the
// lines of each `format filter` block of its Logs section): the access
// log's, and the default log's at debug level, so that every line a
// request can make is written.
func readmeLoggedConfig(t *testing.T, ucwaBlock string) string {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(readme), "\n## Logs\n")
	section, _, _ = strings.Cut(section, "\n## ")
	var blocks []string
	for rest := section; ; {
		_, after, ok := strings.Cut(rest, "format filter {\n")
		if !ok {
			break
		}
		block, tail, _ := strings.Cut(after, "}")
		blocks = append(blocks, block)
		rest = tail
	}
	if len(blocks) != 2 {
		t.Fatalf("the README's Logs section has %d format filter blocks, want 2", len(blocks))
	}
	return fmt.Sprintf(`{
	log {
		level DEBUG
		format filter {
%s		}
	}
}
:EDGE_PORT {
	log {
		format filter {
%s		}
	}
	ucwa {
		%s
	}
}`, blocks[1], blocks[0], ucwaBlock)
}

// TestAccessLogPoolLocation: with the README's log filters, through a
// real Caddy at debug level, a pool's Location that carries a number in
// its query reaches the client whole, rewritten onto the edge; the
// access log records the Location the client got (the edge's host), and
// no log line holds the number: neither the access log's resp_headers
// nor the debug line of the pool's own headers.
func TestAccessLogPoolLocation(t *testing.T) {
	const number = "4255550120"
	pool := testkit.NewPool(t, "primary", func(p *testkit.Pool, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "http://"+p.Addr()+"/ucwa/oauth/v1/applications/104/communication/phoneAudioInvitations/x?to=tel:%2B1"+number+"&ack=1")
		w.WriteHeader(http.StatusCreated)
	})
	e := startEdge(t, "caddyfile", readmeLoggedConfig(t, "jwt off\n\t\tdefault_region US\n\t\tprimary "+pool.Addr()))
	resp := e.send(testkit.Request{URL: "/ucwa/oauth/v1/applications/104/communication/startPhoneAudio", ContentType: "application/json", Body: `{"to":"+14255551234"}`})
	edgeHost := strings.TrimPrefix(e.url(""), "http://")
	want := "http://" + edgeHost + "/ucwa/oauth/v1/applications/104/communication/phoneAudioInvitations/x?to=tel:%2B1" + number + "&ack=1"
	if resp.Status != http.StatusCreated || resp.Header.Get("Location") != want {
		t.Fatalf("%d, Location %q; want 201 and %q", resp.Status, resp.Header.Get("Location"), want)
	}
	e.Logs().Wait(t, `"msg":"handled request"`, `"Location":["http://`+edgeHost+`/ucwa/oauth/v1/applications/104/communication/phoneAudioInvitations/x?to=REDACTED&ack=1"]`)
	e.Logs().Wait(t, `"msg":"upstream roundtrip"`, `"Location":["http://`+pool.Addr()+`/ucwa/oauth/v1/applications/104/communication/phoneAudioInvitations/x?to=REDACTED&ack=1"]`)
	if said := withoutTimings(e.Logs().String()); strings.Contains(said, number[3:]) {
		t.Errorf("a log line holds the number: %s", said)
	}
}
