"""Registers devices for Benchmarks/devices.sh through the API, with one hospital's key:
20 locations (L00..L19) of 5 readers each (L00-r0..L19-r4), PATIENTS patients, and DEVICES devices
of 100 device identifiers (GTINs), 5 types, each with a GIAI-96 tag urn:epc:id:giai:0614141.{n}.
Every 5th device is moved to available; the first MONITORS are put in use for a patient and get an
Ed25519 key (the private keys go to STATE, for devices_telemetry.py). Prints the seconds taken.
    devices_setup.py URL KEY DEVICES MONITORS PATIENTS STATE"""
import base64
import http.client
import json
import sys
import threading
import time
import urllib.parse

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

url, key, devices, monitors, patients, state_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
parsed = urllib.parse.urlparse(url)
types = ["infusion-pump", "patient-monitor", "ventilator", "syringe-driver", "wheelchair"]
local = threading.local()


def call(method, path, body=None, expect=201):
    if not hasattr(local, "connection"):
        local.connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
    local.connection.request(method, path, json.dumps(body) if body is not None else None,
                             {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    response = local.connection.getresponse()
    text = response.read()
    if response.status != expect:
        raise SystemExit(f"{method} {path}: {response.status} {text[:300]}")
    return json.loads(text)


def gtin(n):
    body = f"0088452{n:06d}"
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def location(n):
    return f"L{n % 20:02d}"


def register(n):
    di = gtin(n % 100)
    carrier = f"(01){di}(11)240115(17)291130(10)LOT{n % 7}(21)SN{n:07d}"
    resource = {"resourceType": "Device", "status": "active",
                "udiCarrier": [{"deviceIdentifier": di, "issuer": "http://hl7.org/fhir/NamingSystem/gs1", "carrierHRF": carrier}]}
    body = {"resource": resource, "type": types[n % 5], "location": location(n), "rfidTag": f"urn:epc:id:giai:0614141.{n}"}
    if n < monitors:
        body["telemetryIntervalSeconds"] = 86400
    return call("POST", "/v1/devices", body)["id"]


def parallel(work, items, threads=8):
    results = [None] * len(items)

    def run(offset):
        for i in range(offset, len(items), threads):
            results[i] = work(items[i])
    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return results


began = time.time()
for n in range(20):
    call("POST", "/v1/devices/locations", {"name": location(n), "readers": [f"{location(n)}-r{r}" for r in range(5)]})
patient_ids = parallel(lambda n: call("POST", "/v1/patients", {"resourceType": "Patient", "identifier": [{"system": "urn:bench:devices", "value": str(n)}]})["id"],
                       list(range(patients)))
ids = parallel(register, list(range(devices)))
parallel(lambda n: call("POST", f"/v1/devices/{ids[n]}/events", {"to": "available"}), [n for n in range(devices) if n % 5 == 0 or n < monitors])


def monitor(n):
    call("POST", f"/v1/devices/{ids[n]}/events", {"to": "in_use", "patientId": patient_ids[n % patients]})
    private = Ed25519PrivateKey.generate()
    pem = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    key_id = call("POST", f"/v1/devices/{ids[n]}/keys", {"publicKeyPem": pem})["id"]
    raw = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    return {"device": ids[n], "key": key_id, "patient": patient_ids[n % patients], "private": base64.b64encode(raw).decode()}


state = {"monitors": parallel(monitor, list(range(monitors))), "dis": [gtin(n) for n in range(100)], "types": types,
         "locations": [location(n) for n in range(20)]}
with open(state_path, "w") as out:
    json.dump(state, out)
print(f"{time.time() - began:.0f}")
