--[[ clock: Redis server time, so that every process agrees on when a tick is due. ]]

local function serverNowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
