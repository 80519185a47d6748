package ucwa

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// marker is a phone number put in every value; no error may show it.
const marker = "+19005551234"

// markerDigits are the digits no error text may hold, however the marker
// was escaped or split.
var markerDigits = []string{"19005551234", "9005551234", "5551234"}

// assertNoMarker fails if an error's text holds the marker.
func assertNoMarker(t *testing.T, what string, err *Error) {
	t.Helper()
	if err == nil {
		return
	}
	texts := []string{err.Error(), string(err.Marshal(JSON)), string(err.Marshal(XML))}
	for _, p := range err.Parameters {
		texts = append(texts, p.Name, p.Reason)
	}
	for _, text := range texts {
		for _, d := range markerDigits {
			if strings.Contains(text, d) {
				t.Errorf("%s: the error shows a value: %s", what, text)
				return
			}
		}
	}
}

// markerBodies are bodies of op with the marker as the value of property
// p, broken in every way the decoders explain: each reaches an error path
// with the marker near where the error is found.
func markerBodies(op *Operation, p *Property) map[string][]string {
	name := p.Name
	v := marker
	jsonProp := `"` + name + `":"` + v + `"`
	if p.Type == DataURLValue {
		jsonProp = `"_links":{"` + name + `":{"href":"` + v + `"}}`
	}
	root := op.XMLRoot
	open, closeRoot := "<"+root+` xmlns="`+Namespace+`">`, "</"+root+">"
	xmlProp := `<property name="` + name + `">` + v + `</property>`
	if p.Type == DataURLValue {
		xmlProp = `<link rel="` + name + `" href="` + v + `"/>`
	}
	return map[string][]string{
		"json": {
			`{` + jsonProp + `}`, // the value itself, checked by Clean
			`{` + jsonProp,       // unterminated
			`{` + jsonProp + `,}`,
			`{` + jsonProp + ` "x":1}`,
			`{"` + name + `":"` + v + "\x01" + `"}`,
			`{"` + name + `":"` + v + `\x"}`,
			`{"` + name + `":"` + v + "\xff" + `"}`,
			`{"` + name + `":` + strings.TrimPrefix(v, "+") + `}`,
			`{"` + name + `":` + strings.TrimPrefix(v, "+") + `.}`,
			`{"` + name + `":` + strings.TrimPrefix(v, "+") + `e}`,
			`{"` + name + `":-` + strings.TrimPrefix(v, "+") + `x}`,
			`{"` + name + `":[` + strings.TrimPrefix(v, "+") + `}`,
			`{"` + name + `":t` + strings.TrimPrefix(v, "+") + `}`,
			`{` + jsonProp + `}` + v,
			`{` + jsonProp + `,` + jsonProp + `}`,
			`{"_links":` + `"` + v + `"}`,
			`{"_links":{"` + name + `":"` + v + `"}}`,
			// A property written as a link, inside an embedded resource
			// (keyed by the marker too), or behind a $ref.
			`{"_links":{"` + name + `":{"href":"tel:` + v + `"}}}`,
			`{"_links":{"` + strings.ToUpper(name) + `":{"href":"` + v + `"}}}`,
			`{"_embedded":{"` + v + `":{"` + name + `":"` + v + `"}}}`,
			`{"_embedded":{"x":{"_embedded":{"y":{"` + name + `":"tel:` + v + `","ringDelay":` + strings.TrimPrefix(v, "+") + `}}}}}`,
			`{"_embedded":{"x":{"_links":{"` + name + `":{"href":"` + v + `"}}}}}`,
			`{"_links":{"x":{"$ref":"` + v + `"}},"` + name + `":"` + v + `"}`,
		},
		"xml": {
			open + xmlProp + closeRoot,
			open + `<property name="` + name + `">&T` + strings.TrimPrefix(v, "+") + `</property>` + closeRoot,
			open + `<property name="` + name + `">&` + strings.TrimPrefix(v, "+") + `;</property>` + closeRoot,
			open + `<property name="` + name + `">&#` + strings.TrimPrefix(v, "+") + `;</property>` + closeRoot,
			open + `<property name="` + name + `">` + v + `</propert>` + closeRoot,
			open + `<property name="` + name + `">` + v + `<` + strings.TrimPrefix(v, "+") + `/></property>` + closeRoot,
			open + `<property name="` + name + `">` + v + "\x01</property>" + closeRoot,
			open + `<property name="` + name + `">` + v + "\xff</property>" + closeRoot,
			open + `<property name="` + name + `">` + v,
			open + `<property name="` + name + `"><![CDATA[` + v,
			open + `<property name="` + name + `"><!-- ` + v + ` -- x --></property>` + closeRoot,
			open + `<property name="` + name + `">` + v + `]]></property>` + closeRoot,
			open + `<link rel="` + name + `" href="` + v + `></link>` + closeRoot,
			open + `<link rel="` + name + `" href=` + v + `/>` + closeRoot,
			open + `<property name="` + name + `" x="` + v + `" x="` + v + `">` + v + `</property>` + closeRoot,
			open + `<property name="` + name + `"><?` + v + `?></property>` + closeRoot,
			open + `<property name="` + name + `"><!DOCTYPE ` + v + `></property>` + closeRoot,
			open + xmlProp + closeRoot + v,
			open + xmlProp + xmlProp + closeRoot,
			`<?xml version="` + v + `"?>` + open + closeRoot,
			`<?xml version="1.0" encoding="` + v + `"?>` + open + closeRoot,
			open + `<propertyList name="` + name + `"><item>` + v + `</item></propertyList>` + closeRoot,
			// XML Schema instance attributes, named or valued with the
			// marker, and a nested resource.
			open + `<property xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" name="` + name + `" xsi:nil="` + v + `">` + v + `</property>` + closeRoot,
			open + `<property name="` + name + `" xsi:n` + strings.TrimPrefix(v, "+") + `="` + v + `">` + v + `</property>` + closeRoot,
			open + `<resource rel="x" href="` + v + `"><property name="` + name + `">` + v + `</property></resource>` + closeRoot,
		},
	}
}

