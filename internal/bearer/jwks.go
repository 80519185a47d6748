package bearer

import (
	"cmp"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ucwa-edge/caddy-ucwa/internal/fileload"
)

// jwkSet is a JSON Web Key Set (RFC 7517 5) as identity providers publish it.
type jwkSet struct {
	Keys []jwk `json:"keys"`
}

// jwk holds the members of a JSON Web Key the edge reads (RFC 7517 4,
// RFC 7518 6, RFC 8037 2), as decodeJWKSet reads them.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	// KeyOps is key_ops, the operations the key is meant for (RFC 7517
	// 4.3); nil when the member is absent or null.
	KeyOps []string `json:"key_ops"`
	Crv    string   `json:"crv"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
	// malformed is why the key could not be read (not an object, a
	// member of another JSON type than RFC 7517 gives it), nil when it
	// could; kidMalformed says its kid was one of those members.
	malformed    error
	kidMalformed bool
}

// forSignatures reports whether k is meant for verifying signatures:
// its use, when given, is "sig" (RFC 7517 4.2), and its key_ops, when
// given, lists "verify" (RFC 7517 4.3). A key published for encryption
// only ("key_ops": ["encrypt"]), or for no operation at all
// ("key_ops": []), verifies no token.
func (k jwk) forSignatures() bool {
	return (k.Use == "" || k.Use == "sig") && (k.KeyOps == nil || slices.Contains(k.KeyOps, "verify"))
}

// skippedKey is a key of a JWK Set that the edge cannot use, as a log
// line names it: by its position and kid, never its key material.
type skippedKey struct {
	index int
	kid   string // "" when the key has none, or none that is a string
	err   error
}

func (s skippedKey) Error() string {
	if s.kid == "" {
		return fmt.Sprintf("key %d: %v", s.index, s.err)
	}
	return fmt.Sprintf("key %d (kid %q): %v", s.index, s.kid, s.err)
}

// parseJWKS returns the signature keys of a JWK Set, and the keys it
// skipped that it cannot use. Keys for encryption (`"use": "enc"`, or a
// key_ops without "verify") are left out, as not meant for it; symmetric
// keys (`"kty": "oct"`: a shared secret has no place in a published set)
// and keys the edge cannot use (an unknown kty, curve or alg, an alg
// that does not fit the key, a weak or malformed RSA key, a member of
// the wrong JSON type) are skipped, and the others
// still serve: an identity provider that publishes one key the edge
// cannot read (a new key type) must not have all its tokens refused.
// A set with no usable key at all is an error, which names the skipped
// keys.
func parseJWKS(data []byte) ([]verificationKey, []skippedKey, error) {
	set, err := decodeJWKSet(data)
	if err != nil {
		return nil, nil, fmt.Errorf("not a JWK Set: %w", err)
	}
	var keys []verificationKey
	var skipped []skippedKey
	for i, k := range set.Keys {
		kid := k.Kid
		if k.kidMalformed {
			kid = ""
		}
		if k.malformed != nil {
			skipped = append(skipped, skippedKey{i, kid, k.malformed})
			continue
		}
		if !k.forSignatures() {
			continue
		}
		key, err := k.publicKey()
		if err == nil {
			err = checkKey(key)
		}
		if err != nil {
			skipped = append(skipped, skippedKey{i, kid, err})
			continue
		}
		if _, known := algorithmFamilies[k.Alg]; k.Alg != "" && !known {
			skipped = append(skipped, skippedKey{i, kid, fmt.Errorf("unsupported alg %q", k.Alg)})
			continue
		}
		// A key pinned to an algorithm of another family or curve (ES256
		// on a P-384 or an RSA key) verifies no token: kept, it would
		// count as a usable key, and a set of only such keys would
		// replace the last good one.
		if k.Alg != "" && !keyFits(k.Alg, key) {
			skipped = append(skipped, skippedKey{i, kid, fmt.Errorf("alg %q does not fit its %s key", k.Alg, cmp.Or(k.Crv, k.Kty))})
			continue
		}
		keys = append(keys, verificationKey{id: k.Kid, alg: k.Alg, key: key})
	}
	if len(keys) == 0 {
		errs := []error{errors.New("no usable signature key in the JWK Set")}
		for _, s := range skipped {
			errs = append(errs, s)
		}
		return nil, nil, errors.Join(errs...)
	}
	return keys, skipped, nil
}

// logSkipped warns of each key of a set, fetched from or read at where
// (a jwks_url or jwks_file, named by field), that the edge skipped.
func logSkipped(logger *zap.Logger, field zap.Field, skipped []skippedKey) {
	for _, s := range skipped {
		fields := []zap.Field{field, zap.Int("index", s.index)}
		if s.kid != "" {
			fields = append(fields, zap.String("kid", s.kid))
		}
		logger.Warn("JWK Set key skipped: the edge cannot use it; the set's other keys verify tokens", append(fields, zap.Error(s.err))...)
	}
}

// skippedSummary is skipped as one string, to tell whether a set skips
// the same keys as the one before.
func skippedSummary(skipped []skippedKey) string {
	var b strings.Builder
	for _, s := range skipped {
		b.WriteString(s.Error())
		b.WriteByte('\n')
	}
	return b.String()
}

// decodeJWKSet reads a JWK Set by its member names as RFC 7517 spells
// them: they are case-sensitive (RFC 7517 4), and encoding/json would
// read "KTY" as "kty" and "KEYS" as "keys". Another spelling is a member
// the edge does not know, ignored as any other. A key that is not an
// object, or has a member the edge reads of another JSON type than a
// string ("n": 5; key_ops not an array of strings), is kept with the
// reason (malformed), for parseJWKS to skip: the set is still read.
func decodeJWKSet(data []byte) (jwkSet, error) {
	var set jwkSet
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return set, err
	}
	var keys []json.RawMessage
	if raw, ok := top["keys"]; ok {
		if err := json.Unmarshal(raw, &keys); err != nil {
			return set, err
		}
	}
	set.Keys = make([]jwk, len(keys))
	for i, raw := range keys {
		k := &set.Keys[i]
		var members map[string]json.RawMessage
		if err := json.Unmarshal(raw, &members); err != nil {
			k.malformed = errors.New("not a JSON object")
			continue
		}
		for _, m := range [...]struct {
			name string
			v    *string
		}{{"kty", &k.Kty}, {"kid", &k.Kid}, {"alg", &k.Alg}, {"use", &k.Use}, {"crv", &k.Crv}, {"n", &k.N}, {"e", &k.E}, {"x", &k.X}, {"y", &k.Y}} {
			if raw, ok := members[m.name]; ok {
				if err := json.Unmarshal(raw, m.v); err != nil {
					k.kidMalformed = k.kidMalformed || m.name == "kid"
					k.malformed = cmp.Or(k.malformed, fmt.Errorf("member %q is not a string", m.name))
				}
			}
		}
		if raw, ok := members["key_ops"]; ok {
			if err := json.Unmarshal(raw, &k.KeyOps); err != nil {
				k.malformed = cmp.Or(k.malformed, fmt.Errorf("member %q is not an array of strings", "key_ops"))
			}
		}
	}
	return set, nil
}

// publicKey decodes the key material of an RSA, EC or OKP (Ed25519) key.
func (k jwk) publicKey() (any, error) {
	switch k.Kty {
	case "RSA":
		n, err := decodeBase64URL("n", k.N)
		if err != nil {
			return nil, err
		}
		e, err := decodeBase64URL("e", k.E)
		if err != nil {
			return nil, err
		}
		exponent := new(big.Int).SetBytes(e)
		if !exponent.IsInt64() || exponent.Int64() < 3 || exponent.Int64() > 1<<31-1 {
			return nil, errors.New("bad RSA exponent")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exponent.Int64())}, nil
	case "EC":
		curve, ok := map[string]string{"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}[k.Crv]
		if !ok {
			return nil, fmt.Errorf("unsupported curve %q", k.Crv)
		}
		x, err := decodeBase64URL("x", k.X)
		if err != nil {
			return nil, err
		}
		y, err := decodeBase64URL("y", k.Y)
		if err != nil {
			return nil, err
		}
		size := (ecCurves[curve].Params().BitSize + 7) / 8
		if len(x) != size || len(y) != size {
			return nil, fmt.Errorf("x and y must be %d bytes for %s", size, k.Crv)
		}
		// ParseUncompressedPublicKey also checks that the point is on the curve.
		return ecdsa.ParseUncompressedPublicKey(ecCurves[curve], append(append([]byte{4}, x...), y...))
	case "OKP":
		if k.Crv != "Ed25519" {
			return nil, fmt.Errorf("unsupported OKP curve %q", k.Crv)
		}
		x, err := decodeBase64URL("x", k.X)
		if err != nil {
			return nil, err
		}
		if len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("an Ed25519 key is %d bytes, not %d", ed25519.PublicKeySize, len(x))
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, fmt.Errorf("unsupported kty %q", k.Kty)
}

func decodeBase64URL(member, s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("member %q is not base64url", member)
	}
	return b, nil
}

// jwksFileCheckInterval is how often, at most, a jwks_file is looked at
// for changes: the check reads the file on the request path, so it runs
// once per interval, not once per request.
const jwksFileCheckInterval = time.Second

// jwksFileReadWait is the longest the request that runs a jwks_file check
// waits for the file to be read. A local read takes microseconds and one
// over NFS milliseconds, so a read still running after a second is a
// file system that hangs (an NFS server gone, a FUSE mount stuck), not a
// slow one: the request goes on with the keys in use, and the read with
// it, taken when it returns. A second is the most that one request in a
// stall pays, as no other request waits for that read.
const jwksFileReadWait = time.Second

// jwksFile is a JWK Set on disk, re-read when its content changes: by
// its bytes, not its size and modification time, which a rewrite may keep
// (a copy that preserves times, a store whose files all have one, two
// writes within a timestamp's tick), so that a key taken out stops
// verifying within the check interval. A re-read that fails keeps the
// previous keys, and is logged once: the same broken or missing file is
// not reported again until it changes. A re-read that hangs (see
// jwksFileReadWait) keeps them too, and is the only one in flight
// until it returns: checks due meanwhile are skipped, so that a hung
// file system holds one read, never one more request a second.
type jwksFile struct {
	path   string
	now    func() time.Time
	logger *zap.Logger
	// read reads the file at a check (a load reads it through
	// jwksFileLoads): readJWKSFile, which a test wraps to count the reads
	// in flight.
	read func(path string) ([]byte, error)
	// afterFunc ends load's wait for the first read and a check's for
	// its read (time.AfterFunc, or a test's clock).
	afterFunc func(time.Duration, func()) interface{ Stop() bool }

	set atomic.Pointer[[]verificationKey]
	// checked is when the file was last looked at, as now read it: with
	// time.Now, a monotonic reading, so that a wall clock stepped back
	// (NTP correcting a host that ran ahead, a VM resumed from a
	// snapshot) delays no check; see due.
	checked atomic.Pointer[time.Time]
	// reading is set while a re-read runs: a check that finds it set
	// skips its read instead of starting another.
	reading atomic.Bool

	mu sync.Mutex // guards what follows; never held while the file is read
	// The file as last read: the SHA-256 of its content (of the keys in
	// use, or of a rewrite that could not be used), or missing, when it
	// could not be read, or its read hung.
	sum     [sha256.Size]byte
	missing bool
}

// load reads the file for the first time; its errors stop startup, and
// so does a read that takes longer than fileload.Wait, which is left to
// end unheeded, a later load waiting for it rather than reading the file
// again.
func (f *jwksFile) load() error {
	data, err := jwksFileLoads.Read(f.path, f.afterFunc)
	if err != nil {
		return fmt.Errorf("jwks_file: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	f.checked.Store(&now)
	return f.use(data)
}

// jwksFileLoads reads jwks_files as configs load.
var jwksFileLoads = fileload.NewReader(readJWKSFile)

// readJWKSFile reads a jwks_file, of jwksMaxBytes at most, as jwks_url
// does a provider's answer.
func readJWKSFile(path string) ([]byte, error) {
	return fileload.ReadFile(path, jwksMaxBytes)
}

// use parses data, the file's content, and publishes its keys; f.mu is
// held.
func (f *jwksFile) use(data []byte) error {
	f.sum = sha256.Sum256(data)
	keys, skipped, err := parseJWKS(data)
	if err != nil {
		return fmt.Errorf("jwks_file %s: %w", f.path, err)
	}
	// Once for each content: use runs when the file changes.
	logSkipped(f.logger, zap.String("path", f.path), skipped)
	// A new slice only when the keys differ: a rewrite with the same keys
	// (a deployment that reformats the file) keeps the verified-token
	// cache.
	if cur := f.set.Load(); cur == nil || !sameKeys(*cur, keys) {
		f.set.Store(&keys)
	}
	return nil
}

// keys returns the current keys, first re-reading the file when the check
// interval has passed and the file changed.
func (f *jwksFile) keys() []verificationKey {
	return *f.current()
}

// current is keys as the slice's address, which changes when a re-read
// brings other keys: the token cache's sign that the keys changed.
func (f *jwksFile) current() *[]verificationKey {
	now := f.now()
	if last := f.checked.Load(); due(*last, now) {
		// A copy of its own, so that only a check allocates; one request
		// of those that find the check due makes it.
		checked := now
		if f.checked.CompareAndSwap(last, &checked) {
			f.check()
		}
	}
	return f.set.Load()
}

// due reports whether the file, last looked at when last, is to be
// looked at again now: once the check interval has passed, or at once
// when now is before last. Times with monotonic readings (time.Now's)
// never go back; a clock without them (one a caller injects, or a
// reading stripped of it) may be stepped back, and the schedule then
// starts again from its new reading instead of waiting for the step to
// pass.
func due(last, now time.Time) bool {
	elapsed := now.Sub(last)
	return elapsed >= jwksFileCheckInterval || elapsed < 0
}

// check reads the file again and takes what it holds, waiting for the
// read jwksFileReadWait at most; a read that takes longer is reported
// once and goes on, and is taken when it returns: reads are one at a
// time, so what it brings is newer than the keys in use. While it runs,
// check reads nothing and returns at once.
func (f *jwksFile) check() {
	if !f.reading.CompareAndSwap(false, true) {
		return
	}
	done := make(chan struct{})
	go func() {
		data, err := f.read(f.path)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.take(data, err)
		// Before done is closed: a check that follows it reads again.
		f.reading.Store(false)
		close(done)
	}()
	timedOut := make(chan struct{})
	timer := f.afterFunc(jwksFileReadWait, func() { close(timedOut) })
	select {
	case <-done:
		timer.Stop()
	case <-timedOut:
		f.mu.Lock()
		defer f.mu.Unlock()
		select {
		case <-done: // taken while the lock was awaited
		default:
			if !f.missing {
				f.missing = true
				f.logUnusable(fmt.Errorf("jwks_file: %s not read within %s: its file system hangs; the read goes on, and no other starts until it returns", f.path, jwksFileReadWait))
			}
		}
	}
}

// take uses the result of a re-read when the file changed (or failed),
// and logs it; f.mu is held.
func (f *jwksFile) take(data []byte, err error) {
	if err != nil {
		if !f.missing {
			f.missing = true
			f.logUnusable(fmt.Errorf("jwks_file: %w", err))
		}
		return
	}
	// A file back after it was missing, or its read hung, is used again,
	// even unchanged, so that its return is logged as its loss was.
	back := f.missing
	f.missing = false
	if !back && sha256.Sum256(data) == f.sum {
		return
	}
	// Reported once: the check runs every second while requests come,
	// and the same content would fail the same way.
	if err := f.use(data); err != nil {
		f.logUnusable(err)
		return
	}
	f.logger.Info("jwks_file reloaded", zap.String("path", f.path), zap.Int("keys", len(*f.set.Load())))
}

// logUnusable reports a jwks_file that could not be used, and what to do.
func (f *jwksFile) logUnusable(err error) {
	f.logger.Error("jwks_file unusable; keeping the previous keys until it is replaced by a readable JWK Set with a usable key",
		zap.String("path", f.path), zap.Error(err))
}
