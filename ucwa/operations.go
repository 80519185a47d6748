package ucwa

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// The Azure AD scopes that grant UCWA operations (a token needs one of
// its operation's scopes).
const (
	ScopeConversationsInitiate = "Conversations.Initiate"
	ScopeConversationsReceive  = "Conversations.Receive"
	ScopeUserReadWrite         = "User.ReadWrite"
	ScopeContactsReadWrite     = "Contacts.ReadWrite"
	ScopeMeetingsReadWrite     = "Meetings.ReadWrite"
)

// BodyKind is what the body of an operation's request holds.
type BodyKind uint8

const (
	// PropertiesBody is a UCWA JSON or XML body of properties, or no body
	// at all when every input comes in the query.
	PropertiesBody BodyKind = iota + 1
	// SDPBody is an application/sdp body, forwarded as it is; the
	// operation's properties come in the query only.
	SDPBody
	// NoBody is an operation that takes no body.
	NoBody
	// BatchBody is a multipart/batching body of whole requests.
	BatchBody
)

var bodyKindNames = [...]string{PropertiesBody: "properties", SDPBody: "sdp", NoBody: "none", BatchBody: "batch"}

// String returns "properties", "sdp", "none" or "batch".
func (k BodyKind) String() string {
	if int(k) < len(bodyKindNames) && bodyKindNames[k] != "" {
		return bodyKindNames[k]
	}
	return fmt.Sprintf("BodyKind(%d)", k)
}

// ValueType is what a property's value must be.
type ValueType uint8

const (
	// StringValue is any text.
	StringValue ValueType = iota + 1
	// EnumValue is one of the property's Values, matched in any letter
	// case and forwarded in its canonical spelling.
	EnumValue
	// BooleanValue is true or false: a JSON boolean, or the text true or
	// false in any letter case in XML and the query (forwarded in lower
	// case).
	BooleanValue
	// IntegerValue is a whole number from Min to Max: a JSON number, or
	// decimal text in XML and the query (forwarded in canonical form).
	IntegerValue
	// NumberValue is a phone number only: a tel: URI or a dial string,
	// normalized to E.164.
	NumberValue
	// DestinationValue is a SIP URI or a phone number; a phone number,
	// also one inside a SIP URI, is normalized to E.164.
	DestinationValue
	// DataURLValue is a link (JSON _links.<name>.href, XML
	// <link rel="<name>" href="..."/>) holding an RFC 2397 data: URL.
	DataURLValue
)

var valueTypeNames = [...]string{StringValue: "string", EnumValue: "enum", BooleanValue: "boolean", IntegerValue: "integer",
	NumberValue: "phone number", DestinationValue: "destination", DataURLValue: "data URL"}

// String names the value type.
func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) && valueTypeNames[t] != "" {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("ValueType(%d)", t)
}

// DestinationKind says what a pool does with a number-bearing property.
type DestinationKind uint8

const (
	// NotDestination is a property that holds no phone destination.
	NotDestination DestinationKind = iota
	// DialledNow is a number the pool calls as part of the request.
	DialledNow
	// StoredForLater is a number the pool keeps and rings later (for
	// incoming calls, or as a phone of the user's).
	StoredForLater
	// ForwardingTarget is where the pool forwards the user's calls.
	ForwardingTarget
	// OnBehalfOf is the identity a call is placed for (a delegator): the
	// pool presents it, never dials it.
	OnBehalfOf
)

var destinationKindNames = [...]string{NotDestination: "none", DialledNow: "dialled now", StoredForLater: "stored for later",
	ForwardingTarget: "forwarding target", OnBehalfOf: "on behalf of"}

// String names the destination kind.
func (k DestinationKind) String() string {
	if int(k) < len(destinationKindNames) {
		return destinationKindNames[k]
	}
	return fmt.Sprintf("DestinationKind(%d)", k)
}

