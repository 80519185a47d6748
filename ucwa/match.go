package ucwa

import (
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// CanonicalPath is the form of a request path that operations are matched
// in. Pools run on IIS, which is lenient about paths, so the form is
// broader than what IIS would route: backslashes are slashes, ";params"
// are cut from each segment, trailing dots and spaces are trimmed from
// each segment, dot segments are resolved, and letters are folded as
// .NET's invariant upper-casing does (ſ is S, ı is I, the Kelvin sign is
// K), so that look-alike spellings of a guarded path are guarded too.
// A clean ASCII path is returned as it is, without an allocation.
func CanonicalPath(p string) string {
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	if isCanonicalASCII(p) {
		return p
	}
	if strings.ContainsAny(p, "\\;. ") || !isASCII(p) {
		p = strings.ReplaceAll(p, "\\", "/")
		segments := strings.Split(p, "/")
		for i, seg := range segments {
			if j := strings.IndexByte(seg, ';'); j >= 0 {
				seg = seg[:j]
			}
			if seg != "." && seg != ".." {
				seg = strings.TrimRight(seg, ". ")
			}
			segments[i] = strings.Map(dotnetFold, seg)
		}
		p = strings.Join(segments, "/")
	}
	return path.Clean(p) // no allocation when p is clean already
}

// isCanonicalASCII reports whether p, which starts with "/", is
// canonical as it is, in one pass over it: ASCII without backslashes,
// ";", dots or spaces (so with nothing to cut, trim or fold, and no dot
// segments), and without an empty segment ("//", or a trailing "/" after
// the root), which path.Clean would drop. Every path a client sends for
// an operation is; CanonicalPath does the rest for the others.
func isCanonicalASCII(p string) bool {
	for i := 1; i < len(p); i++ {
		if c := p[i]; notCanonical[c] || c == '/' && p[i-1] == '/' {
			return false
		}
	}
	return len(p) == 1 || p[len(p)-1] != '/'
}

// notCanonical holds the bytes that isCanonicalASCII refuses anywhere.
var notCanonical = func() (t [256]bool) {
	for c := utf8.RuneSelf; c < len(t); c++ {
		t[c] = true
	}
	for _, c := range []byte("\\;. ") {
		t[c] = true
	}
	return t
}()

// dotnetFold folds a letter as comparing .NET's invariant upper-casing
// does, to lower case.
func dotnetFold(c rune) rune { return unicode.ToLower(unicode.ToUpper(c)) }

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// ValidPathSuffix checks a path suffix of an operation: it starts with
// "/", has no empty, "." or ".." segment and no trailing "/", has "*"
// only as a last segment of its own after another (any item of a
// collection, see Matcher.item), and is
// ASCII without white space, backslashes, ";", "?", "#" or "%" (it is
// compared with decoded, canonical paths).
func ValidPathSuffix(s string) error {
	if !strings.HasPrefix(s, "/") || len(s) < 2 {
		return fmt.Errorf("path suffix %q must start with / and name at least one segment", s)
	}
	segments := strings.Split(s[1:], "/")
	for i, seg := range segments {
		if seg == "" || seg == "." || seg == ".." || strings.HasSuffix(seg, ".") {
			return fmt.Errorf("path suffix %q has an empty, dot or dot-ended segment", s)
		}
		if strings.Contains(seg, anyItem) && (seg != anyItem || i == 0 || i != len(segments)-1) {
			return fmt.Errorf("path suffix %q: %s, any item, is a last segment of its own after another", s, anyItem)
		}
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`\;?#%`, c) >= 0 {
			return fmt.Errorf("path suffix %q must be ASCII without white space, control characters or any of \\ ; ? # %%", s)
		}
	}
	if !strings.EqualFold(CanonicalPath(s), s) {
		return fmt.Errorf("path suffix %q is not in canonical form", s)
	}
	return nil
}

// Match is what a request path is to the edge.
type Match struct {
	// Operation is the guarded operation the request is, or nil.
	Operation *Operation
	// NearMiss is set for a request that is not an operation but whose
	// path spells a guarded link name with something added (invisible
	// or control characters, look-alike letters, an extension, an NTFS
	// stream, an 8.3 short name, a trailing segment) or in an unexpected
	// place, or a write to a path below a PUT operation's resource that
	// is no resource of it taking that method (directly below a
	// conversation, within the modalities that can bring a phone into
	// the call, and below an invitation or a conversation log: a call
	// transfer, conversations/{c}/transfer or audioVideo/transfer, or a
	// forward, invitations/{i}/forward, which the reference does not
	// list), which
	// a pool might still route to the operation or to one of its own
	// that no row judges: the edge answers it 404 rather than pass it on
	// unchecked.
	NearMiss bool
	// Path is the canonical form of the request path (see CanonicalPath)
	// when Operation is set, "" otherwise: what the request's
	// application id (see CanonicalApplicationID) and resource are read
	// from, without canonicalizing the path again.
	Path string
}

// Matcher finds the operation a request is. It is safe for concurrent
// use.
type Matcher struct {
	ops []Operation
	// byName holds, per lower-cased last segment of a suffix, the
	// suffixes ending in it.
	byName map[string][]matchSuffix
	// items are the suffixes ending in anyItem, any one segment: the
	// items of a collection (a phone of me/phones).
	items []matchSuffix
	// names are every guarded link name (last segments of suffixes, and
	// rels), lower case; leaves are the rels of POST rows without
	// sub-resources, so that a trailing segment after one is a near miss.
	names, leaves []string
	// parents are the resources of rows with sub-resources (see
	// subResources), by the last segments of their paths, with what lies
	// below them; parentNames their names.
	parents     []parentResource
	parentNames []string
}

type matchSuffix struct {
	suffix string
	op     *Operation
	// For a suffix ending in anyItem: the collection's path (the suffix
	// without "/" anyItem) and its last segment, its name.
	collection, collectionName string
}

// maxNameLength bounds the segments looked up without an allocation.
const maxNameLength = 64

