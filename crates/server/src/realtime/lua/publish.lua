-- Sequences, keeps and relays one channel message, atomically.
-- KEYS[1] channel meta (hash: epoch, offset, bytes)   KEYS[2] channel history (list)
-- ARGV[1] events channel  ARGV[2] message without offset (a JSON object)  ARGV[3] epoch for a new
-- channel  ARGV[4] history size  ARGV[5] history ttl (ms)  ARGV[6] meta ttl (ms)
-- ARGV[7] history bytes
-- The history never holds more than ARGV[4] messages or ARGV[7] bytes: the oldest go first, and
-- a message larger than ARGV[7] is relayed but not kept. `bytes` counts what the list holds.
if redis.call('HSETNX', KEYS[1], 'epoch', ARGV[3]) == 1 then
  redis.call('DEL', KEYS[2])
end
local offset = redis.call('HINCRBY', KEYS[1], 'offset', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[6])
local text = '{"offset":' .. string.format('%d', offset) .. ',' .. string.sub(ARGV[2], 2)
local size = tonumber(ARGV[4])
local max_bytes = tonumber(ARGV[7])
if size > 0 and #text <= max_bytes then
  local length = redis.call('LLEN', KEYS[2])
  local bytes = 0
  if length > 0 then
    bytes = tonumber(redis.call('HGET', KEYS[1], 'bytes') or '0')
  end
  redis.call('RPUSH', KEYS[2], text)
  length = length + 1
  bytes = bytes + #text
  while length > size or bytes > max_bytes do
    local gone = redis.call('LPOP', KEYS[2])
    if not gone then
      bytes = 0
      break
    end
    length = length - 1
    bytes = bytes - #gone
  end
  redis.call('HSET', KEYS[1], 'bytes', bytes)
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
redis.call('PUBLISH', ARGV[1], text)
return offset