// Property is one documented input of an operation. It may come in the
// body or in the query (UCWA takes every input of an operation-starting
// POST in either), except a DataURLValue, which is a link and so only in
// a body.
type Property struct {
	// Name is the documented spelling. Body names match in any letter
	// case; a query name must be this spelling exactly.
	Name string
	// Type is what the value must be.
	Type ValueType
	// Required properties must be present, in the body or the query.
	Required bool
	// MaxLength is the longest value the pool takes, in UTF-16 code
	// units (how a .NET pool counts characters); 0 for no limit. It
	// applies to the value the edge forwards (a number after
	// normalization).
	MaxLength int
	// Values are the canonical spellings of an EnumValue.
	Values []string
	// Min and Max bound an IntegerValue.
	Min, Max int64
	// Destination says what the pool does with a NumberValue or
	// DestinationValue; NotDestination for every other type.
	Destination DestinationKind
}

// Operation is one UCWA request the edge terminates: where it is, who may
// make it, and what its request holds.
type Operation struct {
	// Rel is the link name, as the reference spells it.
	Rel string
	// Method is POST or PUT. A POST row claims its paths for every
	// method but those in Passes (any other is answered 405); a PUT row
	// claims every method but the reads (GET, HEAD, OPTIONS), which pass
	// as normal reads of the resource, and those in Passes: any other
	// than PUT is answered 405, as a pool may run it as the PUT ("put",
	// a POST with a method override).
	Method string
	// Passes are the methods, besides a PUT row's reads, that the row's
	// paths take as normal requests of a resource, which the edge passes
	// on as they came: the phones collection, where a POST creates a
	// phone, is read with GET, HEAD and OPTIONS, and a phone, where a PUT
	// stores its number, is removed with DELETE. Only GET, HEAD, OPTIONS
	// and DELETE, which no pool runs as the row's method; none by default.
	Passes []string
	// Paths are the path suffixes that identify the operation, aligned
	// on segments and matched case-insensitively against the canonical
	// request path: the reference's spelling and those real pools hand
	// out (after any variable segment, such as a conversation id).
	Paths []string
	// Scopes grant the operation: a token needs at least one of them.
	Scopes []string
	// Body is what the request body holds.
	Body BodyKind
	// Emergency marks the emergency call: it is checked like the others,
	// but nothing the edge adds on top of the protocol checks
	// (destination rules, rate limits) may refuse it.
	Emergency bool
	// CallsUnnamed marks an operation whose every request makes the pool
	// place a call to a party the request need not name: call-via-work
	// rings the caller's own phone (the phoneNumber given, or else the
	// number the pool keeps for the caller), and the continue requests
	// call back a party of a conversation log. The destination rules
	// cannot judge what they do not see; the velocity limits count each
	// such request all the same.
	CallsUnnamed bool
	// IfMatch is set for a PUT, which must carry the resource's etag in
	// If-Match (UCWA answers 428 PreConditionRequired without it).
	IfMatch bool
	// XMLRoot is the root element of an XML body: "input" for an
	// operation's input, "resource" for a PUT's resource representation.
	XMLRoot string
	// Properties are the documented inputs the edge checks. Other
	// properties pass as they are.
	Properties []Property
	// Embedded are, for a PUT, the resources its representation embeds
	// (as a pool serves it and a client echoes it) that are resources of
	// their own with a PUT row: a property of one of them, in an embedded
	// resource named so, must pass the rules it has on its own resource
	// (an unansweredCallSettings embedded in callForwardingSettings holds
	// a ringDelay of 5 to 60, as a PUT of unansweredCallSettings must),
	// so that the edge forwards no value there that it refuses there.
	Embedded []EmbeddedResource
}

// EmbeddedResource is a resource another's representation embeds, by its
// rel, with the properties the edge judges in it. They are its own PUT
// row's, and never a phone number, destination or link: an embedded
// resource is forwarded as it came, so the edge normalizes nothing in it
// (a destination named in one is refused, see named.go).
type EmbeddedResource struct {
	Rel        string
	Properties []Property
}

