package caddymodule

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// tokenVerifier checks a JWT's signature and claims against the configured
// keys, algorithms, issuers and audiences.
type tokenVerifier struct {
	parser    *jwt.Parser
	algs      []string
	issuers   []string
	audiences []string

	// Key sources; any of them may be empty.
	static []verificationKey // public_key_file keys and the hmac_secret
	file   *jwksFile
	remote *jwksURL
}

var (
	errUnknownKid = errors.New("no key with the token's kid")
	errNoKey      = errors.New("no key for the token's algorithm")
)

func newParser(algs []string, leeway time.Duration, now func() time.Time) *jwt.Parser {
	return jwt.NewParser(
		// The header's alg must be one the operator listed; keyFor then
		// hands out only keys of that algorithm's family.
		jwt.WithValidMethods(algs),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(now),
	)
}

// verify checks raw and returns its claims, or a message for the client
// that says what was wrong without repeating the token.
func (v *tokenVerifier) verify(ctx context.Context, raw string) (jwt.MapClaims, string) {
	claims := jwt.MapClaims{}
	token, err := v.parser.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		return v.keyFor(ctx, t)
	})
	if err != nil {
		return nil, v.describe(token, err)
	}
	if len(v.issuers) > 0 {
		if iss, err := claims.GetIssuer(); err != nil || !slices.Contains(v.issuers, iss) {
			return nil, "The token's issuer (iss) is not accepted here."
		}
	}
	if len(v.audiences) > 0 {
		aud, err := claims.GetAudience()
		if err != nil || !slices.ContainsFunc(aud, func(a string) bool { return slices.Contains(v.audiences, a) }) {
			return nil, "The token's audience (aud) is not accepted here."
		}
	}
	return claims, ""
}

// describe turns a parse error into a message for the client.
func (v *tokenVerifier) describe(token *jwt.Token, err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "The bearer token is malformed."
	case errors.Is(err, errUnknownKid):
		return "No key is known for the token's key id (kid)."
	case errors.Is(err, errNoKey):
		return "No configured key can verify the token's signing algorithm."
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
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "The token was issued in the future (iat)."
	}
	return "The token's claims are malformed."
}

// keyFor picks the keys that may verify t: only keys of the family of
// t's algorithm (which the parser has already checked against the list),
// with a matching kid when both name one. An unknown kid makes a jwks_url
// fetch its set again (rate-limited) before giving up.
func (v *tokenVerifier) keyFor(ctx context.Context, t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	kid, _ := t.Header["kid"].(string)
	keys := v.candidates(alg, kid)
	if len(keys) == 0 && kid != "" && v.remote != nil && !v.remote.has(kid) {
		v.remote.refetch(ctx)
		keys = v.candidates(alg, kid)
	}
	switch {
	case len(keys) > 0:
		return jwt.VerificationKeySet{Keys: keys}, nil
	case kid != "":
		return nil, errUnknownKid
	}
	return nil, errNoKey
}

// epoch is the current keys of the sources that can change while a
// config runs, first looking at jwks_file for changes when it is due.
func (v *tokenVerifier) epoch() keyEpoch {
	var e keyEpoch
	if v.file != nil {
		e.file = v.file.current()
	}
	if v.remote != nil {
		e.remote = v.remote.current()
	}
	return e
}

func (v *tokenVerifier) candidates(alg, kid string) []jwt.VerificationKey {
	var keys []jwt.VerificationKey
	add := func(set []verificationKey) {
		for _, k := range set {
			if k.fits(alg, kid) {
				keys = append(keys, k.key)
			}
		}
	}
	add(v.static)
	if v.file != nil {
		add(v.file.keys())
	}
	if v.remote != nil {
		add(v.remote.keys())
	}
	return keys
}