// NewMatcher returns a Matcher for a table, which it validates and
// copies.
func NewMatcher(ops []Operation) (*Matcher, error) {
	if err := ValidateOperations(ops); err != nil {
		return nil, err
	}
	m := &Matcher{ops: cloneOperations(ops), byName: map[string][]matchSuffix{}}
	addName := func(list *[]string, name string) {
		name = strings.ToLower(name)
		for _, n := range *list {
			if n == name {
				return
			}
		}
		*list = append(*list, name)
	}
	for i := range m.ops {
		op := &m.ops[i]
		below, parent := subResources[op.Rel]
		for _, s := range op.Paths {
			last := strings.ToLower(s[strings.LastIndexByte(s, '/')+1:])
			if len(last) > maxNameLength {
				return nil, fmt.Errorf("operation %s: path %q ends in a segment longer than %d", op.Rel, s, maxNameLength)
			}
			if last == anyItem {
				collection := s[:len(s)-len("/"+anyItem)]
				m.items = append(m.items, matchSuffix{suffix: s, op: op, collection: collection, collectionName: lastSegment(collection)})
				continue
			}
			m.byName[last] = append(m.byName[last], matchSuffix{suffix: s, op: op})
			addName(&m.names, last)
			if op.Method == "POST" && !parent && strings.EqualFold(last, op.Rel) {
				addName(&m.leaves, last)
			}
			if parent && !slices.Contains(m.parentNames, last) {
				m.parentNames = append(m.parentNames, last)
				m.parents = append(m.parents, parentResource{name: last, below: below})
			}
		}
		addName(&m.names, op.Rel)
	}
	return m, nil
}

// Operations returns the matcher's table (its own copy: do not modify).
func (m *Matcher) Operations() []Operation { return m.ops }

// Match returns what a request with this method and (decoded) path is:
// a guarded operation, a near miss, or neither. A row matches every
// method on its paths but those it passes (see Operation.Passes: for a
// PUT row, GET, HEAD and OPTIONS, which read); the edge answers 405 for
// one not its own. A path ending in anyItem matches any last segment.
// Near misses are reported only for methods other than
// GET and HEAD: reads pass; below a resource with sub-resources, only
// for those that do not read (see near). A path that a pool on ASP.NET may read
// otherwise (see otherReadings) is a near miss when another reading is
// an operation or a near miss that the path as it came is not, or no
// operation where the path as it came is one: cut at an escaped '?', the
// rest of the path is a query of its own to a pool that reads its inputs
// from Request.Url, which the edge never read; without a segment of
// cookieless values, which ASP.NET takes out, PUT me/(S(x))/phones/work
// is a phone's PUT. So is an operation whose path another reading gives
// another application id (applications/(S(x))/104 is 104 to ASP.NET):
// idempotency keys a request by it, and a repeat so spelled would be
// keyed apart from the first and delivered again. A clean ASCII path
// that is no operation costs no allocation.
func (m *Matcher) Match(method, rawPath string) Match {
	got := m.match(method, rawPath)
	if method == "GET" || method == "HEAD" || got.NearMiss || !hasOtherReadings(rawPath) {
		return got
	}
	// A path that is not UTF-8 has readings the edge cannot know: IIS
	// (HTTP.sys, whose EnableNonUtf8 is on by default) reads it in the
	// server's ANSI or DBCS code page, where %FD is windows-1254's
	// dotless ı, which .NET's case-insensitive routing takes for an I:
	// makeMeAva%FDlable is makeMeAvailable there. No client writes one.
	if !utf8.ValidString(rawPath) {
		return Match{NearMiss: true}
	}
	near := false
	otherReadings(rawPath, func(r string) bool {
		other := m.match(method, r)
		near = !utf8.ValidString(r) || other.NearMiss || other.Operation != got.Operation ||
			got.Operation != nil && CanonicalApplicationID(other.Path) != CanonicalApplicationID(got.Path)
		return !near
	})
	if near {
		return Match{NearMiss: true}
	}
	return got
}

// match is Match for the path as it came, without its other readings.
func (m *Matcher) match(method, rawPath string) Match {
	p := CanonicalPath(rawPath)
	last := lastSegment(p)
	var key [maxNameLength]byte
	if k, ok := lowerASCII(key[:0], last); ok {
		if suffixes := m.byName[string(k)]; suffixes != nil {
			var post, put *matchSuffix
			for i := range suffixes {
				s := &suffixes[i]
				if !hasSegmentSuffixFold(p, s.suffix) {
					continue
				}
				best := &post
				if s.op.Method == "PUT" {
					best = &put
				}
				if *best == nil || len(s.suffix) > len((*best).suffix) {
					*best = s
				}
			}
			var s *matchSuffix
			switch {
			case put != nil && !put.op.PassesOn(method):
				s = put
			case post != nil && !post.op.PassesOn(method):
				s = post
			case put != nil:
				s = put
			default:
				s = post
			}
			if s != nil {
				// A segment before the row's suffix that spells an
				// operation without sub-resources makes it a near miss,
				// as it does any other path (see near): ASP.NET may hand
				// startPhoneAudio/x/communication/startEmergencyCall to
				// startPhoneAudio, which would dial a to that the edge
				// judged as an emergency call's, which no rule refuses.
				if method != "GET" && method != "HEAD" && m.leafBefore(rawPath, p, len(s.suffix)) {
					return Match{NearMiss: true}
				}
				if s.op.PassesOn(method) {
					return Match{} // a read of a guarded resource: a normal request
				}
				return Match{Operation: s.op, Path: p}
			}
		}
	}
	// An item whose row passes the method (a phone's DELETE) is a near
	// miss as any other path is, but for its last segment spelling the
	// row's own rel (the reference's phone "phone").
	ownRel := ""
	if s := m.item(p, last); s != nil {
		if !s.op.PassesOn(method) {
			if method != "GET" && method != "HEAD" && m.leafBefore(rawPath, p, len(last)+1) {
				return Match{NearMiss: true}
			}
			return Match{Operation: s.op, Path: p}
		}
		ownRel = s.op.Rel
	}
	if method == "GET" || method == "HEAD" {
		return Match{}
	}
	if m.near(method, p, ownRel) {
		return Match{NearMiss: true}
	}
	// The segments as written, before letters were folded and ";params"
	// cut: a look-alike letter folded to ASCII (a Kelvin sign after the
	// name) is junk too, and "..;" is no dot segment to IIS, which gives
	// startPhoneAudio/..;/x to startPhoneAudio as PathInfo, and
	// me/phones/..; to a phone, whose PUT stores a number, where the edge
	// read me.
	if raw := asWritten(rawPath); raw != p && m.near(method, raw, ownRel) {
		return Match{NearMiss: true}
	}
	return Match{}
}

// item returns the suffix ending in anyItem that a clean path with this
// last segment is an item of, or nil.
func (m *Matcher) item(p, last string) *matchSuffix {
	if last == "" {
		return nil
	}
	parent := p[:len(p)-len(last)-1]
	for i := range m.items {
		s := &m.items[i]
		if hasSegmentSuffixFold(parent, s.collection) {
			return s
		}
	}
	return nil
}

