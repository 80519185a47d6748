package store

import (
	"context"
	"encoding/hex"
	"time"
)

// ownerKeyInfix follows the key prefix in the key of an owner's count
// (see reserveOwned): KeyPrefix+"owner:" and the owner in hex, a key of
// its own, in a hash slot of its own with Cluster.
const ownerKeyInfix = "owner:"

// ownerScript counts a reservation of ARGV[1] (its key, as the caller
// gives it) for the owner whose set KEYS[1] is, if the owner has room,
// and answers 1, or else 0. The set holds each reservation the owner
// made as a member scored by when it expires (the Redis server's clock,
// in milliseconds: ARGV[3] from now); the members expired are dropped
// first, and the owner has room while it holds fewer than ARGV[2]. A
// key it holds already counts once, whatever its reservation's fate
// (a repeat, or the same call run again: see Redis), and is only moved
// on to the later expiry. The set lives as long as its latest member.
// One key: a script that a cluster runs on the owner's slot, apart
// from the reservation's.
var ownerScript = newReservationScript(`
redis.replicate_commands()
local now = redis.call('TIME')
now = now[1] * 1000 + math.floor(now[2] / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 1)
local expires = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not expires then
	if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
		return 0
	end
	redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
elseif tonumber(expires) < now + ttl then
	redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
end
if redis.call('PTTL', KEYS[1]) < ttl then
	redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
`)

// reserveOwned is ReserveFor of a reservation for owner, within ctx's
// deadline: the owner's count (ownerScript, on the owner's key) and the
// reservation (reserveScript, unchanged) in one pipeline, one round
// trip (with Cluster, one to each of the two keys' nodes, at once): a
// script on both keys would need them in one hash slot, and the keys
// of an owner's reservations are in every slot.
//
// The reservation is run whether or not the owner has room, and when
// the owner had none (or its count failed) and the reservation is this
// call's, it is released in a second round trip, within the same
// deadline, before the call answers ErrOwnerFull (or the count's
// error): nothing is left reserved past the owner's share, so that the
// caller may refuse the request or deliver it without the store. A
// release that fails answers its own error: the key may still hold the
// call's value, as after any failed reservation. A key that holds
// another value is answered as Reserve answers it (a repeat), whatever
// the owner's count: a repeat of a request the store holds is still
// told.
//
// The count is of the keys the owner reserved within their TTL,
// counted on the Redis server's clock: a key released early counts on
// until its TTL is over, a key whose reservation lives longer (renewed,
// or replaced by an answer with a TTL from then) counts until the TTL
// it was reserved with is over, and a key counted and then not reserved
// (held by another request, or the reservation failed) counts all the
// same.
func (r *Redis) reserveOwned(ctx context.Context, owner, key, value string, ttl time.Duration) (bool, string, error) {
	ms := ttl.Milliseconds()
	calls := []scriptCall{
		{script: ownerScript, argc: 2, withTTL: true, key: r.ownerKey(owner), argv: [2]string{key, r.maxPerOwnerArg}, ttl: ms},
		{script: reserveScript, argc: 1, withTTL: true, key: r.prefix + key, argv: [2]string{value}, ttl: ms},
	}
	cmds := r.pipelined(ctx, calls)
	reply, err := cmds[1].Result()
	if err != nil {
		return false, "", r.fail("reserve", err)
	}
	reserved, current, err := reservation(reply)
	if err != nil || !reserved && current != value {
		return reserved, current, err
	}
	room, countErr := cmds[0].Int64()
	if countErr == nil && room == 1 {
		return reserved, current, nil
	}
	release := &calls[1]
	release.script, release.argc, release.withTTL = releaseScript, 1, false
	if err := r.run(ctx, release).Err(); err != nil {
		return false, "", r.fail("reserve", err)
	}
	if countErr != nil {
		return false, "", r.fail("reserve", countErr)
	}
	return false, "", ownerFullError("reserve")
}

// ownerKey is the key of owner's count.
func (r *Redis) ownerKey(owner string) string {
	var buf [128]byte
	b := append(append(buf[:0], r.prefix...), ownerKeyInfix...)
	return string(hex.AppendEncode(b, []byte(owner)))
}

// MaxPerOwner reports the bound of one owner's reservations (0: none).
func (r *Redis) MaxPerOwner() int { return r.maxPerOwner }
