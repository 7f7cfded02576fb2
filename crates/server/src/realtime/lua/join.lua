-- Adds this instance's presence of a user; returns 1 when no other instance had it.
-- KEYS[1] presence (zset of '<user>/<instance>' scored by expiry, ms)
-- ARGV[1] member  ARGV[2] expiry  ARGV[3] now  ARGV[4] '<user>/'  ARGV[5] key ttl (ms)
local live = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[3], '+inf')
local present = false
for _, member in ipairs(live) do
  if member ~= ARGV[1] and string.sub(member, 1, #ARGV[4]) == ARGV[4] then
    present = true
    break
  end
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
if present then return 0 end
return 1
