package caddymodule

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ucwa-edge/caddy-ucwa/internal/bearer"
	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// maxAuthorizationBytes bounds the Authorization header. It is checked
// before anything else looks at the value, so an oversized header costs
// nothing. Entra ID access tokens stay well under 4 KiB.
const maxAuthorizationBytes = 8 << 10

// Web ticket policies (web_tickets).
const (
	webTicketsReject  = "reject"
	webTicketsForward = "forward"
)

// provisionAuth checks the token settings, loads the keys and starts the
// jwks_url fetcher.
func (h *Handler) provisionAuth(ctx caddy.Context) error {
	if h.JWT == nil {
		return errors.New("jwt is not configured; say `jwt off` to run without bearer tokens")
	}
	if h.JWT.Off {
		if !h.JWT.OffOnly() || len(h.Scopes) > 0 || h.operationScopes() || h.WebTickets != "" || len(h.Challenge) > 0 || h.DenyCallers != nil {
			return errors.New("jwt: `off` cannot be combined with other jwt settings, scopes, web_tickets, challenge or deny_callers: with tokens off they would not be enforced")
		}
		return nil
	}
	switch word := ucwa.Word(h.WebTickets, webTicketsReject, webTicketsForward); word {
	case "":
		h.WebTickets = webTicketsReject
	case webTicketsReject, webTicketsForward:
		h.WebTickets = word
	default:
		return ucwa.WordError("web_tickets", h.WebTickets, webTicketsReject, webTicketsForward)
	}
	var err error
	if h.realmParam, h.extraParams, err = challengeParams(h.Challenge, caddy.NewReplacer()); err != nil {
		return fmt.Errorf("challenge: %w", err)
	}
	firstIssuer, err := h.JWT.FirstIssuer()
	if err != nil {
		return fmt.Errorf("jwt: %w", err)
	}
	denied, err := h.DenyCallers.compile()
	if err != nil {
		return err
	}
	h.registerDenyList(denied)
	// A nil *Registry in a Registerer would not be nil.
	var registerer prometheus.Registerer
	if reg := ctx.GetMetricsRegistry(); reg != nil {
		registerer = reg
	}
	if h.verifier, err = bearer.New(h.JWT, func(claims bearer.Claims) *grant {
		return makeGrant(claims, firstIssuer, h.issuersApart != nil && h.issuersApart.Load(), denied)
	}, bearer.Options{Logger: h.logger, Registerer: registerer,
		Now: bearerNow, AfterFunc: bearerAfterFunc, UnknownKidWait: unknownKidWait}); err != nil {
		return fmt.Errorf("jwt: %w", err)
	}
	denied.warnUnacceptedIssuers(h.logger, h.verifier.Issuers())
	return nil
}

// bearerNow is the clock of token checks and of a jwks_url fetcher's
// limits, bearerAfterFunc the timer of the waits for a jwks_file's reads
// (nil: time.AfterFunc), and unknownKidWait how long a token with an
// unknown kid waits for its key set to be fetched again (0: bearer's
// default); a test replaces them.
var (
	bearerNow       = time.Now
	bearerAfterFunc func(time.Duration, func()) interface{ Stop() bool }
	unknownKidWait  time.Duration
)

// operationScopes reports whether an operation's scopes are configured.
func (h *Handler) operationScopes() bool {
	for _, oc := range h.Operations {
		if oc != nil && len(oc.Scopes) > 0 {
			return true
		}
	}
	return false
}

// cleanupAuth releases the jwks_url fetcher, the last handler using it
// stopping it, and the handler's deny list.
func (h *Handler) cleanupAuth() error {
	h.retireDenyList()
	if h.verifier != nil {
		return h.verifier.Close()
	}
	return nil
}

