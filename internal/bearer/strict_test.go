package bearer

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestHasDuplicateMember: member names given twice at the top level of
// an object, compared as a decoder reads them.
func TestHasDuplicateMember(t *testing.T) {
	for _, tc := range []struct {
		json string
		want bool
	}{
		{`{}`, false},
		{` { "a" : 1 , "b" : [1, {"a": 2}] } `, false},
		{`{"a":1,"a":2}`, true},
		{`{"exp":1,"\u0065xp":2}`, true},
		{`{"a\"b":1,"a\u0022b":2}`, true},
		{`{"a\\":1,"a\u005c":2}`, true},
		{`{"\ud83d\ude00":1,"😀":2}`, true},
		{"{\"a\xff\":1,\"a\xfe\":2}", true}, // both read as "a\ufffd"
		{`{"A":1,"a":2}`, false},
		{`{"x":{"a":1,"a":2},"y":[{"b":1,"b":2}],"z":"}{][\"a\":"}`, false},
		{`{"s":"a,b","t":true,"n":null,"f":-1.5e3,"s":0}`, true},
		{`{"a":{"b":{"c":[[[]]]}},"b":1,"c":2,"a":3}`, true},
	} {
		got, err := hasDuplicateMember([]byte(tc.json))
		if err != nil || got != tc.want {
			t.Errorf("%s: %v, %v; want %v", tc.json, got, err, tc.want)
		}
		if ref, ok := duplicateMemberReference([]byte(tc.json)); !ok || ref != tc.want {
			t.Errorf("%s: the reference says %v (%v), want %v", tc.json, ref, ok, tc.want)
		}
	}
	many := []byte(`{"a0":0`)
	for i := 1; i < 100; i++ {
		many = append(many, `,"a`+string(rune('0'+i%10))+string(rune('a'+i/10))+`":0`...)
	}
	for _, tail := range []struct {
		json string
		want bool
	}{{`}`, false}, {`,"a0":1}`, true}, {`,"a9i":1}`, true}, {`,"zz":1}`, false}} {
		if got, err := hasDuplicateMember(append(many[:len(many):len(many)], tail.json...)); err != nil || got != tail.want {
			t.Errorf("100 members then %s: %v, %v; want %v", tail.json, got, err, tail.want)
		}
	}
}

// FuzzHasDuplicateMember: on every JSON object encoding/json accepts,
// the scanner agrees with a reference that reads the object with
// encoding/json's tokenizer; on anything else it returns without
// panicking.
func FuzzHasDuplicateMember(f *testing.F) {
	for _, seed := range []string{`{"a":1,"a":2}`, `{"exp":1,"\u0065xp":2}`, `{"x":{"a":[1,"]"]},"y":"\\"}`, "{\"a\xff\":1,\"a\xfe\":2}", `[1]`, `{"a":`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := hasDuplicateMember(data)
		want, ok := duplicateMemberReference(data)
		if !ok {
			return
		}
		if err != nil || got != want {
			t.Fatalf("%q: %v, %v; the reference says %v", data, got, err, want)
		}
	})
}

// duplicateMemberReference is hasDuplicateMember done slowly with
// encoding/json's tokenizer; ok is false when data is not a JSON object
// that encoding/json accepts.
func duplicateMemberReference(data []byte) (dup, ok bool) {
	var m map[string]any
	if json.Unmarshal(data, &m) != nil || m == nil {
		return false, false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil {
		return false, false
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return false, false
		}
		name := t.(string)
		if seen[name] {
			return true, true
		}
		seen[name] = true
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return false, false
		}
	}
	return false, true
}
