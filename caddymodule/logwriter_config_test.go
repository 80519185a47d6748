package caddymodule

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestBufferedWriterRefused: a JSON config whose buffered writer is
// wrong is refused at load with an error that names what is wrong, and
// the running config goes on; none panics.
func TestBufferedWriterRefused(t *testing.T) {
	e := startEdge(t, "json", `{}`)
	file := filepath.Join(t.TempDir(), "audit.log")
	for _, tc := range []struct {
		name   string
		writer string // the log's writer object
		want   string // in the error
	}{
		{"no writer inside", `{"output": "buffered"}`, "no output"},
		{"a writer inside that does not exist", `{"output": "buffered", "writer": {"output": "nonesuch"}}`, "nonesuch"},
		{"a writer inside that is not an object", `{"output": "buffered", "writer": "file"}`, "buffered"},
		{"a negative size", `{"output": "buffered", "size": -1, "writer": {"output": "discard"}}`, "size -1 is negative"},
		{"a size over 1GiB", `{"output": "buffered", "size": 1073741825, "writer": {"output": "discard"}}`, "size 1073741825 is over 1GiB"},
		{"a negative flush_interval", `{"output": "buffered", "flush_interval": "-1s", "writer": {"output": "discard"}}`, "flush_interval -1s is negative"},
		{"a flush_interval that is no duration", `{"output": "buffered", "flush_interval": "soon", "writer": {"output": "discard"}}`, "soon"},
		{"a size over the roll_size of its file", `{"output": "buffered", "size": 1048577, "writer": {"output": "file", "filename": "` + file + `", "roll_size_mb": 1}}`, "size 1048577 is over its file's roll_size (1.0 MiB)"},
		{"a size over the default roll_size of its file", `{"output": "buffered", "size": 104857601, "writer": {"output": "file", "filename": "` + file + `"}}`, "size 104857601 is over its file's roll_size (100 MiB)"},
		{"a net writer of datagrams inside", `{"output": "buffered", "writer": {"output": "net", "address": "udp/127.0.0.1:514"}}`, "its output net udp/127.0.0.1:514 sends each write as one message"},
		{"a net writer of unix datagrams inside", `{"output": "buffered", "writer": {"output": "net", "address": "unixgram/` + filepath.Join(t.TempDir(), "log.sock") + `"}}`, "sends each write as one message"},
		{"buffered inside buffered", `{"output": "buffered", "writer": {"output": "buffered", "writer": {"output": "discard"}}}`, "a buffered writer inside"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			config := fmt.Sprintf(`{"logging": {"logs": {"audit": {"writer": %s}}}}`, tc.writer)
			if err := e.LoadRefused("json", config); !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("refused with %q, want it to say %q", err, tc.want)
			}
		})
	}
}