// grantPlaceholders are the placeholders a grant publishes (see publish),
// in the order of grant.placeholders.
var grantPlaceholders = [...]string{
	"http.auth.user.id", "http.ucwa.sub", "http.ucwa.oid",
	"http.ucwa.tid", "http.ucwa.client_id", "http.ucwa.scopes",
	"http.ucwa.caller", "http.ucwa.iss", "http.ucwa.tenant",
	"http.ucwa.tenant_caller",
}

// grant is what the request path needs from a verified token. The
// verifier caches it with the token, and it is never changed once made,
// so cache hits share it.
type grant struct {
	// The token's scopes (scp, scope and roles).
	scopes []string
	// The values of grantPlaceholders (strings), held as interface values
	// so that publishing them on a cache hit costs no allocation.
	placeholders [len(grantPlaceholders)]any
	// provider answers the grant's own placeholders (http.ucwa.*) for a
	// request's replacer: made once, so that adding it to a replacer
	// costs no allocation either.
	provider caddy.ReplacerFunc
	// issuer is the iss that tells the caller apart (see makeGrant): ""
	// for a token with tid, and for one of the first issuer or when no
	// issuer is listed.
	issuer string
	// storeOwner is whom the caller's reservations count for in a memory
	// store (see intake.appendStoreOwner): a digest made once per token,
	// not once per request.
	storeOwner [storeOwnerLen]byte
	// limitDigest is the hashed part of a limit's store key (see
	// limit.storeKey) whose key expands to limitKey, the caller told
	// apart by tenant ({http.ucwa.tenant_caller}, the default key): made
	// once per token; "" when the token names no caller.
	limitKey, limitDigest string
	// claims are those a deny list reads, for a reload's new lists (see
	// barredSinceReload); denied is the claim by which the handler's
	// deny_callers names the caller, "" when it does not.
	claims callerClaims
	denied string
	// audit is the audit trail's logger for the grant's last audited
	// request, with its operation, application and caller encoded once
	// (see auditLogger).
	audit atomic.Pointer[auditPrefix]
}

// makeGrant makes the grant of a verified token's claims, firstIssuer
// being the first accepted iss ("" when none is listed) and denied the
// handler's deny_callers; apart: every token without tid has its iss
// for a tenant, the first issuer's too (see claimFirstIssuer).
//
// The caller is its tenant and its id. A token's tenant is its tid. A
// token without tid has its iss for a tenant when it comes from an
// accepted issuer other than the first, so that two identity providers'
// subjects of one name are two callers; so does every token without tid
// when apart, another handler of the config on the same store listing
// another issuer first. The first issuer's (and, with no
// issuer listed, every signer's) tid-less callers have no tenant: their
// idempotency keys are then those an edge that does not tell issuers
// apart makes too, so that a retry that crosses versions of a fleet
// sharing a Redis finds its reservation (see appendIdempotencyKey).
// Idempotency keys and store owners mark an iss apart from a tid; the
// placeholders cannot, so a tid of an accepted issuer's very iss text
// would share that issuer's callers' budgets under {http.ucwa.tenant}
// (only an accepted issuer signs such a tid).
func makeGrant(claims bearer.Claims, firstIssuer string, apart bool, denied deniedCallers) *grant {
	scopes := claims.Scopes()
	sub, oid, tid, iss := claims.String("sub"), claims.String("oid"), claims.String("tid"), claims.String("iss")
	g := &grant{scopes: scopes, claims: readCallerClaims(claims)}
	g.denied = denied.match(g.claims)
	if tid == "" && (apart || firstIssuer != "" && iss != firstIssuer) {
		g.issuer = iss
	}
	id, tenant := cmp.Or(oid, sub), cmp.Or(tid, g.issuer)
	if id != "" {
		// As {http.ucwa.tenant}/{http.ucwa.caller} expands (see
		// limit.expandKey): a '/' in a tenant or an id never makes two
		// callers one value.
		b := append(appendEscaped(nil, tenantCallerEscapes, tenant), '/')
		g.limitKey = string(appendEscaped(b, tenantCallerEscapes, id))
	}
	g.placeholders = [...]any{
		cmp.Or(sub, oid), sub, oid, tid,
		clientID(claims), strings.Join(scopes, " "),
		id, iss, tenant, g.limitKey,
	}
	g.provider = g.placeholder
	g.storeOwner = verifiedStoreOwner(g.caller())
	if g.limitKey != "" {
		g.limitDigest = string(appendLimitDigest(nil, DefaultLimitKey, g.limitKey, false))
	}
	return g
}

