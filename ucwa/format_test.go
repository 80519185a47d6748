package ucwa

import "testing"

func TestMediaFormat(t *testing.T) {
	tests := []struct {
		contentType string
		want        Format
		ok          bool
	}{
		{"application/json", JSON, true},
		{"application/vnd.microsoft.com.ucwa+json", JSON, true},
		{"application/xml", XML, true},
		{"application/vnd.microsoft.com.ucwa+xml", XML, true},
		{"application/vnd.microsoft.ucwa+xml", XML, true},
		// parameters, spacing and letter case
		{"application/json; charset=utf-8", JSON, true},
		{"application/json;charset=UTF-8", JSON, true},
		{`application/json; charset="utf-8"`, JSON, true},
		{"application/json; charset=utf8", JSON, true},
		{"Application/JSON", JSON, true},
		{"application/vnd.microsoft.com.ucwa+json; charset=utf-8", JSON, true},
		{"application/xml; charset=utf-8", XML, true},
		{"APPLICATION/VND.MICROSOFT.COM.UCWA+XML;charset=utf-8", XML, true},
		{"application/vnd.microsoft.ucwa+xml; charset=utf-8", XML, true},
		{"application/json; odata=verbose", JSON, true},
		// charsets the codecs do not read
		{"application/json; charset=iso-8859-1", 0, false},
		{"application/xml; charset=utf-16", 0, false},
		{"application/vnd.microsoft.com.ucwa+xml; charset=windows-1252", 0, false},
		// a charset read otherwise by .NET (System.Web finds the first
		// charset=, ignoring RFC 2231's charset*= and quoting)
		{"application/xml; charset*=utf-8''utf-8; charset=utf-7", 0, false},
		{"application/json; charset*=utf-8''utf-8; charset=utf-7", 0, false},
		{"application/xml; charset*0=utf-; charset*1=8; charset=utf-7", 0, false},
		{"application/xml; charset*=utf-8''utf-8", 0, false},
		{`application/xml; x="; charset=utf-7"`, 0, false},
		{`application/xml; charset=utf-8; x="; charset=utf-7"`, 0, false},
		{"application/xml; x-charset=utf-7", 0, false},
		// other types and garbage
		{"", 0, false},
		{"text/plain", 0, false},
		{"text/xml", 0, false},
		{"application/x-www-form-urlencoded", 0, false},
		{"multipart/form-data; boundary=x", 0, false},
		{"application/vnd.microsoft.ucwa+json", 0, false},
		{"application/json+xml", 0, false},
		{"application", 0, false},
		{"application/json;", JSON, true},
		{"application/json; charset", 0, false},
		{"application/json; charset=utf-8; charset=latin1", 0, false},
		// a charset a pool may read where the edge reads none, or UTF-8
		{"application/json; charset=utf-16; charset*=utf-8''utf-8", 0, false},
		{"application/json; charset*=utf-8''utf-8; charset=utf-16", 0, false},
		{"application/json; charset*=utf-8''utf-8", 0, false},
		{"application/json; charset*=utf-16''", 0, false},
		{"application/json; charset*0=utf-8", 0, false},
		{`application/json; x="; charset=utf-16"`, 0, false},
		{`application/json; x="a charset=utf-16"; charset=utf-8`, 0, false},
		{`application/xml; x=charset`, 0, false},
		{"application/json ;  Charset = \"UTF-8\" ", JSON, true},
		{"application/json; odata=verbose; charset=utf-8", JSON, true},
		{";;;", 0, false},
		{"application/json\x00", 0, false},
		{"/json", 0, false},
	}
	for _, tt := range tests {
		got, ok := MediaFormat(tt.contentType)
		if got != tt.want || ok != tt.ok {
			t.Errorf("MediaFormat(%q) = %v, %v; want %v, %v", tt.contentType, got, ok, tt.want, tt.ok)
		}
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		name    string
		request Format
		accept  string
		want    Format
	}{
		{"XML request, no Accept", XML, "", XML},
		{"XML request wins over Accept JSON", XML, "application/json", XML},
		{"JSON request, no Accept", JSON, "", JSON},
		{"no usable request type, no Accept", 0, "", JSON},
		{"Accept XML", JSON, "application/xml", XML},
		{"Accept UCWA XML", 0, "application/vnd.microsoft.com.ucwa+xml", XML},
		{"Accept text/xml", JSON, "text/xml", XML},
		{"Accept JSON", 0, "application/json", JSON},
		{"Accept any", 0, "*/*", JSON},
		{"Accept application/*", 0, "application/*", JSON},
		{"Accept XML and any", 0, "application/xml, */*", XML},
		{"Accept both, same q, JSON default", 0, "application/xml, application/json", JSON},
		{"Accept both, XML preferred by q", 0, "application/json;q=0.8, application/xml", XML},
		{"Accept both, XML preferred by q 0.9 > 0.5", 0, "application/json; q=0.5, application/xml; q=0.9", XML},
		{"Accept both, JSON preferred by q", 0, "application/xml;q=0.5, application/json", JSON},
		{"Accept XML refused with q=0", 0, "application/xml;q=0", JSON},
		{"Accept XML with q=0.001", 0, "application/xml;q=0.001", XML},
		{"Accept XML with q=1.000", 0, "application/vnd.microsoft.com.ucwa+xml;q=1.000, application/json;q=0.999", XML},
		{"malformed q counts as 0", 0, "application/xml;q=high", JSON},
		{"malformed q 2", 0, "application/xml;q=2", JSON},
		{"garbage", 0, "garbage,,;;", JSON},
		{"garbage then XML", 0, "%%%, application/xml", XML},
		{"HTML", 0, "text/html", JSON},
	}
	for _, tt := range tests {
		if got := ErrorFormat(tt.request, tt.accept); got != tt.want {
			t.Errorf("%s: ErrorFormat(%v, %q) = %v, want %v", tt.name, tt.request, tt.accept, got, tt.want)
		}
	}
}

