-- The model state every operation script shares (prepended to each one).
-- A port of ModelState and Window (src/rate_limits/scheduler.rs, window.rs).
--
-- KEYS: 1 meta (a string: the state's fields as one MessagePack map, read
--       and written whole: one reply element instead of one per field),
--       2 events hash (sequence -> "at:requests:tokens"),
--       3 reservations hash (id -> record), 4 lease ends (sorted set, id by
--       lease end), 5 waiters hash (ticket id -> record). One hash tag.
-- ARGV: 1 client time in ms or '' for the server's TIME, 2 span in ms
--       (a minute plus the window margin), 3 the profile's utilization
--       target when a profile follows, else '',
--       4..8 its rpm, tpm, effective rpm, effective tpm and concurrency cap,
--       9 provider, 10 model, 11 TTL slack in ms; the operation's own from 12.
-- Replicate the writes, not the script (which reads TIME): the default
-- since Redis 5, asked for explicitly for older servers.
redis.replicate_commands()
local M, E, R, L, W = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local MAX_COUNT = 9007199254740991
local SPAN = tonumber(ARGV[2])
local SLACK = tonumber(ARGV[11])

local function int(x) return string.format('%.0f', x) end
local function float(x) return string.format('%.17g', x) end

-- The in-flight count, read once per script and kept up to date.
local flight = nil
local function in_flight()
  if flight == nil then flight = redis.call('HLEN', R) end
  return flight
end

-- Keys (re)created by this script: they have no TTL yet.
local fresh = {}

-- The waiters as refresh left them (nil until it read them) and how many
-- there are (nil when unknown), so later steps need not read them again.
local live = nil
local waiting = nil

-- The latest lease end or ticket lapse (ms) this script wrote. Those of
-- earlier scripts are covered by the TTLs their own saves set (see save).
local latest = 0

local st = nil
-- The meta as loaded, so a save that changed nothing writes nothing.
local loaded = nil
local profile = nil
if ARGV[3] ~= '' then
  profile = { rpm = tonumber(ARGV[4]), tpm = tonumber(ARGV[5]), erpm = tonumber(ARGV[6]),
              etpm = tonumber(ARGV[7]), base = tonumber(ARGV[8]), target = tonumber(ARGV[3]) }
end

local NUMERIC = { 'rpm', 'tpm', 'erpm', 'etpm', 'base', 'cap', 'streak', 'mar', 'mat',
                  'first', 'next', 'reqs', 'toks', 'last', 'nt', 'exp', 'srpm', 'stpm', 'hu' }
-- Text fields besides provider and model: the hold's kind and reason.
local TEXT = { 'provider', 'model', 'hk', 'hr' }

-- Loads the meta; false when the model has no state. A field missing from
-- it (written by a build that did not know the field) reads as 0 or ''.
-- A meta of another type (a hash, from builds before the MessagePack meta)
-- is dropped with the model's other keys: a budget reset for that model.
local function load()
  local raw = redis.pcall('GET', M)
  if type(raw) == 'table' and raw.err then
    redis.call('DEL', M, E, R, L, W)
    return false
  end
  if not raw then return false end
  st = cmsgpack.unpack(raw)
  for _, field in ipairs(NUMERIC) do st[field] = tonumber(st[field]) or 0 end
  for _, field in ipairs(TEXT) do st[field] = st[field] or '' end
  loaded = raw
  return true
end

-- Fresh state under the profile (ModelState::new).
local function create(provider, model)
  fresh[M] = true
  st = { provider = provider, model = model, rpm = profile.rpm, tpm = profile.tpm,
         erpm = profile.erpm, etpm = profile.etpm, base = profile.base, cap = profile.base,
         streak = 0, mar = 0, mat = 0, first = 0, next = 0, reqs = 0, toks = 0, last = 0, nt = 0,
         exp = 0, srpm = 0, stpm = 0, hu = 0, hk = '', hr = '' }
end

-- Now in ms: the client's (tests) or the server's, never before the last time seen.
local function clock()
  local t
  if ARGV[1] ~= '' then
    t = tonumber(ARGV[1])
  else
    local now = redis.call('TIME')
    t = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  end
  if t < st.last then t = st.last end
  st.last = t
  return t
end

local function event(sequence)
  local raw = redis.call('HGET', E, int(sequence))
  if not raw then return nil end
  local at, requests, tokens = string.match(raw, '^(%d+):(%d+):(%d+)$')
  return tonumber(at), tonumber(requests), tonumber(tokens)
end

local function put_event(sequence, at, requests, tokens)
  if st.first >= st.next then fresh[E] = true end
  redis.call('HSET', E, int(sequence), int(at) .. ':' .. int(requests) .. ':' .. int(tokens))
end

-- Window::expire: events admitted at t count until t + span, exclusive.
local function expire(now)
  while st.first < st.next do
    local at, requests, tokens = event(st.first)
    if at then
      if at + SPAN > now then break end
      st.reqs = st.reqs - requests
      st.toks = st.toks - tokens
      redis.call('HDEL', E, int(st.first))
    end
    st.first = st.first + 1
  end
