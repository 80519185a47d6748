package ucwa

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/nyaruka/phonenumbers/v2"
	"golang.org/x/text/unicode/norm"
)

func mustNumbers(t testing.TB, region string, format NumberFormat, emergency []string, outsideLine ...string) *Numbers {
	t.Helper()
	n, err := NewNumbers(region, format, emergency, outsideLine...)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func checkProblem(t *testing.T, p Problem, subcode, reason string) {
	t.Helper()
	if p.Subcode != subcode || reason != "" && p.Reason != reason {
		t.Fatalf("problem %q %q, want %q %q", p.Subcode, p.Reason, subcode, reason)
	}
	if subcode, ok := knownReasons[p.Reason]; !ok || subcode != p.Subcode {
		t.Fatalf("problem %+v is not a known reason with its subcode", p)
	}
}

// usNumber is +1 425 555 1234 as Number reads it in the US.
var usNumber = Number{E164: "+14255551234", Region: "US", Type: NumberFixedLineOrMobile, forwarded: "tel:+14255551234"}

func withExt(n Number, ext string) Number {
	n.Extension = ext
	n.forwarded += ";ext=" + ext
	return n
}

func TestNumbersNumber(t *testing.T) {
	const nf, pvf = SubcodeNormalizationFailed, SubcodeParameterValidationFailure
	tests := []struct {
		in      string
		region  string // default "US"; "-" for none
		want    Number
		subcode string
		reason  string
	}{
		// Every documented spelling of one number.
		{in: "+14255551234", want: usNumber},
		{in: "tel:+14255551234", want: usNumber},
		{in: "TEL:+14255551234", want: usNumber},
		{in: "tel:+1-425-555-1234", want: usNumber},
		{in: "tel : +14255551234", want: usNumber},
		{in: " tel:\t+1 425 555 1234 ", want: usNumber},
		{in: "(425) 555-1234", want: usNumber},
		{in: "4255551234", want: usNumber},
		{in: "1-425-555-1234", want: usNumber},
		{in: "+1.425.555.1234", want: usNumber},
		{in: "+1 (425) 555/1234", want: usNumber},
		{in: "tel:4255551234", want: usNumber},
		{in: "+1 425\u00a0555\u202f1234", want: usNumber},
		{in: "+1-425-555-1234", region: "-", want: usNumber},
		{in: "+14255551234", region: "DE", want: usNumber},
		// Digits of other scripts, a fullwidth plus.
		{in: "٤٢٥٥٥٥١٢٣٤", want: usNumber},
		{in: "+١٤٢٥٥٥٥١٢٣٤", want: usNumber},
		{in: "＋１４２５５５５１２３４", want: usNumber},
		{in: "+१४२५५५५१२३४", want: usNumber},
		{in: "tel:+𝟏𝟒𝟐𝟓𝟓𝟓𝟓𝟏𝟐𝟑𝟒", want: usNumber},
		// Extensions.
		{in: "tel:+14255551234;ext=123", want: withExt(usNumber, "123")},
		{in: "tel:+14255551234;EXT=1-2-3", want: withExt(usNumber, "123")},
		{in: "+14255551234;ext=123", want: withExt(usNumber, "123")},
		{in: "+1 425 555 1234 x123", want: withExt(usNumber, "123")},
		{in: "+1 425 555 1234 X 123", want: withExt(usNumber, "123")},
		{in: "(425) 555-1234 ext. 123", want: withExt(usNumber, "123")},
		{in: "+1 425 555 1234 Ext123", want: withExt(usNumber, "123")},
		{in: "+1 425 555 1234 x١٢٣", want: withExt(usNumber, "123")},
		{in: "tel:+14255551234;ext=" + strings.Repeat("9", 20), want: withExt(usNumber, strings.Repeat("9", 20))},
		// Classification.
		{in: "+442071234567", want: Number{E164: "+442071234567", Region: "GB", Type: NumberFixedLine, forwarded: "tel:+442071234567"}},
		{in: "+44 20 7946 0958", want: Number{E164: "+442079460958", Region: "GB", Type: NumberFixedLine, forwarded: "tel:+442079460958"}},
		{in: "011 44 20 7946 0958", want: Number{E164: "+442079460958", Region: "GB", Type: NumberFixedLine, forwarded: "tel:+442079460958"}},
		{in: "+1 900 555 1234", want: Number{E164: "+19005551234", Region: "US", Type: NumberPremiumRate, forwarded: "tel:+19005551234"}},
		{in: "+1 800 555 1234", want: Number{E164: "+18005551234", Region: "US", Type: NumberTollFree, forwarded: "tel:+18005551234"}},
		{in: "+49 1512 3456789", want: Number{E164: "+4915123456789", Region: "DE", Type: NumberMobile, forwarded: "tel:+4915123456789"}},
		{in: "+800 1234 5678", want: Number{E164: "+80012345678", Region: "001", Type: NumberTollFree, forwarded: "tel:+80012345678"}},
		{in: "+881 612 345 678", want: Number{E164: "+881612345678", Region: "001", Type: NumberMobile, forwarded: "tel:+881612345678"}},
		{in: "+882 13 123 456", want: Number{E164: "+88213123456", Region: "001", Type: NumberUnknown, forwarded: "tel:+88213123456"}},
		{in: "+883 510 012 345", want: Number{E164: "+883510012345", Region: "001", Type: NumberVoIP, forwarded: "tel:+883510012345"}},
		{in: "+1 200 555 1234", want: Number{E164: "+12005551234", Region: "", Type: NumberUnknown, forwarded: "tel:+12005551234"}},
		// Emergency numbers of the default region.
		{in: "911", want: Number{E164: "911", Region: "US", Emergency: true, forwarded: "tel:911"}},
		{in: "tel:911", want: Number{E164: "911", Region: "US", Emergency: true, forwarded: "tel:911"}},
		{in: " 9-1-1 ", want: Number{E164: "911", Region: "US", Emergency: true, forwarded: "tel:911"}},
		{in: "112", want: Number{E164: "112", Region: "US", Emergency: true, forwarded: "tel:112"}},
		{in: "٩١١", want: Number{E164: "911", Region: "US", Emergency: true, forwarded: "tel:911"}},
		{in: "112", region: "DE", want: Number{E164: "112", Region: "DE", Emergency: true, forwarded: "tel:112"}},
		{in: "110", region: "DE", want: Number{E164: "110", Region: "DE", Emergency: true, forwarded: "tel:110"}},
		{in: "999", region: "GB", want: Number{E164: "999", Region: "GB", Emergency: true, forwarded: "tel:999"}},
		{in: "000", region: "AU", want: Number{E164: "000", Region: "AU", Emergency: true, forwarded: "tel:000"}},
		{in: "999", subcode: nf, reason: numNotPossible},
		{in: "+1911", subcode: nf, reason: numNotPossible},
		{in: "911;ext=1", subcode: nf, reason: numNotPossible},
		{in: "911", region: "-", subcode: nf, reason: numNoRegion},

		// No number at all.
		{in: "", subcode: pvf, reason: numNotNumber},
		{in: "  ", subcode: pvf, reason: numNotNumber},
		{in: "call me", subcode: pvf, reason: numNotNumber},
		{in: "sip:john@contoso.com", subcode: pvf, reason: numNotNumber},
		{in: "sip:+14255551234@gw.contoso.com;user=phone", subcode: pvf, reason: numNotNumber},
		{in: "mailto:a@b.c", subcode: pvf, reason: numNotNumber},
		{in: "x123", subcode: pvf, reason: numNotNumber},
		{in: "4255551234@contoso.com", subcode: pvf, reason: numNotNumber},
		{in: "-4255551234", subcode: pvf, reason: numNotNumber},
		// Numbers that do not normalize.
		{in: "tel:", subcode: nf, reason: numNotPossible},
		{in: "tel:abc", subcode: nf, reason: numLetters},
		{in: "+", subcode: nf, reason: numNotPossible},
		{in: "555-1234", subcode: nf, reason: numNotPossible},
		{in: "123", subcode: nf, reason: numNotPossible},
		{in: "+1425555123456789", subcode: nf, reason: numNotPossible},
		{in: "+999 123 456", subcode: nf, reason: numNotPossible},
		{in: "(425) 555-1234", region: "-", subcode: nf, reason: numNoRegion},
		{in: "tel:4255551234", region: "-", subcode: nf, reason: numNoRegion},
		{in: "+910000000000", subcode: nf, reason: numReadBack},
		// Dialled nationally, as a gateway that turns E.164 into its
		// region's national form dials it, a number that starts with the
		// international prefix is a call abroad: +81 10 683 1234 is
		// 010 683 1234 in Japan, the Niue +683 1234.
		{in: "+81 10 683 1234", subcode: nf, reason: numNationallyAbroad},
		{in: "tel:+81-10-44-20-7946-00", region: "JP", subcode: nf, reason: numNationallyAbroad},
		{in: "+91 0 6831234", subcode: nf, reason: numNationallyAbroad},
		{in: "+91 00 683 1234", region: "IN", subcode: nf, reason: numNationallyAbroad},
		{in: "+33 00 683 1234", subcode: nf, reason: numNationallyAbroad},
		{in: "0 00 683 1234", region: "FR", subcode: nf, reason: numNationallyAbroad},
		{in: "0 00 683 1234", region: "MX", subcode: nf, reason: numNationallyAbroad},
		{in: "+39 00 683 1234", subcode: nf, reason: numNationallyAbroad},
		{in: "+1 011 442 0794", subcode: nf, reason: numNationallyAbroad},
		// A valid number is never refused so: Israel's 1-800 numbers,
		// which a gateway dials without the national prefix, read with it
		// (01800...) start with the international prefix 018.
		{in: "+972 1800 123 456", want: Number{E164: "+9721800123456", Region: "IL", Type: NumberTollFree, forwarded: "tel:+9721800123456"}},
		{in: "+39 06 1234 5678", want: Number{E164: "+390612345678", Region: "IT", Type: NumberFixedLine, forwarded: "tel:+390612345678"}},
		{in: "03-1234-5678", region: "JP", want: Number{E164: "+81312345678", Region: "JP", Type: NumberFixedLine, forwarded: "tel:+81312345678"}},
		{in: "+49 100 000 000 000 000 00", subcode: nf},
		{in: "+1" + strings.Repeat("2", 200), subcode: nf, reason: numTooLong},
		{in: "tel:+1" + strings.Repeat("2", 120), subcode: nf, reason: numTooLong},
		{in: "1-800-FLOWERS", subcode: nf, reason: numLetters},
		// An extension mark before any digit is letters, not an extension.
		{in: "+x123", subcode: nf, reason: numLetters},
		{in: "+1 900 555 9999 garbage", subcode: nf, reason: numLetters},
		{in: "+1 425 555 1234 call me", subcode: nf, reason: numLetters},
		{in: "tel:+14255551234x123", subcode: nf, reason: numLetters},
		{in: "000AAA0X߇", subcode: nf, reason: numLetters},
		{in: "+250000000000A0", subcode: nf, reason: numLetters},
		{in: "+4910000000 A 0000 A000", subcode: nf, reason: numLetters},
		{in: "+1425555\u200b1234", subcode: nf, reason: numCharacter},
		{in: "+1425555\u00ad1234", subcode: nf, reason: numCharacter},
		{in: "+1 425\n555 1234", subcode: nf, reason: numCharacter},
		{in: "+1 425 555 1234 #12", subcode: nf, reason: numCharacter},
		{in: "+1 425 555 1234, 12", subcode: nf, reason: numCharacter},
		{in: "++14255551234", subcode: nf, reason: numCharacter},
		{in: "1+4255551234", subcode: nf, reason: numCharacter},
		{in: "tel:+1-425-555-1234;phone-context=example.com", subcode: nf, reason: numParameter},
		{in: "tel:5551234;phone-context=+1425", subcode: nf, reason: numParameter},
		{in: "tel:+14255551234;postd=pp22", subcode: nf, reason: numParameter},
		{in: "tel:+14255551234;isub=1234", subcode: nf, reason: numParameter},
		{in: "tel:+14255551234;ext=1;isub=2", subcode: nf, reason: numParameter},
		{in: "tel:+14255551234;foo", subcode: nf, reason: numParameter},
		{in: "tel:+14255551234;", subcode: nf, reason: numParameter},
		{in: "tel:+14255551234;ext=", subcode: nf, reason: numExtension},
		{in: "tel:+14255551234;ext", subcode: nf, reason: numExtension},
		{in: "tel:+14255551234;ext=12a", subcode: nf, reason: numExtension},
		{in: "tel:+14255551234;ext=1;ext=2", subcode: nf, reason: numExtension},
		{in: "+1 425 555 1234 x1;ext=2", subcode: nf, reason: numExtension},
		{in: "+1 425 555 1234 x", subcode: nf, reason: numExtension},
		{in: "+1 425 555 1234 x12b", subcode: nf, reason: numExtension},
		{in: "tel:+14255551234;ext=" + strings.Repeat("9", 21), subcode: nf, reason: numExtension},
	}
	numbers := map[string]*Numbers{}
	for _, tt := range tests {
		region := tt.region
		switch region {
		case "":
			region = "US"
		case "-":
			region = ""
		}
		n := numbers[region]
		if n == nil {
			n = mustNumbers(t, region, TelURI, nil)
			numbers[region] = n
		}
		t.Run(region+" "+tt.in, func(t *testing.T) {
			for round := range 2 { // the second answer comes from the cache
				got, p := n.Number(tt.in)
				if tt.subcode != "" {
					checkProblem(t, p, tt.subcode, tt.reason)
					if got != (Number{}) {
						t.Fatalf("refused, yet %+v", got)
					}
					continue
				}
				if !p.OK() {
					t.Fatalf("round %d: refused: %+v", round, p)
				}
				if got != tt.want {
					t.Fatalf("round %d: %+v, want %+v", round, got, tt.want)
				}
				if again, p := n.Number(got.Forwarded()); again != got || !p.OK() {
					t.Fatalf("the forwarded form reads as %+v, %+v", again, p)
				}
			}
		})
	}
}

// TestNumbersE164Format forwards numbers without the tel: scheme; the
// forwarded forms read back as themselves.
func TestNumbersE164Format(t *testing.T) {
	n := mustNumbers(t, "US", E164, nil)
	for in, want := range map[string]string{
		"tel:+1-425-555-1234":      "+14255551234",
		"(425) 555-1234 x12":       "+14255551234;ext=12",
		"tel:+14255551234;ext=007": "+14255551234;ext=007",
		"911":                      "911",
		"tel:112":                  "112",
	} {
		got, p := n.Number(in)
		if !p.OK() || got.Forwarded() != want {
			t.Errorf("Number(%q) = %q, %+v; want %q", in, got.Forwarded(), p, want)
		}
		if again, p := n.Number(want); !p.OK() || again != got {
			t.Errorf("Number(%q) = %+v, %+v; want %+v", want, again, p, got)
		}
	}
}

func TestNewNumbers(t *testing.T) {
	tests := []struct {
		region    string
		format    NumberFormat
		emergency []string
		ok        bool
	}{
		{"", TelURI, nil, true}, {"US", E164, nil, true}, {"de", TelURI, nil, true}, {"US", TelURI, []string{}, true},
		{"US", TelURI, []string{"911", " 112 ", "+1 425 555 0100", "4255550199", "999999"}, true},
		{"", TelURI, []string{"911", "+14255550100"}, true},
		{"XX", TelURI, nil, false}, {"USA", TelURI, nil, false}, {"US", NumberFormat(9), nil, false},
		{"US", TelURI, []string{"1"}, false},
		{"US", TelURI, []string{"9-1-1"}, false},
		{"US", TelURI, []string{"+14255550100;ext=1"}, false},
		{"US", TelURI, []string{"5550100"}, false},
		{"", TelURI, []string{"4255550100"}, false},
		{"US", TelURI, []string{"911", "sip:security@contoso.com"}, false},
		{"US", TelURI, []string{""}, false},
	}
	for _, tt := range tests {
		n, err := NewNumbers(tt.region, tt.format, tt.emergency)
		if (err == nil) != tt.ok {
			t.Errorf("NewNumbers(%q, %d, %q): %v", tt.region, tt.format, tt.emergency, err)
			continue
		}
		if err != nil {
			for _, e := range tt.emergency {
				if len(e) > 3 && strings.Contains(err.Error(), e) {
					t.Errorf("the error quotes a number: %v", err)
				}
			}
			continue
		}
		if n.DefaultRegion() != strings.ToUpper(tt.region) || n.Format() != tt.format {
			t.Errorf("NewNumbers(%q, %d) = %q, %d", tt.region, tt.format, n.DefaultRegion(), n.Format())
		}
	}
}

// TestNumbersEmergencyList: a configured list replaces the region's
// emergency numbers; a full number in it is marked and normalized as
// usual.
func TestNumbersEmergencyList(t *testing.T) {
	n := mustNumbers(t, "US", TelURI, []string{"911", "933", "+1 425 555 0100"})
	tests := []struct {
		in        string
		forwarded string
		emergency bool
	}{
		{"911", "tel:911", true},
		{"933", "tel:933", true},
		{"112", "", false}, // the region's, not listed
		{"(425) 555-0100", "tel:+14255550100", true},
		{"tel:+14255550100", "tel:+14255550100", true},
		{"+14255550100 x1", "tel:+14255550100;ext=1", false}, // behind it, somewhere else
		{"+14255550101", "tel:+14255550101", false},
	}
	for _, tt := range tests {
		got, p := n.Number(tt.in)
		if got.Forwarded() != tt.forwarded || got.Emergency != tt.emergency || p.OK() != (tt.forwarded != "") {
			t.Errorf("Number(%q) = %+v, %+v", tt.in, got, p)
		}
	}
	none := mustNumbers(t, "US", TelURI, []string{})
	if got, p := none.Number("911"); p.OK() {
		t.Errorf("an empty list still has 911: %+v", got)
	}
	noRegion := mustNumbers(t, "", E164, []string{"112"})
	if got, p := noRegion.Number("112"); !p.OK() || got.Forwarded() != "112" || !got.Emergency || got.Region != "" {
		t.Errorf("a listed code without a region: %+v, %+v", got, p)
	}
}

// TestNumbersOutsideLineEmergency: with outside_line, a tel: URI or a
// bare number that is exactly an outside-line prefix and an emergency
// short code (of the region, or of the emergency list) is an emergency
// number, forwarded as written (no country code before it) and masked
// whole, in every property Number and Destination read; a SIP user of
// those digits reads as it did (DialString), and digits that are more
// or less than a prefix and a code, or a country code, an extension or a
// pause among them, read as without outside_line. So do a prefix and a
// code that, dialled as written, are a valid number of the region
// (8112 in Luxembourg, with outside_line 8) or a premium-rate short code
// (8112 in Gibraltar): a pool or a gateway that does not take the prefix
// rings that. Without outside_line nothing changes.
func TestNumbersOutsideLineEmergency(t *testing.T) {
	us, usPlain := mustNumbers(t, "US", TelURI, nil, "9"), mustNumbers(t, "US", TelURI, nil)
	de, dePlain := mustNumbers(t, "DE", E164, nil, "0"), mustNumbers(t, "DE", E164, nil)
	lu, luPlain := mustNumbers(t, "LU", TelURI, nil, "8"), mustNumbers(t, "LU", TelURI, nil)
	gi, giPlain := mustNumbers(t, "GI", TelURI, nil, "8"), mustNumbers(t, "GI", TelURI, nil)
	listed := mustNumbers(t, "US", TelURI, []string{"933", "+1 425 555 0100"}, "9", "81")
	tests := []struct {
		n, plain  *Numbers
		in        string
		forwarded string // "": read as by plain
	}{
		{us, usPlain, "tel:9911", "tel:9911"},
		{us, usPlain, "9911", "tel:9911"},
		{us, usPlain, "9112", "tel:9112"},
		{us, usPlain, "tel:9-911", "tel:9911"},
		{us, usPlain, " tel : 9 911 ", "tel:9911"},
		{us, usPlain, "９９１１", "tel:9911"},
		{de, dePlain, "tel:0112", "0112"},
		{de, dePlain, "0112", "0112"},
		{de, dePlain, "tel:0110", "0110"},
		{listed, nil, "tel:9933", "tel:9933"},
		{listed, nil, "81933", "tel:81933"},
		// No exact prefix and emergency code.
		{us, usPlain, "tel:99110", ""},
		{us, usPlain, "tel:9912", ""},
		{us, usPlain, "tel:9911234", ""},
		{us, usPlain, "tel:99911", ""},
		{us, usPlain, "tel:+19911", ""},
		{us, usPlain, "tel:9911;ext=1", ""},
		{us, usPlain, "9911 x1", ""},
		{us, usPlain, "9,911", ""},
		{us, usPlain, "tel:9", ""},
		{de, dePlain, "tel:01120", ""},
		{de, dePlain, "tel:0113", ""},
		{de, dePlain, "tel:00112", ""},
		{lu, luPlain, "tel:8112", ""}, // +352 8112 as written
		{lu, luPlain, "8113", ""},
		{gi, giPlain, "tel:8112", ""},         // a premium-rate short code as written
		{listed, nil, "tel:9911", ""},         // the list replaces the region's codes
		{listed, nil, "tel:914255550100", ""}, // a listed number in full is no short code
	}
	for _, tt := range tests {
		num, p := tt.n.Number(tt.in)
		d, dp := tt.n.Destination(tt.in)
		if tt.forwarded == "" {
			if num.Emergency || num.OutsideLine || d.Number.Emergency {
				t.Errorf("Number(%q) = %+v: an emergency number", tt.in, num)
			}
			if tt.plain != nil {
				want, wp := tt.plain.Number(tt.in)
				if num != want || p != wp {
					t.Errorf("Number(%q) = %+v, %+v; without outside_line %+v, %+v", tt.in, num, p, want, wp)
				}
			}
			continue
		}
		if !p.OK() || !dp.OK() || !num.Emergency || !num.OutsideLine || num.Forwarded() != tt.forwarded || d.Value != tt.forwarded || d.Number != num {
			t.Errorf("Number(%q) = %+v, %+v; Destination %+v, %+v; want an emergency number forwarded as %q", tt.in, num, p, d, dp, tt.forwarded)
		}
		if num.Type != NumberUnknown || num.Region != tt.n.DefaultRegion() || num.Extension != "" {
			t.Errorf("Number(%q) = %+v: not an emergency code of the default region", tt.in, num)
		}
		if m := d.Masked(); m != maskedSecret {
			t.Errorf("Number(%q) masked as %q", tt.in, m)
		}
		if tt.plain != nil {
			if was, _ := tt.plain.Number(tt.in); was.Emergency {
				t.Errorf("Number(%q) without outside_line: %+v, an emergency number already", tt.in, was)
			}
		}
		if again, p := tt.n.Number(num.Forwarded()); !p.OK() || again != num {
			t.Errorf("Number(%q) = %+v, %+v; want %+v", num.Forwarded(), again, p, num)
		}
	}
	// The SIP forms read as before: a user of digits as a dial string,
	// a telephone user as a phone number, a second prefix after a pause
	// as no emergency number; a prefix and a code that are something else
	// as written as no emergency number, also after a pause (Gibraltar's
	// a premium-rate short code).
	for _, c := range []struct {
		n                  *Numbers
		in                 string
		emergency, premium bool
	}{
		{us, "sip:9911@gw", true, false}, {us, "sip:9,911@gw", true, false}, {us, "sip:9,9911@gw", false, false},
		{lu, "sip:8112@gw", false, false}, {lu, "sip:8,112@gw", false, false}, {lu, "sip:112@gw", true, false},
		{gi, "sip:8112@gw", false, true}, {gi, "sip:8w112@gw", false, true}, {gi, "sip:112@gw", true, false},
	} {
		d, p := c.n.Destination(c.in)
		if !p.OK() || d.IsNumber() || d.Dial == nil || d.Dial.Emergency != c.emergency || d.Dial.Premium != c.premium {
			t.Errorf("%s: Destination(%q) = %+v, %+v", c.n.DefaultRegion(), c.in, d, p)
		}
	}
	// A telephone SIP user is a tel: URI's number in SIP.
	if d, p := us.Destination("sip:9911@gw;user=phone"); !p.OK() || !d.Number.OutsideLine || !d.Number.Emergency || d.Value != "sip:9911@gw;user=phone" {
		t.Errorf("a telephone SIP user of an outside line and 911: %+v, %+v", d, p)
	}
}

func TestNumbersDestination(t *testing.T) {
	const nf, pvf = SubcodeNormalizationFailed, SubcodeParameterValidationFailure
	premium := Number{E164: "+19005551234", Region: "US", Type: NumberPremiumRate, forwarded: "tel:+19005551234"}
	tests := []struct {
		in      string
		want    Destination
		dial    []string // the E.164 of Dial's readings; "?" for Unjudgeable
		subcode string
		reason  string
	}{
		// Plain SIP users carry no number.
		{in: "sip:john@contoso.com", want: Destination{Value: "sip:john@contoso.com", SIP: true, Host: "contoso.com"}},
		{in: "sip : John@CONTOSO.com", want: Destination{Value: "sip:John@contoso.com", SIP: true, Host: "contoso.com"}},
		{in: "sips:john.doe@contoso.com:5061;transport=tls", want: Destination{Value: "sips:john.doe@contoso.com:5061;transport=tls", SIP: true, Host: "contoso.com"}},
		{in: "sip:user@[2001:DB8::1]:5060", want: Destination{Value: "sip:user@[2001:db8::1]:5060", SIP: true, Host: "[2001:db8::1]"}},
		{in: "sip:user@192.0.2.1", want: Destination{Value: "sip:user@192.0.2.1", SIP: true, Host: "192.0.2.1"}},
		{in: "sip:j%40hn@contoso.com", want: Destination{Value: "sip:j%40hn@contoso.com", SIP: true, Host: "contoso.com"}},
		{in: "sip:alice;day=tuesday@atlanta.com", want: Destination{Value: "sip:alice;day=tuesday@atlanta.com", SIP: true, Host: "atlanta.com"}},
		{in: "sip:14255551234@gw.contoso.com", want: Destination{Value: "sip:14255551234@gw.contoso.com", SIP: true, Host: "gw.contoso.com"}, dial: []string{"+14255551234"}},
		{in: "sip:1-900-555-1234@gw.contoso.com", want: Destination{Value: "sip:1-900-555-1234@gw.contoso.com", SIP: true, Host: "gw.contoso.com"}, dial: []string{"+19005551234"}},
		{in: "sip:442071234567@gw.contoso.com", want: Destination{Value: "sip:442071234567@gw.contoso.com", SIP: true, Host: "gw.contoso.com"}, dial: []string{"+442071234567"}},
		{in: "sip:6125551234;day=tuesday@gw.contoso.com", want: Destination{Value: "sip:6125551234;day=tuesday@gw.contoso.com", SIP: true, Host: "gw.contoso.com"}, dial: []string{"+16125551234", "+6125551234"}},
		{in: "sip:9,19005551234@gw.contoso.com", want: Destination{Value: "sip:9,19005551234@gw.contoso.com", SIP: true, Host: "gw.contoso.com"}, dial: []string{"?"}},
		// DTMF keys A to D (RFC 2806's dtmf-digit) are dial characters as
		// '*' and '#' are; any other character but a letter separates
		// digits that a gateway keeping only what it can dial dials.
		{in: "sip:1900555123a4@gw.contoso.com", want: Destination{Value: "sip:1900555123a4@gw.contoso.com", SIP: true, Host: "gw.contoso.com"}, dial: []string{"?"}},
		{in: "sip:D19005551234@gw.contoso.com", want: Destination{Value: "sip:D19005551234@gw.contoso.com", SIP: true, Host: "gw.contoso.com"}, dial: []string{"?"}},
		// Digits too many for the number they start (+1 900 555 1234
		// and two more; a switch may complete the call on the first
		// eleven): no rule can tell which a gateway takes. Too few, or
		// far too many, for any number: a name, and no reading either.
		{in: "sip:1900555123499@gw.contoso.com", want: Destination{Value: "sip:1900555123499@gw.contoso.com", SIP: true, Host: "gw.contoso.com"}, dial: []string{"?"}},
		{in: "sip:" + strings.Repeat("1", 101) + "@gw.contoso.com", want: Destination{Value: "sip:" + strings.Repeat("1", 101) + "@gw.contoso.com", SIP: true, Host: "gw.contoso.com"}, dial: []string{"?"}},
		{in: "sip:123456@contoso.com", want: Destination{Value: "sip:123456@contoso.com", SIP: true, Host: "contoso.com"}},
		{in: "sip:12345678@contoso.com", want: Destination{Value: "sip:12345678@contoso.com", SIP: true, Host: "contoso.com"}},
		{in: "sip:1900_555_1234@gw.contoso.com", want: Destination{Value: "sip:1900_555_1234@gw.contoso.com", SIP: true, Host: "gw.contoso.com"}, dial: []string{"+19005551234"}},
		{in: "sip:1900~555!1234'@gw.contoso.com", want: Destination{Value: "sip:1900~555!1234'@gw.contoso.com", SIP: true, Host: "gw.contoso.com"}, dial: []string{"+19005551234"}},
		{in: "sip:1900+555$1234@gw.contoso.com", want: Destination{Value: "sip:1900+555$1234@gw.contoso.com", SIP: true, Host: "gw.contoso.com"}, dial: []string{"+19005551234"}},
		{in: "sip:1900%E2%80%90555%E2%80%931234@gw.contoso.com", want: Destination{Value: "sip:1900%E2%80%90555%E2%80%931234@gw.contoso.com", SIP: true, Host: "gw.contoso.com"}, dial: []string{"+19005551234"}},
		{in: "sip:%EF%BC%91900%EF%BC%8D555%EF%BC%8D1234@gw.contoso.com", want: Destination{Value: "sip:%EF%BC%91900%EF%BC%8D555%EF%BC%8D1234@gw.contoso.com", SIP: true, Host: "gw.contoso.com"}, dial: []string{"?"}},
		// Fullwidth digits alone are read as the digits they are; mixed
		// with ASCII digits, which a gateway that keeps only ASCII
		// digits dials alone (+91 90055 51234 with a Devanagari 9 before
		// 19005551234 to the edge, +1 900 to such a gateway), no rule
		// can judge them.
		{in: "sip:%EF%BC%91%EF%BC%99%EF%BC%90%EF%BC%90%EF%BC%8D%EF%BC%95%EF%BC%95%EF%BC%95%EF%BC%8D%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94@gw.contoso.com", want: Destination{Value: "sip:%EF%BC%91%EF%BC%99%EF%BC%90%EF%BC%90%EF%BC%8D%EF%BC%95%EF%BC%95%EF%BC%95%EF%BC%8D%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94@gw.contoso.com", SIP: true, Host: "gw.contoso.com"}, dial: []string{"+19005551234"}},
		{in: "sip:%E0%A5%AF19005551234@gw.contoso.com", want: Destination{Value: "sip:%E0%A5%AF19005551234@gw.contoso.com", SIP: true, Host: "gw.contoso.com"}, dial: []string{"?"}},
		{in: "sip:x%E0%A5%AF19005551234@gw.contoso.com", want: Destination{Value: "sip:x%E0%A5%AF19005551234@gw.contoso.com", SIP: true, Host: "gw.contoso.com"}, dial: []string{"?"}},
		// A name of six digits or more is read by its digits alone, as a
		// gateway that keeps only digits dials it.
		{in: "sip:x19005551234@gw.contoso.com", want: Destination{Value: "sip:x19005551234@gw.contoso.com", SIP: true, Host: "gw.contoso.com"}, dial: []string{"+19005551234"}},
		{in: "sip:19005551234%C3%A9@gw.contoso.com", want: Destination{Value: "sip:19005551234%C3%A9@gw.contoso.com", SIP: true, Host: "gw.contoso.com"}, dial: []string{"+19005551234"}},
		{in: "sip:%C3%A919005551234abc@gw.contoso.com", want: Destination{Value: "sip:%C3%A919005551234abc@gw.contoso.com", SIP: true, Host: "gw.contoso.com"}, dial: []string{"+19005551234"}},
		// Letters are counted without the dial characters (A to D, P,
		// W): a number padded with letters, as the README writes one,
		// stays a name only when the letters that are no dial
		// characters are as many as its digits or more.
		{in: "sip:xyzxyzxyzxyz19005551234@gw.contoso.com", want: Destination{Value: "sip:xyzxyzxyzxyz19005551234@gw.contoso.com", SIP: true, Host: "gw.contoso.com"}},
		{in: "sip:abcdefghijkl19005551234@gw.contoso.com", want: Destination{Value: "sip:abcdefghijkl19005551234@gw.contoso.com", SIP: true, Host: "gw.contoso.com"}, dial: []string{"+19005551234"}},
		{in: "sip:alice.smith2024@contoso.com", want: Destination{Value: "sip:alice.smith2024@contoso.com", SIP: true, Host: "contoso.com"}},
		{in: "sip:12345@contoso.com", want: Destination{Value: "sip:12345@contoso.com", SIP: true, Host: "contoso.com"}},
		{in: "sip:1234@contoso.com", want: Destination{Value: "sip:1234@contoso.com", SIP: true, Host: "contoso.com"}},
		{in: "sip:911@contoso.com", want: Destination{Value: "sip:911@contoso.com", SIP: true, Host: "contoso.com"}},
		{in: "sip:john4255551234@contoso.com", want: Destination{Value: "sip:john4255551234@contoso.com", SIP: true, Host: "contoso.com"}, dial: []string{"+14255551234"}},
		{in: "sip:j.smith.12345@contoso.com", want: Destination{Value: "sip:j.smith.12345@contoso.com", SIP: true, Host: "contoso.com"}},
		// Numbers in SIP users, with and without user=phone.
		{in: "sip:+14255551234@gw.contoso.com;user=phone", want: Destination{Value: "sip:+14255551234@gw.contoso.com;user=phone", SIP: true, Host: "gw.contoso.com", Number: usNumber}},
		{in: "sip:+1-900-555-1234@gw.contoso.com;user=phone", want: Destination{Value: "sip:+19005551234@gw.contoso.com;user=phone", SIP: true, Host: "gw.contoso.com", Number: premium}},
		{in: "sip:+19005551234@gw;user=phone", want: Destination{Value: "sip:+19005551234@gw;user=phone", SIP: true, Host: "gw", Number: premium}},
		{in: "sip:+1(900)555.1234@GW.contoso.com:5060;transport=tcp", want: Destination{Value: "sip:+19005551234@gw.contoso.com:5060;transport=tcp", SIP: true, Host: "gw.contoso.com", Number: premium}},
		{in: "sip:4255551234@gw.contoso.com;user=phone", want: Destination{Value: "sip:+14255551234@gw.contoso.com;user=phone", SIP: true, Host: "gw.contoso.com", Number: usNumber}},
		{in: "sip:%2B1-425-555-1234@gw.contoso.com", want: Destination{Value: "sip:+14255551234@gw.contoso.com", SIP: true, Host: "gw.contoso.com", Number: usNumber}},
		{in: "sip:%2B%D9%A1%D9%A4%D9%A2%D9%A5%D9%A5%D9%A5%D9%A5%D9%A1%D9%A2%D9%A3%D9%A4@gw.contoso.com", want: Destination{Value: "sip:+14255551234@gw.contoso.com", SIP: true, Host: "gw.contoso.com", Number: usNumber}},
		// A fullwidth plus, which the number rules read as '+', makes the
		// user a telephone number too: it was a name, judged by
		// sip_domains alone.
		{in: "sip:%EF%BC%8B1-425-555-1234@gw.contoso.com", want: Destination{Value: "sip:+14255551234@gw.contoso.com", SIP: true, Host: "gw.contoso.com", Number: usNumber}},
		{in: "sip:%ef%bc%8b19005551234;ext=1@gw.contoso.com", want: Destination{Value: "sip:+19005551234;ext=1@gw.contoso.com", SIP: true, Host: "gw.contoso.com",
			Number: Number{E164: "+19005551234", Extension: "1", Region: "US", Type: NumberPremiumRate, forwarded: "tel:+19005551234;ext=1"}}},
		{in: "sip:+14255551234;ext=12@gw.contoso.com;user=phone", want: Destination{Value: "sip:+14255551234;ext=12@gw.contoso.com;user=phone", SIP: true, Host: "gw.contoso.com", Number: withExt(usNumber, "12")}},
		{in: "sip:+1-425-555-1234;EXT=1-2@gw.contoso.com", want: Destination{Value: "sip:+14255551234;ext=12@gw.contoso.com", SIP: true, Host: "gw.contoso.com", Number: withExt(usNumber, "12")}},
		// An escaped ';' and '=' in a telephone user are an extension's
		// too: forwarded unescaped, as judged (max_extension_digits), so
		// that no gateway reads the escapes as digits of the number.
		{in: "sip:+14255551234%3Bext%3D19005551234@gw.contoso.com;user=phone", want: Destination{Value: "sip:+14255551234;ext=19005551234@gw.contoso.com;user=phone", SIP: true, Host: "gw.contoso.com", Number: withExt(usNumber, "19005551234")}},
		{in: "sip:+14255551234%3bext=12@gw.contoso.com;user=phone", want: Destination{Value: "sip:+14255551234;ext=12@gw.contoso.com;user=phone", SIP: true, Host: "gw.contoso.com", Number: withExt(usNumber, "12")}},
		{in: "sip:911@gw.contoso.com;user=phone", want: Destination{Value: "sip:911@gw.contoso.com;user=phone", SIP: true, Host: "gw.contoso.com",
			Number: Number{E164: "911", Region: "US", Emergency: true, forwarded: "tel:911"}}},
		// tel: and bare numbers.
		{in: "tel:+1-900-555-1234", want: Destination{Value: "tel:+19005551234", Number: premium}},
		{in: "+19005551234", want: Destination{Value: "tel:+19005551234", Number: premium}},
		{in: "(425) 555-1234 x12", want: Destination{Value: "tel:+14255551234;ext=12", Number: withExt(usNumber, "12")}},
		{in: "911", want: Destination{Value: "tel:911", Number: Number{E164: "911", Region: "US", Emergency: true, forwarded: "tel:911"}}},

		// The SIP examples.
		{in: "sip:john@contoso.com;x\r\nRecord-Route: <sip:evil.example>", subcode: pvf, reason: sipControl},
		{in: "sip:john@contoso.com?\r\nContact: <sip:+19005551234@gw>", subcode: pvf, reason: sipControl},
		{in: "sip:john@contoso.com;user=phone\u0000+19005551234", subcode: pvf, reason: sipControl},
		{in: "sip:a@b.com;<script>", subcode: pvf, reason: sipDelimiter},
		{in: "sip:john@contoso.com;maddr=gw.evil.example", subcode: pvf, reason: sipMaddr},
		{in: "sip:a@evil.com@contoso.com", subcode: pvf, reason: sipSecondAt},
		{in: "sip:+1 (900) 555-1234@gw.contoso.com;user=phone", subcode: pvf, reason: sipSpace},
		// Telephone users that do not normalize.
		{in: "sip:john@contoso.com;user=phone", subcode: nf, reason: numLetters},
		{in: "sip:+1900FLOWERS@gw.contoso.com", subcode: nf, reason: numLetters},
		{in: "sip:+alice1@contoso.com", subcode: nf, reason: numLetters},
		{in: "sip:+14255551234x12@gw.contoso.com", subcode: nf, reason: numLetters},
		{in: "sip:+1-425-555-1234;phone-context=example.com@gw.contoso.com", subcode: nf, reason: numParameter},
		{in: "sip:+14255551234;postd=pp22@gw.contoso.com;user=phone", subcode: nf, reason: numParameter},
		{in: "sip:+14255551234;isub=12@gw.contoso.com", subcode: nf, reason: numParameter},
		{in: "sip:5551234;phone-context=%2B1425@gw.contoso.com;user=phone", subcode: nf, reason: numParameter},
		{in: "sip:+910000000000@gw.contoso.com", subcode: nf, reason: numReadBack},
		{in: "sip:+81106831234@gw.contoso.com;user=phone", subcode: nf, reason: numNationallyAbroad},
		{in: "sip:555-1234@gw.contoso.com;user=phone", subcode: nf, reason: numNotPossible},
		{in: "sip:%2B1425555%E2%80%8B1234@gw.contoso.com", subcode: pvf, reason: sipEscapeDecode},
		// A user that is no telephone number carries no telephone
		// number's parameter: RFC 3966 reads a local number with one.
		{in: "sip:5551234;phone-context=+1900@gw.contoso.com", subcode: pvf, reason: sipTelParamInName},
		{in: "sip:14255551234;ext=011442071234567@gw.contoso.com", subcode: pvf, reason: sipTelParamInName},
		{in: "sip:alice;POSTD=pp1234@atlanta.com", subcode: pvf, reason: sipTelParamInName},
		{in: "sip:5551234%3Bphone-context=%2B1900@gw.contoso.com", subcode: pvf, reason: sipTelParamInName},
		// A user holding a URI, which a gateway that decodes it may dial.
		{in: "sip:tel%3A%2B19005551234@gw.contoso.com", subcode: pvf, reason: sipURIInUser},
		{in: "sip:TEL%3a19005551234@gw.contoso.com", subcode: pvf, reason: sipURIInUser},
		{in: "sip:tel%253A%252B19005551234@gw.contoso.com", subcode: pvf, reason: sipURIInUser},
		{in: "sip:x.sips%3A19005551234%40gw@gw.contoso.com", subcode: pvf, reason: sipURIInUser},
		{in: "sips:sip%3A%2B19005551234%40gw@gw.contoso.com;user=phone", subcode: pvf, reason: sipURIInUser},
		// ... also when its colon, or a letter of its scheme, is a
		// look-alike that a normalizer (NFKC) or a gateway that maps
		// confusables reads as ':' or as the letter, in any decoding.
		{in: "sip:tel%EF%BC%9A%2B14255551234@gw.contoso.com", subcode: pvf, reason: sipURIInUser},     // fullwidth colon
		{in: "sip:tel%EF%BC%9A+14255551234@gw.contoso.com", subcode: pvf, reason: sipURIInUser},       // fullwidth colon, raw +
		{in: "sip:TEL%EF%B9%95+14255551234@gw.contoso.com", subcode: pvf, reason: sipURIInUser},       // small colon
		{in: "sip:sips%EF%B8%93%2B14255551234@gw.contoso.com", subcode: pvf, reason: sipURIInUser},    // vertical colon
		{in: "sip:tel%E2%88%B6%2B14255551234@gw.contoso.com", subcode: pvf, reason: sipURIInUser},     // ratio
		{in: "sip:tel%EA%9E%89%2B14255551234@gw.contoso.com", subcode: pvf, reason: sipURIInUser},     // modifier letter colon
		{in: "sip:tel%CB%90%2B14255551234@gw.contoso.com", subcode: pvf, reason: sipURIInUser},        // modifier letter triangular colon
		{in: "sip:tel%D6%89%2B14255551234@gw.contoso.com", subcode: pvf, reason: sipURIInUser},        // Armenian full stop
		{in: "sip:x.sip%E2%81%9A14255551234%40gw@gw.contoso.com", subcode: pvf, reason: sipURIInUser}, // two dot punctuation
		{in: "sip:tel%25EF%25BC%259A%252B14255551234@gw.contoso.com", subcode: pvf, reason: sipURIInUser},
		{in: "sip:tel%25uFF1A%252B14255551234@gw.contoso.com", subcode: pvf, reason: sipURIInUser},
		{in: "sip:%EF%BD%94%EF%BD%85%EF%BD%8C%EF%BC%9A%2B14255551234@gw.contoso.com", subcode: pvf, reason: sipURIInUser}, // fullwidth letters
		{in: "sip:%C5%BFip%EF%BC%9A14255551234%40gw@gw.contoso.com", subcode: pvf, reason: sipURIInUser},                  // long s
		{in: "sip:%C3%A9tel%EF%BC%9A%2B14255551234@gw.contoso.com", subcode: pvf, reason: sipURIInUser},                   // after a letter that is not ASCII
		{in: "sip:s%C4%B1p%EF%BC%9A14255551234%40gw@gw.contoso.com", subcode: pvf, reason: sipURIInUser},                  // dotless i
		{in: "sip:tel%CC%81%EF%BC%9A%2B14255551234@gw.contoso.com", subcode: pvf, reason: sipURIInUser},                   // a mark NFKC composes
		{in: "sip:tel\uff1a+14255551234@gw.contoso.com", subcode: pvf, reason: sipNonASCII},                               // raw: no SIP URI
		{in: "sip:gossip%EF%BC%9A1@contoso.com", want: Destination{Value: "sip:gossip%EF%BC%9A1@contoso.com", SIP: true, Host: "contoso.com"}},
		{in: "sip:hotel%E2%88%B6x@contoso.com", want: Destination{Value: "sip:hotel%E2%88%B6x@contoso.com", SIP: true, Host: "contoso.com"}},
		{in: "sip:gossip%3A1@contoso.com", want: Destination{Value: "sip:gossip%3A1@contoso.com", SIP: true, Host: "contoso.com"}},
		{in: "sip:hotel.sips@contoso.com", want: Destination{Value: "sip:hotel.sips@contoso.com", SIP: true, Host: "contoso.com"}},
		// Neither.
		{in: "", subcode: pvf, reason: numNotDestination},
		{in: "john@contoso.com", subcode: pvf, reason: numNotDestination},
		{in: "4255551234@gw.contoso.com", subcode: pvf, reason: numNotDestination},
		{in: "https://contoso.com/", subcode: pvf, reason: numNotDestination},
		{in: "sip:john", subcode: pvf, reason: sipNoUser},
		{in: "tel:+1 900 555 9999 garbage", subcode: nf, reason: numLetters},
		{in: "+1 900 555 9999 garbage", subcode: nf, reason: numLetters},
	}
	n := mustNumbers(t, "US", TelURI, nil)
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			for round := range 2 {
				got, p := n.Destination(tt.in)
				if tt.subcode != "" {
					checkProblem(t, p, tt.subcode, tt.reason)
					if got != (Destination{}) {
						t.Fatalf("refused, yet %+v", got)
					}
					continue
				}
				if !p.OK() {
					t.Fatalf("round %d: refused: %+v", round, p)
				}
				if gotDial := dialSummary(got.Dial); !slices.Equal(gotDial, tt.dial) {
					t.Fatalf("round %d: read as the dial string %q, want %q", round, gotDial, tt.dial)
				}
				withoutDial := got
				withoutDial.Dial, withoutDial.Keypad = nil, nil
				if withoutDial != tt.want {
					t.Fatalf("round %d: %+v, want %+v", round, got, tt.want)
				}
				if got.IsNumber() != (tt.want.Number.E164 != "") {
					t.Fatalf("IsNumber() = %v", got.IsNumber())
				}
				if again, p := n.Destination(got.Value); !sameDestination(again, got) || !p.OK() {
					t.Fatalf("the forwarded form reads as %+v, %+v", again, p)
				}
			}
		})
	}
}

