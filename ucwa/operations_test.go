package ucwa

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestDefaultOperationsCoverEveryDoor holds the table to every operation
// that can make a pool dial, store or forward to a number, with the
// destination kind of each number-bearing property.
func TestDefaultOperationsCoverEveryDoor(t *testing.T) {
	type dest map[string]DestinationKind
	want := []struct {
		rel, method string
		body        BodyKind
		scopes      []string
		dests       dest
		required    []string
	}{
		{"startPhoneAudio", "POST", PropertiesBody, scopesCall, dest{"phoneNumber": DialledNow, "to": DialledNow}, []string{"to"}},
		{"startPhoneAudioOnBehalfOfDelegator", "POST", PropertiesBody, scopesCall, dest{"phoneNumber": DialledNow, "to": DialledNow, "delegator": OnBehalfOf}, []string{"to"}},
		{"addPhoneAudio", "POST", PropertiesBody, scopesCall, dest{"phoneNumber": DialledNow, "to": DialledNow}, []string{"to"}},
		{"replaceWithPhoneAudio", "POST", PropertiesBody, []string{ScopeConversationsInitiate}, dest{"phoneNumber": DialledNow, "to": DialledNow}, []string{"to"}},
		{"continuePhoneAudio", "POST", PropertiesBody, scopesCall, dest{"phoneNumber": DialledNow}, nil},
		{"acceptWithPhoneAudio", "POST", NoBody, []string{ScopeConversationsInitiate}, dest{}, nil},
		{"startAudio", "POST", PropertiesBody, scopesCall, dest{"to": DialledNow}, []string{"to"}},
		{"startAudioOnBehalfOfDelegator", "POST", PropertiesBody, scopesCall, dest{"to": DialledNow, "delegator": OnBehalfOf}, []string{"to"}},
		{"startAudioVideo", "POST", PropertiesBody, scopesCall, dest{"to": DialledNow}, []string{"to"}},
		{"startAudioVideoOnBehalfOfDelegator", "POST", PropertiesBody, scopesCall, dest{"to": DialledNow, "delegator": OnBehalfOf}, []string{"to"}},
		{"startVideo", "POST", PropertiesBody, scopesCall, dest{"to": DialledNow}, []string{"to"}},
		{"addAudio", "POST", PropertiesBody, scopesCall, dest{"to": DialledNow}, []string{"to"}},
		{"addAudioVideo", "POST", PropertiesBody, scopesCall, dest{"to": DialledNow}, []string{"to"}},
		{"addVideo", "POST", PropertiesBody, scopesCall, dest{"to": DialledNow}, []string{"to"}},
		{"addParticipant", "POST", PropertiesBody, scopesCall, dest{"to": DialledNow}, []string{"to"}},
		{"continueAudio", "POST", PropertiesBody, scopesCall, dest{}, nil},
		{"continueAudioVideo", "POST", PropertiesBody, scopesCall, dest{}, nil},
		{"continueVideo", "POST", PropertiesBody, scopesCall, dest{}, nil},
		{"escalateAudio", "POST", SDPBody, scopesCall, dest{}, []string{"operationId", "sessionContext"}},
		{"escalateAudioVideo", "POST", SDPBody, scopesCall, dest{}, []string{"operationId", "sessionContext"}},
		{"startEmergencyCall", "POST", PropertiesBody, scopesCall, dest{"to": DialledNow}, []string{"to"}},
		{"makeMeAvailable", "POST", PropertiesBody, []string{ScopeUserReadWrite, ScopeConversationsReceive}, dest{"phoneNumber": StoredForLater}, nil},
		{"communication", "PUT", PropertiesBody, scopesCall, dest{"phoneNumber": StoredForLater}, nil},
		{"changeNumber", "POST", PropertiesBody, scopesUser, dest{"number": StoredForLater}, nil},
		{"phones", "POST", PropertiesBody, scopesUser, dest{"number": StoredForLater}, nil},
		{"phone", "PUT", PropertiesBody, scopesUser, dest{"number": StoredForLater}, nil},
		{"immediateForwardToContact", "POST", PropertiesBody, scopesUser, dest{"target": ForwardingTarget}, []string{"target"}},
		{"simultaneousRingToContact", "POST", PropertiesBody, scopesUser, dest{"target": ForwardingTarget}, []string{"target"}},
		{"unansweredCallToContact", "POST", PropertiesBody, scopesUser, dest{"target": ForwardingTarget}, []string{"target"}},
		{"callForwardingSettings", "PUT", PropertiesBody, scopesUser, dest{}, nil},
		{"simultaneousRingSettings", "PUT", PropertiesBody, scopesUser, dest{}, nil},
		{"unansweredCallSettings", "PUT", PropertiesBody, scopesUser, dest{}, nil},
		{"batch", "POST", BatchBody, []string{ScopeUserReadWrite, ScopeContactsReadWrite, ScopeConversationsInitiate, ScopeConversationsReceive, ScopeMeetingsReadWrite}, dest{}, nil},
	}
	ops := DefaultOperations()
	if len(ops) != len(want) {
		t.Errorf("%d operations, want %d", len(ops), len(want))
	}
	for _, w := range want {
		op := FindOperation(ops, w.rel)
		if op == nil {
			t.Errorf("%s: missing", w.rel)
			continue
		}
		if op.Method != w.method || op.Body != w.body || !slices.Equal(op.Scopes, w.scopes) {
			t.Errorf("%s: %s %v %v, want %s %v %v", w.rel, op.Method, op.Body, op.Scopes, w.method, w.body, w.scopes)
		}
		got := dest{}
		var required []string
		for _, p := range op.Properties {
			if p.Destination != NotDestination {
				got[p.Name] = p.Destination
			}
			if p.Required {
				required = append(required, p.Name)
			}
		}
		if !reflect.DeepEqual(got, w.dests) || !slices.Equal(required, w.required) {
			t.Errorf("%s: destinations %v required %v, want %v %v", w.rel, got, required, w.dests, w.required)
		}
		if op.Emergency != (w.rel == "startEmergencyCall") {
			t.Errorf("%s: emergency %v", w.rel, op.Emergency)
		}
		if op.IfMatch != (op.Method == "PUT") {
			t.Errorf("%s: If-Match %v", w.rel, op.IfMatch)
		}
		wantRoot := map[BodyKind]string{PropertiesBody: "input"}[op.Body]
		if op.Method == "PUT" {
			wantRoot = "resource"
		}
		if op.XMLRoot != wantRoot {
			t.Errorf("%s: XML root %q, want %q", w.rel, op.XMLRoot, wantRoot)
		}
	}
	// The reference's limits and ranges.
	limits := map[[2]string]int{
		{"startPhoneAudio", "operationId"}: 50, {"startPhoneAudio", "subject"}: 250, {"communication", "phoneNumber"}: 100,
		{"changeNumber", "number"}: 80, {"immediateForwardToContact", "target"}: 80, {"escalateAudio", "sessionContext"}: 50,
		{"startAudio", "sessionContext"}: 50,
	}
	for k, n := range limits {
		if p, ok := FindOperation(ops, k[0]).Property(k[1]); !ok || p.MaxLength != n {
			t.Errorf("%s %s: max length %v", k[0], k[1], p)
		}
	}
	if p, _ := FindOperation(ops, "unansweredCallToContact").Property("ringDelay"); p.Type != IntegerValue || p.Min != 5 || p.Max != 60 {
		t.Errorf("ringDelay %+v", p)
	}
}

