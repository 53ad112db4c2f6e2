#!lua name=starling_tl
--
-- Home timelines (loaded by starling-timeline with FUNCTION LOAD REPLACE on every shard).
--
-- A timeline `tl:<user>` is a sorted set whose members are post ids as 8 big-endian bytes,
-- all with score 0, so lexicographic order is id order. The sentinel (8 zero bytes, never a
-- real post) marks a timeline that exists; it sorts first and is never trimmed.
--
-- Keys come in pairs: the timeline and its pending set `tlb:<user>`, which exists only while
-- a rebuild reads the store. Writes that arrive meanwhile are recorded there (score 0: add,
-- score 1: remove; the last write to a post wins) and replayed when the rebuild lands, so a
-- post fanned out during a rebuild is not lost.
--
-- Sets grow by at most CHUNK members between trims, so a timeline never exceeds
-- cap + 1 + CHUNK members and stays within zset-max-listpack-entries (set by the client to
-- at least cap + 64): a set that once turns into a skiplist never turns back.

local SENTINEL = '\0\0\0\0\0\0\0\0'
local CHUNK = 32

-- Drop the oldest real entries (ranks 1..) until at most `cap` remain besides the sentinel.
local function trim(key, cap)
  local excess = redis.call('ZCARD', key) - 1 - cap
  if excess > 0 then
    redis.call('ZREMRANGEBYRANK', key, 1, excess)
  end
end

