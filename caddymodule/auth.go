package caddymodule

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"

	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// DefaultScopes are the scopes of which a token needs at least one:
// the ones UCWA requires for startPhoneAudio.
var DefaultScopes = []string{"Conversations.Initiate", "Conversations.Receive"}

// maxAuthorizationBytes bounds the Authorization header. It is checked
// before anything else looks at the value, so an oversized header costs
// nothing. Entra ID access tokens stay well under 4 KiB.
const maxAuthorizationBytes = 8 << 10

// Web ticket policies (web_tickets).
const (
	webTicketsReject  = "reject"
	webTicketsForward = "forward"
)

// clock tells the time to token checks and key refetch limits. Tests
// replace it to move time without sleeping.
var clock = time.Now

// authConfig is the bearer-token part of the handler's configuration.
type authConfig struct {
	// How bearer tokens are verified. Required: a configuration that means
	// to run without tokens says so with {"off": true} (Caddyfile: `jwt off`).
	JWT *JWTConfig `json:"jwt,omitempty"`

	// The scopes of which a token must grant at least one, read from its
	// `scp` and `scope` claims (space-separated strings) and its `roles`
	// claim (an array). Matched case-sensitively.
	// Default: ["Conversations.Initiate", "Conversations.Receive"].
	Scopes []string `json:"scopes,omitempty"`

	// What to do with on-premises web tickets (`Authorization: Bearer
	// cwt=...`), which only a pool can check: "reject" answers them 401;
	// "forward" passes them to the pool unchecked, with no scope check at
	// the edge. Default: "reject".
	WebTickets string `json:"web_tickets,omitempty"`

	// Extra parameters of the `WWW-Authenticate: Bearer` challenge sent
	// with every 401, such as authorization_uri, trusted_issuers or
	// client_id (the ones UCWA clients read). "realm" sets the realm.
	// Values may use global placeholders such as {env.*}, replaced at
	// startup. Default: {"realm": "ucwa"}.
	Challenge map[string]string `json:"challenge,omitempty"`

	verifier       *tokenVerifier
	tokens         *tokenCache // nil when the cache is off
	leeway         time.Duration
	authLogger     *zap.Logger
	realmParam     string // `realm="..."`
	extraParams    string // `, name="value"` for each other challenge parameter
	scopeChallenge string // the 403's WWW-Authenticate value
}

// JWTConfig configures bearer-token (JWT) verification. At least one key
// source (jwks_url, jwks_file, public_key_files, hmac_secret) is needed
// for every listed algorithm; sources may be combined.
type JWTConfig struct {
	// Turns token checks off: every request passes unchecked. Only for
	// setups where something in front authenticates every request; it
	// cannot be combined with other settings. Default: false.
	Off bool `json:"off,omitempty"`

	// The signing algorithms accepted; a token with any other `alg` is
	// refused. Required. One or more of RS256 RS384 RS512 PS256 PS384
	// PS512 ES256 ES384 ES512 EdDSA HS256 HS384 HS512; `none` is refused.
	Algorithms []string `json:"algorithms,omitempty"`

	// A JWK Set on disk, re-read (at most once a second) when its size or
	// modification time changes. Default: none.
	JWKSFile string `json:"jwks_file,omitempty"`

	// The URL of the identity provider's JWK Set, fetched at startup, on
	// jwks_refresh (or sooner when its Cache-Control max-age is shorter,
	// but at most once a minute), and when a token names an unknown kid
	// (at most once a minute; the request waits at most 3s). The last good
	// set keeps serving while the provider is down. It must be https,
	// except on loopback. Without issuers or audiences, tokens from any
	// tenant of a shared provider (Entra ID) pass: startup warns.
	// Default: none.
	JWKSURL string `json:"jwks_url,omitempty"`

	// How often jwks_url is fetched again; at least 1m. Handlers (and
	// config reloads) naming the same URL and refresh share one fetcher
	// and its last good set. Default: 1h.
	JWKSRefresh caddy.Duration `json:"jwks_refresh,omitempty"`

	// PEM files holding public keys (PUBLIC KEY: RSA, EC or Ed25519; RSA
	// PUBLIC KEY; CERTIFICATE). Each key verifies only its own algorithm
	// family, for tokens with any kid. RSA keys need 2048 bits or more.
	// Default: none.
	PublicKeyFiles []string `json:"public_key_files,omitempty"`

	// The shared secret of HS256/HS384/HS512 tokens, at least as long as
	// the hash (32, 48, 64 bytes). It never verifies another algorithm.
	// Placeholders such as {env.UCWA_JWT_SECRET} are replaced at startup.
	// Default: none.
	HMACSecret string `json:"hmac_secret,omitempty"`

	// Accepted `iss` values, any one. Default: none, and `iss` is not
	// checked.
	Issuers []string `json:"issuers,omitempty"`

	// Accepted `aud` values; a token passes when any of its audiences is
	// one of them. Default: none, and `aud` is not checked.
	Audiences []string `json:"audiences,omitempty"`

	// Clock skew allowed when checking `exp`, `nbf` and `iat`. Default: 0.
	Leeway caddy.Duration `json:"leeway,omitempty"`

	// How many verified tokens are remembered, so that a token seen again
	// skips its signature check. The cache keeps each token's SHA-256
	// (never the token), only for tokens that passed, never past their
	// `exp` (plus leeway), and empties itself as soon as jwks_file or
	// jwks_url change their keys, so a revoked key stops working at once.
	// A negative value turns the cache off. Default: 10000.
	CacheSize int `json:"cache_size,omitempty"`
}

