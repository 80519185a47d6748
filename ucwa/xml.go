package ucwa

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// decodeXML reads an XML body of op:
//
//	<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa">
//	  <property name="to">sip:john@contoso.com</property>
//	  <propertyList name="x"><item>v</item></propertyList>
//	  <link rel="customContent" href="data:..."/>
//	</input>
//
// The root is op.XMLRoot: <input> for an operation's input, <resource>
// for a PUT's resource representation (which may also embed other
// <resource> elements, checked by xmlEmbedded). A DOCTYPE (and
// so any entity definition) is refused outright. Names and rels match
// in any letter case; one that only folds onto a property's, as
// ParseQuery folds query names (name="phoneNumber ", "&#9;to"), is
// refused, naming the property, and so is a link rel that is, or folds
// onto, the name of a property that is not a link (rel="phoneNumber";
// see valueLinkError). A property, property list or link named like a
// phone destination of the table that op does not take is refused
// unless, as a property, its text is blank or one of the destination's
// words (see strayDestination). A <property> has only a name attribute
// (and namespace declarations; see otherPropertyAttr), and no property or
// property list has an empty name. No element has an attribute named
// like a phone destination of the table (see attrDestinationError), and
// no property, property list, link or resource stands inside what the
// edge skips (see nestedConstructError).
//
// No element nests deeper than maxXMLDepth.
//
// Bodies in the plain shape every client sends (the reference's sample)
// are read by decodeSimpleXML without encoding/xml; anything else goes to
// decodeFullXML.
func decodeXML(r *Request, op *Operation, body []byte) *Error {
	if decodeSimpleXML(r, op, body) {
		return nil
	}
	return decodeFullXML(r, op, body)
}

// maxXMLDepth is how deeply elements may nest (the root is depth 1), the
// same bound as maxJSONDepth, so that a body nests no deeper in one format
// than in the other. Every reader below counts its elements' depth from
// the root's, and a <resource> nested in a PUT's is read by recursion, one
// call a level: the bound is what keeps that stack bounded. Without it a
// body of a few million nested elements (within the 1 GiB max_body_size
// allows) overflows the goroutine's stack, a fatal error that no recover
// catches and that ends the whole process.
const maxXMLDepth = maxJSONDepth

// xmlDepthError refuses an element at depth (the root is 1) deeper than
// maxXMLDepth, its start tag at offset at; it names where, never what.
func xmlDepthError(depth int, body []byte, at int) *Error {
	if depth <= maxXMLDepth {
		return nil
	}
	return deserializationError("The XML body is nested too deeply at " + position(body, int64(at)) + ".")
}

// decodeFullXML is decodeXML with encoding/xml, for any body.
func decodeFullXML(r *Request, op *Operation, body []byte) *Error {
	*r = Request{Format: XML, op: op, raw: body}
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = true
	var seen xmlSeen
	rootSeen, rootDone := false, false
	for {
		before := int(d.InputOffset())
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return xmlSyntax(body, d, err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return directiveError(body, before)
		case xml.ProcInst:
			if strings.EqualFold(t.Target, "xml") && !xmlDeclarationOK(t.Inst) {
				return deserializationError("The XML body's declaration (<?xml ...?>) is not written as XML 1.0 writes one, for version 1.0 in UTF-8, at " + position(body, int64(before)) + `; declare <?xml version="1.0" encoding="utf-8"?> or nothing.`)
			}
		case xml.CharData:
			// Only XML's own white space is insignificant between
			// elements; a no-break space (U+00A0) and the like are text.
			if len(trimXMLSpace(t)) > 0 {
				return deserializationError("The XML body has text outside any property, at " + position(body, int64(before)) + ".")
			}
		case xml.StartElement:
			// The root is depth 1 and its children 2, far inside the
			// bound; the readers they go to count on from there.
			depth := 1
			if rootSeen && !rootDone {
				depth = 2
			}
			if err := xmlDepthError(depth, body, before); err != nil {
				return err
			}
			if err := checkAttrs(t, body, before); err != nil {
				return err
			}
			switch {
			case rootDone:
				return deserializationError("The XML body has a second root element, at " + position(body, int64(before)) + ".")
			case !rootSeen:
				if t.Name.Local != op.XMLRoot || (t.Name.Space != Namespace && t.Name.Space != "") {
					return deserializationError(`The XML body's root element must be <` + op.XMLRoot + ` xmlns="` + Namespace + `">, not <` + t.Name.Local + ">.")
				}
				rootSeen = true
			default:
				if err := r.decodeXMLChild(d, body, t, before, depth, &seen); err != nil {
					return err
				}
			}
		case xml.EndElement: // only the root's end reaches here
			rootDone = true
		}
	}
	if !rootDone {
		return deserializationError("The XML body has no <" + op.XMLRoot + "> element.")
	}
	return nil
}

