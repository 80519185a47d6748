package store

import (
	"context"
	"encoding/hex"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
)

// ownerKeyInfix follows the key prefix in the key of an owner's count
// (see reserveOwned): KeyPrefix+"owner:" and the owner in hex, a key of
// its own, in a hash slot of its own with Cluster.
const ownerKeyInfix = "owner:"

// ownerScript counts a reservation of ARGV[1] (its key, as the caller
// gives it) for the owner whose set KEYS[1] is, if the owner has room,
// and answers 1, or else minus the milliseconds until it has room again
// (at least 1: a member counts until the server's clock is past its
// score), when its earliest member expires, read in the same call (see
// ownerRetryAfter). The set holds each reservation the owner
// made as a member scored by when it expires (the Redis server's clock,
// in milliseconds: ARGV[3] from now); the members expired are dropped
// first, and the owner has room while it holds fewer than ARGV[2]. A
// key it holds already counts once, whatever its reservation's fate
// (a repeat, or the same call run again: see Redis). Its count is moved
// on to the later expiry only when the reservation's key, KEYS[2] when
// the caller gives it (in the set's hash slot), does not exist, so that
// the reservation takes it anew: a repeat of a key that exists (answered,
// or in flight) leaves its count to end with the key, as the key's
// renewals and its answer have it (see followScript), rather than a
// whole TTL after the repeat. Without KEYS[2] (a cluster, the key in
// another slot) it is moved on all the same. The set lives as long as
// its latest member. One key or two: a script that a cluster runs on the
// owner's slot, apart from the reservation's unless they share it.
var ownerScript = newReservationScript(`
redis.replicate_commands()
local now = redis.call('TIME')
now = now[1] * 1000 + math.floor(now[2] / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 1)
local expires = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not expires then
	if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
		local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
		return now - tonumber(first[2]) - 1
	end
	redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
elseif tonumber(expires) < now + ttl and not (KEYS[2] and redis.call('PTTL', KEYS[2]) ~= -2) then
	redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
end
if redis.call('PTTL', KEYS[1]) < ttl then
	redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
`)