// itemOfName returns the suffix ending in anyItem whose collection (its
// segment before anyItem: phones) a path with this last segment is an
// item of by name, wherever that collection stands, or nil.
func (m *Matcher) itemOfName(p, last string) *matchSuffix {
	if last == "" || len(p) == len(last)+1 {
		return nil
	}
	parent := lastSegment(p[:len(p)-len(last)-1])
	for i := range m.items {
		s := &m.items[i]
		if equalFoldASCII(s.collectionName, parent) {
			return s
		}
	}
	return nil
}

// near reports whether a clean path is a near miss for a request with
// this method: its last segment spells a guarded link name with junk
// added, or a segment before it spells the name of an operation that has
// no sub-resources (a leaf): ASP.NET hands a handler every segment after
// its name as PathInfo (page.aspx/a/b), so startPhoneAudio/x/y may reach
// startPhoneAudio as surely as startPhoneAudio/x. A PUT row's resource,
// and a POST row's collection (phones), has sub-resources, so for a
// method that does not read (see isRead), a segment before the last that
// spells its name is a near miss when what follows is no sub-resource
// taking the method (see subResources):
// PUT communication/x, or a POST a pool takes as the PUT, may reach
// communication with /x as PathInfo and store a number; POST
// communication/conversations/137/audioVideo/transfer or
// communication/invitations/507/forward may reach a pool's call
// transfer or forward, which the reference does not list. A last segment
// that is ownRel itself (an item's, see Matcher.item, whose row passes
// the method) is no near miss: that row's resource is the one it names.
// An item of a collection named as an item row's, below another prefix
// than the row's (x/phones/work, phones/work at the application's root,
// where a pool serves some of me's links, or me/phones/..;, which IIS
// reads as a phone), is a near miss for a method that row does not pass:
// a pool may serve the collection there too, and its PUT store a number.
func (m *Matcher) near(method, p, ownRel string) bool {
	last := lastSegment(p)
	if nearName(last, m.names) && (len(last) != len(ownRel) || !equalFoldASCII(ownRel, last)) {
		return true
	}
	if s := m.itemOfName(p, last); s != nil && !s.op.PassesOn(method) {
		return true
	}
	write := !isRead(method)
	for i := 1; i < len(p)-len(last); { // p[i:] starts a segment before the last
		seg, _, _ := strings.Cut(p[i:], "/")
		if nearName(seg, m.leaves) || write && m.nearBelow(method, seg, p[i+len(seg)+1:]) {
			return true
		}
		i += len(seg) + 1
	}
	return false
}

// leafBefore reports whether a path whose canonical form p ends in n
// bytes of a row's path (its suffix, or an item's last segment) holds
// the name of an operation without sub-resources (a leaf) before them:
// in p, or in the path as written (see match), whose "..;" is no dot
// segment to IIS, which gives startPhoneAudio/..;/x to startPhoneAudio.
func (m *Matcher) leafBefore(rawPath, p string, n int) bool {
	if m.leafIn(p[:len(p)-n]) {
		return true
	}
	if rawPath == p {
		return false
	}
	raw := asWritten(rawPath)
	return m.leafIn(raw[:len(raw)-len(lastSegment(raw))])
}

// asWritten is a path's segments as written, before letters are folded
// and ";params" cut (see CanonicalPath): backslashes as slashes, dot
// segments resolved, "..;" kept, as IIS reads it.
func asWritten(rawPath string) string {
	if !strings.HasPrefix(rawPath, "/") {
		rawPath = "/" + rawPath
	}
	return path.Clean(strings.ReplaceAll(rawPath, "\\", "/"))
}

// leafIn reports whether a segment of a path's prefix spells a leaf's
// name, with or without junk added (see near), read as the edge reads a
// segment (its ";params" cut, trailing dots and spaces trimmed).
func (m *Matcher) leafIn(prefix string) bool {
	for seg := range strings.SplitSeq(prefix, "/") {
		seg, _, _ = strings.Cut(seg, ";")
		if nearName(strings.TrimRight(seg, ". "), m.leaves) {
			return true
		}
	}
	return false
}

// nearBelow reports whether a write to rest, below a segment seg, is a
// near miss: seg is a resource with sub-resources and rest no
// sub-resource of it taking method, or seg spells such a resource with
// junk added.
func (m *Matcher) nearBelow(method, seg, rest string) bool {
	for i := range m.parents {
		if equalFoldASCII(m.parents[i].name, seg) {
			return !takesBelow(m.parents[i].below, method, rest)
		}
	}
	return !plainName(seg) && nearName(seg, m.parentNames)
}

// maxReadings bounds how many times otherReadings decodes a path again,
// and eachDecoding a value.
const maxReadings = 3

// eachDecoding calls f with p and each decoding of it again (%XX and
// %uXXXX, see unescapeAgain), until f returns false or p decodes no
// further, and reports whether f never returned false and p decoded no
// further within maxReadings decodings. Each decoding is a pass over p,
// and an escape of an escape (%2525...41) peels one level a pass: a
// value escaped deeper than any client writes one is refused unread
// rather than decoded a level at a time, at a cost that grows with the
// square of its length.
func eachDecoding(p string, f func(string) bool) bool {
	for range maxReadings + 1 {
		if !f(p) {
			return false
		}
		next, again := unescapeAgain(p)
		if !again {
			return true
		}
		p = next
	}
	return false
}

// hasOtherReadings reports whether a decoded path holds what a pool on
// ASP.NET may read otherwise than the edge does: a '?' or '#' (from %3F
// or %23), a '%' (a %-escape, from %25), a ')' (which ends a segment of
// cookieless values, see withoutCookieless), or a '.' with an empty
// segment ("//", or a backslash, which may write one) that a ".." may
// remove (see dotsAgainstEmpty); or bytes that are not UTF-8, which IIS
// reads in the server's code page (see Match). Every request is asked
// this, and a path rarely holds any of them: a vector scan for each byte
// costs a tenth of ContainsAny's byte-by-byte set lookup, and "//" is
// looked for only in a path with a '.', which those of operations have
// not.
func hasOtherReadings(p string) bool {
	return !utf8.ValidString(p) || strings.IndexByte(p, '%') >= 0 || strings.IndexByte(p, '?') >= 0 || strings.IndexByte(p, '#') >= 0 ||
		strings.IndexByte(p, ')') >= 0 || strings.IndexByte(p, '.') >= 0 && (strings.IndexByte(p, '\\') >= 0 || strings.Contains(p, "//"))
}