// TestErrorsShowNoValue puts the marker number in every property of every
// operation, in bodies broken every way and in the query, and checks that
// no error (XML syntax errors included) shows it.
func TestErrorsShowNoValue(t *testing.T) {
	c := mustCleaner(t, "US", TelURI)
	for i := range testOps {
		op := &testOps[i]
		if op.Body == BatchBody {
			continue
		}
		for j := range op.Properties {
			p := &op.Properties[j]
			if op.Body == PropertiesBody {
				for kind, bodies := range markerBodies(op, p) {
					ct := map[string]string{"json": "application/json", "xml": "application/xml"}[kind]
					for _, body := range bodies {
						_, err := c.Intake(op, Incoming{Method: op.Method, Header: intakeHeader("Content-Type", ct, "If-Match", "1"), Body: []byte(body)})
						assertNoMarker(t, op.Rel+" "+p.Name+" "+body, err)
					}
				}
			}
			for _, query := range []string{
				p.Name + "=" + url.QueryEscape(marker),
				p.Name + "=" + url.QueryEscape(marker) + "&" + p.Name + "=" + url.QueryEscape(marker),
				strings.ToUpper(p.Name) + "=" + url.QueryEscape(marker),
				p.Name + "=" + url.QueryEscape(marker) + "%zz",
				p.Name + "=" + url.QueryEscape(marker) + ";",
				p.Name + "=" + url.QueryEscape(marker+" x"),
				p.Name + "=" + url.QueryEscape(strings.Repeat(marker, 30)),
			} {
				header := http.Header{"If-Match": {"1"}}
				var body []byte
				if op.Body == SDPBody {
					header.Set("Content-Type", "application/sdp")
					body = []byte("v=0 " + marker)
				}
				_, err := c.Intake(op, Incoming{Method: op.Method, Header: header, RawQuery: query, Body: body})
				assertNoMarker(t, op.Rel+" ?"+query, err)
			}
		}
		// The marker where a property name, a method or a media type
		// would be: those are echoed only when they are safe.
		_, err := c.Intake(op, Incoming{Method: marker, Header: http.Header{"Content-Type": {marker}}, Body: []byte(marker)})
		assertNoMarker(t, op.Rel+" method", err)
		_, err = c.Intake(op, Incoming{Method: op.Method, Header: http.Header{"Content-Type": {"application/json; charset=" + marker}, "If-Match": {"1"}}, Body: []byte("{}")})
		assertNoMarker(t, op.Rel+" charset", err)
	}
}
