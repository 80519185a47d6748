package ucwa

import (
	"math/rand/v2"
	"regexp/syntax"
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers/v2"
)

// maxMatchLength is the most bytes a match of re can take, -1 when
// unbounded.
func maxMatchLength(re *syntax.Regexp) int {
	switch re.Op {
	case syntax.OpLiteral:
		return len(re.Rune)
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return 1
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return 0
	case syntax.OpCapture, syntax.OpQuest:
		return maxMatchLength(re.Sub[0])
	case syntax.OpRepeat:
		if m := maxMatchLength(re.Sub[0]); m >= 0 && re.Max >= 0 {
			return m * re.Max
		}
		return -1
	case syntax.OpConcat, syntax.OpAlternate:
		n := 0
		for _, sub := range re.Sub {
			m := maxMatchLength(sub)
			switch {
			case m < 0:
				return -1
			case re.Op == syntax.OpConcat:
				n += m
			default:
				n = max(n, m)
			}
		}
		return n
	}
	return -1 // a star, a plus: unbounded
}

// TestMaxReadDigits holds maxReadDigits to phonenumbers' metadata: past
// the longest international prefix any region takes, a country code and
// the longest national prefix (with a carrier code) any region strips,
// 17 digits are the longest national number phonenumbers parses, and the
// one more that the first maxReadDigits must hold for it to refuse them
// as too long, as it refuses all of them.
func TestMaxReadDigits(t *testing.T) {
	c, err := phonenumbers.MetadataCollection()
	if err != nil {
		t.Fatal(err)
	}
	longest := map[string]int{}
	for _, md := range c.GetMetadata() {
		for kind, pattern := range map[string]string{"international prefix": md.GetInternationalPrefix(), "national prefix for parsing": md.GetNationalPrefixForParsing()} {
			if pattern == "" {
				continue
			}
			re, err := syntax.Parse(pattern, syntax.Perl)
			if err != nil {
				t.Fatalf("%s %s %q: %v", md.GetId(), kind, pattern, err)
			}
			m := maxMatchLength(re.Simplify())
			if m < 0 {
				t.Fatalf("%s %s %q takes digits without bound", md.GetId(), kind, pattern)
			}
			longest[kind] = max(longest[kind], m)
		}
	}
	const maxCountryCode, maxNationalNumber = 3, 17 // phonenumbers' MAX_LENGTH_COUNTRY_CODE, MAX_LENGTH_FOR_NSN
	if need := longest["international prefix"] + maxCountryCode + longest["national prefix for parsing"] + maxNationalNumber + 1; maxReadDigits < need {
		t.Fatalf("maxReadDigits is %d; phonenumbers' metadata needs %d (%v)", maxReadDigits, need, longest)
	}
}

// longDigitUsers are strings of digits longer than numbers, after what
// starts numbers: international prefixes, country codes, national and
// outside-line prefixes, valid and not.
func longDigitUsers() []string {
	starts := []string{"", "0", "00", "0011", "011", "0015", "00800", "1", "19005551234", "+", "+1900", "+44", "+49", "+81",
		"+55", "+54", "+999", "9", "99", "9011", "011999", "01144", "0044", "9190055512349", "54911", "2410"}
	rng := rand.New(rand.NewPCG(1, 2))
	var out []string
	for _, start := range starts {
		for _, length := range []int{17, 20, 24, 30, 44, 48, 49, 99} {
			for _, filler := range []string{"9", "r"} {
				s := start
				for len(strings.TrimPrefix(s, "+")) < length {
					if filler == "r" {
						s += string(rune('0' + rng.IntN(10)))
					} else {
						s += filler
					}
				}
				out = append(out, s)
			}
		}
	}
	return out
}

// TestLongDigitsReadAsAllOfThem: a number or a SIP user of more digits
// than maxReadDigits is judged as when phonenumbers read all of its
// digits, which it no longer does (see TestNumbersReadBoundedDigits): a
// number is refused alike, a dial string has the same readings or is
// unjudgeable alike, in every region and with outside-line prefixes.
// Under the race detector, which finds nothing in these pure functions
// of one goroutine and makes each twenty times as slow, each pair of a
// region and prefixes reads a seventh of the users, each user read by
// two of the fourteen pairs (.ci/run runs them all without it).
func TestLongDigitsReadAsAllOfThem(t *testing.T) {
	users := longDigitUsers()
	bound := maxReadDigits
	defer func() { maxReadDigits = bound }()
	pair := 0
	for _, region := range []string{"US", "DE", "GB", "JP", "BR", "AR", ""} {
		for _, outsideLine := range [][]string{nil, {"9", "0", "99", "011", "9011"}} {
			pair++
			bounded := mustNumbers(t, region, E164, []string{}, outsideLine...)
			whole := mustNumbers(t, region, E164, []string{}, outsideLine...)
			for i, u := range users {
				if raceDetector && (i+pair)%7 != 0 {
					continue
				}
				inputs := []string{"sip:" + u + "@gw.contoso.com", "tel:" + u}
				if u[0] != '+' {
					inputs = append(inputs, "+"+u)
				}
				for _, in := range inputs {
					d, p := bounded.destination(in)
					maxReadDigits = maxNumberLength + 1
					wd, wp := whole.destination(in)
					maxReadDigits = bound
					if !sameDestination(d, wd) || p != wp {
						t.Fatalf("%s %v %q: %+v %+v %+v, reading all its digits %+v %+v %+v", region, outsideLine, in, d, d.Dial, p, wd, wd.Dial, wp)
					}
				}
			}
		}
	}
}

// TestNumbersReadBoundedDigits: phonenumbers, whose cost grows with
// what it reads, reads no more than maxReadDigits digits (and a '+') of
// a number or a SIP user, whatever its length: read whole, a SIP user
// of 99 digits under outside-line prefixes is read some twelve times
// over, at over 1 ms a destination, 30 times a valid one's.
func TestNumbersReadBoundedDigits(t *testing.T) {
	longest := 0
	parse := parsePhone
	parsePhone = func(text, region string) (*phonenumbers.PhoneNumber, error) {
		longest = max(longest, len(text))
		return parse(text, region)
	}
	defer func() { parsePhone = parse }()
	for _, region := range []string{"US", "DE", "JP", ""} {
		n := mustNumbers(t, region, TelURI, nil, "9", "0", "99", "011")
		for _, in := range []string{
			"sip:" + strings.Repeat("9", 99) + "@gw", "sip:1900" + strings.Repeat("5", 95) + "@gw",
			"sip:011" + strings.Repeat("5", 96) + "@gw", "sip:" + strings.Repeat("0", 99) + "@gw",
			"sip:+1" + strings.Repeat("4", 90) + "@gw;user=phone", "sip:1900" + strings.Repeat("F", 90) + "@gw",
			"+1" + strings.Repeat("9", 97), "tel:+49" + strings.Repeat("3", 90), strings.Repeat("4", 100),
		} {
			longest = 0
			n.Destination(in)
			n.Number(in)
			if longest > maxReadDigits+1 {
				t.Errorf("%s %.24q...: phonenumbers read %d bytes, more than %d digits and a '+'", region, in, longest, maxReadDigits)
			}
		}
	}
}
