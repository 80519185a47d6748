package ucwa

import (
	"net/http"
	"strings"
)

// The phone destinations of the table by name (phoneNumber, to, target,
// number, delegator), for the places where a body or query names one
// outside the operation's own properties: an embedded resource (see
// embedded.go), or the top level of an operation that does not take it.
// There a pool that reads loosely would dial, store or forward to what it
// holds, while the edge judges it by no operation's rules, so it is
// refused, unless its value is null, blank or one of the words the
// table's properties of that name take (a target of Contact or
// Voicemail, as a pool serves it), which no pool reads as a number.
//
// The forwarding settings name where calls ring in a link too: contact
// (simultaneousRingSettings and unansweredCallSettings, with a target of
// Contact, as callForwardingSettings embeds them), which a pool serves as
// a person of its own (/ucwa/v1/applications/192/people/282) and a client
// echoes in the PUT. A pool that reads a phone number there would forward
// to it unjudged, so contact is a named destination too (see
// linkDestinations), whose value may also be such a path.

// namedDestination is a destination property's name and the words a
// property of that name may hold where the edge does not judge it.
type namedDestination struct {
	name  string
	words []string
	// resourcePath marks a destination a pool serves as a link to a
	// resource of its own: a relative path (see isResourcePath) is
	// allowed too, as a link (JSON _links, XML <link>) or a property.
	resourcePath bool
}

// linkDestinations are the names of the links where a pool keeps a
// destination of the user's calls, which no operation of the table takes:
// the forwarding settings' contact (see above).
var linkDestinations = []string{"contact"}

// namedDestinations are the names of the table's destination
// properties, each with the enum values of the table's properties of the
// same name.
var namedDestinations = func() []namedDestination {
	var out []namedDestination
	index := func(name string) int {
		for i := range out {
			if strings.EqualFold(out[i].name, name) {
				return i
			}
		}
		return -1
	}
	for _, op := range defaultOperations {
		for _, p := range op.Properties {
			if p.Destination != NotDestination && index(p.Name) < 0 {
				out = append(out, namedDestination{name: p.Name})
			}
		}
	}
	for _, name := range linkDestinations {
		if index(name) < 0 {
			out = append(out, namedDestination{name: name, resourcePath: true})
		}
	}
	for _, op := range defaultOperations {
		for _, p := range op.Properties {
			i := index(p.Name)
			if p.Type != EnumValue || i < 0 {
				continue
			}
			for _, v := range p.Values {
				if !containsFold(out[i].words, v) {
					out[i].words = append(out[i].words, v)
				}
			}
		}
	}
	return out
}()

// containsFold reports whether words holds s in any letter case.
func containsFold(words []string, s string) bool {
	for _, w := range words {
		if strings.EqualFold(w, s) {
			return true
		}
	}
	return false
}

// namedDestinationOf returns the destination a name is, in any letter
// case or folding onto it, or nil; or that a part of it is: a .NET
// model-binding spelling of one ("x.target", "number[0]"), as in the
// query (see queryStray), since ASP.NET MVC's JsonValueProviderFactory
// flattens a JSON body into the keys a query has, {"x.target":...} and
// {"x":{"target":...}} alike (see lookalikeProperty).
func namedDestinationOf[T string | []byte](name T) *namedDestination {
	if plainName(name) {
		return namedDestinationIs(name)
	}
	folded := foldString(string(name))
	for part := range bindingParts(folded) {
		if d := namedDestinationIs(part); d != nil {
			return d
		}
	}
	return nil
}

// namedDestinationIs returns the destination name is in any ASCII
// letter case, or nil.
func namedDestinationIs[T string | []byte](name T) *namedDestination {
	for i := range namedDestinations {
		if equalFoldASCII(namedDestinations[i].name, name) {
			return &namedDestinations[i]
		}
	}
	return nil
}

// allows reports whether a property of d's name the edge does not judge
// may hold the text v: blank, one of d's words, or for a destination a
// pool serves as a link, a relative path (see isResourcePath).
func (d *namedDestination) allows(v string) bool {
	v = strings.TrimSpace(v)
	return v == "" || containsFold(d.words, v) || d.resourcePath && isResourcePath(v)
}

