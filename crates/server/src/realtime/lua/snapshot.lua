-- A channel's epoch, offset and (when ARGV[3] is '1') retained messages.
-- KEYS[1] channel meta   KEYS[2] channel history
-- ARGV[1] epoch for a new channel  ARGV[2] meta ttl (ms)  ARGV[3] '1' to include messages
if redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1]) == 1 then
  redis.call('DEL', KEYS[2])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'offset')
local entries = {}
if ARGV[3] == '1' then
  entries = redis.call('LRANGE', KEYS[2], 0, -1)
end
return {meta[1], meta[2] or '0', entries}