// provisionAuth checks the auth settings, loads the keys and starts the
// jwks_url fetcher. Every configuration problem stops startup with a
// message that names it.
func (a *authConfig) provisionAuth(ctx caddy.Context) error {
	if a.JWT == nil {
		return errors.New("ucwa: jwt is not configured; say `jwt off` to run without bearer tokens")
	}
	if a.JWT.Off {
		if !a.JWT.offOnly() || len(a.Scopes) > 0 || a.WebTickets != "" || len(a.Challenge) > 0 {
			return errors.New("ucwa: jwt: `off` cannot be combined with other jwt settings, scopes, web_tickets or challenge: with tokens off they would not be enforced")
		}
		return nil
	}
	a.authLogger = ctx.Logger()
	switch a.WebTickets {
	case "":
		a.WebTickets = webTicketsReject
	case webTicketsReject, webTicketsForward:
	default:
		return fmt.Errorf("ucwa: web_tickets: %q is neither reject nor forward", a.WebTickets)
	}
	if len(a.Scopes) == 0 {
		a.Scopes = DefaultScopes
	}
	for _, s := range a.Scopes {
		if s == "" || strings.ContainsAny(s, " \"\\") || !isPrintableASCII(s) {
			return fmt.Errorf("ucwa: scopes: %q is not a scope token", s)
		}
	}
	a.scopeChallenge = `Bearer error="insufficient_scope", scope="` + strings.Join(a.Scopes, " ") + `"`
	repl := caddy.NewReplacer()
	var err error
	if a.realmParam, a.extraParams, err = challengeParams(a.Challenge, repl); err != nil {
		return fmt.Errorf("ucwa: challenge: %w", err)
	}
	if a.verifier, err = a.JWT.newVerifier(ctx, repl); err != nil {
		return fmt.Errorf("ucwa: jwt: %w", err)
	}
	a.leeway = time.Duration(a.JWT.Leeway)
	if size := cmp.Or(a.JWT.CacheSize, DefaultTokenCacheSize); size > 0 {
		metrics, err := newTokenCacheMetrics(ctx.GetMetricsRegistry())
		if err != nil {
			return fmt.Errorf("ucwa: jwt: %w", err)
		}
		a.tokens = newTokenCache(size, clock, metrics)
	}
	return nil
}

// offOnly reports whether `off` is the only setting.
func (c *JWTConfig) offOnly() bool {
	return len(c.Algorithms) == 0 && c.JWKSFile == "" && c.JWKSURL == "" && c.JWKSRefresh == 0 &&
		len(c.PublicKeyFiles) == 0 && c.HMACSecret == "" && len(c.Issuers) == 0 &&
		len(c.Audiences) == 0 && c.Leeway == 0 && c.CacheSize == 0
}

