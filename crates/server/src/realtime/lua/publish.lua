-- Sequences, keeps and relays one channel message, atomically.
-- KEYS[1] channel meta (hash: epoch, offset)   KEYS[2] channel history (list)
-- ARGV[1] events channel  ARGV[2] message without offset (a JSON object)  ARGV[3] epoch for a new
-- channel  ARGV[4] history size  ARGV[5] history ttl (ms)  ARGV[6] meta ttl (ms)
if redis.call('HSETNX', KEYS[1], 'epoch', ARGV[3]) == 1 then
  redis.call('DEL', KEYS[2])
end
local offset = redis.call('HINCRBY', KEYS[1], 'offset', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[6])
local text = '{"offset":' .. string.format('%d', offset) .. ',' .. string.sub(ARGV[2], 2)
local size = tonumber(ARGV[4])
if size > 0 then
  redis.call('RPUSH', KEYS[2], text)
  redis.call('LTRIM', KEYS[2], -size, -1)
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
redis.call('PUBLISH', ARGV[1], text)
return offset