// TestDestinationE164Format: inside a SIP URI a number is always E.164;
// the format applies to tel: and bare numbers.
func TestDestinationE164Format(t *testing.T) {
	n := mustNumbers(t, "US", E164, nil)
	for in, want := range map[string]string{
		"sip:+1-425-555-1234@gw.contoso.com;user=phone": "sip:+14255551234@gw.contoso.com;user=phone",
		"tel:+1-425-555-1234":                           "+14255551234",
		"911":                                           "911",
	} {
		if got, p := n.Destination(in); !p.OK() || got.Value != want {
			t.Errorf("Destination(%q) = %q, %+v; want %q", in, got.Value, p, want)
		}
	}
}

func TestProblemParameter(t *testing.T) {
	n := mustNumbers(t, "US", TelURI, nil)
	_, p := n.Destination("sip:john@contoso.com;maddr=gw.evil.example")
	if got := p.Parameter("to"); got != (Parameter{Name: "to", Reason: sipMaddr}) {
		t.Errorf("Parameter = %+v", got)
	}
	if (Problem{}).OK() != true || p.OK() {
		t.Errorf("OK is wrong")
	}
}

func TestNumberType(t *testing.T) {
	names := map[NumberType]string{
		NumberUnknown: "unknown", NumberFixedLine: "fixed_line", NumberMobile: "mobile", NumberFixedLineOrMobile: "fixed_line_or_mobile",
		NumberTollFree: "toll_free", NumberPremiumRate: "premium_rate", NumberSharedCost: "shared_cost", NumberVoIP: "voip",
		NumberPersonal: "personal_number", NumberPager: "pager", NumberUAN: "uan", NumberVoicemail: "voicemail",
	}
	if len(names) != int(numNumberTypes) || len(numberTypes) != int(numNumberTypes)-1 {
		t.Fatalf("%d names, %d types, %d from phonenumbers", len(names), numNumberTypes, len(numberTypes))
	}
	for typ, name := range names {
		if typ.String() != name {
			t.Errorf("%d.String() = %q, want %q", typ, typ.String(), name)
		}
		for _, in := range []string{name, strings.ToUpper(name)} {
			if got, err := ParseNumberType(in); err != nil || got != typ {
				t.Errorf("ParseNumberType(%q) = %v, %v", in, got, err)
			}
		}
	}
	if NumberType(200).String() != "unknown" {
		t.Errorf("an out-of-range type is %q", NumberType(200).String())
	}
	if _, err := ParseNumberType("premium"); err == nil || !strings.Contains(err.Error(), "premium_rate") {
		t.Errorf("ParseNumberType(premium): %v", err)
	}
	var cfg struct {
		Deny []NumberType `json:"deny_types"`
	}
	if err := json.Unmarshal([]byte(`{"deny_types":["premium_rate","SHARED_COST","Uan"]}`), &cfg); err != nil ||
		!reflect.DeepEqual(cfg.Deny, []NumberType{NumberPremiumRate, NumberSharedCost, NumberUAN}) {
		t.Errorf("JSON reads %v, %v", cfg.Deny, err)
	}
	if out, err := json.Marshal(cfg); err != nil || string(out) != `{"deny_types":["premium_rate","shared_cost","uan"]}` {
		t.Errorf("JSON writes %s, %v", out, err)
	}
	if err := json.Unmarshal([]byte(`{"deny_types":["premium"]}`), &cfg); err == nil {
		t.Errorf("JSON reads an unknown type")
	}
}

