--[[ clock: Redis server time, so that every process agrees on when a message or a tick is due and when
  a deadline has passed, whatever its own clock says. ]]

local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
