package ucwa

import (
	"iter"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Query is the query string of a request to an operation, with the
// operation's properties read from it. Any operation-starting POST takes
// its inputs in the body or the query, so query values get the same
// rules as body values. Everything else in the query (unknown
// parameters, their order, their encoding) is forwarded byte for byte.
type Query struct {
	op  *Operation
	raw string
	// slot holds, per property, 1 + its index in vals (0 when the
	// property is not in the query): a query holds few properties, so
	// their values sit in a short list, inline for the usual few.
	slot [MaxProperties]uint8
	vals []queryValue
	buf  [2]queryValue
}

// value returns property i's value in the query, or nil.
func (q *Query) value(i int) *queryValue {
	if s := q.slot[i]; s > 0 {
		return &q.vals[s-1]
	}
	return nil
}

// queryValue is one property's value in the query.
type queryValue struct {
	text string
	// start and end are where the (escaped) value sits in the raw query.
	start, end int32
	index      uint8 // the property's
	present    bool  // the value is not blank
	changed    bool
}

// errMalformedQuery refuses a query that does not parse whole: pools run
// on ASP.NET, which reads pairs that url.ParseQuery drops ("to=...;x",
// "%u0074o=..."), so a query read only in part could carry an input past
// the checks.
var errMalformedQuery = NewError(400, SubcodeParameterValidationFailure,
	"The query string cannot be read: every name=value pair must be percent-encoded and separated by &.")

// ParseQuery reads a raw (still percent-encoded) query string for op. The
// query must parse whole, as url.ParseQuery reads it. A name that is a
// property's documented spelling exactly is that property, and may
// appear once; a name that only folds onto one (another letter case,
// %-escapes in the name, NUL, white space, zero-width, format or
// combining characters, compatibility forms), or that is a .NET
// model-binding spelling of one ("to[]", "to[0]", "x.to", "[0].to",
// "model[to]": see bindingParts), is refused with a 400 naming the
// property, since IIS and ASP.NET read names loosely and the pool might
// take it for the property the edge did not check. A value without a
// name ("=v", "[]=v") that is not blank is refused too, naming every
// property the query does not name (see namelessQueryName). A name
// that is, or folds onto, a phone destination of the table that op does
// not take (see strayDestination) is refused, naming the destination,
// unless its value is blank or one of the words the table's properties
// of that name take; so is one with a part that is, or folds onto, such
// a destination. Other names pass unchanged.
func ParseQuery(op *Operation, raw string) (*Query, *Error) {
	q := new(Query)
	if err := parseQueryInto(q, op, raw); err != nil {
		return nil, err
	}
	return q, nil
}

// parseQueryInto is ParseQuery into q.
func parseQueryInto(q *Query, op *Operation, raw string) *Error {
	*q = Query{op: op, raw: raw}
	q.vals = q.buf[:0]
	if len(raw) > 1<<30 {
		return errMalformedQuery
	}
	var bad []Parameter
	nameless := false
	for at := 0; at <= len(raw); {
		end := strings.IndexByte(raw[at:], '&')
		if end < 0 {
			end = len(raw)
		} else {
			end += at
		}
		pair := raw[at:end]
		pairStart := at
		at = end + 1
		if pair == "" {
			continue
		}
		if strings.IndexByte(pair, ';') >= 0 {
			return errMalformedQuery
		}
		name, val, _ := strings.Cut(pair, "=")
		decodedName, err := url.QueryUnescape(name)
		if err != nil {
			return errMalformedQuery
		}
		text, err := url.QueryUnescape(val)
		if err != nil {
			return errMalformedQuery
		}
		i, exact, folded := queryProperty(op, name, decodedName)
		switch {
		case i < 0:
			if namelessQueryName(folded) && !isBlank(text) {
				nameless = true
			}
			if in := embeddedBindingInput(op, folded); in != "" {
				bad = appendOnce(bad, embeddedBindingError(in, "as a query parameter").Parameters[0])
			}
			if entryKeyName(folded) {
				if param := entryKeyInput(op, text); param != "" {
					bad = appendOnce(bad, Parameter{Name: param, Reason: "is named by a dictionary entry's key given as a query parameter (x[0].key)" + entryKeyReason})
				}
			}
			if d := queryStray(op, folded); d != nil && !d.allows(text) {
				bad = appendOnce(bad, strayParameter(d, op, "as a query parameter"))
			}
			if op.Body == BatchBody && !isBlank(text) && namesOperationID(folded) {
				// A pool that runs the parts in the batch's request reads
				// a part's operationId there (Request[name] looks at the
				// query first), where the edge, keying each part by its
				// own, never looks: two batches of one operationId so
				// given would be delivered both.
				bad = appendOnce(bad, Parameter{Name: propOperationID.Name,
					Reason: "is an input of a batch's parts, not of the batch, but is given in the batch's query, where the edge does not read it; give it in each part"})
			}
			continue
		case !exact:
			bad = appendOnce(bad, Parameter{Name: op.Properties[i].Name,
				Reason: "is given as a query parameter spelled otherwise (letter case, escapes, invisible characters, or a model-binding prefix or index such as x.name or name[]); write it " + op.Properties[i].Name})
			continue
		case q.slot[i] > 0:
			bad = appendOnce(bad, Parameter{Name: op.Properties[i].Name, Reason: "appears more than once as a query parameter"})
			continue
		case !utf8.ValidString(text):
			// ASP.NET decodes the query in UTF-8, each byte that is none
			// of it read as U+FFFD: a pool reads op%FF and op%FE as one
			// operationId (and one value), which the edge, reading
			// bytes, would take for two, and key and judge apart.
			bad = appendOnce(bad, Parameter{Name: op.Properties[i].Name, Reason: "is not UTF-8 once percent-decoded as a query parameter"})
			continue
		}
		valStart := pairStart + len(name)
		if len(name) < len(pair) {
			valStart++ // the "="
		}
		v := queryValue{index: uint8(i), start: int32(valStart), end: int32(end)}
		if !isBlank(text) {
			v.text, v.present = text, true
		}
		q.vals = append(q.vals, v)
		q.slot[i] = uint8(len(q.vals))
	}
	if nameless {
		// ASP.NET Web API binds a simple parameter (string to, string
		// phoneNumber, string operationId) from the query by its name
		// and, when the query has no such name, again under the empty
		// prefix: its value provider reads "=value" as the name "", so
		// that value is every input the query does not name. Each is
		// named: the refusal says which inputs the pool would take from
		// it.
		unnamed := false
		for i := range op.Properties {
			if q.slot[i] == 0 {
				unnamed = true
				bad = appendOnce(bad, Parameter{Name: op.Properties[i].Name, Reason: namelessReason})
			}
		}
		if !unnamed {
			// Every input op takes is named, but a pool's parameter of
			// a destination op does not take (see strayDestination)
			// binds the value all the same: "?=tel:+1900..." is the
			// phoneNumber of acceptWithPhoneAudio, which the edge
			// refuses as phoneNumber=.
			for i := range namedDestinations {
				if d := &namedDestinations[i]; op.propertyIndex(d.name) < 0 {
					bad = appendOnce(bad, strayParameter(d, op, "by a query parameter without a name (=value), which ASP.NET Web API binds to every parameter the query does not name"))
				}
			}
		}
	}
	if len(bad) > 0 {
		return parameterError(bad)
	}
	return nil
}

// namelessReason is why an input the query does not name is refused
// when the query holds a value without a name (see namelessQueryName).
const namelessReason = "is, to ASP.NET Web API, given in the query by a parameter without a name (=value, []=value, or an index alone, [0]=value), which it binds to every input the query does not name; give every query parameter a name"

// namelessQueryName reports whether a folded query name (see
// queryProperty) is no name to ASP.NET Web API: empty, or only empty
// brackets ("[]", "[][]"), which a jQuery-style reader drops as the mark
// of an array (Web API's for form bodies, NormalizeJQueryToMvc; ASP.NET
// Core's for the query), refused as well lest a pool read the query so.
// Web API's CompositeModelBinder binds a parameter it finds
// under no name again under the empty one (FallbackToEmptyPrefix), and
// its query value provider has "=value" under "": so a pool with an
// action Post(string to, string phoneNumber) reads phoneNumber from
// "?to=sip:...&=tel:+1900..." where the edge read no phoneNumber at all.
//
// A name of brackets alone that hold an index ("[0]", "[0][]", "[x]")
// is none either: Web API's CollectionModelBinder, and MVC's
// DefaultModelBinder (UpdateCollection), bind a collection parameter
// (string[] phoneNumber, List<string> to) under the empty prefix from
// "[0]", "[1]", ..., or from the indexes "index" lists, any text:
// "?[0]=tel:+1900..." and "?index=x&[x]=tel:+1900..." are its first
// element.
func namelessQueryName(folded string) bool {
	for folded != "" {
		if folded[0] != '[' {
			return false
		}
		end := strings.IndexByte(folded, ']')
		if end < 0 {
			return false
		}
		folded = folded[end+1:]
	}
	return true
}

// appendOnce appends p unless a parameter of that name is there already.
func appendOnce(list []Parameter, p Parameter) []Parameter {
	for _, have := range list {
		if have.Name == p.Name {
			return list
		}
	}
	return append(list, p)
}

// queryProperty returns the property a query name (raw and decoded)
// denotes and whether it is written exactly as documented, or -1, and
// the name folded (see foldLookalike; the decoded name itself when there
// is nothing to fold but letter case). A DataURLValue (a link) is a
// property here too: its name in the query is refused or checked like
// any other. A folded name that is a model-binding spelling denotes the
// property any of its parts folds onto (see bindingParts).
func queryProperty(op *Operation, raw, decoded string) (int, bool, string) {
	for i := range op.Properties {
		if op.Properties[i].Name == raw {
			return i, true, decoded
		}
	}
	if raw == decoded && plainName(raw) {
		// Nothing to fold but letter case, and no parts.
		return op.propertyIndex(raw), false, decoded
	}
	folded := decoded
	if !printableASCII(decoded) {
		folded = foldString(decoded)
	}
	for part := range bindingParts(folded) {
		for i := range op.Properties {
			if equalFoldASCII(op.Properties[i].Name, part) {
				return i, false, folded
			}
		}
	}
	return -1, false, folded
}

// bindingParts yields the parts of a folded query name, cut at every '.',
// '[' and ']' (the name itself when it has none). .NET model binding
// reads a name in parts: ASP.NET Core's jQuery query-string reader takes
// "to[]" and "to[x]" for "to" (and "model[to]" for "model.to"),
// collections bind "to[0]" and "[0].to", and ASP.NET MVC and Web API bind
// a complex parameter under its prefix ("request.to"), falling back to
// the bare name. So a pool may read any part of such a name as the
// property; the edge refuses the name when one part folds onto a property
// of the operation.
func bindingParts(name string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for {
			i := strings.IndexAny(name, ".[]")
			if i < 0 {
				yield(name)
				return
			}
			if !yield(name[:i]) {
				return
			}
			name = name[i+1:]
		}
	}
}