// isResourcePath reports whether v is a path to a resource of the pool
// as it serves one in a link (/ucwa/v1/applications/192/people/282): it
// and every reading of it, decoded again and again as a pool may decode a
// path (see otherReadings), starts with a single "/" (no scheme, no host),
// is printable ASCII without spaces and holds no ':' or backslash, so
// that it names no tel: or sip: URI anywhere a reader might look, and no
// '+' or ';', which no id a pool serves holds and which a pool building
// a SIP URI from the id (people/+19005551234@contoso.com;user=phone)
// would read as a telephone number: a
// reading with other characters (a fullwidth colon, an overlong UTF-8
// one) may be folded onto them, as .NET's best-fit mappings do. Nor does
// any of its segments but an application id hold a SIP user that reads
// as a number (see dialableSegment): a pool serves a person as its SIP
// address without the scheme (people/lenea@contoso.com), and one that
// builds the URI from people/19005551234@gw.contoso.com gets a SIP user
// a gateway dials, which the edge judges nowhere here. A path escaped
// deeper than eachDecoding decodes is none.
func isResourcePath(v string) bool {
	return eachDecoding(v, func(p string) bool {
		if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || !printableASCII(p) || strings.ContainsAny(p, ":\\+;") {
			return false
		}
		path, _, _ := strings.Cut(p, "?")
		afterApplications := false
		for segment := range strings.SplitSeq(path[1:], "/") {
			if !afterApplications && dialableSegment(segment) {
				return false
			}
			afterApplications = strings.EqualFold(segment, "applications")
		}
		return true
	})
}

// dialableSegment reports whether a path segment, read as a SIP address
// without its scheme (user@host), has a user that may be a number: as
// many digits as the shortest number has (minDialDigits), whatever
// stands between them (1-900-555-1234, 9,19005551234), or letters a
// keypad turns into digits (1900FLOWERS, see keypadUser). A pool's own
// ids (282, lenea, john.smith2) have neither. The edge cannot judge such
// a user here (its readings need the region and the host), so a link
// holding one is refused rather than let through unjudged.
func dialableSegment(segment string) bool {
	// isResourcePath has the segment printable ASCII: its digits are
	// ASCII's.
	user, _, _ := strings.Cut(segment, "@")
	digits := 0
	for i := range len(user) {
		if '0' <= user[i] && user[i] <= '9' {
			digits++
		}
	}
	if digits >= minDialDigits() {
		return true
	}
	_, vanity := keypadUser(user)
	return vanity
}

// blankValue reads a value at the given depth and reports whether it is
// null or a blank string.
func (s *jsonScanner) blankValue(depth int) (bool, *Error) {
	return s.destinationAllowed(&namedDestination{}, depth)
}

// destinationAllowed reads the value of a property named like the
// destination d, at the given depth, and reports whether d allows it:
// null, or a string d allows.
func (s *jsonScanner) destinationAllowed(d *namedDestination, depth int) (bool, *Error) {
	if s.pos < len(s.body) && s.body[s.pos] == '"' {
		raw, escaped, err := s.str()
		if err != nil {
			return false, err
		}
		return d.allows(unquote(raw, escaped)), nil
	}
	start := s.pos
	if err := s.skipValue(depth); err != nil {
		return false, err
	}
	return string(s.body[start:s.pos]) == "null", nil
}

// A property named like a phone destination of the table that the
// operation does not take, given at the top level of its body or in its
// query (a target in PUT callForwardingSettings, a number in PUT
// communication, a delegator in startAudio), is judged by none of the
// operation's rules, yet a pool that reads it would dial, store or
// forward to it. It is refused as one in an embedded resource is, by the
// same names and the same words; the operation's own properties keep
// their own rules.

// strayDestination returns the destination a top-level body name or
// query name of op is (see namedDestinationOf) when op has no
// property of that name, or nil.
func strayDestination[T string | []byte](op *Operation, name T) *namedDestination {
	d := namedDestinationOf(name)
	if d == nil || op.propertyIndex(d.name) >= 0 {
		return nil
	}
	return d
}

