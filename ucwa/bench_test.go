package ucwa

import (
	"testing"
)

// The stages of the terminate pipeline and the whole of it, for the
// seed's JSON (repaired) and XML samples:
//
//	go test -run='^$' -bench=. -benchmem -count=5 ./ucwa/

type benchSample struct {
	name   string
	format Format
	body   []byte
}

func benchSamples(b *testing.B) []benchSample {
	return []benchSample{
		{"JSON", JSON, readSeed(b, "seed.json")},
		{"XML", XML, readSeed(b, "seed.xml")},
	}
}

func BenchmarkMediaFormat(b *testing.B) {
	for _, ct := range []string{"application/json", "application/vnd.microsoft.com.ucwa+xml; charset=utf-8"} {
		b.Run(ct, func(b *testing.B) {
			for b.Loop() {
				if _, ok := MediaFormat(ct); !ok {
					b.Fatal(ct)
				}
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, s := range benchSamples(b) {
		b.Run(s.name, func(b *testing.B) {
			b.SetBytes(int64(len(s.body)))
			for b.Loop() {
				if _, err := decode(s.format, s.body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkClean validates and normalizes a decoded sample (the two
// numbers of the JSON sample are written differently, so both go through
// phonenumbers).
func BenchmarkClean(b *testing.B) {
	c := mustCleaner(b, "US", TelURI)
	for _, s := range benchSamples(b) {
		b.Run(s.name, func(b *testing.B) {
			decoded, err := decode(s.format, s.body)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				r := *decoded
				if _, err := c.Clean(spa, &r, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncode(b *testing.B) {
	c := mustCleaner(b, "US", TelURI)
	for _, s := range benchSamples(b) {
		b.Run(s.name, func(b *testing.B) {
			r, err := decode(s.format, s.body)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := c.Clean(spa, r, nil); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if len(r.Encode()) == 0 {
					b.Fatal("empty")
				}
			}
		})
	}
}

// BenchmarkTerminate is the whole protocol path of one body: decode,
// validate, normalize, re-encode (BenchmarkIntake adds the media type
// and the query).
func BenchmarkTerminate(b *testing.B) {
	c := mustCleaner(b, "US", TelURI)
	for _, s := range benchSamples(b) {
		b.Run(s.name, func(b *testing.B) {
			b.SetBytes(int64(len(s.body)))
			for b.Loop() {
				r, err := decode(s.format, s.body)
				if err != nil {
					b.Fatal(err)
				}
				cl, err := c.Clean(spa, r, nil)
				if err != nil {
					b.Fatal(err)
				}
				if len(cl.Body()) == 0 {
					b.Fatal("empty")
				}
			}
		})
	}
}