// reserveOwned is Reserve of a reservation for owner, within ctx's
// deadline: the owner's count (ownerScript, on the owner's key) and the
// reservation (reserveScript, unchanged) in one pipeline, one round
// trip (with Cluster, one to each of the two keys' nodes, at once): a
// script on both keys would need them in one hash slot, and the keys
// of an owner's reservations are in every slot.
//
// The reservation is run whether or not the owner has room, and when
// the owner had none (or its count failed) and the reservation is this
// call's, it is released in a second round trip, within the same
// deadline, before the call answers ErrOwnerFull, with when the owner
// has room again as the count read it (or the count's error): nothing
// is left reserved past the owner's share, so that the caller may
// refuse the request or deliver it without the store. A release that
// fails answers its own error: the key may still hold the call's value,
// as after any failed reservation. A key that holds another value is
// answered as Reserve answers it (a repeat), whatever the owner's
// count: a repeat of a request the store holds is still told.
//
// The count is of the keys the owner reserved, each until its TTL is
// over, counted on the Redis server's clock: a key released for its
// owner (Release) goes at once, a key renewed or replaced for its
// owner (Replace, Renew) counts until its new TTL is over, and a key
// counted and then not reserved (held by another request, or the
// reservation failed) counts until the TTL it was counted with is over.
func (r *Redis) reserveOwned(ctx context.Context, owner, key, value string, ttl time.Duration) (bool, string, error) {
	ms := ttl.Milliseconds()
	calls := []scriptCall{
		{script: ownerScript, argc: 2, withTTL: true, key: r.ownerKey(owner), argv: [3]string{key, r.maxPerOwnerArg}, ttl: ms},
		{script: reserveScript, argc: 1, withTTL: true, key: r.prefix + key, argv: [3]string{value}, ttl: ms},
	}
	if count := &calls[0]; !r.cluster || hashTag(count.key) == hashTag(calls[1].key) {
		// The count's script looks at the reservation's key, its second
		// key, in its slot (see ownerScript).
		count.owner = calls[1].key
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
	return false, "", ownerFullError("reserve", ownerRetryAfter(room))
}

// ownerRetryAfter is how long until an owner that ownerScript refused,
// answering room, has room again: a whole number of milliseconds on the
// Redis server's clock, never 0 (see ownerScript).
func ownerRetryAfter(room int64) time.Duration {
	return time.Duration(-room) * time.Millisecond
}

// ownerKey is the key of owner's count.
func (r *Redis) ownerKey(owner string) string {
	var buf [128]byte
	b := append(append(buf[:0], r.prefix...), ownerKeyInfix...)
	return string(hex.AppendEncode(b, []byte(owner)))
}

// MaxPerOwner reports the bound of one owner's reservations (0: none).
func (r *Redis) MaxPerOwner() int { return r.maxPerOwner }

// followScript is the part of the owned scripts that has the count of
// member (a key as the caller gives it) in the owner's set owner expire
// with the key, ttl milliseconds from now on the Redis server's clock,
// if the set holds it: a key it does not hold (counted by another
// owner, or by an edge without a share) is not counted from a renewal
// on. The set lives as long as its latest member. The score is set with
// pcall: a Redis over its maxmemory refuses ZADD, and a renewal of the
// key, done already, must not fail for its count.
const followScript = `
local function follow(owner, member, ttl)
	if not redis.call('ZSCORE', owner, member) then
		return
	end
	local now = redis.call('TIME')
	now = now[1] * 1000 + math.floor(now[2] / 1000)
	redis.pcall('ZADD', owner, 'XX', now + tonumber(ttl), member)
	if redis.call('PTTL', owner) < tonumber(ttl) then
		redis.call('PEXPIRE', owner, ttl)
	end
end
`

// replaceOwnedScript is replaceScript (KEYS[1], ARGV[1] to ARGV[2],
// for ARGV[4] milliseconds) with the count of the key, member ARGV[3]
// of the owner's set KEYS[2], following its new TTL when it was
// replaced. Two keys: the key and the set in one hash slot (see
// ownedCalls).
var replaceOwnedScript = newReservationScript(`
redis.replicate_commands()
` + followScript + `
if redis.call('GET', KEYS[1]) == ARGV[1] then
	if ARGV[2] == ARGV[1] then
		redis.call('PEXPIRE', KEYS[1], ARGV[4])
	else
		redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[4])
	end
	follow(KEYS[2], ARGV[3], ARGV[4])
	return 1
end
return 0
`)

// releaseOwnedScript is releaseScript (KEYS[1] if it holds ARGV[1])
// with the count of the key, member ARGV[2] of the owner's set KEYS[2],
// removed when the key was deleted. Two keys, as replaceOwnedScript's.
var releaseOwnedScript = newReservationScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	redis.call('ZREM', KEYS[2], ARGV[2])
	return redis.call('DEL', KEYS[1])
end
return 0
`)

// ownerFollowScript is the owner's part of replaceOwnedScript, for a
// key in another hash slot than the owner's set KEYS[1]: the count of
// member ARGV[1] follows a TTL of ARGV[2] milliseconds from now, if the
// set holds it.
var ownerFollowScript = newReservationScript(`
redis.replicate_commands()
` + followScript + `
follow(KEYS[1], ARGV[1], ARGV[2])
return 1
`)

// ownerForgetScript is the owner's part of releaseOwnedScript, for a
// key in another hash slot than the owner's set KEYS[1]: the count of
// member ARGV[1] goes.
var ownerForgetScript = newReservationScript(`
return redis.call('ZREM', KEYS[1], ARGV[1])
`)

// ownedCalls returns calls, each a release's or a replacement's script
// (releaseScript, replaceScript) on a key, with the key's count in the
// share of the owner of the same index in owners ("" for none) released
// or following the key's new TTL in the same round trip: calls as they
// are without MaxPerOwner or owners (nil), so that a store without a
// share sends what it sent before shares were counted. A key in the
// hash slot of its owner's set (every key without Cluster; with it, a
// key prefix with a hash tag) runs one script on both keys
// (releaseOwnedScript, replaceOwnedScript), so that the count goes, or
// follows, only when the key was released or replaced, atomically.
// Else, as reserveOwned does, the owner's part (ownerForgetScript,
// ownerFollowScript) is a call of its own on the set's slot, appended
// after calls, in the same pipeline, one round trip to each node at
// once: a script on both keys would need them in one slot. It then
// runs whether or not the key held the call's value: a release of a
// key that a repeat of the owner holds (a reservation that got no
// answer, released in case Redis ran it) gives back the repeat's count,
// and a renewal that finds the key answered has its count follow the
// renewal's TTL rather than the answer's. The owner's part's answer is
// not the call's: its key's is.
func (r *Redis) ownedCalls(owners []string, calls []scriptCall) []scriptCall {
	if r.maxPerOwner == 0 || owners == nil {
		return calls
	}
	var apart []scriptCall
	for i := range calls {
		if owners[i] == "" {
			continue
		}
		c := &calls[i]
		set, member := r.ownerKey(owners[i]), c.key[len(r.prefix):]
		if !r.cluster || hashTag(c.key) == hashTag(set) {
			c.owner, c.argv[c.argc] = set, member
			c.argc++
			if c.script == releaseScript {
				c.script = releaseOwnedScript
			} else {
				c.script = replaceOwnedScript
			}
			continue
		}
		o := scriptCall{script: ownerForgetScript, argc: 1, key: set, argv: [3]string{member}}
		if c.script == replaceScript {
			o.script, o.withTTL, o.ttl = ownerFollowScript, true, c.ttl
		}
		apart = append(apart, o)
	}
	if apart == nil {
		return calls
	}
	return append(slices.Clip(calls), apart...)
}

// runOwned is run of c, a release's or a replacement's script, with its
// key's count in owner's share ("" for none) as ownedCalls has it: in
// one call, or in a pipeline of two.
func (r *Redis) runOwned(ctx context.Context, owner string, c scriptCall) *redis.Cmd {
	if owner == "" || r.maxPerOwner == 0 {
		return r.run(ctx, &c)
	}
	calls := r.ownedCalls([]string{owner}, []scriptCall{c})
	if len(calls) == 1 {
		return r.run(ctx, &calls[0])
	}
	return r.pipelined(ctx, calls)[0]
}
