package ucwa

import (
	"bytes"
	"encoding/xml"
	"strings"
)

// embeddedName is the JSON member that holds embedded resources (HAL's
// "_embedded"); XML nests <resource> elements instead.
const embeddedName = "_embedded"

// An embedded resource (a member of "_embedded", or a <resource> inside
// a PUT's <resource>) is the representation of another resource, which a
// client echoes when it PUTs the one it got (callForwardingSettings embeds
// immediateForwardSettings, simultaneousRingSettings and
// unansweredCallSettings). The edge judges it by no operation's rules, so
// a property, property list or link in it named like a phone destination
// is refused (see named.go).

// embeddedError refuses a destination named in an embedded resource,
// naming the property by its documented spelling and where it sits, never
// its name as written or its value. where says how the body embeds it.
func embeddedError(d *namedDestination, where string, body []byte, at int) *Error {
	return parameterError([]Parameter{{Name: d.name,
		Reason: "is given inside an embedded resource (" + where + "), at " + position(body, int64(at)) +
			", where the edge does not judge it; set it through its own operation"}})
}

// embeddedInputError refuses a member of an embedded resource, or its
// <property>, whose model-binding spelling names an input of the
// operation (see bindingInput), naming the input and where it sits,
// never the name as written or its value.
func embeddedInputError(in, where string, body []byte, at int) *Error {
	return parameterError([]Parameter{{Name: in,
		Reason: "is given inside an embedded resource (" + where + ") under a model-binding spelling (x." + in + "), at " + position(body, int64(at)) +
			unreadInputReason}})
}

// xmlBindingNameError refuses an embedded <property> or <propertyList>
// t whose name attribute (in any namespace or letter case) is a
// model-binding spelling of an input of op (see bindingInput).
func xmlBindingNameError(op *Operation, t xml.StartElement, body []byte, at int) *Error {
	for _, a := range t.Attr {
		if a.Name.Space != "xmlns" && strings.EqualFold(a.Name.Local, "name") {
			if in := bindingInput(op, foldedName(a.Value)); in != "" {
				return embeddedInputError(in, xmlEmbeddedWhere, body, at)
			}
		}
	}
	return nil
}

// bindingInput returns the input of op (see inputNamed) that a part of
// a folded name's .NET model-binding spelling ("x.ringDelay",
// "[0].operationId") is, or "" for a name without parts. Inside an
// embedded resource the edge reads a name by its rules or not at all,
// and MVC keys {"x.ringDelay":1} there as it keys {"x":{"ringDelay":1}},
// which the edge refuses as an input nested where it does not read it.
func bindingInput(op *Operation, folded string) string {
	if !strings.ContainsAny(folded, ".[]") {
		return ""
	}
	return inputNamed(op, folded)
}

const (
	jsonEmbeddedWhere = `"` + embeddedName + `"`
	xmlEmbeddedWhere  = "a <resource> inside the body's"
)

// isEmbeddedName reports whether a JSON member name is "_embedded" in
// any letter case or folding onto it.
func isEmbeddedName(name []byte) bool { return isMemberNamed(name, embeddedName) }

// isMemberNamed reports whether a JSON member name is word in any letter
// case or folding onto it (see foldLookalike).
func isMemberNamed(name []byte, word string) bool {
	if plainName(name) {
		return equalFoldASCII(word, name)
	}
	folded := foldString(string(name))
	return equalFoldASCII(word, folded)
}

// jsonEmbedded checks the value of "_embedded" at the given depth: an
// object of embedded resources (HAL's shape), or an array of them; any
// other value is skipped. known are the resources whose properties are
// judged by their own rules (the operation's Embedded at the top level,
// none deeper).
func (s *jsonScanner) jsonEmbedded(depth int, known []EmbeddedResource) *Error {
	if err := s.enter(depth); err != nil {
		return err
	}
	switch {
	case s.pos < len(s.body) && s.body[s.pos] == '{':
		return s.object(jsonEmbeddedWhere, embeddedName+".", depth, func(s *jsonScanner, key []byte, _ int) *Error {
			return s.jsonEmbeddedResources(depth+1, known, key)
		}, noLookalike)
	case s.pos < len(s.body) && s.body[s.pos] == '[':
		return s.jsonEmbeddedResources(depth, known, nil)
	}
	return s.skipValue(depth)
}

