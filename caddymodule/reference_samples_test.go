package caddymodule

import (
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// referenceSample is one request sample of a UCWA reference page
// (testdata/reference): its method, path, headers and body as printed.
type referenceSample struct {
	name, method, path, body string
	header                   http.Header
}

// referencePlaceholders replaces the reference's placeholders that are no
// value a client sends (an SDP offer that is no base64, a delegator that
// is no SIP URI) with one it sends.
var referencePlaceholders = strings.NewReplacer(
	"base64-encoded-sdp", base64.StdEncoding.EncodeToString([]byte("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\n")),
	`"delegator" : "samplevalue"`, `"delegator" : "sip:boss@contoso.com"`,
	`<property name="delegator">samplevalue</property>`, `<property name="delegator">sip:boss@contoso.com</property>`)

// readmeGuards are the README's destination policy and limits (the
// calls' limit raised for the samples' number).
const readmeGuards = `destinations {
			allow_regions US CA
			deny +1900 +1976 +881 +882 +883
			deny_types premium_rate shared_cost personal_number uan unknown
		}
		limit calls 1000 per 1h
		limit international 5 per 24h international`

// readReferenceSamples reads every sample of testdata/reference.
func readReferenceSamples(t *testing.T) []referenceSample {
	t.Helper()
	files, err := filepath.Glob("testdata/reference/*.txt")
	if err != nil || len(files) < 10 {
		t.Fatalf("samples %v: %v", files, err)
	}
	var samples []referenceSample
	for _, file := range files {
		if filepath.Base(file) == "README.txt" {
			continue
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(string(b), "\n=== ")
		if !strings.HasPrefix(parts[0], "source: SkypeSDK-ops-redirect/UCWA/") || len(parts) < 2 {
			t.Fatalf("%s: no source line or no sample", file)
		}
		for _, part := range parts[1:] {
			kind, text, _ := strings.Cut(part, "\n")
			lines := strings.Split(text, "\n")
			method, rest, _ := strings.Cut(lines[0], " ")
			target, _, _ := strings.Cut(rest, " ")
			s := referenceSample{
				name:   strings.TrimSuffix(filepath.Base(file), ".txt") + "/" + kind,
				method: strings.ToUpper(method),
				path:   strings.TrimPrefix(strings.TrimPrefix(target, "https://fe1.contoso.com:443"), "https://lyncweb.contoso.com"),
				header: http.Header{},
			}
			i := 1
			for ; i < len(lines) && lines[i] != "" && !strings.HasPrefix(lines[i], "{") && !strings.HasPrefix(lines[i], "<"); i++ {
				name, value, _ := strings.Cut(lines[i], ": ")
				s.header.Add(name, value)
			}
			s.body = referencePlaceholders.Replace(strings.TrimSpace(strings.Join(lines[i:], "\n")))
			if strings.HasPrefix(s.body, "--") || strings.HasPrefix(s.body, "v=0") {
				// A batch or an SDP: its lines end with CRLF on the wire.
				s.body = strings.ReplaceAll(s.body, "\n", "\r\n") + "\r\n"
			}
			samples = append(samples, s)
		}
	}
	return samples
}

// referenceNormalized is what the edge changes in the reference's samples:
// the numbers, to E.164, the spaces its JSON samples print around a URI's
// colon, and an XML boolean property it reads, written as XML Schema
// writes it.
var referenceNormalized = strings.NewReplacer(`"tel : `, `"tel:`, `"sip : `, `"sip:`,
	`"4255552222"`, `"tel:+14255552222"`, `"4255551234"`, `"tel:+14255551234"`, `>4255552222<`, `>tel:+14255552222<`, `>False<`, `>false<`, `"data : `, `"data:`)

// TestReferenceSamples: every request sample of the UCWA reference for an
// operation of the table (testdata/reference, as printed) is delivered
// through the edge with the README's guards (a destination policy, a
// limit), with the headers a browser client of the UCWA SDK adds, its
// Content-Type as printed and as the SDK writes it (the vendor type and
// "; charset=utf-8"); the pool gets it with only its numbers in E.164.
// The batch sample carries the headers of the SDK in a browser (X-Ms-Origin,
// X-Requested-With, Referer, Cache-Control) and a boundary after ";" with
// no space.
func TestReferenceSamples(t *testing.T) {
	e := startOpsEdge(t, "error", readmeGuards)
	samples := readReferenceSamples(t)
	for _, s := range samples {
		for _, variant := range []string{"as printed", "sdk"} {
			t.Run(s.name+"/"+variant, func(t *testing.T) {
				req := testkit.Request{Method: s.method, URL: s.path, Body: s.body, Header: http.Header{}}
				// The query parameters a client adds to a sample that shows
				// none.
				wantQuery := ""
				switch {
				case strings.HasSuffix(s.path, "/immediateForwardToContact"):
					req.URL += "?target=tel%3A%2B14255551234"
					wantQuery = "target=tel%3A%2B14255551234"
				case strings.HasSuffix(s.path, "/unansweredCallToContact"):
					req.URL += "?target=tel:%2B1-425-555-2222&ringDelay=10"
					wantQuery = "target=tel%3A%2B14255552222&ringDelay=10"
				case strings.HasSuffix(s.path, "/escalateAudio"):
					req.URL += "?operationId=74cb7404e0a247d5a2d4eb0376a47dbf&sessionContext=8efd502350ff419cb615018ae561f97e"
					wantQuery = "operationId=74cb7404e0a247d5a2d4eb0376a47dbf&sessionContext=8efd502350ff419cb615018ae561f97e"
				case strings.HasSuffix(s.path, "/changeNumber"):
					req.URL += "?number=425-555-2222&includeInContactCard=true"
					wantQuery = "number=tel%3A%2B14255552222&includeInContactCard=true"
				}
				for name, values := range s.header {
					switch http.CanonicalHeaderKey(name) {
					case "Authorization", "Host", "Content-Length", "Connection":
					case "Accept":
						req.Accept = values[0]
					case "Content-Type":
						req.ContentType = values[0]
					default:
						req.Header[http.CanonicalHeaderKey(name)] = values
					}
				}
				req.Header.Set("Authorization", bearerFor(t, allScopes...))
				if req.Header.Get("X-Ms-Origin") == "" {
					req.Header.Set("X-Requested-With", "XMLHttpRequest")
					req.Header.Set("X-Ms-Origin", "https://app.contoso.com")
				}
				if variant == "sdk" {
					switch req.ContentType {
					case "", "application/json":
						req.Header.Set("Accept", "application/vnd.microsoft.com.ucwa+json")
					}
					switch req.ContentType {
					case "application/json":
						req.ContentType = "application/vnd.microsoft.com.ucwa+json; charset=utf-8"
					case "application/xml":
						req.ContentType = "application/vnd.microsoft.com.ucwa+xml; charset=utf-8"
						req.Header.Set("Accept", "application/vnd.microsoft.com.ucwa+xml")
					}
				}
				before := len(e.pool.Received())
				r := e.send(req)
				if r.Status/100 != 2 {
					t.Fatalf("status %d %s", r.Status, r.Body)
				}
				got := e.pool.Received()
				if len(got) != before+1 {
					t.Fatalf("the pool got %d requests, want 1", len(got)-before)
				}
				delivered := got[len(got)-1]
				if want := referenceNormalized.Replace(s.body); delivered.Body != want {
					t.Errorf("the pool got\n%s\nwant\n%s", delivered.Body, want)
				}
				if delivered.RawQuery != wantQuery {
					t.Errorf("the pool got the query %q, want %q", delivered.RawQuery, wantQuery)
				}
				for _, name := range []string{"X-Requested-With", "X-Ms-Origin", "If-Match"} {
					if delivered.Header.Get(name) != req.Header.Get(name) {
						t.Errorf("%s: the pool got %q, want %q", name, delivered.Header.Get(name), req.Header.Get(name))
					}
				}
			})
		}
	}
}

// TestRealClientSpellings: what real clients send beside the reference's
// samples is delivered, with only its numbers normalized: a JSON body
// with a byte order mark, a pretty-printed XML body with a declaration
// in lower-case utf-8 and CRLF line ends, a quoted charset and one with
// no space before it, SIP URIs with the parameters clients add (gr, a
// user=phone), a tel: URI with separators, and numbers as users type
// them; and a batch whose parts carry their bodies in Data: headers or
// after their headers (XML with a BOM and CRLF, charset quoted).
func TestRealClientSpellings(t *testing.T) {
	e := startOpsEdge(t, "error", readmeGuards)
	const xmlCRLF = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n<input xmlns=\"http://schemas.microsoft.com/rtc/2012/03/ucwa\">\r\n" +
		"  <property name=\"phoneNumber\">(425) 555-1234</property>\r\n  <property name=\"to\">sip:john@contoso.com</property>\r\n</input>\r\n"
	jsonTo := func(to string) string { return `{"phoneNumber":"4255551234","to":"` + to + `"}` }
	for _, tc := range []struct {
		name, contentType, body, want string
	}{
		{"json with a BOM", "application/json", "\uFEFF" + jsonTo("sip:john@contoso.com"), `"phoneNumber":"tel:+14255551234"`},
		{"xml pretty-printed with CRLF", "application/xml", xmlCRLF, `<property name="phoneNumber">tel:+14255551234</property>`},
		{"xml with a BOM, as .NET's XmlWriter writes UTF-8", "application/xml; charset=utf-8", "\uFEFF" + xmlCRLF, `>tel:+14255551234<`},
		{"xml declaration in single quotes, as Python's ElementTree writes it", "application/xml", strings.Replace(xmlCRLF, `<?xml version="1.0" encoding="utf-8"?>`, `<?xml version='1.0' encoding='utf-8'?>`, 1), `>tel:+14255551234<`},
		{"xml declaration standalone, upper case UTF-8", "application/xml", strings.Replace(xmlCRLF, `<?xml version="1.0" encoding="utf-8"?>`, `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>`, 1), `>tel:+14255551234<`},
		{"xml declaration of version alone", "application/xml", strings.Replace(xmlCRLF, `<?xml version="1.0" encoding="utf-8"?>`, `<?xml version="1.0"?>`, 1), `>tel:+14255551234<`},
		{"xml root declaring the prefixes a DataContractSerializer writes", "application/xml", strings.Replace(xmlCRLF, `<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa">`,
			`<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa" xmlns:i="http://www.w3.org/2001/XMLSchema-instance" xmlns:z="http://schemas.microsoft.com/2003/10/Serialization/">`, 1), `>tel:+14255551234<`},
		{"xml vendor type, quoted charset", `application/vnd.microsoft.com.ucwa+xml; charset="utf-8"`, xmlCRLF, `>tel:+14255551234<`},
		{"charset quoted", `application/json; charset="utf-8"`, jsonTo("sip:john@contoso.com"), `"tel:+14255551234"`},
		{"charset with no space, upper case", "application/json;charset=UTF-8", jsonTo("sip:john@contoso.com"), `"tel:+14255551234"`},
		{"vendor type, charset", "application/vnd.microsoft.com.ucwa+json; charset=utf-8", jsonTo("sip:john@contoso.com"), `"tel:+14255551234"`},
		{"sip with gr", "application/json", jsonTo("sip:alice@contoso.com;gr=urn:uuid:5a3e5f6c-1f8b-5c1a-9d3e-2b7c4e6f8a91"), `"to":"sip:alice@contoso.com;gr=urn:uuid:5a3e5f6c-1f8b-5c1a-9d3e-2b7c4e6f8a91"`},
		{"sip number user=phone", "application/json", jsonTo("sip:+14255550199@contoso.com;user=phone"), `"to":"sip:+14255550199@contoso.com;user=phone"`},
		{"tel global", "application/json", jsonTo("tel:+1-425-555-0199"), `"to":"tel:+14255550199"`},
		{"typed with spaces", "application/json", jsonTo("425 555 0199"), `"to":"tel:+14255550199"`},
		{"typed with dashes", "application/json", jsonTo("425-555-0199"), `"to":"tel:+14255550199"`},
		{"typed with dots", "application/json", jsonTo("425.555.0199"), `"to":"tel:+14255550199"`},
		{"typed with parentheses", "application/json", jsonTo("(425) 555-0199"), `"to":"tel:+14255550199"`},
		{"typed international", "application/json", jsonTo("+1 (425) 555-0199"), `"to":"tel:+14255550199"`},
		{"typed with a leading 1", "application/json", jsonTo("1-425-555-0199"), `"to":"tel:+14255550199"`},
		{"typed with an extension", "application/json", jsonTo("425-555-0199 x123"), `"to":"tel:+14255550199;ext=123"`},
		{"typed with a slash", "application/json", jsonTo("425/555-0199"), `"to":"tel:+14255550199"`},
		{"sip name with a plus", "application/json", jsonTo("sip:alice+sales@contoso.com"), `"to":"sip:alice+sales@contoso.com"`},
		{"sip name with an apostrophe", "application/json", jsonTo("sip:o'brien@contoso.com"), `"to":"sip:o'brien@contoso.com"`},
		{"sip name with digits", "application/json", jsonTo("sip:john.doe2@contoso.com"), `"to":"sip:john.doe2@contoso.com"`},
		{"sip name escaped, accented", "application/json", jsonTo("sip:jos%C3%A9.m%C3%BCller@contoso.com"), `"to":"sip:jos%C3%A9.m%C3%BCller@contoso.com"`},
		{"sip name escaped, Chinese", "application/json", jsonTo("sip:%E7%8E%8B%E5%B0%8F%E6%98%8E@contoso.com"), `"to":"sip:%E7%8E%8B%E5%B0%8F%E6%98%8E@contoso.com"`},
		{"sip name escaped, Japanese with a long vowel mark", "application/json", jsonTo("sip:%E3%82%B3%E3%83%BC%E3%83%92%E3%83%BC@contoso.com"), `"to":"sip:%E3%82%B3%E3%83%BC%E3%83%92%E3%83%BC@contoso.com"`},
		{"sip name escaped, Turkish dotless i", "application/json", jsonTo("sip:y%C4%B1lmaz@contoso.com"), `"to":"sip:y%C4%B1lmaz@contoso.com"`},
		{"sip name escaped, German sharp s", "application/json", jsonTo("sip:stra%C3%9Fe@contoso.com"), `"to":"sip:stra%C3%9Fe@contoso.com"`},
		{"sip name escaped, fullwidth letters", "application/json", jsonTo("sip:%EF%BC%B4%EF%BC%A1%EF%BC%B2%EF%BC%AF@contoso.com"), `"to":"sip:%EF%BC%B4%EF%BC%A1%EF%BC%B2%EF%BC%AF@contoso.com"`},
		{"sip name escaped, Korean", "application/json", jsonTo("sip:%EA%B9%80%EB%AF%BC%EC%A4%80@contoso.com"), `"to":"sip:%EA%B9%80%EB%AF%BC%EC%A4%80@contoso.com"`},
		{"sip name escaped, emoji", "application/json", jsonTo("sip:team%F0%9F%9A%80@contoso.com"), `"to":"sip:team%F0%9F%9A%80@contoso.com"`},
		{"sip name with a year", "application/json", jsonTo("sip:intern2024@contoso.com"), `"to":"sip:intern2024@contoso.com"`},
		{"sip name hotel", "application/json", jsonTo("sip:hotel.reception@contoso.com"), `"to":"sip:hotel.reception@contoso.com"`},
		{"sip name with an escaped colon-free tel word", "application/json", jsonTo("sip:tel.support@contoso.com"), `"to":"sip:tel.support@contoso.com"`},
		{"sip name escaped, Unicode 16 emoji", "application/json", jsonTo("sip:team%F0%9F%AB%A9@contoso.com"), `"to":"sip:team%F0%9F%AB%A9@contoso.com"`},
		{"typed Canadian", "application/json", jsonTo("+1 416 555 0199"), `"to":"tel:+14165550199"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.pool.Received())
			r := e.send(testkit.Request{URL: opsApp + "/communication/startPhoneAudio", ContentType: tc.contentType, Body: tc.body,
				Header: http.Header{"Authorization": {bearerFor(t, allScopes...)}, "X-Requested-With": {"XMLHttpRequest"}, "X-Ms-Origin": {"https://app.contoso.com"}}})
			if r.Status/100 != 2 {
				t.Fatalf("status %d %s", r.Status, r.Body)
			}
			got := e.pool.Received()
			if len(got) != before+1 {
				t.Fatalf("the pool got %d requests, want 1", len(got)-before)
			}
			if !strings.Contains(got[len(got)-1].Body, tc.want) {
				t.Errorf("the pool got %q, want it to hold %s", got[len(got)-1].Body, tc.want)
			}
		})
	}
	t.Run("batch with Data headers", func(t *testing.T) {
		before := len(e.pool.Received())
		r := e.send(testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Accept: "multipart/batching",
			Header: http.Header{"Authorization": {bearerFor(t, allScopes...)}, "X-Requested-With": {"XMLHttpRequest"}},
			Body: batchBody(
				"POST "+opsApp+"/communication/startPhoneAudio HTTP/1.1\r\nAccept: application/json\r\nContent-Type: application/json; charset=utf-8\r\n"+
					`Data: {"phoneNumber":"(425) 555-1234","to":"sip:john@contoso.com","operationId":"b1"}`+"\r\n",
				"POST "+opsApp+"/communication/conversations/eee0/addParticipant HTTP/1.1\r\nContent-Type: application/vnd.microsoft.com.ucwa+json;charset=UTF-8\r\n"+
					`Data: {"to":"425-555-0199","operationId":"b2"}`+"\r\n",
				"POST "+opsApp+"/communication/conversations/eee0/phoneAudio/addPhoneAudio HTTP/1.1\r\nContent-Type: application/xml; charset=\"utf-8\"\r\n\r\n"+
					"\uFEFF"+strings.Replace(xmlCRLF, "(425) 555-1234", "+1 (416) 555-0100", 1),
			)})
		if r.Status/100 != 2 {
			t.Fatalf("status %d %s", r.Status, r.Body)
		}
		got := e.pool.Received()
		if len(got) != before+1 || !strings.Contains(got[len(got)-1].Body, "tel:+14255551234") || !strings.Contains(got[len(got)-1].Body, "tel:+14255550199") ||
			!strings.Contains(got[len(got)-1].Body, ">tel:+14165550100<") {
			t.Fatalf("the pool got %d requests, the last %q; want the batch with both numbers normalized", len(got)-before, got[len(got)-1].Body)
		}
	})
}