// newVerifier checks the settings, loads the keys and starts jwks_url.
func (c *JWTConfig) newVerifier(ctx caddy.Context, repl *caddy.Replacer) (*tokenVerifier, error) {
	if len(c.Algorithms) == 0 {
		return nil, errors.New("algorithms is required (for example `algorithms RS256`)")
	}
	for _, alg := range c.Algorithms {
		if strings.EqualFold(alg, "none") {
			return nil, errors.New("algorithm none is refused: tokens must be signed")
		}
		if _, ok := algorithmFamilies[alg]; !ok {
			return nil, fmt.Errorf("unsupported algorithm %q (supported: %s)", alg, strings.Join(supportedAlgorithms(), " "))
		}
	}
	if c.Leeway < 0 || c.JWKSRefresh < 0 {
		return nil, errors.New("leeway and jwks_refresh must not be negative")
	}

	v := &tokenVerifier{
		parser:    newParser(c.Algorithms, time.Duration(c.Leeway), clock),
		algs:      c.Algorithms,
		issuers:   replaceAll(repl, c.Issuers),
		audiences: replaceAll(repl, c.Audiences),
	}
	for _, path := range replaceAll(repl, c.PublicKeyFiles) {
		keys, err := loadPublicKeyFile(path)
		if err != nil {
			return nil, err
		}
		v.static = append(v.static, keys...)
	}
	if c.HMACSecret != "" {
		secret := repl.ReplaceKnown(c.HMACSecret, "")
		if !slices.ContainsFunc(c.Algorithms, func(alg string) bool { return algorithmFamilies[alg] == familyHMAC }) {
			return nil, errors.New("hmac_secret is set but algorithms lists no HS256, HS384 or HS512")
		}
		for _, alg := range c.Algorithms {
			if need := minHMACSecret[alg]; len(secret) < need {
				return nil, fmt.Errorf("hmac_secret is %d bytes, but %s needs at least %d (is the environment variable set?)", len(secret), alg, need)
			}
		}
		v.static = append(v.static, verificationKey{key: []byte(secret)})
	}
	if c.JWKSFile != "" {
		v.file = &jwksFile{path: repl.ReplaceKnown(c.JWKSFile, ""), now: clock, logger: ctx.Logger()}
		if err := v.file.load(); err != nil {
			return nil, err
		}
	}
	for _, alg := range c.Algorithms {
		// A JWK Set can hold any asymmetric key, and its keys rotate, so
		// it counts for every asymmetric algorithm.
		fromJWKS := algorithmFamilies[alg] != familyHMAC && (c.JWKSFile != "" || c.JWKSURL != "")
		if !fromJWKS && !slices.ContainsFunc(v.static, func(k verificationKey) bool { return keyFits(alg, k.key) }) {
			return nil, fmt.Errorf("no key can verify %s: configure %s", alg, keySourcesFor(alg))
		}
	}
	if c.JWKSURL != "" {
		jwksURL := repl.ReplaceKnown(c.JWKSURL, "")
		if err := checkJWKSURL(jwksURL); err != nil {
			return nil, err
		}
		if len(c.Issuers) == 0 && len(c.Audiences) == 0 {
			// Entra ID signs every tenant's tokens with the same keys: without
			// issuer or audience, a token from anyone's tenant passes.
			ctx.Logger().Warn("jwks_url without issuer or audience: tokens from any tenant of that identity provider are accepted")
		}
		refresh := time.Duration(c.JWKSRefresh)
		if refresh == 0 {
			refresh = DefaultJWKSRefresh
		}
		var err error
		if v.remote, err = loadJWKSURL(jwksURL, max(refresh, jwksMinRefetch), clock); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// checkJWKSURL requires https for a key set fetched from anywhere but this
// machine: keys fetched in the clear could be swapped on the way.
func checkJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("jwks_url %q is not an absolute URL", raw)
	}
	if u.Scheme == "https" {
		return nil
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); u.Scheme == "http" && (host == "localhost" || ip != nil && ip.IsLoopback()) {
		return nil
	}
	return fmt.Errorf("jwks_url %q must use https (plain http only on loopback)", raw)
}

func keySourcesFor(alg string) string {
	if algorithmFamilies[alg] == familyHMAC {
		return "hmac_secret"
	}
	return "jwks_url, jwks_file or a public_key_file with an " + algorithmFamilies[alg].String() + " key"
}

func supportedAlgorithms() []string {
	algs := make([]string, 0, len(algorithmFamilies))
	for alg := range algorithmFamilies {
		algs = append(algs, alg)
	}
	slices.Sort(algs)
	return algs
}

func replaceAll(repl *caddy.Replacer, values []string) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = repl.ReplaceKnown(v, "")
	}
	return out
}

// cleanupAuth releases the jwks_url fetcher; the last handler using it
// stops it.
func (a *authConfig) cleanupAuth() error {
	if a.verifier != nil && a.verifier.remote != nil {
		return releaseJWKSURL(a.verifier.remote)
	}
	return nil
}

