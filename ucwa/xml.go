package ucwa

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strconv"
	"strings"
)

// decodeXML reads an XML startPhoneAudio body:
//
//	<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa">
//	  <property name="to">sip:john@contoso.com</property>
//	  <propertyList name="x"><item>v</item></propertyList>
//	  <link rel="customContent" href="data:..."/>
//	</input>
//
// A DOCTYPE (and so any entity definition) is refused outright.
func decodeXML(body []byte) (*Request, *Error) {
	r := &Request{Format: XML, raw: body}
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = true
	seen := make(map[string]string, 8)
	rootSeen, rootDone := false, false
	for {
		before := int(d.InputOffset())
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, xmlSyntax(body, d, err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return nil, deserializationError("The XML body has a DOCTYPE or other directive, at " + position(body, int64(before)) + "; UCWA bodies have none.")
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return nil, deserializationError("The XML body has text outside any property, at " + position(body, int64(before)) + ".")
			}
		case xml.StartElement:
			switch {
			case rootDone:
				return nil, deserializationError("The XML body has a second root element, at " + position(body, int64(before)) + ".")
			case !rootSeen:
				if t.Name.Local != "input" || (t.Name.Space != Namespace && t.Name.Space != "") {
					return nil, deserializationError(`The XML body's root element must be <input xmlns="` + Namespace + `">, not <` + t.Name.Local + ">.")
				}
				rootSeen = true
			default:
				if err := r.decodeXMLChild(d, body, t, before, seen); err != nil {
					return nil, err
				}
			}
		case xml.EndElement: // only the root's end reaches here
			rootDone = true
		}
	}
	if !rootDone {
		return nil, deserializationError("The XML body has no <input> element.")
	}
	return r, nil
}

// decodeXMLChild reads one element inside <input>. Elements other than
// property, propertyList and link are skipped and forwarded as they are.
func (r *Request) decodeXMLChild(d *xml.Decoder, body []byte, t xml.StartElement, start int, seen map[string]string) *Error {
	if t.Name.Space != Namespace && t.Name.Space != "" {
		return skipXML(d, body)
	}
	switch t.Name.Local {
	case "property", "propertyList":
		name, ok := attr(t, "name")
		if !ok {
			return deserializationError("A <" + t.Name.Local + "> without a name attribute, at " + position(body, int64(start)) + ".")
		}
		if err := checkDuplicate(seen, name, body, start); err != nil {
			return err
		}
		f, known := propertyField(name)
		if t.Name.Local == "propertyList" {
			if known {
				r.typeErr[f] = "must be a single value, not a propertyList"
			}
			return skipXML(d, body)
		}
		text, sp, err := xmlText(d, body)
		if err != nil {
			return err
		}
		if known {
			r.set(f, text, sp)
		}
	case "link":
		rel, _ := attr(t, "rel")
		if !strings.EqualFold(rel, fieldNames[CustomContent]) {
			return skipXML(d, body)
		}
		if err := checkDuplicate(seen, "link "+rel, body, start); err != nil {
			return err
		}
		if err := skipXML(d, body); err != nil {
			return err
		}
		href, _ := attr(t, "href")
		end := int(d.InputOffset())
		r.set(CustomContent, href, span{start: start, end: end, element: true, qname: qualifiedName(body[start:end])})
	default:
		return skipXML(d, body)
	}
	return nil
}

// xmlText reads a property's text up to its end tag, and where that text
// sits. Comments inside are allowed (their text is not part of the value);
// child elements are not.
func xmlText(d *xml.Decoder, body []byte) (string, span, *Error) {
	sp := span{start: int(d.InputOffset())}
	var text []byte
	for {
		before := int(d.InputOffset())
		tok, err := d.Token()
		if err != nil {
			return "", sp, xmlSyntax(body, d, err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			text = append(text, t...)
		case xml.StartElement:
			return "", sp, deserializationError("A <property> holds an element, at " + position(body, int64(before)) + "; a property holds text only.")
		case xml.EndElement:
			sp.end = before
			return string(text), sp, nil
		}
	}
}

// skipXML skips the rest of the current element, still checking syntax.
func skipXML(d *xml.Decoder, body []byte) *Error {
	if err := d.Skip(); err != nil {
		return xmlSyntax(body, d, err)
	}
	return nil
}

func attr(t xml.StartElement, name string) (string, bool) {
	for _, a := range t.Attr {
		if a.Name.Space == "" && a.Name.Local == name {
			return a.Value, true
		}
	}
	return "", false
}

// qualifiedName is an element's name as written in its start tag
// (prefix included), so that a rewritten element keeps its namespace.
func qualifiedName(elem []byte) string {
	end := bytes.IndexAny(elem, " \t\r\n/>")
	if len(elem) < 2 || end < 1 {
		return "link"
	}
	return string(elem[1:end])
}

func xmlSyntax(body []byte, d *xml.Decoder, err error) *Error {
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return deserializationError("The XML body is malformed on line " + strconv.Itoa(se.Line) + ": " + se.Msg + ".")
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return deserializationError("The XML body ends before its elements are closed.")
	}
	return deserializationError("The XML body is malformed at " + position(body, d.InputOffset()) + ": " + err.Error() + ".")
}

// appendXMLText appends s escaped as XML character data.
func appendXMLText(dst []byte, s string) []byte {
	var buf bytes.Buffer
	_ = xml.EscapeText(&buf, []byte(s)) // writing to a Buffer cannot fail
	return append(dst, buf.Bytes()...)
}

// appendXMLLink appends a whole <link rel=... href=.../> element.
func appendXMLLink(dst []byte, qname, rel, href string) []byte {
	dst = append(dst, '<')
	dst = append(dst, qname...)
	dst = append(dst, ` rel="`...)
	dst = appendXMLText(dst, rel)
	dst = append(dst, `" href="`...)
	dst = appendXMLText(dst, href)
	return append(dst, `"/>`...)
}
