package caddymodule

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
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
		// timberjack takes a negative roll size for one that every write
		// is over; it read as 16 EiB in the message.
		{"a negative roll_size of its file", `{"output": "buffered", "writer": {"output": "file", "filename": "` + file + `", "roll_size_mb": -1}}`, "its file's roll_size_mb -1 is negative"},
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

// TestBufferedWriterCaddyfileErrors: a buffered block that is wrong is
// refused as it is read, with an error that names the subdirective.
func TestBufferedWriterCaddyfileErrors(t *testing.T) {
	for _, tc := range []struct{ name, block, want string }{
		{"an argument", "buffered x {\n output stderr\n}", "wrong argument count"},
		{"unknown subdirective", "buffered {\n colour blue\n output stderr\n}", `unrecognized subdirective "colour"`},
		{"size not a size", "buffered {\n size lots\n output stderr\n}", `size "lots": want a size from 1 byte up to 1GiB`},
		{"size 0", "buffered {\n size 0\n output stderr\n}", `size "0": want a size from 1 byte up to 1GiB`},
		{"size over 1GiB", "buffered {\n size 2GiB\n output stderr\n}", `size "2GiB": want a size from 1 byte up to 1GiB`},
		{"size without a value", "buffered {\n size\n output stderr\n}", "wrong argument count"},
		{"size with two values", "buffered {\n size 1KiB 2KiB\n output stderr\n}", "wrong argument count"},
		{"flush_interval not a duration", "buffered {\n flush_interval soon\n output stderr\n}", `flush_interval "soon": want a positive duration`},
		{"flush_interval negative", "buffered {\n flush_interval -1s\n output stderr\n}", `flush_interval "-1s": want a positive duration`},
		{"size twice", "buffered {\n size 1KiB\n size 2KiB\n output stderr\n}", "size given twice"},
		{"flush_interval twice", "buffered {\n flush_interval 1s\n flush_interval 2s\n output stderr\n}", "flush_interval given twice"},
		{"output twice", "buffered {\n output stderr\n output stdout\n}", "output given twice"},
		{"output without a writer", "buffered {\n output\n}", "wrong argument count"},
		{"no output", "buffered {\n size 1KiB\n}", "buffered: output is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var bw BufferedWriter
			err := bw.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.block))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}
