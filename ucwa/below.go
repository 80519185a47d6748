package ucwa

import (
	"slices"
	"strings"
)

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
	// sub-resources are resources of their own: a conversation's
	// participants, an audioVideoSession's renegotiations.
	collection bool
	// open marks a resource that takes any write, and below which any
	// write passes, as below a collection's items: a conversation's
	// links that cannot bring a phone into the call (messaging,
	// onlineMeeting, lobby, ...), below which a pool hands out resources
	// that the edge does not judge (messaging/sendMessage).
	open bool
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

// named lists resources below a resource, for its children: each like
// r, by one of names.
func named(r subResource, names ...string) []subResource {
	out := make([]subResource, len(names))
	for i, n := range names {
		out[i] = r
		out[i].name = strings.ToLower(n)
	}
	return out
}

// subResourceOps lists POST operations below a resource, for its
// children.
func subResourceOps(names ...string) []subResource { return named(subResource{writes: post}, names...) }

// readOnly lists resources below a resource that take no write and
// have no sub-resources, for its children.
func readOnly(names ...string) []subResource { return named(subResource{}, names...) }

// openResources lists open resources (see subResource.open) below a
// resource, for its children.
func openResources(names ...string) []subResource { return named(subResource{open: true}, names...) }

// union is the resources of lists by name, each taking the writes it
// takes in any of them: what an item of a collection holding any of
// several kinds (invitations) has below it.
func union(lists ...[]subResource) []subResource {
	var out []subResource
	for _, list := range lists {
		for _, r := range list {
			i := slices.IndexFunc(out, func(o subResource) bool { return o.name == r.name })
			if i < 0 {
				out = append(out, r)
				continue
			}
			for _, w := range r.writes {
				if !out[i].takes(w) {
					out[i].writes = append(slices.Clip(out[i].writes), w)
				}
			}
		}
	}
	return out
}

// A conversation's links, as its reference page (conversation_ref)
// gives them, by name, with the methods their own pages give; the
// conversation itself takes DELETE (leaving it). A write to any other
// name directly below a conversation is a near miss: a pool's operation
// that the reference does not list (a call transfer,
// POST conversations/{c}/transfer?to=tel:...) may dial there unjudged.
//
// The modalities through which a write can dial or bring a phone into
// the call are closed to what their reference pages (audioVideo_ref,
// phoneAudio_ref, participants_ref) link, with the methods those links'
// pages give: a write below one that is none of these (a call transfer,
// POST audioVideo/transfer?to=tel:...) is a near miss too. audioVideo's
// addAudio, addAudioVideo, addVideo, escalateAudio, escalateAudioVideo
// and replaceWithPhoneAudio, phoneAudio's addPhoneAudio and the
// conversation's addParticipant are operations of the table, which match
// before: listed so that a table without one of them passes it as a
// pool's own resource. videoFreeze's page gives no method; it is an
// operation link, taken as POST. The participants collection's page
// gives no write: a POST to it is how a pool's operation the reference
// lacks would add a party (addParticipant and participantInvitations,
// rows of the table, are the reference's); its items, parties already in
// the call, and what lies below them (admit, eject, muteAudio) pass.
//
// The conversation's other links cannot bring a phone into the call and
// are open (see subResource.open): a write to one, or below it, passes
// (messaging/sendMessage, onlineMeeting/...). userAcknowledged's page
// gives no operation, and the reference places localParticipant below
// onlineMeeting and disableAudienceMessaging and enableAudienceMessaging
// below messaging; by their names directly below the conversation they
// are open too.
//
// The risk: a pool's own resource directly below a conversation, or
// below audioVideo, phoneAudio or participants, that the reference does
// not list is refused 404 as a near miss, and what uses it fails: report
// it, and add it here with the methods it takes.
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
	conversationSubResources = append([]subResource{
		{name: "addparticipant", writes: post},
		{name: "audiovideo", children: audioVideoSubResources},
		{name: "phoneaudio", children: phoneAudioSubResources},
		{name: "participants", collection: true},
	}, openResources(
		"applicationSharing", "attendees", "dataCollaboration", "disableAudienceMessaging", "disableAudienceMuteLock",
		"enableAudienceMessaging", "enableAudienceMuteLock", "leaders", "lobby", "localParticipant", "messaging",
		"onlineMeeting", "userAcknowledged")...)
	// conversation is any item of the conversations collection.
	conversation = subResource{name: anyItem, writes: []string{"DELETE"}, children: conversationSubResources}
)