end

-- Window::set_tokens; false when the event has left.
local function set_tokens(sequence, tokens)
  if tokens > MAX_COUNT then tokens = MAX_COUNT end
  local at, requests, old = event(sequence)
  if not at then return false end
  st.toks = st.toks - old + tokens
  put_event(sequence, at, requests, tokens)
  return true
end

-- Window::cancel.
local function cancel(sequence)
  local at, requests, tokens = event(sequence)
  if not at then return false end
  st.reqs = st.reqs - requests
  st.toks = st.toks - tokens
  put_event(sequence, at, 0, 0)
  return true
end

-- Window::wait_until_freed: a scan of the oldest events until `needed` is freed.
local function wait_until_freed(now, needed, which)
  if needed <= 0 then return 0 end
  local freed = 0
  for sequence = st.first, st.next - 1 do
    local at, requests, tokens = event(sequence)
    if at then
      if which == 'requests' then freed = freed + requests else freed = freed + tokens end
      if freed >= needed then
        local wait = at + SPAN - now
        if wait < 0 then wait = 0 end
        return wait
      end
    end
  end
  return SPAN
end

-- Window::requests_wait / token_wait: nil when `extra` alone exceeds the limit.
local function requests_wait(now, limit, extra)
  if extra > limit then return nil end
  return wait_until_freed(now, st.reqs + extra - limit, 'requests')
end

local function token_wait(now, limit, estimate)
  if estimate > limit then return nil end
  return wait_until_freed(now, st.toks + estimate - limit, 'tokens')
end

local function update_moving_averages()
  st.mar = 0.25 * st.reqs + 0.75 * st.mar
  st.mat = 0.25 * st.toks + 0.75 * st.mat
end

-- Reservation records: numbers as decimal strings (exact to 2^53), the
-- owner as the client's JSON without its process group, which is kept apart.
-- The record carries its id, so a reply hands back the stored text as it is.
local function reservation(id)
  local raw = redis.call('HGET', R, id)
  if not raw then return nil end
  return cjson.decode(raw), raw
end

local function put_lease(id, lease)
  redis.call('ZADD', L, lease, id)
  if tonumber(lease) > latest then latest = tonumber(lease) end
end

-- Stores the record; returns it encoded.
local function put_reservation(id, record)
  local count = in_flight()
  if count == 0 then
    fresh[R] = true
    fresh[L] = true
  end
  record.id = id
  local encoded = cjson.encode(record)
  if redis.call('HSET', R, id, encoded) == 1 then flight = count + 1 end
  put_lease(id, record.lease)
  return encoded
end

local function drop_reservation(id)
  local count = in_flight()
  if redis.call('HDEL', R, id) == 1 then flight = count - 1 end
  redis.call('ZREM', L, id)
end

-- ModelState::reclaim for the given ids: the slot frees, the estimate goes,
-- the request stays counted.
local function reclaim(ids)
  for _, id in ipairs(ids) do
    local record = reservation(id)
    if record then
      drop_reservation(id)
      set_tokens(tonumber(record.seq), 0)
    end
  end
end

local function decode_ticket(id, raw)
  local ticket = cjson.decode(raw)
  ticket.id = id
  ticket.n = tonumber(ticket.n)
  ticket.est = tonumber(ticket.est)
  ticket.exp = tonumber(ticket.exp)
  return ticket
end

-- The waiters, in arrival order.
local function waiters()
  local list = live
  live = nil
  if not list then
    list = {}
    local raw = redis.call('HGETALL', W)
    for i = 1, #raw, 2 do list[#list + 1] = decode_ticket(raw[i], raw[i + 1]) end
  end
  table.sort(list, function(a, b) return a.n < b.n end)
  return list
end

local function put_ticket(ticket)
  if waiting == 0 or (waiting == nil and redis.call('EXISTS', W) == 0) then fresh[W] = true end
  local added = redis.call('HSET', W, ticket.id, cjson.encode({ n = int(ticket.n),
    est = int(ticket.est), arr = int(ticket.arr), exp = int(ticket.exp), owner = ticket.owner }))
  if added == 1 and waiting then waiting = waiting + 1 end
  if ticket.exp > latest then latest = ticket.exp end
end

-- Removes a ticket; true when it was there.
local function drop_ticket(id)
  if redis.call('HDEL', W, id) == 0 then return false end
  if waiting then waiting = waiting - 1 end
  return true
end

