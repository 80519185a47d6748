package bearer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Options are what a Verifier takes from its surroundings.
type Options struct {
	// Now tells the time to token checks, key re-reads and refetch
	// limits. Default: time.Now.
	Now func() time.Time
	// Logger logs jwks_file reloads and configuration warnings. Default:
	// none.
	Logger *zap.Logger
	// Registerer takes the token cache's metrics (Caddy's registry).
	// Default: none, and the metrics are kept but not exported.
	Registerer prometheus.Registerer
	// UnknownKidWait is the longest a token with a kid that jwks_url's
	// set lacks waits for the set to be fetched again. Default: 3s.
	UnknownKidWait time.Duration
	// AfterFunc runs f once d has passed: it ends New's waits for the
	// files it reads (see fileload.Wait), each public_key_file and the
	// jwks_file's first read, and a request's for a jwks_file check's
	// read (see jwksFileReadWait). Default: time.AfterFunc.
	AfterFunc func(d time.Duration, f func()) interface{ Stop() bool }
	// FetcherLogger logs for the jwks_url fetcher, which the verifiers of
	// one URL share and which outlives the one that started it: it is
	// asked for the logger at each line. Default: Caddy's default logger
	// at the time, named http.handlers.ucwa.jwks.
	FetcherLogger func() *zap.Logger
}

// Verifier checks bearer tokens against the configured keys, algorithms,
// issuers and audiences, and turns each token that passes into a grant G
// (what its user needs of it) that it caches. It is safe for concurrent
// use.
type Verifier[G any] struct {
	parser    *jwt.Parser
	algs      []string
	issuers   []string
	audiences []string
	leeway    time.Duration
	kidWait   time.Duration
	grant     func(Claims) G

	// Key sources; any of them may be empty.
	static []verificationKey // public_key_file keys and the hmac_secret
	file   *jwksFile
	remote *jwksURL

	cache *tokenCache[G] // nil when the cache is off

	// tried, when set, is told how many keys each token handed to the
	// parser is tried on (a test's count); nil otherwise.
	tried func(keys int)
}

// Error is why a token was refused: Message is for the client (it says
// what was wrong and never repeats the token), Cause for the operator's
// log (it holds no token either).
type Error struct {
	Message string
	Cause   error
}

func (e *Error) Error() string {
	if e.Cause == nil {
		return e.Message
	}
	return e.Message + " (" + e.Cause.Error() + ")"
}

func (e *Error) Unwrap() error { return e.Cause }

// Claims are the claims of a verified token.
type Claims jwt.MapClaims

// String is the claim name when it is a string, else "".
func (c Claims) String(name string) string {
	s, _ := c[name].(string)
	return s
}

