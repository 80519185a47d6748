package caddymodule

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"hash/maphash"
	"math/rand/v2"
	"slices"

	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// storeOwnerVersion starts the hashed input of appendStoreOwner; the
// byte after it tells what follows: a client's address, a verified
// caller of a tid (or of none), or a verified caller of an issuer.
const storeOwnerVersion = "caddy-ucwa store owner 1"

const (
	storeOwnerOfAddress byte = iota
	storeOwnerOfTenant
	storeOwnerOfIssuer
)

// appendStoreOwner appends to b whom in's reservations count for in a
// memory store (max_entries_per_caller), storeOwnerLen bytes: the
// verified caller as idempotency knows it (its tenant, and its oid or
// else its sub: caller), else the client's address, apart from any
// caller. It is a digest, so that the store holds no caller id or
// address. A verified caller's is its grant's, made with the grant (see
// verifiedStoreOwner): the same for every request of the token.
func (in *intake) appendStoreOwner(b []byte, caller string) []byte {
	if g := in.grant; g != nil && caller != "" {
		return append(b, g.storeOwner[:]...)
	}
	var buf [128]byte
	h := append(buf[:0], storeOwnerVersion...)
	h = append(h, storeOwnerOfAddress)
	h = append(h, clientNetwork(in.r)...)
	sum := storeDigest(true, h, storeOwnerLen) // the owner is a memory store's alone
	return append(b, sum[:storeOwnerLen]...)
}

// verifiedStoreOwner is the store owner (see appendStoreOwner) of the
// verified caller of tenant tid, or of the issuer that stands for its
// tenant (see makeGrant), and caller ("" for none: no owner of its own).
// A tid and an issuer of the same text are told apart by the byte
// before them.
func verifiedStoreOwner(tid, issuer, caller string) (owner [storeOwnerLen]byte) {
	if caller == "" {
		return owner
	}
	tenant, of := tid, storeOwnerOfTenant
	if issuer != "" {
		tenant, of = issuer, storeOwnerOfIssuer
	}
	h := append([]byte(storeOwnerVersion), of)
	h = binary.AppendUvarint(h, uint64(len(tenant)))
	h = append(h, tenant...)
	h = append(h, caller...)
	sum := sha256.Sum256(h)
	copy(owner[:], sum[:])
	return owner
}

// storeOwnerLen is the length of a store owner: half a SHA-256.
const storeOwnerLen = 16

// idempotencyKeyPrefix starts the store keys of idempotency.
const idempotencyKeyPrefix = "idem:"

// idempotencyKeys appends to keys the store keys of in (see
// IdempotencyConfig): one for a request with an operationId, one for each
// guarded part of a batch that has one, none for any other. With keys
// it returns the request's reservation token (see
// appendReservationToken) and, when owned (a memory store, whose keys
// are keyed for the process: see storeDigest), its store owner (see
// appendStoreOwner);
// one string holds the keys, the token and the owner, so that they cost
// one allocation together (the store keeps the key, which keeps that
// string, for the window in any case). It reports whether the caller is
// verified. The caller comes
// from the verified token's grant (nil when no token was verified): its
// tenant (tid, or an iss: see makeGrant), and its oid or else its sub.
//
// With inputs (a request that is no emergency call), the token is a held
// one: "n", inputs, and the random bits (see heldBackByFirst).
func (in *intake) idempotencyKeys(keys []string, inputs *[inputsDigestLen]byte, owned bool) (_ []string, token, owner string, verified bool) {
	var tid, issuer, caller string
	if in.grant != nil {
		tid, issuer, caller = in.grant.caller()
	}
	var room [idempotencyKeyLen + heldTokenLen + storeOwnerLen]byte
	b := room[:0]
	if in.cleaned != nil {
		b = appendIdempotencyKey(b, owned, tid, issuer, caller, in.application, in.cleaned)
	}
	for _, p := range in.parts {
		// A part's path may be relative to the batch's application.
		application := ucwa.ApplicationID(p.path)
		if application == "" {
			application = in.application
		}
		b = appendIdempotencyKey(b, owned, tid, issuer, caller, application, p.cleaned)
	}
	if len(b) == 0 {
		return keys, "", "", caller != ""
	}
	tokenLen := reservationTokenLen
	if inputs != nil && in.cleaned != nil && len(in.parts) == 0 {
		b = append(b, 'n')
		b = appendRandomBits(append(b, inputs[:]...))
		tokenLen = heldTokenLen
	} else {
		b = appendReservationToken(b)
	}
	if owned {
		b = in.appendStoreOwner(b, caller)
	}
	all := string(b)
	if owned {
		all, owner = all[:len(all)-storeOwnerLen], all[len(all)-storeOwnerLen:]
	}
	for ; len(all) > tokenLen; all = all[idempotencyKeyLen:] {
		keys = append(keys, all[:idempotencyKeyLen])
	}
	return keys, all, owner, caller != ""
}