// strayWhat is how a refusal of a stray destination begins its reason;
// where says how the request gives it.
const strayWhat = "is not an input of "

// strayParameter refuses a destination that op does not take, naming it
// by its documented spelling, never its name as written or its value.
func strayParameter(d *namedDestination, op *Operation, where string) Parameter {
	return Parameter{Name: d.name,
		Reason: strayWhat + op.Rel + " but is given " + where + ", where the edge does not judge it; set it through the operation that takes it"}
}

// strayBodyError refuses a stray destination given in the body as a
// property, property list or link (what says which) at offset at.
func strayBodyError(d *namedDestination, op *Operation, what string, body []byte, at int) *Error {
	return parameterError([]Parameter{strayParameter(d, op, "in the body as a "+what+", at "+position(body, int64(at)))})
}

// CookieDestination refuses a request whose Cookie header names a phone
// destination of the table (phoneNumber, to, target, number, delegator,
// contact, in any letter case or folding onto it) with a value other than a blank
// or one of the words the table's properties of that name take (see
// namedDestination.allows), naming the destination, never the value; it
// returns nil for a request without one. ASP.NET's Request[name] and
// Request.Params read a cookie of that name when neither the query nor
// the form has one, so a pool that reads its inputs so would dial, store
// or forward to a cookie's number, which the edge reads as no input.
// Pairs are split at ';' and ',' (readers differ on ','), and a name is
// read as ASP.NET reads it: trimmed, in any letter case, not unescaped.
// A cookie named operationId so, with a value, is refused too: such a
// pool reads it as the request's operationId, where the edge keys the
// request by the body's, or by none, and would deliver it again.
func CookieDestination(h http.Header) *Error {
	var bad []Parameter
	for _, line := range h["Cookie"] {
		for pair := range strings.FieldsFuncSeq(line, isCookieSeparator) {
			name, value, _ := strings.Cut(pair, "=")
			name = strings.TrimSpace(name)
			if !isBlank(value) && cookieOperationID(name) {
				bad = appendOnce(bad, Parameter{Name: propOperationID.Name,
					Reason: "is given as a cookie, where the edge does not read it (ASP.NET's Request[name] reads a cookie when the query and the form have none); send it in the body or the query"})
				continue
			}
			d := cookieDestination(name)
			if d == nil || d.allows(value) {
				continue
			}
			bad = appendOnce(bad, Parameter{Name: d.name,
				Reason: "is given as a cookie, where the edge does not judge it (ASP.NET's Request[name] reads a cookie when the query and the form have none); send it in the body or the query"})
		}
	}
	if bad == nil {
		return nil
	}
	return parameterError(bad)
}

func isCookieSeparator(r rune) bool { return r == ';' || r == ',' }

// cookieOperationID reports whether a cookie name (trimmed) is, or
// folds onto, operationId, as cookieDestination reads a destination's.
func cookieOperationID(name string) bool {
	if !printableASCII(name) {
		name = foldString(name)
	}
	return equalFoldASCII(propOperationID.Name, name)
}

// cookieDestination returns the destination a cookie name is, in any
// letter case or folding onto it, or nil. Unlike a body or query name
// (see namedDestinationOf), it is read whole: Request[name] finds a
// cookie by its name, and no value provider of MVC or Web API binds a
// cookie's parts. One of printable ASCII, as cookie names are, folds to
// its letters in lower case alone, compared without folding it first
// (no allocation).
func cookieDestination(name string) *namedDestination {
	if !printableASCII(name) {
		name = foldString(name)
	}
	return namedDestinationIs(name)
}

