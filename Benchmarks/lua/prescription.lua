-- wrk script: POST /v1/prescriptions (MODE=post) or /v1/prescriptions/check (MODE=check) for the
-- patients listed one per line in PATIENTS (a file), round robin, with key KEY. The posted
-- MedicationRequest (loratadine) meets the patient's 20 active prescriptions and 3 allergies and
-- raises nothing; the checked one (ibuprofen) meets the warfarin another hospital prescribed: a high
-- interaction, shown without details (no consent), so the check answers 200 with that finding.
local key, mode = os.getenv("KEY"), os.getenv("MODE") or "post"
local patients = {}
for line in io.lines(os.getenv("PATIENTS")) do
  if #line > 0 then patients[#patients + 1] = line end
end
local code = mode == "check" and "310965" or "311372"
local document = '{"resourceType":"MedicationRequest","status":"active","intent":"order",' ..
  '"medicationCodeableConcept":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"' .. code .. '"}]},' ..
  '"subject":{"reference":"Patient/local"},"requester":{"identifier":{"system":"http://hl7.org/fhir/sid/us-npi","value":"1999999999"}},' ..
  '"dosageInstruction":[{"sequence":1,"timing":{"repeat":{"frequency":1,"period":1,"periodUnit":"d"}},' ..
  '"doseAndRate":[{"doseQuantity":{"value":1,"unit":"TAB","code":"TAB"}}]}],' ..
  '"dispenseRequest":{"validityPeriod":{"start":"2026-01-01","end":"2030-12-31"},"quantity":{"value":30,"unit":"TAB","code":"TAB"}}}'
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("offset", counter * 7919)
end
local n = 0
function request()
  n = n + 1
  local patient = patients[((offset or 0) + n) % #patients + 1]
  return wrk.format("POST", mode == "check" and "/v1/prescriptions/check" or "/v1/prescriptions",
    {["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json"},
    '{"patient":"' .. patient .. '","medicationRequest":' .. document .. '}')
end
