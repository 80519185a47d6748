package caddymodule

import (
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// FuzzPartResourcePath: a batch part's path of any text that starts with
// '/' (as a guarded part's does: ucwa.TargetPath gives no other of a
// target that parses), under a batch's path of any text, goes to a
// resource of the part's own application when it names one, and else of
// the batch's: the held value of the part names the application its key
// does, so that the part sent again alone meets it.
func FuzzPartResourcePath(f *testing.F) {
	for _, seed := range [][2]string{
		{"/communication/startPhoneAudio", "/ucwa/v1/applications/1/batch"},
		{"/ucwa/v1/applications/2/communication/startPhoneAudio", "/ucwa/v1/applications/1/batch"},
		{"/communication/startPhoneAudio", "/ucwa/v1/./APPLICATIONS/1/../2/batch"},
		{"/x", "/ucwa/v1/applications/%31/batch"},
		{"/x", "/ucwa/v1/applications//batch"},
		{"/x", "/ucwa/v1/applications"},
		{"/x", "\\ucwa\\applications\\7\\batch"},
		{"/applications", "/a/applications/1"},
		{"/", "/ucwa/v1/applications/ａ/batch"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, part, batch string) {
		if !strings.HasPrefix(part, "/") {
			return
		}
		got := partResourcePath(part, batch)
		if own := ucwa.ApplicationID(part); own != "" {
			if got != part {
				t.Fatalf("partResourcePath(%q, %q) = %q, not the part's own", part, batch, got)
			}
			return
		}
		if app := ucwa.ApplicationID(batch); app != "" && ucwa.ApplicationID(got) != app {
			t.Fatalf("partResourcePath(%q, %q) = %q: application %q, the batch's is %q", part, batch, got, ucwa.ApplicationID(got), app)
		}
	})
}
