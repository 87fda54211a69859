-- GCRA (ratelimit.GCRA in Go) on the Redis server's clock, in whole
-- microseconds. All values stay below 2^53, so double arithmetic is exact.
--
-- KEYS[1]  the key; its value is the theoretical arrival time (TAT), in
--          microseconds since the Unix epoch
-- ARGV[1]  emission interval (Period/Rate), microseconds, >= 1
-- ARGV[2]  burst, >= 1
-- ARGV[3]  cost n, 1..burst
-- Returns {allowed 0|1, remaining, retry_after_us, reset_after_us}.
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local n = tonumber(ARGV[3])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local tat = tonumber(redis.call('GET', KEYS[1]) or 0) or 0
if tat < now then
  tat = now
end

local burst_offset = interval * burst
local new_tat = tat + interval * n
local allow_at = new_tat - burst_offset

if now < allow_at then
  -- Denied: nothing is written; report what is left without this request.
  local remaining = math.floor((now - (tat - burst_offset)) / interval)
  if remaining < 0 then
    remaining = 0
  end
  return {0, math.min(remaining, burst), allow_at - now, tat - now}
end

local reset_after = new_tat - now
-- The key lives exactly as long as it carries information: after
-- reset_after its TAT is in the past, the same as no key at all.
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil(reset_after / 1000))
return {1, math.min(math.floor((now - allow_at) / interval), burst), 0, reset_after}
