package ucwa

import (
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseQuery(t *testing.T) {
	fwd := mustOperation("unansweredCallToContact")
	cfs := mustOperation("callForwardingSettings")
	tests := []struct {
		name   string
		op     *Operation
		raw    string
		want   map[string]string // the properties read
		bad    []string          // the properties a 400 names ("" for a malformed query)
		reason string
	}{
		{name: "empty", op: spa, raw: "", want: map[string]string{}},
		{name: "to", op: spa, raw: "to=sip:a@b.c", want: map[string]string{"to": "sip:a@b.c"}},
		{name: "escaped value, + as space", op: spa, raw: "to=tel:%2B1+425+555+1234&x=1", want: map[string]string{"to": "tel:+1 425 555 1234"}},
		{name: "every property", op: fwd, raw: "target=sip:a@b.c&ringDelay=10", want: map[string]string{"target": "sip:a@b.c", "ringDelay": "10"}},
		{name: "blank is absent", op: spa, raw: "to=&subject=+", want: map[string]string{}},
		{name: "valueless is absent", op: mustOperation("changeNumber"), raw: "includeInContactCard&number=4255551234", want: map[string]string{"number": "4255551234"}},
		{name: "unknown names pass", op: spa, raw: "x=1&&y&conversation=eee0&_links=2", want: map[string]string{}},
		{name: "a link's name", op: spa, raw: "customContent=data:,x", want: map[string]string{"customContent": "data:,x"}},

		{name: "twice", op: spa, raw: "to=a&to=a", bad: []string{"to"}, reason: "appears more than once"},
		{name: "twice, second blank", op: spa, raw: "to=a&to=", bad: []string{"to"}, reason: "appears more than once"},
		{name: "other letter case", op: spa, raw: "TO=sip:a@b.c", bad: []string{"to"}, reason: "spelled otherwise"},
		{name: "other letter case beside the right one", op: spa, raw: "to=sip:a@b.c&To=sip:c@d.e", bad: []string{"to"}, reason: "spelled otherwise"},
		{name: "escaped letter", op: spa, raw: "%74o=sip:a@b.c", bad: []string{"to"}, reason: "spelled otherwise"},
		{name: "escaped capitals", op: spa, raw: "x=1&%54%4F=%2B19005551234", bad: []string{"to"}},
		{name: "t escaped O", op: spa, raw: "t%4F=1", bad: []string{"to"}},
		{name: "NUL", op: spa, raw: "to%00=1", bad: []string{"to"}},
		{name: "space", op: spa, raw: "to+=1", bad: []string{"to"}},
		{name: "leading tab", op: spa, raw: "%09to=1", bad: []string{"to"}},
		{name: "zero-width space", op: spa, raw: "t%E2%80%8Bo=1", bad: []string{"to"}},
		{name: "bidirectional control", op: spa, raw: "to%E2%80%AE=1", bad: []string{"to"}},
		{name: "fullwidth", op: spa, raw: "%EF%BD%94%EF%BD%8F=1", bad: []string{"to"}},
		{name: "no-break space", op: fwd, raw: "target%C2%A0=1", bad: []string{"target"}},
		{name: "long s", op: spa, raw: "%C5%BFubject=1", bad: []string{"subject"}},
		{name: "combining accent", op: spa, raw: "to%CC%81=1", bad: []string{"to"}},
		{name: "similar but other names pass", op: spa, raw: "tos=1&t=2&too=3&subject2=4", want: map[string]string{}},
		{name: "every folded name listed once", op: fwd, raw: "TARGET=1&Target=2&RINGDELAY=3", bad: []string{"target", "ringDelay"}},

		// .NET model-binding spellings: a pool may read any part as the name.
		{name: "jQuery array", op: spa, raw: "to%5B%5D=1", bad: []string{"to"}, reason: "model-binding"},
		{name: "jQuery array, raw brackets", op: spa, raw: "to[]=1", bad: []string{"to"}},
		{name: "index", op: spa, raw: "to[0]=1", bad: []string{"to"}},
		{name: "jQuery key", op: spa, raw: "to[x]=1", bad: []string{"to"}},
		{name: "prefix", op: spa, raw: "x.to=1", bad: []string{"to"}},
		{name: "parameter prefix, other case", op: fwd, raw: "request.Target=1", bad: []string{"target"}},
		{name: "collection index prefix", op: spa, raw: "%5B0%5D.to=1", bad: []string{"to"}},
		{name: "jQuery nested key", op: spa, raw: "model[to]=1", bad: []string{"to"}},
		{name: "escaped dot", op: spa, raw: "x%2Eto=1", bad: []string{"to"}},
		{name: "fullwidth dot", op: spa, raw: "x%EF%BC%8Eto=1", bad: []string{"to"}},
		{name: "beside the exact name", op: spa, raw: "to=sip:a@b.c&to[]=tel:%2B19005551234", bad: []string{"to"}},
		{name: "a stray destination's part", op: fwd, raw: "x.phoneNumber=%2B19005551234", bad: []string{"phoneNumber"}, reason: strayWhat},
		{name: "a stray destination's part, blank", op: fwd, raw: "x.phoneNumber=", want: map[string]string{}},
		{name: "parts that are no property pass", op: spa, raw: "a.b=1&c[0]=2&d[e]=3&.=4&[x].y=5&tos.x=6&x.tos=7&x[0].key=locale&x[0].value=8&y.key=tos", want: map[string]string{}},
		// A dictionary entry keyed by an input other than a destination
		// or operationId: a pool reading x["subject"] or x["ringDelay"]
		// takes a value the edge never held to the input's rules.
		{name: "an entry keyed by another input", op: spa, raw: "x[0].key=subject&x[0].value=8", bad: []string{"subject"}, reason: "dictionary entry"},
		{name: "an entry keyed by another input, by an index", op: fwd, raw: "x.index=a&x[a].key=RingDelay&x[a].value=1", bad: []string{"ringDelay"}, reason: "dictionary entry"},
		{name: "an entry keyed by a link", op: spa, raw: "[0].key=customContent&[0].value=data:,x", bad: []string{"customContent"}, reason: "dictionary entry"},
		{name: "an entry keyed by an embedded resource's input", op: cfs, raw: "x[0].key=ringDelay&x[0].value=1", bad: []string{"ringDelay"}, reason: "dictionary entry"},
		// callForwardingSettings embeds resources judged by their own
		// rules: MVC binds x.ringDelay to a model's embedded x.
		{name: "an embedded resource's input under a prefix", op: cfs, raw: "unansweredCallSettings.ringDelay=1", bad: []string{"ringDelay"}, reason: "resource the operation embeds"},
		{name: "an embedded resource's input, a plain name", op: cfs, raw: "ringDelay=1&x.y=2", want: map[string]string{}},

		// A value without a name: Web API binds every input the query
		// does not name to it (its empty-prefix fallback).
		{name: "no name", op: spa, raw: "to=sip:a@b.c&=tel:%2B19005551234", bad: []string{"operationId", "phoneNumber", "importance", "subject", "threadId", "customContent"}, reason: "without a name"},
		{name: "no name before the names", op: fwd, raw: "=tel:%2B19005551234&ringDelay=10", bad: []string{"target"}, reason: "without a name"},
		{name: "empty brackets", op: fwd, raw: "[]=tel:%2B19005551234", bad: []string{"target", "ringDelay"}, reason: "without a name"},
		{name: "escaped empty brackets, twice", op: fwd, raw: "%5B%5D%5B%5D=1", bad: []string{"target", "ringDelay"}, reason: "without a name"},
		{name: "no name, a NUL", op: fwd, raw: "%00=1", bad: []string{"target", "ringDelay"}, reason: "without a name"},
		{name: "no name beside a misspelled one", op: fwd, raw: "TARGET=1&=2", bad: []string{"target", "ringDelay"}},
		// An index alone: Web API and MVC bind a collection parameter
		// under the empty prefix from [0], [1], ...
		{name: "an index alone", op: fwd, raw: "target=sip:a@b.c&%5B0%5D=tel:%2B19005551234", bad: []string{"ringDelay"}, reason: "without a name"},
		{name: "indexes", op: fwd, raw: "[0][]=1", bad: []string{"target", "ringDelay"}, reason: "without a name"},
		{name: "an index alone, blank, passes", op: spa, raw: "[0]=&to=sip:a@b.c", want: map[string]string{"to": "sip:a@b.c"}},
		{name: "an index the query lists", op: fwd, raw: "target=sip:a@b.c&ringDelay=10&index=x&[x]=tel:%2B19005551234", bad: []string{"phoneNumber", "to", "delegator", "number", "contact"}, reason: "without a name"},
		{name: "no name, every input named", op: fwd, raw: "target=sip:a@b.c&ringDelay=10&=tel:%2B19005551234", bad: []string{"phoneNumber", "to", "delegator", "number", "contact"}, reason: "without a name"},
		{name: "no name, an operation without inputs", op: mustOperation("acceptWithPhoneAudio"), raw: "=tel:%2B19005551234", bad: []string{"phoneNumber", "to", "delegator", "number", "target", "contact"}, reason: "without a name"},

		// A dictionary entry keyed by a destination or operationId: MVC
		// and Web API bind x[0].key and x[0].value as x["phoneNumber"].
		{name: "a dictionary entry keyed by a destination", op: spa, raw: "to=sip:a@b.c&x%5B0%5D.key=phoneNumber&x%5B0%5D.value=tel:%2B19005551234", bad: []string{"phoneNumber"}, reason: "dictionary entry"},
		{name: "a dictionary entry keyed by a stray destination", op: spa, raw: "to=sip:a@b.c&x[0].Key=+Target&x[0].Value=tel:%2B19005551234", bad: []string{"target"}, reason: "dictionary entry"},
		{name: "a dictionary entry under the empty prefix", op: spa, raw: "to=sip:a@b.c&[0].KEY=operationid&[0].value=b", bad: []string{"operationId"}, reason: "dictionary entry"},
		{name: "a dictionary entry by index", op: fwd, raw: "target=sip:a@b.c&x.index=a&x[a].key=%74o&x[a].value=tel:%2B19005551234", bad: []string{"to"}, reason: "dictionary entry"},
		{name: "no name, blank, passes", op: spa, raw: "=&[]=+&to=sip:a@b.c", want: map[string]string{"to": "sip:a@b.c"}},

		{name: "semicolon", op: spa, raw: "to=tel:%2B19005550100;x", bad: []string{""}},
		{name: "IIS %u escape", op: spa, raw: "%u0074o=tel:%2B19005550100", bad: []string{""}},
		{name: "bad escape in a value", op: spa, raw: "x=%zz", bad: []string{""}},
		{name: "bad escape in an unknown name", op: spa, raw: "%zz=1", bad: []string{""}},
	}
	for _, tt := range tests {
		q, err := ParseQuery(tt.op, tt.raw)
		if tt.bad != nil {
			if err == nil {
				t.Errorf("%s: accepted", tt.name)
				continue
			}
			var names []string
			for _, p := range err.Parameters {
				names = append(names, p.Name)
				if !strings.Contains(p.Reason, tt.reason) {
					t.Errorf("%s: reason %q, want one saying %q", tt.name, p.Reason, tt.reason)
				}
			}
			if tt.bad[0] == "" {
				names = []string{""}
				if err != errMalformedQuery {
					t.Errorf("%s: %v, want the malformed query error", tt.name, err)
				}
			}
			if err.Status != 400 || err.Subcode != SubcodeParameterValidationFailure || !reflect.DeepEqual(names, tt.bad) {
				t.Errorf("%s: %v %v, want 400 naming %v", tt.name, err, err.Parameters, tt.bad)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		got := map[string]string{}
		for _, p := range tt.op.Properties {
			if v, ok := q.Get(p.Name); ok {
				got[p.Name] = v
			}
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: read %v, want %v", tt.name, got, tt.want)
		}
		if q.Encode() != tt.raw || q.Changed() {
			t.Errorf("%s: an unchanged query re-encodes as %q", tt.name, q.Encode())
		}
	}
}

// TestQueryEncode checks that only the replaced values change, byte for
// byte, in place and in order.
func TestQueryEncode(t *testing.T) {
	fwd := mustOperation("unansweredCallToContact")
	tests := []struct {
		raw  string
		set  map[string]string
		want string
	}{
		{"target=4255551234", map[string]string{"target": "tel:+14255551234"}, "target=tel%3A%2B14255551234"},
		{"z=%41&ringDelay=+07&b=2&target=x&a=%7e", map[string]string{"target": "sip:a b@c", "ringDelay": "7"}, "z=%41&ringDelay=7&b=2&target=sip%3Aa+b%40c&a=%7e"},
		{"target", map[string]string{"target": "x"}, "target"}, // absent (valueless): Set does nothing
		{"target=&x=1", map[string]string{"target": "x"}, "target=&x=1"},
		{"target=a", map[string]string{"target": "a"}, "target=a"}, // same value: unchanged
		{"ringDelay=5&target=a", map[string]string{"target": "b", "ringDelay": "6"}, "ringDelay=6&target=b"},
	}
	for _, tt := range tests {
		q, err := ParseQuery(fwd, tt.raw)
		if err != nil {
			t.Fatalf("%q: %v", tt.raw, err)
		}
		for k, v := range tt.set {
			q.Set(k, v)
		}
		got := q.Encode()
		if got != tt.want {
			t.Errorf("%q: %q, want %q", tt.raw, got, tt.want)
		}
		if q.Changed() != (got != tt.raw) {
			t.Errorf("%q: Changed %v", tt.raw, q.Changed())
		}
		back, perr := url.ParseQuery(got)
		if perr != nil {
			t.Fatalf("%q: re-encoded query does not parse: %v", tt.raw, perr)
		}
		for k, v := range tt.set {
			if _, given := back[k]; given && back.Get(k) != "" && back.Get(k) != v && got != tt.raw {
				t.Errorf("%q: %s reads back as %q, want %q", tt.raw, k, back.Get(k), v)
			}
		}
	}
}

// TestParseQueryAllocs: reading the usual query, and one with
// model-binding spellings in plain ASCII, allocates nothing.
func TestParseQueryAllocs(t *testing.T) {
	var q Query
	for _, raw := range []string{"to=sip:a@b.c&operationId=42&x", "a.b=1&c[0]=2&d[e]=3&[0].f=4"} {
		if n := testing.AllocsPerRun(100, func() {
			if err := parseQueryInto(&q, spa, raw); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%q: %v allocations", raw, n)
		}
	}
}

// accessTokenQueries are queries with and without a token in them.
var accessTokenQueries = []struct {
	raw  string
	want bool
}{
	{"access_token=x", true},
	{"to=sip:a@b.c&access_token=", true},
	{"access_token", true},
	{"Access_Token=x", true},
	{"access%5Ftoken=x", true},
	{"%61ccess_token=x", true},
	{"access_token%00=x", true},
	{"access+token=x", true}, // ParseQuery folds onto "accesstoken"; PHP registers access_token
	{"access_%E2%80%8Btoken=x", true},
	{"%EF%BD%81ccess_token=x", true}, // fullwidth a
	{"x.access_token=x", true},
	{"access_token[]=x", true},
	{"model%5Baccess_token%5D=x", true},
	{"", false},
	{"to=access_token", false},
	{"x_access_token=1&access_tokens=2&token=3&accesstoken=4", false},
	{"%zz=1&access_token=x", true},
	{"access_token%zz=x", false},
	// PHP registers a name with ' ', '.' and a '[' no ']' follows as '_',
	// its leading spaces dropped, up to a NUL, and an array under the
	// name before its '[' (see phpName).
	{"access.token=x", true},
	{"access%2Etoken=x", true},
	{"access%20token=x", true},
	{"access[token=x", true},
	{"access%5Btoken=x", true},
	{"+access.token=x", true},
	{"%20%20access+token=x", true},
	{"ACCESS.TOKEN=x", true},
	{"access.token%00x=x", true},
	{"access.token[]=x", true},
	{"access.token[%zz]=x", true}, // ParseQuery refuses the name; PHP reads it
	{"access_token[%zz]=x", true},
	{"to=sip:a@b.c&access.token=x", true},
	{"%u002Eaccess.token=x", false}, // PHP: _access_token
	{"access..token=x", false},      // PHP: access__token
	{"x.access.token=x", false},     // PHP: x_access_token
	{"[access.token=x", false},      // PHP drops it
	{"access[token]=x", false},      // PHP: the array access
	{"access.tokens=x", false},
	{"access%EF%BC%8Etoken=x", false}, // PHP renames the ASCII full stop only
}

// methodOverrideQueries are queries with and without a parameter that
// asks for another method, and the parameter.
var methodOverrideQueries = []struct {
	raw, want string
}{
	{"X-HTTP-Method-Override=PUT", "X-HTTP-Method-Override"},
	{"x-http-method-override=PUT", "X-HTTP-Method-Override"},
	{"X_HTTP_Method_Override=PUT", "X-HTTP-Method-Override"},
	{"X-HTTP-Method=PUT", "X-HTTP-Method"},
	{"x-method-override=PUT", "X-Method-Override"},
	{"_method=PUT", "_method"},
	{"_METHOD=put", "_method"},
	{"to=sip:a@b.c&_method", "_method"},
	{"X%2DHTTP%2DMethod%2DOverride=PUT", "X-HTTP-Method-Override"},
	{"%58-HTTP-Method-Override=PUT", "X-HTTP-Method-Override"},
	{"%u0058-HTTP-Method-Override=PUT", "X-HTTP-Method-Override"},
	{"%5f%6d%65%74%68%6f%64=PUT", "_method"},
	{"_method%00=PUT", "_method"},
	{"_me%E2%80%8Bthod=PUT", "_method"},
	{"%EF%BC%BFmethod=PUT", "_method"}, // fullwidth low line
	{"x.X-HTTP-Method-Override=PUT", "X-HTTP-Method-Override"},
	{"_method[]=PUT", "_method"},
	{"model%5B_method%5D=PUT", "_method"},
	{"%zz=1&_method=PUT", "_method"},
	{"%zz_method=PUT", ""},
	{"", ""},
	{"to=_method&x=X-HTTP-Method-Override", ""},
	{"method=PUT&-method=PUT&X-HTTP-Method-Overrides=PUT&X-HTTP-Methods=PUT", ""},
	// PHP registers a name with ' ', '.' and a '[' no ']' follows as '_',
	// its leading spaces dropped, up to a NUL, and an array under the
	// name before its '['.
	{".method=PUT", "_method"},
	{"%2Emethod=PUT", "_method"},
	{"%2emethod=PUT", "_method"},
	{"+.method=PUT", "_method"},
	{"%20%20.method=PUT", "_method"},
	{".METHOD=put", "_method"},
	{".method%00x=PUT", "_method"},
	{"_method%00x=PUT", "_method"},
	{".method[]=PUT", "_method"},
	{".method[x]=PUT", "_method"},
	{"X+HTTP+Method+Override=PUT", "X-HTTP-Method-Override"},
	{"X.HTTP.Method.Override=PUT", "X-HTTP-Method-Override"},
	{"X%20HTTP%20Method=PUT", "X-HTTP-Method"},
	{"X.Method-Override=PUT", "X-Method-Override"},
	{"X[HTTP-Method-Override=PUT", "X-HTTP-Method-Override"},
	{"X%5BHTTP[Method.Override=PUT", "X-HTTP-Method-Override"},
	{"%EF%BC%8Emethod=PUT", ""},        // PHP renames the ASCII full stop only
	{"+method=PUT", ""},                // PHP: method
	{"[method=PUT", ""},                // PHP drops it
	{"..method=PUT", ""},               // PHP: __method
	{"x.method=PUT", ""},               // PHP: x_method
	{"X[HTTP-Method]Override=PUT", ""}, // PHP: the array X
	{"%u002Emethod=PUT", "_method"},    // %uXXXX decoded, as ASP.NET decodes it
}

// TestReadQueryNames: one pass over a query finds both the method
// override and the access_token that its pairs alone have, whichever
// pair comes first, and a query of plain names costs no allocation.
func TestReadQueryNames(t *testing.T) {
	for _, a := range accessTokenQueries {
		for _, b := range methodOverrideQueries {
			want := QueryNames{MethodOverride: b.want, AccessToken: a.want}
			for _, raw := range []string{a.raw + "&" + b.raw, b.raw + "&" + a.raw} {
				if got := ReadQueryNames(raw); got != want {
					t.Errorf("ReadQueryNames(%q) = %+v, want %+v", raw, got, want)
				}
			}
		}
	}
	if got, want := ReadQueryNames("X-HTTP-Method=1&access_token=2&_method=3"), (QueryNames{"X-HTTP-Method", true}); got != want {
		t.Errorf("ReadQueryNames = %+v, want %+v", got, want)
	}
	for _, raw := range []string{"", "to=sip:a@b.c&x=1", "operationId=abc-1&threadId=x_y"} {
		if n := testing.AllocsPerRun(100, func() { ReadQueryNames(raw) }); n != 0 {
			t.Errorf("%q: %v allocations", raw, n)
		}
	}
}

// TestQueryNamesAccessToken: a token in the query is found however its
// name is spelled, as ParseQuery reads names; other names are not it.
func TestQueryNamesAccessToken(t *testing.T) {
	for _, tc := range accessTokenQueries {
		if got := ReadQueryNames(tc.raw).AccessToken; got != tc.want {
			t.Errorf("ReadQueryNames(%q).AccessToken = %v, want %v", tc.raw, got, tc.want)
		}
	}
}

// TestQueryNamesMethodOverride: a query parameter that asks for another
// method (ASP.NET MVC reads X-HTTP-Method-Override in the query; _method
// and the other headers' names are read by other frameworks) is found
// however its name is spelled or escaped, read leniently as ASP.NET reads
// a query (%uXXXX, a stray '%'), and named as the list spells it; other
// names are not it, and plain names cost no allocation.
func TestQueryNamesMethodOverride(t *testing.T) {
	for _, tc := range methodOverrideQueries {
		if got := ReadQueryNames(tc.raw).MethodOverride; got != tc.want {
			t.Errorf("ReadQueryNames(%q).MethodOverride = %q, want %q", tc.raw, got, tc.want)
		}
	}
}

// FuzzQueryNamesMethodOverride holds ReadQueryNames's MethodOverride to
// a plain reading: each pair's name decoded as ASP.NET decodes it ('+' a
// space, %XX bytes and %uXXXX runes, any other '%' kept) is, or has a
// part that is (see referenceBindingParts), or is registered by PHP as
// (see referencePHPName), one of the parameters in any letter case with
// '_' for some '-'. An ASCII name is found exactly then; a name that decodes
// to more than ASCII is found then at least (it may fold onto one
// besides). What is found is a pair's.
func FuzzQueryNamesMethodOverride(f *testing.F) {
	for _, s := range []string{"", "X-HTTP-Method-Override=PUT", "_method=PUT", "x.%u005fmethod=1", "%zz=1&X_Http-METHOD=PUT",
		"_me%E2%80%8Bthod=PUT", "a+b=c&%5Fmethod", "to=sip:a@b.c", "X-Method-Override%00=GET", "%EF%BC%BFmethod=1",
		".method=PUT", "+%2Emethod[x]=1", "X[HTTP.Method+Override", "[_method", "_method%00%5B"} {
		f.Add(s)
	}
	params := []string{"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override", "_method"}
	f.Fuzz(func(t *testing.T, raw string) {
		found := ""
		for pair := range strings.SplitSeq(raw, "&") {
			got := ReadQueryNames(pair).MethodOverride
			if got != "" && !slices.Contains(params, got) {
				t.Fatalf("%q: found %q, no parameter", pair, got)
			}
			name, _, _ := strings.Cut(pair, "=")
			decoded := referenceASPNETUnescape(name)
			want := false
			for _, part := range append(referenceBindingParts(decoded), referencePHPName(decoded)) {
				for _, p := range params {
					want = want || referenceUnderscoreSpelling(part, p)
				}
			}
			ascii := true
			for i := 0; i < len(decoded); i++ {
				ascii = ascii && decoded[i] < utf8.RuneSelf
			}
			if want && got == "" || ascii && !want && got != "" {
				t.Fatalf("%q (read as %q): found %q, want a parameter: %v", pair, decoded, got, want)
			}
			if found == "" {
				found = got
			}
		}
		if got := ReadQueryNames(raw).MethodOverride; got != found {
			t.Fatalf("%q: found %q, its pairs %q", raw, got, found)
		}
	})
}

// FuzzQueryNamesAccessToken holds ReadQueryNames's AccessToken to a
// plain reading: a pair's name is access_token in any letter case when
// url.QueryUnescape decodes it to a name that is, or has a part that is
// (see referenceBindingParts), access_token, or when, decoded as ASP.NET
// decodes it (see referenceASPNETUnescape), PHP registers it as
// access_token (see referencePHPName). An ASCII name is found exactly
// then; a name that decodes to more than ASCII is found then at least
// (it may fold onto it besides). A query has one when a pair has.
func FuzzQueryNamesAccessToken(f *testing.F) {
	for _, s := range []string{"", "access_token=x", "Access_Token", "to=sip:a@b.c&x.access_token=1", "access+token=x", "access.token=x",
		"%2Eaccess.token", "+access%5Btoken", "access.token[%zz]=1", "access[token]=x", "access_%E2%80%8Btoken", "%zz=1&access.token",
		"access.token%00x", "%u0061ccess.token"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		found := false
		for pair := range strings.SplitSeq(raw, "&") {
			got := ReadQueryNames(pair).AccessToken
			name, _, _ := strings.Cut(pair, "=")
			lenient := referenceASPNETUnescape(name)
			want := name != "" && strings.EqualFold(referencePHPName(lenient), AccessTokenParameter)
			if decoded, err := url.QueryUnescape(name); err == nil && name != "" {
				for _, part := range referenceBindingParts(decoded) {
					want = want || strings.EqualFold(part, AccessTokenParameter)
				}
			}
			ascii := true
			for i := 0; i < len(lenient); i++ {
				ascii = ascii && lenient[i] < utf8.RuneSelf
			}
			if want && !got || ascii && !want && got {
				t.Fatalf("%q (read as %q, by PHP as %q): found %v, want %v", pair, lenient, referencePHPName(lenient), got, want)
			}
			found = found || got
		}
		if got := ReadQueryNames(raw).AccessToken; got != found {
			t.Fatalf("%q: found %v, its pairs %v", raw, got, found)
		}
	})
}

// referencePHPName is the name under which PHP's
// php_register_variable_ex registers a decoded query name at the top of
// $_GET: the name is a C string (it ends at a NUL), its leading spaces
// are skipped, ' ' and '.' become '_' up to the first '[', which ends
// the name of an array when a ']' follows it and is otherwise '_', as is
// every ' ', '.' and '[' after it. A name that is empty there, or starts
// with '[', is dropped: "".
func referencePHPName(name string) string {
	if i := strings.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	for strings.HasPrefix(name, " ") {
		name = name[1:]
	}
	var out []byte
	for i := 0; i < len(name); i++ {
		switch c := name[i]; c {
		case ' ', '.':
			out = append(out, '_')
		case '[':
			if i == 0 {
				return ""
			}
			if strings.Contains(name[i+1:], "]") {
				return string(out)
			}
			out = append(out, '_')
			for _, c := range []byte(name[i+1:]) {
				if c == ' ' || c == '.' || c == '[' {
					c = '_'
				}
				out = append(out, c)
			}
			return string(out)
		default:
			out = append(out, c)
		}
	}
	return string(out)
}

// referenceASPNETUnescape decodes a query name as ASP.NET's
// HttpUtility.UrlDecode does: '+' is a space, %XX a byte, %uXXXX a rune,
// and any other '%' is kept as it is.
func referenceASPNETUnescape(s string) string {
	var out []byte
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			out = append(out, ' ')
		case c == '%' && i+2 < len(s) && isHexDigit(s[i+1]) && isHexDigit(s[i+2]):
			b, _ := strconv.ParseUint(s[i+1:i+3], 16, 8)
			out = append(out, byte(b))
			i += 2
		case c == '%' && i+5 < len(s) && (s[i+1] == 'u' || s[i+1] == 'U') && isHexDigit(s[i+2]) && isHexDigit(s[i+3]) && isHexDigit(s[i+4]) && isHexDigit(s[i+5]):
			r, _ := strconv.ParseUint(s[i+2:i+6], 16, 16)
			out = utf8.AppendRune(out, rune(r))
			i += 5
		default:
			out = append(out, c)
		}
	}
	return string(out)
}

func isHexDigit(c byte) bool {
	return strings.IndexByte("0123456789abcdefABCDEF", c) >= 0
}

// referenceUnderscoreSpelling reports whether name is p in any letter
// case, with '_' in place of some of p's '-'.
func referenceUnderscoreSpelling(name, p string) bool {
	if len(name) != len(p) {
		return false
	}
	for i := range len(p) {
		if !strings.EqualFold(name[i:i+1], p[i:i+1]) && !(name[i] == '_' && p[i] == '-') {
			return false
		}
	}
	return true
}
