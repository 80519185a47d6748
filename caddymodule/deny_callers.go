package caddymodule

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/ucwa-edge/caddy-ucwa/internal/bearer"
	"github.com/ucwa-edge/caddy-ucwa/internal/directive"
	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// CallerDenyList names callers whose verified tokens the edge refuses for
// every guarded operation, whatever their scopes: what an administrator
// does the moment the audit trail shows a stolen token or a compromised
// application at work, since an identity provider's access tokens stay
// valid until they expire (an hour or more) after the user or the
// application is disabled there. A token matches when one of its claims
// is one of the values given for it, compared exactly as the token (and
// the audit trail's caller) has it, but for a GUID's letter case; values
// may use global placeholders such as {env.*}, replaced at startup. Such
// a request is answered 403 Forbidden, subcode CallerDenied, before its
// body is read (or, on a handler a reload has cleaned up since, once it
// is in: see barredSinceReload), and nothing is delivered; the audit line
// names the claim that matched (refused_by "caller:<claim>"). Requests the edge
// does not guard (GETs, say) pass as before. A list of no values ({},
// or lists left empty) names no caller, as a config template that lists
// none renders it, and as Caddy reads its own empty lists (a remote_ip
// matcher or trusted_proxies of no range). Not with jwt off. Default:
// none.
type CallerDenyList struct {
	// Subjects (the token's sub). Default: none.
	Sub []string `json:"sub,omitempty"`

	// Object ids (oid): a user of Entra ID whatever client application
	// the token was issued to. Default: none.
	OID []string `json:"oid,omitempty"`

	// Tenants (tid): every user of a tenant, a guest tenant's say.
	// Default: none.
	TID []string `json:"tid,omitempty"`

	// Client applications: a token's appid (Entra ID's v1.0 tokens), azp
	// (v2.0, OpenID Connect) or client_id (RFC 9068), any one;
	// {http.ucwa.client_id} and the audit trail name the first of them.
	// Default: none.
	ClientID []string `json:"client_id,omitempty"`

	// Issuers (iss). Default: none.
	Iss []string `json:"iss,omitempty"`
}

// deniedCallers is a CallerDenyList ready to match claims.
type deniedCallers map[deniedClaim]struct{}

type deniedClaim struct {
	claim, value string
}

// The claims a deny list matches, in the order a match is named.
var deniedCallerClaims = [...]string{"sub", "oid", "tid", "client_id", "iss"}

// lists returns the list's values of each of deniedCallerClaims.
func (l *CallerDenyList) lists() [len(deniedCallerClaims)][]string {
	return [...][]string{l.Sub, l.OID, l.TID, l.ClientID, l.Iss}
}

// compile checks the list and makes it ready to match (nil when it names
// no caller). Global placeholders ({env.*}) are replaced, as in the jwt
// settings the same values come from (an issuer): left as text, a value
// would match no token and bar nobody, so an unset variable, an unknown
// placeholder or one left open stops startup. An empty value would match
// every token without the claim.
func (l *CallerDenyList) compile() (deniedCallers, error) {
	if l == nil {
		return nil, nil
	}
	repl := caddy.NewReplacer()
	var denied deniedCallers
	for i, values := range l.lists() {
		for _, v := range values {
			v, err := bearer.Resolve(repl, "deny_callers: "+deniedCallerClaims[i], v)
			if err != nil {
				return nil, err
			}
			v = foldGUID(v)
			if v == "" {
				return nil, fmt.Errorf("deny_callers: %s: an empty value would match every token without %s", deniedCallerClaims[i], deniedCallerClaims[i])
			}
			if strings.TrimFunc(v, invisibleAtEnd) != v {
				return nil, fmt.Errorf("deny_callers: %s: a value begins or ends with white space or an invisible character (a no-break or zero-width space, say), which the claim an identity provider writes has not: it would bar nobody", deniedCallerClaims[i])
			}
			if strings.TrimFunc(v, quotationMark) != v {
				return nil, fmt.Errorf("deny_callers: %s: a value begins or ends with a quotation mark (a Caddyfile's ' or a Docker env-file's \" kept in it, a typographic quote, a Markdown backquote), which the claim an identity provider writes has not: it would bar nobody", deniedCallerClaims[i])
			}
			if strings.ContainsFunc(v, invisibleWithin(deniedCallerClaims[i])) {
				return nil, fmt.Errorf("deny_callers: %s: a value holds white space or an invisible character (several values in one placeholder, a {file.*} of one a line or a variable of a list, say), which the claim an identity provider writes has not: it would bar nobody, not even the first; give each value its own", deniedCallerClaims[i])
			}
			if denied == nil {
				denied = make(deniedCallers)
			}
			denied[deniedClaim{deniedCallerClaims[i], v}] = struct{}{}
		}
	}
	return denied, nil
}