// property returns the property of the embedded resource named name
// (folded: see foldLookalike), or nil.
func (e *EmbeddedResource) property(folded string) *Property {
	for i := range e.Properties {
		if equalFoldASCII(e.Properties[i].Name, folded) {
			return &e.Properties[i]
		}
	}
	return nil
}

// MaxProperties bounds the properties of one operation, so that a
// request's values fit in fixed-size arrays.
const MaxProperties = 16

// MaxEmbedded bounds the embedded resources of one operation, for the
// same reason.
const MaxEmbedded = 4

// Property returns the operation's property of that name, in any letter
// case.
func (o *Operation) Property(name string) (*Property, bool) {
	if i := o.propertyIndex(name); i >= 0 {
		return &o.Properties[i], true
	}
	return nil, false
}

// propertyIndex returns the index of the property named name in any
// letter case, or -1.
func (o *Operation) propertyIndex(name string) int {
	for i := range o.Properties {
		if len(o.Properties[i].Name) == len(name) && strings.EqualFold(o.Properties[i].Name, name) {
			return i
		}
	}
	return -1
}

// linkIndex returns the index of the DataURLValue property named name in
// any letter case, or -1.
func (o *Operation) linkIndex(name []byte) int { return propIndex(o, name, true) }

// valueIndex returns the index of the non-link property named name in
// any letter case, or -1.
func (o *Operation) valueIndex(name []byte) int { return propIndex(o, name, false) }

// propIndex returns the index of the property named name in any letter
// case that is a link (link set) or not, or -1.
func propIndex[T string | []byte](o *Operation, name T, link bool) int {
	for i := range o.Properties {
		p := &o.Properties[i]
		if len(p.Name) == len(name) && (p.Type == DataURLValue) == link && equalFoldASCII(p.Name, name) {
			return i
		}
	}
	return -1
}

// PassesOn reports whether the edge passes a request with method on the
// operation's paths on as a normal request (see Operation.Passes).
func (o *Operation) PassesOn(method string) bool {
	return o.Method == "PUT" && isRead(method) || slices.Contains(o.Passes, method)
}

// AllowsMethod reports whether method is the operation's own.
func (o *Operation) AllowsMethod(method string) bool {
	return method == o.Method
}

// MethodError is the 405 answer to a request with a method other than
// the operation's; its Allow names every method the operation's paths
// take (RFC 9110 15.5.6): the operation's own and those the edge passes
// on there (see PassesOn), such as a settings resource's GET.
func (o *Operation) MethodError(method string) *Error {
	e := NewError(405, SubcodeMethodNotAllowed, o.Rel+" accepts "+o.Method+" only, not "+sanitizeToken(method)+".")
	var allow []string
	for _, m := range allowOrder {
		if m == o.Method || o.PassesOn(m) {
			allow = append(allow, m)
		}
	}
	e.Allow = strings.Join(allow, ", ")
	return e
}

// allowOrder is the order of the methods an Allow names.
var allowOrder = [...]string{"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"}

// sanitizeToken returns a standard method for a message, or "this
// method" for any other (an arbitrary token could hold a number).
func sanitizeToken(method string) string {
	switch method {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT":
		return method
	}
	return "this method"
}

