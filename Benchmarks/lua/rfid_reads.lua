-- wrk script: POST /v1/devices/rfid-reads, batches of 500 reads, key KEY. READERS readers
-- (devices_setup.py: reader r is L{r mod 20}-r{r div 20}) take turns; reader r sees the tags of
-- devices n with n mod READERS = r, TAGS of them per batch (DEVICES devices; the next TAGS each
-- time), each read 500 / TAGS times within the batch's second: a reader's repeats, which collapse
-- into one sighting per tag.
local key, readers, devices, tags = os.getenv("KEY"), tonumber(os.getenv("READERS")), tonumber(os.getenv("DEVICES")), tonumber(os.getenv("TAGS"))
local repeats = math.floor(500 / tags)
local made = 0
function setup(thread)
  thread:set("id", made)
  made = made + 1
end
local turn, cursors = 0, {}
function request()
  local reader = (turn * 2 + id) % readers
  turn = turn + 1
  local cursor = cursors[reader] or 0
  local owned = math.floor(devices / readers)
  cursors[reader] = cursor + tags
  local stamp = os.date("!%Y-%m-%dT%H:%M:%S", os.time())
  local reads = {}
  for t = 0, tags - 1 do
    local tag = ((cursor + t) % owned) * readers + reader
    for k = 0, repeats - 1 do
      reads[#reads + 1] = string.format('{"epc":"urn:epc:id:giai:0614141.%d","time":"%s.%03dZ","antenna":%d,"rssi":-%d.5}',
        tag, stamp, k * math.floor(1000 / repeats), k % 4 + 1, 40 + k)
    end
  end
  local body = string.format('{"readerId":"L%02d-r%d","reads":[%s]}', reader % 20, math.floor(reader / 20), table.concat(reads, ","))
  return wrk.format("POST", "/v1/devices/rfid-reads", {["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json"}, body)
end
