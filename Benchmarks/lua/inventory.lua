-- wrk script: inventory reads of the DEVICES devices of devices_setup.py, key KEY, by QUERY:
--   list:         GET /v1/devices?... a random filter: di and status, location, or type (limit 50)
--   availability: GET /v1/devices/availability?di= of a random device identifier
--   notseen:      GET /v1/devices?notSeenSince=<SINCE>&location=...&limit=50
local key, query, since = os.getenv("KEY"), os.getenv("QUERY"), os.getenv("SINCE")
local types = {"infusion-pump", "patient-monitor", "ventilator", "syringe-driver", "wheelchair"}
local function gtin(n)
  local body = string.format("0088452%06d", n)
  local total = 0
  for i = 1, #body do
    local digit = tonumber(body:sub(#body - i + 1, #body - i + 1))
    total = total + digit * ((i % 2 == 1) and 3 or 1)
  end
  return body .. tostring((10 - total % 10) % 10)
end
function setup(thread)
  thread:set("seed", math.random(1, 1000000))
end
function init()
  math.randomseed(seed or 1)
end
function request()
  local path
  if query == "availability" then
    path = "/v1/devices/availability?di=" .. gtin(math.random(0, 99))
  elseif query == "notseen" then
    path = string.format("/v1/devices?notSeenSince=%s&location=L%02d&limit=50", since, math.random(0, 19))
  else
    local pick = math.random(1, 3)
    if pick == 1 then
      path = "/v1/devices?status=available&limit=50&di=" .. gtin(math.random(0, 99))
    elseif pick == 2 then
      path = string.format("/v1/devices?location=L%02d&limit=50", math.random(0, 19))
    else
      path = "/v1/devices?limit=50&type=" .. types[math.random(1, 5)]
    end
  end
  return wrk.format("GET", path, {["Authorization"] = "Bearer " .. key})
end