// TestDigitValue holds digitValue to every Unicode decimal digit against
// strconv's reading of the ASCII ones, through the structure it relies on.
func TestDigitValue(t *testing.T) {
	for _, in := range []string{"0123456789", "٠١٢٣٤٥٦٧٨٩", "۰۱۲۳۴۵۶۷۸۹", "०१२३४५६७८९", "０１２３４５６７８９", "𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗", "𝟘𝟙𝟚𝟛𝟜𝟝𝟞𝟟𝟠𝟡", "𞥐𞥑𞥒𞥓𞥔𞥕𞥖𞥗𞥘𞥙"} {
		i := 0
		for _, r := range in {
			if got := digitValue(r); got != "0123456789"[i] {
				t.Errorf("digitValue(%q) = %q, want %d", r, got, i)
			}
			i++
		}
		if i != 10 {
			t.Fatalf("%q has %d digits", in, i)
		}
	}
}

// TestNumbersCacheAnswers shows that answers come from the cache, with
// their classification, and that failures are cached too.
func TestNumbersCacheAnswers(t *testing.T) {
	n := mustNumbers(t, "US", TelURI, nil)
	fake := Number{E164: "+19999999999", Region: "ZZ", Type: NumberPager, forwarded: "tel:+19999999999"}
	n.numbers.put("4255551234", &numberResult{number: fake})
	if got, p := n.Number("4255551234"); got != fake || !p.OK() {
		t.Errorf("Number = %+v, %+v; the cache was not asked", got, p)
	}
	n.destinations.put("sip:a@b.c", &destinationResult{problem: normalizationProblem(numNotPossible)})
	if _, p := n.Destination("sip:a@b.c"); p.Reason != numNotPossible {
		t.Errorf("Destination = %+v; the cache was not asked", p)
	}
	if _, p := n.Number("call me"); p.OK() {
		t.Fatal("call me")
	}
	if r, ok := n.numbers.get("call me"); !ok || r.problem.Subcode != SubcodeParameterValidationFailure {
		t.Errorf("a failure was not cached: %+v %v", r, ok)
	}
	long := "sip:john@" + strings.Repeat("a.", maxNumberLength/2) + "com"
	if _, p := n.Destination(long); !p.OK() {
		t.Fatal(p)
	}
	if _, ok := n.destinations.get(long); ok {
		t.Errorf("a long input was cached")
	}
}

