package ucwa

import (
	"net/url"
	"testing"
)

// The startPhoneAudio properties, by their documented names.
const (
	OperationID   = "operationId"
	PhoneNumber   = "phoneNumber"
	Importance    = "importance"
	Subject       = "subject"
	ThreadID      = "threadId"
	To            = "to"
	CustomContent = "customContent"
)

// testOps is the default table, and spa its startPhoneAudio row, which
// most codec tests use.
var (
	testOps = DefaultOperations()
	spa     = mustOperation("startPhoneAudio")
)

func mustOperation(rel string) *Operation {
	op := FindOperation(testOps, rel)
	if op == nil {
		panic("no operation " + rel)
	}
	return op
}

// decodeOp decodes a body of op into a Request of its own, as Intake
// decodes one into its pooled box (see decodeInto).
func decodeOp(op *Operation, f Format, body []byte) (*Request, *Error) {
	r := new(Request)
	if err := decodeInto(r, op, f, body); err != nil {
		return nil, err
	}
	return r, nil
}

// decode decodes a startPhoneAudio body.
func decode(f Format, body []byte) (*Request, *Error) {
	return decodeOp(spa, f, body)
}

// cleanSPA cleans a startPhoneAudio body with "to" in the query ("" for
// no query) and returns the query's cleaned "to".
func cleanSPA(c *Cleaner, r *Request, queryTo string) (string, *Error) {
	raw := ""
	if queryTo != "" {
		raw = "to=" + url.QueryEscape(queryTo)
	}
	q, err := ParseQuery(spa, raw)
	if err != nil {
		return "", err
	}
	if _, err := c.Clean(spa, r, q); err != nil {
		return "", err
	}
	v, _ := q.Get(To)
	return v, nil
}

// problem returns the reason of a property's type problem in r, "" for
// none.
func problem(r *Request, name string) string {
	i := r.op.propertyIndex(name)
	if i < 0 || r.vals[i].problem == typeOK {
		return ""
	}
	return typeReasons[r.vals[i].problem]
}

// snapshotOf is every property's value and presence.
type snapshotOf [MaxProperties]struct {
	v  string
	ok bool
}

func snapshot(r *Request) snapshotOf {
	var s snapshotOf
	for i, p := range r.op.Properties {
		s[i].v, s[i].ok = r.Get(p.Name)
	}
	return s
}

func mustCleaner(t testing.TB, region string, format NumberFormat) *Cleaner {
	t.Helper()
	c, err := NewCleaner(region, format)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// simpleXML and fullXML run one XML reader alone.
func simpleXML(op *Operation, body []byte) (*Request, bool) {
	r := new(Request)
	if !decodeSimpleXML(r, op, body) {
		return nil, false
	}
	// The values are what counts; the copy they are cut from is the
	// simple reading's own.
	r.rawText = ""
	return r, true
}

func fullXML(op *Operation, body []byte) (*Request, *Error) {
	r := new(Request)
	if err := decodeFullXML(r, op, body); err != nil {
		return nil, err
	}
	return r, nil
}