// authorize checks the bearer token. When it returns false it has written
// the answer (401 or 403) itself. It runs before the body is read.
func (a *authConfig) authorize(w http.ResponseWriter, r *http.Request, errFormat errorFormat) bool {
	if a.verifier == nil { // jwt off
		return true
	}
	values := r.Header.Values("Authorization")
	if len(values) == 0 {
		return a.unauthorized(w, r, errFormat, false, "The request has no bearer token (Authorization: Bearer).")
	}
	// Bounded before anything parses it: megabytes of dots cost nothing.
	if len(values[0]) > maxAuthorizationBytes {
		return a.unauthorized(w, r, errFormat, true, fmt.Sprintf("The Authorization header is longer than %d bytes.", maxAuthorizationBytes))
	}
	if len(values) > 1 {
		return a.unauthorized(w, r, errFormat, true, "The request has more than one Authorization header.")
	}
	scheme, raw, _ := strings.Cut(values[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return a.unauthorized(w, r, errFormat, false, "The request has no bearer token (Authorization: Bearer).")
	}
	raw = strings.TrimSpace(raw)
	if strings.HasPrefix(raw, "cwt=") {
		if a.WebTickets == webTicketsForward {
			return true // the pool checks web tickets itself
		}
		return a.unauthorized(w, r, errFormat, true, "Web tickets (Bearer cwt=...) are not accepted here; use an OAuth access token.")
	}
	g, problem := a.check(r.Context(), raw)
	if problem != "" {
		return a.unauthorized(w, r, errFormat, true, problem)
	}
	g.publish(r)
	if !g.scopeOK {
		w.Header().Set("WWW-Authenticate", a.scopeChallenge)
		a.reject(w, r, errFormat, ucwa.NewError(http.StatusForbidden, "",
			"The token grants none of the scopes this resource needs: "+strings.Join(a.Scopes, ", ")+"."))
		return false
	}
	return true
}

// check returns what a bearer token grants, or a message saying what is
// wrong with it. A token verified before against the current keys comes
// from the cache while it has not expired; any other is verified in
// full, and cached when it passes.
func (a *authConfig) check(ctx context.Context, raw string) (*grant, string) {
	if a.tokens == nil {
		return a.verify(ctx, raw, keyEpoch{})
	}
	// The keys are read before the token is verified: a grant is marked
	// with keys no newer than those that verified it.
	epoch := a.verifier.epoch()
	key := hashToken(raw)
	if g := a.tokens.get(&key, epoch); g != nil {
		return g, ""
	}
	g, problem := a.verify(ctx, raw, epoch)
	if g != nil {
		a.tokens.put(&key, g)
	}
	return g, problem
}

// verify checks a token's signature and claims, and makes its grant.
func (a *authConfig) verify(ctx context.Context, raw string, epoch keyEpoch) (*grant, string) {
	claims, problem := a.verifier.verify(ctx, raw)
	if problem != "" {
		return nil, problem
	}
	str := func(name string) string {
		s, _ := claims[name].(string)
		return s
	}
	scopes := tokenScopes(claims)
	sub, oid := str("sub"), str("oid")
	g := &grant{
		scopeOK: slices.ContainsFunc(a.Scopes, func(s string) bool { return slices.Contains(scopes, s) }),
		placeholders: [...]any{
			cmp.Or(sub, oid), sub, oid, str("tid"), cmp.Or(str("appid"), str("azp")), strings.Join(scopes, " "),
		},
		epoch: epoch,
	}
	// The parser requires exp; a grant without one would never be served
	// from the cache.
	if exp, _ := claims.GetExpirationTime(); exp != nil {
		g.expires = exp.Add(a.leeway)
	}
	return g, ""
}

// unauthorized answers 401 with a Bearer challenge; invalid says whether
// a token was presented (error="invalid_token") or simply missing.
func (a *authConfig) unauthorized(w http.ResponseWriter, r *http.Request, errFormat errorFormat, invalid bool, message string) bool {
	challenge := "Bearer " + a.realmParam
	if invalid {
		challenge += `, error="invalid_token"`
	}
	w.Header().Set("WWW-Authenticate", challenge+a.extraParams)
	a.reject(w, r, errFormat, ucwa.NewError(http.StatusUnauthorized, "", message))
	return false
}

// reject logs why (never the token) and writes the UCWA error body.
func (a *authConfig) reject(w http.ResponseWriter, r *http.Request, errFormat errorFormat, e *ucwa.Error) {
	if c := a.authLogger.Check(zap.DebugLevel, "bearer token rejected"); c != nil {
		c.Write(zap.Int("status", e.Status), zap.String("reason", e.Message), zap.String("remote_ip", remoteIP(r)))
	}
	e.Write(w, errFormat.get())
}

// tokenScopes collects the scopes a token grants from scp and scope
// (space-separated strings, or arrays as some providers send) and roles
// (an array).
func tokenScopes(claims jwt.MapClaims) []string {
	var scopes []string
	for _, name := range []string{"scp", "scope", "roles"} {
		switch v := claims[name].(type) {
		case string:
			scopes = append(scopes, strings.Fields(v)...)
		case []any:
			for _, item := range v {
				if s, ok := item.(string); ok {
					scopes = append(scopes, s)
				}
			}
		}
	}
	return scopes
}

// publish makes the verified claims available as placeholders for access
// logs and header rules: {http.auth.user.id} (sub, else oid),
// {http.ucwa.sub}, {http.ucwa.oid}, {http.ucwa.tid}, {http.ucwa.client_id}
// (appid, else azp) and {http.ucwa.scopes} (space-separated).
func (g *grant) publish(r *http.Request) {
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		return
	}
	for i, name := range grantPlaceholders {
		repl.Set(name, g.placeholders[i])
	}
}
