-- One pass of an acquire (backend::attempt_on).
-- ARGV from 12: reservation id, held ticket or '', id for a new ticket, the
-- waiter's owner JSON, estimated input tokens, max output tokens, their sum,
-- the holder's owner JSON (no process group), its process group JSON or '',
-- lease ms, time left ms or '' (no deadline), poll interval ms, ticket
-- grace ms, '1' to hand back owners before waiting, the count of dead ids
-- and the ids, then the request's bucket or '' and the bucket's cap, then
-- the caps of every bucket of the profile as a JSON object (normalised name
-- -> cap).
-- KEYS[6], on a single server: the provider's hold hash (a cluster's client
-- looks at it before the script, since it lives in another slot).
-- Replies: {'granted', reservation} | {'owners', id, owner, group, ...} |
-- {'provider_held', until, reason} (every model of the provider is held) |
-- {'held', until, reason} (a quota hold) | {'giveup', reason, needed} |
-- {'over', budget, amount, limit} (a part alone over a budget's limit) |
-- {'sleep', reason, retry_after, sleep, ticket}.
local id, held, new_ticket, waiter = ARGV[12], ARGV[13], ARGV[14], ARGV[15]
local ein, mout, estimate = tonumber(ARGV[16]), tonumber(ARGV[17]), tonumber(ARGV[18])
local owner, group, lease = ARGV[19], ARGV[20], tonumber(ARGV[21])
local remaining = tonumber(ARGV[22])
local poll, grace, check = tonumber(ARGV[23]), tonumber(ARGV[24]), ARGV[25] == '1'
local dead = {}
for i = 1, tonumber(ARGV[26]) do dead[i] = ARGV[26 + i] end
if held == '' then held = nil end
local bucket = ARGV[27 + #dead]
local bucket_cap = tonumber(ARGV[28 + #dead])
if bucket == '' then bucket = nil end
local CAPS = cjson.decode(ARGV[29 + #dead])

-- The in-flight reservations of the request's bucket: how many, and the
-- earliest lease end among them.
local function bucket_holding()
  local count, earliest = 0, nil
  local raw = redis.call('HGETALL', R)
  for i = 1, #raw, 2 do
    local record = cjson.decode(raw[i + 1])
    if record.bk == bucket then
      count = count + 1
      local lease = tonumber(record.lease)
      if earliest == nil or lease < earliest then earliest = lease end
    end
  end
  return count, earliest
end

if not load() then create(ARGV[9], ARGV[10]) end
local now = clock()
if KEYS[6] then
  local provider_hold = redis.call('HMGET', KEYS[6], 'until', 'reason')
  local ends = tonumber(provider_hold[1])
  if ends and ends > now then
    if held then redis.call('HDEL', W, held) end
    save(now)
    return { 'provider_held', int(ends), provider_hold[2] }
  end
end
reclaim_dead(dead)
local existing, stored = reservation(id)
if existing then
  save(now)
  return { 'granted', reservation_reply(id, existing, stored) }
end

-- ModelState::ready_in: when demand `d` more fits every budget together;
-- nil when it never can.
local function ready_in(d)
  local wait = requests_wait(now, st.erpm, d.requests)
  if not wait then return nil end
  local token_wait_ = token_wait(now, st.etpm, d.tokens)
  if not token_wait_ then return nil end
  if token_wait_ > wait then wait = token_wait_ end
  local budget_wait = budgets_demand_wait(now, d.requests, d.input, d.output, d.tokens)
  if budget_wait == 'over' then return nil end
  if budget_wait and budget_wait > wait then wait = budget_wait end
  return wait
end

-- Demand::plus.
local function plus(a, b)
  return { requests = a.requests + b.requests, input = a.input + b.input,
           output = a.output + b.output, tokens = a.tokens + b.tokens }
end

-- scheduler::ticket_demand.
local function ticket_demand(ticket)
  local input, output = ticket.est, ticket.est
  if ticket.ein then input, output = ticket.ein, math.max(ticket.est - ticket.ein, 0) end
  return { requests = 1, input = input, output = output, tokens = ticket.est }
end

-- ModelState::takes_a_slot_ahead. The in-flight reservations are read (and
-- decoded) only when a bucket with a cap is in play.
local function takes_a_slot_ahead(ahead)
  local holding = {}
  local capped = bucket and CAPS[bucket]
  for _, ticket in ipairs(ahead) do
    if capped then break end
    capped = ticket.bk and CAPS[ticket.bk]
  end
  if capped then
    for _, raw in ipairs(redis.call('HVALS', R)) do
      local record = cjson.decode(raw)
      if type(record.bk) == 'string' then holding[record.bk] = (holding[record.bk] or 0) + 1 end
    end
  end
  local queued, model_slots = {}, 0
  for _, ticket in ipairs(ahead) do
    local cap = ticket.bk and CAPS[ticket.bk]
    if cap then
      queued[ticket.bk] = (queued[ticket.bk] or 0) + 1
      if (holding[ticket.bk] or 0) + queued[ticket.bk] <= cap then model_slots = model_slots + 1 end
    else
      model_slots = model_slots + 1
    end
  end
  if in_flight() + model_slots + 1 > st.cap then return true end
  local cap = bucket and CAPS[bucket]
  return cap ~= nil and (holding[bucket] or 0) + (queued[bucket] or 0) + 1 > cap
end

-- ModelState::queue_wait: nil when admitting now delays no waiter ahead.
local function queue_wait(queue, number)
  local ahead = {}
  for _, ticket in ipairs(queue) do
    if number == nil or ticket.n < number then ahead[#ahead + 1] = ticket end
  end
  if #ahead == 0 then return nil end
  local mine = { requests = 1, input = ein, output = mout, tokens = ein + mout }
  local blocked = takes_a_slot_ahead(ahead)
  local total = { requests = 0, input = 0, output = 0, tokens = 0 }
  for _, ticket in ipairs(ahead) do total = plus(total, ticket_demand(ticket)) end
  local all_with_mine = ready_in(plus(total, mine))
  -- ready_in never falls as the demand grows, so when every waiter ahead and
  -- this request together are ready as soon as the first waiter alone, this
  -- request delays none of them: two waits instead of two per waiter.
  if not blocked and all_with_mine ~= nil
      and all_with_mine == ready_in(ticket_demand(ahead[1])) then
    return nil
  end
  local before = { requests = 0, input = 0, output = 0, tokens = 0 }
  for _, ticket in ipairs(ahead) do
    if blocked then break end
    before = plus(before, ticket_demand(ticket))
    local without = ready_in(before)
    local with = ready_in(plus(before, mine))
    if without and with then blocked = with > without else blocked = true end
  end
  if not blocked then return nil end
  local all_fit = all_with_mine or SPAN
  if all_fit < 1 then all_fit = 1 end
  return all_fit
end

-- ModelState::try_acquire_in_turn (the range and size checks are the client's:
-- they depend on the request and the profile only).
refresh(now)
if st.hu > now and st.hk == 'quota' then
  if held then drop_ticket(held) end
  save(now)
  return { 'held', int(st.hu), st.hr }
end
local retry_after, reason
local bucket_count, bucket_lease = 0, nil
if bucket then bucket_count, bucket_lease = bucket_holding() else bucket_cap = 1 end
local token_wait_ = token_wait(now, st.etpm, estimate) or SPAN
local request_wait = requests_wait(now, st.erpm, 1) or SPAN
local queue = waiters()
local budget_wait, budget_reason, over_amount, over_limit = nil, nil, nil, nil
if st.hu <= now then
  budget_wait, budget_reason, over_amount, over_limit = budgets_wait(now, ein, mout)
  if budget_wait == 'over' then
    if held then redis.call('HDEL', W, held) end
    save(now)
    return { 'over', budget_reason, int(over_amount), int(over_limit) }
  end
end
if st.hu > now then
  retry_after, reason = math.max(st.hu - now, 1), 'hold'
elseif request_wait > 0 or token_wait_ > 0 or budget_wait then
  if request_wait >= token_wait_ then
    retry_after, reason = request_wait, 'requests'
  else
    retry_after, reason = token_wait_, 'tokens'
  end
  if budget_wait and budget_wait > retry_after then
    retry_after, reason = budget_wait, budget_reason
  end
elseif in_flight() >= st.cap then
  local earliest = redis.call('ZRANGE', L, 0, 0, 'WITHSCORES')
  local lease_end = tonumber(earliest[2]) or now
  retry_after, reason = math.max(lease_end - now, 1), 'concurrency'
elseif bucket_count >= bucket_cap then
  retry_after, reason = math.max((bucket_lease or now) - now, 1), 'bucket'
else
  local number = nil
  if held then
    for _, ticket in ipairs(queue) do
      if ticket.id == held then number = ticket.n end
    end
  end
  local wait = queue_wait(queue, number)
  if wait then
    retry_after, reason = wait, 'queue'
  else
    if held then drop_ticket(held) end
    local sequence = st.next
    st.next = st.next + 1
    st.reqs = st.reqs + 1
    st.toks = st.toks + math.min(estimate, MAX_COUNT)
    put_event(sequence, now, 1, math.min(estimate, MAX_COUNT))
    local record = { seq = int(sequence), at = int(now), lease = int(now + lease),
      ein = int(ein), mout = int(mout), est = int(estimate), owner = owner, pg = group,
      bk = bucket }
    local encoded = put_reservation(id, record)
    budgets_admit(now, ein, mout)
    update_moving_averages()
    save(now)
    return { 'granted', encoded }
  end
end

-- A wait. First let the client look for dead owners among the holders and
-- waiters (it alone can see processes); it passes again with their ids.
if check then
  local reply = { 'owners' }
  for _, raw_id in ipairs(redis.call('HKEYS', R)) do
    local record = reservation(raw_id)
    reply[#reply + 1] = raw_id
    reply[#reply + 1] = record.owner
    reply[#reply + 1] = record.pg
  end
  for _, ticket in ipairs(queue) do
    reply[#reply + 1] = ticket.id
    reply[#reply + 1] = ticket.owner
    reply[#reply + 1] = ''
  end
  if #reply > 1 then
    save(now)
    return reply
  end
end

local exact = reason ~= 'concurrency' and reason ~= 'queue'
local sleep = retry_after
if not exact and poll < sleep then sleep = poll end
if remaining then
  if remaining == 0 or (exact and retry_after > remaining) then
    if held then drop_ticket(held) end
    save(now)
    return { 'giveup', reason, int(retry_after) }
  end
  if remaining < sleep then sleep = remaining end
end
local wake = now + sleep
local kept = nil
if held then
  for _, ticket in ipairs(queue) do
    if ticket.id == held then
      if ticket.exp < wake + math.floor(grace / 2) then
        ticket.exp = math.max(ticket.exp, wake + grace)
        put_ticket(ticket)
      end
      kept = held
    end
  end
end
if not kept then
  if st.nt >= MAX_COUNT then
    for number, ticket in ipairs(queue) do
      ticket.n = number - 1
      put_ticket(ticket)
    end
    st.nt = #queue
  end
  local est = math.min(estimate, MAX_COUNT)
  put_ticket({ id = new_ticket, n = st.nt, est = est, ein = math.min(ein, est), bk = bucket,
               arr = now, exp = wake + grace, owner = waiter })
  st.nt = st.nt + 1
  kept = new_ticket
end
save(now)
return { 'sleep', reason, int(retry_after), int(sleep), kept }