// namesOperationID reports whether a folded query name (see
// queryProperty), or one of its parts (see bindingParts), is operationId
// in any letter case.
func namesOperationID(folded string) bool {
	for part := range bindingParts(folded) {
		if equalFoldASCII(part, propOperationID.Name) {
			return true
		}
	}
	return false
}

// queryStray returns the phone destination of the table that op does not
// take which a folded query name (see queryProperty), or one of its
// parts (see bindingParts), is or folds onto, or nil.
func queryStray(op *Operation, folded string) *namedDestination {
	for part := range bindingParts(folded) {
		if d := strayDestination(op, part); d != nil {
			return d
		}
	}
	return nil
}

// AccessTokenParameter is the query parameter in which RFC 6750 (2.3)
// lets a client send a bearer token instead of in Authorization.
const AccessTokenParameter = "access_token"

// accessTokenName reports whether name, a raw (still percent-encoded)
// query name, is, or folds onto, access_token, read as ParseQuery reads
// names: any letter case, %-escapes in the name, NUL, white space,
// zero-width, format or combining characters, compatibility forms, or a
// .NET model-binding part ("x.access_token", "access_token[]"); or that
// PHP registers as access_token, for a PHP front before a pool (see
// phpName: "access.token", "access+token", "access[token"), in any
// letter case. A server that takes tokens there (RFC 6750 2.3, OWIN and
// ASP.NET bearer handlers that read the query, PHP OAuth servers reading
// $_GET) might run a request as the query's token, one the edge never
// verified. A name that does not decode is read only as PHP reads it:
// ParseQuery refuses that query whole.
func accessTokenName(name string) bool {
	_, token := readQueryName(name, false, true)
	return token
}

