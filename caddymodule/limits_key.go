package caddymodule

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"iter"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

// checkKeyPlaceholders refuses a key that names a placeholder of the
// edge's own (http.ucwa.*) that is not known when the limits are taken:
// one the edge does not publish (a typo) expands to nothing, and the
// limit would count every caller by address instead, without a word.
// So would a known placeholder written in another letter case, by its
// short name or as a Caddyfile shorthand (see placeholderSpelling), an
// {env.*} whose variable is empty (unset) at startup, a doubled brace or
// {}; a brace left open would make the key one budget for every caller.
// Caddy's other placeholders are open-ended (headers, vars) and are left
// to the README's warning.
func checkKeyPlaceholders(key string) error {
	for name, closed := range keyPlaceholders(key) {
		if !closed {
			// Caddy's replacer leaves it as text: a key of no
			// placeholder, one budget for every caller.
			return fmt.Errorf(`%q is not closed (a literal brace is written \{)`, "{"+name)
		}
		if name == "" || strings.ContainsRune(name, '{') {
			// An unknown placeholder to Caddy's replacer, which expands it
			// to nothing: a doubled brace ({{http.ucwa.tid}}) would count
			// every caller by address.
			return fmt.Errorf(`%q is not a placeholder (a literal brace is written \{)`, "{"+name+"}")
		}
		if right, why, ok := placeholderSpelling(name); ok {
			// Caddy's replacer knows no such name: it expands to nothing
			// at every request, and the limit would count every caller
			// by address, with only the warning of noteKeyless.
			return fmt.Errorf("{%s} expands to nothing at every request, and the limit would count callers by their address (%s): write {%s}", name, why, right)
		}
		if v, ok := strings.CutPrefix(name, "env."); ok && os.Getenv(v) == "" {
			// Empty at every request, as it is now: as in the jwt
			// settings, an unset variable stops startup rather than
			// have the limit count every caller by address.
			return fmt.Errorf("{%s} is empty at startup (an unset variable)", name)
		}
		if !strings.HasPrefix(name, "http.ucwa.") || slices.Contains(grantPlaceholders[1:], name) {
			continue
		}
		if name == "http.ucwa.pool" {
			return fmt.Errorf("{%s} is set only once a pool takes the request, after the limits", name)
		}
		return fmt.Errorf("{%s} is not a placeholder of the edge (%s)", name, strings.Join(grantPlaceholders[1:], ", "))
	}
	return nil
}

// requestPlaceholders are the placeholders of fixed name that a limit's
// key may read when the limits are checked: the edge's own (a grant's,
// and {http.ucwa.pool}, which checkKeyPlaceholders refuses in a key
// for itself) and those of Caddy's HTTP replacer (caddyhttp's
// addHTTPVarsToReplacer); requestNamespaces are the prefixes of
// Caddy's placeholders of open-ended name, the request's header fields,
// cookies and query parameters, its host labels and path segments, TLS
// fields, variables, an authentication handler's user and the global
// env.* and file.*. Caddy matches both as written, letter case and all.
var (
	requestPlaceholders = append(grantPlaceholders[:len(grantPlaceholders):len(grantPlaceholders)],
		"http.ucwa.pool",
		"http.request.method", "http.request.scheme", "http.request.proto", "http.request.proto_name",
		"http.request.host", "http.request.port", "http.request.hostport",
		"http.request.local", "http.request.local.host", "http.request.local.port",
		"http.request.remote", "http.request.remote.host", "http.request.remote.port",
		"http.request.uri", "http.request.uri_escaped", "http.request.uri.path", "http.request.uri.path_escaped",
		"http.request.uri.path.file", "http.request.uri.path.dir", "http.request.uri.path.file.base",
		"http.request.uri.path.file.ext", "http.request.uri.query", "http.request.uri.query_escaped",
		"http.request.uri.prefixed_query", "http.request.duration", "http.request.duration_ms",
		"http.request.uuid", "http.request.body", "http.request.body_base64",
		"http.request.orig_method", "http.request.orig_uri", "http.request.orig_uri.path",
		"http.request.orig_uri.path.file", "http.request.orig_uri.path.file_escaped",
		"http.request.orig_uri.path.dir", "http.request.orig_uri.query",
		"http.request.orig_uri.prefixed_query",
	)
	requestNamespaces = []string{
		"http.request.header.", "http.request.cookie.", "http.request.uri.query.",
		"http.request.host.labels.", "http.request.uri.path.", "http.request.orig_uri.path.",
		"http.request.remote.host/", "http.request.tls.", "http.vars.", "http.auth.user.",
		"env.", "file.",
	}
)

