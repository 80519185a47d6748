// Package bearer verifies the bearer tokens (JWTs) that clients send the
// caddy-ucwa edge: the keys (PEM files, an HMAC secret, a JWK Set on disk
// or fetched from an identity provider), the signature and claim checks,
// and a bounded cache of tokens verified before. It knows nothing of HTTP
// handlers: the edge reads the Authorization header, turns a Verifier's
// answer into 401 or 403, and publishes the claims as placeholders.
package bearer

import (
	"time"

	"github.com/caddyserver/caddy/v2"
)

const (
	// DefaultCacheSize is how many verified tokens are remembered when
	// cache_size is not set. An entry holds the token itself (one to two
	// kilobytes) and its grant.
	DefaultCacheSize = 10_000

	// DefaultJWKSRefresh is how often a jwks_url is fetched again when
	// jwks_refresh is not set and its Cache-Control asks for nothing
	// shorter.
	DefaultJWKSRefresh = time.Hour

	// DefaultLeeway is the clock skew allowed when leeway is not set.
	// Identity providers that stamp nbf with the instant they issue a
	// token (IdentityServer, .NET's JwtSecurityTokenHandler) would
	// otherwise have it refused as "not valid yet" by an edge whose clock
	// is milliseconds behind theirs; Envoy's jwt_authn allows as much by
	// default, and the pool's .NET validation five minutes.
	DefaultLeeway = time.Minute
)

