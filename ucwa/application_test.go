package ucwa

import (
	"strings"
	"testing"
)

func TestApplicationID(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"/ucwa/v1/applications/192/communication/startPhoneAudio", "192"},
		{"/ucwa/oauth/v1/applications/104/communication/startPhoneAudio", "104"},
		{"/ucwa/v1/Applications/AbC-12/communication", "abc-12"},
		{"/ucwa/v1/applications/192", "192"},
		{`\ucwa\v1\applications\192;x\communication`, "192"},
		{"/ucwa/v1/applications/./192/x", "192"},
		{"/ucwa/v1/applications/192/../193/x", "193"},
		{"/ucwa/v1/applications/ſ7/x", "s7"},
		{"/ucwa/v1/applications/1/applications/2", "1"},
		{"/ucwa/v1/applications", ""},
		{"/ucwa/v1/applications/", ""},
		{"/ucwa/v1/communication/startPhoneAudio", ""},
		{"/", ""},
		{"", ""},
		{"applications/7", "7"},
		{"/ucwa/v1/applicationſ/8/x", "8"},
		{"/ucwa/v1/APPLICATIONſ/9", "9"},
		{"/ucwa/v1/applicationsx/10/x", ""},
		{"/ucwa/v1/application/11/x", ""},
	} {
		if got := ApplicationID(tc.path); got != tc.want {
			t.Errorf("ApplicationID(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}

func TestApplicationIDAllocations(t *testing.T) {
	path := "/ucwa/oauth/v1/applications/10176012390/communication/startPhoneAudio"
	if n := testing.AllocsPerRun(100, func() { _ = ApplicationID(path) }); n != 0 {
		t.Errorf("%v allocations for a clean path", n)
	}
}

// FuzzApplicationID: any path gives an id that is one lower-case segment,
// the same for the path in other letter case.
func FuzzApplicationID(f *testing.F) {
	for _, s := range []string{"/ucwa/v1/applications/192/communication/startPhoneAudio", `\A\applications\X;y\..`, "/applications//", "/%2e/applications/ı"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		id := ApplicationID(path)
		if want := referenceCanonicalApplicationID(CanonicalPath(path)); id != want {
			t.Fatalf("ApplicationID(%q) = %q, want %q", path, id, want)
		}
		if strings.Contains(id, "/") {
			t.Fatalf("ApplicationID(%q) = %q holds a slash", path, id)
		}
		if isASCII(path) {
			if id != strings.ToLower(id) {
				t.Fatalf("ApplicationID(%q) = %q is not lower case", path, id)
			}
			if upper := ApplicationID(strings.ToUpper(path)); upper != id {
				t.Fatalf("ApplicationID(%q) = %q, but %q for the path in upper case", path, id, upper)
			}
		}
	})
}

// referenceCanonicalApplicationID reads the id after the first segment
// that folds onto "applications" (strings.EqualFold, whatever its length)
// of a canonical path.
func referenceCanonicalApplicationID(p string) string {
	segments := strings.Split(p, "/")
	for i, seg := range segments {
		if strings.EqualFold(seg, "applications") {
			if i+1 < len(segments) {
				return strings.ToLower(segments[i+1])
			}
			return ""
		}
	}
	return ""
}
