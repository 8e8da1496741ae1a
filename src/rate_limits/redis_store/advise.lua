-- What an answer taught about a model (ModelState::advise, then status_on).
-- ARGV from 12: '1' to clear the standing hold first, the stated rpm or '',
-- the stated tpm or '', a hold's kind or '', its end in ms, its reason, the
-- stated input and output tokens per minute, requests and tokens per day or '',
-- the requests the provider counts as used or '', their reset in ms (0 for
-- none), the tokens likewise, the input tokens likewise, the output tokens
-- likewise; last, the profile's budgets (model.lua).
-- Replies: {view..., advice..., reservation, ...}, as status.
if not load() then create(ARGV[9], ARGV[10]) end
local now = clock()
-- A hold that has ended first leaves, so it cannot outrank a new one.
refresh(now)
if ARGV[12] == '1' then st.hk, st.hu, st.hr = '', 0, '' end
if ARGV[13] ~= '' then st.srpm = tonumber(ARGV[13]) end
if ARGV[14] ~= '' then st.stpm = tonumber(ARGV[14]) end
if ARGV[18] ~= '' then st.sitpm = tonumber(ARGV[18]) end
if ARGV[19] ~= '' then st.sotpm = tonumber(ARGV[19]) end
if ARGV[20] ~= '' then st.srpd = tonumber(ARGV[20]) end
if ARGV[21] ~= '' then st.stpd = tonumber(ARGV[21]) end
local SEVERITY = { backoff = 1, exhausted = 2, quota = 3 }
local kind, ends = ARGV[15], tonumber(ARGV[16])
if kind ~= '' and ends > now then
  local standing = 0
  if st.hu > 0 then standing = SEVERITY[st.hk] or 0 end
  local severity = SEVERITY[kind]
  if severity > standing or (severity == standing and ends > st.hu) then
    st.hk, st.hu, st.hr = kind, ends, ARGV[17]
  end
end
-- UnseenUse::update: the provider's count includes ours.
if ARGV[22] ~= '' then st.ur, st.uru = unseen_part(tonumber(ARGV[22]), st.reqs, tonumber(ARGV[23]), now) end
if ARGV[24] ~= '' then st.ut, st.utu = unseen_part(tonumber(ARGV[24]), st.toks, tonumber(ARGV[25]), now) end
-- Input and output tokens only where the tally counts them (ITPM or OTPM paced).
local limits = paced()
if limits and (limits[1] or limits[2]) then
  local t = tally()
  if ARGV[26] ~= '' then st.ui, st.uiu = unseen_part(tonumber(ARGV[26]), t.mi, tonumber(ARGV[27]), now) end
  if ARGV[28] ~= '' then st.uo, st.uou = unseen_part(tonumber(ARGV[28]), t.mo, tonumber(ARGV[29]), now) end
end
refresh(now)
update_moving_averages()
local reply = status_reply(now)
save(now)
return reply
