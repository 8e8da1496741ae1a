-- A model's status (backend::status_on): dead owners' slots reclaimed, the
-- state brought to now, the moving averages updated.
-- ARGV from 12: '1' to create the model when it has no state (a wanted
-- model), the count of dead ids and the ids.
-- Replies: {} (no state) | {view..., advice..., reservation, ...}.
local dead = {}
for i = 1, tonumber(ARGV[13]) do dead[i] = ARGV[13 + i] end
if not load() then
  if ARGV[12] ~= '1' or not profile then return {} end
  create(ARGV[9], ARGV[10])
end
local now = clock()
reclaim_dead(dead)
refresh(now)
update_moving_averages()
local reply = status_reply(now)
save(now)
return reply