-- ModelState::reclaim_dead for ids the client found dead (tickets and reservations).
local function reclaim_dead(ids)
  local reservations = {}
  for _, id in ipairs(ids) do
    if not drop_ticket(id) then reservations[#reservations + 1] = id end
  end
  reclaim(reservations)
end

-- profile::effective_limit: limit × target floored (a product within a few
-- ulps of a whole number is that number), at least 1, never above the limit.
local function effective(limit, target)
  local product = limit * target
  local nearest = math.floor(product + 0.5)
  local floored = math.floor(product)
  if math.abs(product - nearest) <= math.max(math.abs(nearest), 1) * 8 * 2.220446049250313e-16 then
    floored = nearest
  end
  if floored < 1 then floored = 1 end
  if floored > limit then floored = limit end
  return floored
end

-- ModelState::apply_limits with Limits::paced: the profile's limits, each
-- effective one lowered to a limit the provider stated, at the profile's target.
local function apply_limits()
  if not profile then return end
  if st.cap >= st.base then st.cap = profile.base end
  if st.cap > profile.base then st.cap = profile.base end
  if st.cap < 1 then st.cap = 1 end
  st.rpm, st.tpm, st.erpm, st.etpm, st.base =
    profile.rpm, profile.tpm, profile.erpm, profile.etpm, profile.base
  if st.srpm > 0 then st.erpm = math.min(st.erpm, effective(st.srpm, profile.target)) end
  if st.stpm > 0 then st.etpm = math.min(st.etpm, effective(st.stpm, profile.target)) end
end

-- ModelState::refresh: a changed profile applies, old events leave, lapsed
-- tickets go, expired leases are reclaimed.
local function refresh(now)
  apply_limits()
  if st.hu > 0 and st.hu <= now then st.hk, st.hu, st.hr = '', 0, '' end
  expire(now)
  local raw = redis.call('HGETALL', W)
  live = {}
  for i = 1, #raw, 2 do
    local ticket = decode_ticket(raw[i], raw[i + 1])
    if ticket.exp <= now then
      redis.call('HDEL', W, raw[i])
    else
      live[#live + 1] = ticket
    end
  end
  waiting = #live
  reclaim(redis.call('ZRANGEBYSCORE', L, '-inf', int(now)))
end


-- The figures of ModelState::view, as strings.
-- Whole numbers go back as integer replies (exact to 2^53; no formatting).
local function view()
  return { st.provider, st.model, st.rpm, st.tpm, st.erpm, st.etpm, st.reqs, st.toks,
           float(st.mar), float(st.mat), st.base, st.cap, in_flight() }
end

-- The hold and the stated limits: kind ('' for none), end, reason, stated
-- rpm, stated tpm (0 for none).
local function advice()
  return { st.hk, st.hu, st.hr, st.srpm, st.stpm }
end

-- Saves the meta and refreshes every key's TTL, or drops the model
-- when nothing of it matters any more (PacingState::prune).
local function save(now)
  if st.reqs == 0 and st.toks == 0 and in_flight() == 0 and st.cap >= st.base
      and st.hu == 0 and st.srpm == 0 and st.stpm == 0 then
    if waiting == nil then waiting = redis.call('HLEN', W) end
    if waiting == 0 then
      redis.call('DEL', M, E, R, L, W)
      return
    end
  end
  -- Keys must outlive each lease and ticket by the span plus the slack. One
  -- written before this script needs nothing here: its own save left
  -- st.exp at least half the slack past that, and st.exp never falls while
  -- the model lives; so only this script's own leases and tickets count.
  local ttl = SPAN + SLACK
  if latest > now then ttl = ttl + latest - now end
  if st.hu > now and st.hu - now + SLACK > ttl then ttl = st.hu - now + SLACK end
  -- Every key lives until `st.exp`; extend them all when that comes within
  -- half the slack of what is needed, so most writes set no TTL at all.
  -- The meta's TTL rides on its SET; the other keys get theirs here.
  local extend = st.exp < now + ttl - SLACK / 2
  if extend then
    st.exp = now + ttl
    for i = 2, #KEYS do redis.call('PEXPIRE', KEYS[i], int(ttl)) end
  else
    for key in pairs(fresh) do
      if key ~= M then redis.call('PEXPIRE', key, int(st.exp - now)) end
    end
  end
  local packed = cmsgpack.pack(st)
  if extend or fresh[M] or packed ~= loaded then
    redis.call('SET', M, packed, 'PX', int(st.exp - now))
  end
end

-- A reservation as the client reads it back.
local function reservation_reply(id, record, raw)
  if raw and record.id == id then return raw end
  return cjson.encode({ id = id, seq = record.seq, at = record.at, lease = record.lease,
    ein = record.ein, mout = record.mout, est = record.est, owner = record.owner, pg = record.pg })
end

-- A model's status as the status and advise scripts reply: the view, the
-- hold and stated limits, then the in-flight reservations.
local function status_reply()
  local reply = view()
  for _, part in ipairs(advice()) do reply[#reply + 1] = part end
  local raw = redis.call('HGETALL', R)
  for i = 1, #raw, 2 do
    local record = cjson.decode(raw[i + 1])
    reply[#reply + 1] = reservation_reply(raw[i], record, raw[i + 1])
  end
  return reply
end
