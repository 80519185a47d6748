package caddymodule

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
)

// A recorded answer's body is what a pool wrote, and a pool's answer may
// echo the request's values: startPhoneAudio's phoneAudioInvitation
// carries the phoneNumber it rings. A store shared by a fleet (Redis),
// which holds no phone number nor other value of a request, holds such a
// body sealed (AES-256-GCM, with a random nonce), under a key made of the
// very input its store key is a digest of (the caller, the application,
// the operation and the operationId; see appendIdempotencyKeyInput), in
// another domain: every edge makes it again from the repeat, and the
// store never holds it, nor anything it can be made from without that
// input. An answer without a body is recorded in clear, in the format
// edges of the version before read; a memory store holds the edge's own
// values in its own process, and seals nothing.

// answerSealVersion starts the hashed input of an answer's seal key.
const answerSealVersion = "caddy-ucwa answer seal 1"

// answerSealKey is the key that seals the recorded answer of the request
// in, and opens it for a repeat of it; false for a request without an
// operationId, or a batch (whose answers are not recorded).
func (in *intake) answerSealKey() (key [32]byte, ok bool) {
	if in.cleaned == nil || len(in.parts) > 0 {
		return key, false
	}
	var tid, issuer, caller string
	if in.grant != nil {
		tid, issuer, caller = in.grant.caller()
	}
	var buf [320]byte
	h := append(buf[:0], answerSealVersion...)
	n := len(h)
	if h = appendIdempotencyKeyInput(h, tid, issuer, caller, in.application, in.cleaned); len(h) == n {
		return key, false
	}
	return sha256.Sum256(h), true
}

// sealBody seals body under key: the nonce, then the ciphertext and its
// tag.
func sealBody(key *[32]byte, body []byte) []byte {
	return answerAEAD(key).Seal(nil, nil, body, nil)
}

// openBody opens a body sealBody sealed under key; false when it was
// sealed under another key, or changed.
func openBody(key *[32]byte, sealed string) (string, bool) {
	body, err := answerAEAD(key).Open(nil, nil, []byte(sealed), nil)
	if err != nil {
		return "", false
	}
	return string(body), true
}

// answerAEAD is AES-256-GCM under key, with a random nonce before each
// ciphertext: a key seals one answer per window, but an operationId may
// come again after it, with another answer.
func answerAEAD(key *[32]byte) cipher.AEAD {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic(err) // a 32-byte key is always an AES-256 key
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		panic(err)
	}
	return aead
}