// TestNumbersCacheBounded feeds more distinct numbers than the cache
// holds: it stays at its bound and every answer is what the uncached
// reading gives.
func TestNumbersCacheBounded(t *testing.T) {
	const size = 256
	n := mustNumbers(t, "US", TelURI, nil)
	n.numbers = newShardedCache[*numberResult](size)
	n.destinations = newShardedCache[*destinationResult](size)
	for i := range 3 * size {
		in := "(425) " + strconv.Itoa(2000000+i)
		got, p := n.Number(in)
		if want, wp := n.number(in); got != want || p != wp {
			t.Fatalf("Number(%q) = %+v, %+v; uncached %+v, %+v", in, got, p, want, wp)
		}
		sip := "sip:+1425" + strconv.Itoa(2000000+i) + "@gw.contoso.com"
		d, p := n.Destination(sip)
		if want, wp := n.destination(sip); d != want || p != wp {
			t.Fatalf("Destination(%q) = %+v, %+v; uncached %+v, %+v", sip, d, p, want, wp)
		}
	}
	for _, c := range []interface{ len() int }{n.numbers, n.destinations} {
		if l := c.len(); l > size || l < size/2 {
			t.Errorf("cache holds %d inputs, bound %d", l, size)
		}
	}
}

// TestNumbersConcurrent hammers one Numbers from several goroutines, with
// hits, misses and evictions (run it with -race).
func TestNumbersConcurrent(t *testing.T) {
	n := mustNumbers(t, "US", TelURI, nil)
	n.numbers = newShardedCache[*numberResult](numberCacheShards) // one entry a shard: evictions all the time
	n.destinations = newShardedCache[*destinationResult](numberCacheShards)
	inputs := []string{"+14255551234", "tel:+1-425-555-1234", "911", "sip:+1-900-555-1234@gw;user=phone", "sip:john@contoso.com", "garbage", "+910000000000"}
	type answer struct {
		n  Number
		d  Destination
		np Problem
		dp Problem
	}
	want := make([]answer, len(inputs))
	for i, in := range inputs {
		want[i].n, want[i].np = n.number(in)
		want[i].d, want[i].dp = n.destination(in)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				k := (g + i) % len(inputs)
				var got answer
				got.n, got.np = n.Number(inputs[k])
				got.d, got.dp = n.Destination(inputs[k])
				if !reflect.DeepEqual(got, want[k]) {
					t.Errorf("%q: %+v, want %+v", inputs[k], got, want[k])
					return
				}
				n.Number("+1425" + strconv.Itoa(2000000+g*1000+i)) // evicts
				n.Destination("sip:u" + strconv.Itoa(i) + "@contoso.com")
			}
		})
	}
	wg.Wait()
}

