package caddymodule

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// jsonNestingLimit is how deeply a JSON body's arrays and objects may
// nest, the body's object counted as 1.
const jsonNestingLimit = 64

// TestJSONNestedTooDeeply: a JSON body nesting arrays and objects deeper
// than 64 levels (the body's object the first) is refused 400
// DeserializationFailure, saying so, and nothing reaches the pool, where
// the edge reads the value and where it does not, in a batch part too; a
// body nested to the limit passes byte for byte. The scanner reads a
// level by a call: at encoding/json's 10,000 levels, a body of 60 KB
// grows the goroutine of its connection by megabytes of stack, kept
// while the connection idles (see TestDeepJSONKeepsNoStack).
func TestJSONNestedTooDeeply(t *testing.T) {
	e := startOpsEdge(t, "ERROR", "max_body_size 1MiB")
	good := bearerFor(t, allScopes...)
	// nested is a body nested levels deep: open, at depth outer, then
	// chain, which opens step levels, until the value, which opens the
	// levels left (values[i] opens i+1), then the closers in turn.
	nested := func(open string, outer int, chain, chainEnd string, step int, values []string, end string) func(levels int) string {
		return func(levels int) string {
			n := (levels - outer - 1) / step
			value := values[levels-outer-n*step-1]
			return open + strings.Repeat(chain, n) + value + strings.Repeat(chainEnd, n) + end
		}
	}
	const to = `"to":"tel:+14255551234"`
	shapes := []struct {
		name, path string
		put        bool
		body       func(levels int) string
	}{
		{name: "objects in a property the operation does not take", path: startPath,
			body: nested(`{`+to+`,"x":`, 1, `{"a":`, `}`, 1, []string{`{}`}, `}`)},
		{name: "arrays in a property the operation does not take", path: startPath,
			body: nested(`{`+to+`,"x":`, 1, `[`, `]`, 1, []string{`[]`}, `}`)},
		{name: "objects and arrays in a link's member", path: startPath,
			body: nested(`{`+to+`,"_links":{"self":{"href":"/x","y":`, 3, `[{"a":`, `}]`, 2, []string{`[]`, `[{}]`}, `}}}`)},
		{name: "embedded resources in PUT callForwardingSettings", path: forwardingSettingsPath, put: true,
			body: nested(`{"_embedded":{"x":`, 2, `{"_embedded":{"x":`, `}}`, 2, []string{`{}`, `{"y":[]}`}, `}}`)},
	}
	for _, sh := range shapes {
		for _, tc := range []struct {
			name    string
			levels  int
			batch   bool
			refused bool
		}{
			{name: "to the limit", levels: jsonNestingLimit},
			{name: "one past the limit", levels: jsonNestingLimit + 1, refused: true},
			{name: "10,000 levels", levels: 10000, refused: true},
			{name: "one past the limit, in a batch", levels: jsonNestingLimit + 1, batch: true, refused: true},
		} {
			t.Run(sh.name+"/"+tc.name, func(t *testing.T) {
				body := sh.body(tc.levels)
				if got := jsonDepth(body); got != tc.levels {
					t.Fatalf("the body nests %d levels, built for %d", got, tc.levels)
				}
				method, header := http.MethodPost, http.Header{"Authorization": {good}}
				if sh.put {
					method = http.MethodPut
					header.Set("If-Match", "1")
				}
				req := testkit.Request{Method: method, URL: sh.path, ContentType: "application/json", Header: header, Body: body}
				if tc.batch {
					ifMatch := ""
					if sh.put {
						ifMatch = "If-Match: 1\r\n"
					}
					req = testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Header: http.Header{"Authorization": {good}},
						Body: batchBody(method + " " + sh.path + " HTTP/1.1\r\n" + ifMatch + "Content-Type: application/json\r\n\r\n" + body)}
				}
				param := ""
				if tc.refused {
					param = "too deep"
				}
				resp := e.sendGuarded(t, req, param)
				if !tc.refused {
					return
				}
				assertUCWAError(t, resp, "BadRequest", "DeserializationFailure", nil, false)
				if !strings.Contains(resp.Body, "The JSON body is nested too deeply at line 1, column ") {
					t.Errorf("the answer does not say the body is nested too deeply: %s", resp.Body)
				}
			})
		}
	}
}

// jsonDepth is how deeply a JSON text's arrays and objects nest, read
// without encoding/json (whose own limit is 10,000 levels).
func jsonDepth(s string) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

// TestDeepJSONKeepsNoStack: clients that each send one deeply nested JSON
// body (objects inside a property the edge does not read, 60 KB, within
// the default max_body_size) and keep their connections open leave the
// edge holding no more goroutine stack than the limit's levels need. Each
// answer is 400 and reaches no pool. Read to 10,000 levels, a call a
// level, such a body grows each connection's goroutine by 8 MB of stack,
// which it keeps while it idles, until garbage collection halves it once
// a cycle: these 32 connections would hold 250 MB, a hundred a gigabyte.
func TestDeepJSONKeepsNoStack(t *testing.T) {
	e := startOpsEdge(t, "ERROR", "")
	good := bearerFor(t, allScopes...)
	const levels = 9990
	body := `{"to":"tel:+14255551234","x":` + strings.Repeat(`{"a":`, levels) + `1` + strings.Repeat(`}`, levels) + `}`
	if len(body) > DefaultMaxBodySize {
		t.Fatalf("the body is %d bytes, over the default max_body_size", len(body))
	}
	request := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: edge\r\nAuthorization: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		startPath, good, len(body), body)
	addr := strings.TrimPrefix(e.url(""), "http://")
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	const clients = 32
	statuses := make(map[int]int)
	for range clients {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Write([]byte(request)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		statuses[resp.StatusCode]++
	}
	// The connections are open and idle, their answers read: what
	// their goroutines hold now is what they keep.
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if statuses[http.StatusBadRequest] != clients {
		t.Errorf("statuses %v, want %d of 400", statuses, clients)
	}
	if n := len(e.pool.Received()); n != 0 {
		t.Errorf("the pool got %d requests, want none", n)
	}
	// A megabyte a connection: ten times what 64 levels leave, an
	// eighth of what 10,000 left.
	const most = clients << 20
	if grown := int64(after.StackInuse) - int64(before.StackInuse); grown > most {
		t.Errorf("goroutine stacks grew %d MB for %d idle connections, want at most %d MB", grown>>20, clients, most>>20)
	}
}