// placeholderSpelling reports whether name, a placeholder's name in a
// limit's key, is one that nothing resolves as written but that names a
// placeholder written otherwise, and returns that placeholder's name and
// why: one of requestPlaceholders, or a name in one of
// requestNamespaces, in another letter case ({HTTP.ucwa.tid},
// {Http.Auth.User.Id}, {HTTP.Request.Header.X-Tenant}: the rest of a
// namespaced name is kept as written, as Caddy reads it, whatever its
// case); the short name of one of the edge's own ({tid}); or a
// shorthand of the Caddyfile ({client_ip}, {header.X-Tenant}), which
// the Caddyfile's adapter expands only as written, in lower case, and
// JSON not at all. A name of one of requestNamespaces as written is left
// alone whatever follows, as are names it does not know: a handler may
// set any.
func placeholderSpelling(name string) (right, why string, ok bool) {
	if slices.Contains(requestPlaceholders, name) {
		return "", "", false
	}
	const caseSensitive = "placeholder names are case-sensitive"
	for _, known := range requestPlaceholders {
		if strings.EqualFold(name, known) {
			return known, caseSensitive, true
		}
	}
	for _, namespace := range requestNamespaces {
		if strings.HasPrefix(name, namespace) {
			return "", "", false
		}
	}
	for _, namespace := range requestNamespaces {
		if len(name) > len(namespace) && strings.EqualFold(name[:len(namespace)], namespace) {
			return namespace + name[len(namespace):], caseSensitive, true
		}
	}
	for _, known := range grantPlaceholders[1:] {
		if strings.EqualFold(name, strings.TrimPrefix(known, "http.ucwa.")) {
			return known, "the edge's placeholders are named http.ucwa.*", true
		}
	}
	// The shorthand's word in lower case, the rest as written: a header
	// or query parameter's name as the operator gave it.
	word, rest, dotted := strings.Cut(name, ".")
	shorthand := strings.ToLower(word)
	if dotted {
		shorthand += "." + rest
	}
	segment := caddyfile.Segment{{Text: "{" + shorthand + "}"}}
	httpcaddyfile.NewShorthandReplacer().ApplyToSegment(&segment)
	if full := segment[0].Text; full != "{"+shorthand+"}" && strings.HasPrefix(full, "{") && strings.HasSuffix(full, "}") {
		return full[1 : len(full)-1], "{" + shorthand + "} is a shorthand of the Caddyfile, which expands it only in lower case, and JSON not at all", true
	}
	return "", "", false
}

// unbracedPlaceholder reports whether key, a key template, is a
// placeholder's name written without its braces, which Caddy's replacer
// keeps as text, one budget for every request: the name of one of the
// edge's own (tid, http.ucwa.tid), in any letter case, or a name in one
// of Caddy's placeholder namespaces (http.request.header.X-Tenant,
// env.TENANT). It returns the placeholder's name to write in braces.
func unbracedPlaceholder(key string) (string, bool) {
	if strings.ContainsAny(key, "{}") {
		return "", false
	}
	for _, name := range grantPlaceholders {
		short, ok := strings.CutPrefix(name, "http.ucwa.")
		if strings.EqualFold(key, name) || ok && strings.EqualFold(key, short) {
			return name, true
		}
	}
	for _, namespace := range []string{"http.", "env.", "file.", "system.", "time."} {
		if len(key) > len(namespace) && strings.EqualFold(key[:len(namespace)], namespace) {
			return key, true
		}
	}
	return "", false
}