// jsonEmbeddedResources checks one member of "_embedded" (key, its name,
// nil in an array): a resource, an array of them (HAL allows both), or
// anything else, which is skipped.
func (s *jsonScanner) jsonEmbeddedResources(depth int, known []EmbeddedResource, key []byte) *Error {
	switch {
	case s.pos < len(s.body) && s.body[s.pos] == '{':
		return s.jsonEmbeddedResource(depth, known, key)
	case s.pos < len(s.body) && s.body[s.pos] == '[':
		if err := s.enter(depth); err != nil {
			return err
		}
		return s.array(depth, func(s *jsonScanner) *Error {
			if s.pos < len(s.body) && s.body[s.pos] == '{' {
				return s.jsonEmbeddedResource(depth+1, known, key)
			}
			return s.unreadValue(depth+1, unreadEmbedded)
		})
	}
	return s.skipValue(depth)
}

// jsonEmbeddedResource checks an embedded resource's object: its
// properties, its links and the resources it embeds in turn; and, for a
// resource of known (named by key or by its "rel" member), its
// properties by their rules (see embeddedRules).
func (s *jsonScanner) jsonEmbeddedResource(depth int, known []EmbeddedResource, key []byte) *Error {
	if err := s.enter(depth); err != nil {
		return err
	}
	var rules embeddedRules
	if len(known) > 0 {
		rules.known = known
		rules.named(string(key))
	}
	err := s.object(jsonEmbeddedWhere, embeddedName+".", depth, func(s *jsonScanner, name []byte, at int) *Error {
		folded := foldedName(name)
		d := unreadInputOf(name)
		if d != nil || rules.reads(folded) {
			start := s.pos
			var err *Error
			if d == nil {
				err = s.unreadValue(depth+1, unreadEmbedded) // judged, if at all, as a whole
			} else {
				err = s.skipValue(depth + 1)
			}
			if err != nil {
				return err
			}
			token := s.body[start:s.pos]
			if d != nil && !tokenAllowed(d, token) {
				return embeddedError(d, jsonEmbeddedWhere, s.body, at)
			}
			rules.jsonValue(folded, token, at)
			return nil
		}
		switch {
		case equalFoldASCII(embeddedName, folded):
			return s.jsonEmbedded(depth+1, nil)
		case equalFoldASCII(linksName, folded):
			if s.pos < len(s.body) && s.body[s.pos] == '{' {
				if err := s.enter(depth + 1); err != nil {
					return err
				}
				return s.object(jsonEmbeddedWhere, embeddedName+".", depth+1, func(s *jsonScanner, name []byte, at int) *Error {
					if d := unreadInputOf(name); d != nil {
						return s.jsonLinkDestination(d, depth+2, func(at int) *Error { return embeddedError(d, jsonEmbeddedWhere, s.body, at) }, at)
					}
					rules.link(foldedName(name), at)
					return s.unreadValue(depth+2, unreadLink)
				}, noLookalike)
			}
		}
		if in := bindingInput(s.op, folded); in != "" {
			return embeddedInputError(in, jsonEmbeddedWhere, s.body, at)
		}
		return s.unreadValue(depth+1, unreadEmbedded)
	}, noLookalike)
	if err != nil {
		return err
	}
	return rules.judge(s.body)
}

// tokenAllowed reports whether a checked JSON value may be that of a
// property named like the destination d: null, or a string d allows.
func tokenAllowed(d *namedDestination, token []byte) bool {
	if len(token) > 0 && token[0] == '"' {
		return d.allows(unquote(token, bytes.IndexByte(token, '\\') >= 0))
	}
	return string(token) == "null"
}

// embeddedRules judges the properties of one embedded resource by the
// rules of the known resources it is named as: by its name in
// "_embedded", its "rel" member or property, its rel attribute (any
// letter case, or folding onto it). A resource named as two is held to
// both, as a pool might take it for either; one named as none of them
// is judged by no rules (a pool cannot tell what it is). Its values are
// collected as they come, the rel among them, and judged at its end.
type embeddedRules struct {
	known  []EmbeddedResource
	is     [MaxEmbedded]bool // whether known[i] names the resource
	values []embeddedValue
}

