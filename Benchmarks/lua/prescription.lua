-- wrk script: POST /v1/prescriptions (MODE=post) or /v1/prescriptions/check (MODE=check) for the
-- patients listed one per line in PATIENTS (a file), round robin, with key KEY. The checked
-- MedicationRequest (ibuprofen) meets the warfarin another hospital prescribed: a high interaction,
-- shown without its details (no consent), so the check answers 200 with that finding. The posted
-- ones take turns among five drugs that meet none of the 20 prescriptions or the 3 allergies, so a
-- patient rarely gets the same one twice in a run (which would be duplicate therapy).
local key, mode = os.getenv("KEY"), os.getenv("MODE") or "post"
local patients = {}
for line in io.lines(os.getenv("PATIENTS")) do
  if #line > 0 then patients[#patients + 1] = line end
end
local posted = {"311372", "1094107", "1049630", "309097", "309045"}
local function document(code)
  return '{"resourceType":"MedicationRequest","status":"active","intent":"order",' ..
    '"medicationCodeableConcept":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"' .. code .. '"}]},' ..
    '"subject":{"reference":"Patient/local"},"requester":{"identifier":{"system":"http://hl7.org/fhir/sid/us-npi","value":"1999999999"}},' ..
    '"dosageInstruction":[{"sequence":1,"timing":{"repeat":{"frequency":1,"period":1,"periodUnit":"d"}},' ..
    '"doseAndRate":[{"doseQuantity":{"value":1,"unit":"TAB","code":"TAB"}}]}],' ..
    '"dispenseRequest":{"validityPeriod":{"start":"2026-01-01","end":"2030-12-31"},"quantity":{"value":30,"unit":"TAB","code":"TAB"}}}'
end
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("offset", counter * 7919)
end
local n = 0
function request()
  n = n + 1
  local index = (offset or 0) + n
  local patient = patients[index % #patients + 1]
  local code = mode == "check" and "310965" or posted[math.floor(index / #patients) % #posted + 1]
  return wrk.format("POST", mode == "check" and "/v1/prescriptions/check" or "/v1/prescriptions",
    {["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json"},
    '{"patient":"' .. patient .. '","medicationRequest":' .. document(code) .. '}')
end