// Shared property rows. DefaultOperations copies them, so they are never
// modified.
var (
	propOperationID    = Property{Name: "operationId", Type: StringValue, MaxLength: 50}
	propImportance     = Property{Name: "importance", Type: EnumValue, Values: []string{"Normal", "Urgent", "Emergency"}}
	propSubject        = Property{Name: "subject", Type: StringValue, MaxLength: 250}
	propThreadID       = Property{Name: "threadId", Type: StringValue}
	propTo             = Property{Name: "to", Type: DestinationValue, Required: true, Destination: DialledNow}
	propPhoneNumber    = Property{Name: "phoneNumber", Type: NumberValue, Destination: DialledNow}
	propCustomContent  = Property{Name: "customContent", Type: DataURLValue}
	propMediaOffer     = Property{Name: "mediaOffer", Type: DataURLValue}
	propSessionContext = Property{Name: "sessionContext", Type: StringValue, MaxLength: 50}
	propJoinAudioMuted = Property{Name: "joinAudioMuted", Type: BooleanValue}
	propJoinVideoMuted = Property{Name: "joinVideoMuted", Type: BooleanValue}
	propDelegator      = Property{Name: "delegator", Type: DestinationValue, Destination: OnBehalfOf}
	propTarget         = Property{Name: "target", Type: DestinationValue, Required: true, MaxLength: 80, Destination: ForwardingTarget}
	propRingDelay      = Property{Name: "ringDelay", Type: IntegerValue, Min: 5, Max: 60}
	propAudioPref      = Property{Name: "audioPreference", Type: EnumValue, Values: []string{"PhoneAudio", "VoipAudio"}}
	propGenericPolicy  = []string{"None", "Disabled", "Enabled"}

	// The settings resources' own properties, which their PUT rows and
	// callForwardingSettings, which embeds them, judge alike.
	simultaneousRingSettingsProps = props(Property{Name: "ringDelay", Type: IntegerValue, Min: 0, Max: math.MaxInt32},
		Property{Name: "target", Type: EnumValue, Values: []string{"None", "Team", "Delegates", "Contact"}})
	unansweredCallSettingsProps = props(propRingDelay, Property{Name: "target", Type: EnumValue, Values: []string{"None", "Voicemail", "Contact"}})

	// A phone's number, as changeNumber, creating a phone (phones) and
	// putting one (phone) take it.
	phoneProps = props(Property{Name: "number", Type: NumberValue, MaxLength: 80, Destination: StoredForLater},
		Property{Name: "includeInContactCard", Type: BooleanValue})

	scopesCall = []string{ScopeConversationsInitiate, ScopeConversationsReceive}
	scopesUser = []string{ScopeUserReadWrite}
)

// props lists property rows.
func props(p ...Property) []Property { return p }

// startProps are the inputs of the operations that start a conversation,
// in the reference's order.
func startProps(more ...Property) []Property {
	return append(props(propOperationID, propTo, propImportance, propSubject, propThreadID), more...)
}

// phoneAudioProps are the inputs of call-via-work, in the reference's
// order.
func phoneAudioProps(more ...Property) []Property {
	return append(props(propOperationID, propPhoneNumber, propImportance, propSubject, propThreadID, propTo, propCustomContent), more...)
}

// postOp is a POST row with a properties body.
func postOp(rel string, scopes []string, paths []string, p []Property) Operation {
	return Operation{Rel: rel, Method: "POST", Paths: paths, Scopes: scopes, Body: PropertiesBody, XMLRoot: "input", Properties: p}
}

// callsUnnamed marks a row whose requests place a call to a party they
// need not name (see Operation.CallsUnnamed).
func callsUnnamed(op Operation) Operation {
	op.CallsUnnamed = true
	return op
}

// putOp is a PUT row: a resource representation, with If-Match.
func putOp(rel string, scopes []string, paths []string, p []Property) Operation {
	return Operation{Rel: rel, Method: "PUT", Paths: paths, Scopes: scopes, Body: PropertiesBody, IfMatch: true, XMLRoot: "resource", Properties: p}
}

// passing returns op with the methods its paths pass on (see
// Operation.Passes).
func passing(op Operation, methods ...string) Operation {
	op.Passes = methods
	return op
}

// sdpOp is a POST row with an SDP body and its inputs in the query.
func sdpOp(rel string, paths []string) Operation {
	query := props(propOperationID, propSessionContext)
	for i := range query {
		query[i].Required = true
	}
	return Operation{Rel: rel, Method: "POST", Paths: paths, Scopes: scopesCall, Body: SDPBody, Properties: query}
}