// numberSeeds start FuzzNumber and FuzzDestination: every documented
// spelling, the old normalizer's crashers, and each rule's edge.
var numberSeeds = []string{
	"tel:9911", "9911", "tel:9-911", "tel:99110", "tel:9912", "tel:+19911", "0112", "tel:0110", "9,911",
	"+14255551234", "tel:+14255551234", "tel:+1-425-555-1234", "(425) 555-1234", "4255551234", "tel : +14255551234",
	"tel:+14255551234;ext=123", "+1 425 555 1234 x123", "+1 425 555 1234 ext. 1", "+44 20 7946 0958", "011 44 20 7946 0958",
	"123", "+999123", "tel:", "++1", "+1" + strings.Repeat("2", 120), "tel:+1-425-555-1234;phone-context=x",
	"tel:+14255551234;postd=pp22", "tel:+14255551234;isub=1", "٤٢٥٥٥٥١٢٣٤", "＋１４２５５５５１２３４", "1-800-FLOWERS",
	"+1 900 555 9999 garbage", "911", "tel:112", "9-1-1", "+1911", "+80012345678", "+883510012345", "+12005551234",
	"+910000000000", "000AAA0X߇", "+250000000000A0", "+4910000000 A 0000 A000", "+49 100 000 000 000 000 00",
	"+1425555\u200b1234", "+1 425\u00a0555 1234 x١٢٣", "tel:4255551234;EXT=0",
}

