"""Alert latency for Benchmarks/supply.sh: one client long-polls GET /v1/supply/alerts (as the
manufacturer); another captures, one at a time, a shipment of a pack by an organization that does
not hold it. Latency: from the capture's 202 (the event and its alert committed) to the alert in the
poller's hands. Prints count, p50, p99 and max in milliseconds.
    supply_alert_latency.py URL MAKER_KEY OTHER_KEY OTHER_SGLN TRIALS"""
import http.client
import json
import sys
import threading
import time
import urllib.parse

url, maker, other, site, trials = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
parsed = urllib.parse.urlparse(url)
committed, arrived = {}, {}
done = threading.Event()


def connection():
    return http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)


def call(conn, method, path, key, body=None):
    headers = {"Authorization": f"Bearer {key}"}
    if body is not None:
        headers["Content-Type"] = "application/ld+json"
    conn.request(method, path, body, headers)
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def poll(cursor):
    conn = connection()
    while not done.is_set():
        path = "/v1/supply/alerts?wait=5&limit=200" + (f"&after={cursor}" if cursor else "")
        status, page = call(conn, "GET", path, maker)
        now = time.monotonic()
        for item in page["items"]:
            arrived.setdefault(item["eventID"], now)
        cursor = page["cursor"] or cursor


# Poll from the end of the log as it is now (a feed consumer that is caught up), not from its start.
status, head = call(connection(), "GET", "/v1/ledger/head", maker)
start_cursor = str(head["treeSize"] - 1) if head["treeSize"] > 0 else None
poller = threading.Thread(target=poll, args=(start_cursor,))
poller.start()
time.sleep(0.5)
sender = connection()
for i in range(trials):
    event = {"type": "ObjectEvent", "eventTime": "2026-03-01T00:00:00Z", "eventTimeZoneOffset": "+00:00",
             "epcList": [f"urn:epc:id:sgtin:4012345.011111.S{i:07d}"], "action": "OBSERVE", "bizStep": "shipping",
             "readPoint": {"id": site}}
    status, job = call(sender, "POST", "/v1/epcis/capture", other, json.dumps(event))
    committed_at = time.monotonic()
    if status != 202 or job.get("alertsRaised") != 1:
        raise SystemExit(f"capture {i}: {status} {job}")
    committed[i] = committed_at
    time.sleep(0.02)
deadline = time.monotonic() + 10
while len(arrived) < trials and time.monotonic() < deadline:
    time.sleep(0.05)
done.set()
poller.join()
# The captures commit one after another, so their alerts reach the feed in the same order.
arrivals = sorted(arrived.values())
latencies = sorted(max(0.0, a - c) * 1000 for a, c in zip(arrivals, [committed[i] for i in range(trials)]))
if len(latencies) < trials:
    raise SystemExit(f"only {len(latencies)} of {trials} alerts arrived")
p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
print(f"{len(latencies)} {p(0.5):.1f} {p(0.99):.1f} {latencies[-1]:.1f}")
