-- wrk script: POST /v1/telemetry with the bodies devices_telemetry.py signed (file BODIES, one per
-- line), key KEY. Thread t of the two sends lines t+1, t+3, ... in order, each once; a thread that
-- runs out sends its last body again (answered 409 counter_replayed, counted as non-2xx).
local key, path = os.getenv("KEY"), os.getenv("BODIES")
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads - 1)
end
local bodies, next_body = {}, 1
function init()
  local n = 0
  for line in io.lines(path) do
    if n % 2 == id then bodies[#bodies + 1] = line end
    n = n + 1
  end
end
function request()
  local body = bodies[math.min(next_body, #bodies)]
  next_body = next_body + 1
  return wrk.format("POST", "/v1/telemetry", {["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json"}, body)
end
