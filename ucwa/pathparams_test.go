package ucwa

import (
	"strings"
	"testing"
)

// TestPathParameterError: a path segment's parameter named like a phone
// destination of the table or operationId (any letter case, folding onto
// it, a model-binding part), in the decoded path or in a decoding of it
// again, is refused naming the input and not the value, unless blank or
// one of its words; other parameters, and paths without any, pass.
func TestPathParameterError(t *testing.T) {
	const app = "/ucwa/v1/applications/104"
	for _, tt := range []struct {
		path, bad string // bad: the input refused, "" for none
	}{
		{app + "/communication/startPhoneAudio;to=tel:+19005551234", "to"},
		{app + "/communication/startPhoneAudio;x=1;PhoneNumber=+19005551234", "phoneNumber"},
		{app + "/communication;phoneNumber=+19005551234/startPhoneAudio", "phoneNumber"},
		{app + `\me\callForwardingSettings\immediateForwardSettings\immediateForwardToContact;target=+19005551234`, "target"},
		{app + "/communication/startPhoneAudio;operationId=b", "operationId"},
		{app + "/communication/startPhoneAudio;x.to=+19005551234", "to"},
		{app + "/communication/startPhoneAudio; to =+19005551234", "to"},
		{app + "/communication/startPhoneAudio%3Bto=tel:%2B19005551234", "to"},
		{app + "/communication/startPhoneAudio%253Bdelegator=sip:x@y", "delegator"},
		{app + "/me/phones/work;number=+19005551234", "number"},

		{app + "/communication/startPhoneAudio", ""},
		{app + "/communication/startPhoneAudio;x=1;toll=2;tos=3", ""},
		{app + "/communication/startPhoneAudio;to=;operationId", ""},
		{app + "/me/callForwardingSettings/simultaneousRingSettings;target=Contact", ""},
		{app + "/communication/startPhoneAudio%25x", ""},
	} {
		e := PathParameterError(tt.path)
		if tt.bad == "" {
			if e != nil {
				t.Errorf("%s: %v", tt.path, e)
			}
			continue
		}
		if e == nil || e.Status != 400 || e.Subcode != SubcodeParameterValidationFailure || len(e.Parameters) != 1 || e.Parameters[0].Name != tt.bad {
			t.Errorf("%s: %v, want 400 ParameterValidationFailure naming %s", tt.path, e, tt.bad)
			continue
		}
		if strings.Contains(e.Message, "900") || strings.Contains(e.Message, "sip:") {
			t.Errorf("%s: the message quotes the value: %s", tt.path, e.Message)
		}
	}
	if allocs := testing.AllocsPerRun(20, func() { PathParameterError(app + "/communication/startPhoneAudio") }); allocs != 0 {
		t.Errorf("a path without parameters costs %v allocations", allocs)
	}
}