func TestFormatStrings(t *testing.T) {
	tests := []struct {
		f                 Format
		name, contentType string
	}{
		{JSON, "json", "application/json; charset=utf-8"},
		{XML, "xml", "application/xml; charset=utf-8"},
	}
	for _, tt := range tests {
		if tt.f.String() != tt.name || tt.f.ContentType() != tt.contentType {
			t.Errorf("%d: String %q ContentType %q", tt.f, tt.f.String(), tt.f.ContentType())
		}
		mf, ok := MediaFormat(tt.f.ContentType())
		if !ok || mf != tt.f {
			t.Errorf("the edge's own content type %q does not read back as %v", tt.f.ContentType(), tt.f)
		}
	}
}

// TestNamesOtherCharset: the Content-Type of a request without a body,
// of an SDP body or of a batch may name no character set but UTF-8, as
// this package and a pool (System.Web's first charset=) read it.
func TestNamesOtherCharset(t *testing.T) {
	for _, tc := range []struct {
		contentType string
		other, sdp  bool
	}{
		{"", false, false},
		{"application/json", false, false},
		{"application/sdp", false, true},
		{"application/sdp; charset=utf-8", false, true},
		{"Application/SDP; Charset=\"UTF8\"", false, true},
		{"application/x-www-form-urlencoded; charset=UTF-8", false, false},
		{"garbage without the word", false, false},
		{"application/sdp; charset=ibm037", true, false},
		{`text/plain; charset="IBM037"`, true, false},
		{"application/json; charset=utf-16", true, false},
		{"application/json; charset=utf-7", true, false},
		{"application/json; charset=ibm037; x", true, false},
		{"application/sdp; charset", true, false},
		{"application/sdp; charset*=utf-8''utf-8", true, false},
		{"application/sdp; charset=utf-8; charset=utf-7", true, false},
		{`application/sdp; x="; charset=ibm037"`, true, false},
		{"application/sdp; x-charset=ibm037", true, false},
	} {
		if got := namesOtherCharset(tc.contentType); got != tc.other {
			t.Errorf("namesOtherCharset(%q) = %v, want %v", tc.contentType, got, tc.other)
		}
		if got := isSDP(tc.contentType); got != tc.sdp {
			t.Errorf("isSDP(%q) = %v, want %v", tc.contentType, got, tc.sdp)
		}
	}
}

// TestRequestFormat: an error's format follows the request's media type,
// whatever its parameters.
func TestRequestFormat(t *testing.T) {
	for _, tc := range []struct {
		contentType string
		want        Format
	}{
		{"application/json", JSON},
		{"application/xml", XML},
		{"application/xml; charset=iso-8859-1", XML},
		{"Application/Vnd.Microsoft.Com.Ucwa+XML ; charset=utf-16", XML},
		{"application/json; charset=latin1", JSON},
		{"text/plain", 0},
		{"", 0},
	} {
		if got := RequestFormat(tc.contentType); got != tc.want {
			t.Errorf("RequestFormat(%q) = %v, want %v", tc.contentType, got, tc.want)
		}
	}
}