// xmlDeclarationOK reports whether inst, the content of an XML
// declaration after "<?xml" and the white space after it, is one by XML
// 1.0's grammar (§2.8: version, then encoding and standalone if given, in
// that order, each written name="value" or name='value' with white space
// allowed around the "=") declaring version 1.0 and, if any encoding,
// UTF-8. encoding/xml finds the encoding only where it is written
// encoding="..." with nothing around the "=", and otherwise reads the
// body as UTF-8 without a word, while a .NET XmlReader reading the body's
// bytes honours encoding = "utf-7" and decodes "+ADw-" to "<": a body
// whose property text the edge judged would be markup to the pool,
// properties the edge never saw.
func xmlDeclarationOK(inst []byte) bool {
	rest := inst
	next := 0 // the index in xmlDeclNames the next pseudo-attribute may have, at least
	for first := true; ; first = false {
		trimmed := trimXMLSpace(rest)
		if len(trimmed) == 0 {
			return next > 0 // version is required
		}
		if !first && len(trimmed) == len(rest) {
			return false // no white space before a pseudo-attribute
		}
		rest = trimmed
		i := next
		for i < len(xmlDeclNames) && !bytes.HasPrefix(rest, []byte(xmlDeclNames[i].name)) {
			i++
		}
		if i == len(xmlDeclNames) || i > 0 && next == 0 {
			return false // not a pseudo-attribute, one out of order, or one before version
		}
		rest = trimXMLSpace(rest[len(xmlDeclNames[i].name):])
		if len(rest) == 0 || rest[0] != '=' {
			return false
		}
		rest = trimXMLSpace(rest[1:])
		if len(rest) == 0 || rest[0] != '"' && rest[0] != '\'' {
			return false
		}
		end := bytes.IndexByte(rest[1:], rest[0])
		if end < 0 || !xmlDeclNames[i].ok(string(rest[1:1+end])) {
			return false
		}
		rest = rest[2+end:]
		next = i + 1
	}
}

// xmlDeclNames are the pseudo-attributes of an XML declaration, in the
// order XML requires, and the values the edge takes for each.
var xmlDeclNames = [...]struct {
	name string
	ok   func(string) bool
}{
	{"version", func(v string) bool { return v == "1.0" }},
	{"encoding", func(v string) bool { return strings.EqualFold(v, "utf-8") }},
	{"standalone", func(v string) bool { return v == "yes" || v == "no" }},
}

// xmlSeen holds the property names and the link rels of one body, to
// refuse one given twice in any letter case.
type xmlSeen struct {
	names, links nameSet[string]
}

