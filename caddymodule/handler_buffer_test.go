package caddymodule

import (
	"fmt"
	"net/http"
	"regexp"
	"sync"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestBodyBuffersRecycled: body buffers are reused across requests, so
// concurrent requests with distinct bodies, changed by the edge or
// forwarded as they came, must each reach the pool exactly as cleaned,
// with nothing of another request in them.
func TestBodyBuffersRecycled(t *testing.T) {
	up := testkit.NewUpstream(t)
	for name, config := range edgeConfigs(up.Addr(), "") {
		t.Run(name, func(t *testing.T) {
			e := startEdge(t, config[1], config[0])
			before := len(up.Received())
			want := make(map[string]string) // operationId -> the body the pool must get
			var bodies []struct{ contentType, body string }
			for i := range 120 {
				id := fmt.Sprintf("op-%s-%03d", name, i)
				number := fmt.Sprintf("425555%04d", i)
				var contentType, body, cleaned string
				switch i % 3 {
				case 0: // normalized: a new body
					contentType = "application/json"
					body = fmt.Sprintf(`{"to":"(425) 555-%04d","operationId":"%s"}`, i, id)
					cleaned = fmt.Sprintf(`{"to":"tel:+1%s","operationId":"%s"}`, number, id)
				case 1: // already clean: forwarded as it came
					contentType = "application/json"
					body = fmt.Sprintf(`{"to":"tel:+1%s","operationId":"%s","subject":"%0*d"}`, number, id, i, 0)
					cleaned = body
				default:
					contentType = "application/xml"
					body = fmt.Sprintf(`<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="to">tel:+1%s</property><property name="operationId">%s</property></input>`, number, id)
					cleaned = body
				}
				want[id] = cleaned
				bodies = append(bodies, struct{ contentType, body string }{contentType, body})
			}
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Go(func() {
					for i := w; i < len(bodies); i += 4 {
						resp, err := testkit.Do(e.Client(), testkit.Request{URL: e.url(startPath), ContentType: bodies[i].contentType, Body: bodies[i].body})
						if err != nil {
							t.Error(err)
							return
						}
						if resp.Status != http.StatusCreated {
							t.Errorf("request %d: status %d: %s", i, resp.Status, resp.Body)
						}
					}
				})
			}
			wg.Wait()
			got := up.Received()[before:]
			if len(got) != len(bodies) {
				t.Fatalf("the pool got %d requests, want %d", len(got), len(bodies))
			}
			idPattern := regexp.MustCompile(`op-[a-z]+-\d{3}`)
			for _, r := range got {
				id := idPattern.FindString(r.Body)
				if w, ok := want[id]; !ok || r.Body != w {
					t.Errorf("the pool got %q, want %q", r.Body, w)
				}
				delete(want, id)
			}
		})
	}
}