// Scopes are the scopes the token grants: from scp and scope, strings of
// scopes separated by spaces (RFC 6749 3.3: U+0020 only; a tab, a
// no-break space or any other white space is part of a scope, so
// "A\tB" is the one scope "A\tB"), or arrays of strings as some
// providers send; and from roles, an array of strings only (a roles
// string grants nothing). Items of an array that are not strings are
// ignored.
func (c Claims) Scopes() []string {
	var scopes []string
	for _, name := range []string{"scp", "scope", "roles"} {
		switch v := c[name].(type) {
		case string:
			if name != "roles" {
				scopes = appendSpaceSeparated(scopes, v)
			}
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

// appendSpaceSeparated appends the scopes of a space-separated string,
// skipping empty ones (runs of spaces).
func appendSpaceSeparated(scopes []string, s string) []string {
	for scope := range strings.SplitSeq(s, " ") {
		if scope != "" {
			scopes = append(scopes, scope)
		}
	}
	return scopes
}

// New checks c, loads its keys and starts its jwks_url fetcher (see
// Close). grant makes what Verify returns for a token that passed. Every
// configuration problem is an error that names it.
func New[G any](c *Config, grant func(Claims) G, o Options) (*Verifier[G], error) {
	if c.Off {
		return nil, errors.New("off: there is nothing to verify")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.FetcherLogger == nil {
		o.FetcherLogger = caddyLog
	}
	if o.AfterFunc == nil {
		o.AfterFunc = func(d time.Duration, f func()) interface{ Stop() bool } { return time.AfterFunc(d, f) }
	}
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
	leeway := DefaultLeeway
	if c.Leeway != nil {
		leeway = time.Duration(*c.Leeway)
	}
	if leeway < 0 {
		return nil, fmt.Errorf("leeway must not be negative: %s", leeway)
	}
	if c.JWKSRefresh < 0 {
		return nil, fmt.Errorf("jwks_refresh must not be negative: %s", time.Duration(c.JWKSRefresh))
	}
	if leeway > MaxLeeway {
		return nil, fmt.Errorf("leeway %s is more than %s: it would let expired tokens pass, where clocks kept in step (as a Windows domain keeps them) differ by seconds", leeway, MaxLeeway)
	}
	if c.JWKSRefresh != 0 && c.JWKSURL == "" {
		return nil, errors.New("jwks_refresh is set but there is no jwks_url to fetch again")
	}

	repl := caddy.NewReplacer()
	issuers, err := resolveAll(repl, "issuer", c.Issuers)
	if err != nil {
		return nil, err
	}
	audiences, err := resolveAll(repl, "audience", c.Audiences)
	if err != nil {
		return nil, err
	}
	// A token without iss (or aud) reads as "": an empty entry would
	// let tokens that lack the claim pass.
	if slices.Contains(issuers, "") {
		return nil, errors.New("issuer: an empty value would accept tokens without iss")
	}
	if slices.Contains(audiences, "") {
		return nil, errors.New("audience: an empty value would accept tokens whose aud is empty")
	}
	v := &Verifier[G]{
		parser:    newParser(c.Algorithms, leeway, o.Now),
		algs:      c.Algorithms,
		issuers:   issuers,
		audiences: audiences,
		leeway:    leeway,
		kidWait:   cmp.Or(o.UnknownKidWait, DefaultUnknownKidWait),
		grant:     grant,
	}
	keyFiles, err := resolveAll(repl, "public_key_file", c.PublicKeyFiles)
	if err != nil {
		return nil, err
	}
	for _, path := range keyFiles {
		keys, err := loadPublicKeyFile(path, o.AfterFunc)
		if err != nil {
			return nil, err
		}
		v.static = append(v.static, keys...)
	}
	if c.HMACSecret != "" {
		secret, err := Resolve(repl, "hmac_secret", c.HMACSecret)
		if err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(c.Algorithms, func(alg string) bool { return algorithmFamilies[alg] == familyHMAC }) {
			return nil, errors.New("hmac_secret is set but algorithms lists no HS256, HS384 or HS512")
		}
		for _, alg := range c.Algorithms {
			if need := minHMACSecret[alg]; len(secret) < need {
				return nil, fmt.Errorf("hmac_secret is %d bytes, but %s needs at least %d", len(secret), alg, need)
			}
		}
		v.static = append(v.static, verificationKey{key: []byte(secret)})
	}
	if c.JWKSFile != "" {
		path, err := Resolve(repl, "jwks_file", c.JWKSFile)
		if err != nil {
			return nil, err
		}
		v.file = &jwksFile{path: path, now: o.Now, logger: o.Logger, read: readJWKSFile, afterFunc: o.AfterFunc}
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
		jwksURL, err := Resolve(repl, "jwks_url", c.JWKSURL)
		if err != nil {
			return nil, err
		}
		if err := checkJWKSURL(jwksURL); err != nil {
			return nil, err
		}
		if len(c.Issuers) == 0 {
			// Entra ID signs every tenant's tokens with the same keys, and
			// an audience does not tell tenants apart: any tenant gets
			// tokens for a multi-tenant application (Skype for Business
			// Online's among them) and may give its own service principal
			// the edge's URL as a name. Only iss names the tenant.
			o.Logger.Warn("jwks_url without issuer: tokens from any tenant of that identity provider are accepted, whatever the audience")
		}
		refresh := time.Duration(c.JWKSRefresh)
		if refresh == 0 {
			refresh = DefaultJWKSRefresh
		}
		if v.remote, err = loadJWKSURL(jwksURL, max(refresh, jwksMinRefetch), o.Now, o.FetcherLogger); err != nil {
			return nil, err
		}
	}
	if sources := len(c.PublicKeyFiles) + countTrue(c.HMACSecret != "", c.JWKSFile != "", c.JWKSURL != ""); len(c.Issuers) > 1 && sources > 1 {
		// A key is chosen by the token's alg and kid, never its iss: the
		// holder of any key (an internal service's HMAC secret) signs
		// tokens that pass as any issuer's (the identity provider's
		// users, with their tenant and object ids, limits and
		// operationIds).
		o.Logger.Warn("keys are not bound to issuers: each key of hmac_secret, public_key_file, jwks_file and jwks_url verifies tokens of every issuer listed, so whoever holds one can sign tokens as any of them; give issuers that hold keys of their own a ucwa handler (a site or route) each")
	}
	v.warnUnverifiable(o.Logger)
	size := c.CacheSize
	if size == 0 {
		size = DefaultCacheSize
	}
	if size > 0 {
		metrics, err := newCacheMetrics(o.Registerer)
		if err != nil {
			return nil, errors.Join(err, v.Close())
		}
		v.cache = newTokenCache[G](size, o.Now, metrics)
	}
	return v, nil
}

// warnUnverifiable warns at startup of the algorithms that no key loaded
// now verifies. A JWK Set counts for every asymmetric algorithm at
// startup, as its keys rotate; one that holds no key of an algorithm's
// family (an EC set under RS256) refuses every such token until it does,
// and the 401s' cause (no key) would be all an operator saw. A jwks_url
// whose first fetch failed has logged that already.
func (v *Verifier[G]) warnUnverifiable(logger *zap.Logger) {
	if v.remote != nil && len(v.remote.keys()) == 0 {
		return
	}
	keys := slices.Concat(v.static, v.fileKeys(), v.remoteKeys())
	var none []string
	for _, alg := range v.algs {
		if !slices.ContainsFunc(keys, func(k verificationKey) bool { return k.fitsAlg(alg) }) {
			none = append(none, alg)
		}
	}
	if len(none) > 0 {
		logger.Warn("no key of the jwks_file or jwks_url verifies these algorithms now: tokens signed with them are refused until one does; "+
			"add such a key, or drop the algorithm", zap.Strings("algorithms", none))
	}
}

func (v *Verifier[G]) fileKeys() []verificationKey {
	if v.file == nil {
		return nil
	}
	return v.file.keys()
}

func (v *Verifier[G]) remoteKeys() []verificationKey {
	if v.remote == nil {
		return nil
	}
	return v.remote.keys()
}

// countTrue is how many of bs are true.
func countTrue(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// Issuers are the accepted iss values, their placeholders replaced; none
// when any issuer is accepted. The caller must not change them.
func (v *Verifier[G]) Issuers() []string { return v.issuers }

// Close releases the jwks_url fetcher; the last Verifier using it stops
// it.
func (v *Verifier[G]) Close() error {
	if v.remote != nil {
		return releaseJWKSURL(v.remote)
	}
	return nil
}

// Resolve replaces the global placeholders ({env.*}, ...) in the value of
// a setting. A placeholder that is empty (an unset environment variable)
// or unknown (a typo, {ENV.SECRET}, or an IdP's template, {tenantid}) is
// an error naming it and the setting, rather than a key source or an
// audience that is silently empty, or a secret that is the placeholder's
// text, which anyone who reads the config could sign with; so is one
// left open (UnclosedBrace). A literal brace is written \{.
func Resolve(repl *caddy.Replacer, setting, value string) (string, error) {
	if UnclosedBrace(value) {
		// Caddy's replacer keeps it as text: a secret that is the
		// placeholder's text. The value is not quoted: it may be a
		// literal secret.
		return "", fmt.Errorf("%s: %w", setting, ErrUnclosedBrace)
	}
	out, err := repl.ReplaceOrErr(value, true, true)
	if err != nil {
		return "", fmt.Errorf("%s: %w", setting, EnvHint(err, value))
	}
	return out, nil
}

// EnvHint adds to err, an error of Caddy's replacer on value, where an
// {env.*} placeholder is read when it evaluated to nothing: from the
// environment of the Caddy process that loads the config, not that of
// the `caddy reload` that sends it, so that a variable exported in the
// operator's shell before a reload is not seen.
func EnvHint(err error, value string) error {
	if err == nil || !strings.Contains(value, "{env.") || !strings.HasSuffix(err.Error(), " is empty") {
		return err
	}
	return fmt.Errorf("%w (%s)", err, envHint)
}

// envHint is what EnvHint adds.
const envHint = "{env.*} is read from the environment of the Caddy process that loads the config, not of `caddy reload`: " +
	"set the variable where Caddy is started (a service's Environment=) and restart it"

// ErrUnclosedBrace is the error of a setting with a placeholder left
// open (UnclosedBrace).
var ErrUnclosedBrace = errors.New(`a brace is not closed: a placeholder is written {env.NAME}, a literal brace \{`)

// UnclosedBrace reports whether s has a '{' that no '}' closes, neither
// escaped with '\': Caddy's replacer leaves such a brace, and what
// follows it, as text, so that {env.SECRET without its '}' would be the
// secret.
func UnclosedBrace(s string) bool {
	open := false
	for i := range len(s) {
		escaped := i > 0 && s[i-1] == '\\'
		switch {
		case s[i] == '{' && !escaped:
			open = true
		case s[i] == '}' && !escaped:
			open = false
		}
	}
	return open
}

func resolveAll(repl *caddy.Replacer, setting string, values []string) ([]string, error) {
	out := make([]string, len(values))
	for i, v := range values {
		var err error
		if out[i], err = Resolve(repl, setting, v); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// checkJWKSURL requires https for a key set fetched from anywhere but this
// machine: keys fetched in the clear could be swapped on the way. A URL
// without a host name (https://:443/keys) or with a port no server has
// would fail at every fetch, so it is refused as well.
func checkJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return fmt.Errorf("jwks_url %q is not an absolute URL", redactURL(raw))
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("jwks_url %q: its port must be between 1 and 65535", redactURL(raw))
		}
	}
	if u.Scheme == "https" {
		return nil
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); u.Scheme == "http" && (host == "localhost" || ip != nil && ip.IsLoopback()) {
		return nil
	}
	return fmt.Errorf("jwks_url %q must use https (plain http only on loopback)", redactURL(raw))
}

// redactURL returns raw, a URL, with the password of its user
// information (https://user:password@idp/keys, which Go's client sends
// as Basic credentials), a user given without a password (a token given
// as the user name, https://TOKEN@idp/keys, as some services take one)
// and the values of its query
// (https://idp/keys?code=SECRET, a function key as Azure Functions and
// some identity provider proxies take it) replaced, as errors and log
// lines show it: the value may come from a placeholder such as {env.*},
// and only its expansion holds the secret. A URL that does not parse is
// shown up to its host's start, where a password would stand, else with
// its query's values replaced; so is one whose path holds an '@' and
// that has no user information: a '/' in a password ends the host early
// (https://edge:42/s3cret@idp/keys reads as the host edge:42 and the
// path /s3cret@idp/keys), and the rest of the password is in the path;
// and so is one whose scheme no "//" follows (https:edge:s3cret@idp/keys,
// which Go reads as an opaque URL). Such a URL that holds an '@' is shown
// up to its scheme alone, where there is one before the '@'.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil && strings.Contains(u.Path, "@") || strings.Contains(u.Opaque, "@") {
		if strings.Contains(raw, "@") {
			// Whatever the '@' ends may be a password: only the scheme
			// is shown, where there is one before it.
			scheme, rest, ok := strings.Cut(raw, ":")
			switch {
			case !ok || strings.Contains(scheme, "@"):
				return "xxxxx@..."
			case strings.HasPrefix(rest, "//"):
				return scheme + "://xxxxx@..."
			}
			return scheme + ":xxxxx@..."
		}
		if before, query, ok := strings.Cut(raw, "?"); ok {
			return before + "?" + redactQuery(query)
		}
		return raw
	}
	u.RawQuery = redactQuery(u.RawQuery)
	if _, hasPassword := u.User.Password(); u.User != nil && !hasPassword {
		u.User = url.User("xxxxx")
	}
	return u.Redacted()
}

// redactQuery returns a URL's query with each value replaced and its
// name kept as written (code=xxxxx). A part without '=' is replaced
// whole: it may be a key given alone (?SECRET).
func redactQuery(query string) string {
	if query == "" {
		return ""
	}
	var b strings.Builder
	for i, part := range strings.Split(query, "&") {
		if i > 0 {
			b.WriteByte('&')
		}
		if name, _, ok := strings.Cut(part, "="); ok {
			b.WriteString(name)
			b.WriteString("=xxxxx")
		} else if part != "" {
			b.WriteString("xxxxx")
		}
	}
	return b.String()
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

func newParser(algs []string, leeway time.Duration, now func() time.Time) *jwt.Parser {
	return jwt.NewParser(
		// The header's alg must be one the operator listed; keyFor then
		// hands out only keys of that algorithm's family.
		jwt.WithValidMethods(algs),
		// iat is not checked: it is informational (RFC 7519 4.1.6), and
		// an issuer's clock a little ahead of the edge's would have a
		// token refused as it is issued.
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(now),
		// A segment's last base64url character may carry bits beyond its
		// bytes (RFC 4648 3.5); read leniently, a signature with them set
		// is the same signature in another string, a token no issuer
		// wrote that the cache, and a replay or revocation list keyed on
		// the token's text, take for another. checkStrict decodes with
		// this parser, so it reads the segments alike.
		jwt.WithStrictDecoding(),
	)
}

// Verify returns the grant of a token that passes, or an *Error. A token
// verified before against the current keys comes from the cache while it
// has not expired; any other is verified in full, and cached when it
// passes.
func (v *Verifier[G]) Verify(ctx context.Context, raw string) (G, error) {
	if v.cache == nil {
		e, err := v.verify(ctx, raw, keyEpoch{})
		if err != nil {
			var none G
			return none, err
		}
		return e.grant, nil
	}
	// The keys are read before the token is verified: an entry is marked
	// with keys no newer than those that verified it.
	epoch := v.epoch()
	key := v.cache.key(raw)
	if e := v.cache.get(key, raw, epoch); e != nil {
		return e.grant, nil
	}
	e, err := v.verify(ctx, raw, epoch)
	if err != nil {
		var none G
		return none, err
	}
	// A copy of its own: raw is part of the request's header, which the
	// entry would otherwise keep whole.
	e.token = strings.Clone(raw)
	v.cache.put(key, e)
	return e.grant, nil
}

// verify checks a token's signature and claims in full and makes its
// cache entry.
func (v *Verifier[G]) verify(ctx context.Context, raw string, epoch keyEpoch) (*cacheEntry[G], error) {
	// kidNeeded is set when a JWK Set offered a token without kid none of
	// its keys (see fromSet): when the keys of other sources fail it too,
	// the kid it lacks is why, not the signature.
	var kidNeeded bool
	keyFunc := func(t *jwt.Token) (any, error) {
		key, needed, err := v.keyFor(ctx, t)
		kidNeeded = needed
		return key, err
	}
	claims := jwt.MapClaims{}
	token, err := v.parser.ParseWithClaims(raw, claims, keyFunc)
	if err != nil && v.refetchedFor(ctx, token, err) {
		claims = jwt.MapClaims{}
		token, err = v.parser.ParseWithClaims(raw, claims, keyFunc)
	}
	if err != nil && kidNeeded && errors.Is(err, jwt.ErrTokenSignatureInvalid) {
		err = fmt.Errorf("%w: %w", errKidRequired, err)
	}
	if err != nil {
		return nil, &Error{Message: v.describe(token, err), Cause: err}
	}
	if e := v.checkStrict(raw, token); e != nil {
		return nil, e
	}
	// iat is not checked against the clock (see newParser), but one that
	// is not a number makes the claims malformed, as exp's and nbf's do.
	if _, err := claims.GetIssuedAt(); err != nil {
		return nil, &Error{Message: "The token's claims are malformed.", Cause: err}
	}
	if err := checkDateRange(claims); err != nil {
		return nil, &Error{Message: "The token's claims are malformed.", Cause: err}
	}
	if len(v.issuers) > 0 {
		if iss, err := claims.GetIssuer(); err != nil || !slices.Contains(v.issuers, iss) {
			return nil, &Error{Message: "The token's issuer (iss) is not accepted here.", Cause: errIssuer}
		}
	}
	if len(v.audiences) > 0 {
		aud, err := claims.GetAudience()
		if err != nil || !slices.ContainsFunc(aud, func(a string) bool { return slices.Contains(v.audiences, a) }) {
			return nil, &Error{Message: "The token's audience (aud) is not accepted here.", Cause: errAudience}
		}
	}
	e := &cacheEntry[G]{grant: v.grant(Claims(claims)), epoch: epoch}
	// The parser requires exp; an entry without one would never be
	// served from the cache.
	if exp, _ := claims.GetExpirationTime(); exp != nil {
		e.expires = exp.Add(v.leeway)
	}
	return e, nil
}

// maxNumericDate bounds the seconds of exp and nbf (some 146
// billion years either way of 1970). The parser turns a date into a
// time.Time through int64 seconds without checking the range: past
// about 9.2e18 the conversion wraps to a date far in the past, so that
// an nbf meant as never (1e20) read as long ago and the token passed.
const maxNumericDate = 1 << 62

// checkDateRange refuses a token whose exp or nbf is a number outside
// what the clock checks can read (see maxNumericDate); iat, which is
// not checked against the clock, needs only be a number.
func checkDateRange(claims jwt.MapClaims) error {
	for _, name := range [...]string{"exp", "nbf"} {
		if f, ok := claims[name].(float64); ok && !(f > -maxNumericDate && f < maxNumericDate) {
			return fmt.Errorf("%w: %s is out of range", jwt.ErrInvalidType, name)
		}
	}
	return nil
}

var (
	errUnknownKid   = errors.New("no key with the token's kid")
	errKidNotString = errors.New("the header's kid is not a string")
	errKidRequired  = errors.New("no kid, and a JWK Set has several keys of the token's algorithm")
	errNoKey        = errors.New("no key for the token's algorithm")
	errNoKeySetYet  = errors.New("no key fits, and no key set was ever fetched from jwks_url")
	errIssuer       = errors.New("iss is not one of the configured issuers")
	errAudience     = errors.New("no aud is one of the configured audiences")
)

// describe turns a parse error into a message for the client.
func (v *Verifier[G]) describe(token *jwt.Token, err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed), errors.Is(err, errKidNotString):
		return "The bearer token is malformed."
	case errors.Is(err, errUnknownKid):
		return "No key is known for the token's key id (kid)."
	case errors.Is(err, errKidRequired):
		return "The token has no key id (kid), which is required here: the key set holds several keys of its algorithm."
	case errors.Is(err, errNoKey):
		return "No configured key can verify the token's signing algorithm."
	case errors.Is(err, errNoKeySetYet):
		return "The edge has not yet fetched the identity provider's keys, so it cannot check the token now. Send the request again later."
	case errors.Is(err, jwt.ErrTokenUnverifiable),
		token != nil && token.Method != nil && !slices.Contains(v.algs, token.Method.Alg()):
		return "The token's signing algorithm (alg) is not accepted here."
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "The token's signature is invalid."
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "The token has no expiry time (exp)."
	case errors.Is(err, jwt.ErrTokenExpired):
		return "The token has expired."
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "The token is not valid yet (nbf)."
	}
	return "The token's claims are malformed."
}

// keyFor picks the keys that may verify t (see candidates): only keys of
// the family of t's algorithm (which the parser has already checked
// against the list), and of a JWK Set those its kid names, or the set's
// one key of that algorithm. kidNeeded says that a JWK Set offered a
// token without kid none of its several keys; with no key of another
// source either, the token is refused for it before any key is tried.
// An unknown kid makes a jwks_url fetch its set again (rate-limited)
// before giving up; a missing kid never does. A kid that is not a string
// (RFC 7515 4.1.4 makes it one) refuses the token before any key is
// tried: read as no kid, it would be tried as a token without one.
func (v *Verifier[G]) keyFor(ctx context.Context, t *jwt.Token) (key any, kidNeeded bool, err error) {
	alg := t.Method.Alg()
	kid, isString := t.Header["kid"].(string)
	if _, given := t.Header["kid"]; given && !isString {
		return nil, false, errKidNotString
	}
	keys, kidNeeded := v.candidates(alg, kid)
	if len(keys) == 0 && kid != "" && v.remote != nil && !v.remote.has(kid) {
		v.remote.refetch(ctx, v.kidWait)
		keys, _ = v.candidates(alg, kid)
	}
	if v.tried != nil {
		v.tried(len(keys))
	}
	switch {
	case len(keys) > 0:
		return jwt.VerificationKeySet{Keys: keys}, kidNeeded, nil
	case v.remote != nil && v.remote.current() == nil:
		// Not the token's fault: the client is told so, rather than
		// that its kid or algorithm is unknown.
		return nil, false, errNoKeySetYet
	case kid != "":
		return nil, false, errUnknownKid
	case kidNeeded:
		return nil, true, errKidRequired
	}
	return nil, false, errNoKey
}

// refetchedFor reports whether jwks_url's set, fetched again, now holds
// the kid of a token whose signature the other keys of its algorithm
// (public_key_file keys and the hmac_secret, which fit any kid; the
// jwks_file's key of that kid; a set's only key of the algorithm, when
// it has no kid) failed to verify. keyFor fetches again only when no
// key fits at all; without this, a key the provider rotated in would be
// refused until the next refresh whenever another source had a key of
// its family. The fetch is rate-limited as keyFor's is. A token without
// kid fetches nothing: it names no key the set could lack.
func (v *Verifier[G]) refetchedFor(ctx context.Context, token *jwt.Token, err error) bool {
	// No key of a JWK Set verifies an HMAC token (an oct key is
	// skipped): its kid fetches nothing, nor has its request wait.
	if v.remote == nil || token == nil || token.Method == nil || !errors.Is(err, jwt.ErrTokenSignatureInvalid) ||
		!slices.Contains(v.algs, token.Method.Alg()) || algorithmFamilies[token.Method.Alg()] == familyHMAC {
		return false
	}
	kid, _ := token.Header["kid"].(string)
	if kid == "" || v.remote.has(kid) {
		return false
	}
	v.remote.refetch(ctx, v.kidWait)
	return v.remote.has(kid)
}

// epoch is the current keys of the sources that can change while a
// config runs, first looking at jwks_file for changes when it is due.
func (v *Verifier[G]) epoch() keyEpoch {
	var e keyEpoch
	if v.file != nil {
		e.file = v.file.current()
	}
	if v.remote != nil {
		e.remote = v.remote.current()
	}
	return e
}

// candidates are the keys a token of alg and kid is tried on: every
// public_key_file key and the hmac_secret that fit alg, whatever the kid
// (the administrator chose each of them, a handful), then those fromSet
// picks of the jwks_file's set and of the jwks_url's, each on its own.
// kidNeeded says that a token without kid was offered no key of a set
// that has several of alg.
func (v *Verifier[G]) candidates(alg, kid string) (keys []jwt.VerificationKey, kidNeeded bool) {
	for _, k := range v.static {
		if k.fitsAlg(alg) {
			keys = append(keys, k.key)
		}
	}
	var fileNeeds, remoteNeeds bool
	if v.file != nil {
		keys, fileNeeds = fromSet(keys, v.file.keys(), alg, kid)
	}
	if v.remote != nil {
		keys, remoteNeeds = fromSet(keys, v.remote.keys(), alg, kid)
	}
	return keys, fileNeeds || remoteNeeds
}

// fromSet appends to keys those of set, a JWK Set's, that a token of alg
// and kid is tried on: its keys of alg whose kid is the token's, or else
// its one key of alg when the token or that key has no kid. A token
// without kid is thus tried on one key of a set at most, as one with a
// kid is on a set whose keys have none, rather than on each of its keys
// of alg (Entra ID publishes eight or so, and a forged token that fails
// is not cached: it would cost that many signature checks at every
// request); kidNeeded reports a token without kid that the set offers
// none of its several keys of alg. An identity provider that publishes
// several keys names each, and its tokens the one that signed them.
func fromSet(keys []jwt.VerificationKey, set []verificationKey, alg, kid string) (_ []jwt.VerificationKey, kidNeeded bool) {
	var only *verificationKey
	fitting, named := 0, false
	for i := range set {
		k := &set[i]
		if !k.fitsAlg(alg) {
			continue
		}
		fitting++
		only = k
		if kid != "" && k.id == kid {
			keys = append(keys, k.key)
			named = true
		}
	}
	if fitting == 1 && !named && (kid == "" || only.id == "") {
		keys = append(keys, only.key)
	}
	return keys, kid == "" && fitting > 1
}
