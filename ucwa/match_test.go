package ucwa

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

func mustMatcher(t testing.TB) *Matcher {
	t.Helper()
	m, err := NewMatcher(DefaultOperations())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// matchResult renders a Match for test failures and comparisons.
func matchResult(m Match) string {
	switch {
	case m.Operation != nil && m.NearMiss:
		return "both " + m.Operation.Rel
	case m.Operation != nil:
		return m.Operation.Rel
	case m.NearMiss:
		return "near miss"
	}
	return "none"
}

const (
	app      = "/ucwa/v1/applications/192"
	oauthApp = "/ucwa/oauth/v1/applications/104"
)

func TestMatch(t *testing.T) {
	m := mustMatcher(t)
	tests := []struct {
		method, path, want string
	}{
		// Every reference spelling and those real pools hand out.
		{"POST", app + "/communication/startPhoneAudio", "startPhoneAudio"},
		{"POST", `\UCWA\v1\Applications\192;x\.\communication\StartPhoneAudio.`, "startPhoneAudio"},
		{"POST", oauthApp + "/communication/phoneAudioInvitations", "startPhoneAudio"},
		{"POST", app + "/communication/startPhoneAudioOnBehalfOfDelegator", "startPhoneAudioOnBehalfOfDelegator"},
		{"POST", app + "/communication/phoneAudio/addPhoneAudio", "addPhoneAudio"},
		{"POST", oauthApp + "/communication/conversations/eee0/phoneAudio/addPhoneAudio", "addPhoneAudio"},
		{"POST", app + "/communication/conversations/137/audioVideo/replaceWithPhoneAudio", "replaceWithPhoneAudio"},
		{"POST", app + "/communication/conversationLogs/conversationLog/continuePhoneAudio", "continuePhoneAudio"},
		{"POST", app + "/communication/invitations/507/acceptWithPhoneAudio", "acceptWithPhoneAudio"},
		{"POST", oauthApp + "/communication/audioVideoInvitations/0123abcd/acceptWithPhoneAudio", "acceptWithPhoneAudio"},
		{"POST", app + "/communication/startAudio", "startAudio"},
		{"POST", app + "/communication/startAudioOnBehalfOfDelegator", "startAudioOnBehalfOfDelegator"},
		{"POST", app + "/communication/startAudioVideo", "startAudioVideo"},
		{"POST", oauthApp + "/communication/audioVideoInvitations", "startAudioVideo"},
		{"POST", app + "/communication/startAudioVideoOnBehalfOfDelegator", "startAudioVideoOnBehalfOfDelegator"},
		{"POST", app + "/communication/startVideo", "startVideo"},
		{"POST", app + "/communication/conversations/137/audioVideo/addAudio", "addAudio"},
		{"POST", app + "/communication/conversations/137/audioVideo/addAudioVideo", "addAudioVideo"},
		{"POST", app + "/communication/conversations/137/video/addVideo", "addVideo"},
		{"POST", app + "/communication/conversations/137/addParticipant", "addParticipant"},
		{"POST", oauthApp + "/communication/participantInvitations", "addParticipant"},
		{"POST", app + "/communication/conversationLogs/conversationLog/continueAudio", "continueAudio"},
		{"POST", app + "/communication/conversationLogs/conversationLog/continueAudioVideo", "continueAudioVideo"},
		{"POST", app + "/communication/conversationLogs/conversationLog/continueVideo", "continueVideo"},
		{"POST", app + "/communication/conversations/137/audioVideo/escalateAudio", "escalateAudio"},
		{"POST", app + "/communication/conversations/137/audioVideo/escalateAudioVideo", "escalateAudioVideo"},
		{"POST", app + "/communication/startEmergencyCall", "startEmergencyCall"},
		{"POST", app + "/communication/makeMeAvailable", "makeMeAvailable"},
		{"POST", oauthApp + "/me/makeMeAvailable", "makeMeAvailable"},
		{"PUT", app + "/communication", "communication"},
		{"POST", app + "/me/phones/mobile/changeNumber", "changeNumber"},
		{"POST", app + "/me/phones/phone/changeNumber", "changeNumber"},
		{"POST", app + "/me/callForwardingSettings/immediateForwardSettings/immediateForwardToContact", "immediateForwardToContact"},
		{"POST", app + "/me/callForwardingSettings/simultaneousRingSettings/simultaneousRingToContact", "simultaneousRingToContact"},
		{"POST", app + "/me/callForwardingSettings/unansweredCallSettings/unansweredCallToContact", "unansweredCallToContact"},
		{"PUT", app + "/me/callForwardingSettings", "callForwardingSettings"},
		{"PUT", app + "/me/callForwardingSettings/simultaneousRingSettings", "simultaneousRingSettings"},
		{"PUT", app + "/me/callForwardingSettings/unansweredCallSettings", "unansweredCallSettings"},
		{"POST", oauthApp + "/batch", "batch"},

		// Variants IIS may route to the same operation.
		{"POST", app + "/COMMUNICATION/startphoneaudio", "startPhoneAudio"},
		{"POST", app + `/communication\startPhoneAudio`, "startPhoneAudio"},
		{"POST", app + "/communication/startPhoneAudio.", "startPhoneAudio"},
		{"POST", app + "/communication/startPhoneAudio. . ", "startPhoneAudio"},
		{"POST", app + "/communication/startPhoneAudio;x=1", "startPhoneAudio"},
		{"POST", app + "/communication/x/../startPhoneAudio", "startPhoneAudio"},
		{"POST", app + "/communication/ſtartPhoneAudio", "startPhoneAudio"},
		{"POST", app + "/communıcation/startPhoneAudio", "startPhoneAudio"},
		{"POST", app + "/communication/ma\u212AeMeAvailable", "makeMeAvailable"},
		{"POST", app + "/communication/startPhoneAudio/", "startPhoneAudio"},
		{"POST", "communication/startPhoneAudio", "startPhoneAudio"},

		// A POST row claims its path for every method (the edge answers
		// 405); a PUT row only PUT.
		{"GET", app + "/communication/startPhoneAudio", "startPhoneAudio"},
		{"PUT", app + "/communication/startPhoneAudio", "startPhoneAudio"},
		{"DELETE", app + "/batch", "batch"},
		// A PUT operation's paths: reads pass; any other method may be
		// run as the PUT (a POST with a method override, "put").
		{"GET", app + "/communication", "none"},
		{"HEAD", app + "/communication", "none"},
		{"OPTIONS", app + "/communication", "none"},
		{"POST", app + "/communication", "communication"},
		{"DELETE", app + "/communication", "communication"},
		{"GET", app + "/me/callForwardingSettings", "none"},
		{"POST", app + "/me/callForwardingSettings", "callForwardingSettings"},
		{"put", app + "/communication", "communication"},

		// Near misses (issue 10): a guarded link name plus junk.
		{"POST", app + "/communication/startPhoneAudio\t", "near miss"},
		{"POST", app + "/communication/startPhoneAudio\x00", "near miss"},
		{"POST", app + "/communication/startPhoneAudio\u200b", "near miss"},
		{"POST", app + "/communication/\u200bstartPhoneAudio", "near miss"},
		{"POST", app + "/communication/start\u200dPhone\u2060Audio", "near miss"},
		{"POST", app + "/communication/startPhoneAudio\u00a0", "near miss"},
		{"POST", app + "/communication/startPhoneAudio\u3000", "near miss"},
		{"POST", app + "/communication/startPhoneAudio/extra", "near miss"},
		{"POST", app + "/communication/startPhoneAudio.aspx", "near miss"},
		{"POST", app + "/communication/startPhoneAudio.aspx/extra", "near miss"},
		{"POST", app + "/communication/startPhoneAudio::$DATA", "near miss"},
		{"POST", app + "/communication/startPhoneAudio:stream", "near miss"},
		{"POST", app + "/communication/startPhoneAudio~1", "near miss"},
		{"POST", app + "/communication/STARTP~1", "near miss"},
		{"POST", app + "/communication/STARTP~1.ASP", "near miss"},
		{"POST", app + "/communication/startPhoneAudio\uff0easpx", "near miss"},
		{"POST", app + "/communication/\uff53\uff54\uff41\uff52\uff54PhoneAudio", "near miss"},
		{"POST", app + "/communication/startPhoneAudio\u212a", "near miss"},
		{"POST", app + "/communication/sta\u0301rtPhoneAudio", "near miss"},
		{"POST", app + "/communication/startPhoneAudio\u202e", "near miss"},
		{"POST", app + "/startPhoneAudio", "near miss"}, // the link name in a place no pool serves it
		{"PUT", app + "/communication%09", "near miss"}, // decoded again (a pool allowing double escaping): communication\t
		{"PUT", app + "/communication\t", "near miss"},
		{"POST", app + "/me/callForwardingSettings/immediateForwardSettings/immediateForwardToContact\u200b", "near miss"},
		{"POST", app + "/batch.aspx", "near miss"},
		{"POST", app + "/batch/extra", "near miss"},
		{"DELETE", app + "/communication/startPhoneAudio\t", "near miss"},
		{"OPTIONS", app + "/communication/startPhoneAudio.aspx", "near miss"},

		// ASP.NET gives a handler every segment after its name as
		// PathInfo, any number of them; "..;" is no dot segment to IIS.
		{"POST", app + "/communication/startPhoneAudio/x/y", "near miss"},
		{"POST", app + "/communication/startPhoneAudio/x/y/z", "near miss"},
		{"POST", app + "/communication/startPhoneAudio.aspx/x/y", "near miss"},
		{"POST", app + "/communication/STARTP~1/x/y", "near miss"},
		{"POST", app + "/communication/startPhoneAudio/..;/x", "near miss"},
		{"POST", app + "/communication/startPhoneAudio/..;x/y", "near miss"},
		{"POST", app + "/batch/a/b/c", "near miss"},
		{"POST", app + "/me/phones/mobile/changeNumber/x/y", "near miss"},

		// Other readings of the path (issue: ASP.NET 4.5's Request.Url
		// cuts a decoded path at '?' or '#'; a pool allowing double
		// escaping may decode it again).
		{"POST", app + "/communication/startPhoneAudio#", "near miss"},
		{"POST", app + "/communication/startPhoneAudio#x", "near miss"},
		{"POST", app + "/communication/startPhoneAudio?to=sip:a@b.c", "near miss"},
		{"POST", app + "/communication/startPhoneAudio?", "near miss"},
		{"PUT", app + "/communication#/x", "near miss"},
		{"PUT", app + "/me/callForwardingSettings?/x", "near miss"},
		{"PUT", app + "/communication/startPhoneAudio#/../../communication", "near miss"}, // PUT communication here, startPhoneAudio there
		{"POST", app + "/communication%2FstartPhoneAudio", "near miss"},
		{"POST", app + "/communication/startPhoneAudio%23", "near miss"},
		{"POST", app + "/communication/startPhoneAudio%2523x", "near miss"},
		{"POST", app + "/communication/%u0073tartPhoneAudio", "near miss"},
		{"POST", app + "/communication/%U0053TARTPHONEAUDIO", "near miss"},
		{"POST", app + "/communication/x%2F..%2FstartPhoneAudio", "near miss"},
		{"POST", app + "/communication/startPhoneAudio%3B%2Fx%2Fy", "near miss"},
		{"POST", app + "?x/communication/startPhoneAudio", "near miss"}, // the other reading is no operation, its query the rest of the path
		{"POST", app + "/communication/conversationLogs/x?phoneNumber=1/continuePhoneAudio", "near miss"},
		{"POST", app + "/communication/conversationLogs/x%3FphoneNumber=1/continuePhoneAudio", "near miss"},
		{"POST", app + "/communication/conversations/137/messaging/startPhoneAudio%", "none"},
		{"POST", app + "/communication/conversations/137/messaging/startPhoneAudio%zz", "none"},
		{"POST", app + "/communication/conversations/137/messaging/sendMessage#x", "none"},
		{"POST", app + "/people/search%3Fq%3Dx", "none"},
		{"GET", app + "/communication/startPhoneAudio#x", "none"},
		{"HEAD", app + "/communication/startPhoneAudio%2F", "none"},
		// Without a segment of cookieless values, which ASP.NET takes out
		// before it routes (the last one, and perhaps the one before).
		{"PUT", app + "/me/(S(x))/phones/work", "near miss"},
		{"PUT", app + "/me/(A(x)F((y))/phones/work", "near miss"},
		{"PUT", app + "/me/(S(x))/(X(y))/phones/work", "near miss"},
		{"PUT", app + "/me/(S(x))/phones/work?", "near miss"},
		{"PUT", app + "/me/(S(x))/phones/work%3F", "near miss"},
		{"PUT", app + "/me/%28S%28x%29%29/phones/work", "near miss"}, // decoded again
		{"PUT", app + `/me/(S(x))\phones/work`, "near miss"},         // a backslash is a slash to IIS
		{"PUT", app + "/me/(S(x)). /phones/work", "near miss"},       // and trailing dots and spaces go
		{"PUT", app + "/(S(x))/me/phones/work", "phone"},
		{"POST", app + "/communication/conversations/(S(x))/messaging/sendMessage", "near miss"},
		{"POST", app + "/communication/conversations/(s(x))/messaging/sendMessage", "none"},       // a small letter: ASP.NET leaves it
		{"POST", app + "/communication/conversations/(S(x)/messaging/sendMessage", "none"},        // no ")/"
		{"POST", app + "/communication/conversations/(S(x)y)/messaging/sendMessage", "none"},      // text after a value
		{"POST", app + "/communication/conversations/(S(x))/messaging/(y)/sendMessage", "none"},   // the last ")/" ends no cookieless values, and ASP.NET stops there
		{"POST", app + "/communication/conversations/137/messaging/(S(x/y))/sendMessage", "none"}, // a '/' in a value
		// A phone below another prefix than me, which ASP.NET leaves as
		// it is, is a near miss all the same: a pool may serve phones
		// there.
		{"PUT", app + "/me/(s(x))/phones/work", "near miss"},
		{"PUT", app + "/me/(S(x)/phones/work", "near miss"},
		{"PUT", app + "/me/(S(x))/(y)/phones/work", "near miss"},
		{"PUT", app + "/phones/work", "near miss"},
		{"POST", app + "/phones/work", "near miss"},
		{"PUT", app + "/me/phones/..;", "near miss"}, // "..;" is no dot segment to IIS: a phone
		{"DELETE", app + "/phones/work", "none"},
		{"GET", app + "/phones/work", "none"},
		{"DELETE", app + "/me/(S(x))/phones/work", "none"}, // a phone's DELETE passes
		{"GET", app + "/me/(S(x))/phones/work", "none"},
		{"POST", app + "/communication/conversations/137/messaging/(S(x))/sendMessage", "none"},
		{"POST", app + "/communication/conversations/(S(x))/messaging/sendMessage", "near miss"}, // sendMessage directly below a conversation "messaging"
		// An operation whose application another reading names otherwise,
		// which idempotency would key apart.
		{"POST", "/ucwa/v1/applications/(S(x))/192/communication/startPhoneAudio", "near miss"},
		{"POST", "/ucwa/v1/applications/192x//../192/communication/startPhoneAudio", "near miss"},
		{"POST", app + "/(S(x))/communication/startPhoneAudio", "startPhoneAudio"},
		// With dot segments resolved against empty segments too, as RFC
		// 3986 resolves them, where path.Clean drops empty segments first.
		{"PUT", app + "/communication//..", "near miss"},
		{"PUT", app + `/communication\\..`, "near miss"},
		{"POST", app + "/me/makeMeAvailable//..", "near miss"},
		{"PUT", app + "/me/phones/work/x//../..", "near miss"}, // the phones collection to path.Clean, a phone to RFC 3986
		{"PUT", app + "/communication//x/..", "communication"}, // alike to both
		{"GET", app + "/communication//..", "none"},

		// Reads of near misses pass: GET and HEAD change nothing.
		{"GET", app + "/communication/startPhoneAudio.aspx", "none"},
		{"HEAD", app + "/communication/startPhoneAudio\u200b", "none"},

		// Everything else passes untouched.
		{"GET", app + "/events", "none"},
		{"POST", app + "/events", "none"},
		{"GET", app + "/communication/phoneAudioInvitations/42", "none"},
		{"POST", app + "/communication/phoneAudioInvitations/42/cancel", "none"},
		{"POST", app + "/communication/conversations/137/messaging/sendMessage", "none"},
		{"POST", app + "/communication/startMessaging", "none"},
		{"POST", oauthApp + "/communication/messagingInvitations", "none"},
		{"post", oauthApp + "/communication/onlineMeetingInvitations", "none"},
		{"POST", oauthApp + "/communication/messagingInvitations/60c6/accept", "none"},
		{"DELETE", app + "/communication/conversations/137", "none"},
		{"PUT", app + "/communication/conversations/137/onlineMeeting", "none"},
		{"OPTIONS", app + "/communication/x", "none"},
		{"POST", app + "/me/callForwardingSettings/turnOffCallForwarding", "none"},
		{"POST", app + "/me/callForwardingSettings/immediateForwardSettings/immediateForwardToVoicemail", "none"},
		{"POST", app + "/me/callForwardingSettings/unansweredCallSettings/resetUnansweredCallSettings", "none"},
		{"POST", app + "/me/phones/mobile/changeVisibility", "none"},
		// The phone audio modality where the reference links it, below
		// communication: its operations pass.
		{"POST", app + "/communication/phoneAudio/holdPhoneAudio", "none"},
		{"POST", app + "/communication/phoneAudio/resumePhoneAudio", "none"},
		{"POST", app + "/communication/phoneAudio/stopPhoneAudio", "none"},
		{"POST", app + "/people/startAudioVideoConference", "none"},
		{"POST", app + "/people/startPhoneAudio-v2", "none"},
		{"POST", app + "/people/startPhoneAudioX", "none"},

		// Below a PUT row's resource, a write to what is no sub-resource
		// taking it (ASP.NET may hand the PUT resource the rest as
		// PathInfo): a near miss, in any letter case of the method.
		{"PUT", app + "/communication/x", "near miss"},
		{"put", app + "/communication/x/y", "near miss"},
		{"POST", app + "/communication/x", "near miss"},
		{"MERGE", app + "/communication/x", "near miss"},
		{"PUT", app + "/communication/conversations", "near miss"},
		{"POST", app + "/communication/conversations", "near miss"},
		{"PUT", app + "/communication/startMessaging", "near miss"},
		{"PUT", app + "/communication/mediaRelayAccessToken/x", "near miss"},
		{"PUT", app + "/communication/phoneAudio", "near miss"},
		{"POST", app + "/communication/phoneAudio", "near miss"},
		{"POST", app + "/communication/phoneAudio/x", "near miss"},
		{"PUT", app + "/communication/phoneAudio/stopPhoneAudio", "near miss"},
		{"POST", app + "/communication/startAudioVideoConference", "near miss"},
		{"POST", app + "/communication/startPhoneAudio-v2", "near miss"},
		{"POST", app + "/communication/startPhoneAudio%", "near miss"},
		{"PUT", app + "/communication.aspx/x", "near miss"},
		{"PUT", app + "/COMMUN~1/x", "near miss"},
		{"PUT", app + "/communication/..;/x", "near miss"},
		{"PUT", app + "/communication/conversations./1", "near miss"},
		{"PUT", app + "/me/callForwardingSettings/x", "near miss"},
		{"PUT", app + "/me/callForwardingSettings/immediateForwardSettings", "near miss"},
		{"PUT", app + "/me/callForwardingSettings/immediateForwardSettings/x", "near miss"},
		{"POST", app + "/me/callForwardingSettings/simultaneousRingSettings/x", "near miss"},
		{"PUT", app + "/x/unansweredCallSettings/x", "near miss"},
		// Below a conversation, the modalities that can bring a phone
		// into the call: a write to what is none of their links taking
		// it (a call transfer, which the reference does not list) is a
		// near miss; their links, reads, and what lies below the
		// conversation outside them pass.
		{"POST", app + "/communication/conversations/137/audioVideo/transfer", "near miss"},
		{"POST", oauthApp + "/communication/conversations/eee0/AUDIOVIDEO/Transfer", "near miss"},
		{"post", app + "/communication/conversations/137/audioVideo/transfer", "near miss"},
		{"PUT", app + "/communication/conversations/137/audioVideo/transfer", "near miss"},
		{"DELETE", app + "/communication/conversations/137/audioVideo/x", "near miss"},
		{"POST", app + "/communication/conversations/137/audioVideo", "near miss"},
		{"PUT", app + "/communication/conversations/137/audioVideo/stopAudio", "near miss"},
		{"POST", app + "/communication/conversations/137/audioVideo/stopAudio/x", "near miss"},
		{"POST", app + "/communication/conversations/137/audioVideo/videoLockedOnParticipant", "near miss"},
		{"POST", app + "/communication/conversations/137/audioVideo/audioVideoSession/transfer", "near miss"},
		{"POST", app + "/communication/conversations/137/audioVideo.aspx/transfer", "near miss"},
		{"POST", app + "/communication/conversations/137/audioVideo\u200b/transfer", "near miss"},
		{"POST", app + "/communication/conversations/137/AUDIOV~1/transfer", "near miss"},
		{"POST", app + "/communication/conversations/137/audioVideo;x/transfer", "near miss"},
		{"POST", app + "/communication/conversations/137/audioVideo/..;/transfer", "near miss"},
		{"POST", app + "/communication/conversations/137/audioVideo%2Ftransfer", "near miss"},
		{"POST", app + "/communication/conversations/137/phoneAudio/transfer", "near miss"},
		{"POST", app + "/communication/conversations/137/phoneAudio", "near miss"},
		{"POST", app + "/communication/conversations/137/phoneAudio/stopPhoneAudio/x", "near miss"},
		{"POST", app + "/communication/conversations/137/participants", "near miss"},
		{"PUT", app + "/communication/conversations/137/participants", "near miss"},
		{"POST", app + "/communication/conversations/137/participants.aspx/x", "near miss"},
		{"POST", app + "/communication/conversations/137/audioVideo/stopAudio", "none"},
		{"POST", app + "/communication/conversations/137/audioVideo/stopAudioVideo", "none"},
		{"POST", app + "/communication/conversations/137/audioVideo/stopVideo", "none"},
		{"POST", app + "/communication/conversations/137/audioVideo/reportMediaDiagnostics", "none"},
		{"POST", app + "/communication/conversations/137/audioVideo/videoFreeze", "none"},
		{"POST", app + "/communication/conversations/137/audioVideo/audioVideoSession/resumeAudio", "none"},
		{"POST", app + "/communication/conversations/137/audioVideo/audioVideoSession/publishCallQualityFeedback", "none"},
		{"POST", app + "/communication/conversations/137/audioVideo/audioVideoSession/renegotiations", "none"},
		{"POST", app + "/communication/conversations/137/audioVideo/audioVideoSession/renegotiations/1/answer", "none"},
		{"POST", app + "/communication/conversations/137/phoneAudio/holdPhoneAudio", "none"},
		{"POST", app + "/communication/conversations/137/participants/196/eject", "none"},
		{"POST", app + "/communication/conversations/137/participants/196/participantAudio/muteAudio", "none"},
		{"POST", app + "/communication/conversations/137/messaging/sendMessage", "none"},
		{"GET", app + "/communication/conversations/137/audioVideo", "none"},
		{"GET", app + "/communication/conversations/137/audioVideo/transfer", "none"},
		{"HEAD", app + "/communication/conversations/137/audioVideo/transfer", "none"},
		{"OPTIONS", app + "/communication/conversations/137/audioVideo/transfer", "none"},
		{"POST", app + "/communication/conversations/137/audioVideo/addAudio", "addAudio"},
		{"POST", app + "/communication/conversations/137/audioVideo/replaceWithPhoneAudio", "replaceWithPhoneAudio"},
		{"POST", app + "/communication/conversations/137/phoneAudio/addPhoneAudio", "addPhoneAudio"},
		// Directly below a conversation, the links of its reference
		// page: a write to any other name (a call transfer of the
		// conversation, which the reference does not list) is a near
		// miss, and so is a POST or PUT of the conversation, which takes
		// DELETE; below its links that cannot bring a phone into the
		// call (open), writes pass.
		{"POST", app + "/communication/conversations/137/transfer", "near miss"},
		{"POST", oauthApp + "/communication/conversations/eee0/Transfer", "near miss"},
		{"post", app + "/communication/conversations/137/TRANSFER", "near miss"},
		{"PUT", app + "/communication/conversations/137/transfer", "near miss"},
		{"POST", app + "/communication/conversations/137/transfer.aspx", "near miss"},
		{"POST", app + "/communication/conversations/137/transfer/x", "near miss"},
		{"POST", app + "/communication/conversations/137/forward", "near miss"},
		{"POST", app + "/communication/conversations/137/x/y", "near miss"},
		{"POST", app + "/communication/conversations/137", "near miss"},
		{"PUT", app + "/communication/conversations/137", "near miss"},
		{"POST", app + "/communication/conversations/137/audioVideoX/transfer", "near miss"},
		{"POST", app + "/communication/conversations/137/messaging.aspx/sendMessage", "near miss"},
		{"POST", app + "/communication/conversations/137/messaging;x/sendMessage", "near miss"},
		{"POST", app + "/communication/conversations/137/meſsaging/sendMessage", "near miss"},
		{"DELETE", app + "/communication/conversations/137", "none"},
		{"delete", oauthApp + "/communication/conversations/eee0", "none"},
		{"GET", app + "/communication/conversations/137/transfer", "none"},
		{"HEAD", app + "/communication/conversations/137/transfer", "none"},
		{"OPTIONS", app + "/communication/conversations/137/transfer", "none"},
		{"POST", app + "/communication/conversations/137/MESSAGING/sendMessage", "none"},
		{"POST", app + "/communication/conversations/137/messaging/addMessaging", "none"},
		{"POST", app + "/communication/conversations/137/messaging/disableAudienceMessaging", "none"},
		{"POST", app + "/communication/conversations/137/enableAudienceMuteLock", "none"},
		{"POST", app + "/communication/conversations/137/disableAudienceMuteLock", "none"},
		{"POST", app + "/communication/conversations/137/userAcknowledged", "none"},
		{"POST", app + "/communication/conversations/137/onlineMeeting/295/x", "none"},
		{"POST", app + "/communication/conversations/137/lobby/196/admit", "none"},
		{"POST", app + "/communication/conversations/137/attendees/196/promote", "none"},
		{"POST", app + "/communication/conversations/137/leaders/196/demote", "none"},
		{"POST", app + "/communication/conversations/137/applicationSharing/addApplicationSharing", "none"},
		{"POST", app + "/communication/conversations/137/dataCollaboration/addDataCollaboration", "none"},
		{"POST", app + "/communication/conversations/137/localParticipant", "none"},
		{"DELETE", app + "/communication/conversations/137/participants/196", "none"},
		// Below an invitation of any kind, the links of its reference
		// page, and below an item of invitations (which holds every
		// kind) any of theirs: a write to any other name (a forward of
		// an incoming call, which the reference does not list), to one
		// by another method, to the invitation itself or below a link is
		// a near miss.
		{"POST", app + "/communication/invitations/507/forward", "near miss"},
		{"POST", app + "/communication/audioVideoInvitations/507/forward", "near miss"},
		{"POST", app + "/communication/phoneAudioInvitations/146/forward", "near miss"},
		{"POST", app + "/communication/participantInvitations/303/forward", "near miss"},
		{"POST", app + "/communication/onlineMeetingInvitations/711/forward", "near miss"},
		{"POST", app + "/communication/messagingInvitations/602/forward", "near miss"},
		{"POST", oauthApp + "/communication/INVITATIONS/eee0/Forward", "near miss"},
		{"post", app + "/communication/invitations/507/FORWARD", "near miss"},
		{"PUT", app + "/communication/invitations/507/forward", "near miss"},
		{"POST", app + "/communication/invitations/507/forward.aspx", "near miss"},
		{"POST", app + "/communication/invitations/507/forward/x", "near miss"},
		{"POST", app + "/communication/invitations/507/transfer", "near miss"},
		{"POST", app + "/communication/invitations/507/decline.aspx", "near miss"},
		{"POST", app + "/communication/invitations/507/decline;x", "near miss"},
		{"POST", app + "/communication/invitations/507/deсline", "near miss"},
		{"POST", app + "/communication/invitations/507/DECLI~1", "near miss"},
		{"POST", app + "/communication/invitations/507/accept/x", "near miss"},
		{"POST", app + "/communication/invitations/507/accept/..;/forward", "near miss"},
		{"PUT", app + "/communication/invitations/507/accept", "near miss"},
		{"DELETE", app + "/communication/invitations/507/cancel", "near miss"},
		{"POST", app + "/communication/invitations/507", "near miss"},
		{"DELETE", app + "/communication/invitations/507", "near miss"},
		{"DELETE", app + "/communication/phoneAudioInvitations/42", "near miss"},
		{"POST", app + "/communication/participantInvitations/7", "near miss"},
		{"POST", app + "/communication/invitations/507/conversation", "near miss"},
		{"DELETE", app + "/communication/invitations/507/conversation", "near miss"},
		{"POST", app + "/communication/invitations/507/derivedConversation", "near miss"},
		{"POST", app + "/communication/invitations/507/derivedConversation/transfer", "near miss"},
		{"POST", app + "/communication/invitations/507/to", "near miss"},
		{"POST", app + "/communication/messagingInvitations/602/acceptWithAnswer", "near miss"},
		{"POST", app + "/communication/onlineMeetingInvitations/711/sendProvisionalAnswer", "near miss"},
		{"POST", app + "/communication/phoneAudioInvitations/146/reportMediaDiagnostics", "near miss"},
		{"POST", app + "/communication/participantInvitations/303/accept", "near miss"},
		{"POST", app + "/communication/participantInvitations/303/decline", "near miss"},
		{"POST", app + "/communication/invitations/507/accept", "none"},
		{"POST", app + "/communication/invitations/507/decline", "none"},
		{"POST", app + "/communication/invitations/507/cancel", "none"},
		{"POST", app + "/communication/invitations/507/acceptWithAnswer", "none"},
		{"POST", app + "/communication/invitations/507/sendProvisionalAnswer", "none"},
		{"POST", app + "/communication/invitations/507/reportMediaDiagnostics", "none"},
		{"POST", oauthApp + "/communication/invitations/eee0/ACCEPT", "none"},
		{"POST", app + "/communication/audioVideoInvitations/507/acceptWithAnswer", "none"},
		{"POST", app + "/communication/audioVideoInvitations/507/sendProvisionalAnswer", "none"},
		{"POST", app + "/communication/audioVideoInvitations/507/decline", "none"},
		{"POST", app + "/communication/audioVideoInvitations/507/cancel", "none"},
		{"POST", app + "/communication/phoneAudioInvitations/146/accept", "none"},
		{"POST", app + "/communication/phoneAudioInvitations/146/decline", "none"},
		{"POST", app + "/communication/messagingInvitations/602/accept", "none"},
		{"POST", app + "/communication/messagingInvitations/602/decline", "none"},
		{"POST", app + "/communication/messagingInvitations/602/cancel", "none"},
		{"POST", app + "/communication/onlineMeetingInvitations/711/accept", "none"},
		{"POST", app + "/communication/onlineMeetingInvitations/711/decline", "none"},
		{"POST", app + "/communication/participantInvitations/303/cancel", "none"},
		{"GET", app + "/communication/invitations/507/forward", "none"},
		{"HEAD", app + "/communication/invitations/507/forward", "none"},
		{"OPTIONS", app + "/communication/invitations/507/forward", "none"},
		{"GET", app + "/communication/invitations/507/derivedConversation", "none"},
		// Below a conversation log, its links taking their writes (the
		// continue requests, rows of the table, ring its parties again);
		// any other write is a near miss, reads pass.
		{"POST", app + "/communication/conversationLogs/log1/markAsRead", "none"},
		{"POST", app + "/communication/conversationLogs/log1/continueMessaging", "none"},
		{"DELETE", app + "/communication/conversationLogs/log1", "none"},
		{"GET", app + "/communication/conversationLogs/log1/conversationLogTranscripts/t1", "none"},
		{"GET", app + "/communication/conversationLogs/log1/callBack", "none"},
		{"POST", app + "/communication/conversationLogs/log1/callBack", "near miss"},
		{"POST", app + "/communication/conversationLogs/log1", "near miss"},
		{"POST", app + "/communication/conversationLogs/log1/MARKASREAD.aspx", "near miss"},
		{"POST", app + "/communication/conversationLogs/log1/conversationLogTranscripts", "near miss"},
		{"PUT", app + "/communication/conversationLogs/log1/conversationLogRecipient/x", "near miss"},
		{"GET", app + "/communication/invitations/507", "none"},
		{"POST", app + "/communication/messagingInvitations/602/acceptWithPhoneAudio", "acceptWithPhoneAudio"},
		{"POST", app + "/communication/phoneAudioInvitations/146/acceptWithPhoneAudio", "acceptWithPhoneAudio"},
		// The phones collection: a POST creates a phone, a PUT of an
		// item (any id) stores its number; reads, a DELETE of an item
		// and the items' operations pass, as do reads of a phone.
		{"POST", app + "/me/phones", "phones"},
		{"PUT", app + "/me/phones", "phones"},
		{"DELETE", app + "/me/phones", "phones"},
		{"GET", app + "/me/phones", "none"},
		{"HEAD", app + "/me/phones", "none"},
		{"OPTIONS", app + "/me/phones", "none"},
		{"PUT", app + "/me/phones/work", "phone"},
		{"PUT", app + "/ME/PHONES/Mobile", "phone"},
		{"PUT", app + "/me/phones/phone", "phone"},
		{"PUT", app + "/me/phones/fax\u200b", "phone"},
		{"put", app + "/me/phones/work", "phone"},
		{"POST", app + "/me/phones/work", "phone"},
		{"GET", app + "/me/phones/work", "none"},
		{"DELETE", app + "/me/phones/work", "none"},
		{"DELETE", app + "/me/phones/phone", "none"},
		{"DELETE", app + "/me/phones/startPhoneAudio.aspx", "near miss"},
		{"DELETE", app + "/communication/startPhoneAudio.aspx/me/phones/work", "near miss"},
		{"OPTIONS", app + "/me/phones/changeNumber.aspx", "near miss"},
		{"POST", app + "/me/phones/work/changeNumber", "changeNumber"},
		{"POST", app + "/me/phones/work/changeVisibility", "none"},
		{"POST", app + "/me/phones/work/x", "near miss"},
		{"PUT", app + "/me/phones/work/changeVisibility", "near miss"},
		{"DELETE", app + "/me/phones/work/x/y", "near miss"},
		{"POST", app + "/me/phones.aspx/work", "near miss"},
		{"POST", app + "/me/phones\u200b", "near miss"},
		{"POST", app + "/api/batches", "none"},
		{"POST", "/", "none"},
		{"POST", "", "none"},
	}
	for _, tt := range tests {
		match := m.Match(tt.method, tt.path)
		if got := matchResult(match); got != tt.want {
			t.Errorf("%s %q: %s, want %s", tt.method, tt.path, got, tt.want)
		}
		// An operation comes with the path's canonical form, which the
		// handler reads its application id and resource from.
		if wantPath := CanonicalPath(tt.path); match.Operation != nil && match.Path != wantPath {
			t.Errorf("%s %q: path %q, want %q", tt.method, tt.path, match.Path, wantPath)
		} else if match.Operation == nil && match.Path != "" {
			t.Errorf("%s %q: path %q, want none", tt.method, tt.path, match.Path)
		}
	}
}

// TestMatchEveryPath checks every suffix of the table behind several
// prefixes, and that no exact match is ever a near miss.
func TestMatchEveryPath(t *testing.T) {
	m := mustMatcher(t)
	for _, op := range m.Operations() {
		for _, s := range op.Paths {
			for _, prefix := range []string{"", app, oauthApp + "/communication/conversations/x/messaging"} {
				for _, method := range []string{"POST", "PUT", "GET", "DELETE"} {
					got := m.Match(method, prefix+s)
					want := op.Rel
					if op.PassesOn(method) {
						want = "none"
					}
					if matchResult(got) != want {
						t.Errorf("%s %s: %s, want %s", method, prefix+s, matchResult(got), want)
					}
				}
				if got := m.Match(op.Method, strings.ToUpper(prefix+s)); got.Operation == nil || got.Operation.Rel != op.Rel {
					t.Errorf("%s in capitals: %s", prefix+s, matchResult(got))
				}
			}
		}
	}
}

// TestMatcherOwnTable checks that a configured table is what is matched:
// an added spelling, and a table without an operation.
func TestMatcherOwnTable(t *testing.T) {
	ops := DefaultOperations()
	op := FindOperation(ops, "startPhoneAudio")
	op.Paths = append(op.Paths, "/call")
	m, err := NewMatcher(ops)
	if err != nil {
		t.Fatal(err)
	}
	op.Paths = nil // the matcher keeps its own copy
	if got := matchResult(m.Match("POST", "/x/call")); got != "startPhoneAudio" {
		t.Errorf("added path: %s", got)
	}
	if _, err := NewMatcher(append(ops, Operation{Rel: "nope"})); err == nil {
		t.Error("an invalid table was taken")
	}
	if _, err := NewMatcher(nil); err != nil {
		t.Errorf("empty table: %v", err)
	}
}

func TestMatchTarget(t *testing.T) {
	m := mustMatcher(t)
	tests := []struct {
		target, want string
		ok           bool
	}{
		{"/ucwa/oauth/v1/applications/1/communication/startPhoneAudio?to=sip:a@b.c", "startPhoneAudio", true},
		{"/ucwa/oauth/v1/applications/1/communication/startPhoneAudio%09", "near miss", true},
		{"/ucwa/oauth/v1/applications/1/communication/startPhone%41udio", "startPhoneAudio", true},
		{"https://fe1.contoso.com/ucwa/v1/applications/1/batch", "batch", true},
		{"/ucwa/v1/applications/1/people/search?query=x", "none", true},
		{"/ucwa/v1/applications/1/%zz", "none", false},
		{"relative/path", "none", false},
	}
	for _, tt := range tests {
		got, ok := m.MatchTarget("POST", tt.target)
		if matchResult(got) != tt.want || ok != tt.ok {
			t.Errorf("MatchTarget(%q) = %s, %v; want %s, %v", tt.target, matchResult(got), ok, tt.want, tt.ok)
		}
	}
}

func TestCanonicalPath(t *testing.T) {
	tests := map[string]string{
		"/a/b":             "/a/b",
		"a/b":              "/a/b",
		`/a\b`:             "/a/b",
		"/a;x=1/b;y":       "/a/b",
		"/a./b. ":          "/a/b",
		"/a/./b/../c":      "/a/c",
		"/ſtart":           "/start",
		"/\u212Aelvin":     "/kelvin",
		"/A/B.":            "/a/b",
		"/a//b/":           "/a/b",
		"/../../a":         "/a",
		"/communıcation/x": "/communication/x",
		"/":                "/",
		"//":               "/",
		"/a/":              "/a",
		"a":                "/a",
		"":                 "/",
		"/A/b":             "/A/b", // ASCII letters are compared folded, not folded here
		"/a b":             "/a b",
		"/a%2e/b":          "/a%2e/b",
	}
	for in, want := range tests {
		if got := CanonicalPath(in); got != want {
			t.Errorf("CanonicalPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValidPathSuffix(t *testing.T) {
	for _, s := range []string{"/a", "/communication/startPhoneAudio", "/a-b_c/d", "/me/phones/*"} {
		if err := ValidPathSuffix(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	for _, s := range []string{"", "/", "a", "/a/", "/a//b", "/./a", "/a/..", "/a.", "/a b", "/a;b", "/a%20", `/a\b`, "/á", "/a?b", "/a#b", "/*", "/a/*/b", "/a/b*", "/*/a"} {
		if err := ValidPathSuffix(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

// TestMatchHeaders: a read that asks to be taken as another method (in a
// header, in its query, or possibly in a form field) is matched as a write (a PUT operation's resource is then the operation),
// and a URL named in X-Original-URL or X-Rewrite-URL is judged as a
// request target; without those headers neither allocates.
func TestMatchHeaders(t *testing.T) {
	m := mustMatcher(t)
	override := http.Header{"X-Http-Method-Override": {"PUT"}}
	for _, tt := range []struct {
		method string
		header http.Header
		want   string
	}{
		{"GET", nil, "GET"},
		{"GET", override, "PUT"},
		{"HEAD", http.Header{"X-Http-Method": {"PUT"}}, "PUT"},
		{"OPTIONS", http.Header{"X-Method-Override": {"PUT"}}, "PUT"},
		{"GET", http.Header{"X_http_method_override": {"PUT"}}, "PUT"},
		{"GET", http.Header{"X-http_method-Override": {"PUT"}}, "PUT"},
		{"GET", http.Header{"X_http_method_overrides": {"PUT"}}, "GET"},
		{"GET", http.Header{"X_http_method_overrid_": {"PUT"}}, "GET"},
		{"POST", http.Header{"X-Http-Method-Override": {"MERGE"}}, "PUT"},
		{"DELETE", override, "PUT"},
		{"get", override, "PUT"},
		{"POST", nil, "POST"},
	} {
		if got := MatchMethod(tt.method, ReadHeader(tt.header), QueryNames{}); got != tt.want {
			t.Errorf("MatchMethod(%s, %v) = %s, want %s", tt.method, tt.header, got, tt.want)
		}
	}
	// In the query, or possibly in a form field (a form body), too.
	for _, tt := range []struct {
		method string
		header http.Header
		query  string
		want   string
	}{
		{"GET", nil, "X-HTTP-Method-Override=PUT", "PUT"},
		{"HEAD", nil, "x=1&_method=PUT", "PUT"},
		{"OPTIONS", nil, "X%5FHTTP%5FMethod=PUT", "PUT"},
		{"POST", nil, "%2Emethod=PUT", "PUT"},
		{"GET", nil, "x.method=PUT", "GET"},
		{"GET", nil, "x=_method", "GET"},
		{"GET", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, "", "PUT"},
		{"POST", http.Header{"Content-Type": {"Multipart/Form-Data; boundary=b"}}, "", "PUT"},
		{"GET", http.Header{"Content-Type": {"application/json"}}, "", "GET"},
		{"POST", http.Header{"Content-Type": {"text/plain"}}, "to=1", "POST"},
	} {
		if got := MatchMethod(tt.method, ReadHeader(tt.header), ReadQueryNames(tt.query)); got != tt.want {
			t.Errorf("MatchMethod(%s, %v, %q) = %s, want %s", tt.method, tt.header, tt.query, got, tt.want)
		}
	}
	if got := matchResult(m.Match(MatchMethod("GET", ReadHeader(override), QueryNames{}), oauthApp+"/communication")); got != "communication" {
		t.Errorf("a GET of communication with an override matched %s", got)
	}
	for _, p := range []string{"/communication/startMessaging", "/me/callForwardingSettings/turnOffCallForwarding", "/communication/phoneAudio/holdPhoneAudio"} {
		if got := matchResult(m.Match(MatchMethod("POST", ReadHeader(override), QueryNames{}), oauthApp+p)); got != "near miss" {
			t.Errorf("a POST of %s with an override matched %s, want a near miss", p, got)
		}
	}
	if got := matchResult(m.Match(MatchMethod("POST", ReadHeader(override), QueryNames{}), oauthApp+"/communication/startPhoneAudio")); got != "startPhoneAudio" {
		t.Errorf("a POST of startPhoneAudio with an override matched %s", got)
	}
	for _, tt := range []struct {
		header http.Header
		want   bool
	}{
		{nil, false},
		{http.Header{"X-Original-Url": {oauthApp + "/people/search?q=1"}}, false},
		{http.Header{"X-Original-Url": {oauthApp + "/communication/startPhoneAudio"}}, true},
		{http.Header{"X-Rewrite-Url": {"https://fe1.contoso.com" + oauthApp + "/communication/startPhoneAudio?to=x"}}, true},
		{http.Header{"X-Original-Url": {oauthApp + "/communication/startPhoneAudio%09"}}, true},
		{http.Header{"X-Original-Url": {oauthApp + "/communication"}}, true},
		{http.Header{"X-Original-Url": {"%zz"}}, true},
		{http.Header{"X-Original-Url": {""}}, true},
		{http.Header{"X-Original-Url": {oauthApp + "/people/search", oauthApp + "/batch"}}, true},
		{http.Header{"X_original_url": {oauthApp + "/communication/startPhoneAudio"}}, true},
		{http.Header{"X-Original-Url": {oauthApp + "/people/search"}, "X_rewrite_url": {oauthApp + "/communication"}}, true},
		{http.Header{"X_rewrite-Url": {oauthApp + "/people/search"}}, false},
	} {
		if got := m.RewriteNamesOperation("POST", ReadHeader(tt.header)); got != tt.want || ReadHeader(tt.header).RewritesURL() != (len(tt.header) > 0) {
			t.Errorf("RewriteNamesOperation(%v) = %v, want %v", tt.header, got, tt.want)
		}
	}
	// A GET whose header lines, each a read, ASP.NET would read joined
	// (a/communication/x,/../startPhoneAudio): more than one line of a
	// header is reported, whatever the lines.
	for _, tt := range []struct {
		header http.Header
		want   bool
	}{
		{http.Header{"X-Original-Url": {oauthApp + "/communication/x"}}, false},
		{http.Header{"X-Original-Url": {oauthApp + "/communication/x", "/../startPhoneAudio"}}, true},
		{http.Header{"X-Original-Url": {oauthApp + "/people/search"}, "X_original_url": {oauthApp + "/people/search"}}, true},
		{http.Header{"X-Original-Url": {oauthApp + "/people/search"}, "X-Rewrite-Url": {oauthApp + "/people/search"}}, false},
	} {
		if got := m.RewriteNamesOperation("GET", ReadHeader(tt.header)); got != tt.want {
			t.Errorf("GET: RewriteNamesOperation(%v) = %v, want %v", tt.header, got, tt.want)
		}
	}
	plain := http.Header{"Content-Type": {"application/json"}}
	if n := testing.AllocsPerRun(100, func() {
		m.RewriteNamesOperation(MatchMethod("GET", ReadHeader(plain), QueryNames{}), ReadHeader(plain))
	}); n != 0 {
		t.Errorf("%v allocations without the headers", n)
	}
}

func TestMatchAllocations(t *testing.T) {
	m := mustMatcher(t)
	for _, tt := range []struct{ method, path string }{
		{"GET", oauthApp + "/events"},
		{"POST", oauthApp + "/communication/conversations/eee0/messaging/sendMessage"},
		{"POST", oauthApp + "/communication/conversations/eee0/audioVideo/stopAudio"},
		{"POST", oauthApp + "/communication/conversations/eee0/audioVideo/transfer"},
		{"POST", oauthApp + "/communication/conversations/eee0/transfer"},
		{"POST", oauthApp + "/communication/invitations/eee0/accept"},
		{"POST", oauthApp + "/communication/invitations/eee0/forward"},
		{"POST", oauthApp + "/communication/startPhoneAudio"},
		{"PUT", oauthApp + "/communication"},
		{"GET", oauthApp + "/communication"},
		{"POST", oauthApp + "/people/sip:john@contoso/startPhoneAudio-x/presence~x"},
	} {
		if n := testing.AllocsPerRun(100, func() { m.Match(tt.method, tt.path) }); n != 0 {
			t.Errorf("%s %s: %v allocations", tt.method, tt.path, n)
		}
	}
}

func BenchmarkMatch(b *testing.B) {
	m := mustMatcher(b)
	for _, tt := range []struct{ name, method, path string }{
		{"events", "GET", oauthApp + "/events"},
		{"unrelated POST", "POST", oauthApp + "/communication/conversations/eee0/messaging/sendMessage"},
		{"startPhoneAudio", "POST", oauthApp + "/communication/startPhoneAudio"},
		{"near miss", "POST", oauthApp + "/communication/startPhoneAudio\u200b"},
	} {
		b.Run(tt.name, func(b *testing.B) {
			for b.Loop() {
				m.Match(tt.method, tt.path)
			}
		})
	}
}

// TestTableRowsBelowPUTResources: an operation of the default table whose
// path is a child of a PUT row's resource (communication, the forwarding
// settings), of the phones collection's items or of a conversation's
// modality (audioVideo, phoneAudio) is a resource of the pool also to a
// table without it, so that an operator's table that leaves it out
// passes it on rather than refusing it as a near miss: subResources
// lists every such row.
func TestTableRowsBelowPUTResources(t *testing.T) {
	under := map[string]string{
		"communication":            oauthApp + "/communication/",
		"audioVideo":               oauthApp + "/communication/conversations/eee0/audioVideo/",
		"phoneAudio":               oauthApp + "/communication/conversations/eee0/phoneAudio/",
		"callForwardingSettings":   oauthApp + "/me/callForwardingSettings/",
		"immediateForwardSettings": oauthApp + "/me/callForwardingSettings/immediateForwardSettings/",
		"simultaneousRingSettings": oauthApp + "/me/callForwardingSettings/simultaneousRingSettings/",
		"unansweredCallSettings":   oauthApp + "/me/callForwardingSettings/unansweredCallSettings/",
	}
	all := DefaultOperations()
	checked := 0
	for i, op := range all {
		for _, p := range op.Paths {
			parent, child, ok := strings.Cut(strings.TrimPrefix(p, "/"), "/")
			prefix, below := under[parent]
			if !ok || !below || strings.Contains(child, "/") {
				continue
			}
			others := append(slices.Clone(all[:i]), all[i+1:]...)
			m, err := NewMatcher(others)
			if err != nil {
				t.Fatal(err)
			}
			if got := matchResult(m.Match(op.Method, prefix+child)); got != "none" {
				t.Errorf("%s %s%s with a table without %s: %s, want it passed on", op.Method, prefix, child, op.Rel, got)
			}
			checked++
		}
	}
	if checked < 20 {
		t.Fatalf("checked %d paths: the table's paths are spelled otherwise than this test reads them", checked)
	}
	// Below the phones collection's items, whose ids the table's paths
	// do not spell.
	for _, tt := range []struct{ rel, method, path string }{
		{"phone", "PUT", oauthApp + "/me/phones/work"},
		{"changeNumber", "POST", oauthApp + "/me/phones/work/changeNumber"},
		// Below an invitation and a conversation.
		{"acceptWithPhoneAudio", "POST", oauthApp + "/communication/invitations/eee0/acceptWithPhoneAudio"},
		{"acceptWithPhoneAudio", "POST", oauthApp + "/communication/audioVideoInvitations/eee0/acceptWithPhoneAudio"},
		{"addParticipant", "POST", oauthApp + "/communication/conversations/eee0/addParticipant"},
	} {
		others := slices.DeleteFunc(DefaultOperations(), func(op Operation) bool { return op.Rel == tt.rel })
		m, err := NewMatcher(others)
		if err != nil {
			t.Fatal(err)
		}
		if got := matchResult(m.Match(tt.method, tt.path)); got != "none" {
			t.Errorf("%s %s with a table without %s: %s, want it passed on", tt.method, tt.path, tt.rel, got)
		}
	}
}

// headerHasByWalk is the oracle of a Header: whether h has a value of
// one of names, looked up by name and found by walking h for the names'
// '_' spellings, as each check did by itself.
func headerHasByWalk(h http.Header, names ...string) bool {
	for range headerValues(h, names) {
		return true
	}
	return false
}

// checkReadHeader fails t when ReadHeader(h) answers a check other than
// headerHasByWalk does.
func checkReadHeader(t *testing.T, h http.Header) {
	t.Helper()
	hd := ReadHeader(h)
	if got, want := hd.OverridesMethod(), headerHasByWalk(h, methodOverrideHeaders[:]...); got != want {
		t.Errorf("%v: OverridesMethod %v, want %v", h, got, want)
	}
	if got, want := hd.RewritesURL(), headerHasByWalk(h, rewriteURLHeaders[:]...); got != want {
		t.Errorf("%v: RewritesURL %v, want %v", h, got, want)
	}
	for w, name := range map[WatchedHeader]string{WebTicketHeader: "X-Ms-Webticket", DataHeader: "Data"} {
		if got, want := hd.HasWatched(w), headerHasByWalk(h, name); got != want {
			t.Errorf("%v: HasWatched(%s) %v, want %v", h, name, got, want)
		}
	}
	for _, name := range append(slices.Clone(watchedHeaders), "Cookie", "X-Ms-Origin", "Content-Type") {
		if got, want := hd.Has(name), headerHasByWalk(h, name); got != want {
			t.Errorf("%v: Has(%s) %v, want %v", h, name, got, want)
		}
	}
}

// TestReadHeader: one walk of a header answers every check as each
// check's own walk does: a header by its canonical name or spelled with
// '_' for some '-' in any letter case, not in another case without a
// '_' (a name a server canonicalized cannot have one), nor a name with
// no value; a name the Header does not watch is looked up and walked.
func TestReadHeader(t *testing.T) {
	if len(watchedHeaders) > 32 {
		t.Fatalf("%d watched headers, more than a Header's bits", len(watchedHeaders))
	}
	for _, h := range []http.Header{
		nil,
		{},
		{"Content-Type": {"application/json"}, "Authorization": {"Bearer x"}, "Accept": {"application/json"}},
		{"X-Http-Method-Override": {"PUT"}},
		{"X_http_method": {"PUT"}},
		{"x-method-override": {"PUT"}},
		{"X-Method-Override": {}},
		{"X_method_override": nil},
		{"X-Original-Url": {"/x"}},
		{"x_REWRITE_url": {"/x"}},
		{"X-Ms-Webticket": {"t"}},
		{"X_MS_WEBTICKET": {"t"}},
		{"x-ms-webticket": {"t"}},
		{"Data": {"{}"}},
		{"data": {"{}"}},
		{"Cookie": {"a=b"}},
		{"Content_Type": {"application/json"}},
		{"X_Ms_Origin": {"https://a.example"}},
		{"X-Http-Method-Override": {"PUT"}, "X_rewrite_url": {"/x"}, "Data": {"{}"}, "X-Ms-Webticket": {""}},
	} {
		checkReadHeader(t, h)
	}
}

// FuzzReadHeader checks a Header against each check's own walk for
// headers of any names.
func FuzzReadHeader(f *testing.F) {
	f.Add("X_http_method_override", "X-Original-Url", "Data", true)
	f.Add("x_ms_webticket", "Content-Type", "X-Rewrite-Url", false)
	f.Fuzz(func(t *testing.T, a, b, c string, empty bool) {
		h := http.Header{a: {"v"}, b: {"w", "x"}}
		if empty {
			h[c] = nil
		} else {
			h[c] = []string{""}
		}
		checkReadHeader(t, h)
	})
}

// TestFoldLookalikeDecomposesAsNFKD: foldLookalike takes each rune's
// decomposition from the normalization tables (NFKD computes a Hangul
// syllable's): every rune folds as NFKD decomposes it alone. Under the
// race detector, which finds nothing in this pure function of one
// goroutine and makes it twelve times as slow, the planes Unicode assigns
// nothing in but private use (4 to 13, 15 and 16) are read at one rune
// in 97 (.ci/run reads them all without it).
func TestFoldLookalikeDecomposesAsNFKD(t *testing.T) {
	var buf [32]byte
	for r := rune(utf8.RuneSelf); r <= unicode.MaxRune; r++ {
		if plane := r >> 16; !utf8.ValidRune(r) || raceDetector && (4 <= plane && plane <= 13 || plane >= 15) && r%97 != 0 {
			continue
		}
		var want strings.Builder
		for _, d := range string(norm.NFKD.AppendString(buf[:0], string(r))) {
			if !invisible(d) {
				want.WriteRune(dotnetFold(d))
			}
		}
		if got, _ := foldLookalike(string(r)); got != want.String() {
			t.Fatalf("foldLookalike(%U) = %q, want %q", r, got, want.String())
		}
	}
}