// readQueryName reads what a raw (still percent-encoded) query name asks
// of the edge: the parameter of methodOverrideParameters it asks for
// (see methodOverrideName), when override is set, and whether it is, or
// folds onto, access_token (see accessTokenName), when token is. It
// decodes and folds the name once for both questions, and folds the name
// PHP reads only as far as a word it is compared with: every request's
// query is read so before any authentication, and a client sending long
// non-ASCII names would otherwise cost the edge several folds of each.
//
// The name is decoded as ASP.NET reads it ('+' a space, %XX and IIS's
// %uXXXX escapes decoded, any other '%' kept); accessTokenName reads it
// as ParseQuery does, which refuses a name with any other '%' and
// decodes the rest alike.
func readQueryName(name string, override, token bool) (method string, accessToken bool) {
	if plainName(name) {
		// Nothing to decode or fold, and no parts.
		if override {
			method = methodOverrideSpelling(name)
		}
		return method, token && equalFoldASCII(name, AccessTokenParameter)
	}
	decoded, _ := unescapeAgain(strings.ReplaceAll(name, "+", " "))
	folded := decoded
	if !printableASCII(decoded) {
		folded = foldString(decoded)
	}
	// The name PHP registers it under, folded when it is not ASCII: to
	// be compared only with words of at most longestQueryWord bytes.
	php := phpName(decoded)
	if !isASCII(php) {
		if php == decoded {
			php = folded
		} else {
			php = foldBounded(php, longestQueryWord)
		}
	}
	if override {
		if method = methodOverrideSpelling(php); method == "" {
			for part := range bindingParts(folded) {
				if method = methodOverrideSpelling(part); method != "" {
					break
				}
			}
		}
	}
	if token {
		accessToken = equalFoldASCII(php, AccessTokenParameter) || validQueryEscapes(name) && hasPartFold(folded, AccessTokenParameter)
	}
	return method, accessToken
}

