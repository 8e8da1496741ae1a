-- The model state every operation script shares (prepended to each one).
-- A port of ModelState and Window (src/rate_limits/scheduler.rs, window.rs).
--
-- KEYS: 1 meta (a string: the state's fields as one MessagePack map, read
--       and written whole: one reply element instead of one per field),
--       2 events hash (sequence -> "at:requests:tokens"),
--       3 reservations hash (id -> record), 4 lease ends (sorted set, id by
--       lease end), 5 waiters hash (ticket id -> record). One hash tag.
--       An operation may add keys of its own after these (attempt: 6).
-- ARGV: 1 client time in ms or '' for the server's TIME, 2 span in ms
--       (a minute plus the window margin), 3 the profile's utilization
--       target when a profile follows, else '',
--       4..8 its rpm, tpm, effective rpm, effective tpm and concurrency cap,
--       9 provider, 10 model, 11 TTL slack in ms; the operation's own from 12;
--       last of all, the budgets beyond RPM and TPM (see the Budgets section).
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

-- What a field missing from the meta reads as (one written by a build that
-- did not know the field): 0, or '' for the text fields (provider and model,
-- the hold's kind and reason, the budgets' minute and day tallies).
local function field_defaults()
  local defaults = { provider = '', model = '', hk = '', hr = '', bm = '', bd = '' }
  for _, field in ipairs({ 'rpm', 'tpm', 'erpm', 'etpm', 'base', 'cap', 'streak', 'mar',
      'mat', 'first', 'next', 'reqs', 'toks', 'last', 'nt', 'exp', 'srpm', 'stpm', 'hu',
      'sitpm', 'sotpm', 'srpd', 'stpd', 'ur', 'uru', 'ut', 'utu', 'ui', 'uiu', 'uo',
      'uou' }) do
    defaults[field] = 0
  end
  return defaults
end
local defaults = nil
local DEFAULTED = { __index = function(_, field)
  defaults = defaults or field_defaults()
  return defaults[field]
end }

-- Loads the meta; false when the model has no state. A field missing from
-- it reads as its default through a metatable, so a load converts nothing
-- (a loop over every field cost as much as the GET and the unpack).
-- A meta of another type (a hash, from builds before the MessagePack meta)
-- is dropped with the model's other keys: a budget reset for that model.
local function load()
  local raw = redis.pcall('GET', M)
  if type(raw) == 'table' and raw.err then
    redis.call('DEL', M, E, R, L, W)
    return false
  end
  if not raw then return false end
  st = setmetatable(cmsgpack.unpack(raw), DEFAULTED)
  loaded = raw
  return true
end

-- Fresh state under the profile (ModelState::new).
local function create(provider, model)
  fresh[M] = true
  st = { provider = provider, model = model, rpm = profile.rpm, tpm = profile.tpm,
         erpm = profile.erpm, etpm = profile.etpm, base = profile.base, cap = profile.base,
         streak = 0, mar = 0, mat = 0, first = 0, next = 0, reqs = 0, toks = 0, last = 0, nt = 0,
         exp = 0, srpm = 0, stpm = 0, hu = 0, hk = '', hr = '', sitpm = 0, sotpm = 0,
         srpd = 0, stpd = 0, ur = 0, uru = 0, ut = 0, utu = 0, ui = 0, uiu = 0, uo = 0, uou = 0,
         bm = '', bd = '' }
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

-- The running totals of the oldest events, read as far as a wait needed
-- (see wait_until_freed); nil until one did, and again after any change to
-- the window.
local sums = nil

local function event(sequence)
  local raw = redis.call('HGET', E, int(sequence))
  if not raw then return nil end
  local at, requests, tokens = string.match(raw, '^(%d+):(%d+):(%d+)$')
  return tonumber(at), tonumber(requests), tonumber(tokens)
end

local function put_event(sequence, at, requests, tokens)
  if st.first >= st.next then fresh[E] = true end
  sums = nil
  redis.call('HSET', E, int(sequence), int(at) .. ':' .. int(requests) .. ':' .. int(tokens))
end

-- Window::expire: events admitted at t count until t + span, exclusive.
local function expire(now)
  sums = nil
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