// otherReadings calls f with each other reading of a decoded path p that
// a pool on ASP.NET may take, until f returns false:
//
//   - cut at its first '?' or '#': ASP.NET 4.5's Request.Url (and later
//     versions' with aspnet:UseLegacyRequestUrlGeneration) is parsed from
//     the decoded path, so an escaped '#' or '?' ends its path there
//     (startPhoneAudio%23x is startPhoneAudio, with a fragment);
//   - decoded once more, %XX and IIS's %uXXXX, and then cut so too: a
//     pool that allows double escaping (IIS request filtering's
//     allowDoubleEscaping) and reads the path with a URI parser that
//     unescapes it (System.Uri before .NET 4.5, ASP.NET's legacy
//     Request.Url) or decodes it itself reads %252F as '/';
//   - each of these, and the path itself, without its segments of
//     cookieless values (see withoutCookieless), which ASP.NET takes out
//     before it routes: me/(S(x))/phones/work is me/phones/work there;
//     and with its dot segments resolved against empty segments too
//     (see dotsAgainstEmpty): communication//.. is communication/ to
//     RFC 3986, the application to path.Clean.
func otherReadings(p string, f func(string) bool) {
	variants := func(r string) bool {
		if d, ok := dotsAgainstEmpty(r); ok && !(f(d) && cookielessReadings(d, f)) {
			return false
		}
		return cookielessReadings(r, f)
	}
	read := func(r string) bool { return f(r) && variants(r) }
	if !variants(p) {
		return
	}
	for range maxReadings {
		if i := strings.IndexAny(p, "?#"); i >= 0 && !read(p[:i]) {
			return
		}
		decoded, ok := unescapeAgain(p)
		if !ok || !read(decoded) {
			return
		}
		p = decoded
	}
}

// dotsAgainstEmpty returns a decoded path with its dot segments resolved
// as RFC 3986's remove_dot_segments resolves them (System.Uri, and a
// proxy that normalizes URIs before the pool): a ".." removes the segment
// before it even when that one is empty, where path.Clean, as IIS does,
// drops empty segments first (a/b//.. is a/b to RFC 3986, a to
// path.Clean). Backslashes are slashes, as they are to IIS. ok is false
// when both resolve it alike.
func dotsAgainstEmpty(p string) (_ string, ok bool) {
	p = strings.ReplaceAll(p, "\\", "/")
	if !strings.Contains(p, "//") || !strings.Contains(p, "..") {
		return p, false
	}
	in := strings.Split(p, "/")
	out := make([]string, 0, len(in))
	for i, seg := range in {
		switch {
		case i == 0:
			out = append(out, seg) // before the first '/'
		case seg == ".":
		case seg == "..":
			if len(out) > 1 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
		}
		if i > 0 && i == len(in)-1 && (seg == "." || seg == "..") {
			out = append(out, "") // a path ending in a dot segment ends in "/"
		}
	}
	r := strings.Join(out, "/")
	return r, path.Clean(r) != path.Clean(p)
}

// cookielessReadings calls f with p without its last segment of
// cookieless values, then without the one before, and so on (see
// withoutCookieless), up to maxReadings of them, until f returns false;
// and so again for p as IIS hands it to ASP.NET, when that differs (see
// iisSegments): /(S(x))\phones and /(S(x)). /phones end a segment of
// cookieless values there. It reports false when f did.
func cookielessReadings(p string, f func(string) bool) bool {
	if !cookielessFrom(p, f) {
		return false
	}
	if q, ok := iisSegments(p); ok {
		return cookielessFrom(q, f)
	}
	return true
}

// iisSegments returns a decoded path as IIS hands it on, as far as
// CanonicalPath reads it so without folding letters (which cookieless
// values are told by): backslashes as slashes, and trailing dots and
// spaces trimmed from each segment but a dot segment. ok is false when
// that changes nothing.
func iisSegments(p string) (_ string, ok bool) {
	if !strings.ContainsAny(p, "\\. ") {
		return p, false
	}
	segments := strings.Split(strings.ReplaceAll(p, "\\", "/"), "/")
	for i, seg := range segments {
		if seg != "." && seg != ".." {
			segments[i] = strings.TrimRight(seg, ". ")
		}
	}
	q := strings.Join(segments, "/")
	return q, q != p
}

// cookielessFrom is cookielessReadings for p as it is.
func cookielessFrom(p string, f func(string) bool) bool {
	for range maxReadings {
		stripped, ok := withoutCookieless(p)
		if !ok {
			return true
		}
		if !f(stripped) {
			return false
		}
		p = stripped
	}
	return true
}

// withoutCookieless returns a decoded path without the segment of
// cookieless values that ASP.NET (System.Web's CookielessHelper, on every
// request, whatever the site's session and forms settings) takes out of
// it before it routes: the last ")/" and the last "/(" before it, with
// between them one or more values, each a capital letter and text in
// parentheses without '/' ("/(S(x))/", "/(A(x)F(y))/"). Where that
// segment is anything else, ASP.NET takes nothing out, and ok is false.
// ASP.NET may take out a second one in the same request (as the
// "cookieless DuoDrop" attacks show), so callers read the result again.
func withoutCookieless(p string) (_ string, ok bool) {
	end := strings.LastIndex(p, ")/")
	if end < 3 {
		return p, false
	}
	start := strings.LastIndex(p[:end], "/(")
	if start < 0 || !cookielessValues(p[start+2:end]) {
		return p, false
	}
	return p[:start] + p[end+1:], true
}

// cookielessValues reports whether s is what a segment of cookieless
// values holds: one or more of a capital letter, '(', text without ')'
// or '/', and ')'.
func cookielessValues(s string) bool {
	if len(s) < len("X()") {
		return false
	}
	for s != "" {
		if len(s) < len("X()") || s[0] < 'A' || s[0] > 'Z' || s[1] != '(' {
			return false
		}
		i := strings.IndexAny(s[2:], ")/")
		if i < 0 || s[2+i] == '/' {
			return false
		}
		s = s[2+i+1:]
	}
	return true
}

// unescapeAgain decodes the %XX and %uXXXX escapes of p (a path decoded
// once already), leaving any other '%' as it is; ok is false when there
// is none.
func unescapeAgain(p string) (_ string, ok bool) {
	if strings.IndexByte(p, '%') < 0 {
		return p, false
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' {
			if i+2 < len(p) && ishex(p[i+1]) && ishex(p[i+2]) {
				b.WriteByte(unhex(p[i+1])<<4 | unhex(p[i+2]))
				i += 2
				ok = true
				continue
			}
			if i+5 < len(p) && (p[i+1] == 'u' || p[i+1] == 'U') && ishex(p[i+2]) && ishex(p[i+3]) && ishex(p[i+4]) && ishex(p[i+5]) {
				r := rune(unhex(p[i+2]))<<12 | rune(unhex(p[i+3]))<<8 | rune(unhex(p[i+4]))<<4 | rune(unhex(p[i+5]))
				b.WriteRune(r)
				i += 5
				ok = true
				continue
			}
		}
		b.WriteByte(c)
	}
	return b.String(), ok
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// isRead reports whether method only reads (GET, HEAD, OPTIONS): the one
// kind of request a PUT operation's paths pass on. Any other may be run
// as the PUT: .NET reads methods without regard to case ("put"), and
// ASP.NET MVC takes a POST as the method an X-HTTP-Method-Override
// header, form field or query parameter names.
func isRead(method string) bool {
	return method == "GET" || method == "HEAD" || method == "OPTIONS"
}

