package directive

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestBlock(t *testing.T) {
	for _, tc := range []struct {
		name, src, where, want string
		seen                   string
	}{
		{"each once", "x {\n a 1\n b 2\n}", "", "", "a b"},
		{"given twice", "x {\n a 1\n a 2\n}", "", "a: given twice", "a"},
		{"given twice, where", "x {\n a 1\n a 2\n}", "jwt", "jwt: a: given twice", "a"},
		{"repeatable", "x {\n r 1\n r 2\n a 3\n}", "", "", "r r a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := caddyfile.NewTestDispenser(tc.src)
			d.Next()
			var seen []string
			err := Block(d, 0, tc.where, []string{"r"}, func(name string) error {
				seen = append(seen, name)
				d.RemainingArgs()
				return nil
			})
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if got := strings.Join(seen, " "); got != tc.seen {
				t.Errorf("saw %q, want %q", got, tc.seen)
			}
		})
	}
}

func TestArgs(t *testing.T) {
	d := caddyfile.NewTestDispenser("a\nb x y\nc\ne \"\"")
	var v string
	d.Next()
	if err := OneArg(d, &v); err == nil || !strings.Contains(err.Error(), "a: wrong argument count: expected one argument") {
		t.Errorf("no argument: error %v, want one naming a", err)
	}
	d.Next()
	if args, err := Args(d); err != nil || strings.Join(args, ",") != "x,y" {
		t.Errorf("args %v, %v", args, err)
	}
	d.Next()
	if _, err := Args(d); err == nil || !strings.Contains(err.Error(), "c: wrong argument count: expected one or more arguments") {
		t.Errorf("no arguments: error %v, want one naming c", err)
	}
	// JSON reads "" as not given.
	d.Next()
	if err := OneArg(d, &v); err == nil || !strings.Contains(err.Error(), `e: "" is read as not given, its default: leave e out for the default, or give a value`) {
		t.Errorf("an empty argument: error %v, want one naming e", err)
	}
}

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		src     string
		nonZero bool
		want    caddy.Duration
		err     string
	}{
		{"x 30s", false, caddy.Duration(30 * time.Second), ""},
		{"x 1d", true, caddy.Duration(24 * time.Hour), ""},
		{"x 0", false, 0, ""},
		{"x 0", true, 0, `x: "0" is not a duration other than 0 (such as 1s)`},
		{"x soon", false, 0, `x: "soon" is not a duration (such as 1s)`},
		{"x soon", true, 0, `x: "soon" is not a duration other than 0 (such as 1s)`},
		{"x", false, 0, "wrong argument count"},
		{"x 1s 2s", true, 0, "wrong argument count"},
	} {
		d := caddyfile.NewTestDispenser(tc.src)
		d.Next()
		read := Duration
		if tc.nonZero {
			read = NonZeroDuration
		}
		got := caddy.Duration(-1)
		err := read(d, &got, "1s")
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("%q (non-zero %v): %v, %v; want %v", tc.src, tc.nonZero, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q (non-zero %v): error %v, want %q", tc.src, tc.nonZero, err, tc.err)
		}
	}
}

// TestNoBlock: a subdirective read by OneArg, Args, Word or Duration
// takes no block, and one given a block is refused naming it; an empty
// block is none.
func TestNoBlock(t *testing.T) {
	for _, tc := range []struct {
		name string
		read func(d *caddyfile.Dispenser) error
	}{
		{"OneArg", func(d *caddyfile.Dispenser) error { var v string; return OneArg(d, &v) }},
		{"Args", func(d *caddyfile.Dispenser) error { _, err := Args(d); return err }},
		{"Word", func(d *caddyfile.Dispenser) error { var v string; return Word(d, &v, "a") }},
		{"Duration", func(d *caddyfile.Dispenser) error { var v caddy.Duration; return Duration(d, &v, "1s") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := caddyfile.NewTestDispenser("x 1s {\n y 2\n}")
			d.Next()
			if err := tc.read(d); err == nil || !strings.Contains(err.Error(), "x takes no block") {
				t.Errorf("a block: error %v, want one saying x takes no block", err)
			}
			d = caddyfile.NewTestDispenser("x 1s {\n}\nz")
			d.Next()
			if err := tc.read(d); err != nil {
				t.Errorf("an empty block: %v", err)
			}
		})
	}
}
