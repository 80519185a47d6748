package directive

import (
	"strings"
	"testing"

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
	d := caddyfile.NewTestDispenser("a\nb x y\nc")
	var v string
	d.Next()
	if err := OneArg(d, &v); err == nil {
		t.Error("no argument accepted")
	}
	d.Next()
	if args, err := Args(d); err != nil || strings.Join(args, ",") != "x,y" {
		t.Errorf("args %v, %v", args, err)
	}
	d.Next()
	if _, err := Args(d); err == nil {
		t.Error("no arguments accepted")
	}
}
