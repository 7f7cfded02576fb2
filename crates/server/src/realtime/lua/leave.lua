-- Removes this instance's presence of a user (and the user's expired entries); returns 1 when
-- no instance has the user any more.
-- KEYS[1] presence   ARGV[1] member  ARGV[2] now  ARGV[3] '<user>/'
redis.call('ZREM', KEYS[1], ARGV[1])
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2])
for _, member in ipairs(expired) do
  if string.sub(member, 1, #ARGV[3]) == ARGV[3] then
    redis.call('ZREM', KEYS[1], member)
  end
end
local live = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[2], '+inf')
for _, member in ipairs(live) do
  if string.sub(member, 1, #ARGV[3]) == ARGV[3] then return 0 end
end
return 1
