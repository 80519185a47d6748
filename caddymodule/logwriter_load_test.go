package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestBufferedWriterUnderLoad: many requests at once through a real
// Caddy whose access log is buffered in front of a file that rolls at
// 1MiB: once a config without the log is loaded, every request has its
// one line in the files (the current one and the rolled ones), each line
// whole JSON, none lost and none twice, whatever the size (smaller than
// a line, one byte, the file's roll_size) and however short the
// flush_interval.
func TestBufferedWriterUnderLoad(t *testing.T) {
	const (
		// A long query makes a line some 3.6KiB, so that the file
		// rolls at fewer requests (about 1.6MiB of lines), each of
		// which costs far more than its line's bytes.
		requests = 450
		workers  = 16
	)
	pad := strings.Repeat("x", 3000)
	config := func(logFile, buffered string) string {
		return fmt.Sprintf(`:EDGE_PORT {
	log {
		output buffered {
			%s
			output file %s {
				roll_size 1MiB
				roll_uncompressed
				roll_keep 100
			}
		}
		format json
	}
	respond "ok"
}`, buffered, logFile)
	}
	e := startEdge(t, "caddyfile", `:EDGE_PORT {
	respond "ok"
}`)
	for _, tc := range []struct {
		name     string
		buffered string
	}{
		{"a few lines a buffer, flushed every millisecond", "size 16KiB\n\t\t\tflush_interval 1ms"},
		{"a size smaller than a line", "size 100B\n\t\t\tflush_interval 1ms"},
		{"a size of one byte", "size 1B"},
		{"a size of the file's roll_size", "size 1MiB\n\t\t\tflush_interval 1h"},
		{"the defaults", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			e.Load("caddyfile", config(filepath.Join(dir, "access.log"), tc.buffered))
			var wg sync.WaitGroup
			next := make(chan int)
			for range workers {
				wg.Go(func() {
					for i := range next {
						resp := e.send(testkit.Request{URL: fmt.Sprintf("/request/%d?pad=%s", i, pad)})
						if resp.Status != http.StatusOK {
							t.Errorf("request %d: status %d, want 200", i, resp.Status)
						}
					}
				})
			}
			for i := range requests {
				next <- i
			}
			close(next)
			wg.Wait()
			// The unload writes what the buffer holds.
			e.Load("caddyfile", `:EDGE_PORT {
	respond "ok"
}`)

			files, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(files) < 2 {
				t.Errorf("%d log files, want the log rolled at least once", len(files))
			}
			seen := make([]int, requests)
			for _, f := range files {
				b, err := os.ReadFile(filepath.Join(dir, f.Name()))
				if err != nil {
					t.Fatal(err)
				}
				if len(b) > 0 && b[len(b)-1] != '\n' {
					t.Errorf("%s ends within a line", f.Name())
				}
				for line := range strings.Lines(string(b)) {
					var entry struct {
						Request struct{ URI string }
					}
					if err := json.Unmarshal([]byte(line), &entry); err != nil {
						t.Fatalf("%s: a line that is not whole JSON: %q", f.Name(), line)
					}
					var i int
					if _, err := fmt.Sscanf(entry.Request.URI, "/request/%d", &i); err != nil || i < 0 || i >= requests {
						t.Fatalf("%s: a line of no request of the test: %q", f.Name(), line)
					}
					seen[i]++
				}
			}
			for i, n := range seen {
				if n != 1 {
					t.Errorf("request %d has %d lines, want 1", i, n)
				}
			}
		})
	}
}