func TestDefaultOperationsDeepCopy(t *testing.T) {
	a := DefaultOperations()
	if err := ValidateOperations(a); err != nil {
		t.Fatal(err)
	}
	op := FindOperation(a, "startPhoneAudio")
	op.Paths[0] = "/changed"
	op.Scopes[0] = "changed"
	op.Properties[0].Name = "changed"
	imp, _ := op.Property("importance")
	imp.Values[0] = "changed"
	b := DefaultOperations()
	if !reflect.DeepEqual(b, cloneOperations(defaultOperations)) {
		t.Fatal("changing a copy changed the defaults")
	}
	if p, _ := FindOperation(b, "startPhoneAudio").Property("importance"); p.Values[0] != "Normal" {
		t.Fatalf("enum values shared: %v", p.Values)
	}
	cfs := FindOperation(a, "callForwardingSettings")
	cfs.Embedded[1].Properties[0].Max = 99
	cfs.Embedded[1].Properties[1].Values[0] = "changed"
	if !reflect.DeepEqual(DefaultOperations(), cloneOperations(defaultOperations)) || unansweredCallSettingsProps[0].Max != 60 {
		t.Fatal("changing a copy's embedded resources changed the defaults")
	}
}

func TestValidateOperations(t *testing.T) {
	tests := []struct {
		name   string
		change func(ops []Operation) []Operation
		errHas string
	}{
		{"defaults", func(ops []Operation) []Operation { return ops }, ""},
		{"added path spelling", func(ops []Operation) []Operation {
			op := FindOperation(ops, "startPhoneAudio")
			op.Paths = append(op.Paths, "/communication/callViaWork")
			return ops
		}, ""},
		{"replaced scopes", func(ops []Operation) []Operation {
			FindOperation(ops, "changeNumber").Scopes = []string{"Custom.Scope"}
			return ops
		}, ""},
		{"unknown rel", func(ops []Operation) []Operation {
			return append(ops, Operation{Rel: "startTeleport", Method: "POST", Paths: []string{"/x"}, Scopes: []string{"a"}, Body: PropertiesBody})
		}, "not an operation the edge knows"},
		{"known rel with another method", func(ops []Operation) []Operation {
			FindOperation(ops, "startAudio").Method = "PUT"
			return ops
		}, "not an operation the edge knows"},
		{"rel twice", func(ops []Operation) []Operation {
			return append(ops, *FindOperation(ops, "addAudio"))
		}, "given twice"},
		{"no rel", func(ops []Operation) []Operation { return append(ops, Operation{}) }, "no rel"},
		{"suffix without slash", func(ops []Operation) []Operation {
			FindOperation(ops, "addAudio").Paths = []string{"audioVideo/addAudio"}
			return ops
		}, "must start with /"},
		{"suffix with a dot segment", func(ops []Operation) []Operation {
			FindOperation(ops, "addAudio").Paths = []string{"/a/../addAudio"}
			return ops
		}, "dot"},
		{"suffix with a trailing slash", func(ops []Operation) []Operation {
			FindOperation(ops, "addAudio").Paths = []string{"/addAudio/"}
			return ops
		}, "empty"},
		{"suffix with a query", func(ops []Operation) []Operation {
			FindOperation(ops, "addAudio").Paths = []string{"/addAudio?x=1"}
			return ops
		}, "ASCII without"},
		{"suffix outside ASCII", func(ops []Operation) []Operation {
			FindOperation(ops, "addAudio").Paths = []string{"/addAudió"}
			return ops
		}, "ASCII without"},
		{"no paths", func(ops []Operation) []Operation {
			FindOperation(ops, "addAudio").Paths = nil
			return ops
		}, "no paths"},
		{"suffix claimed twice for POST", func(ops []Operation) []Operation {
			op := FindOperation(ops, "addAudio")
			op.Paths = append(op.Paths, "/COMMUNICATION/startPhoneAudio")
			return ops
		}, `is also startPhoneAudio's`},
		{"no scopes", func(ops []Operation) []Operation {
			FindOperation(ops, "addAudio").Scopes = nil
			return ops
		}, "no scopes"},
		{"scope with a space", func(ops []Operation) []Operation {
			FindOperation(ops, "addAudio").Scopes = []string{"a b"}
			return ops
		}, "not a scope name"},
		{"body kind changed", func(ops []Operation) []Operation {
			FindOperation(ops, "escalateAudio").Body = PropertiesBody
			return ops
		}, "must stay"},
		{"emergency flag dropped", func(ops []Operation) []Operation {
			FindOperation(ops, "startEmergencyCall").Emergency = false
			return ops
		}, "must stay"},
		{"too many properties", func(ops []Operation) []Operation {
			op := FindOperation(ops, "addAudio")
			for i := range MaxProperties {
				op.Properties = append(op.Properties, Property{Name: "p" + strings.Repeat("x", i), Type: StringValue})
			}
			return ops
		}, "more than"},
		{"property twice", func(ops []Operation) []Operation {
			op := FindOperation(ops, "addAudio")
			op.Properties = append(op.Properties, Property{Name: "TO", Type: StringValue})
			return ops
		}, "given twice"},
		{"enum without values", func(ops []Operation) []Operation {
			op := FindOperation(ops, "startAudio")
			op.Properties = append(op.Properties, Property{Name: "x", Type: EnumValue})
			return ops
		}, "only an enum"},
		{"destination without a kind", func(ops []Operation) []Operation {
			op := FindOperation(ops, "startAudio")
			op.Properties = append(op.Properties, Property{Name: "x", Type: DestinationValue})
			return ops
		}, "destination kind"},
		{"kind on a string", func(ops []Operation) []Operation {
			op := FindOperation(ops, "startAudio")
			op.Properties = append(op.Properties, Property{Name: "x", Type: StringValue, Destination: DialledNow})
			return ops
		}, "destination kind"},
		{"property name with =", func(ops []Operation) []Operation {
			op := FindOperation(ops, "startAudio")
			op.Properties = append(op.Properties, Property{Name: "a=b", Type: StringValue})
			return ops
		}, "a name is"},
		{"integer range upside down", func(ops []Operation) []Operation {
			op := FindOperation(ops, "startAudio")
			op.Properties = append(op.Properties, Property{Name: "n", Type: IntegerValue, Min: 2, Max: 1})
			return ops
		}, "minimum above maximum"},
		{"embedded resources on a POST", func(ops []Operation) []Operation {
			op := FindOperation(ops, "startAudio")
			op.Embedded = []EmbeddedResource{{Rel: "x"}}
			return ops
		}, "only a PUT"},
		{"an embedded destination", func(ops []Operation) []Operation {
			op := FindOperation(ops, "callForwardingSettings")
			op.Embedded = append(op.Embedded, EmbeddedResource{Rel: "x", Properties: props(propTarget)})
			return ops
		}, "is not judged in an embedded resource"},
		{"an embedded rel twice", func(ops []Operation) []Operation {
			op := FindOperation(ops, "callForwardingSettings")
			op.Embedded = append(op.Embedded, EmbeddedResource{Rel: "UnansweredCallSettings"})
			return ops
		}, "given twice"},
		{"an embedded integer range upside down", func(ops []Operation) []Operation {
			op := FindOperation(ops, "callForwardingSettings")
			op.Embedded = append(op.Embedded, EmbeddedResource{Rel: "y", Properties: props(Property{Name: "n", Type: IntegerValue, Min: 2, Max: 1})})
			return ops
		}, "minimum above maximum"},
		{"too many embedded resources", func(ops []Operation) []Operation {
			op := FindOperation(ops, "callForwardingSettings")
			for _, rel := range []string{"a", "b", "c"} {
				op.Embedded = append(op.Embedded, EmbeddedResource{Rel: rel})
			}
			return ops
		}, "more than"},
	}
	for _, tt := range tests {
		err := ValidateOperations(tt.change(DefaultOperations()))
		if tt.errHas == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.errHas) {
			t.Errorf("%s: error %v, want one saying %q", tt.name, err, tt.errHas)
		}
	}
}