// clientID is the client application a token was issued to: appid (Entra
// ID's v1.0 tokens), else azp (v2.0 and OpenID Connect), else client_id
// (RFC 9068's JWT access tokens), the claims deny_callers reads.
func clientID(claims bearer.Claims) string {
	return cmp.Or(claims.String("appid"), claims.String("azp"), claims.String("client_id"))
}

// placeholder returns the value of one of the grant's http.ucwa.*
// placeholders.
func (g *grant) placeholder(key string) (any, bool) {
	if !strings.HasPrefix(key, "http.ucwa.") {
		return nil, false
	}
	for i := 1; i < len(grantPlaceholders); i++ {
		if key == grantPlaceholders[i] {
			return g.placeholders[i], true
		}
	}
	return nil, false
}

// caller returns the verified caller's tenant (see makeGrant): its tid,
// or issuer, the iss that stands for it; and its id (oid, else sub:
// Entra ID's sub differs for each client application of the same user,
// its oid does not).
func (g *grant) caller() (tid, issuer, id string) {
	tid, _ = g.placeholders[3].(string)
	id, _ = g.placeholders[6].(string)
	return tid, g.issuer, id
}

// grants reports whether the token grants one of op's scopes.
func (g *grant) grants(op *ucwa.Operation) bool {
	return slices.ContainsFunc(op.Scopes, func(s string) bool { return slices.Contains(g.scopes, s) })
}

// scopeError is the 403 answer to a token that grants none of op's
// scopes, and its WWW-Authenticate challenge (RFC 6750 3.1): the 401's
// realm and challenge parameters, with error and scope. A client that
// finds its token falls short asks its authorization server for another
// by what the challenge names (authorization_uri, client_id), and the
// realm tells it which protection space the token is for; without them,
// the 403 would name another space than the 401 of the same resource.
func (h *Handler) scopeError(op *ucwa.Operation) (*ucwa.Error, string) {
	return ucwa.NewError(http.StatusForbidden, "", "The token grants none of the scopes "+op.Rel+" needs: "+strings.Join(op.Scopes, ", ")+"."),
		"Bearer " + h.realmParam + `, error="insufficient_scope", scope="` + strings.Join(op.Scopes, " ") + `"` + h.extraParams
}

// noBearerToken is the 401's message to a request without a Bearer
// Authorization.
const noBearerToken = "The request has no bearer token (Authorization: Bearer)."

// bearerCredentials reads an Authorization header's value: the token
// of its Bearer scheme (in any letter case), or why it has none. Spaces
// and tabs around the token are HTTP's optional whitespace and are
// trimmed; any other space (a no-break space, say) a pool takes as part
// of the token, and so does the edge.
func bearerCredentials(value string) (token, refusal string) {
	scheme, token, _ := strings.Cut(value, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		if before, _, tab := strings.Cut(scheme, "\t"); tab && strings.EqualFold(before, "Bearer") {
			// RFC 9110 11.4: spaces after the scheme, not a tab.
			return "", "The request has no bearer token: Bearer must be followed by a space, then the token."
		}
		return "", noBearerToken
	}
	return strings.Trim(token, " \t"), ""
}

