package caddymodule

import (
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// FuzzLimitKey: a limit's key template of any text and placeholders
// (as provisionLimits takes it: one that is a single placeholder and
// nothing else is read as that placeholder, not expanded) expands the
// values of two requests, of any text, to the same key only when each
// placeholder has the same value in both, or when every placeholder of
// both is empty (the key is "" then: no budget is shared by clients
// without the values): requests whose values differ never share a
// budget, whatever the values hold of the template's text, of '\' or
// of braces.
func FuzzLimitKey(f *testing.F) {
	for _, seed := range []struct{ template, first, second string }{
		{"{http.ucwa.tid}/{http.ucwa.oid}", "x/y\nz", "x\ny/z"},
		{"{a}|{b}", "x|y\nz", "x\ny|z"},
		{"{a}{b}", "ab\nc", "a\nbc"},
		{"{a}\\{b}", "x\\\ny", "x\n\\y"},
		{"{a}ab{b}", "a\nb", "\nab"},
		{"pre{a}-{b}.{a}post", "1-2\n3", "1\n2-3"},
		{"{a}\\{x\\}{b}", "{\n}", "\n{}"},
		{"{a}\x00{b}", "\x00\n", "\n\x00"},
		{"{env.HOME}:{http.request.header.X-Caller}:{http.request.header.X-Caller}", "a:\nb", "a\n:b"},
		{"{a}{b}{c}", "1:x\n\n", "\n1:x\n"},
		{"static", "", "x"},
		{"{a", "x", "y"},
	} {
		f.Add(seed.template, seed.first, seed.second)
	}
	f.Fuzz(func(t *testing.T, template, first, second string) {
		if v, ok := strings.CutPrefix(template, "{"); ok && strings.HasSuffix(v, "}") && !strings.ContainsAny(v[:len(v)-1], "{}") {
			return // a single placeholder: its value is the key
		}
		var names []string
		if _, err := caddy.NewEmptyReplacer().ReplaceFunc(template, func(key string, _ any) (any, error) {
			if !slices.Contains(names, key) {
				names = append(names, key)
			}
			return "", nil
		}); err != nil {
			return
		}
		l := &limit{key: template}
		l.keyEscapes, l.keyLengths = keyEncoding(template)
		values := func(s string) []string {
			vs := strings.Split(s, "\n")
			for len(vs) < len(names) {
				vs = append(vs, "")
			}
			return vs[:len(names)]
		}
		expand := func(vs []string) string {
			repl := caddy.NewEmptyReplacer()
			for i, name := range names {
				repl.Set(name, vs[i])
			}
			return l.expandKey(repl)
		}
		a, b := values(first), values(second)
		ka, kb := expand(a), expand(b)
		empty := func(vs []string) bool { return !slices.ContainsFunc(vs, func(v string) bool { return v != "" }) }
		if len(names) > 0 && empty(a) != (ka == "") {
			t.Fatalf("%q with %q: key %q", template, a, ka)
		}
		if ka == kb && !slices.Equal(a, b) && !(len(names) > 0 && empty(a) && empty(b)) {
			t.Fatalf("%q: %q and %q both expand to %q (escapes %q, lengths %v)", template, a, b, ka, l.keyEscapes, l.keyLengths)
		}
	})
}