// unknownKeyPlaceholders returns the names of the placeholders of a key
// template that are none of requestPlaceholders and in none of Caddy's
// namespaces that a request may fill (requestNamespaces, a named
// matcher's captures, the global system.* and time.*, see
// otherNamespaces): a typo, most likely ({http.reqest.header.X-Tenant}),
// or one Caddy fills only later ({http.response.status}); but a handler
// of another plugin may set any name, so that it is warned of, not
// refused.
func unknownKeyPlaceholders(key string) []string {
	var unknown []string
	for name := range keyPlaceholders(key) {
		inNamespace := func(ns string) bool { return strings.HasPrefix(name, ns) }
		if slices.Contains(requestPlaceholders, name) || slices.ContainsFunc(requestNamespaces, inNamespace) || slices.ContainsFunc(otherNamespaces, inNamespace) {
			continue
		}
		unknown = append(unknown, name)
	}
	return unknown
}

// otherNamespaces are the prefixes of the placeholders, beside
// requestNamespaces, that Caddy may have filled when the limits are
// checked: a matcher's captures (http.regexp.*, which the Caddyfile
// writes {re.*}; http.matchers.file.*; http.url_pattern.*), the server's
// shutdown and the global system.* and time.*.
var otherNamespaces = []string{"http.regexp.", "http.matchers.", "http.url_pattern.", "http.shutting_down", "http.time_until_shutdown", "system.", "time."}

// keyOfGrantAlone reports whether the key template names at least one
// placeholder and only those of a verified token (grantPlaceholders),
// which are never set with jwt off: such a key expands to nothing at
// every request (see expandKey), whatever text it holds besides.
func keyOfGrantAlone(key string) bool {
	named := false
	for name, closed := range keyPlaceholders(key) {
		if !closed {
			return named
		}
		if !slices.Contains(grantPlaceholders[:], name) {
			return false
		}
		named = true
	}
	return named
}

// keyPlaceholders yields the names of the placeholders of a key template
// as Caddy's replacer reads them, with whether each is closed: a brace
// after a backslash is text, and a brace left open is the last, its name
// the rest of the template.
func keyPlaceholders(key string) iter.Seq2[string, bool] {
	return func(yield func(string, bool) bool) {
		for rest := key; ; {
			i := strings.IndexByte(rest, '{')
			if i < 0 {
				return
			}
			if i > 0 && rest[i-1] == '\\' {
				rest = rest[i+1:]
				continue
			}
			j := strings.IndexByte(rest[i:], '}')
			if j < 0 {
				yield(rest[i+1:], false)
				return
			}
			if !yield(rest[i+1:i+j], true) {
				return
			}
			rest = rest[i+j+1:]
		}
	}
}

// limitKeyVersion starts the hashed part of every limit key, so that a
// new way of making keys never meets the old one's state.
const limitKeyVersion = "caddy-ucwa limit 1"

// limitKeyAddress follows the expanded key in the hashed part of the key
// of a client address's budget (see storeKey).
const limitKeyAddress = "client address"

// limitKeyTemplate follows the expanded key (and limitKeyAddress) in the
// hashed part of every limit key, and is followed by the limit's key
// template, after its length: two limits of one name with different
// templates (two sites on one store) never share a bucket, whatever
// their keys expand to, else a client of the site keyed by a header it
// sets would spend the budget of the other site's verified caller of
// that value.
const limitKeyTemplate = "key template"

// storeKey is the store key of the request of repl and r, of the grant g
// (nil for none), under l: the limit's prefix and the SHA-256 of the
// expanded key (the client's IP, marked as such, when it expands to "")
// and of l's key template (see limitKeyTemplate), so that the store
// holds no caller id, address or other value a key may expand to.
func (l *limit) storeKey(repl *caddy.Replacer, r *http.Request, g *grant) string {
	var v string
	switch {
	case repl == nil:
	case l.placeholder != "":
		v, _ = repl.GetString(l.placeholder)
	default:
		v = l.expandKey(repl)
	}
	fallback := v == ""
	if fallback {
		v = clientNetwork(r)
		l.noteKeyless()
	} else if g != nil && g.limitDigest != "" && v == g.limitKey && l.key == DefaultLimitKey {
		// The verified caller, the default key: hashed once per token.
		return l.storePrefix + g.limitDigest
	}
	var buf [128]byte
	// Built on the stack (buf's room is free again once hashed), so that
	// the key costs its string alone.
	k := append(buf[:0], l.storePrefix...)
	return string(appendLimitDigest(k, l.key, v, fallback))
}

