package caddymodule

import (
	"net/http"
	"strings"

	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// checkFraming refuses a terminated request (or a guarded part of a
// batch) whose framing or hop-by-hop headers would make the pool see a
// request other than the one the edge checked:
//
//   - Trailer fields: net/http reads them after the body, where the edge
//     has judged the headers already, and the proxy would send them to the
//     pool after the body (an Authorization or Content-Type there is
//     one the edge never saw). They are refused rather than dropped: no
//     UCWA client sends them, and a client that does meant something by
//     them that the edge cannot honour. A request declares them in a
//     Trailer header (which the HTTP/2 and HTTP/3 servers move into
//     Request.Trailer, hence both are read); fields sent without that
//     declaration never reach the request the edge handles (net/http's
//     HTTP/1.1 server and quic-go's HTTP/3 server keep them on their own
//     copy, the HTTP/2 server drops them), so they are neither read nor
//     forwarded (TestClientsH2H3Framing).
//   - A Connection header naming anything but keep-alive or close: the
//     headers it names are hop-by-hop, and the proxy removes them, so the
//     pool would not get an Authorization, Content-Type, Host or
//     X-Ms-Origin the edge checked.
//   - Upgrade (websocket, h2c): a pool that switched protocols would open
//     a tunnel through which requests pass unchecked.
//   - A method override (X-HTTP-Method-Override and its kin): a pool that
//     honours it would run a request other than the one the edge checked
//     (a POST taken as the PUT that stores a number). No UCWA client sends
//     one.
//   - A URL of its own (X-Original-URL, X-Rewrite-URL): applications on
//     IIS take it for the request's URL, so a pool might run the request
//     at a path, or with a query, the edge never judged. No UCWA client
//     sends one.
//
// The edge forwards what it accepts with Content-Length framing and no
// trailers or Expect (see rebuild).
func checkFraming(header ucwa.Header, trailer http.Header) *ucwa.Error {
	fields := header.Map()
	if len(trailer) > 0 || len(fields["Trailer"]) > 0 {
		return errTrailers
	}
	for _, v := range fields["Connection"] {
		for token := range strings.SplitSeq(v, ",") {
			token = strings.TrimSpace(token)
			if token != "" && !strings.EqualFold(token, "keep-alive") && !strings.EqualFold(token, "close") {
				return errConnection
			}
		}
	}
	if len(fields["Upgrade"]) > 0 {
		return errUpgrade
	}
	if header.OverridesMethod() {
		return errMethodOverride
	}
	if header.RewritesURL() {
		return errRewriteURL
	}
	return nil
}

// queryMethodOverride refuses a terminated request (or a guarded part of
// a batch) whose query asks it to be taken as another method
// (?X-HTTP-Method-Override=PUT, _method, see ucwa.QueryNames),
// as checkFraming refuses the header: ASP.NET MVC reads the override
// there too, and a pool honouring it would run another request than the
// one the edge checked. The answer names the parameter as
// ucwa.QueryNames.MethodOverride spells it, never as the request did.
func queryMethodOverride(q ucwa.QueryNames) *ucwa.Error {
	name := q.MethodOverride
	if name == "" {
		return nil
	}
	return &ucwa.Error{Status: http.StatusBadRequest, Subcode: ucwa.SubcodeParameterValidationFailure,
		Message:    "The request asks in its query to be taken as another method (" + name + "); send it with its own method.",
		Parameters: []ucwa.Parameter{{Name: name, Reason: "asks for another method"}}}
}

var (
	errTrailers = ucwa.NewError(http.StatusBadRequest, ucwa.SubcodeDeserializationFailure,
		"The request declares trailer fields (Trailer); send every header before the body.")
	errConnection = ucwa.NewError(http.StatusBadRequest, ucwa.SubcodeDeserializationFailure,
		"The Connection header may name only keep-alive or close: the headers it names would not reach the pool.")
	errMethodOverride = ucwa.NewError(http.StatusBadRequest, ucwa.SubcodeDeserializationFailure,
		"The request asks to be taken as another method (X-HTTP-Method-Override); send it with its own method.")
	errRewriteURL = ucwa.NewError(http.StatusBadRequest, ucwa.SubcodeDeserializationFailure,
		"The request names another URL for itself (X-Original-URL, X-Rewrite-URL); send it to its own URL.")
	errUpgrade = ucwa.NewError(http.StatusBadRequest, ucwa.SubcodeDeserializationFailure,
		"The request asks to upgrade the connection (Upgrade); this resource takes plain HTTP requests only.")
)
