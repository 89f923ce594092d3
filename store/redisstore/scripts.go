package redisstore

import "github.com/redis/go-redis/v9"

// Every multi-step operation that must be atomic runs as one Lua script:
// Redis executes a script without interleaving other commands, on every
// topology (single node, Sentinel, Cluster). Scripts that touch several keys
// only touch keys sharing a hash tag, so Cluster keeps them in one slot.
//
// Durations arrive as milliseconds in ARGV; status codes are small integers
// because a Lua nil ends a reply array early.

// putTicketSrc: KEYS = ticket, spent marker; ARGV = value, ttl ms.
// Returns 1 when stored, 0 when the id is live or spent.
const putTicketSrc = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return 1 end
return 0
`

// consumeTicketSrc: KEYS = ticket, spent marker; ARGV = keepSpent ms (0 = no
// marker). Returns {1, value} when consumed, {2, value} when already spent,
// {0} when unknown.
const consumeTicketSrc = `
local v = redis.call('GET', KEYS[1])
if v then
  redis.call('DEL', KEYS[1])
  if tonumber(ARGV[1]) > 0 then
    redis.call('SET', KEYS[2], v, 'PX', ARGV[1])
  end
  return {1, v}
end
local s = redis.call('GET', KEYS[2])
if s then return {2, s} end
return {0}
`

// createGrantSrc: KEYS = grant; ARGV = version, data, ttl ms (0 = none).
// Returns 1 when created, 0 when the id is taken.
const createGrantSrc = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'd', ARGV[2])
if tonumber(ARGV[3]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 1
`

// casGrantSrc: KEYS = grant; ARGV = expected version, new version, data,
// ttl ms (0 = keep the current expiry, which HSET leaves alone).
// Returns 1 when swapped, 0 when the version moved on, -1 when the grant is
// gone.
const casGrantSrc = `
local v = redis.call('HGET', KEYS[1], 'v')
if not v then return -1 end
if v ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'd', ARGV[3])
if tonumber(ARGV[4]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
return 1
`

// indexAddSrc: KEYS = a grant index set; ARGV = grant id, ttl ms (0 = the
// grant never expires). Adds the id and makes the set live at least ttl
// longer, never shorter: a new set gets ttl, a set with an expiry is extended
// when ttl reaches further, and a set without one (it indexes a grant that
// never expires) stays so until it empties, when Redis drops it.
const indexAddSrc = `
local existed = redis.call('EXISTS', KEYS[1])
redis.call('SADD', KEYS[1], ARGV[1])
local want = tonumber(ARGV[2])
if want == 0 then
  redis.call('PERSIST', KEYS[1])
  return 1
end
local t = redis.call('PTTL', KEYS[1])
if existed == 0 or (t >= 0 and t < want) then redis.call('PEXPIRE', KEYS[1], want) end
return 1
`

// swapKeySetSrc: KEYS = key set; ARGV = old, next.
// Returns {1, next} when swapped, {0, current} when current ~= old, {-1}
// when there is no key set.
const swapKeySetSrc = `
local v = redis.call('GET', KEYS[1])
if not v then return {-1} end
if v ~= ARGV[1] then return {0, v} end
redis.call('SET', KEYS[1], ARGV[2])
return {1, ARGV[2]}
`

// releaseLockSrc: KEYS = lock; ARGV = owner token. Deletes only our lease, so
// a holder whose lease expired cannot free the next holder's.
const releaseLockSrc = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`

// hitSrc: KEYS = counter; ARGV = window ms. Returns {count, ms left}. The
// expiry is set when the key has none: on the first hit of a window, and as a
// repair should a counter ever exist without one (it would never reset).
const hitSrc = `
local c = redis.call('INCR', KEYS[1])
local t = redis.call('PTTL', KEYS[1])
if t < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  t = tonumber(ARGV[1])
end
return {c, t}
`

// scripts are per Store rather than package variables because a
// *redis.Script caches its digest in mutable state.
type scripts struct {
	putTicket, consumeTicket, createGrant, casGrant, indexAdd, swapKeySet, releaseLock, hit *redis.Script
}

func newScripts() scripts {
	return scripts{
		putTicket:     redis.NewScript(putTicketSrc),
		consumeTicket: redis.NewScript(consumeTicketSrc),
		createGrant:   redis.NewScript(createGrantSrc),
		casGrant:      redis.NewScript(casGrantSrc),
		indexAdd:      redis.NewScript(indexAddSrc),
		swapKeySet:    redis.NewScript(swapKeySetSrc),
		releaseLock:   redis.NewScript(releaseLockSrc),
		hit:           redis.NewScript(hitSrc),
	}
}