// methodOverrideHeaders ask a server to take a request as another method
// than its own: ASP.NET MVC's verb selectors take a POST with
// X-HTTP-Method-Override: PUT as a PUT.
var methodOverrideHeaders = [...]string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"}

// Header is a request's header with the presence of each of
// watchedHeaders, under its own name or spelled with '_' (see
// headerValues), found in one walk of it: each check by itself would look
// its names up and walk the whole map again for their '_' spellings, and
// a request meets them all.
type Header struct {
	h   http.Header
	has uint32 // bit i: h has a value of watchedHeaders[i]
}

// WatchedHeader is a header a Header knows at once, besides the method
// overrides and the rewritten URLs, that the edge refuses a request for:
// its index in watchedHeaders.
type WatchedHeader uint8

const (
	// WebTicketHeader is X-MS-WebTicket.
	WebTicketHeader WatchedHeader = iota
	// DataHeader is Data.
	DataHeader
	// CharsetHeader is x-up-devcap-post-charset.
	CharsetHeader
)

// watchedHeaders are the headers a Header knows at once: those the edge
// refuses a request for or routes it by.
var watchedHeaders = slices.Concat([]string{WebTicketHeader: "X-Ms-Webticket", DataHeader: "Data", CharsetHeader: "X-Up-Devcap-Post-Charset"},
	methodOverrideHeaders[:], rewriteURLHeaders[:])

// methodOverrideBits and rewriteURLBits are the bits of a Header's has
// for methodOverrideHeaders and rewriteURLHeaders.
var methodOverrideBits, rewriteURLBits = watchedBits(methodOverrideHeaders[:]), watchedBits(rewriteURLHeaders[:])

func watchedBits(names []string) (bits uint32) {
	for _, name := range names {
		bits |= 1 << slices.Index(watchedHeaders, name)
	}
	return bits
}

// watchedFirstBytes holds the bytes a name of watchedHeaders, or a '_'
// spelling of one in any letter case, can begin with: a header that
// begins otherwise (most a request has) is none, without comparing it to
// each.
var watchedFirstBytes = func() (t [256]bool) {
	for _, name := range watchedHeaders {
		for c := range len(t) {
			t[c] = t[c] || batchLower(byte(c)) == batchLower(name[0])
		}
	}
	return t
}()

// ReadHeader reads h for the checks of a Header. h must not change while
// the Header is in use.
func ReadHeader(h http.Header) Header {
	hd := Header{h: h}
	for k, values := range h {
		if len(values) == 0 || k == "" || !watchedFirstBytes[k[0]] {
			continue
		}
		underscore := strings.IndexByte(k, '_') >= 0
		for i, name := range watchedHeaders {
			if k == name || underscore && underscoreSpelling(k, name) {
				hd.has |= 1 << i
			}
		}
	}
	return hd
}

// Map returns the header h was read from.
func (h Header) Map() http.Header { return h.h }

// OverridesMethod reports whether the request asks in a header to be
// taken as another method.
func (h Header) OverridesMethod() bool { return h.has&methodOverrideBits != 0 }

// RewritesURL reports whether the request names another URL for itself
// in a header (X-Original-URL, X-Rewrite-URL).
func (h Header) RewritesURL() bool { return h.has&rewriteURLBits != 0 }

// HasWatched reports whether the request has the header w, also in any
// spelling with '_' for '-' (see headerValues).
func (h Header) HasWatched(w WatchedHeader) bool { return h.has&(1<<w) != 0 }

// Has reports whether the request has the header name (canonical), also
// in any spelling with '_' for '-' (see headerValues).
func (h Header) Has(name string) bool {
	if i := slices.Index(watchedHeaders, name); i >= 0 {
		return h.has&(1<<i) != 0
	}
	for range headerValues(h.h, []string{name}) {
		return true
	}
	return false
}

// methodOverrideParameters are the query parameters and form fields in
// which a request asks to be taken as another method: ASP.NET MVC
// (HttpRequestBase.GetHttpMethodOverride) reads X-HTTP-Method-Override
// in a POST's form and query as well as in its header, and handlers a
// pool or a proxy before it may add read the other headers' names there,
// or _method (Rack, Laravel, Express's method-override).
var methodOverrideParameters = [...]string{"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override", "_method"}

// phpRenamed are the characters PHP renames to '_' in the name of a
// request variable (php_register_variable_ex), so that ".method" and
// "X HTTP Method" reach a PHP application, such as a front before a
// pool, as _method and X_HTTP_Method: ' ' and '.', and a '[' that no
// ']' follows (one that a ']' follows opens an array's index and ends
// the variable's name).
const phpRenamed = " .["

// methodOverrideName returns the parameter of methodOverrideParameters
// that name, a raw (still percent-encoded) query name, asks for, spelled
// as methodOverrideParameters spell it; "" for none. A name is read as
// ASP.NET reads it, leniently: '+' is a space, %XX and IIS's %uXXXX
// escapes are decoded and any other '%' kept, so a pair that
// url.ParseQuery refuses is read too (the edge does not parse the query
// of a request it passes). Then it is one when it, or a .NET
// model-binding part of it ("x.X-HTTP-Method-Override", "_method[]"),
// folds onto one in any letter case, with '_' for '-' or not, as
// ParseQuery folds names (NUL, white space, zero-width, format or
// combining characters, compatibility forms), or when PHP reads it as
// one (see phpName: ".method", "%2Emethod", "X+HTTP+Method+Override").
// A plain name (letters, digits, '_' and '-') costs no allocation.
func methodOverrideName(name string) string {
	method, _ := readQueryName(name, true, false)
	return method
}

// methodOverrideSpelling returns the parameter of
// methodOverrideParameters that a folded name is in any letter case
// with '_' for some '-', or "".
func methodOverrideSpelling(name string) string {
	for _, p := range methodOverrideParameters {
		if underscoreSpelling(name, p) {
			return p
		}
	}
	return ""
}