-- Window::wait_until_freed: when the oldest events have freed `needed`.
-- The events' running totals are kept for the rest of the script, so the
-- queue's many waits (one per waiter ahead) read each event once and find
-- their answer by bisection.
local function wait_until_freed(now, needed, which)
  if needed <= 0 then return 0 end
  if not sums then sums = { next = st.first, at = {}, requests = {}, tokens = {} } end
  local totals = sums.tokens
  if which == 'requests' then totals = sums.requests end
  local count = #sums.at
  if count > 0 and totals[count] >= needed then
    local low, high = 1, count
    while low < high do
      local middle = math.floor((low + high) / 2)
      if totals[middle] >= needed then high = middle else low = middle + 1 end
    end
    return math.max(sums.at[low] + SPAN - now, 0)
  end
  while sums.next < st.next do
    local at, requests, tokens = event(sums.next)
    sums.next = sums.next + 1
    if at then
      count = count + 1
      sums.at[count] = at
      sums.requests[count] = (sums.requests[count - 1] or 0) + requests
      sums.tokens[count] = (sums.tokens[count - 1] or 0) + tokens
      if totals[count] >= needed then return math.max(at + SPAN - now, 0) end
    end
  end
  return SPAN
end

-- Window::requests_wait / token_wait: nil when `extra` alone exceeds the limit.
local function window_requests_wait(now, limit, extra)
  if extra > limit then return nil end
  return wait_until_freed(now, st.reqs + extra - limit, 'requests')
end

local function window_token_wait(now, limit, estimate)
  if estimate > limit then return nil end
  return wait_until_freed(now, st.toks + estimate - limit, 'tokens')
end

-- hold::wait_with_unseen: the window's wait with `unseen` more counted
-- beside it until `ends`.
local function with_unseen(now, unseen, ends, wait)
  local alone = wait(0)
  if unseen == 0 or ends <= now then return alone end
  local together = wait(unseen)
  local after = nil
  if alone then after = math.max(alone, ends - now) end
  if together and after then return math.min(together, after) end
  return together or after
end

-- ModelState::requests_wait / tokens_wait: the window and the provider's
-- unseen use together.
local function requests_wait(now, limit, extra)
  return with_unseen(now, st.ur, st.uru,
    function(more) return window_requests_wait(now, limit, extra + more) end)
end

local function token_wait(now, limit, estimate)
  return with_unseen(now, st.ut, st.utu,
    function(more) return window_token_wait(now, limit, estimate + more) end)
end

-- UnseenUse::update for one part: what the provider counts beyond our
-- window, until its reset (at most a span away, a span when none).
local function unseen_part(used, own, reset, now)
  local unseen = used - own
  if unseen <= 0 then return 0, 0 end
  if unseen > MAX_COUNT then unseen = MAX_COUNT end
  local ends = now + SPAN
  if reset > now and reset < ends then ends = reset end
  return unseen, ends
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