// defaultOperations is every UCWA request that can make a pool place a
// call, store a number it rings later, or forward calls, and the batch
// wrapper that can carry any of them. Path suffixes start after the last
// variable segment (a conversation, log, invitation or phone id), so
// that every id a pool hands out matches.
var defaultOperations = []Operation{
	// Call-via-work: the pool rings phoneNumber, then calls to.
	callsUnnamed(postOp("startPhoneAudio", scopesCall, []string{"/communication/startPhoneAudio", "/communication/phoneAudioInvitations"},
		phoneAudioProps())),
	callsUnnamed(postOp("startPhoneAudioOnBehalfOfDelegator", scopesCall, []string{"/communication/startPhoneAudioOnBehalfOfDelegator"},
		phoneAudioProps(propDelegator))),
	callsUnnamed(postOp("addPhoneAudio", scopesCall, []string{"/phoneAudio/addPhoneAudio"},
		props(propOperationID, propPhoneNumber, propTo))),
	callsUnnamed(postOp("replaceWithPhoneAudio", []string{ScopeConversationsInitiate}, []string{"/audioVideo/replaceWithPhoneAudio"},
		props(propOperationID, propPhoneNumber, propTo))),
	callsUnnamed(postOp("continuePhoneAudio", scopesCall, []string{"/continuePhoneAudio"},
		props(propOperationID, propPhoneNumber))),
	{Rel: "acceptWithPhoneAudio", Method: "POST", Paths: []string{"/acceptWithPhoneAudio"}, Scopes: []string{ScopeConversationsInitiate}, Body: NoBody, CallsUnnamed: true},

	// Audio and video whose to may be a phone number.
	postOp("startAudio", scopesCall, []string{"/communication/startAudio"},
		startProps(propMediaOffer, propSessionContext, propJoinAudioMuted, propCustomContent)),
	postOp("startAudioOnBehalfOfDelegator", scopesCall, []string{"/communication/startAudioOnBehalfOfDelegator"},
		startProps(propMediaOffer, propSessionContext, propJoinAudioMuted, propCustomContent, propDelegator)),
	postOp("startAudioVideo", scopesCall, []string{"/communication/startAudioVideo", "/communication/audioVideoInvitations"},
		startProps(propMediaOffer, propSessionContext, propJoinAudioMuted, propJoinVideoMuted, propCustomContent)),
	postOp("startAudioVideoOnBehalfOfDelegator", scopesCall, []string{"/communication/startAudioVideoOnBehalfOfDelegator"},
		startProps(propMediaOffer, propSessionContext, propJoinAudioMuted, propJoinVideoMuted, propCustomContent, propDelegator)),
	postOp("startVideo", scopesCall, []string{"/communication/startVideo"},
		startProps(propMediaOffer, propSessionContext, propJoinVideoMuted)),
	postOp("addAudio", scopesCall, []string{"/audioVideo/addAudio"},
		props(propOperationID, propMediaOffer, propSessionContext, propJoinAudioMuted, propTo)),
	postOp("addAudioVideo", scopesCall, []string{"/audioVideo/addAudioVideo"},
		props(propOperationID, propMediaOffer, propSessionContext, propJoinAudioMuted, propJoinVideoMuted, propTo)),
	postOp("addVideo", scopesCall, []string{"/addVideo"},
		props(propOperationID, propMediaOffer, propSessionContext, propTo)),
	postOp("addParticipant", scopesCall, []string{"/addParticipant", "/communication/participantInvitations"},
		props(propOperationID, propTo)),
	callsUnnamed(postOp("continueAudio", scopesCall, []string{"/continueAudio"},
		props(propOperationID, propMediaOffer, propSessionContext))),
	callsUnnamed(postOp("continueAudioVideo", scopesCall, []string{"/continueAudioVideo"},
		props(propOperationID, propMediaOffer, propSessionContext))),
	// continueVideo answers with an audioVideoInvitation to the same
	// party: a PSTN party gets an audio call over the trunks.
	callsUnnamed(postOp("continueVideo", scopesCall, []string{"/continueVideo"},
		props(propOperationID, propMediaOffer, propSessionContext))),
	sdpOp("escalateAudio", []string{"/audioVideo/escalateAudio"}),
	sdpOp("escalateAudioVideo", []string{"/audioVideo/escalateAudioVideo"}),
	func() Operation {
		op := postOp("startEmergencyCall", scopesCall, []string{"/communication/startEmergencyCall"},
			startProps(propMediaOffer, propSessionContext, propJoinAudioMuted, propCustomContent,
				Property{Name: "address", Type: StringValue}, Property{Name: "building", Type: StringValue},
				Property{Name: "city", Type: StringValue}, Property{Name: "country", Type: StringValue},
				Property{Name: "state", Type: StringValue}, Property{Name: "zip", Type: StringValue}))
		op.Emergency = true
		return op
	}(),

	// Numbers stored for later.
	postOp("makeMeAvailable", []string{ScopeUserReadWrite, ScopeConversationsReceive}, []string{"/me/makeMeAvailable", "/communication/makeMeAvailable"},
		props(propAudioPref, Property{Name: "phoneNumber", Type: NumberValue, Destination: StoredForLater},
			Property{Name: "signInAs", Type: EnumValue, Values: []string{"Online", "Busy", "DoNotDisturb", "BeRightBack", "Away", "Offwork"}})),
	putOp("communication", scopesCall, []string{"/communication"},
		props(propAudioPref, Property{Name: "conversationHistory", Type: EnumValue, Values: propGenericPolicy},
			Property{Name: "lisLocation", Type: StringValue},
			Property{Name: "lisQueryResult", Type: EnumValue, Values: []string{"Succeeded", "Failed"}},
			Property{Name: "phoneNumber", Type: NumberValue, MaxLength: 100, Destination: StoredForLater},
			Property{Name: "publishEndpointLocation", Type: BooleanValue},
			Property{Name: "videoBasedScreenSharing", Type: EnumValue, Values: propGenericPolicy})),
	postOp("changeNumber", scopesUser, []string{"/changeNumber"}, phoneProps),
	// The phones collection "can be used to both create new phone
	// resources" (phones_ref), numbers the pool rings for incoming calls
	// (phone_ref); the reference documents only their GETs, so the
	// inputs are changeNumber's, and the phone's own properties.
	passing(postOp("phones", scopesUser, []string{"/me/phones"}, phoneProps), "GET", "HEAD", "OPTIONS"),
	passing(putOp("phone", scopesUser, []string{"/me/phones/" + anyItem}, phoneProps), "DELETE"),

	// Forwarding.
	postOp("immediateForwardToContact", scopesUser, []string{"/immediateForwardSettings/immediateForwardToContact"}, props(propTarget)),
	postOp("simultaneousRingToContact", scopesUser, []string{"/simultaneousRingSettings/simultaneousRingToContact"}, props(propTarget)),
	postOp("unansweredCallToContact", scopesUser, []string{"/unansweredCallSettings/unansweredCallToContact"}, props(propTarget, propRingDelay)),
	func() Operation {
		op := putOp("callForwardingSettings", scopesUser, []string{"/me/callForwardingSettings"},
			props(Property{Name: "activePeriod", Type: EnumValue, Values: []string{"Always", "Workhours"}},
				Property{Name: "activeSetting", Type: EnumValue, Values: []string{"None", "ImmediateForward", "SimultaneousRing"}},
				Property{Name: "unansweredCallHandling", Type: EnumValue, Values: []string{"Enabled", "Disabled"}}))
		op.Embedded = []EmbeddedResource{
			{Rel: "simultaneousRingSettings", Properties: simultaneousRingSettingsProps},
			{Rel: "unansweredCallSettings", Properties: unansweredCallSettingsProps},
		}
		return op
	}(),
	putOp("simultaneousRingSettings", scopesUser, []string{"/callForwardingSettings/simultaneousRingSettings"}, simultaneousRingSettingsProps),
	putOp("unansweredCallSettings", scopesUser, []string{"/callForwardingSettings/unansweredCallSettings"}, unansweredCallSettingsProps),

	// The wrapper that can carry any of the above.
	{Rel: "batch", Method: "POST", Paths: []string{"/batch"}, Body: BatchBody,
		Scopes: []string{ScopeUserReadWrite, ScopeContactsReadWrite, ScopeConversationsInitiate, ScopeConversationsReceive, ScopeMeetingsReadWrite}},
}

