package redislog

import "github.com/redis/go-redis/v9"

// A room is two keys in one cluster slot (hash tag):
//
//	<prefix>{<room, base64url>}:m   hash: seq (the counter), epoch,
//	                                i:<id> → seq of each retained entry
//	<prefix>{<room, base64url>}:l   sorted set scored by seq; each member is
//	                                "<seq> <time µs> <len(id)> <id><stored envelope>"
//
// Both expire a little after MaxAge; the scripts decide what is retained, so
// that a key's expiry never changes what a reader sees.

// trimLua holds the functions both scripts share. now and maxage are in
// microseconds of the server's clock; an entry is dropped once
// now - time >= maxage.
const trimLua = `
local function entry_time(m)
  return tonumber(string.match(m, '^%d+ (%d+) '))
end

local function forget_id(meta, m)
  local _, e, n = string.find(m, '^%d+ %d+ (%d+) ')
  redis.call('HDEL', meta, 'i:' .. string.sub(m, e + 1, e + tonumber(n)))
end

local function trim_count(meta, log, maxn)
  local n = redis.call('ZCARD', log)
  if n <= maxn then return end
  local popped = redis.call('ZPOPMIN', log, n - maxn) -- member, score, …
  for i = 1, #popped, 2 do forget_id(meta, popped[i]) end
end

-- trim drops the entries MaxAge old and returns the newest one's time; a
-- room with none left (or whose log is gone) is forgotten, counter and
-- epoch included, and trim returns nil. Retention by count is kept by
-- every append, after it adds its entry.
local function trim(meta, log, now, maxage)
  local newest = redis.call('ZRANGE', log, -1, -1)[1]
  local newest_time = newest and entry_time(newest)
  if not newest or now - newest_time >= maxage then
    redis.call('DEL', meta, log)
    return nil
  end
  local old = 0
  while true do
    local m = redis.call('ZRANGE', log, old, old)[1]
    if now - entry_time(m) < maxage then break end
    forget_id(meta, m)
    old = old + 1
  end
  if old > 0 then redis.call('ZREMRANGEBYRANK', log, 0, old - 1) end
  return newest_time
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
`

// appendScript appends one message, stored with "seq" and "epoch" added
// last by concatenation. KEYS: meta, log. ARGV: id, the envelope without
// its final '}', the separator before "seq" ("," or ""),
// MaxMessages, MaxAge (µs), the keys' TTL (ms). It returns
// {0, seq, time, epoch} for a new entry, {1, member, epoch} for a duplicate.
var appendScript = redis.NewScript(trimLua + `
local meta, log, id = KEYS[1], KEYS[2], ARGV[1]
local newest = trim(meta, log, now, tonumber(ARGV[5]))
local f = redis.call('HMGET', meta, 'i:' .. id, 'epoch')
if f[1] then
  local m = redis.call('ZRANGEBYSCORE', log, f[1], f[1])[1]
  if m then return {1, m, f[2]} end
end
-- Entry times never go back, even if the server's clock does: retention
-- by age relies on entries being in time order.
if newest and now < newest then now = newest end
local ts = string.format('%d', now)
local epoch = f[2] or ts
local seq = redis.call('HINCRBY', meta, 'seq', 1)
local ss = string.format('%d', seq)
redis.call('HSET', meta, 'i:' .. id, ss, 'epoch', epoch)
redis.call('ZADD', log, seq, ss .. ' ' .. ts .. ' ' .. #id .. ' ' .. id .. ARGV[2] .. ARGV[3] .. '"seq":' .. ss .. ',"epoch":' .. epoch .. '}')
trim_count(meta, log, tonumber(ARGV[4]))
redis.call('PEXPIRE', meta, ARGV[6])
redis.call('PEXPIRE', log, ARGV[6])
return {0, seq, ts, epoch}
`)

// afterScript reads a page. KEYS: meta, log. ARGV: after, limit, MaxAge
// (µs). It returns {head, epoch, members}.
var afterScript = redis.NewScript(trimLua + `
local meta, log = KEYS[1], KEYS[2]
trim(meta, log, now, tonumber(ARGV[3]))
local f = redis.call('HMGET', meta, 'seq', 'epoch')
local es = redis.call('ZRANGEBYSCORE', log, '(' .. ARGV[1], '+inf', 'LIMIT', 0, ARGV[2])
return {f[1] or '0', f[2] or '0', es}
`)
