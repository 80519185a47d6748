package ucwa

import (
	"bytes"
	"unicode/utf8"
)

// decodeSimpleXML reads, in one pass and without encoding/xml, a body of
// op in the plain shape clients send (the root is op.XMLRoot):
//
//	<?xml version="1.0" encoding="utf-8"?>
//	<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa">
//	  <property name="to">sip:john@contoso.com</property>
//	</input>
//
// with nothing else: no comments, entities, CDATA, links, lists, other
// elements or attributes, carriage returns, or a name twice. It reports
// false for any body outside that shape, which decodeFullXML then reads
// (and, if it is wrong, explains). FuzzDecodeXML holds every body it
// accepts to decodeFullXML's reading of it. Its elements nest two deep at
// most (the root and its properties), so it needs no count of depth (see
// maxXMLDepth).
func decodeSimpleXML(r *Request, op *Operation, body []byte) bool {
	root := simpleXMLRoots[0]
	if op.XMLRoot == "resource" {
		root = simpleXMLRoots[1]
	}
	// Only a Request decoded before is cleared (see decodeJSON).
	if r.op != nil {
		*r = Request{}
	}
	r.Format, r.op, r.raw = XML, op, body
	rest := body
	for _, decl := range simpleXMLDecls {
		if after, ok := bytes.CutPrefix(rest, decl); ok {
			rest = after
			break
		}
	}
	rest = trimXMLSpace(rest)
	if after, ok := bytes.CutPrefix(rest, root.open); ok {
		rest = after
	} else if after, ok := bytes.CutPrefix(rest, root.bare); ok {
		rest = after
	} else {
		return false
	}
	var names [16][]byte
	n := 0
	for {
		rest = trimXMLSpace(rest)
		if after, ok := bytes.CutPrefix(rest, root.end); ok {
			return len(trimXMLSpace(after)) == 0
		}
		after, ok := bytes.CutPrefix(rest, simpleXMLProperty)
		if !ok {
			return false
		}
		quote := bytes.IndexByte(after, '"')
		if quote < 1 || n == len(names) || !simpleXMLName(after[:quote]) {
			return false
		}
		name := after[:quote]
		for _, prev := range names[:n] {
			// Both are ASCII (simpleXMLName), where ASCII folding is
			// the whole of bytes.EqualFold, and a length apart is no
			// match.
			if equalFoldASCII(prev, name) {
				return false // decodeFullXML explains the duplicate
			}
		}
		names[n] = name
		n++
		after, ok = bytes.CutPrefix(after[quote:], []byte(`">`))
		if !ok {
			return false
		}
		// The text ends at the first '<', which must begin the end tag:
		// the text holds none.
		end := simpleXMLTextEnd(after)
		if end < 0 || !bytes.HasPrefix(after[end:], simpleXMLPropertyEnd) {
			return false
		}
		if i := op.valueIndex(name); i >= 0 {
			start := len(body) - len(after)
			r.set(i, r.text(start, start+end), span{start: int32(start), end: int32(start + end)}, false)
		} else if strayDestination(op, name) != nil || op.linkIndex(name) >= 0 || xmlHALName(string(name)) {
			return false // decodeFullXML judges a destination op does not take, and a name of a link
		}
		rest = after[end+len(simpleXMLPropertyEnd):]
	}
}

var (
	simpleXMLDecls = [][]byte{
		[]byte(`<?xml version="1.0" encoding="utf-8"?>`),
		[]byte(`<?xml version="1.0" encoding="UTF-8"?>`),
		[]byte(`<?xml version="1.0"?>`),
	}
	simpleXMLRoots       = [2]simpleXMLRoot{newSimpleXMLRoot("input"), newSimpleXMLRoot("resource")}
	simpleXMLProperty    = []byte(`<property name="`)
	simpleXMLPropertyEnd = []byte(`</property>`)
)

// simpleXMLRoot is how a root element is written in the plain shape.
type simpleXMLRoot struct {
	open, bare, end []byte
}

func newSimpleXMLRoot(name string) simpleXMLRoot {
	return simpleXMLRoot{
		open: []byte(`<` + name + ` xmlns="` + Namespace + `">`),
		bare: []byte(`<` + name + `>`),
		end:  []byte(`</` + name + `>`),
	}
}

func trimXMLSpace(b []byte) []byte {
	for len(b) > 0 && isXMLSpace(b[0]) {
		b = b[1:]
	}
	return b
}

// simpleXMLASCII marks the ASCII characters of text an XML reader
// returns as it is: all but '<', '&', carriage return and the control
// characters other than tab and line feed.
var simpleXMLASCII = func() (ok [256]bool) {
	for c := range utf8.RuneSelf {
		ok[c] = !(c == '<' || c == '&' || c == '\r' || c < 0x20 && c != '\t' && c != '\n')
	}
	return ok
}()

// simpleXMLName accepts property names of ASCII letters, digits, '_'
// and '-', which an attribute holds as they are. A name with a '.' is a
// .NET model-binding spelling ("x.to"), which decodeFullXML judges (see
// lookalikeProperty).
func simpleXMLName(b []byte) bool {
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// simpleXMLTextEnd returns the index of the first '<' of b when the
// text before it is text an XML reader returns as it is, and -1
// otherwise (also when b holds no '<'). Such text is valid UTF-8 of
// characters XML allows, without markup, references, carriage returns
// (which readers turn into line feeds) or "]]>". A multi-byte character
// cannot run into the '<', which is no continuation byte, nor can "]]>".
func simpleXMLTextEnd(b []byte) int {
	for i := 0; i < len(b); {
		// The run of ASCII text, through a table.
		for i < len(b) && simpleXMLPlain[b[i]] {
			i++
		}
		if i >= len(b) {
			break
		}
		switch c := b[i]; {
		case c == '<':
			return i
		case c == ']':
			if bytes.HasPrefix(b[i:], []byte("]]>")) {
				return -1
			}
			i++
		case c < utf8.RuneSelf:
			return -1 // a reference, a carriage return or another control character
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 || !isXMLChar(r) {
				return -1
			}
			i += size
		}
	}
	return -1
}

// simpleXMLPlain is simpleXMLASCII without ']', which may begin "]]>".
var simpleXMLPlain = func() (ok [256]bool) {
	ok = simpleXMLASCII
	ok[']'] = false
	return ok
}()