func TestOperationMethodError(t *testing.T) {
	op := FindOperation(DefaultOperations(), "communication")
	e := op.MethodError("POST")
	if e.Status != 405 || e.Allow != "GET, HEAD, OPTIONS, PUT" || e.Subcode != SubcodeMethodNotAllowed || !strings.Contains(e.Message, "communication accepts PUT only, not POST") {
		t.Errorf("%+v", e)
	}
	// Allow names every method the paths take: a phone's DELETE, the
	// phones collection's reads, a POST operation's own alone.
	for rel, want := range map[string]string{"phone": "GET, HEAD, OPTIONS, PUT, DELETE", "phones": "GET, HEAD, OPTIONS, POST", "startPhoneAudio": "POST"} {
		if got := FindOperation(DefaultOperations(), rel).MethodError("PATCH").Allow; got != want {
			t.Errorf("%s: Allow %q, want %q", rel, got, want)
		}
	}
	if e := op.MethodError("BAD METHOD\r\n"); strings.Contains(e.Message, "\r") {
		t.Errorf("method echoed: %q", e.Message)
	}
	if FindOperation(DefaultOperations(), "STARTPHONEAUDIO") == nil || FindOperation(DefaultOperations(), "nope") != nil {
		t.Error("FindOperation")
	}
}

func TestEnumStrings(t *testing.T) {
	for k, want := range map[string]string{
		PropertiesBody.String(): "properties", SDPBody.String(): "sdp", NoBody.String(): "none", BatchBody.String(): "batch",
		BodyKind(99).String(): "BodyKind(99)", DestinationValue.String(): "destination", ValueType(0).String(): "ValueType(0)",
		StoredForLater.String(): "stored for later", DestinationKind(42).String(): "DestinationKind(42)",
		InBody.String(): "body", InQuery.String(): "query", Source(7).String(): "Source(7)",
	} {
		if k != want {
			t.Errorf("%q, want %q", k, want)
		}
	}
}
