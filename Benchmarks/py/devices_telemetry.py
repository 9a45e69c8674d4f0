"""Signs telemetry for Benchmarks/devices.sh: BODIES request bodies of PER observations each, one
line per body, from the monitors in STATE (devices_setup.py). Body j holds one reading from each of
PER consecutive monitors (block j mod (monitors / PER)), so one device's readings are many requests
apart and its counter rises from one of its requests to the next. Each reading is a JWS compact
serialization (EdDSA) over the RFC 8785 bytes of a heart-rate Observation, header
{alg, kid, dev, ctr, iat}. Prints the seconds taken.
    devices_telemetry.py STATE BODIES PER OUT"""
import base64
import json
import sys
import time

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

state_path, bodies, per, out_path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
monitors = json.load(open(state_path))["monitors"]
blocks = len(monitors) // per
if blocks < 1:
    raise SystemExit(f"{len(monitors)} monitors cannot fill bodies of {per}")
keys = [Ed25519PrivateKey.from_private_bytes(base64.b64decode(m["private"])) for m in monitors]


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


began = time.time()
now = int(time.time())
stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
with open(out_path, "w") as out:
    for j in range(bodies):
        block, counter = j % blocks, j // blocks + 1
        compacts = []
        for m in range(block * per, block * per + per):
            monitor = monitors[m]
            observation = {"resourceType": "Observation", "status": "final",
                           "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
                           "subject": {"reference": f"Patient/{monitor['patient']}"}, "device": {"reference": f"Device/{monitor['device']}"},
                           "effectiveDateTime": stamp,
                           "valueQuantity": {"value": 60 + (j + m) % 40, "unit": "beats/minute", "system": "http://unitsofmeasure.org", "code": "/min"}}
            header = b64url(json.dumps({"alg": "EdDSA", "kid": monitor["key"], "dev": monitor["device"], "ctr": counter, "iat": now},
                                       separators=(",", ":")).encode())
            signing_input = header + "." + b64url(rfc8785.dumps(observation))
            compacts.append(signing_input + "." + b64url(keys[m].sign(signing_input.encode())))
        out.write(json.dumps({"observations": compacts}) + "\n")
print(f"{time.time() - began:.0f}")
