-- wrk script: POST /v1/exchanges with a ~4 KB FHIR Bundle (env KEY, TO, PATIENT), or GET one
-- exchange (env KEY, EXCHANGE) when MODE=get.
local key, to, patient = os.getenv("KEY"), os.getenv("TO"), os.getenv("PATIENT")
local mode = os.getenv("MODE") or "post"
local entries = {}
for i = 1, 12 do
  entries[#entries + 1] = string.format('{"fullUrl":"urn:uuid:obs-%d","resource":{"resourceType":"Observation","status":"final",' ..
    '"code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}]},' ..
    '"valueQuantity":{"value":%d,"unit":"beats/minute","system":"http://unitsofmeasure.org","code":"/min"},' ..
    '"note":[{"text":"Resting measurement taken on the ward, patient seated, no medication changes today."}]}}', i, 60 + i)
end
local document = '{"resourceType":"Bundle","type":"collection","entry":[' .. table.concat(entries, ",") .. ']}'
local body = string.format('{"to":"%s","patient":"%s","purpose":"TREAT","category":"lab","document":%s}', to or "", patient or "", document)
wrk.headers["Authorization"] = "Bearer " .. (key or "")
wrk.headers["Content-Type"] = "application/json"
if mode == "get" then
  wrk.method = "GET"
  wrk.path = "/v1/exchanges/" .. (os.getenv("EXCHANGE") or "")
else
  wrk.method = "POST"
  wrk.path = "/v1/exchanges"
  wrk.body = body
end