// idempotencyKeyLen is the length of a store key: the prefix, and the
// base64 of a storeDigest (32 bytes, unpadded).
const idempotencyKeyLen = len(idempotencyKeyPrefix) + 43

// idempotencyKeyVersion starts the hashed input of a caller's key
// whose tenant is its tid, or none; idempotencyIssuerKeyVersion that of
// one whose tenant is an issuer's iss (see makeGrant). The two differ
// within the first's length, so that no input of one kind is one of the
// other, whatever the tid and the iss.
const (
	idempotencyKeyVersion       = "caddy-ucwa idempotency 1"
	idempotencyIssuerKeyVersion = "caddy-ucwa idempotency by issuer 1"
)

// appendIdempotencyKey appends to b the store key of a request to the
// application (its id, see ucwa.ApplicationID) cleaned as c by the
// caller of tenant tid, or of the issuer that stands for its tenant, and
// id caller, and nothing for one without an operationId; keyed: for a
// store of this process alone (see storeDigest). The key of a caller
// without issuer is what every version of the edge makes of it (see the
// README's "Upgrading a fleet on one store").
func appendIdempotencyKey(b []byte, keyed bool, tid, issuer, caller, application string, c *ucwa.Cleaned) []byte {
	var buf [256]byte
	h := appendIdempotencyKeyInput(buf[:0], tid, issuer, caller, application, c)
	if len(h) == 0 {
		return b
	}
	sum := storeDigest(keyed, h, sha256.Size)
	b = append(b, idempotencyKeyPrefix...)
	return base64.RawURLEncoding.AppendEncode(b, sum[:])
}

// appendIdempotencyKeyInput appends to h the hashed input of the store
// key that appendIdempotencyKey makes, and nothing for a request without
// an operationId.
func appendIdempotencyKeyInput(h []byte, tid, issuer, caller, application string, c *ucwa.Cleaned) []byte {
	operationID, _ := c.Value("operationId")
	if operationID == "" {
		return h
	}
	start := len(h)
	h = append(h, idempotencyKeyVersion...)
	tenant := tid
	if issuer != "" {
		h, tenant = append(h[:start], idempotencyIssuerKeyVersion...), issuer
	}
	// Each part with its length before it, so that no two requests'
	// parts run together into the same bytes.
	for _, part := range [...]string{tenant, caller, application, c.Operation.Rel, operationID} {
		h = binary.AppendUvarint(h, uint64(len(part)))
		h = append(h, part...)
	}
	return h
}

// reservationTokenLen is the length of a reservation token: "f" and the
// base64 of 16 bytes, unpadded.
const reservationTokenLen = 1 + 22

// heldTokenLen is the length of a held reservation token (see
// idempotencyKeys): "n", an inputsDigest and the base64 of 16 random
// bytes. Neither kind of token reads as a recorded answer: an edge that
// knows only "f" tokens takes an "n" one as it takes those, for a
// reservation in flight.
const heldTokenLen = 1 + inputsDigestLen + 22

// appendReservationToken appends a new reservation token to b: the value
// of a reservation in flight, "f" and 128 random bits, unique to the
// request that holds the key, so that it alone replaces or releases it.
// The bits need not be secret (the token never leaves the edge and its
// store), only unique: math/rand/v2's generator, seeded by the system
// per process, gives them without a system call.
func appendReservationToken(b []byte) []byte {
	return appendRandomBits(append(b, 'f'))
}