// numberFuzzConfigs are the Numbers every fuzzed value goes through: the
// formats, no region, another region, a configured emergency list, and
// outside-line prefixes (the last, configs[1] with them).
func numberFuzzConfigs(f *testing.F) []*Numbers {
	return []*Numbers{
		mustNumbers(f, "US", TelURI, nil),
		mustNumbers(f, "US", E164, nil),
		mustNumbers(f, "", TelURI, nil),
		mustNumbers(f, "DE", E164, nil),
		mustNumbers(f, "GB", TelURI, []string{"999", "+44 20 7946 0000"}),
		mustNumbers(f, "US", E164, nil, "9", "0"),
	}
}

// checkNumber asserts what every accepted number is: ASCII, E.164 of at
// most 15 digits (or an emergency code), ASCII extension digits, and a
// forwarded form in n's format that reads back as the same Number.
func checkNumber(t *testing.T, n *Numbers, num Number) {
	t.Helper()
	fwd := num.Forwarded()
	allDigits := func(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }
	switch {
	case num.OutsideLine && !num.Emergency:
		t.Fatalf("an outside line and no emergency number: %+v", num)
	case num.Emergency && allDigits(num.E164) && (len(num.E164) <= maxEmergencyShortCode || num.OutsideLine && len(num.E164) <= maxOutsideLineDigits+maxEmergencyShortCode):
		if num.Extension != "" || num.Type != NumberUnknown || num.Region != n.DefaultRegion() {
			t.Fatalf("emergency code %+v", num)
		}
		if num.OutsideLine && !slices.ContainsFunc(n.outsideLine, func(prefix string) bool {
			rest, ok := strings.CutPrefix(num.E164, prefix)
			return ok && n.isEmergencyCode([]byte(rest))
		}) {
			t.Fatalf("no outside-line prefix and emergency code: %+v", num)
		}
		if num.OutsideLine && num.Masked() != maskedSecret {
			t.Fatalf("an outside line and an emergency code masked as %q", num.Masked())
		}
	case !strings.HasPrefix(num.E164, "+") || !allDigits(num.E164[1:]) || len(num.E164) > 16:
		t.Fatalf("E164 %q", num.E164)
	}
	if num.Extension != "" && (!allDigits(num.Extension) || len(num.Extension) > maxExtensionDigits) {
		t.Fatalf("extension %q", num.Extension)
	}
	want := num.E164
	if num.Extension != "" {
		want += ";ext=" + num.Extension
	}
	if n.Format() == TelURI {
		want = "tel:" + want
	}
	if fwd != want {
		t.Fatalf("forwarded %q, want %q", fwd, want)
	}
	if again, p := n.Number(fwd); !p.OK() || again != num {
		t.Fatalf("Number(%q) = %+v, %+v; want %+v", fwd, again, p, num)
	}
}

