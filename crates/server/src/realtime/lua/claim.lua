-- Takes one of a user's socket slots unless all are in use; returns 1 when taken.
-- KEYS[1] sockets (zset of '<instance>/<socket>' scored by expiry, ms)
-- ARGV[1] member  ARGV[2] expiry  ARGV[3] now  ARGV[4] limit  ARGV[5] key ttl (ms)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