// appendLimitDigest appends to b the hashed part of a limit's store key
// (see storeKey) of the key template for the expanded key v, or for the
// client address v when address.
func appendLimitDigest(b []byte, template, v string, address bool) []byte {
	var buf [256]byte
	h := append(buf[:0], limitKeyVersion...)
	h = binary.AppendUvarint(h, uint64(len(v)))
	h = append(h, v...)
	if address {
		// The address's budget is apart from that of a key that expands
		// to the same text (a header the client sets to another client's
		// address): an expanded key's input goes on with
		// limitKeyTemplate, which does not start as this does.
		h = append(h, limitKeyAddress...)
	}
	h = append(h, limitKeyTemplate...)
	h = binary.AppendUvarint(h, uint64(len(template)))
	h = append(h, template...)
	sum := sha256.Sum256(h)
	return base64.RawURLEncoding.AppendEncode(b, sum[:])
}

// expandKey expands l's key template of more than one placeholder (or of
// text besides), each value written as keyEncoding says, or returns ""
// when it has placeholders and every one of them expands to nothing:
// "{http.ucwa.tid}/{http.ucwa.oid}" without those claims is "/", which
// would be one budget for every such client. A template without
// placeholders is itself, one budget for all.
func (l *limit) expandKey(repl *caddy.Replacer) string {
	placeholders, filled := false, false
	v, err := repl.ReplaceFunc(l.key, func(_ string, val any) (any, error) {
		placeholders = true
		s := caddy.ToString(val)
		filled = filled || s != ""
		switch {
		case l.keyLengths:
			return strconv.Itoa(len(s)) + ":" + s, nil
		case l.keyEscapes != "" && strings.ContainsAny(s, l.keyEscapes):
			return string(appendEscaped(make([]byte, 0, 2*len(s)), l.keyEscapes, s)), nil
		}
		return s, nil
	})
	if err != nil || placeholders && !filled {
		return ""
	}
	return v
}

// appendEscaped appends s to b with each of its bytes that is one of
// escapes after a '\' (see keyEncoding).
func appendEscaped(b []byte, escapes, s string) []byte {
	for i := range len(s) {
		if strings.IndexByte(escapes, s[i]) >= 0 {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return b
}

// tenantCallerKey is the key template whose expansion is the value of
// {http.ucwa.tenant_caller} (see makeGrant), and tenantCallerEscapes how
// it writes its values.
const tenantCallerKey = "{http.ucwa.tenant}/{http.ucwa.caller}"

var tenantCallerEscapes, _ = keyEncoding(tenantCallerKey)

// keyEncoding tells how the values of a key template's placeholders are
// written into the key, so that requests whose values differ never share
// a budget ("{a}|{b}" with a "x|y" and b "z", and with a "x" and b "y|z",
// both "x|y|z" as they are). A template of one placeholder needs nothing.
// In one of several placeholders with text between each two, a value has
// every byte of that text, and '\', escaped with '\' (escapes): the text
// then starts at the first byte of it that is not escaped. A value
// without them (a GUID between "/") is written as it is. A template with two placeholders side by side
// (or with '\' or a NUL between them) has each value written after its
// length instead ("3:x|y"): lengths.
func keyEncoding(template string) (escapes string, lengths bool) {
	n := 0
	marked, err := caddy.NewEmptyReplacer().ReplaceFunc(template, func(string, any) (any, error) {
		n++
		return "\x00", nil
	})
	if err != nil || n < 2 {
		return "", false
	}
	between := strings.Split(marked, "\x00")
	if len(between) != n+1 {
		return "", true
	}
	b := []byte{'\\'}
	for _, text := range between[1:n] {
		if text == "" || strings.ContainsAny(text, "\\") {
			return "", true
		}
		for i := range len(text) {
			if bytes.IndexByte(b, text[i]) < 0 {
				b = append(b, text[i])
			}
		}
	}
	return string(b), false
}