// Config configures bearer-token (JWT) verification: the `jwt` object of
// the ucwa handler. At least one key source (jwks_url, jwks_file,
// public_key_files, hmac_secret) is needed for every listed algorithm;
// sources may be combined. A JWK Set counts for every asymmetric
// algorithm, as its keys rotate; startup warns of an algorithm that none
// of the keys loaded then verifies. String values but algorithms may
// hold global placeholders such as {env.UCWA_AUDIENCE}, replaced at
// startup; one that is empty there (an unset variable) stops startup,
// naming it, as does a brace left open (a literal brace is written \{).
type Config struct {
	// Turns token checks off: every request passes unchecked. Only for
	// setups where something in front authenticates every request; it
	// cannot be combined with other settings. Default: false.
	Off bool `json:"off,omitempty"`

	// The signing algorithms accepted; a token with any other `alg` is
	// refused. Required. One or more of RS256 RS384 RS512 PS256 PS384
	// PS512 ES256 ES384 ES512 EdDSA HS256 HS384 HS512; `none` is refused.
	Algorithms []string `json:"algorithms,omitempty"`

	// A JWK Set on disk (1 MiB at most), looked at once a second while
	// requests come and used again when its content changes, whatever its
	// size and modification time. A re-read that fails (unreadable, no
	// usable key, missing) keeps the previous keys and is logged once,
	// until the file changes again. So does one that hangs (a hung NFS or
	// FUSE mount): the request that runs the check waits for it 1s at
	// most, the read goes on, and is taken when it returns; until then
	// the file is not read again, and no request waits for it. A start
	// or reload waits for its first read 10s at most; one that takes
	// longer stops it, as an unreadable file does, and goes on: a start
	// or reload that comes before it returns waits for it, 10s at most
	// too, rather than reading the file again. A token is tried on
	// the key of the set its kid names, or else on the set's only key of
	// its alg when the token or that key has no kid: a token without kid
	// against several keys of its alg is refused as needing one, unless
	// a key of public_key_files or hmac_secret verifies it. RSA keys
	// under 2048 or over 8192 bits are skipped with a warning, as are
	// other keys the edge cannot use. Default: none.
	JWKSFile string `json:"jwks_file,omitempty"`

	// The URL of the identity provider's JWK Set, fetched at startup (a
	// start or reload waits for that fetch, at most 10s, and goes on
	// when it fails), on jwks_refresh (or sooner when its Cache-Control
	// max-age is shorter, but at most once a minute), and when a token
	// names an unknown kid (at most once a minute, never for an HMAC
	// token nor one without kid; the request waits at most 3s). Its
	// keys are chosen for a token, and checked, as jwks_file's are,
	// each set on its own. The last good set keeps serving while the
	// provider is down. It must be https, except on loopback; a
	// redirect is followed only to such a URL, and
	// never from https to plain http. Without issuers, tokens from any
	// tenant of a shared provider (Entra ID) pass, whatever the
	// audiences (any tenant gets tokens for a multi-tenant application):
	// startup warns.
	// Default: none.
	JWKSURL string `json:"jwks_url,omitempty"`

	// How often jwks_url is fetched again (only with jwks_url); shorter
	// than 1m counts as 1m.
	// Handlers (and config reloads) naming the same URL and refresh share
	// one fetcher and its last good set; a reload that changes the
	// refresh alone starts a fetcher that begins with that set. Default: 1h.
	JWKSRefresh caddy.Duration `json:"jwks_refresh,omitempty"`

	// PEM files holding public keys (PUBLIC KEY: RSA, EC or Ed25519; RSA
	// PUBLIC KEY; CERTIFICATE). Each key verifies only its own algorithm
	// family, for tokens with any kid or none. RSA keys need 2048 to 8192
	// bits, and an odd modulus and exponent, as every RSA key has. A file
	// over 4 MiB is refused. Each is read once, when a config loads: a start or reload waits for each
	// 10s at most, and one that takes longer (a file system that hangs)
	// stops it, as an unreadable file does, and goes on: a start or
	// reload that comes before it returns waits for it, 10s at most too,
	// rather than reading the file again. Default: none.
	PublicKeyFiles []string `json:"public_key_files,omitempty"`

	// The shared secret of HS256/HS384/HS512 tokens, at least as long as
	// the hash (32, 48, 64 bytes). It never verifies another algorithm.
	// Give it as a placeholder such as {env.UCWA_JWT_SECRET}: a literal
	// secret shows in Caddy's config API and debug logs. Default: none.
	HMACSecret string `json:"hmac_secret,omitempty"`

	// Accepted `iss` values, any one; an empty one is refused (a token
	// without `iss` would match it). Default: none, and `iss` is not
	// checked.
	Issuers []string `json:"issuers,omitempty"`

	// Accepted `aud` values, none of them empty; a token passes when any
	// of its audiences is one of them. Default: none, and `aud` is not
	// checked.
	Audiences []string `json:"audiences,omitempty"`

	// Clock skew allowed when checking `exp` and `nbf`, at most MaxLeeway
	// (10m); `iat` is not checked (RFC 7519 makes it informational). A
	// pointer, so that an explicit 0 (clocks known to be in step, and
	// expired tokens refused to the second) differs from unset.
	// Default: 1m (DefaultLeeway).
	Leeway *caddy.Duration `json:"leeway,omitempty"`

	// How many verified tokens are remembered, so that a token seen again
	// skips its signature check. The cache keeps each token (a hit is the
	// same token), only for tokens that passed, never past their
	// `exp` (plus leeway), and empties itself as soon as jwks_file or
	// jwks_url change their keys, so a revoked key stops working at once.
	// A negative value turns the cache off. Default: 10000.
	CacheSize int `json:"cache_size,omitempty"`
}

// OffOnly reports whether Off is the only setting.
func (c *Config) OffOnly() bool {
	return c.Off && len(c.Algorithms) == 0 && c.JWKSFile == "" && c.JWKSURL == "" && c.JWKSRefresh == 0 &&
		len(c.PublicKeyFiles) == 0 && c.HMACSecret == "" && len(c.Issuers) == 0 &&
		len(c.Audiences) == 0 && c.Leeway == nil && c.CacheSize == 0
}

// FirstIssuer is the first of Issuers, its placeholders resolved as New
// resolves them, or "" when none is listed, so that the grant a caller
// makes of a token's claims can tell the first issuer's tokens from the
// others'.
func (c *Config) FirstIssuer() (string, error) {
	if len(c.Issuers) == 0 {
		return "", nil
	}
	return Resolve(caddy.NewReplacer(), "issuer", c.Issuers[0])
}

// MaxLeeway is the most clock skew a configuration may allow: more would
// keep expired tokens valid for as long.
const MaxLeeway = 10 * time.Minute
