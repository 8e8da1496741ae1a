-- A hold on every model of a provider (Backend::hold_provider): the account
-- is out. Not prefixed by model.lua: it touches no model.
-- KEYS: 1 the provider's hold hash (`until`, `reason`).
-- ARGV: 1 client time in ms or '' for the server's TIME, 2 '1' to remove the
-- standing hold first, 3 the new hold's end in ms (0 for none), 4 its reason,
-- 5 TTL slack in ms.
-- Replies: {} (no hold stands) | {until, reason}.
redis.replicate_commands()
local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
if ARGV[2] == '1' then redis.call('DEL', KEYS[1]) end
local standing = tonumber(redis.call('HGET', KEYS[1], 'until') or '0') or 0
if standing <= now then standing = 0 end
local ends = tonumber(ARGV[3])
-- Hold::merge of one kind: the later end wins.
if ends > now and ends > standing then
  redis.call('HSET', KEYS[1], 'until', string.format('%.0f', ends), 'reason', ARGV[4])
  standing = ends
end
if standing == 0 then
  redis.call('DEL', KEYS[1])
  return {}
end
redis.call('PEXPIRE', KEYS[1], string.format('%.0f', standing - now + tonumber(ARGV[5])))
return { string.format('%.0f', standing), redis.call('HGET', KEYS[1], 'reason') }