-- Budgets beyond RPM and TPM (src/rate_limits/budgets.rs): input and output
-- tokens per minute, requests and tokens per day. The last ARGV holds the
-- profile's limits, 'itpm,otpm,rpd,tpd,period start,period end' (each ''
-- when unset; the period of a fixed daily reset as the client's clock puts
-- it, '' for a rolling day). The tallies live in the meta hash as
-- 'at:a:b' entries joined by ',': `bm` (admitted at, input, output) and
-- `bd` (latest admission of the minute, requests, tokens).
local DAY, DAY_ENTRY = 86400000, 60000
local ext = nil
do
  local a, b, c, d, e, f = string.match(ARGV[#ARGV] or '',
    '^(%d*),(%d*),(%d*),(%d*),(%d*),(%d*)$')
  if a and profile then
    ext = { itpm = tonumber(a), otpm = tonumber(b), rpd = tonumber(c), tpd = tonumber(d),
            pstart = tonumber(e), pend = tonumber(f) }
    ext.own = ext.itpm or ext.otpm or ext.rpd or ext.tpd
  end
end

-- The tallies, decoded once per script, with their totals.
local tallies = nil
local function decode_tally(text)
  local list = {}
  for at, x, y in string.gmatch(text, '(%d+):(%d+):(%d+)') do
    list[#list + 1] = { tonumber(at), tonumber(x), tonumber(y) }
  end
  return list
end
local function tally()
  if tallies then return tallies end
  tallies = { m = decode_tally(st.bm), d = decode_tally(st.bd), mi = 0, mo = 0, dr = 0, dt = 0 }
  for _, e in ipairs(tallies.m) do tallies.mi, tallies.mo = tallies.mi + e[2], tallies.mo + e[3] end
  for _, e in ipairs(tallies.d) do tallies.dr, tallies.dt = tallies.dr + e[2], tallies.dt + e[3] end
  return tallies
end
local function encode_tally(list)
  local parts = {}
  for i, e in ipairs(list) do parts[i] = int(e[1]) .. ':' .. int(e[2]) .. ':' .. int(e[3]) end
  return table.concat(parts, ',')
end
local function store_tallies()
  if tallies then st.bm, st.bd = encode_tally(tallies.m), encode_tally(tallies.d) end
end

-- budgets::Paced: each limit the lower of the profile's and the stated one,
-- at the profile's target; nil where neither sets one (or with no profile).
local function paced_limit(own, stated)
  local best = nil
  if own then best = effective(own, profile.target) end
  if stated and stated > 0 then
    local lowered = effective(stated, profile.target)
    if not best or lowered < best then best = lowered end
  end
  return best
end
-- No budget beyond RPM and TPM: what paced() answers for a profile that sets
-- none where the provider stated none either, without a table per call.
local NO_BUDGETS = {}
local function paced()
  if not ext then return nil end
  if not ext.own and st.sitpm == 0 and st.sotpm == 0 and st.srpd == 0 and st.stpd == 0 then
    return NO_BUDGETS
  end
  local limits = { paced_limit(ext.itpm, st.sitpm), paced_limit(ext.otpm, st.sotpm),
                   paced_limit(ext.rpd, st.srpd), paced_limit(ext.tpd, st.stpd) }
  limits.any = limits[1] or limits[2] or limits[3] or limits[4]
  return limits
end
local BUDGETS = { 'input_tokens_per_minute', 'output_tokens_per_minute',
                  'requests_per_day', 'tokens_per_day' }
local BUDGET_REASONS = { 'input_tokens', 'output_tokens', 'daily_requests', 'daily_tokens' }

-- DailyReset::period at `now`: nil for a rolling day.
local function period(now)
  if not ext or not ext.pend then return nil end
  if now >= ext.pend then return ext.pend, ext.pend + DAY end
  return ext.pstart, ext.pend
end

-- The entries of `list` from `keep` on (a copy: unpack overflows the stack
-- on long lists).
local function drop_front(list, keep)
  local kept = {}
  for i = keep, #list do kept[#kept + 1] = list[i] end
  return kept
end

-- Budgets::expire.
local function budgets_expire(now)
  local limits = paced()
  if not limits then return end
  if st.bm == '' and st.bd == '' and not tallies then return end
  local t = tally()
  if not limits[1] and not limits[2] then t.m, t.mi, t.mo = {}, 0, 0 end
  local keep = 1
  while t.m[keep] and t.m[keep][1] + SPAN <= now do
    t.mi, t.mo = t.mi - t.m[keep][2], t.mo - t.m[keep][3]
    keep = keep + 1
  end
  if keep > 1 then t.m = drop_front(t.m, keep) end
  if not limits[3] and not limits[4] then t.d, t.dr, t.dt = {}, 0, 0 end
  local start = period(now)
  keep = 1
  while t.d[keep] do
    local at = t.d[keep][1]
    local counts
    if start then counts = at >= start else counts = at + DAY > now end
    if counts then break end
    t.dr, t.dt = t.dr - t.d[keep][2], t.dt - t.d[keep][3]
    keep = keep + 1
  end
  if keep > 1 then t.d = drop_front(t.d, keep) end
end

-- Budgets::freed_after.
local function freed_after(list, needed, column, span, now)
  local freed = 0
  for _, e in ipairs(list) do
    freed = freed + e[column]
    if freed >= needed then return math.max(e[1] + span - now, 0) end
  end
  return span
end

-- Budgets::wait_for: nil | wait, reason | 'over', budget, amount, limit, for
-- `requests` requests of `input` + `output` (`tokens` in all) together.
local function budgets_demand_wait(now, requests, input, output, tokens)
  local limits = paced()
  if not limits or not limits.any then return nil end
  local t = tally()
  local _, ends = period(now)
  local longest, longest_reason = nil, nil
  for i = 1, 4 do
    local limit = limits[i]
    if limit then
      local amount, total
      if i == 1 then amount, total = input, t.mi
      elseif i == 2 then amount, total = output, t.mo
      elseif i == 3 then amount, total = requests, t.dr
      else amount, total = tokens, t.dt end
      if amount > limit then return 'over', BUDGETS[i], amount, limit end
      local function wait_with(more)
        local needed = total + amount + more - limit
        if needed <= 0 then return 0 end
        local wait
        if i >= 3 and ends then wait = ends - now
        elseif i >= 3 then wait = freed_after(t.d, needed, i - 1, DAY, now)
        else wait = freed_after(t.m, needed, i + 1, SPAN, now) end
        if wait < 1 then wait = 1 end
        return wait
      end
      -- The input and output tokens the provider counts beside the tally.
      local wait
      if i == 1 then wait = with_unseen(now, st.ui, st.uiu, wait_with)
      elseif i == 2 then wait = with_unseen(now, st.uo, st.uou, wait_with)
      else wait = wait_with(0) end
      if wait > 0 and (not longest or wait > longest) then
        longest, longest_reason = wait, BUDGET_REASONS[i]
      end
    end
  end
  return longest, longest_reason
end

-- Budgets::wait: one request.
local function budgets_wait(now, input, output)
  return budgets_demand_wait(now, 1, input, output, input + output)
end

-- Budgets::admit.
local function budgets_admit(at, input, output)
  local limits = paced()
  if not limits or not limits.any then return end
  local t = tally()
  if limits[1] or limits[2] then
    local last = t.m[#t.m]
    if last and last[1] == at then
      last[2], last[3] = last[2] + input, last[3] + output
    else
      t.m[#t.m + 1] = { at, input, output }
    end
    t.mi, t.mo = t.mi + input, t.mo + output
  end
  if limits[3] or limits[4] then
    local last = t.d[#t.d]
    if last and math.floor(last[1] / DAY_ENTRY) == math.floor(at / DAY_ENTRY) then
      last[1] = math.max(last[1], at)
      last[2], last[3] = last[2] + 1, last[3] + input + output
    else
      t.d[#t.d + 1] = { at, 1, input + output }
    end
    t.dr, t.dt = t.dr + 1, t.dt + input + output
  end
end

-- Budgets::reconcile: what the request admitted at `at` counts goes from
-- (fi, fo) to (ti, to); `unsent` takes its request off the day.
local function budgets_reconcile(at, fi, fo, ti, to, unsent)
  if st.bm == '' and st.bd == '' and not tallies then return end
  local t = tally()
  for _, e in ipairs(t.m) do
    if e[1] == at then
      local input, output = math.max(e[2] - fi, 0) + ti, math.max(e[3] - fo, 0) + to
      t.mi, t.mo = t.mi - e[2] + input, t.mo - e[3] + output
      e[2], e[3] = input, output
      break
    end
  end
  local bucket = math.floor(at / DAY_ENTRY)
  for _, e in ipairs(t.d) do
    if math.floor(e[1] / DAY_ENTRY) == bucket then
      local requests = e[2]
      if unsent then requests = math.max(requests - 1, 0) end
      local tokens = math.max(e[3] - (fi + fo), 0) + ti + to
      t.dr, t.dt = t.dr - e[2] + requests, t.dt - e[3] + tokens
      e[2], e[3] = requests, tokens
      break
    end
  end
end

-- Budgets::uses, as 'budget:profile limit or empty:limit:used:frees at or empty' joined by ','.
local function budget_uses(now)
  local limits = paced()
  if not limits or not limits.any then return '' end
  local t = tally()
  local _, ends = period(now)
  local own = { ext.itpm, ext.otpm, ext.rpd, ext.tpd }
  local totals = { t.mi, t.mo, t.dr, t.dt }
  local parts = {}
  for i = 1, 4 do
    if limits[i] then
      local frees = ''
      if totals[i] > 0 then
        if i >= 3 and ends then frees = int(ends)
        elseif i >= 3 and t.d[1] then frees = int(t.d[1][1] + DAY)
        elseif i < 3 and t.m[1] then frees = int(t.m[1][1] + SPAN) end
      end
      local mine = ''
      if own[i] then mine = int(own[i]) end
      parts[#parts + 1] = BUDGETS[i] .. ':' .. mine .. ':' .. int(limits[i]) .. ':'
        .. int(totals[i]) .. ':' .. frees
    end
  end
  return table.concat(parts, ',')
end

-- ModelState::reclaim for the given ids: the slot frees, the estimate goes,
-- the request stays counted.
local function reclaim(ids)
  for _, id in ipairs(ids) do
    local record = reservation(id)
    if record then
      drop_reservation(id)
      set_tokens(tonumber(record.seq), 0)
      budgets_reconcile(tonumber(record.at), tonumber(record.ein), tonumber(record.mout), 0, 0,
        false)
    end
  end
end

local function decode_ticket(id, raw)
  local ticket = cjson.decode(raw)
  ticket.id = id
  ticket.n = tonumber(ticket.n)
  ticket.est = tonumber(ticket.est)
  ticket.exp = tonumber(ticket.exp)
  -- Absent on a ticket of an older build (the queue then counts its whole
  -- estimate as input and as output) or of a request without a bucket.
  ticket.ein = tonumber(ticket.ein)
  if type(ticket.bk) ~= 'string' then ticket.bk = nil end
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
    est = int(ticket.est), arr = int(ticket.arr), exp = int(ticket.exp), owner = ticket.owner,
    ein = ticket.ein and int(ticket.ein), bk = ticket.bk }))
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
  budgets_expire(now)
  if st.uru <= now then st.ur, st.uru = 0, 0 end
  if st.utu <= now then st.ut, st.utu = 0, 0 end
  if st.uiu <= now then st.ui, st.uiu = 0, 0 end
  if st.uou <= now then st.uo, st.uou = 0, 0 end
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
-- rpm, stated tpm (0 for none); then the unseen use: requests, their end,
-- tokens, their end.
local function advice()
  return { st.hk, st.hu, st.hr, st.srpm, st.stpm, st.ur, st.uru, st.ut, st.utu }
end

-- The stated input and output tokens per minute and requests and tokens
-- per day (0 for none), the budgets' uses, then the unseen input tokens,
-- their end, output tokens, their end, as strings.
local function budget_reply(now)
  return { int(st.sitpm), int(st.sotpm), int(st.srpd), int(st.stpd), budget_uses(now),
           int(st.ui), int(st.uiu), int(st.uo), int(st.uou) }
end

-- Saves the meta and refreshes every key's TTL, or drops the model
-- when nothing of it matters any more (PacingState::prune).
local function save(now)
  store_tallies()
  if st.reqs == 0 and st.toks == 0 and in_flight() == 0 and st.cap >= st.base
      and st.hu == 0 and st.srpm == 0 and st.stpm == 0
      and st.sitpm == 0 and st.sotpm == 0 and st.srpd == 0 and st.stpd == 0
      and st.ur == 0 and st.ut == 0 and st.ui == 0 and st.uo == 0
      and st.bm == '' and st.bd == '' then
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
  -- A day's tally lives as long as a day can count it.
  if st.bd ~= '' then ttl = DAY + SLACK end
  if latest > now then ttl = ttl + latest - now end
  if st.hu > now and st.hu - now + SLACK > ttl then ttl = st.hu - now + SLACK end
  -- Every key lives until `st.exp`; extend them all when that comes within
  -- half the slack of what is needed, so most writes set no TTL at all.
  -- The meta's TTL rides on its SET; the other keys get theirs here.
  local extend = st.exp < now + ttl - SLACK / 2
  if extend then
    st.exp = now + ttl
    for i = 2, 5 do redis.call('PEXPIRE', KEYS[i], int(ttl)) end
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
    ein = record.ein, mout = record.mout, est = record.est, owner = record.owner, pg = record.pg,
    bk = record.bk })
end

-- A model's status as the status and advise scripts reply: the view, the
-- hold and stated limits, the budgets, then the in-flight reservations.
local function status_reply(now)
  local reply = view()
  for _, part in ipairs(advice()) do reply[#reply + 1] = part end
  for _, part in ipairs(budget_reply(now)) do reply[#reply + 1] = part end
  local raw = redis.call('HGETALL', R)
  for i = 1, #raw, 2 do
    local record = cjson.decode(raw[i + 1])
    reply[#reply + 1] = reservation_reply(raw[i], record, raw[i + 1])
  end
  return reply
end