// phpName returns the name under which PHP registers a decoded query
// name in $_GET (php_register_variable_ex): up to its first NUL (PHP
// reads it as a C string), without its leading spaces, up to a '[' that
// a ']' follows (the name of an array), with phpRenamed read as '_'; ""
// for a name PHP drops (empty, or starting with '[').
func phpName(decoded string) string {
	if i := strings.IndexByte(decoded, 0); i >= 0 {
		decoded = decoded[:i]
	}
	decoded = strings.TrimLeft(decoded, " ")
	if !strings.ContainsAny(decoded, phpRenamed) {
		return decoded
	}
	if decoded[0] == '[' {
		return ""
	}
	b, lastClose := []byte(decoded), strings.LastIndexByte(decoded, ']')
	for i, c := range b {
		if c == '[' && i < lastClose {
			return string(b[:i])
		}
		if phpRenamedByte[c] {
			b[i] = '_'
		}
	}
	return string(b)
}

// phpRenamedByte marks the bytes of phpRenamed: phpName looks each byte
// of a name up, and a name may be as long as a request's header.
var phpRenamedByte = func() (t [256]bool) {
	for _, c := range []byte(phpRenamed) {
		t[c] = true
	}
	return t
}()

// formMediaTypes are the media types of a body in which ASP.NET reads a
// form (HttpRequest.Form: a Content-Type that starts with either, in any
// letter case), and so the X-HTTP-Method-Override field that
// GetHttpMethodOverride reads. No UCWA client sends a form.
var formMediaTypes = [...]string{"application/x-www-form-urlencoded", "multipart/form-data"}

// HasFormBody reports whether a request with header h declares a form
// body (see formMediaTypes), which may ask in a field to be taken as
// another method.
func HasFormBody(h http.Header) bool {
	for _, v := range h["Content-Type"] {
		v = strings.TrimLeft(v, " \t")
		for _, t := range formMediaTypes {
			if len(v) >= len(t) && equalFoldASCII(v[:len(t)], t) {
				return true
			}
		}
	}
	return false
}

// headerValues yields the values h has for the headers names, also under
// any spelling of a name with '_' for '-' (X_Original_URL): IIS gives an
// application both spellings under one server variable
// (HTTP_X_ORIGINAL_URL), so a pool that reads the header there takes
// either. Caddy drops a request's own headers spelled so unless told
// otherwise (expected_underscore_headers); a batch part's are the
// edge's to read.
func headerValues(h http.Header, names []string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, name := range names {
			for _, v := range h[name] {
				if !yield(v) {
					return
				}
			}
		}
		for k, values := range h {
			if strings.IndexByte(k, '_') < 0 || !slices.ContainsFunc(names, func(name string) bool { return underscoreSpelling(k, name) }) {
				continue
			}
			for _, v := range values {
				if !yield(v) {
					return
				}
			}
		}
	}
}

// underscoreSpelling reports whether the header name k is name in any
// letter case with '_' in place of some of its '-'.
func underscoreSpelling(k, name string) bool {
	if len(k) != len(name) {
		return false
	}
	for i := range len(k) {
		if c := k[i]; c != name[i] && !(c == '_' && name[i] == '-') && batchLower(c) != batchLower(name[i]) {
			return false
		}
	}
	return true
}

// rewriteURLHeaders name another URL for a request than its own: IIS's
// URL Rewrite module (a Skype for Business front end's prerequisite)
// keeps the URL it rewrote in X-Original-URL, ISAPI_Rewrite in
// X-Rewrite-URL, and applications on IIS take either for the request's
// URL when present, so a client that sends one may have its request run
// at the URL it names.
var rewriteURLHeaders = [...]string{"X-Original-Url", "X-Rewrite-Url"}

// RewriteNamesOperation reports whether a URL that a request with header
// h names for itself (see Header.RewritesURL), read as a request target
// with that method, is a guarded operation or a near miss of one, or
// cannot be read: a pool that took it for the request's URL would run a
// request the edge passed on unchecked as that operation. So does a
// header of the two given in more than one line (its spellings
// together): ASP.NET's Request.Headers reads a header's lines joined by
// ',', in an order the edge cannot know, and the lines each judged alone
// may name, so joined, another path (a/b,/../startPhoneAudio); no client
// sends two.
func (m *Matcher) RewriteNamesOperation(method string, h Header) bool {
	if !h.RewritesURL() {
		return false
	}
	for i := range rewriteURLHeaders {
		lines := 0
		for v := range headerValues(h.h, rewriteURLHeaders[i:i+1]) {
			if lines++; lines > 1 {
				return true
			}
			got, ok := m.MatchTarget(method, v)
			if !ok || got.Operation != nil || got.NearMiss {
				return true
			}
		}
	}
	return false
}

// MatchMethod returns the method to match a request by (see Match): its
// own, or PUT for one that asks to be taken as another method, whatever
// its own: in a header (see OverridesMethod), in its query (q, see
// QueryNames.MethodOverride), or that may ask so in a form field, which
// the edge does not read on a request it passes (a form body, see
// HasFormBody). A server honouring the override runs the request as the
// method it names, and one that does so before routing (Web API's method
// override handlers) routes it so: a GET of communication with
// X-HTTP-Method-Override: PUT and a body is the PUT that stores a
// number, and a POST of communication/startMessaging so overridden is
// PUT communication/startMessaging, which may reach communication with
// the rest as PathInfo as a plain one may. Matched as a PUT, the first
// is the operation, whose override the edge refuses as it does on every
// operation, and the second a near miss (a PUT is the write no resource
// below a PUT operation's resource takes); the operations of POST rows
// are matched by every method alike.
func MatchMethod(method string, h Header, q QueryNames) string {
	if h.OverridesMethod() || HasFormBody(h.h) || q.MethodOverride != "" {
		return http.MethodPut
	}
	return method
}

// MatchTarget is Match for a request target as written in a request line
// (an origin-form path with an optional query, percent-encoded, or an
// absolute URL), as in the parts of a batch. ok is false for a target
// that does not parse.
func (m *Matcher) MatchTarget(method, target string) (_ Match, ok bool) {
	p, ok := TargetPath(target)
	if !ok {
		return Match{}, false
	}
	return m.Match(method, p), true
}

// TargetPath returns the path of a request target as written in a
// request line, percent-decoded as a server reads it. ok is false for a
// target that does not parse.
func TargetPath(target string) (_ string, ok bool) {
	if isPlainPath(target) {
		return target, true
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return "", false
	}
	return u.Path, true
}

