"""Setup for Benchmarks/prescriptions.sh: patients each with 3 allergies and 20 active prescriptions
from 3 hospitals, made through the API (so every one was checked, sealed and anchored as in use).

    python3 prescriptions_setup.py URL SETUP_JSON PATIENTS OUT_FILE

SETUP_JSON: {"hospitals": [{"key": ...}, x3]}. Writes one patient id per line to OUT_FILE.
"""
import concurrent.futures
import http.client
import json
import sys
import threading
import urllib.parse

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
# Twenty drugs with no high-severity interaction among them (moderate ones are fine), by hospital.
MEDICATIONS = [
    ["314076", "197361", "259255", "860975", "966222"],
    ["855332", "313988", "197604", "310798", "197319", "312941", "310431", "312617"],
    ["1014678", "979485", "313096", "1650142", "979092", "197541", "311995"],
]
ALLERGIES = [
    {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "7980", "display": "Penicillin G", "category": "medication"},
    {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "2670", "display": "Codeine", "category": "medication"},
    {"system": "http://snomed.info/sct", "code": "227493005", "display": "Cashew nuts", "category": "food"},
]

local = threading.local()


def call(url, method, path, key, body):
    if getattr(local, "connection", None) is None:
        parts = urllib.parse.urlsplit(url)
        local.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    local.connection.request(method, path, body=json.dumps(body),
                             headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    response = local.connection.getresponse()
    data = response.read()
    if response.status >= 300 and response.status != 409:
        raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")
    return json.loads(data)


def request(code, prescriber):
    return {
        "resourceType": "MedicationRequest", "status": "active", "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code}]},
        "subject": {"reference": "Patient/local"},
        "requester": {"identifier": {"system": "http://hl7.org/fhir/sid/us-npi", "value": prescriber}},
        "dosageInstruction": [{"sequence": 1, "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                               "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "TAB", "code": "TAB"}}]}],
        "dispenseRequest": {"validityPeriod": {"start": "2026-01-01", "end": "2030-12-31"}, "numberOfRepeatsAllowed": 2,
                            "quantity": {"value": 30, "unit": "TAB", "code": "TAB"}},
    }


def make_patient(url, hospitals, number):
    identifier = {"system": "urn:bench:rx", "value": str(number)}
    patient = {"resourceType": "Patient", "identifier": [identifier]}
    patient_id = call(url, "POST", "/v1/patients", hospitals[0]["key"], patient)["id"]
    for hospital in hospitals[1:]:
        call(url, "POST", "/v1/patients", hospital["key"], patient)  # 409: now a custodian too
    for allergy in ALLERGIES:
        document = {"resourceType": "AllergyIntolerance", "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}]},
                    "category": [allergy["category"]], "criticality": "high",
                    "code": {"coding": [{k: allergy[k] for k in ("system", "code", "display")}]}, "patient": {"reference": "Patient/local"}}
        call(url, "POST", f"/v1/patients/{patient_id}/allergies", hospitals[0]["key"], document)
    for index, (hospital, codes) in enumerate(zip(hospitals, MEDICATIONS)):
        for code in codes:
            call(url, "POST", "/v1/prescriptions", hospital["key"],
                 {"patient": patient_id, "medicationRequest": request(code, f"10000000{index}{number % 10}")})
    return patient_id


def main():
    url, setup_file, count, out_file = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    hospitals = json.load(open(setup_file))["hospitals"]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(lambda n: make_patient(url, hospitals, n), range(count)))
    with open(out_file, "w") as out:
        out.write("\n".join(ids) + "\n")


if __name__ == "__main__":
    main()