// DefaultOperations returns the operation table: every UCWA request that
// can make a pool dial, store or forward to a number, and the batch
// wrapper. It is a deep copy, which the caller may change (add path
// spellings, replace scopes) and then check with ValidateOperations.
func DefaultOperations() []Operation {
	return cloneOperations(defaultOperations)
}

// cloneOperations deep-copies a table.
func cloneOperations(ops []Operation) []Operation {
	out := make([]Operation, len(ops))
	for i, op := range ops {
		op.Paths = append([]string(nil), op.Paths...)
		op.Scopes = append([]string(nil), op.Scopes...)
		op.Passes = append([]string(nil), op.Passes...)
		op.Properties = append([]Property(nil), op.Properties...)
		for j := range op.Properties {
			op.Properties[j].Values = append([]string(nil), op.Properties[j].Values...)
		}
		op.Embedded = append([]EmbeddedResource(nil), op.Embedded...)
		for j := range op.Embedded {
			e := &op.Embedded[j]
			e.Properties = append([]Property(nil), e.Properties...)
			for k := range e.Properties {
				e.Properties[k].Values = append([]string(nil), e.Properties[k].Values...)
			}
		}
		out[i] = op
	}
	return out
}

// FindOperation returns the row of ops whose Rel is rel in any letter
// case (the first, for a rel with a POST and a PUT row), or nil.
func FindOperation(ops []Operation, rel string) *Operation {
	for i := range ops {
		if strings.EqualFold(ops[i].Rel, rel) {
			return &ops[i]
		}
	}
	return nil
}

