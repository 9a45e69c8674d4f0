-- wrk script: POST /v1/epcis/capture with EPCIS documents of 100 commissioning events, one new pack
-- each (serials unique per thread and request), key KEY, read point PLANT (an SGLN URN).
local key, plant = os.getenv("KEY"), os.getenv("PLANT")
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end
local n = 0
function request()
  n = n + 1
  local events = {}
  for e = 1, 100 do
    events[e] = '{"type":"ObjectEvent","eventTime":"2026-02-01T00:00:00Z","eventTimeZoneOffset":"+00:00",' ..
      '"epcList":["urn:epc:id:sgtin:4012345.011111.W' .. (id or 0) .. 'N' .. n .. 'E' .. e .. '"],"action":"ADD",' ..
      '"bizStep":"commissioning","readPoint":{"id":"' .. plant .. '"},"ilmd":{"cbvmda:lotNumber":"W1"}}'
  end
  local body = '{"@context":["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],"type":"EPCISDocument",' ..
    '"schemaVersion":"2.0","creationDate":"2026-02-01T00:00:00Z","epcisBody":{"eventList":[' .. table.concat(events, ",") .. ']}}'
  return wrk.format("POST", "/v1/epcis/capture", {["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/ld+json"}, body)
end
