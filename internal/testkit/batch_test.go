package testkit

import (
	"strings"
	"testing"
)

// TestReadBatch: an answer of the reference page "Batching requests"
// (CRLF line endings, bodies shortened), and the same with a part's own
// Content-Length, reads part by part; an answer framed wrong in any of
// the ways ReadBatch checks is an error.
func TestReadBatch(t *testing.T) {
	const ct = `multipart/batching; boundary="3968fb75"`
	body := strings.Join([]string{
		"--3968fb75",
		"Content-Type: application/http; msgtype=response",
		"",
		"HTTP/1.1 200 OK",
		"Content-Type: application/json; charset=utf-8",
		"",
		`{"rel":"myContacts"}`,
		"--3968fb75",
		"Content-Type: application/http",
		"Content-Length: 59",
		"",
		"HTTP/1.1 201 Created",
		"Location: /a",
		"Content-Length: 2",
		"",
		"{}",
		"--3968fb75--",
		"",
	}, "\r\n")
	got, err := ReadBatch(ct, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Status != 200 || string(got[0].Body) != `{"rel":"myContacts"}` || got[0].Header.Get("Content-Type") != "application/json; charset=utf-8" ||
		got[1].Status != 201 || got[1].Header.Get("Location") != "/a" || string(got[1].Body) != "{}" {
		t.Fatalf("%+v", got)
	}
	for _, tc := range []struct{ name, ct, body, want string }{
		{"no boundary", "multipart/batching", body, "no multipart/batching with a boundary"},
		{"another type", `multipart/mixed; boundary="3968fb75"`, body, "no multipart/batching with a boundary"},
		{"a request part", ct, strings.Replace(body, "msgtype=response", "msgtype=request", 1), "part 1: its Content-Type"},
		{"a part of another type", ct, strings.Replace(body, "application/http", "text/plain", 1), "part 1: its Content-Type"},
		{"HTTP/1.0", ct, strings.Replace(body, "HTTP/1.1 200", "HTTP/1.0 200", 1), "part 1: its response is of HTTP/1.0"},
		{"a part longer than its Content-Length", ct, strings.Replace(body, "Content-Length: 59", "Content-Length: 58", 1), "part 2: its Content-Length"},
		{"two part lengths", ct, strings.Replace(body, "Content-Length: 59", "Content-Length: 59\r\nContent-Length: 59", 1), "part 2: its Content-Length"},
		{"a body shorter than its Content-Length", ct, strings.Replace(body, "Content-Length: 2\r\n", "Content-Length: 3\r\n", 1), "part 2: its response's body"},
		{"bytes after the body", ct, strings.Replace(body, "Content-Length: 2\r\n", "Content-Length: 1\r\n", 1), "part 2: bytes after"},
		{"chunked", ct, strings.Replace(body, "charset=utf-8\r\n\r\n{\"rel\":\"myContacts\"}", "charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n14\r\n{\"rel\":\"myContacts\"}\r\n0\r\n\r\n", 1), "part 1: its response is of HTTP/1.1, Transfer-Encoding"},
		{"no closing delimiter", ct, strings.TrimSuffix(body, "--3968fb75--\r\n"), "part 2: unexpected EOF"},
	} {
		if got, err := ReadBatch(tc.ct, []byte(tc.body)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %+v, %v; want an error with %q", tc.name, got, err, tc.want)
		}
	}
}