// A JSON value the edge does not read (an unknown property's, a link's
// member other than href, a link the operation does not take, an
// embedded resource's property no rules read) is skipped, but a pool
// that binds its model loosely, or finds members wherever they stand
// (Json.NET's SelectToken("..to"), a JObject walked for its names), would
// read a destination, a link or an embedded resource inside it that the
// edge never judged: {"_links":{"self":{"href":"/x","to":"+1900..."}}},
// a PUT's {"x":{"_embedded":{"simultaneousRingSettings":{...}}}}, or
// {"x":{"_links":{"customContent":{"href":"data:,..."}}}}. UCWA gives
// inputs, links and embedded resources only where the edge reads them,
// so such a member is refused, as XML's attributes named like a
// destination and its constructs nested where the edge does not read
// them are. Its objects are walked as those the edge reads (see object),
// so that what a .NET pool reads differently there is refused too: a
// .NET metadata member ($type chooses the type the pool builds, wherever
// it stands), a name twice in any letter case (which the pool reads
// once, the other dropped or merged), a name outside ASCII.

// How refusals name the values the edge does not read.
const (
	unreadProperty   = "the value of a property the operation does not take"
	unreadLink       = "a link the operation does not take"
	unreadLinkMember = `a link's member other than "href"`
	unreadEmbedded   = "an embedded resource's member that no rules read"
)

// unreadValue skips a value at the given depth that the edge does not
// read, walking its objects as object walks one the edge reads (its
// refusals naming no member as written: see jsonScanner.unread), and
// refusing a member, at any depth inside it, named like a destination,
// "_links" or "_embedded" (see unreadMember). where names the value in
// messages (unreadLink and the like).
func (s *jsonScanner) unreadValue(depth int, where string) *Error {
	if s.pos >= len(s.body) || s.body[s.pos] != '{' && s.body[s.pos] != '[' {
		return s.skipValue(depth)
	}
	if err := s.enter(depth); err != nil {
		return err
	}
	if s.body[s.pos] == '[' {
		return s.array(depth, func(s *jsonScanner) *Error { return s.unreadValue(depth+1, where) })
	}
	outer := s.unread
	s.unread = where
	err := s.object(where, "", depth, func(s *jsonScanner, name []byte, at int) *Error {
		return s.unreadMember(name, at, depth+1, where)
	}, noLookalike)
	s.unread = outer
	return err
}

// unreadMember skips the value, at the given depth, of a member name (at
// offset at) of an object the edge does not read (see unreadValue), or of
// a link it reads other than href, refusing the member when it is named
// like a destination, in any letter case or folding onto it (see
// namedDestinationOf), and holds anything but null or what the
// destination allows (see namedDestination.allows); when it is named
// like another input of the operation, whatever it holds (see
// unreadInputReason); when it is named operationId in an operation that
// takes none, unless null or blank (see unreadInputOf); when it is a
// dictionary entry's key naming an input (see entryKeyInput); or when it
// is named "_links" or
// "_embedded", so folding, whatever it holds (as XML refuses a <link> or
// <resource> where it skips).
func (s *jsonScanner) unreadMember(name []byte, at, depth int, where string) *Error {
	d := namedDestinationOf(name)
	if d == nil {
		if in := inputNamed(s.op, name); in != "" {
			return parameterError([]Parameter{{Name: in,
				Reason: "is given inside " + where + ", at " + position(s.body, int64(at)) + unreadInputReason}})
		}
		if isOperationIDName(name) {
			// An operation that takes no operationId: refused as in an
			// embedded resource or an XML attribute (see unreadInputOf),
			// unless null or blank.
			d = &unreadOperationID
		}
	}
	if d != nil {
		ok, err := s.destinationAllowed(d, depth)
		if err != nil || ok {
			return err
		}
		return parameterError([]Parameter{{Name: d.name,
			Reason: "is given inside " + where + ", at " + position(s.body, int64(at)) +
				", where the edge does not judge it; give it where the operation takes it"}})
	}
	if s.pos < len(s.body) && s.body[s.pos] == '"' && (equalFoldASCII(name, entryKeyPart) || !plainName(name) && entryKeyName(foldedName(name))) {
		// A dictionary entry's key ({"x":[{"key":"phoneNumber",
		// "value":"+1900..."}]}, or {"x":{"y[0].key":...}}, see
		// entryKeyInput): read here, where the edge reads no value, as
		// its name.
		return s.entryKey(at, "inside "+where)
	}
	switch {
	case isEmbeddedName(name):
		return deserializationError(`An "` + embeddedName + `" inside ` + where + ", at " + position(s.body, int64(at)) +
			`, where the edge does not read it; UCWA embeds resources only in the body's "` + embeddedName + `" and in the resources it embeds.`)
	case isMemberNamed(name, linksName):
		return deserializationError(`A "` + linksName + `" inside ` + where + ", at " + position(s.body, int64(at)) +
			`, where the edge does not read it; UCWA gives links only in the body's "` + linksName + `" and in the resources it embeds.`)
	}
	return s.unreadValue(depth, where)
}