// An invitation's links, as the reference's page of each kind
// (audioVideoInvitation_ref, messagingInvitation_ref,
// onlineMeetingInvitation_ref, participantInvitation_ref,
// phoneAudioInvitation_ref) gives them, by name, with the methods their
// own pages give (accept, acceptWithAnswer, cancel, decline,
// sendProvisionalAnswer, reportMediaDiagnostics: POST; the rest, and the
// invitation itself, read only; conversation read only here, as below
// audioVideo, its DELETE being the conversation's own).
// acceptWithPhoneAudio is an operation of the table, which matches
// before: listed so that a table without it passes it as a pool's own
// resource. A write to any other name below an invitation, or to the
// invitation itself, is a near miss: Skype clients forward an incoming
// call to a phone number, and a pool's forward that the reference does
// not list (POST invitations/{i}/forward?to=tel:...) would dial there
// unjudged. An item of communication's invitations collection, which
// holds invitations of every kind, takes the union of them. The risk is
// the conversation's: a pool's own resource below an invitation that the
// reference does not list is refused 404; report it.
var (
	audioVideoInvitationLinks = append(subResourceOps(
		"acceptWithAnswer", "acceptWithPhoneAudio", "cancel", "decline", "reportMediaDiagnostics", "sendProvisionalAnswer"),
		readOnly("acceptedByContact", "acceptedByParticipant", "audioVideo", "conversation", "delegator", "derivedAudioVideo",
			"derivedConversation", "forwardedBy", "from", "onBehalfOf", "replacesAudioVideo", "to", "transferredBy")...)
	messagingInvitationLinks = append(subResourceOps("accept", "cancel", "decline"),
		readOnly("acceptedByContact", "acceptedByParticipant", "conversation", "derivedMessaging", "from", "messaging", "onBehalfOf", "to")...)
	onlineMeetingInvitationLinks = append(subResourceOps("accept", "cancel", "decline"),
		readOnly("acceptedByContact", "conversation", "from", "onBehalfOf", "to")...)
	participantInvitationLinks = append(subResourceOps("cancel"),
		readOnly("acceptedByParticipant", "conversation", "from", "participant", "to")...)
	phoneAudioInvitationLinks = append(subResourceOps("accept", "cancel", "decline"),
		readOnly("acceptedByContact", "acceptedByParticipant", "conversation", "delegator", "derivedConversation", "derivedPhoneAudio",
			"forwardedBy", "from", "onBehalfOf", "phoneAudio", "replacesPhoneAudio", "to", "transferredBy")...)
	invitationLinks = union(audioVideoInvitationLinks, messagingInvitationLinks, onlineMeetingInvitationLinks,
		participantInvitationLinks, phoneAudioInvitationLinks)
)

// A conversation log's links, as its reference page (conversationLog_ref)
// gives them, with the methods their own pages give; the log itself
// takes DELETE. A write to any other name below a log, or below one of
// these, is a near miss: a continue request rings the log's parties
// again, and a pool's operation there that the reference does not list
// would dial unjudged. continueAudio, continueAudioVideo,
// continuePhoneAudio and continueVideo are operations of the table,
// which match before: listed so that a table without one of them passes
// it as a pool's own resource. The risk is the conversation's: report a
// pool's own resource refused here.
var conversationLog = subResource{name: anyItem, writes: []string{"DELETE"}, children: append(subResourceOps(
	"continueAudio", "continueAudioVideo", "continueMessaging", "continuePhoneAudio", "continueVideo", "markAsRead"),
	readOnly("conversationLogRecipient", "conversationLogTranscripts")...)}

// invitations is a collection of invitations, named name, taking
// writes, whose items have these links.
func invitations(name string, writes []string, links []subResource) subResource {
	return subResource{name: name, writes: writes, children: []subResource{{name: anyItem, children: links}}}
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
// of a new invitation); below the conversations collection, its items
// with their links (see conversationSubResources); below the
// invitation collections, their items with their links (see
// invitationLinks); below the conversationLogs collection, its items
// with their links (see conversationLog). None of them takes a PUT.
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
		subResource{name: "conversations", children: []subResource{conversation}},
		subResource{name: "conversationlogs", children: []subResource{conversationLog}},
		invitations("invitations", nil, invitationLinks),
		invitations("audiovideoinvitations", post, audioVideoInvitationLinks),
		invitations("messaginginvitations", post, messagingInvitationLinks),
		invitations("onlinemeetinginvitations", post, onlineMeetingInvitationLinks),
		invitations("participantinvitations", post, participantInvitationLinks),
		invitations("phoneaudioinvitations", post, phoneAudioInvitationLinks),
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
// sub-resource that takes method, or lies below an item of a collection
// or below an open resource, or is an open resource.
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
			return r.open || r.takes(method)
		case r.collection || r.open:
			return true
		}
		children, rest = r.children, more
	}
}