// appendRandomBits appends the base64 of 16 random bytes to b.
func appendRandomBits(b []byte) []byte {
	var raw [16]byte
	binary.LittleEndian.PutUint64(raw[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(raw[8:], rand.Uint64())
	return base64.RawURLEncoding.AppendEncode(b, raw[:])
}

// inputsDigestLen is the length of an inputsDigest: the base64 of 16
// bytes, unpadded.
const inputsDigestLen = 22

// inputsDigest is what a repeat must match to get the first request's
// answer again: a digest of the resource the request went to (its path
// in canonical form, see ucwa.CanonicalPath, which resource is, taken
// in lower case, as IIS matches paths: a conversation or log is in it) and of its operation's inputs as the pool reads them,
// normalized (numbers in E.164; an SDP body as it came), so that a
// repeat sent in another format or spelling matches, and one with
// another to, another offer, or to another conversation, does not. It holds no value: the store keeps no phone
// number. keyed: for a store of this process alone (see storeDigest).
func inputsDigest(keyed bool, resource string, c *ucwa.Cleaned) (digest [inputsDigestLen]byte) {
	var buf [512]byte
	h := append(buf[:0], "caddy-ucwa inputs 1"...)
	h = binary.AppendUvarint(h, uint64(len(resource)))
	for i := range len(resource) {
		h = append(h, lowerASCII(resource[i]))
	}
	for i := range c.Operation.Properties {
		v, ok := c.ValueAt(i)
		if !ok {
			h = append(h, 0)
			continue
		}
		h = append(h, 1)
		h = binary.AppendUvarint(h, uint64(len(v)))
		h = append(h, v...)
	}
	if c.Operation.Body == ucwa.SDPBody {
		// The offer is an input too, forwarded as it came: a repeat with
		// another offer was not sent, and the first answer is not its own.
		body := c.Body()
		h = binary.AppendUvarint(h, uint64(len(body)))
		h = append(h, body...)
	}
	sum := storeDigest(keyed, h, 16)
	base64.RawURLEncoding.Encode(digest[:], sum[:16])
	return digest
}

// storeDigest is the digest of h that idempotency keeps in its store,
// in its keys and in the inputsDigest of its values: the SHA-256 of h,
// which every edge of a fleet sharing a Redis computes alike, whatever
// its version (see the README's "Upgrading a fleet on one store"); or,
// keyed, for a memory store, which this process alone reads and writes
// (across config reloads too), four 64-bit hashes of h keyed by seeds
// drawn for the process (hash/maphash), which no one outside it can
// foresee, at a fraction of SHA-256's cost, which is most of the
// instructions of idempotency in a memory store. The caller uses the
// first n bytes (a multiple of 8): keyed, only those are made.
func storeDigest(keyed bool, h []byte, n int) (sum [sha256.Size]byte) {
	if !keyed {
		return sha256.Sum256(h)
	}
	for i := range n / 8 {
		binary.LittleEndian.PutUint64(sum[8*i:], maphash.Bytes(processSeeds[i], h))
	}
	return sum
}

// processSeeds key storeDigest for this process's stores: one per 64
// bits of the digest.
var processSeeds = [sha256.Size / 8]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed(), maphash.MakeSeed(), maphash.MakeSeed()}

// lowerASCII is c in lower case when it is an ASCII letter.
func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// keyedPart is the position in the batch of the part whose key is the
// i-th that idempotencyKeys made: that of its i-th part with an
// operationId.
func (in *intake) keyedPart(i int) int {
	for _, p := range in.parts {
		if hasOperationID(p.cleaned) {
			if i == 0 {
				return p.index
			}
			i--
		}
	}
	return 0
}

// sameOperationID reports the positions of the first two parts of a
// batch whose keys (see idempotencyKeys) are one: the same operationId,
// of the same operation of the same application.
func (in *intake) sameOperationID(keys []string) (first, second int, ok bool) {
	for j := 1; j < len(keys); j++ {
		if i := slices.Index(keys[:j], keys[j]); i >= 0 {
			return in.keyedPart(i), in.keyedPart(j), true
		}
	}
	return 0, 0, false
}