// longestQueryWord is the length of the longest name readQueryName
// compares a PHP name with: access_token or a parameter of
// methodOverrideParameters.
var longestQueryWord = func() int {
	n := len(AccessTokenParameter)
	for _, p := range methodOverrideParameters {
		n = max(n, len(p))
	}
	return n
}()

// validQueryEscapes reports whether url.QueryUnescape reads name: every
// '%' in it begins a %XX escape.
func validQueryEscapes(name string) bool {
	for i := 0; i < len(name); i++ {
		if name[i] == '%' {
			if i+2 >= len(name) || !ishex(name[i+1]) || !ishex(name[i+2]) {
				return false
			}
			i += 2
		}
	}
	return true
}

// hasPartFold reports whether a folded query name, or one of its parts
// (see bindingParts), is word in any ASCII letter case.
func hasPartFold(folded, word string) bool {
	for part := range bindingParts(folded) {
		if equalFoldASCII(part, word) {
			return true
		}
	}
	return false
}

// QueryNames is what the parameter names of a raw (still percent-encoded)
// query ask of the edge, read in one pass over it (see ReadQueryNames).
type QueryNames struct {
	// MethodOverride is the parameter of the first name that asks the
	// request to be taken as another method, spelled as
	// methodOverrideParameters spell it (see methodOverrideName); ""
	// for none. A query whose names are plain (letters, digits, '_' and
	// '-') costs no allocation.
	MethodOverride string
	// AccessToken is set when a parameter is, or folds onto,
	// access_token (see accessTokenName).
	AccessToken bool
}

// ReadQueryNames reads what a raw query's names ask (QueryNames) in one
// pass: the edge asks both of every request.
func ReadQueryNames(raw string) QueryNames {
	var q QueryNames
	for pair := range strings.SplitSeq(raw, "&") {
		name, _, _ := strings.Cut(pair, "=")
		if name == "" {
			continue
		}
		method, token := readQueryName(name, q.MethodOverride == "", !q.AccessToken)
		if q.MethodOverride == "" {
			q.MethodOverride = method
		}
		if q.AccessToken = q.AccessToken || token; q.MethodOverride != "" && q.AccessToken {
			// Nothing a later name says changes the answer.
			break
		}
	}
	return q
}

// Get returns a property's current value and whether the query has it
// (a blank value counts as absent).
func (q *Query) Get(name string) (string, bool) {
	if i := q.op.propertyIndex(name); i >= 0 {
		if v := q.value(i); v != nil && v.present {
			return v.text, true
		}
	}
	return "", false
}