// decodeXMLChild reads one element inside the root, at depth. UCWA's
// schema has only property, propertyList and link there (and resource,
// inside a resource), so any other element (another name, another letter
// case, another namespace) is refused rather than forwarded: a pool
// reading loosely might take it for one.
func (r *Request) decodeXMLChild(d *xml.Decoder, body []byte, t xml.StartElement, start, depth int, seen *xmlSeen) *Error {
	if t.Name.Space != Namespace && t.Name.Space != "" {
		return unknownElement(r.op, t, body, start)
	}
	switch t.Name.Local {
	case "property", "propertyList":
		if err := otherAttrError(r.op, t, "name", -1, body, start); err != nil {
			return err
		}
		name, ok := attr(t, "name")
		if !ok {
			return deserializationError("A <" + t.Name.Local + "> without a name attribute, at " + position(body, int64(start)) + ".")
		}
		if name == "" {
			return deserializationError("A <" + t.Name.Local + "> with an empty name, at " + position(body, int64(start)) + ".")
		}
		if t.Name.Local == "property" {
			if a, ok := otherPropertyAttr(t, false); ok {
				return propertyAttrError(a, body, start)
			}
		}
		if err := xmlLookalike(r.op, "property", name, false, body, start); err != nil {
			return err
		}
		if first, dup := seen.names.add(name); dup {
			return deserializationError(`The property "` + name + `" appears twice (also as "` + first + `"), at ` + position(body, int64(start)) + ".")
		}
		if xmlHALName(name) {
			return deserializationError("A <" + t.Name.Local + "> named like JSON's " + linksName + " or " + embeddedName + ", at " + position(body, int64(start)) + "; XML gives links as <link> elements and embedded resources as <resource> elements.")
		}
		i, link := propIndex(r.op, name, false), -1
		var stray *namedDestination
		if i < 0 {
			link = propIndex(r.op, name, true)
			stray = strayDestination(r.op, name)
		}
		nameless := i < 0 && link < 0 && stray == nil && !plainName(name) && namelessQueryName(foldedName(name))
		if t.Name.Local == "propertyList" {
			if nameless {
				return deserializationError("A <propertyList> whose name is an index alone, at " + position(body, int64(start)) + namelessMemberReason)
			}
			if stray != nil {
				return strayBodyError(stray, r.op, "property list", body, start)
			}
			if link >= 0 {
				return propertyLinkError(r.op.Properties[link].Name, xmlLinkName(r.op.Properties[link].Name), body, start)
			}
			if i >= 0 {
				r.vals[i].problem = notSingle
			}
			return skipXML(r.op, d, body, depth)
		}
		text, sp, err := xmlText(d, body, depth)
		if err != nil {
			return err
		}
		if stray != nil && !stray.allows(text) {
			return strayBodyError(stray, r.op, "property", body, start)
		}
		if nameless && !isBlank(text) {
			return deserializationError("A <property> whose name is an index alone, at " + position(body, int64(start)) + namelessMemberReason)
		}
		if i < 0 && link < 0 && stray == nil && !plainName(name) && entryKeyName(foldedName(name)) {
			// A dictionary entry's key (x[0].key), as the query's and
			// JSON's are read.
			if param := entryKeyInput(r.op, text); param != "" {
				return parameterError([]Parameter{{Name: param,
					Reason: "is named by a dictionary entry's key given as a <property>, at " + position(body, int64(start)) + entryKeyReason}})
			}
		}
		if link >= 0 && !isBlank(text) {
			return propertyLinkError(r.op.Properties[link].Name, xmlLinkName(r.op.Properties[link].Name), body, start)
		}
		if i >= 0 {
			r.set(i, text, sp, false)
			// Text that a comment, a processing instruction or a CDATA
			// section splits is read whole here, but not by every reader:
			// .NET's XmlReader.ReadString stops at the first comment or
			// processing instruction, and a reader of the first text node
			// sees only that. The value goes on as one run of the text the
			// edge judged, whoever reads it.
			if r.vals[i].present && bytes.IndexByte(body[sp.start:sp.end], '<') >= 0 {
				r.vals[i].changed = true
			}
		}
	case "link":
		rel, _ := attr(t, "rel")
		if err := xmlLookalike(r.op, "link rel", rel, true, body, start); err != nil {
			return err
		}
		i := propIndex(r.op, rel, true)
		if err := otherAttrError(r.op, t, "rel", -1, body, start); err != nil {
			return err
		}
		if err := otherAttrError(r.op, t, "href", i, body, start); err != nil {
			return err
		}
		if i < 0 {
			if j := propIndex(r.op, rel, false); j >= 0 {
				return valueLinkError(r.op.Properties[j].Name, xmlLinkName(r.op.Properties[j].Name), body, start)
			}
			if stray := strayDestination(r.op, rel); stray != nil && !xmlLinkAllowed(stray, t) {
				return strayBodyError(stray, r.op, "link", body, start)
			}
			return skipXML(r.op, d, body, depth)
		}
		if first, dup := seen.links.add(rel); dup {
			return deserializationError(`The link "` + rel + `" appears twice (also as "` + first + `"), at ` + position(body, int64(start)) + ".")
		}
		tag := body[start:d.InputOffset()]
		if err := skipXML(r.op, d, body, depth); err != nil {
			return err
		}
		if href, ok := attr(t, "href"); ok {
			from, to, found := attrValueSpan(tag, "href")
			if !found {
				return deserializationError("A <link> whose href attribute is not written as href=\"...\", at " + position(body, int64(start)) + ".")
			}
			href, err := normalizedAttr(href, tag[from-1], tag[from:to], body, start)
			if err != nil {
				return err
			}
			r.set(i, href, span{start: int32(start + from), end: int32(start + to)}, false)
		}
	case "resource":
		if r.op.XMLRoot != "resource" {
			return unknownElement(r.op, t, body, start)
		}
		return xmlEmbedded(r.op, d, body, t, depth, r.op.Embedded)
	default:
		return unknownElement(r.op, t, body, start)
	}
	return nil
}