// embeddedValue is a value, of a property a known resource has, in an
// embedded resource: its name folded, its text, whether it is there (not
// null, not blank), what the body writes it as and where it sits.
type embeddedValue struct {
	name, text string
	present    bool
	kind       valueKind
	at         int
}

// valueKind is what a body writes a value as.
type valueKind uint8

const (
	kindXMLText    valueKind = iota // an XML property's text
	kindXMLList                     // an XML propertyList
	kindJSONString                  // a JSON string
	kindJSONBool                    // a JSON true or false
	kindJSONInt                     // a JSON number without fraction or exponent
	kindJSONOther                   // any other JSON value (a fraction, an array, an object)
	kindLink                        // a link (a member of "_links", a <link>), whatever it holds
)

// named records a name the resource goes by: a known resource's rel in
// any letter case, or folding onto it. A name outside ASCII, which no
// rel is and which a pool might fold onto any, names every one.
func (er *embeddedRules) named(rel string) {
	if rel == "" || len(er.known) == 0 {
		return
	}
	if !isASCII(rel) {
		er.namedAll()
		return
	}
	rel = foldedName(rel)
	for i := range er.known {
		if equalFoldASCII(er.known[i].Rel, rel) {
			er.is[i] = true
		}
	}
}

// namedAll records that the resource may go by the rel of every known
// resource: it is held to the rules of each.
func (er *embeddedRules) namedAll() {
	for j := range er.is {
		er.is[j] = true
	}
}

// reads reports whether a property name (folded) is one the rules read:
// "rel", or a property of a known resource.
func (er *embeddedRules) reads(folded string) bool {
	if len(er.known) == 0 {
		return false
	}
	if equalFoldASCII("rel", folded) {
		return true
	}
	for i := range er.known {
		if er.known[i].property(folded) != nil {
			return true
		}
	}
	return false
}

// jsonValue records the JSON value token of the property name (folded),
// read as jsonValue reads a top-level one, when the rules read it.
func (er *embeddedRules) jsonValue(folded string, token []byte, at int) {
	if !er.reads(folded) {
		return
	}
	v := embeddedValue{name: folded, text: string(token), present: true, kind: kindJSONOther, at: at}
	switch {
	case string(token) == "null":
		v.present = false
	case token[0] == '"':
		v.text = unquote(token, bytes.IndexByte(token, '\\') >= 0)
		v.present, v.kind = strings.TrimSpace(v.text) != "", kindJSONString
	case string(token) == "true" || string(token) == "false":
		v.kind = kindJSONBool
	case (token[0] == '-' || token[0] >= '0' && token[0] <= '9') && isJSONInteger(token):
		v.kind = kindJSONInt
	}
	if equalFoldASCII("rel", folded) {
		if v.present && v.kind == kindJSONString {
			er.named(v.text)
		}
		return
	}
	er.values = append(er.values, v)
}

// xmlValue records the text of the property name (folded), or a property
// list so named (list), when the rules read it.
func (er *embeddedRules) xmlValue(folded, text string, list bool, at int) {
	if !er.reads(folded) {
		return
	}
	if equalFoldASCII("rel", folded) {
		// A rel holding an element, or a propertyList so named, has no
		// text the edge reads, yet a pool reading an element's text
		// whole (XElement.Value, XmlSerializer's [XmlText], which skip
		// the element) reads unansweredCallSettings in
		// <property name="rel">unansweredCallSettings<x/></property>:
		// the resource is held to the rules of every known one.
		if list {
			er.namedAll()
		} else {
			er.named(text)
		}
		return
	}
	v := embeddedValue{name: folded, text: text, present: list || strings.TrimSpace(text) != "", kind: kindXMLText, at: at}
	if list {
		v.kind = kindXMLList
	}
	er.values = append(er.values, v)
}