// callerClaims are the claims of a verified token a deny list reads, in
// the order of callerClaimNames.
type callerClaims [len(callerClaimNames)]string

// callerClaimNames are the token's claims a deny list reads, in the order
// a match is named, and deniedClaimOf the list's claim each is matched
// against: client_id is read from appid (Entra ID's v1.0 tokens), azp
// (v2.0, OpenID Connect) and client_id (RFC 9068's JWT access tokens, as
// IdentityServer writes them), so that a token with several, whichever
// the grant names, is denied by any.
var (
	callerClaimNames = [...]string{"sub", "oid", "tid", "appid", "azp", "client_id", "iss"}
	deniedClaimOf    = [len(callerClaimNames)]string{"sub", "oid", "tid", "client_id", "client_id", "client_id", "iss"}
)

// readCallerClaims reads the claims a deny list matches, a GUID's in
// lower case (see foldGUID).
func readCallerClaims(claims bearer.Claims) callerClaims {
	var c callerClaims
	for i, name := range callerClaimNames {
		c[i] = foldGUID(claims.String(name))
	}
	return c
}

// invisibleAtEnd reports whether r is white space or a format character
// (a zero-width space, a byte order mark, a direction mark): what a value
// copied from a web page, a spreadsheet or a chat may bring at its ends,
// and that no sub, oid, tid, client id or issuer begins or ends with.
func invisibleAtEnd(r rune) bool {
	return unicode.IsSpace(r) || unicode.Is(unicode.Cf, r)
}

// quotationMark reports whether r quotes: what is left around a value
// where a Caddyfile does not take it for quoting (', which it keeps; ",
// kept by a Docker env-file in a variable; the typographic quotes of a
// value copied from a document or a mail; a Markdown code span's `), and
// that no sub, oid, tid, client id or issuer begins or ends with.
func quotationMark(r rune) bool {
	return r == '`' || unicode.Is(unicode.Quotation_Mark, r)
}

// invisibleWithin is the test of a character inside a value of claim:
// true for one that no such claim holds, a line break, a tab or any
// other white space or invisible character, but for a plain space in a
// sub (RFC 7519 makes it any string) or a client id (RFC 6749 A.1:
// VSCHAR). Global placeholders make one value of what they name, so a
// {file.*} that keeps barred callers one a line, or a variable that
// lists them, is a single value that matches no token: adding a second
// caller to such a file would free the first.
func invisibleWithin(claim string) func(rune) bool {
	spaceAllowed := claim == "sub" || claim == "client_id"
	return func(r rune) bool {
		return unicode.IsControl(r) || invisibleAtEnd(r) && !(r == ' ' && spaceAllowed)
	}
}

// foldGUID returns s in lower case when it is a GUID (8-4-4-4-12
// hexadecimal digits), else s as it is. A GUID's letter case means
// nothing (RFC 9562 4: case-insensitive on input): Entra ID writes oid,
// tid and appid in lower case, while Windows tools (the registry,
// PowerShell's [guid] formats, .NET's "B" format) show them in upper
// case, so a value copied from one of those would otherwise bar nobody.
// Any other value is compared exactly.
func foldGUID(s string) string {
	if len(s) != 36 {
		return s
	}
	upper := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return s
			}
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		case 'A' <= c && c <= 'F':
			upper = true
		default:
			return s
		}
	}
	if !upper {
		return s
	}
	return strings.ToLower(s)
}

// match returns the first claim of c the list denies, "" for none. It
// runs once per verified token, when its grant is made: the handler's
// list does not change while the grant is cached.
func (d deniedCallers) match(c callerClaims) string {
	if i := d.matchIndex(c); i < len(c) {
		return deniedClaimOf[i]
	}
	return ""
}

// matchIndex returns the index in c of the first claim the list denies,
// len(c) for none.
func (d deniedCallers) matchIndex(c callerClaims) int {
	if d != nil {
		for i, v := range c {
			if _, ok := d[deniedClaim{deniedClaimOf[i], v}]; ok && v != "" {
				return i
			}
		}
	}
	return len(c)
}

// liveDenyLists are the deny lists of the handlers provisioned and not
// yet cleaned up: after a reload, the new config's. Caddy's old server
// goes on serving the requests it took in after a reload, with the old
// handler and its old list, for as long as their bodies take to arrive
// (without a read_body timeout, as long as the client likes): a caller
// barred by the reload would have such a request, authorized before it,
// delivered after it. A cleaned-up handler reads these lists once a
// request's body is in (see barredSinceReload).
var liveDenyLists struct {
	sync.Mutex
	lists map[*Handler]deniedCallers
}