// xmlLookalike refuses a property name or link rel (what says which)
// that folds onto a property of op without being its name in another
// ASCII letter case (see foldsOnto), a link rel folding onto a property
// that is not a link (see valueLinkError), and a name outside ASCII.
// Plain names (see plainName), the names clients send, pass at the cost
// of one look.
func xmlLookalike(op *Operation, what, name string, link bool, body []byte, at int) *Error {
	if plainName(name) {
		return nil
	}
	folded := foldString(name)
	if i := lookalikeProperty(op, name, folded, link); i >= 0 {
		return lookalikeError(op.Properties[i].Name, op.Properties[i].Name, body, at)
	}
	if link {
		if i := lookalikeProperty(op, name, folded, false); i >= 0 {
			return valueLinkError(op.Properties[i].Name, xmlLinkName(op.Properties[i].Name), body, at)
		}
	} else if i := lookalikeProperty(op, name, folded, true); i >= 0 {
		return propertyLinkError(op.Properties[i].Name, xmlLinkName(op.Properties[i].Name), body, at)
	}
	if in := embeddedBindingInput(op, folded); in != "" {
		return embeddedBindingError(in, "in the body as a "+what+", at "+position(body, int64(at))+",")
	}
	return checkNameASCII(what, "", name, body, at)
}

// otherAttrError refuses an attribute spelled otherwise than the one
// the edge reads, attr as XML spells it (name, rel, href: no namespace,
// lower case), that a pool reading attributes by their local name, or in
// any letter case, might read in its place: for name and rel, one whose
// value is, or folds onto, a property of op, or a phone destination of
// the table that op does not take (see strayDestination), naming that
// property; for href, any on the link of property link (-1: none),
// naming it. Namespace declarations are not attributes here.
func otherAttrError(op *Operation, t xml.StartElement, attr string, link int, body []byte, at int) *Error {
	for _, a := range t.Attr {
		if a.Name.Space == "xmlns" || a.Name.Space == "" && (a.Name.Local == attr || a.Name.Local == "xmlns") || !strings.EqualFold(a.Name.Local, attr) {
			continue
		}
		name := ""
		switch {
		case attr == "href":
			if link >= 0 {
				name = op.Properties[link].Name
			}
		default:
			if i := attrProperty(op, a.Value); i >= 0 {
				name = op.Properties[i].Name
			} else if d := strayDestination(op, a.Value); d != nil {
				name = d.name
			}
		}
		if name != "" {
			return parameterError([]Parameter{{Name: name,
				Reason: "is given in the body in an attribute spelled otherwise (" + attr + " in another letter case or with a namespace prefix), at " +
					position(body, int64(at)) + "; give it in " + attr + " alone"}})
		}
	}
	return nil
}

// otherPropertyAttr returns an attribute of a <property> other than its
// name and namespace declarations, and whether there is one; loose says
// that name in any letter case and namespace is the name (as embedded
// resources read it). UCWA gives a property only a name, and its value
// as text (the reference shows no other attribute): a pool reading
// value="..." or the like would read a value the edge did not judge,
// where the edge read the text, blank.
func otherPropertyAttr(t xml.StartElement, loose bool) (xml.Attr, bool) {
	for _, a := range t.Attr {
		switch {
		case a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns":
		case a.Name.Space == "" && a.Name.Local == "name":
		case loose && strings.EqualFold(a.Name.Local, "name"):
		default:
			return a, true
		}
	}
	return xml.Attr{}, false
}

// propertyAttrError refuses a <property> with attribute a (see
// otherPropertyAttr), naming the attribute, never its value.
func propertyAttrError(a xml.Attr, body []byte, at int) *Error {
	return deserializationError("A <property> has the attribute \"" + a.Name.Local + "\", at " + position(body, int64(at)) + "; a property has only a name attribute, and its value as text.")
}

// attrProperty returns the property of op that a name or rel is, in any
// letter case, or folds onto (see foldsOnto), or -1.
func attrProperty(op *Operation, v string) int {
	if i := op.propertyIndex(v); i >= 0 {
		return i
	}
	if plainName(v) {
		return -1
	}
	folded := foldString(v)
	for _, link := range [...]bool{false, true} {
		if i := lookalikeProperty(op, v, folded, link); i >= 0 {
			return i
		}
	}
	return -1
}

// xmlHALName reports whether a property name is, in any letter case or
// folding onto it, JSON's "_links" or "_embedded": XML has no such
// properties, and a pool that reads both formats into one model might
// take one for its links or embedded resources, which the edge reads
// only as JSON gives them.
func xmlHALName(name string) bool {
	folded := foldedName(name)
	return equalFoldASCII(folded, linksName) || equalFoldASCII(folded, embeddedName)
}

// xmlLinkName is how an error names the link of rel name.
func xmlLinkName(name string) string { return `<link rel="` + name + `">` }

