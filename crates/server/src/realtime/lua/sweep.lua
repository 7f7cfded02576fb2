-- Removes expired presence (left by instances that stopped refreshing it) and returns the users
-- that no live entry keeps present. Atomic, so concurrent sweeps report each user once.
-- KEYS[1] presence   ARGV[1] now (ms)
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
if #expired == 0 then return {} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
local present = {}
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  present[string.match(member, '^[^/]+')] = true
end
local gone, seen = {}, {}
for _, member in ipairs(expired) do
  local user = string.match(member, '^[^/]+')
  if user and not present[user] and not seen[user] then
    seen[user] = true
    table.insert(gone, user)
  end
end
return gone