// knownReasons are every reason Number and Destination give: fixed texts,
// so none can quote a value.
var knownReasons = map[string]string{
	numNotNumber: SubcodeParameterValidationFailure, numNotDestination: SubcodeParameterValidationFailure,
	sipNotSIP: SubcodeParameterValidationFailure, sipControl: SubcodeParameterValidationFailure,
	sipSpace: SubcodeParameterValidationFailure, sipDelimiter: SubcodeParameterValidationFailure,
	sipNonASCII: SubcodeParameterValidationFailure, sipFormat: SubcodeParameterValidationFailure,
	sipNoUser: SubcodeParameterValidationFailure, sipSecondAt: SubcodeParameterValidationFailure,
	sipPassword: SubcodeParameterValidationFailure, sipUserChar: SubcodeParameterValidationFailure,
	sipUserQuery: SubcodeParameterValidationFailure, sipEscape: SubcodeParameterValidationFailure,
	sipEscapeDecode: SubcodeParameterValidationFailure, sipHost: SubcodeParameterValidationFailure,
	sipPort: SubcodeParameterValidationFailure, sipParam: SubcodeParameterValidationFailure,
	sipParamTwice: SubcodeParameterValidationFailure, sipMaddr: SubcodeParameterValidationFailure,
	sipHeaders: SubcodeParameterValidationFailure, sipUserInUser: SubcodeParameterValidationFailure,
	sipUserKind: SubcodeParameterValidationFailure, sipTelParam: SubcodeParameterValidationFailure,
	sipTelParamInName: SubcodeParameterValidationFailure,
	sipURIInUser:      SubcodeParameterValidationFailure,
	sipUserLength:     SubcodeParameterValidationFailure,
	numNotPossible:    SubcodeNormalizationFailed, numNoRegion: SubcodeNormalizationFailed,
	numTooLong: SubcodeNormalizationFailed, numLetters: SubcodeNormalizationFailed,
	numCharacter: SubcodeNormalizationFailed, numParameter: SubcodeNormalizationFailed,
	numExtension: SubcodeNormalizationFailed, numE164Length: SubcodeNormalizationFailed,
	numReadBack: SubcodeNormalizationFailed, numNationallyAbroad: SubcodeNormalizationFailed,
}

// TestKnownReasonsComplete: knownReasons holds every reason number.go
// and sip.go declare (a constant whose text reads "must be ..." or "is
// not ..." after the property's name), and nothing else: a new reason
// fails here, not only in a fuzz run long enough to reach it.
func TestKnownReasonsComplete(t *testing.T) {
	declared := map[string]bool{}
	for _, name := range []string{"number.go", "sip.go"} {
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			spec, ok := n.(*ast.ValueSpec)
			if !ok {
				return true
			}
			for i, v := range spec.Values {
				lit, ok := v.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				text, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				if strings.HasPrefix(text, "must be ") || strings.HasPrefix(text, "is not ") {
					declared[text] = true
					if _, ok := knownReasons[text]; !ok {
						t.Errorf("%s: %s is not in knownReasons", name, spec.Names[i].Name)
					}
				}
			}
			return true
		})
	}
	for reason := range knownReasons {
		if !declared[reason] {
			t.Errorf("knownReasons holds %q, which number.go and sip.go do not declare", reason)
		}
	}
}

func checkFuzzProblem(t *testing.T, p Problem) {
	t.Helper()
	if subcode, ok := knownReasons[p.Reason]; !ok || subcode != p.Subcode {
		t.Fatalf("problem %+v", p)
	}
}

func FuzzNumber(f *testing.F) {
	for _, s := range numberSeeds {
		f.Add(s)
	}
	configs := numberFuzzConfigs(f)
	f.Fuzz(func(t *testing.T, s string) {
		for _, n := range configs {
			num, p := n.Number(s)
			if !p.OK() {
				checkFuzzProblem(t, p)
				if num != (Number{}) {
					t.Fatalf("refused, yet %+v", num)
				}
				continue
			}
			checkNumber(t, n, num)
			checkPoolReads(t, num)
			// The SIP form of a number reads as the same number.
			if !num.Emergency || num.E164[0] == '+' {
				user := num.E164
				if num.Extension != "" {
					user += ";ext=" + num.Extension
				}
				d, p := n.Destination("sip:" + user + "@gw.contoso.com;user=phone")
				if !p.OK() || d.Number != num {
					t.Fatalf("in a SIP URI: %+v, %+v; want %+v", d, p, num)
				}
			}
		}
		// The formats agree.
		tel, tp := configs[0].Number(s)
		e164, ep := configs[1].Number(s)
		if tp.OK() != ep.OK() || tp.OK() && tel.Forwarded() != "tel:"+e164.Forwarded() {
			t.Fatalf("tel %q %+v, e164 %q %+v", tel.Forwarded(), tp, e164.Forwarded(), ep)
		}
	})
}

// checkPoolReads holds an accepted number to what a pool that parses
// numbers with libphonenumber (of which phonenumbers is the port) reads
// in the form the edge forwards, tel: URI or E.164, independently of the
// edge's own reading: the number, the extension, the region and the
// type the rules judged. An emergency short code is forwarded for the
// pool's dial plan, not as a number, and is left out.
func checkPoolReads(t *testing.T, num Number) {
	t.Helper()
	if num.E164 == "" || num.E164[0] != '+' {
		return
	}
	pn, err := phonenumbers.Parse(num.Forwarded(), "ZZ")
	if err != nil {
		t.Fatalf("forwarded %q: the pool cannot read it: %v", num.Forwarded(), err)
	}
	if e164 := phonenumbers.Format(pn, phonenumbers.E164); e164 != num.E164 || pn.GetExtension() != num.Extension {
		t.Fatalf("forwarded %q: the pool reads %q extension %q, the edge judged %+v", num.Forwarded(), e164, pn.GetExtension(), num)
	}
	if region, typ := phonenumbers.GetRegionCodeForNumber(pn), numberTypes[phonenumbers.GetNumberType(pn)]; region != num.Region || typ != num.Type {
		t.Fatalf("forwarded %q: the pool reads region %q type %v, the edge judged %+v", num.Forwarded(), region, typ, num)
	}
}