// link records a link of the resource named name (folded: a member of
// its "_links", the rel of a <link>) when it is named like a property of
// a known resource: that resource's own PUT refuses such a link (see
// valueLinkError), since a pool might read its href as the property (a
// ringDelay of 1 in unansweredCallSettings), and so does judge, whatever
// the link holds, once it knows what the resource is named as.
func (er *embeddedRules) link(folded string, at int) {
	if !er.reads(folded) || equalFoldASCII("rel", folded) {
		return
	}
	er.values = append(er.values, embeddedValue{name: folded, present: true, kind: kindLink, at: at})
}

// xmlLink records, for each rel attribute of the <link> t (in any
// namespace or letter case), the link so named (see link).
func (er *embeddedRules) xmlLink(t xml.StartElement, at int) {
	if len(er.known) == 0 {
		return
	}
	for _, a := range t.Attr {
		if a.Name.Space != "xmlns" && strings.EqualFold(a.Name.Local, "rel") {
			er.link(foldedName(a.Value), at)
		}
	}
}

// judge checks every value collected against the rules of each known
// resource the resource is named as, and returns the 400 naming what
// fails, never a value.
func (er *embeddedRules) judge(body []byte) *Error {
	var cp cleanProblems
	var c Cleaner // the properties judged here are no numbers
	for i := range er.known {
		if !er.is[i] {
			continue
		}
		e := &er.known[i]
		for _, v := range er.values {
			p := e.property(v.name)
			if p == nil || !v.present {
				continue
			}
			where := " (in the embedded " + e.Rel + ", at " + position(body, int64(v.at)) + ")"
			if reason, bad := embeddedTypeProblem(p, v); bad {
				cp.add(ruleType, p.Name, reason+where)
				continue
			}
			c.cleanValue(&cp, p, v.text, valueAt{where: where}, nil)
		}
	}
	var bad []Parameter
	for _, list := range cp.rules {
		bad = append(bad, list...)
	}
	bad = append(bad, cp.after...)
	if len(bad) > 0 {
		return parameterError(bad)
	}
	return nil
}

// embeddedTypeProblem is the type problem of an embedded value v of p,
// as a top-level value of p has it (see Request.jsonValue): in JSON, a
// boolean is true or false, an integer a number without fraction or
// exponent, anything else a string; in XML, a property's text, never a
// propertyList.
func embeddedTypeProblem(p *Property, v embeddedValue) (string, bool) {
	var ok bool
	switch v.kind {
	case kindXMLText:
		ok = true
	case kindJSONString:
		ok = p.Type != BooleanValue && p.Type != IntegerValue
	case kindJSONBool:
		ok = p.Type == BooleanValue
	case kindJSONInt:
		ok = p.Type == IntegerValue
	case kindXMLList:
		return typeReasons[notSingle], true
	case kindLink:
		return "is given as a link, which it is not: write it as a property", true
	}
	if ok {
		return "", false
	}
	return typeReasons[problemFor(p.Type)], true
}

// enter refuses an object or array at depth, as skipValue does, beyond
// maxJSONDepth.
func (s *jsonScanner) enter(depth int) *Error {
	if depth >= maxJSONDepth && s.pos < len(s.body) && (s.body[s.pos] == '{' || s.body[s.pos] == '[') {
		return deserializationError("The JSON body is nested too deeply at " + position(s.body, int64(s.pos)) + ".")
	}
	return nil
}

// array reads an array at the given depth, calling elem with the scanner
// on each element (at depth+1, white space skipped), which it must
// consume.
func (s *jsonScanner) array(depth int, elem func(s *jsonScanner) *Error) *Error {
	s.pos++ // [
	s.skipSpace()
	if s.pos < len(s.body) && s.body[s.pos] == ']' {
		s.pos++
		return nil
	}
	for {
		s.skipSpace()
		if err := elem(s); err != nil {
			return err
		}
		s.skipSpace()
		if s.pos >= len(s.body) {
			return s.syntaxError("")
		}
		switch s.body[s.pos] {
		case ',':
			s.pos++
		case ']':
			s.pos++
			return nil
		default:
			return s.syntaxError("after array element")
		}
	}
}

// noLookalike is object's look-alike check inside embedded resources,
// whose names are read by their fold already.
func noLookalike([]byte, string, int) *Error { return nil }

