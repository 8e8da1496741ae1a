-- The holders and waiters of a model, for the client's dead-owner test.
-- Reads only. Reply: {id, owner JSON, process group JSON or '', ...}.
local reply = {}
for _, id in ipairs(redis.call('HKEYS', R)) do
  local record = reservation(id)
  reply[#reply + 1] = id
  reply[#reply + 1] = record.owner
  reply[#reply + 1] = record.pg
end
local raw = redis.call('HGETALL', W)
for i = 1, #raw, 2 do
  reply[#reply + 1] = raw[i]
  reply[#reply + 1] = cjson.decode(raw[i + 1]).owner
  reply[#reply + 1] = ''
end
return reply
