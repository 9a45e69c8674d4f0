-- wrk script: GET /v1/supply/verify for random packs among the PACKS commissioned by
-- supply_setup.py (serials S0000000...), as GS1 Digital Links, with key KEY.
local key, packs = os.getenv("KEY"), tonumber(os.getenv("PACKS"))
function setup(thread)
  thread:set("seed", math.random(1, 1000000))
end
function init()
  math.randomseed(seed or 1)
end
function request()
  local serial = string.format("S%07d", math.random(0, packs - 1))
  return wrk.format("GET", "/v1/supply/verify?id=https%3A%2F%2Fid.gs1.org%2F01%2F04012345111118%2F21%2F" .. serial,
    {["Authorization"] = "Bearer " .. key})
end
