package caddymodule

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// sendForLocation posts a startPhoneAudio to e as edge.example, each of
// locs asking the pool (see locationPool) for a Location, and returns the
// status and the Location values the client got.
func sendForLocation(t *testing.T, e edge, locs ...string) (int, []string) {
	t.Helper()
	r, err := http.NewRequest(http.MethodPost, e.url("/ucwa/v1/applications/1/communication/startPhoneAudio"), strings.NewReader(`{"to":"4255551234"}`))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/json")
	r.Header["X-Test-Location"] = locs
	r.Host = "edge.example"
	client := &http.Client{Transport: e.Client().Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Values("Location")
}

// locationPool answers 201 with a Location for each X-Test-Location of
// the request, POOL replaced by host.
func locationPool(host string) testkit.Answer {
	return func(_ *testkit.Pool, w http.ResponseWriter, r *http.Request) {
		for _, v := range r.Header.Values("X-Test-Location") {
			w.Header().Add("Location", strings.ReplaceAll(v, "POOL", host))
		}
		w.WriteHeader(http.StatusCreated)
	}
}

// TestLocationAsClientsReadIt: no Location that names a pool's host, as
// a client that follows it reads it (a browser drops tabs, reads a
// backslash as a slash, decodes a host's escapes), reaches the client:
// one that parses goes out on the edge's host, one that does not is
// dropped; every Location value is looked at. Any other goes out as the
// pool wrote it.
func TestLocationAsClientsReadIt(t *testing.T) {
	var host string
	pool := testkit.NewPool(t, "primary", func(p *testkit.Pool, w http.ResponseWriter, r *http.Request) {
		locationPool(host)(p, w, r)
	})
	_, port, _ := strings.Cut(pool.Addr(), ":")
	host = "localhost:" + port
	e := startEdge(t, "caddyfile", poolsCaddyfile("primary "+host))
	for _, tc := range []struct {
		locs []string
		want string // the Location values the client gets, joined with " | "
	}{
		{[]string{"http://POOL/a"}, "http://edge.example/a"},
		{[]string{"HTTPS://LOCALHOST.:1/a"}, "http://edge.example/a"},
		{[]string{"//POOL/a"}, "http://edge.example/a"},
		{[]string{"http://u:p@POOL/a"}, "http://edge.example/a"},
		{[]string{"http://elsewhere.example/a"}, "http://elsewhere.example/a"},
		{[]string{"/ucwa/x"}, "/ucwa/x"},
		{[]string{"invitations/7"}, "invitations/7"},
		{[]string{"http://POOL/a\tb"}, "http://edge.example/ab"},
		{[]string{"/\\POOL/a"}, "http://edge.example/a"},
		{[]string{"\\\\POOL\\a"}, "http://edge.example/a"},
		{[]string{"http:\\\\POOL\\a"}, "http://edge.example/a"},
		{[]string{"http://POOL/a%zz"}, ""},
		{[]string{"http://%6Cocalhost:1/a"}, ""},
		{[]string{"http://%zz/a"}, "http://%zz/a"},
		{[]string{"/ucwa/x", "http://POOL/b"}, "/ucwa/x | http://edge.example/b"},
	} {
		status, got := sendForLocation(t, e, tc.locs...)
		if status != http.StatusCreated || strings.Join(got, " | ") != tc.want {
			t.Errorf("the pool's Location %q: the client got %d %q, want %q", tc.locs, status, got, tc.want)
		}
	}
}

// TestLocationOnAnotherPool: a pool's Location on the host of the
// handler's other pool (a pool pair's front ends name each other) goes
// out on the edge's host too: the client would go to the backup past the
// edge.
func TestLocationOnAnotherPool(t *testing.T) {
	backup := testkit.NewUpstream(t)
	_, backupPort, _ := strings.Cut(backup.Addr(), ":")
	primary := testkit.NewPool(t, "primary", locationPool("127.0.0.1:"+backupPort))
	_, primaryPort, _ := strings.Cut(primary.Addr(), ":")
	e := startEdge(t, "caddyfile", poolsCaddyfile("primary localhost:"+primaryPort+"\n\t\tbackup 127.0.0.1:"+backupPort))
	status, got := sendForLocation(t, e, "http://POOL/ucwa/v1/applications/1/communication/invitations/1")
	if want := "http://edge.example/ucwa/v1/applications/1/communication/invitations/1"; status != http.StatusCreated || len(got) != 1 || got[0] != want {
		t.Errorf("the client got %d %q, want %q", status, got, want)
	}
}