-- ZADD members[from..] with `score`, CHUNK at a time; trim after each chunk when `cap`.
local function add_all(key, members, from, score, cap)
  local batch = {}
  for i = from, #members do
    batch[#batch + 1] = score
    batch[#batch + 1] = members[i]
    if #batch >= 2 * CHUNK then
      redis.call('ZADD', key, unpack(batch))
      if cap then trim(key, cap) end
      batch = {}
    end
  end
  if #batch > 0 then
    redis.call('ZADD', key, unpack(batch))
    if cap then trim(key, cap) end
  end
end

local function exists(key)
  return redis.call('EXISTS', key) == 1
end

-- keys: tl1, tlb1, tl2, tlb2, ...; args: post, cap. Returns how many timelines took it.
local function tl_insert(keys, args)
  local post, cap = args[1], tonumber(args[2])
  local n = 0
  for i = 1, #keys, 2 do
    local taken = false
    -- A timeline always holds its sentinel, so a non-zero size means it exists; the
    -- size also tells whether the new entry pushes it over the cap (one call, not three).
    local size = redis.call('ZCARD', keys[i])
    if size > 0 then
      if redis.call('ZADD', keys[i], 0, post) == 1 and size > cap then
        redis.call('ZREMRANGEBYRANK', keys[i], 1, size - cap)
      end
      taken = true
    end
    if exists(keys[i + 1]) then
      redis.call('ZADD', keys[i + 1], 0, post)
      taken = true
    end
    if taken then n = n + 1 end
  end
  return n
end

-- Whether `member` is among the `window` newest entries of timeline `tl`. Members share
-- score 0, so reverse rank is reverse id order.
local function recent(tl, member, window)
  if not member then return false end
  local rank = redis.call('ZREVRANK', tl, member)
  return rank ~= false and rank ~= nil and rank < window
end

-- keys: tl1, tlb1, tlr1, tl2, tlb2, tlr2, ...; args: reblog, cap, original, window.
-- Inserts a reblog wrapper like tl_insert, except into a timeline whose `window` newest
-- entries already show the original or another reblog of it. `tlr:<user>` maps originals
-- to the reblog last inserted for them; entries that fell out of the window are pruned
-- whenever it holds more than twice the window, so it stays small.
local function tl_insert_reblog(keys, args)
  local post, cap, original, window = args[1], tonumber(args[2]), args[3], tonumber(args[4])
  local n = 0
  for i = 1, #keys, 3 do
    local tl, tlb, tlr = keys[i], keys[i + 1], keys[i + 2]
    local taken = false
    local size = redis.call('ZCARD', tl)
    if size > 0 then
      taken = true
      local shown = recent(tl, original, window)
      if not shown then
        local last = redis.call('HGET', tlr, original)
        shown = last ~= post and recent(tl, last, window)
      end
      if not shown then
        if redis.call('ZADD', tl, 0, post) == 1 and size > cap then
          redis.call('ZREMRANGEBYRANK', tl, 1, size - cap)
        end
        redis.call('HSET', tlr, original, post)
        -- The reblog index lives as long as its timeline (inactive timelines expire).
        local ttl = redis.call('PTTL', tl)
        if ttl > 0 then redis.call('PEXPIRE', tlr, ttl) end
        if redis.call('HLEN', tlr) > 2 * window then
          local all = redis.call('HGETALL', tlr)
          for j = 1, #all, 2 do
            if not recent(tl, all[j + 1], window) then
              redis.call('HDEL', tlr, all[j])
            end
          end
        end
      end
    end
    if exists(tlb) then
      redis.call('ZADD', tlb, 0, post)
      taken = true
    end
    if taken then n = n + 1 end
  end
  return n
end

-- keys: tl1, tlb1, ...; args: post.
local function tl_remove(keys, args)
  local post = args[1]
  local n = 0
  for i = 1, #keys, 2 do
    n = n + redis.call('ZREM', keys[i], post)
    if exists(keys[i + 1]) then
      redis.call('ZADD', keys[i + 1], 1, post)
    end
  end
  return n
end

-- keys: tl, tlb; args: cap, post...  Adds to an existing timeline only.
local function tl_merge(keys, args)
  local cap = tonumber(args[1])
  local taken = 0
  if exists(keys[1]) then
    add_all(keys[1], args, 2, 0, cap)
    taken = 1
  end
  if exists(keys[2]) then
    add_all(keys[2], args, 2, 0, nil)
    taken = 1
  end
  return taken
end

-- keys: tl, tlb; args: post...
local function tl_remove_many(keys, args)
  local n = 0
  for i = 1, #args, CHUNK do
    n = n + redis.call('ZREM', keys[1], unpack(args, i, math.min(i + CHUNK - 1, #args)))
  end
  if exists(keys[2]) then
    add_all(keys[2], args, 1, 1, nil)
  end
  return n
end

-- keys: tl. Creates an empty timeline unless one exists; 1 if created.
local function tl_create(keys, args)
  if exists(keys[1]) then
    return 0
  end
  redis.call('ZADD', keys[1], 0, SENTINEL)
  return 1
end

-- keys: tl, tlb; args: ttl_ms. Starts recording writes for a rebuild.
local function tl_begin(keys, args)
  redis.call('ZADD', keys[2], 'NX', 0, SENTINEL)
  redis.call('PEXPIRE', keys[2], args[1])
  return 1
end

-- keys: tl, tlb; args: cap, post...  Replaces the timeline with the posts, replays the
-- writes recorded since tl_begin, and stops recording. Returns the entries kept.
local function tl_replace(keys, args)
  local cap = tonumber(args[1])
  redis.call('DEL', keys[1])
  redis.call('ZADD', keys[1], 0, SENTINEL)
  add_all(keys[1], args, 2, 0, cap)
  if exists(keys[2]) then
    local recorded = redis.call('ZRANGE', keys[2], 0, -1, 'WITHSCORES')
    local added, removed = {}, {}
    for i = 1, #recorded, 2 do
      local post = recorded[i]
      if post ~= SENTINEL then
        if tonumber(recorded[i + 1]) == 0 then
          added[#added + 1] = post
        else
          removed[#removed + 1] = post
        end
      end
    end
    add_all(keys[1], added, 1, 0, cap)
    for i = 1, #removed, CHUNK do
      redis.call('ZREM', keys[1], unpack(removed, i, math.min(i + CHUNK - 1, #removed)))
    end
    redis.call('DEL', keys[2])
  end
  return redis.call('ZCARD', keys[1]) - 1
end

-- keys: lock; args: token. Deletes the lock only if this holder still owns it.
local function tl_unlock(keys, args)
  if redis.call('GET', keys[1]) == args[1] then
    return redis.call('DEL', keys[1])
  end
  return 0
end

redis.register_function('tl_insert', tl_insert)
redis.register_function('tl_insert_reblog', tl_insert_reblog)
redis.register_function('tl_remove', tl_remove)
redis.register_function('tl_merge', tl_merge)
redis.register_function('tl_remove_many', tl_remove_many)
redis.register_function('tl_create', tl_create)
redis.register_function('tl_begin', tl_begin)
redis.register_function('tl_replace', tl_replace)
redis.register_function('tl_unlock', tl_unlock)