// authorize checks the bearer token of in's request and that it grants
// one of the operation's scopes, and keeps its grant in in for the parts
// of a batch. When it returns false it has written the answer (401 or
// 403) itself. It runs before the body is read.
func (h *Handler) authorize(w http.ResponseWriter, in *intake) bool {
	if h.verifier == nil { // jwt off
		return true
	}
	r, errFormat := in.r, in.errFormat
	values := r.Header["Authorization"]
	if len(values) == 0 {
		return h.unauthorized(w, r, errFormat, false, noBearerToken, nil)
	}
	// Bounded before anything parses it: megabytes of dots cost nothing.
	if len(values[0]) > maxAuthorizationBytes {
		return h.unauthorized(w, r, errFormat, true, fmt.Sprintf("The Authorization header is longer than %d bytes.", maxAuthorizationBytes), nil)
	}
	if len(values) > 1 {
		return h.unauthorized(w, r, errFormat, true, "The request has more than one Authorization header.", nil)
	}
	raw, refusal := bearerCredentials(values[0])
	if refusal != "" {
		return h.unauthorized(w, r, errFormat, false, refusal, nil)
	}
	if strings.HasPrefix(raw, "cwt=") {
		if h.WebTickets == webTicketsForward {
			return true // the pool checks web tickets itself
		}
		return h.unauthorized(w, r, errFormat, true, "Web tickets (Bearer cwt=...) are not accepted here; use an OAuth access token.", nil)
	}
	g, err := h.verifier.Verify(r.Context(), raw)
	if err != nil {
		message := "The bearer token could not be verified."
		var refused *bearer.Error
		if errors.As(err, &refused) {
			message, err = refused.Message, refused.Cause
		}
		return h.unauthorized(w, r, errFormat, true, message, err)
	}
	g.publish(r)
	if g.denied != "" {
		in.refusedBy = "caller:" + g.denied
		// Kept, so that the audit line's error has its subcode, as the
		// access log's ucwa_error and the metric have.
		in.failure = deniedCallerError(in.op)
		h.reject(w, r, errFormat, in.failure, nil)
		return false
	}
	if !g.grants(in.op) {
		e, challenge := h.scopeError(in.op)
		w.Header().Set("WWW-Authenticate", challenge)
		h.reject(w, r, errFormat, e, nil)
		return false
	}
	in.grant = g
	return true
}

// unauthorized answers 401 with a Bearer challenge; invalid says whether
// a token was presented (error="invalid_token") or simply missing.
func (h *Handler) unauthorized(w http.ResponseWriter, r *http.Request, errFormat errorFormat, invalid bool, message string, cause error) bool {
	challenge := "Bearer " + h.realmParam
	if invalid {
		challenge += `, error="invalid_token"`
	}
	w.Header().Set("WWW-Authenticate", challenge+h.extraParams)
	h.reject(w, r, errFormat, ucwa.NewError(http.StatusUnauthorized, "", message), cause)
	return false
}

// reject logs why at debug level (the client's message and, for a token
// that failed verification, the cause; never the token), names the answer
// on the access log line and writes the UCWA error body. The cause's long
// digit runs are masked as a rejection's message is: the JSON decoder's
// error of a header or claims quotes a number it could not read
// ("cannot unmarshal number 19005551234e999"), which the client wrote.
func (h *Handler) reject(w http.ResponseWriter, r *http.Request, errFormat errorFormat, e *ucwa.Error, cause error) {
	if c := h.logger.Check(zap.DebugLevel, "bearer token rejected"); c != nil {
		fields := []zap.Field{zap.Int("status", e.Status), zap.String("reason", e.Message), zap.String("remote_ip", remoteIP(r))}
		if cause != nil {
			fields = append(fields, zap.String("cause", maskDigitRuns(cause.Error())))
		}
		c.Write(fields...)
	}
	h.nameAnswer(r, e)
	closeUnreadBody(w, r) // authorize comes before the body is read
	e.Write(w, errFormat.get())
}

