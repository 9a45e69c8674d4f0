"""Commissions packs for Benchmarks/supply.sh through the API: EPCIS documents of 10 commissioning
events of 1,000 packs each (serials S0000000...), posted by two threads. Prints the seconds taken.
    supply_setup.py URL KEY PLANT_SGLN PACKS"""
import http.client
import json
import sys
import threading
import time
import urllib.parse

url, key, plant, packs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
parsed = urllib.parse.urlparse(url)
per_event, per_document = 1000, 10


def document(first):
    events = []
    for e in range(per_document):
        start = first + e * per_event
        if start >= packs:
            break
        epcs = [f"urn:epc:id:sgtin:4012345.011111.S{n:07d}" for n in range(start, min(start + per_event, packs))]
        events.append({"type": "ObjectEvent", "eventTime": "2026-01-01T00:00:00Z", "eventTimeZoneOffset": "+00:00",
                       "epcList": epcs, "action": "ADD", "bizStep": "commissioning", "readPoint": {"id": plant},
                       "ilmd": {"cbvmda:lotNumber": f"L{start // 100000}", "cbvmda:itemExpirationDate": "2030-12-31"}})
    return json.dumps({"@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"], "type": "EPCISDocument",
                       "schemaVersion": "2.0", "creationDate": "2026-01-01T00:00:00Z", "epcisBody": {"eventList": events}})


def worker(starts):
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
    for start in starts:
        connection.request("POST", "/v1/epcis/capture", document(start),
                           {"Authorization": f"Bearer {key}", "Content-Type": "application/ld+json"})
        response = connection.getresponse()
        body = response.read()
        if response.status != 202 or json.loads(body)["status"] != "success":
            raise SystemExit(f"capture failed: {response.status} {body[:300]}")


began = time.time()
starts = list(range(0, packs, per_event * per_document))
threads = [threading.Thread(target=worker, args=(starts[i::2],)) for i in range(2)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(f"{time.time() - began:.0f}")