// Set replaces the value of a property the query has; Encode writes it in
// place of the old one. Setting an absent property has no effect.
func (q *Query) Set(name, v string) {
	if i := q.op.propertyIndex(name); i >= 0 {
		q.setValue(i, v)
	}
}

func (q *Query) setValue(i int, v string) {
	if val := q.value(i); val != nil && val.present && val.text != v {
		val.text, val.changed = v, true
	}
}

// Changed reports whether any value was replaced.
func (q *Query) Changed() bool {
	for i := range q.vals {
		if q.vals[i].changed {
			return true
		}
	}
	return false
}

// Encode returns the raw query with every replaced value percent-encoded
// in place of the old one, and everything else byte for byte (not
// re-sorted, not re-encoded). It returns the original string when nothing
// changed.
func (q *Query) Encode() string {
	if !q.Changed() {
		return q.raw
	}
	var b strings.Builder
	b.Grow(len(q.raw) + 32*len(q.vals))
	at := 0
	for i := range q.vals { // in query order
		v := &q.vals[i]
		if !v.changed {
			continue
		}
		b.WriteString(q.raw[at:v.start])
		writeQueryEscaped(&b, v.text)
		at = int(v.end)
	}
	b.WriteString(q.raw[at:])
	return b.String()
}

// writeQueryEscaped writes url.QueryEscape(s) to b, without the string
// QueryEscape makes: ASCII letters, digits and "-_.~" as they are, a
// space as '+', every other byte as %XX in upper case.
func writeQueryEscaped(b *strings.Builder, s string) {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && queryUnescaped[s[j]] {
			j++
		}
		b.WriteString(s[i:j])
		if i = j; i >= len(s) {
			break
		}
		if c := s[i]; c == ' ' {
			b.WriteByte('+')
		} else {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
		}
		i++
	}
}

// queryUnescaped marks the bytes url.QueryEscape leaves as they are.
var queryUnescaped = func() (t [256]bool) {
	for c := range len(t) {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~'
	}
	return t
}()

// foldsOnto reports whether a body name that is not plain (see
// plainName) folds onto word, as foldLookalike folds a query name,
// without being word in another ASCII letter case, which the decoders
// read as word itself. A pool reading names loosely (trimming white
// space, dropping NUL, folding compatibility forms) would read the name
// as word, so the edge must not forward it unjudged.
func foldsOnto[T string | []byte](name T, folded, word string) bool {
	return len(folded) == len(word) && equalFoldASCII(folded, word) && !equalFoldASCII(name, word)
}

// lookalikeProperty returns the property of op (a link, or not, as link
// says) that a body name that is not plain folds onto, or that a part of
// its model-binding spelling names, or -1.
func lookalikeProperty[T string | []byte](op *Operation, name T, folded string, link bool) int {
	for i := range op.Properties {
		if p := &op.Properties[i]; (p.Type == DataURLValue) == link && foldsOnto(name, folded, p.Name) {
			return i
		}
	}
	// A .NET model-binding spelling of a property ("x.to", "to[0]",
	// "[0].phoneNumber"), as the query's (see bindingParts): ASP.NET
	// MVC's JsonValueProviderFactory flattens a JSON body into the same
	// keys as a query ({"x":{"to":...}} and {"x.to":...} are both "x.to"
	// to it), and a complex parameter x is bound under that prefix, its
	// to read from "x.to" rather than from the body's "to".
	if strings.ContainsAny(folded, ".[]") {
		for part := range bindingParts(folded) {
			for i := range op.Properties {
				if p := &op.Properties[i]; (p.Type == DataURLValue) == link && equalFoldASCII(p.Name, part) {
					return i
				}
			}
		}
	}
	return -1
}

// lookalikeError refuses a body name that folds onto one the edge reads
// (see foldsOnto), naming the property it stands for (param) and where
// it sits, never the name as written or its value: write is the
// documented spelling.
func lookalikeError(param, write string, body []byte, at int) *Error {
	return parameterError([]Parameter{{Name: param,
		Reason: "is given in the body under a name spelled otherwise (white space, control or non-ASCII characters, or a model-binding prefix or index such as x.name or name[]), at " + position(body, int64(at)) + "; write it " + write}})
}