// ValidateOperations checks a table, typically DefaultOperations changed
// by configuration: every row's rel is one the edge knows, with its own
// method and body kind; path suffixes are clean and no suffix is claimed
// by two rows of the same method; every row has scopes; properties are
// well formed and at most MaxProperties. It returns every problem found.
func ValidateOperations(ops []Operation) error {
	var errs []error
	bad := func(op *Operation, format string, args ...any) {
		errs = append(errs, fmt.Errorf("operation %s: %s", op.Rel, fmt.Sprintf(format, args...)))
	}
	type claim struct{ method, suffix string }
	claimed := map[claim]string{}
	seen := map[claim]bool{}
	for i := range ops {
		op := &ops[i]
		known := knownOperation(op.Rel, op.Method)
		switch {
		case op.Rel == "":
			errs = append(errs, fmt.Errorf("operation %d: no rel", i))
			continue
		case known == nil:
			bad(op, "not an operation the edge knows with method %q", op.Method)
			continue
		}
		key := claim{op.Method, strings.ToLower(op.Rel)}
		if seen[key] {
			bad(op, "given twice")
		}
		seen[key] = true
		if op.Body != known.Body || op.XMLRoot != known.XMLRoot || op.IfMatch != known.IfMatch || op.Emergency != known.Emergency ||
			!slices.Equal(op.Passes, known.Passes) {
			bad(op, "body kind, XML root, If-Match, emergency flag and passed methods must stay as the edge knows them")
		}
		if len(op.Paths) == 0 {
			bad(op, "no paths")
		}
		for _, p := range op.Paths {
			if err := ValidPathSuffix(p); err != nil {
				bad(op, "%v", err)
				continue
			}
			c := claim{op.Method, strings.ToLower(p)}
			if other, dup := claimed[c]; dup && other != op.Rel {
				bad(op, "path %q is also %s's", p, other)
			}
			claimed[c] = op.Rel
		}
		if len(op.Scopes) == 0 {
			bad(op, "no scopes")
		}
		for _, s := range op.Scopes {
			if s == "" || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
				bad(op, "scope %q is not a scope name (printable ASCII without spaces)", s)
			}
		}
		if err := validateProperties(op); err != nil {
			bad(op, "%v", err)
		}
		if err := validateEmbedded(op); err != nil {
			bad(op, "%v", err)
		}
	}
	return errors.Join(errs...)
}