func FuzzDestination(f *testing.F) {
	for _, s := range numberSeeds {
		f.Add(s)
	}
	for _, s := range sipSeeds {
		f.Add(s)
	}
	for _, s := range []string{"sip:919005551234@gw", "sip:0011442071234567@gw", "sip:9011442071234567@gw", "9 1 900 555 1234", "sip:9-425-555-1234;x=y@gw",
		"sip:tel%3A%2B19005551234@gw", "sip:gossip%253A1@gw", "sip:x%2Esips%3A1@gw",
		"sip:+14255551234%3Bext%3D19005551234@gw;user=phone", "sip:x;19005551234@gw", "sip:%3B19005551234@gw",
		"sip:tel%EF%BC%9A%2B19005551234@gw", "sip:tel%E2%88%B6%2B1@gw", "sip:%EF%BD%94el%25EF%25B9%2595%2B1@gw", "sip:gossip%EF%BC%9A1@gw",
		"sip:%E0%A5%AF19005551234@gw", "sip:%E0%A5%AF1900FLOWERS@gw", "sip:9%EF%BC%911@gw"} {
		f.Add(s)
	}
	configs := numberFuzzConfigs(f)
	f.Fuzz(func(t *testing.T, s string) {
		checkOutsideLine(t, s, configs[1], configs[len(configs)-1])
		for _, n := range configs {
			d, p := n.Destination(s)
			if !p.OK() {
				checkFuzzProblem(t, p)
				if d != (Destination{}) {
					t.Fatalf("refused, yet %+v", d)
				}
				continue
			}
			for i := 0; i < len(d.Value); i++ {
				if c := d.Value[i]; c <= ' ' || c >= 0x7f {
					t.Fatalf("forwarded %q holds %q", d.Value, c)
				}
			}
			if again, p := n.Destination(d.Value); !p.OK() || !sameDestination(again, d) {
				t.Fatalf("Destination(%q) = %+v, %+v; want %+v", d.Value, again, p, d)
			}
			if d.IsNumber() {
				checkNumber(t, n, d.Number)
				checkPoolReads(t, d.Number)
			}
			if !d.SIP {
				if !d.IsNumber() || d.Value != d.Number.Forwarded() || d.Host != "" {
					t.Fatalf("not SIP: %+v", d)
				}
				continue
			}
			u, reason := ParseSIPURI(d.Value)
			if reason != "" || u.String() != d.Value || u.Host != d.Host {
				t.Fatalf("forwarded %q parses as %+v, %q", d.Value, u, reason)
			}
			if u.IsPhone() != d.IsNumber() {
				t.Fatalf("%q: IsPhone %v, number %+v", d.Value, u.IsPhone(), d.Number)
			}
			if referenceUserURI(u.DecodedUser()) {
				t.Fatalf("%q: accepted a user that holds a URI", d.Value)
			}
			if d.IsNumber() {
				user := d.Number.E164
				if d.Number.Extension != "" {
					user += ";ext=" + d.Number.Extension
				}
				if u.User != user {
					t.Fatalf("forwarded %q holds the user %q, want %q", d.Value, u.User, user)
				}
			}
		}
	})
}

// BenchmarkDestination reads destinations as a busy edge does: the same
// few again and again (from the cache: no allocation), and a new number
// every time (phonenumbers):
//
//	go test -run='^$' -bench='Destination|Numbers|ParseSIPURI' -benchmem ./ucwa/
func BenchmarkDestination(b *testing.B) {
	n := mustNumbers(b, "US", TelURI, nil)
	for _, in := range []string{"sip:john@contoso.com", "sip:+1-900-555-1234@gw.contoso.com;user=phone", "tel:+1-425-555-1234", "(425) 555-1234", "911"} {
		b.Run("cached/"+in, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, p := n.Destination(in); !p.OK() {
					b.Fatal(p)
				}
			}
		})
	}
	b.Run("cached/parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, p := n.Destination("sip:+1-900-555-1234@gw.contoso.com;user=phone"); !p.OK() {
					b.Error(p)
					return
				}
			}
		})
	})
	b.Run("uncached/sip", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, p := n.destination("sips:john.doe@contoso.com:5061;transport=tls"); !p.OK() {
				b.Fatal(p)
			}
		}
	})
	// The longest users the edge reads, with outside-line prefixes that
	// make more readings of them: the costliest destinations there are.
	long := mustNumbers(b, "US", TelURI, nil, "9", "0", "99", "011")
	for _, digits := range []int{48, 99} {
		b.Run("distinct/sip-"+strconv.Itoa(digits)+"-digits", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				user := strconv.Itoa(9_000_000 + i%1_000_000)
				long.Destination("sip:" + user + strings.Repeat("9", digits-len(user)) + "@gw.contoso.com")
			}
		})
	}
	b.Run("distinct/sip-phone", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if _, p := n.Destination("sip:+1425" + strconv.Itoa(2000000+i%8000000) + "@gw.contoso.com;user=phone"); !p.OK() {
				b.Fatal(p)
			}
		}
	})
}

func BenchmarkNumbersNumber(b *testing.B) {
	n := mustNumbers(b, "US", TelURI, nil)
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, p := n.Number("(425) 555-1234"); !p.OK() {
				b.Fatal(p)
			}
		}
	})
	b.Run("distinct", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if _, p := n.Number("+1425" + strconv.Itoa(2000000+i%8000000)); !p.OK() {
				b.Fatal(p)
			}
		}
	})
}

func BenchmarkParseSIPURI(b *testing.B) {
	for _, in := range []string{"sip:john@contoso.com", "sips:john.doe@contoso.com:5061;transport=tls;lr"} {
		b.Run(in, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, reason := ParseSIPURI(in); reason != "" {
					b.Fatal(reason)
				}
			}
		})
	}
}

// sameDestination reports whether a and b are the same destination,
// their dial strings compared by what they hold: one URI spelled two
// ways (SIP:...@GW, sip:...@gw) is read into two DialStrings.
// checkOutsideLine fails when outside, plain's Numbers with outside-line
// prefixes, reads s otherwise than by adding readings to a dial string:
// the readings of its digits as written come first, the same as plain's,
// unless the digits after a prefix make it unjudgeable.
func checkOutsideLine(t *testing.T, s string, plain, outside *Numbers) {
	t.Helper()
	pd, pp := plain.Destination(s)
	od, op := outside.Destination(s)
	if od.Number.OutsideLine {
		// A tel: URI or a bare number that is an outside-line prefix and
		// an emergency code: without the outside line, no emergency
		// number (the digits as written are none), and the only
		// destination an outside line reads otherwise.
		if od.SIP || pd.Number.Emergency || !od.Number.Emergency || od.Value != od.Number.Forwarded() {
			t.Fatalf("%q: %+v with an outside line, %+v without", s, od, pd)
		}
		return
	}
	if pp != op {
		t.Fatalf("%q: %+v without an outside line, %+v with", s, pp, op)
	}
	want, got := pd, od
	want.Dial, got.Dial, want.Keypad, got.Keypad = nil, nil, nil, nil
	if got != want {
		t.Fatalf("%q: read as %+v with an outside line, %+v without", s, got, want)
	}
	switch {
	case pd.Dial == nil:
		if od.Dial != nil && !od.Dial.Unjudgeable && od.Dial.Written != 0 {
			t.Fatalf("%q: a name without an outside line, the dial string %q with", s, dialSummary(od.Dial))
		}
	case pd.Dial.Unjudgeable:
		if od.Dial == nil || !od.Dial.Unjudgeable {
			t.Fatalf("%q: unjudgeable without an outside line, %q with", s, dialSummary(od.Dial))
		}
	case od.Dial == nil:
		t.Fatalf("%q: the dial string %q without an outside line, a name with", s, dialSummary(pd.Dial))
	case od.Dial.Digits != pd.Dial.Digits || pd.Dial.Emergency && !od.Dial.Emergency:
		t.Fatalf("%q: %+v with an outside line, %+v without", s, od.Dial, pd.Dial)
	case !od.Dial.Unjudgeable && (od.Dial.Written != len(pd.Dial.Readings) || !slices.Equal(od.Dial.Readings[:od.Dial.Written], pd.Dial.Readings)):
		t.Fatalf("%q: read as %q (%d as written) with an outside line, %q without", s, dialSummary(od.Dial), od.Dial.Written, dialSummary(pd.Dial))
	}
}

func sameDestination(a, b Destination) bool {
	if !reflect.DeepEqual(a.Dial, b.Dial) || !reflect.DeepEqual(a.Keypad, b.Keypad) {
		return false
	}
	a.Dial, b.Dial, a.Keypad, b.Keypad = nil, nil, nil, nil
	return a == b
}

// dialSummary is the E.164 of a dial string's readings, or "?" when no
// rule can judge it; nil for none.
func dialSummary(d *DialString) []string {
	switch {
	case d == nil:
		return nil
	case d.Unjudgeable:
		return []string{"?"}
	}
	var s []string
	for _, r := range d.Readings {
		s = append(s, r.E164)
	}
	return s
}

// referenceUserURI reports whether a decoded SIP user, or any decoding of
// it (%XX, %uXXXX, again and again), holds tel:, sip: or sips:, in any
// letter case, at its start or after a character other than an ASCII
// letter, also once the decoding is in NFKC with the confusables of ':'
// (UTS #39) read as ':'.
func referenceUserURI(user string) bool {
	for {
		if referenceURIScheme.MatchString(user) || referenceURIScheme.MatchString(norm.NFKC.String(referenceColon.ReplaceAllString(user, ":"))) {
			return true
		}
		decoded := referenceUnescape(user)
		if decoded == user {
			return false
		}
		user = decoded
	}
}

// referenceColon matches the confusables of ':' that NFKC leaves as they
// are (UTS #39's confusables.txt).
var referenceColon = regexp.MustCompile(`[\x{02D0}\x{02F8}\x{0589}\x{05C3}\x{0703}\x{0704}\x{0903}\x{0A83}\x{16EC}\x{1803}\x{1809}\x{205A}\x{2236}\x{A4FD}\x{A789}\x{FE30}]`)

var referenceURIScheme = regexp.MustCompile(`(^|[^A-Za-z])([Tt][Ee][Ll]|[Ss][Ii][Pp][Ss]?):`)