// publish makes the verified claims available as placeholders for access
// logs and header rules: {http.auth.user.id} (sub, else oid),
// {http.ucwa.sub}, {http.ucwa.oid}, {http.ucwa.tid}, {http.ucwa.client_id}
// (appid, else azp), {http.ucwa.scopes} (space-separated) and
// {http.ucwa.caller} (oid, else sub: the same user whatever client
// application the token was issued to), {http.ucwa.iss},
// {http.ucwa.tenant} (tid; for a token without tid from an accepted
// issuer other than the first, its iss; see makeGrant) and
// {http.ucwa.tenant_caller} (the caller told apart by tenant: tenant and
// caller as {http.ucwa.tenant}/{http.ucwa.caller} expands in a limit's
// key, '/' and '\' in a value escaped with '\'; empty without caller).
// {http.auth.user.id}, which Caddy's access log and other handlers read
// and set too, is set as Caddy's authentication handler sets it; the
// edge's own are answered by the grant's provider, looked up only when
// something reads them.
func (g *grant) publish(r *http.Request) {
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		return
	}
	repl.Set(grantPlaceholders[0], g.placeholders[0])
	repl.Map(g.provider)
}

// firstIssuers holds, for each config load and store data, the first
// issuer (see makeGrant) of the handlers that verify tokens and keep
// idempotency keys or limits' budgets in that data. The first issuer's
// callers without tid have no tenant, so that two handlers on one store
// that list other issuers first (a site for each identity provider, as
// the README advises for issuers with keys of their own) would give a
// user of one provider and another of the other with the same sub the
// same caller: one budget, and each other's idempotent answers. Such
// handlers tell every token without tid apart by its iss instead
// (issuersApart), whichever of them is provisioned first, so that edges
// of a fleet that run one config make the same keys.
var firstIssuers = struct {
	mu     sync.Mutex
	claims map[issuerClaimKey]*issuerClaim
}{claims: map[issuerClaimKey]*issuerClaim{}}

// issuerClaimKey is a config load and the data of a store
// (sharedStore.data).
type issuerClaimKey struct {
	load any
	data string
}

// issuerClaim is the first issuer the first handler to claim it gave,
// whether another handler gave another (apart, which every handler of
// the claim reads), and by how many handlers it is held.
type issuerClaim struct {
	first    string
	apart    atomic.Bool
	handlers int
}

// claimFirstIssuer notes the handler's first issuer in firstIssuers,
// when it verifies tokens into a store, and sets the claim apart when
// another handler of the config load on the same data lists another
// issuer first (or none). Cleanup lets go of it (releaseFirstIssuer).
func (h *Handler) claimFirstIssuer(ctx caddy.Context) {
	if h.store == nil || h.verifier == nil || !h.needsStore() {
		return
	}
	first, err := h.JWT.FirstIssuer()
	if err != nil {
		return // refused by provisionAuth already
	}
	k := issuerClaimKey{configLoad(ctx), h.store.data}
	firstIssuers.mu.Lock()
	defer firstIssuers.mu.Unlock()
	c := firstIssuers.claims[k]
	if c == nil {
		c = &issuerClaim{first: first}
		firstIssuers.claims[k] = c
	} else if c.first != first && !c.apart.Load() {
		c.apart.Store(true)
		h.logger.Info("two handlers of this config keep callers in one store and list different issuers first: " +
			"every token without tid is told apart by its iss in both, so that two identity providers' users of one sub are two callers")
	}
	c.handlers++
	h.issuersApart, h.issuerClaim = &c.apart, k
}

// releaseFirstIssuer lets go of the handler's claim in firstIssuers.
func (h *Handler) releaseFirstIssuer() {
	if h.issuersApart == nil {
		return
	}
	firstIssuers.mu.Lock()
	defer firstIssuers.mu.Unlock()
	if c := firstIssuers.claims[h.issuerClaim]; c != nil {
		if c.handlers--; c.handlers <= 0 {
			delete(firstIssuers.claims, h.issuerClaim)
		}
	}
}
