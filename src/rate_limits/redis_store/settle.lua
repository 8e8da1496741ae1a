-- Ends or renews a reservation (backend::settle_on).
-- ARGV from 12: reservation id, kind ('success', 'rate_limit', 'failure',
-- 'release' or 'renew'), then for success and failure the tokens to count
-- (for success then its input and output tokens apart);
-- for renew the lease in ms and the process group JSON or ''.
-- Replies: {'unknown'} | {'settled', reservation, view...}.
local id, kind = ARGV[12], ARGV[13]
if not load() then return { 'unknown' } end
local now = clock()
refresh(now)
local record, stored = reservation(id)
if not record then
  save(now)
  return { 'unknown' }
end
if kind == 'renew' then
  local lease = math.max(tonumber(record.lease), now + tonumber(ARGV[14]))
  record.lease = int(lease)
  if ARGV[15] ~= '' then record.pg = ARGV[15] end
  record.id = id
  stored = cjson.encode(record)
  redis.call('HSET', R, id, stored)
  put_lease(id, lease)
else
  drop_reservation(id)
  local sequence = tonumber(record.seq)
  local at, ein, mout = tonumber(record.at), tonumber(record.ein), tonumber(record.mout)
  if kind == 'success' then
    set_tokens(sequence, tonumber(ARGV[14]))
    budgets_reconcile(at, ein, mout, tonumber(ARGV[15]), tonumber(ARGV[16]), false)
    if st.cap < st.base then
      st.streak = st.streak + 1
      if st.streak >= 3 then
        st.cap = st.cap + 1
        st.streak = 0
      end
    end
    update_moving_averages()
  elseif kind == 'rate_limit' then
    st.streak = 0
    st.cap = math.max(math.ceil(st.cap / 2), 1)
    update_moving_averages()
  elseif kind == 'failure' then
    local tokens = tonumber(ARGV[14])
    set_tokens(sequence, tokens)
    local input = math.min(tokens, ein)
    budgets_reconcile(at, ein, mout, input, tokens - input, false)
    update_moving_averages()
  else
    cancel(sequence)
    budgets_reconcile(at, ein, mout, 0, 0, true)
  end
end
local reply = { 'settled', reservation_reply(id, record, stored) }
for _, figure in ipairs(view()) do reply[#reply + 1] = figure end
save(now)
return reply
