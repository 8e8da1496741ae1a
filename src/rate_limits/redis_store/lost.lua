-- Counts a call whose reservation was reclaimed while it ran
-- (ModelState::record_lost).
-- ARGV from 12: the reservation's sequence, its admission time, the tokens
-- to count, '1' when the call was rate limited, its estimated input tokens.
-- Reply: 1 when still counted.
if not load() then return 0 end
local now = clock()
refresh(now)
local sequence, acquired_at = tonumber(ARGV[12]), tonumber(ARGV[13])
local at, requests = event(sequence)
local counted = at ~= nil and at == acquired_at and requests > 0
if counted then
  local tokens = tonumber(ARGV[14])
  set_tokens(sequence, tokens)
  -- Reclaiming counted nothing of it; what it used counts again.
  local input = math.min(tokens, tonumber(ARGV[16]))
  budgets_reconcile(acquired_at, 0, 0, input, tokens - input, false)
end
if ARGV[15] == '1' then
  st.streak = 0
  st.cap = math.max(math.ceil(st.cap / 2), 1)
end
update_moving_averages()
save(now)
if counted then return 1 end
return 0