// entryKey reads a string at offset at that a pool binds as a
// dictionary entry's key (see entryKeyInput) and refuses it when it
// names an input; where says where it stands.
func (s *jsonScanner) entryKey(at int, where string) *Error {
	raw, escaped, err := s.str()
	if err != nil {
		return err
	}
	if param := entryKeyInput(s.op, unquote(raw, escaped)); param != "" {
		return parameterError([]Parameter{{Name: param,
			Reason: "is named by a dictionary entry's key " + where + ", at " + position(s.body, int64(at)) + entryKeyReason}})
	}
	return nil
}

// unreadInputReason ends the refusal of a member named like an input of
// the operation, other than a destination, inside a value the edge does
// not read. ASP.NET MVC's JsonValueProviderFactory keys every member by
// the keys of the members it stands in (MakePropertyKey: prefix + "." +
// name; MakeArrayKey: prefix + "[i]"), so {"x":{"operationId":"b"}} is
// the key x.operationId, exactly as {"x.operationId":"b"} is, and
// DefaultModelBinder binds a complex parameter x under that prefix
// (BindProperty: CreateSubPropertyName), or a Dictionary<string,string>
// x from its keys (UpdateDictionary, GetKeysFromPrefix): a pool reading
// x.operationId keys the call by an operationId the edge never keyed by,
// and one reading x.ringDelay gets a value the edge never held to its
// limits.
const unreadInputReason = ", where the edge does not read it: ASP.NET MVC reads a member nested in another ({\"x\":{\"name\":...}}) as the key x.name, which a pool's parameter x binds as its name; give it where the operation takes it"

// emptyNameReason ends the refusal of a JSON member without a name.
const emptyNameReason = "; ASP.NET MVC reads the members of its value as the body's own ({\"\":{\"operationId\":...}} is the key operationId to it), where the edge does not read them; give every member a name."

// entryKeyPart is the member (in JSON) or the last part of a query name
// (x[0].key) that ASP.NET MVC and Web API read as a dictionary entry's
// key.
const entryKeyPart = "key"

// entryKeyReason ends the refusal of a dictionary entry keyed by an
// input (see entryKeyInput).
const entryKeyReason = ", where the edge does not judge it: ASP.NET MVC and Web API bind x[0].key and x[0].value as an entry of a dictionary parameter x, so a pool reading its inputs from one (x[\"phoneNumber\"]) would take the entry's value for that input; give it where the operation takes it"

// entryKeyInput returns the input a dictionary entry's key names, a
// phone destination of the table (see namedDestinationOf), operationId
// or another input of op (see inputNamed), in any letter case or folding
// onto it, or "". ASP.NET
// MVC's DefaultModelBinder (UpdateDictionary) and Web API's
// DictionaryModelBinder (through KeyValuePairModelBinder) bind a
// Dictionary<string,string> parameter x from the keys x[i].key and
// x[i].value (i from 0, or as x.index lists; x empty too, when the
// request holds no key beginning with the parameter's name: the
// fallback to the empty prefix), which a query holds as it is written
// and MVC's JsonValueProviderFactory makes of {"x":[{"key":...,
// "value":...}]}. The name of such an input is a value there, which the
// edge's rules of names never see, so a pool that takes its inputs as a
// dictionary would dial x["phoneNumber"] unjudged, or key the call by
// x["operationId"], and one holding its other inputs so
// (x["ringDelay"]) a value the edge never held to its limits, as it
// holds every other spelling of their names (see inputNamed).
func entryKeyInput(op *Operation, key string) string {
	key = strings.TrimSpace(key)
	if d := namedDestinationOf(key); d != nil {
		return d.name
	}
	if in := inputNamed(op, key); in != "" {
		return in
	}
	folded := key
	if !printableASCII(key) {
		folded = foldString(key)
	}
	if namesOperationID(folded) {
		return propOperationID.Name
	}
	return ""
}