// isPlainPath reports whether target is an origin-form path that
// url.ParseRequestURI takes as its own Path: one that starts with "/"
// and has no query, no percent-encoding and no control characters,
// as the targets of batch parts usually are.
func isPlainPath(target string) bool {
	if !strings.HasPrefix(target, "/") {
		return false
	}
	for i := 0; i < len(target); i++ {
		if c := target[i]; c < ' ' || c == 0x7f || c == '%' || c == '?' {
			return false
		}
	}
	return true
}

// lastSegment returns the last segment of a clean path.
func lastSegment(p string) string {
	return p[strings.LastIndexByte(p, '/')+1:]
}

// lowerASCII appends s in lower case to dst, a buffer of maxNameLength,
// and reports false for a segment that is too long or not ASCII (no link
// name is either).
func lowerASCII(dst []byte, s string) ([]byte, bool) {
	if len(s) > maxNameLength {
		return nil, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return nil, false
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst, true
}

// hasSegmentSuffixFold reports whether p ends in suffix (which starts
// with "/"), in any ASCII letter case.
func hasSegmentSuffixFold(p, suffix string) bool {
	return len(p) >= len(suffix) && equalFoldASCII(suffix, p[len(p)-len(suffix):])
}

// nearName reports whether a path segment spells one of names (lower
// case) with only junk added: invisible, control, white space and
// combining characters; compatibility forms (fullwidth letters and dots,
// the Kelvin sign, ...); and after the name, an extension (.aspx), an
// NTFS stream (::$DATA), an 8.3 short-name tail (~1) or any non-ASCII
// character. An 8.3 short name (STARTP~1) whose stem begins a name is a
// near miss too.
func nearName(seg string, names []string) bool {
	if seg == "" {
		return false
	}
	if plainName(seg) {
		// Nothing to strip: only the name itself is near.
		for _, n := range names {
			if len(n) == len(seg) && equalFoldASCII(n, seg) {
				return true
			}
		}
		return false
	}
	if printableASCII(seg) {
		// Folding only lowers its letters: the checks below, without an
		// allocation.
		for _, n := range names {
			if len(seg) >= len(n) && equalFoldASCII(n, seg[:len(n)]) {
				if rest := seg[len(n):]; rest == "" || rest[0] == '.' || rest[0] == ':' || rest[0] == '~' {
					return true
				}
			}
		}
		if stem, ok := shortNameStem(seg); ok {
			for _, n := range names {
				if len(n) >= len(stem) && equalFoldASCII(stem, n[:len(stem)]) {
					return true
				}
			}
		}
		return false
	}
	return nearFolded(seg, names)
}

// nearFolded is nearName for any segment, through foldLookalike.
func nearFolded(seg string, names []string) bool {
	folded, fromASCII := foldLookalike(seg)
	for _, n := range names {
		if !strings.HasPrefix(folded, n) {
			continue
		}
		rest := folded[len(n):]
		if rest == "" || rest[0] == '.' || rest[0] == ':' || rest[0] == '~' || !fromASCII[len(n)] {
			return true
		}
	}
	if stem, ok := shortNameStem(folded); ok {
		for _, n := range names {
			if strings.HasPrefix(n, stem) {
				return true
			}
		}
	}
	return false
}

// foldedName is name folded (see foldLookalike), or name itself when it
// is plain (see plainName): folding would change only its letter case,
// which callers compare without.
func foldedName[T string | []byte](name T) string {
	if plainName(name) {
		return string(name)
	}
	return foldString(string(name))
}

// plainName reports whether seg (a path segment, a query name, a body
// property name) is ASCII letters, digits, '_' and '-' only, which no
// folding changes beyond letter case.
func plainName[T string | []byte](seg T) bool {
	for i := 0; i < len(seg); i++ {
		if !nameByte[seg[i]] {
			return false
		}
	}
	return true
}

// nameByte marks the bytes of a plain name (see plainName): one load a
// byte, where five ranges cost up to ten comparisons.
var nameByte = func() (name [256]bool) {
	for c := range len(name) {
		name[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
	}
	return name
}()

// printableASCII reports whether s is printable ASCII without spaces,
// which foldLookalike only lowers.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// shortNameStem returns the stem of an 8.3 short name ("startp" of
// "startp~1" or "startp~1.asp"): one to six characters, "~" and digits.
func shortNameStem(s string) (string, bool) {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		s = s[:i]
	}
	tilde := strings.IndexByte(s, '~')
	if tilde < 1 || tilde > 6 || tilde == len(s)-1 {
		return "", false
	}
	for _, c := range []byte(s[tilde+1:]) {
		if c < '0' || c > '9' {
			return "", false
		}
	}
	return s[:tilde], true
}

// foldLookalike folds a name the way a careless reader might read it:
// compatibility decomposition (NFKD: fullwidth forms, ligatures, the
// Kelvin sign, no-break spaces), then without control, format
// (zero-width, bidirectional), white space, separator and combining
// characters, and letters folded as .NET's invariant upper-casing does,
// to lower case. fromASCII[i] tells, for each byte of the result (and
// one past its end), whether it came unchanged from an ASCII character of
// s.
func foldLookalike(s string) (string, []bool) {
	fromASCII := make([]bool, 0, len(s)+1)
	folded := appendFold(make([]byte, 0, len(s)), s, &fromASCII, -1)
	return string(folded), append(fromASCII, false)
}

// foldString is foldLookalike's folded name alone, for the callers that
// do not ask where its bytes came from.
func foldString(s string) string {
	return string(appendFold(make([]byte, 0, len(s)), s, nil, -1))
}

// foldBounded is foldString(s) when that is at most limit bytes long,
// and otherwise a prefix of it longer than limit: a caller comparing the
// fold with words of at most limit bytes learns all it asks, and a long
// name costs no more than its first few characters that show.
func foldBounded(s string, limit int) string {
	var buf [64]byte
	return string(appendFold(buf[:0], s, nil, limit))
}

// appendFold appends s folded (see foldLookalike) to dst, and, when
// fromASCII is not nil, whether each byte appended came unchanged from an
// ASCII character of s. With limit >= 0 it stops once it has appended
// more than limit bytes. Every request's query names are folded before
// any authentication, so a rune of the Basic Multilingual Plane folds
// by one look-up in bmpFolds rather than through the normalization,
// category and case tables.
func appendFold(dst []byte, s string, fromASCII *[]bool, limit int) []byte {
	folds := bmpFolds()
	start := len(dst)
	for i := 0; i < len(s); {
		if limit >= 0 && len(dst)-start > limit {
			break
		}
		if c := s[i]; c < utf8.RuneSelf {
			i++
			if c < 0x20 || c == 0x7f || c == ' ' {
				continue
			}
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A' // dotnetFold, for ASCII
			}
			dst = append(dst, c)
			if fromASCII != nil {
				*fromASCII = append(*fromASCII, true)
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		before := len(dst)
		if r < bmpEnd {
			// A byte that is not UTF-8 decodes as utf8.RuneError, and
			// folds as U+FFFD does: to nothing.
			dst = append(dst, folds.data[folds.off[r]:folds.off[r+1]]...)
		} else {
			dst = astralFold(dst, s[i:i+size], r)
		}
		i += size
		if fromASCII != nil {
			for range len(dst) - before {
				*fromASCII = append(*fromASCII, false)
			}
		}
	}
	return dst
}

// appendFoldRune appends r, a rune of at least utf8.RuneSelf that enc
// encodes, folded (see foldLookalike) to dst: its decomposition from the
// tables (the tables hold none of a Hangul syllable's, which NFKD
// computes), without invisible runes, each folded as .NET does.
func appendFoldRune(dst []byte, enc string, r rune) []byte {
	if hangulFirst <= r && r <= hangulLast {
		var buf [32]byte
		return appendVisible(dst, norm.NFKD.AppendString(buf[:0], enc))
	}
	decomposed := norm.NFKD.PropertiesString(enc).Decomposition()
	if decomposed == nil {
		if invisible(r) {
			return dst
		}
		return utf8.AppendRune(dst, dotnetFold(r))
	}
	return appendVisible(dst, decomposed)
}

// appendVisible appends the runes of the UTF-8 text b that are not
// invisible to dst, each folded as .NET does.
func appendVisible(dst, b []byte) []byte {
	for len(b) > 0 {
		d, n := utf8.DecodeRune(b)
		b = b[n:]
		if !invisible(d) {
			dst = utf8.AppendRune(dst, dotnetFold(d))
		}
	}
	return dst
}

// bmpEnd is the first rune past the Basic Multilingual Plane.
const bmpEnd = 0x10000

// runeFolds holds the fold of every rune of the Basic Multilingual Plane
// from utf8.RuneSelf on (see appendFoldRune): rune r's is
// data[off[r]:off[r+1]]. A surrogate, which UTF-8 cannot encode, has an
// empty one, never read.
type runeFolds struct {
	off  [bmpEnd + 1]uint32
	data []byte
}

// bmpFolds is the table of runeFolds, built once when a name is first
// folded (some 256 KiB of offsets and less of data).
var bmpFolds = sync.OnceValue(func() *runeFolds {
	t := new(runeFolds)
	var data []byte
	for r := range rune(bmpEnd) {
		t.off[r] = uint32(len(data))
		if r >= utf8.RuneSelf && utf8.ValidRune(r) {
			data = appendFoldRune(data, string(r), r)
		}
	}
	t.off[bmpEnd] = uint32(len(data))
	t.data = data
	return t
})

// astralBlock holds the folds of a block of astralBlockSize runes past
// the Basic Multilingual Plane, as runeFolds does, or marks a block
// whose every rune folds to itself (most: unassigned, ideographs,
// private use), which needs no data.
type astralBlock struct {
	identity bool
	off      [astralBlockSize + 1]uint16
	data     []byte
}

// astralBlockSize is how many runes an astralBlock holds.
const astralBlockSize = 256

// identityBlock is every astralBlock whose runes fold to themselves.
var identityBlock = &astralBlock{identity: true}

// astralBlocks holds each block of runes past the Basic Multilingual
// Plane once one of its runes has been folded: a table of all of them
// would take a million runes' folding to build, most of them never
// asked.
var astralBlocks [(unicode.MaxRune + 1 - bmpEnd) / astralBlockSize]atomic.Pointer[astralBlock]

// astralFold appends r, a rune past the Basic Multilingual Plane that
// enc encodes, folded (see appendFoldRune) to dst, from its block of
// astralBlocks, which it builds when none has.
func astralFold(dst []byte, enc string, r rune) []byte {
	slot := &astralBlocks[(r-bmpEnd)/astralBlockSize]
	b := slot.Load()
	if b == nil {
		// Two requests may build a block at once: they build the same.
		b = buildAstralBlock(r &^ (astralBlockSize - 1))
		if !slot.CompareAndSwap(nil, b) {
			b = slot.Load()
		}
	}
	if b.identity {
		return append(dst, enc...)
	}
	i := r % astralBlockSize
	return append(dst, b.data[b.off[i]:b.off[i+1]]...)
}

// buildAstralBlock returns the astralBlock of the runes from first on.
func buildAstralBlock(first rune) *astralBlock {
	b := new(astralBlock)
	identity := true
	for i := range rune(astralBlockSize) {
		b.off[i] = uint16(len(b.data))
		enc := string(first + i)
		b.data = appendFoldRune(b.data, enc, first+i)
		identity = identity && string(b.data[b.off[i]:]) == enc
	}
	b.off[astralBlockSize] = uint16(len(b.data))
	if identity {
		return identityBlock
	}
	return b
}

// hangulFirst and hangulLast bound the precomposed Hangul syllables.
const hangulFirst, hangulLast = 0xAC00, 0xD7A3

// invisible reports whether r is a character a reader does not see or
// that only modifies another: controls, format characters (zero-width,
// bidirectional), white space and separators, and combining marks.
func invisible(r rune) bool {
	if 0 <= r && r <= unicode.MaxRune {
		return invisibleRunes()[r>>6]&(1<<(r&63)) != 0
	}
	return r == utf8.RuneError
}

// invisibleTables are the tables of the runes invisible reports, with
// utf8.RuneError.
var invisibleTables = [...]*unicode.RangeTable{unicode.Cc, unicode.Cf, unicode.Z, unicode.Mn, unicode.Me, unicode.Variation_Selector, unicode.White_Space}

// invisibleRunes marks, bit r, each rune r that is in one of
// invisibleTables, or is utf8.RuneError: one look-up a rune, where
// unicode.In searches each table in turn (136 KiB, built once, from the
// tables' ranges, when first asked).
var invisibleRunes = sync.OnceValue(func() *[(unicode.MaxRune + 1) / 64]uint64 {
	var t [(unicode.MaxRune + 1) / 64]uint64
	set := func(lo, hi, stride uint32) {
		for r := lo; r <= hi; r += stride {
			t[r>>6] |= 1 << (r & 63)
		}
	}
	for _, table := range invisibleTables {
		for _, rg := range table.R16 {
			set(uint32(rg.Lo), uint32(rg.Hi), uint32(rg.Stride))
		}
		for _, rg := range table.R32 {
			set(rg.Lo, rg.Hi, rg.Stride)
		}
	}
	set(utf8.RuneError, utf8.RuneError, 1)
	return &t
})