// xmlEmbedded checks the rest of a <resource> nested in a PUT's
// <resource> (its start tag, start, read; at depth), the resources it
// nests in turn included; and, for a resource of known (named by its rel
// attribute or its rel property), its properties by their rules (see
// embeddedRules). Each nested resource is a call of its own, so every
// element inside is held to maxXMLDepth before it is read: the recursion
// goes no deeper than that.
// Elements are recognised by their local name in any letter case and in
// any namespace, and names and rels in any attribute so named: a pool
// reading loosely might read any of them.
func xmlEmbedded(op *Operation, d *xml.Decoder, body []byte, start xml.StartElement, depth int, known []EmbeddedResource) *Error {
	var rules embeddedRules
	if len(known) > 0 {
		rules.known = known
		for _, a := range start.Attr {
			if strings.EqualFold(a.Name.Local, "rel") {
				rules.named(a.Value)
			}
		}
	}
	for {
		before := int(d.InputOffset())
		tok, err := d.Token()
		if err != nil {
			return xmlSyntax(body, d, err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return directiveError(body, before)
		case xml.EndElement:
			return rules.judge(body)
		case xml.StartElement:
			if err := xmlDepthError(depth+1, body, before); err != nil {
				return err
			}
			if err := checkAttrs(t, body, before); err != nil {
				return err
			}
			var e *Error
			switch strings.ToLower(t.Name.Local) {
			case "resource":
				e = xmlEmbedded(op, d, body, t, depth+1, nil)
			case "property":
				e = xmlEmbeddedProperty(op, d, body, t, before, depth+1, &rules)
			case "propertylist":
				e = xmlEmbeddedNamed(t, "name", body, before)
				if e == nil {
					e = xmlBindingNameError(op, t, body, before)
				}
				rules.xmlNamed(t, "", true, before)
			case "link":
				e = xmlEmbeddedLink(t, body, before)
				rules.xmlLink(t, before)
			default:
				e = nestedDestinationError(op, t, body, before, inEmbeddedResource)
			}
			if e != nil {
				return e
			}
			if name := strings.ToLower(t.Name.Local); name != "resource" && name != "property" {
				if err := skipXML(op, d, body, depth+1); err != nil {
					return err
				}
			}
		}
	}
}

// xmlEmbeddedNamed refuses an element whose attr attribute (in any
// namespace or letter case) names a destination.
func xmlEmbeddedNamed(t xml.StartElement, attr string, body []byte, at int) *Error {
	for _, a := range t.Attr {
		if strings.EqualFold(a.Name.Local, attr) {
			if dest := unreadInputOf(a.Value); dest != nil {
				return embeddedError(dest, xmlEmbeddedWhere, body, at)
			}
		}
	}
	return nil
}

// xmlEmbeddedLink refuses a <link> whose rel attribute (in any namespace
// or letter case) names a destination, but for one a pool serves as a
// link whose hrefs it allows (see xmlLinkAllowed).
func xmlEmbeddedLink(t xml.StartElement, body []byte, at int) *Error {
	for _, a := range t.Attr {
		if strings.EqualFold(a.Name.Local, "rel") {
			if dest := unreadInputOf(a.Value); dest != nil && !xmlLinkAllowed(dest, t) {
				return embeddedError(dest, xmlEmbeddedWhere, body, at)
			}
		}
	}
	return nil
}

// xmlLinkAllowed reports whether a <link> that names the destination d
// may stand where the edge does not judge it: d is one a pool serves as
// a link, and every attribute that is href in any namespace or letter
// case holds what d allows (see namedDestination.allows).
func xmlLinkAllowed(d *namedDestination, t xml.StartElement) bool {
	if !d.resourcePath {
		return false
	}
	for _, a := range t.Attr {
		if strings.EqualFold(a.Name.Local, hrefName) && a.Name.Space != "xmlns" && !d.allows(a.Value) {
			return false
		}
	}
	return true
}

// xmlNamed records, for each attribute of t named name (in any
// namespace or letter case), the property so named (see xmlValue).
func (er *embeddedRules) xmlNamed(t xml.StartElement, text string, list bool, at int) {
	if len(er.known) == 0 {
		return
	}
	for _, a := range t.Attr {
		if strings.EqualFold(a.Name.Local, "name") {
			er.xmlValue(foldedName(a.Value), text, list, at)
		}
	}
}

// xmlEmbeddedProperty reads an embedded <property> to its end tag and
// refuses it when it is named like a destination and its text is not one
// the destination allows (an element inside it never is), when it is
// named like a destination or the rules read its text and it has an
// attribute other than its name (see otherPropertyAttr: a pool reading
// value="1" reads a ringDelay the edge did not judge), and when the
// rules read its text (its rel, a ringDelay, a target) and a comment, a
// processing instruction or a CDATA section splits it: the edge judges
// the text of every run, and cannot forward it as one run as it does a
// top-level value, while a pool reading with XmlReader.ReadString, which
// stops at the first comment, or the first text node would read another
// value (<property name="rel">unansweredCallSettings<!---->x</property>
// names no resource the edge knows, so its ringDelay of 1 passed, but
// names unansweredCallSettings to such a pool; 1<!---->0 is a ringDelay
// of 10 to the edge). A destination's text needs no such care: every run
// of a blank text, a word or a path is part of it, no number. Rules
// record its text (one holding an element, like a propertyList, is no
// single value). The property stands at depth, and the elements inside it
// are held to maxXMLDepth.
func xmlEmbeddedProperty(op *Operation, d *xml.Decoder, body []byte, t xml.StartElement, at, depth int, rules *embeddedRules) *Error {
	var dest *namedDestination
	for _, a := range t.Attr {
		if strings.EqualFold(a.Name.Local, "name") {
			if dest = unreadInputOf(a.Value); dest != nil {
				break
			}
		}
	}
	if err := xmlBindingNameError(op, t, body, at); err != nil {
		return err
	}
	if a, other := otherPropertyAttr(t, true); other {
		if dest != nil {
			return embeddedError(dest, xmlEmbeddedWhere, body, at)
		}
		// A property the rules read (its rel, a ringDelay) with a value
		// in an attribute beside its text, as one at the top level is.
		if rules.xmlReads(t) {
			return propertyAttrError(a, body, at)
		}
	}
	var text strings.Builder
	allowed := true
	textStart, textEnd := int(d.InputOffset()), 0
	// open is the depth of the innermost element open, as in skipXML.
	for open := depth; open >= depth; {
		before := int(d.InputOffset())
		textEnd = before
		tok, err := d.Token()
		if err != nil {
			return xmlSyntax(body, d, err)
		}
		switch tt := tok.(type) {
		case xml.Directive:
			return directiveError(body, before)
		case xml.CharData:
			if open == depth {
				text.Write(tt)
			}
		case xml.StartElement:
			open++
			if err := xmlDepthError(open, body, before); err != nil {
				return err
			}
			if err := checkAttrs(tt, body, before); err != nil {
				return err
			}
			if err := nestedConstructError(tt, body, before); err != nil {
				return err
			}
			if err := nestedDestinationError(op, tt, body, before, inSkippedElement); err != nil {
				return err
			}
			allowed = false
		case xml.EndElement:
			open--
		}
	}
	if dest != nil && (!allowed || !dest.allows(text.String())) {
		return embeddedError(dest, xmlEmbeddedWhere, body, at)
	}
	if allowed && bytes.IndexByte(body[textStart:textEnd], '<') >= 0 && rules.xmlReads(t) {
		return deserializationError("A property of an embedded resource whose text the edge judges by its resource's rules is split by a comment, a processing instruction or a CDATA section, at " +
			position(body, int64(at)) + "; write its text as one run: a pool reading its first run, or up to the first comment (XmlReader.ReadString), would read another value.")
	}
	rules.xmlNamed(t, text.String(), !allowed, at)
	return nil
}

// xmlReads reports whether the rules read a property of t's name (any
// attribute named name, in any namespace or letter case; see reads).
func (er *embeddedRules) xmlReads(t xml.StartElement) bool {
	for _, a := range t.Attr {
		if strings.EqualFold(a.Name.Local, "name") && er.reads(foldedName(a.Value)) {
			return true
		}
	}
	return false
}