// knownOperation returns the default row of that rel and method.
func knownOperation(rel, method string) *Operation {
	for i := range defaultOperations {
		if defaultOperations[i].Rel == rel && defaultOperations[i].Method == method {
			return &defaultOperations[i]
		}
	}
	return nil
}

// validateProperties checks an operation's property rows.
func validateProperties(op *Operation) error {
	if len(op.Properties) > MaxProperties {
		return fmt.Errorf("%d properties, more than %d", len(op.Properties), MaxProperties)
	}
	if op.Body != PropertiesBody && op.Body != SDPBody && len(op.Properties) > 0 {
		return fmt.Errorf("a %s body has no properties", op.Body)
	}
	for i, p := range op.Properties {
		switch {
		case p.Name == "" || !isToken(p.Name) || strings.ContainsAny(p.Name, "%+&="):
			return fmt.Errorf("property %q: a name is ASCII letters, digits and punctuation allowed in a query name", p.Name)
		case op.propertyIndex(p.Name) != i:
			return fmt.Errorf("property %q given twice", p.Name)
		case p.Type < StringValue || p.Type > DataURLValue:
			return fmt.Errorf("property %q: unknown type %d", p.Name, p.Type)
		case p.MaxLength < 0:
			return fmt.Errorf("property %q: negative maximum length", p.Name)
		case (p.Type == EnumValue) != (len(p.Values) > 0):
			return fmt.Errorf("property %q: an enum, and only an enum, has values", p.Name)
		case p.Type == IntegerValue && p.Min > p.Max:
			return fmt.Errorf("property %q: minimum above maximum", p.Name)
		case (p.Type == NumberValue || p.Type == DestinationValue) != (p.Destination != NotDestination):
			return fmt.Errorf("property %q: a phone number or destination, and only one, has a destination kind", p.Name)
		case p.Destination > OnBehalfOf:
			return fmt.Errorf("property %q: unknown destination kind %d", p.Name, p.Destination)
		case p.Type == DataURLValue && op.Body == SDPBody:
			return fmt.Errorf("property %q: a link needs a properties body", p.Name)
		}
		for _, v := range p.Values {
			if v == "" || strings.TrimSpace(v) != v {
				return fmt.Errorf("property %q: blank or padded enum value", p.Name)
			}
		}
	}
	return nil
}

// validateEmbedded checks an operation's embedded resources: only a PUT
// embeds, each rel once, and each resource's properties are well formed
// (as validateProperties has them), none a phone number, destination or
// link.
func validateEmbedded(op *Operation) error {
	if len(op.Embedded) > 0 && op.XMLRoot != "resource" {
		return errors.New("only a PUT's representation embeds resources")
	}
	if len(op.Embedded) > MaxEmbedded {
		return fmt.Errorf("%d embedded resources, more than %d", len(op.Embedded), MaxEmbedded)
	}
	for i, e := range op.Embedded {
		if e.Rel == "" || !plainName(e.Rel) {
			return fmt.Errorf("embedded resource %q: a rel is ASCII letters, digits, _ and -", e.Rel)
		}
		for _, other := range op.Embedded[:i] {
			if strings.EqualFold(other.Rel, e.Rel) {
				return fmt.Errorf("embedded resource %q given twice", e.Rel)
			}
		}
		inner := Operation{Body: PropertiesBody, Properties: e.Properties}
		if err := validateProperties(&inner); err != nil {
			return fmt.Errorf("embedded resource %s: %w", e.Rel, err)
		}
		for _, p := range e.Properties {
			if p.Type == NumberValue || p.Type == DestinationValue || p.Type == DataURLValue || p.Required {
				return fmt.Errorf("embedded resource %s: property %q: a phone number, destination, link or required property is not judged in an embedded resource", e.Rel, p.Name)
			}
		}
	}
	return nil
}

// equalFoldASCII compares a with b, ignoring ASCII letter case.
func equalFoldASCII[A, B string | []byte](a A, b B) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
