package ucwa

import "strings"

// subResource is a resource below an operation's resource (a PUT row's,
// or a POST row's collection), as the reference has it and as pools hand
// it out: a path below the operation's resource that is none of these
// may reach that resource's own handler, with the rest of the path as
// PathInfo (see Matcher.near).
type subResource struct {
	// name is the resource's path segment, in lower case, or anyItem.
	name string
	// writes are the methods other than reads that it takes.
	writes []string
	// collection marks a resource whose items (any segment) and their
	// sub-resources are resources of their own: a conversation, an
	// invitation, a conversation log.
	collection bool
	// children are its sub-resources by name.
	children []subResource
}

// takes reports whether r takes method, in any letter case, as .NET
// reads methods.
func (r *subResource) takes(method string) bool {
	for _, w := range r.writes {
		if strings.EqualFold(w, method) {
			return true
		}
	}
	return false
}

// anyItem is the name of a sub-resource that is any item of its parent,
// a collection, by whatever id the pool hands out (a phone's work,
// mobile, home, other or phone).
const anyItem = "*"

// post is the one write most sub-resources take.
var post = []string{"POST"}

// subResourceOps lists POST operations below a resource, for its
// children.
func subResourceOps(names ...string) []subResource {
	out := make([]subResource, len(names))
	for i, n := range names {
		out[i] = subResource{name: strings.ToLower(n), writes: post}
	}
	return out
}

// Sub-resources of the forwarding settings: the operations that set
// each one's target.
var (
	immediateForwardSubResources = subResourceOps("immediateForwardToContact", "immediateForwardToDelegates", "immediateForwardToVoicemail")
	simultaneousRingSubResources = subResourceOps("simultaneousRingToContact", "simultaneousRingToDelegates", "simultaneousRingToTeam")
	unansweredCallSubResources   = subResourceOps("resetUnansweredCallSettings", "unansweredCallToContact", "unansweredCallToVoicemail")
)

// subResources are, by the rel of an operation whose path is a resource
// (every PUT row, and the POST row of a collection, phones), the
// resources below its resource: the phones collection's items (a phone,
// which the table's phone row puts and a client removes with DELETE) and
// their operations (changeNumber, a row of the table, and
// changeVisibility); and for the PUT rows the links of the reference's
// communication and callForwardingSettings pages (and of the settings callForwardingSettings
// embeds) and those other pages link below communication (phoneAudio,
// which the conversation and phoneAudio pages link as
// communication/phoneAudio, and audioVideo's addVideo), with the methods
// their pages give, and the collections real pools hand out for them
// (messagingInvitations for startMessaging, onlineMeetingInvitations for
// startOnlineMeeting and joinOnlineMeeting, invitations for the Location
// of a new invitation). None of them takes a PUT.
var subResources = map[string][]subResource{
	"phones": {
		{name: anyItem, writes: []string{"PUT", "DELETE"}, children: subResourceOps("changeNumber", "changeVisibility")},
	},
	"communication": append(subResourceOps(
		"joinOnlineMeeting", "replayMessage", "startMessaging", "startOnlineMeeting",
		// Operations of the table, which match before: listed so that a
		// table without one of them passes it as a pool's own resource.
		"addVideo", "makeMeAvailable", "startAudio", "startAudioOnBehalfOfDelegator", "startAudioVideo", "startAudioVideoOnBehalfOfDelegator",
		"startEmergencyCall", "startPhoneAudio", "startPhoneAudioOnBehalfOfDelegator", "startVideo"),
		subResource{name: "conversations", collection: true},
		subResource{name: "conversationlogs", collection: true},
		subResource{name: "invitations", collection: true},
		subResource{name: "audiovideoinvitations", writes: post, collection: true},
		subResource{name: "messaginginvitations", writes: post, collection: true},
		subResource{name: "onlinemeetinginvitations", writes: post, collection: true},
		subResource{name: "participantinvitations", writes: post, collection: true},
		subResource{name: "phoneaudioinvitations", writes: post, collection: true},
		// The phone audio modality at the reference's own href
		// (communication/phoneAudio, where conversation and phoneAudio
		// link it): its operations, addPhoneAudio among them (a row of
		// the table).
		subResource{name: "phoneaudio", children: subResourceOps("addPhoneAudio", "holdPhoneAudio", "resumePhoneAudio", "stopPhoneAudio")},
		subResource{name: "mediapolicies"},
		subResource{name: "mediarelayaccesstoken"},
		subResource{name: "misseditems"},
	),
	"callForwardingSettings": {
		{name: "turnoffcallforwarding", writes: post},
		{name: "immediateforwardsettings", children: immediateForwardSubResources},
		{name: "simultaneousringsettings", writes: []string{"PUT"}, children: simultaneousRingSubResources},
		{name: "unansweredcallsettings", writes: []string{"PUT"}, children: unansweredCallSubResources},
	},
	"simultaneousRingSettings": simultaneousRingSubResources,
	"unansweredCallSettings":   unansweredCallSubResources,
}

// parentResource is an operation's resource with resources below it (see
// subResources), by the last segment of one of its paths.
type parentResource struct {
	name  string // lower case
	below []subResource
}

// takesBelow reports whether rest, a clean path below a resource whose
// sub-resources are children (its segments, without a leading "/"), is a
// sub-resource that takes method, or lies below an item of a collection.
func takesBelow(children []subResource, method, rest string) bool {
	for {
		seg, more, deeper := strings.Cut(rest, "/")
		var r *subResource
		for i := range children {
			if children[i].name == anyItem || equalFoldASCII(children[i].name, seg) {
				r = &children[i]
				break
			}
		}
		switch {
		case r == nil:
			return false
		case !deeper:
			return r.takes(method)
		case r.collection:
			return true
		}
		children, rest = r.children, more
	}
}
