package ucwa

import (
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

const (
	jsonEmbeddedWhere = `"` + embeddedName + `"`
	xmlEmbeddedWhere  = "a <resource> inside the body's"
)

// isEmbeddedName reports whether a top-level JSON name is "_embedded" in
// any letter case or folding onto it.
func isEmbeddedName(name []byte) bool {
	if plainName(name) {
		return equalFoldASCII(embeddedName, name)
	}
	folded, _ := foldLookalike(string(name))
	return equalFoldASCII(embeddedName, folded)
}

// jsonEmbedded checks the value of "_embedded" at the given depth: an
// object of embedded resources (HAL's shape), or an array of them; any
// other value is skipped.
func (s *jsonScanner) jsonEmbedded(depth int) *Error {
	if err := s.enter(depth); err != nil {
		return err
	}
	switch {
	case s.pos < len(s.body) && s.body[s.pos] == '{':
		return s.object(jsonEmbeddedWhere, embeddedName+".", depth, func(s *jsonScanner, _ []byte, _ int) *Error {
			return s.jsonEmbeddedResources(depth + 1)
		}, noLookalike)
	case s.pos < len(s.body) && s.body[s.pos] == '[':
		return s.jsonEmbeddedResources(depth)
	}
	return s.skipValue(depth)
}

// jsonEmbeddedResources checks one member of "_embedded": a resource, an
// array of them (HAL allows both), or anything else, which is skipped.
func (s *jsonScanner) jsonEmbeddedResources(depth int) *Error {
	switch {
	case s.pos < len(s.body) && s.body[s.pos] == '{':
		return s.jsonEmbeddedResource(depth)
	case s.pos < len(s.body) && s.body[s.pos] == '[':
		if err := s.enter(depth); err != nil {
			return err
		}
		return s.array(depth, func(s *jsonScanner) *Error {
			if s.pos < len(s.body) && s.body[s.pos] == '{' {
				return s.jsonEmbeddedResource(depth + 1)
			}
			return s.skipValue(depth + 1)
		})
	}
	return s.skipValue(depth)
}

// jsonEmbeddedResource checks an embedded resource's object: its
// properties, its links and the resources it embeds in turn.
func (s *jsonScanner) jsonEmbeddedResource(depth int) *Error {
	if err := s.enter(depth); err != nil {
		return err
	}
	return s.object(jsonEmbeddedWhere, embeddedName+".", depth, func(s *jsonScanner, name []byte, at int) *Error {
		if d := namedDestinationOf(name); d != nil {
			return s.jsonEmbeddedValue(d, depth+1, at)
		}
		folded := name
		if !plainName(name) {
			f, _ := foldLookalike(string(name))
			folded = []byte(f)
		}
		switch {
		case equalFoldASCII(embeddedName, folded):
			return s.jsonEmbedded(depth + 1)
		case equalFoldASCII(linksName, folded):
			if s.pos < len(s.body) && s.body[s.pos] == '{' {
				if err := s.enter(depth + 1); err != nil {
					return err
				}
				return s.object(jsonEmbeddedWhere, embeddedName+".", depth+1, func(s *jsonScanner, name []byte, at int) *Error {
					if d := namedDestinationOf(name); d != nil {
						return embeddedError(d, jsonEmbeddedWhere, s.body, at)
					}
					return s.skipValue(depth + 2)
				}, noLookalike)
			}
		}
		return s.skipValue(depth + 1)
	}, noLookalike)
}

// jsonEmbeddedValue checks the value of a property named like the
// destination d in an embedded resource: null, or a string d allows.
func (s *jsonScanner) jsonEmbeddedValue(d *namedDestination, depth, at int) *Error {
	ok, err := s.destinationAllowed(d, depth)
	if err == nil && !ok {
		err = embeddedError(d, jsonEmbeddedWhere, s.body, at)
	}
	return err
}

// enter refuses an object or array at depth, as skipValue does, beyond
// the depth encoding/json takes.
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
// <resource> (its start tag read), the resources it nests in turn
// included. Elements are recognised by their local name in any letter
// case and in any namespace, and names and rels in any attribute so
// named: a pool reading loosely might read any of them.
func xmlEmbedded(d *xml.Decoder, body []byte) *Error {
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
			return nil
		case xml.StartElement:
			if err := checkAttrs(t, body, before); err != nil {
				return err
			}
			var e *Error
			switch strings.ToLower(t.Name.Local) {
			case "resource":
				e = xmlEmbedded(d, body)
			case "property":
				e = xmlEmbeddedProperty(d, body, t, before)
			case "propertylist":
				e = xmlEmbeddedNamed(t, "name", body, before)
			case "link":
				e = xmlEmbeddedNamed(t, "rel", body, before)
			}
			if e != nil {
				return e
			}
			if name := strings.ToLower(t.Name.Local); name != "resource" && name != "property" {
				if err := skipXML(d, body); err != nil {
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
			if dest := namedDestinationOf(a.Value); dest != nil {
				return embeddedError(dest, xmlEmbeddedWhere, body, at)
			}
		}
	}
	return nil
}

// xmlEmbeddedProperty reads an embedded <property> to its end tag and
// refuses it when it is named like a destination and its text is not one
// the destination allows (an element inside it never is).
func xmlEmbeddedProperty(d *xml.Decoder, body []byte, t xml.StartElement, at int) *Error {
	var dest *namedDestination
	for _, a := range t.Attr {
		if strings.EqualFold(a.Name.Local, "name") {
			if dest = namedDestinationOf(a.Value); dest != nil {
				break
			}
		}
	}
	var text strings.Builder
	allowed := true
	for depth := 1; depth > 0; {
		before := int(d.InputOffset())
		tok, err := d.Token()
		if err != nil {
			return xmlSyntax(body, d, err)
		}
		switch tt := tok.(type) {
		case xml.Directive:
			return directiveError(body, before)
		case xml.CharData:
			if depth == 1 {
				text.Write(tt)
			}
		case xml.StartElement:
			if err := checkAttrs(tt, body, before); err != nil {
				return err
			}
			allowed = false
			depth++
		case xml.EndElement:
			depth--
		}
	}
	if dest != nil && (!allowed || !dest.allows(text.String())) {
		return embeddedError(dest, xmlEmbeddedWhere, body, at)
	}
	return nil
}