// registerDenyList makes h's list one of liveDenyLists until h is cleaned
// up (see retireDenyList).
func (h *Handler) registerDenyList(denied deniedCallers) {
	h.retired = new(atomic.Bool)
	if denied == nil {
		return
	}
	liveDenyLists.Lock()
	defer liveDenyLists.Unlock()
	if liveDenyLists.lists == nil {
		liveDenyLists.lists = make(map[*Handler]deniedCallers)
	}
	liveDenyLists.lists[h] = denied
}

// retireDenyList takes h's list out of liveDenyLists and has the
// requests h still serves checked against those of the handlers live
// now.
func (h *Handler) retireDenyList() {
	if h.retired == nil { // not provisioned so far
		return
	}
	h.retired.Store(true)
	liveDenyLists.Lock()
	defer liveDenyLists.Unlock()
	delete(liveDenyLists.lists, h)
}

// barredSinceReload refuses the request of in, whose token authorize
// accepted, when h has been cleaned up by a reload since and a live
// handler's deny list names its caller: the list of any ucwa handler of
// the config now running, as the old handler cannot tell which of them
// took its place. It sets in's refusedBy.
func (h *Handler) barredSinceReload(in *intake) *ucwa.Error {
	if in.grant == nil || !h.retired.Load() {
		return nil
	}
	c := in.grant.claims
	first := len(c)
	liveDenyLists.Lock()
	for _, d := range liveDenyLists.lists {
		first = min(first, d.matchIndex(c))
	}
	liveDenyLists.Unlock()
	if first == len(c) {
		return nil
	}
	in.refusedBy = "caller:" + deniedClaimOf[first]
	return deniedCallerError(in.op)
}

// warnUnacceptedIssuers warns at startup of each iss of the list that is
// none of the accepted issuers (when some are listed): a token of such an
// issuer is refused 401 before the list is read, so the value bars
// nobody, and the issuer it was meant for, accepted under another
// spelling, is not barred. A trailing '/' is the likely slip: Entra ID's
// v1.0 issuer ends with one, its v2.0 issuer does not. The value is the
// administrator's own, and an issuer's public name.
func (d deniedCallers) warnUnacceptedIssuers(logger *zap.Logger, accepted []string) {
	if len(accepted) == 0 {
		return
	}
	var unaccepted []string
	for k := range d {
		if k.claim == "iss" && !slices.Contains(accepted, k.value) {
			unaccepted = append(unaccepted, k.value)
		}
	}
	slices.Sort(unaccepted)
	for _, iss := range unaccepted {
		logger.Warn("deny_callers: an iss that is none of the jwt issuers bars nobody: tokens of that issuer are refused before the list is read; copy the accepted issuer exactly, its trailing '/' too",
			zap.String("iss", iss), zap.Strings("issuers", accepted))
	}
}

// deniedCallerError is the answer to a caller the deny list names. Its
// subcode sets it apart from a token that lacks a scope (scopeError, 403
// Forbidden too) in caddy_ucwa_edge_answers_total, the access log's
// ucwa_error and the audit line's error: a barred application is not a
// misconfigured one.
func deniedCallerError(op *ucwa.Operation) *ucwa.Error {
	return ucwa.NewError(http.StatusForbidden, ucwa.SubcodeCallerDenied, "The administrator of this service has barred this caller from "+op.Rel+".")
}

// unmarshalDenyCallers reads a deny_callers block. Each claim's line may
// be repeated, its values added to those before, so that a long list
// can be kept one caller a line.
func unmarshalDenyCallers(d *caddyfile.Dispenser) (*CallerDenyList, error) {
	if d.NextArg() {
		return nil, directive.ArgCount(d, "deny_callers", "no argument, then a block of claims (oid <value...>)")
	}
	l := new(CallerDenyList)
	err := directive.Block(d, d.Nesting(), "deny_callers", deniedCallerClaims[:], func(claim string) error {
		var list *[]string
		switch claim {
		case "sub":
			list = &l.Sub
		case "oid":
			list = &l.OID
		case "tid":
			list = &l.TID
		case "client_id":
			list = &l.ClientID
		case "iss":
			list = &l.Iss
		default:
			return d.Errf("deny_callers: unrecognized claim %q (sub, oid, tid, client_id or iss)", claim)
		}
		values, err := directive.Args(d)
		*list = append(*list, values...)
		return err
	})
	return l, err
}