func unknownElement(op *Operation, t xml.StartElement, body []byte, at int) *Error {
	ns := ""
	if t.Name.Space != "" && t.Name.Space != Namespace {
		ns = ` in namespace "` + t.Name.Space + `"`
	}
	allowed := "<property>, <propertyList> and <link> elements"
	if op.XMLRoot == "resource" {
		allowed = "<property>, <propertyList>, <link> and <resource> elements"
	}
	return deserializationError("An element <" + t.Name.Local + ">" + ns + " inside <" + op.XMLRoot + ">, at " + position(body, int64(at)) + `; <` + op.XMLRoot + `> holds only ` + allowed + `, in the UCWA namespace or none.`)
}

// xmlText reads a property's text (the property at depth) up to its end
// tag, and where that text sits. Comments, processing instructions and CDATA sections inside are
// allowed (the value is the text of every run; a comment's is none of
// it), and such a value is forwarded as one run of that text (see
// decodeXMLChild); child elements are not allowed.
func xmlText(d *xml.Decoder, body []byte, depth int) (string, span, *Error) {
	sp := span{start: int32(d.InputOffset())}
	// The usual property is a single run of text: one copy of it is the
	// value. Comments, CDATA sections and entities split a value into
	// several runs, which are joined.
	var value string
	var text []byte
	runs := 0
	for {
		before := int(d.InputOffset())
		tok, err := d.Token()
		if err != nil {
			return "", sp, xmlSyntax(body, d, err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			switch runs++; runs {
			case 1:
				value = string(t)
			case 2:
				text = append([]byte(value), t...)
			default:
				text = append(text, t...)
			}
		case xml.Directive:
			return "", sp, directiveError(body, before)
		case xml.StartElement:
			if err := xmlDepthError(depth+1, body, before); err != nil {
				return "", sp, err
			}
			if err := checkAttrs(t, body, before); err != nil {
				return "", sp, err
			}
			return "", sp, deserializationError("A <property> holds an element, at " + position(body, int64(before)) + "; a property holds text only.")
		case xml.EndElement:
			sp.end = int32(before)
			if runs > 1 {
				value = string(text)
			}
			return value, sp, nil
		}
	}
}

// skipXML skips the rest of the current element, at depth, still checking
// syntax and depth, and refuses a UCWA construct inside it (see
// nestedConstructError).
func skipXML(op *Operation, d *xml.Decoder, body []byte, depth int) *Error {
	// open is the depth of the innermost element open: the skipped one's
	// end brings it below depth.
	for open := depth; open >= depth; {
		before := d.InputOffset()
		tok, err := d.Token()
		if err != nil {
			return xmlSyntax(body, d, err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return directiveError(body, int(before))
		case xml.StartElement:
			open++
			if err := xmlDepthError(open, body, int(before)); err != nil {
				return err
			}
			if err := checkAttrs(t, body, int(before)); err != nil {
				return err
			}
			if err := nestedConstructError(t, body, int(before)); err != nil {
				return err
			}
			if err := nestedDestinationError(op, t, body, int(before), inSkippedElement); err != nil {
				return err
			}
		case xml.EndElement:
			open--
		}
	}
	return nil
}

// nestedDestinationError refuses t, an element the edge skips (inside
// what it skips, see nestedConstructError, or directly inside an embedded
// resource), named like a phone destination of the table or operationId
// (see unreadInputOf; its local name, in any letter case or namespace or
// folding onto it:
// <phoneNumber>+1900...</phoneNumber>, <target> in a PUT's
// simultaneousRingSettings), or whose name or rel attribute (any letter
// case or namespace) names one (<item name="phoneNumber">+1900...</item>),
// naming the destination, never the value: UCWA writes neither (an
// embedded resource holds only properties, property lists, links and
// resources), and a pool whose model binds elements by name, or reads a
// property list's items by a name, would dial the number the element
// holds, which the edge never judged. where says where t stands.
//
// An element so named after another input of op (see inputNamed:
// <operationId>, <item name="ringDelay">) is refused too, whatever it
// holds, as JSON refuses a member so named where the edge does not read
// it (see unreadInputReason): such a pool would take a second value of
// the input, which the edge neither keyed the request by nor held to
// the input's rules.
func nestedDestinationError(op *Operation, t xml.StartElement, body []byte, at int, where string) *Error {
	d := unreadInputOf(t.Name.Local)
	in := ""
	for i := 0; d == nil && i < len(t.Attr); i++ {
		if a := t.Attr[i]; a.Name.Space != "xmlns" && (strings.EqualFold(a.Name.Local, "name") || strings.EqualFold(a.Name.Local, "rel")) {
			d = unreadInputOf(a.Value)
			if in == "" {
				in = inputNamed(op, a.Value)
			}
		}
	}
	if d != nil {
		in = d.name
	} else if local := inputNamed(op, t.Name.Local); local != "" {
		in = local
	}
	if in == "" {
		return nil
	}
	return parameterError([]Parameter{{Name: in,
		Reason: "is given in the body as an XML element, or an element's name or rel, " + where + ", at " + position(body, int64(at)) +
			", where the edge does not judge it; give it as a <property>'s text"}})
}

// Where nestedDestinationError finds an element.
const (
	inSkippedElement   = "inside an element whose content the edge does not read"
	inEmbeddedResource = "inside an embedded resource"
)

// xmlConstructs are the elements through which UCWA's XML gives inputs,
// links and embedded resources.
var xmlConstructs = [...]string{"property", "propertyList", "link", "resource"}

// nestedConstructError refuses t, an element inside what the edge skips
// (a <propertyList>'s content, a <link>'s, an embedded resource's
// property's or unknown element's), when it is one of xmlConstructs by
// its local name, in any letter case and namespace. UCWA puts them only
// in the body's root and in the resources it embeds, where the edge
// reads them; a pool that finds them wherever they stand (an XPath
// //property, XmlReader.ReadToFollowing, XDocument.Descendants) would
// read a property, a link or an embedded resource, and the number it
// holds, that the edge never judged:
// <propertyList name="x"><property name="phoneNumber">+1900...</property></propertyList>,
// or a <resource rel="simultaneousRingSettings"> inside a <link>.
func nestedConstructError(t xml.StartElement, body []byte, at int) *Error {
	for _, c := range xmlConstructs {
		if strings.EqualFold(t.Name.Local, c) {
			return deserializationError("A <" + c + "> inside an element whose content the edge does not read, at " + position(body, int64(at)) +
				"; UCWA gives properties, property lists, links and resources only in the body's root element and in the resources it embeds.")
		}
	}
	return nil
}

// checkAttrs refuses an element with the same attribute twice, which XML
// forbids ("Unique Att Spec") but encoding/xml lets through: the pool
// might read the other one. It also refuses xmlns:p="", which Namespaces
// in XML forbids but encoding/xml takes as binding p to no namespace, so
// that p:name would read as name here while a pool sees another attribute,
// any attribute of XML Schema instance (see isXSIAttr) or of .NET
// serialization (see serializationNamespace), and an attribute named
// like a phone destination of the table (see attrDestinationError).
func checkAttrs(t xml.StartElement, body []byte, at int) *Error {
	for _, a := range t.Attr {
		if a.Name.Space == "xmlns" && a.Value == "" {
			return deserializationError("An element declares the namespace prefix \"" + a.Name.Local + "\" empty (xmlns:" + a.Name.Local + "=\"\"), which XML forbids, at " + position(body, int64(at)) + ".")
		}
		if isXSIAttr(a) {
			return deserializationError("An element has an XML Schema instance attribute (xsi:" + xsiLocal(a.Name.Local) + "), at " + position(body, int64(at)) + "; UCWA bodies have none.")
		}
		if a.Name.Space == serializationNamespace {
			return deserializationError("An element has a .NET serialization attribute (" + serializationLocal(a.Name.Local) + " in " + serializationNamespace + "), at " + position(body, int64(at)) + "; UCWA bodies have none.")
		}
		if err := attrDestinationError(a, body, at); err != nil {
			return err
		}
	}
	twice := func(a xml.Attr) *Error {
		return deserializationError("An element has the attribute \"" + a.Name.Local + "\" twice, at " + position(body, int64(at)) + ".")
	}
	// A few attributes are compared one by one, which costs no
	// allocation; many go through a map, so that a tag of thousands
	// stays linear (as JSON's nameSet does).
	if len(t.Attr) <= maxAttrsCompared {
		for i, a := range t.Attr {
			for _, b := range t.Attr[:i] {
				if a.Name == b.Name {
					return twice(a)
				}
			}
		}
		return nil
	}
	seen := make(map[xml.Name]struct{}, len(t.Attr))
	for _, a := range t.Attr {
		if _, dup := seen[a.Name]; dup {
			return twice(a)
		}
		seen[a.Name] = struct{}{}
	}
	return nil
}

// attrDestinationError refuses an attribute, on any element (the root,
// a property, a link, an item, an embedded resource), whose local name is
// a phone destination of the table or operationId (see unreadInputOf) in
// any letter case or folding onto it (<input to="tel:+1900...">, <link rel="x" href="/y" p:PhoneNumber="..."/>),
// unless its value is blank or one of the destination's words (see
// namedDestination.allows). UCWA gives every input as a <property>'s text
// and names no attribute so; the edge reads no such attribute, and a pool
// whose model maps attributes too (XmlSerializer's [XmlAttribute], a
// reader matching inputs by local name wherever they stand) would dial,
// store or forward to a number the edge never judged. It names the
// destination by its documented spelling, never the value.
func attrDestinationError(a xml.Attr, body []byte, at int) *Error {
	if a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns" {
		return nil
	}
	d := unreadInputOf(a.Name.Local)
	if d == nil || d.allows(a.Value) {
		return nil
	}
	return parameterError([]Parameter{{Name: d.name,
		Reason: "is given in the body as an XML attribute, at " + position(body, int64(at)) + ", where the edge does not judge it; give it as a <property>'s text"}})
}

// xsiNamespace is the namespace of XML Schema instance attributes.
const xsiNamespace = "http://www.w3.org/2001/XMLSchema-instance"

// isXSIAttr reports whether a is an XML Schema instance attribute (in its
// namespace, or with the prefix xsi left undeclared, which encoding/xml
// keeps as the namespace). A .NET reader honours them: xsi:nil="true"
// makes a DataContractSerializer read null where the edge read the
// element's text, and xsi:type chooses the type, and so the reading, of
// the value; no UCWA document carries them (the reference shows none),
// so the edge refuses them rather than judge a value the pool may not
// read. Declaring the prefix (xmlns:xsi, as XmlSerializer does on the
// root) is not such an attribute.
func isXSIAttr(a xml.Attr) bool {
	return a.Name.Space == xsiNamespace || strings.EqualFold(a.Name.Space, "xsi")
}

// xsiLocal is an XML Schema instance attribute's name for a message: the
// attributes XML Schema defines, or "..." for any other (which could hold
// anything).
func xsiLocal(local string) string {
	switch local {
	case "nil", "type", "schemaLocation", "noNamespaceSchemaLocation":
		return local
	}
	return "..."
}

// serializationNamespace is the namespace of the attributes by which
// .NET's DataContractSerializer (and NetDataContractSerializer) writes
// object references and types: z:Id, z:Ref, z:Type, z:Assembly, z:Size.
// A pool reading with one resolves <link z:Ref="i1"/> to the element
// marked z:Id="i1", wherever it stands, and z:Type chooses the type it
// builds, as Json.NET does with "$ref" and "$type", which the JSON
// decoder refuses: the edge would judge an element the pool does not
// read, or not judge one it reads. No UCWA document carries them.
const serializationNamespace = "http://schemas.microsoft.com/2003/10/Serialization/"

// serializationLocal is a serialization attribute's name for a message:
// one .NET writes, or "..." for any other.
func serializationLocal(local string) string {
	switch local {
	case "Id", "Ref", "Type", "Assembly", "FactoryType", "Size":
		return "z:" + local
	}
	return "z:..."
}

// maxAttrsCompared is how many attributes checkAttrs compares pairwise.
const maxAttrsCompared = 16

func attr(t xml.StartElement, name string) (string, bool) {
	for _, a := range t.Attr {
		if a.Name.Space == "" && a.Name.Local == name {
			return a.Value, true
		}
	}
	return "", false
}

// attrValueSpan returns where the value of the attribute written as name
// sits in a start tag, between its quotes, and false if the tag has no
// attribute written so. The decoder has already checked the tag, but every
// step is still bounds-checked: a tag it reports differently (a prefix
// bound to a namespace it resolves to none, say) must not read past it.
func attrValueSpan(tag []byte, name string) (from, to int, ok bool) {
	i := bytes.IndexAny(tag, " \t\r\n") // after the element name
	if i < 0 {
		return 0, 0, false
	}
	for i < len(tag) {
		for i < len(tag) && isXMLSpace(tag[i]) {
			i++
		}
		n := i
		for i < len(tag) && tag[i] != '=' && !isXMLSpace(tag[i]) {
			i++
		}
		attrName := string(tag[n:i])
		for i < len(tag) && tag[i] != '"' && tag[i] != '\'' {
			i++
		}
		if i >= len(tag) {
			return 0, 0, false
		}
		from = i + 1
		end := bytes.IndexByte(tag[from:], tag[i])
		if end < 0 {
			return 0, 0, false
		}
		to = from + end
		if attrName == name {
			return from, to, true
		}
		i = to + 1
	}
	return 0, 0, false
}

// normalizedAttr returns an attribute's value (value, as encoding/xml
// read it from raw, written between quote characters) as XML 1.0
// §3.3.3 normalizes it, and so as a pool's XmlReader reads it: every
// white space character written as it is (tab, line feed, carriage
// return; a CR LF pair as one) is a space, and one written as a character
// reference stays itself. encoding/xml keeps the literal ones (turning
// line ends into line feeds), which would leave the edge judging a value
// the pool does not read ("data:,a<TAB>b" where the pool reads
// "data:,a b"), so a value written with any is read again from raw.
func normalizedAttr(value string, quote byte, raw, body []byte, at int) (string, *Error) {
	if !bytes.ContainsAny(raw, "\t\n\r") {
		return value, nil
	}
	tag := make([]byte, 0, len(raw)+8)
	tag = append(tag, "<a v="...)
	tag = append(tag, quote)
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '\r' && i+1 < len(raw) && raw[i+1] == '\n' {
			i++
		}
		if isXMLSpace(c) {
			c = ' '
		}
		tag = append(tag, c)
	}
	tag = append(tag, quote, '/', '>')
	d := xml.NewDecoder(bytes.NewReader(tag))
	d.Strict = true
	if tok, err := d.Token(); err == nil {
		if t, ok := tok.(xml.StartElement); ok && len(t.Attr) == 1 {
			return t.Attr[0].Value, nil
		}
	}
	// The body's decoder read raw as an attribute value already, so this
	// is not reached; were it, the value is not one to judge.
	return "", deserializationError("An attribute value cannot be read, at " + position(body, int64(at)) + ".")
}

func isXMLSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// directiveError refuses a DOCTYPE (and so any entity definition) or
// other <!...> directive, wherever it sits in the body.
func directiveError(body []byte, at int) *Error {
	return deserializationError("The XML body has a DOCTYPE or other directive, at " + position(body, int64(at)) + "; UCWA bodies have none.")
}

// xmlSyntax explains an encoding/xml error without quoting the body:
// its messages can hold property text ("invalid character entity
// &T19005551234"), and no property value may reach a message or a log.
func xmlSyntax(body []byte, d *xml.Decoder, err error) *Error {
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return deserializationError("The XML body is malformed on line " + strconv.Itoa(se.Line) + ": " + xmlProblem(se.Msg) + ".")
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return deserializationError("The XML body ends before its elements are closed.")
	}
	return deserializationError("The XML body is malformed at " + position(body, d.InputOffset()) + ": " + xmlProblem(err.Error()) + ".")
}

// xmlProblems turn the start of an encoding/xml message into a fixed
// explanation; the rest of such a message may quote the body.
var xmlProblems = []struct{ prefix, problem string }{
	{"unexpected EOF", "unexpected end of input"},
	{"unexpected end element", "an end tag without its start tag"},
	{"element <", "an element closed by the end tag of another"},
	{"expected element name", "a tag without an element name"},
	{"invalid characters between </", "a malformed end tag"},
	{"expected target name", "a processing instruction without a target"},
	{"invalid sequence", "a malformed comment"},
	{"invalid <![ sequence", "a malformed CDATA section"},
	{"expected /> in element", "a malformed start tag"},
	{"expected attribute name", "a malformed attribute"},
	{"attribute name without =", "a malformed attribute"},
	{"unquoted or missing attribute value", "a malformed attribute"},
	{"unescaped < inside quoted string", "a malformed attribute"},
	{"unescaped ]]> not in CDATA section", "]]> outside a CDATA section"},
	{"invalid character entity", "an undefined or malformed character reference"},
	{"invalid UTF-8", "invalid UTF-8"},
	{"illegal character code", "a character XML does not allow"},
	{"invalid XML name", "an invalid name"},
	{"xml: unsupported version", "an XML version other than 1.0"},
	{"xml: encoding", "an encoding other than UTF-8"},
	{"xml: opening charset", "an encoding other than UTF-8"},
}

func xmlProblem(msg string) string {
	for _, p := range xmlProblems {
		if strings.HasPrefix(msg, p.prefix) {
			return p.problem
		}
	}
	return "malformed XML"
}

// appendXMLText appends s escaped as XML character data, exactly as
// xml.EscapeText does (quotes and line ends too, so the text also fits an
// attribute value; a character XML does not allow becomes U+FFFD).
func appendXMLText(dst []byte, s string) []byte {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '"':
			dst = append(dst, "&#34;"...)
		case r == '\'':
			dst = append(dst, "&#39;"...)
		case r == '&':
			dst = append(dst, "&amp;"...)
		case r == '<':
			dst = append(dst, "&lt;"...)
		case r == '>':
			dst = append(dst, "&gt;"...)
		case r == '\t':
			dst = append(dst, "&#x9;"...)
		case r == '\n':
			dst = append(dst, "&#xA;"...)
		case r == '\r':
			dst = append(dst, "&#xD;"...)
		case r == utf8.RuneError && size == 1 || !isXMLChar(r):
			dst = append(dst, "\uFFFD"...)
		default:
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return dst
}

// isXMLChar reports whether XML 1.0 allows r in a document.
func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}