// entryKeyName reports whether a folded query name (see queryProperty)
// is a model-binding spelling whose last part is key (x[0].key,
// [0].Key, x.key): a dictionary entry's key (see entryKeyInput).
func entryKeyName(folded string) bool {
	last, parts := "", 0
	for part := range bindingParts(folded) {
		parts++
		if part != "" {
			last = part
		}
	}
	return parts > 1 && equalFoldASCII(last, entryKeyPart)
}

// inputNamed returns the documented name of the input of op, other than
// a phone destination of the table (see namedDestinationOf), that a
// name is, in any letter case or folding onto it, or that a part of its
// .NET model-binding spelling is (see bindingParts): one of op's
// properties, links included, or of the resources it embeds (see
// Operation.Embedded); or "" (also for a nil op). Where a pool may bind
// such a name and the edge does not read it (inside a value it skips,
// as a dictionary entry's key), the pool would take a second value of
// the input, one the edge neither keyed the request by nor held to the
// input's rules.
func inputNamed[T string | []byte](op *Operation, name T) string {
	if op == nil || len(name) == 0 {
		return ""
	}
	if plainName(name) {
		return inputIs(op, name)
	}
	folded := foldString(string(name))
	for part := range bindingParts(folded) {
		if in := inputIs(op, part); in != "" {
			return in
		}
	}
	return ""
}

// inputIs returns the documented name of the input of op (see
// inputNamed) that name is in any ASCII letter case, or "".
func inputIs[T string | []byte](op *Operation, name T) string {
	if namedDestinationIs(name) != nil {
		return ""
	}
	for i := range op.Properties {
		if equalFoldASCII(op.Properties[i].Name, name) {
			return op.Properties[i].Name
		}
	}
	for i := range op.Embedded {
		for j := range op.Embedded[i].Properties {
			if p := &op.Embedded[i].Properties[j]; equalFoldASCII(p.Name, name) {
				return p.Name
			}
		}
	}
	return ""
}

// embeddedBindingInput returns the documented name of a property of a
// resource op embeds (see Operation.Embedded), other than a phone
// destination of the table, that a part of a folded name's .NET
// model-binding spelling is (callForwardingSettings'
// "unansweredCallSettings.ringDelay"), or "": a name without parts, or
// one op reads itself, is judged elsewhere. MVC's value providers hold
// the query's x.ringDelay, a JSON body's {"x.ringDelay":...} and
// {"x":{"ringDelay":...}} alike as the key x.ringDelay, which a pool's
// model of the resource binds to the resource it embeds as x, a value
// the edge judges only inside "_embedded".
func embeddedBindingInput(op *Operation, folded string) string {
	if len(op.Embedded) == 0 || !strings.ContainsAny(folded, ".[]") {
		return ""
	}
	for part := range bindingParts(folded) {
		if namedDestinationIs(part) != nil || op.propertyIndex(part) >= 0 {
			continue
		}
		for i := range op.Embedded {
			if p := op.Embedded[i].property(part); p != nil {
				return p.Name
			}
		}
	}
	return ""
}

// embeddedBindingError refuses a name (where says how the request gives
// it) whose model-binding spelling names a property of a resource op
// embeds (see embeddedBindingInput), naming the property, never the
// name as written or its value.
func embeddedBindingError(param, where string) *Error {
	return parameterError([]Parameter{{Name: param,
		Reason: "is a property of a resource the operation embeds, given " + where + " under a model-binding spelling (x." + param +
			"), which ASP.NET MVC binds to a model's x, where the edge does not judge it; give it in the embedded resource"}})
}
