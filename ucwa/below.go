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
	// sub-resources are resources of their own: an invitation, a
	// conversation log.
	collection bool
	// open marks a resource a write to which, or to a path below it
	// that none of its children is, passes, as a collection's items do;
	// below its children, a write is checked as below any resource. A
	// conversation is open: a pool hands out resources below it that
	// the edge does not judge (messaging/sendMessage), and its children
	// are the modalities that can bring a phone into the call.
	open bool
	// children are its sub-resources by name.
	children []subResource
	// names are an open resource's children's names, for nearName: a
	// path below it whose segment spells one of them with junk added
	// (audioVideo.aspx) is a near miss, not another resource.
	names []string
}

// openItem is any item of a collection, open (see subResource.open),
// with these children.
func openItem(children ...subResource) subResource {
	r := subResource{name: anyItem, open: true, children: children}
	for _, c := range children {
		r.names = append(r.names, c.name)
	}
	return r
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

// The modalities of a conversation through which a write can dial or
// bring a phone into the call, with the links their reference pages
// (audioVideo_ref, phoneAudio_ref, conversation_ref, participants_ref)
// give them and the methods those links' pages give: a write below one
// that is none of these (a call transfer, POST audioVideo/transfer?to=tel:...,
// which the reference does not list) may reach an operation of the pool
// that no row judges, so it is a near miss. audioVideo's addAudio,
// addAudioVideo, addVideo, escalateAudio, escalateAudioVideo and
// replaceWithPhoneAudio are operations of the table, which match before:
// listed so that a table without one of them passes it as a pool's own
// resource. videoFreeze's page gives no method; it is an operation
// link, taken as POST. The participants collection's page gives no
// write: a POST to it is how a pool's operation the reference lacks
// would add a party (addParticipant and participantInvitations, rows of
// the table, are the reference's); its items, parties already in the
// call, and what lies below them (admit, eject, muteAudio) pass.
var (
	phoneAudioSubResources = subResourceOps("addPhoneAudio", "holdPhoneAudio", "resumePhoneAudio", "stopPhoneAudio")
	audioVideoSubResources = append(subResourceOps(
		"addAudio", "addAudioVideo", "addVideo", "escalateAudio", "escalateAudioVideo", "replaceWithPhoneAudio",
		"reportMediaDiagnostics", "stopAudio", "stopAudioVideo", "stopVideo", "videoFreeze"),
		subResource{name: "audiovideopolicies"},
		subResource{name: "audiovideosession", children: append(subResourceOps("publishCallQualityFeedback", "resumeAudio", "resumeAudioVideo"),
			subResource{name: "renegotiations", writes: post, collection: true})},
		subResource{name: "conversation"},
		subResource{name: "videolockedonparticipant"},
	)
	conversationSubResources = []subResource{
		{name: "audiovideo", children: audioVideoSubResources},
		{name: "phoneaudio", children: phoneAudioSubResources},
		{name: "participants", collection: true},
	}
)

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
// of a new invitation); below the conversations collection, its items,
// open (see subResource.open), with the modalities that can bring a
// phone into a call (see conversationSubResources). None of them takes a
// PUT.
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
		subResource{name: "conversations", children: []subResource{openItem(conversationSubResources...)}},
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
		subResource{name: "phoneaudio", children: phoneAudioSubResources},
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
// sub-resource that takes method, or lies below an item of a collection,
// or is an open resource or lies below one but for its children (see
// subResource.open).
func takesBelow(children []subResource, method, rest string) bool {
	var open *subResource // the resource rest lies below, when it is open
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
			// Below an open resource, what none of its children is
			// passes, but for a child's name with junk added.
			return open != nil && (plainName(seg) || !nearName(seg, open.names))
		case !deeper:
			return r.open || r.takes(method)
		case r.collection:
			return true
		}
		children, rest, open = r.children, more, nil
		if r.open {
			open = r
		}
	}
}
