-- fraud.SlidingCount.Add on one key, a hash of
--   w (window, ms), b (current bucket), c (its count), p (the previous
--   bucket's count).
-- ARGV: window (ms), the bucket of now, now (ms), MaxCount.
-- Returns {b, c, p} after the add; the caller computes the count.
-- Bucket indices are passed and stored as the caller's decimal strings
-- (Lua numbers are doubles: exact for these, but printed as 1.7e+12).
local w, i, now, maxc = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local s = redis.call('HMGET', KEYS[1], 'w', 'b', 'c', 'p')
local b, c, p = s[2], tonumber(s[3]) or 0, tonumber(s[4]) or 0
local ni, nb = tonumber(i), tonumber(b)
if s[1] ~= w or nb == nil or ni > nb + 1 then
  b, c, p = i, 0, 0
elseif ni == nb + 1 then
  b, c, p = i, 0, c
end
if c < maxc then c = c + 1 end
redis.call('HSET', KEYS[1], 'w', w, 'b', b, 'c', c, 'p', p)
-- Gone at the end of the bucket after b, relative to the caller's now so
-- that the clocks of Redis and of the caller need not agree.
local ttl = (tonumber(b) + 2) * tonumber(w) - now
redis.call('PEXPIRE', KEYS[1], string.format('%d', ttl))
return {b, c, p}
