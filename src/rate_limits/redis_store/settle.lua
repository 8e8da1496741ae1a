-- Ends or renews a reservation (backend::settle_on).
-- ARGV from 12: reservation id, kind ('success', 'rate_limit', 'failure',
-- 'release' or 'renew'), then for success and failure the tokens to count;
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
  if kind == 'success' then
    set_tokens(sequence, tonumber(ARGV[14]))
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
    set_tokens(sequence, tonumber(ARGV[14]))
    update_moving_averages()
  else
    cancel(sequence)
  end
end
local reply = { 'settled', reservation_reply(id, record, stored) }
for _, figure in ipairs(view()) do reply[#reply + 1] = figure end
save(now)
return reply
