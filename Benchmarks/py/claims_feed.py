"""Claims feed latency: hospitals submit claims at a fixed rate while insurers long-poll their feeds;
for every claim, the time from its submit's 201 to the moment its insurer's poll delivers it.

Standard library only (asyncio streams, HTTP/1.1 keep-alive), so it runs wherever the benchmark does.
Prints one JSON object with the figures.
    python3 claims_feed.py URL SECONDS RATE SETUP_JSON CLAIM_FILE
SETUP_JSON: {"hospitals": [{"key", "patient"}], "insurers": [{"key", "org"}]}
"""
import asyncio
import json
import sys
import time
from urllib.parse import urlparse


class Connection:
    def __init__(self, host, port):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def request(self, method, path, key, body=None):
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {key}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + (body or b""))
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        payload = await self.reader.readexactly(length)
        return status, payload


def percentile(values, fraction):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def main():
    url, seconds, rate = urlparse(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    setup = json.load(open(sys.argv[4]))
    claim = open(sys.argv[5], "rb").read()
    host, port = url.hostname, url.port
    created, seen, submit_latency, failures = {}, {}, [], []
    stop = asyncio.Event()

    async def poll(insurer):
        connection, cursor = Connection(host, port), None
        while not stop.is_set():
            path = "/v1/claims/feed?limit=200&wait=5" + (f"&after={cursor}" if cursor else "")
            status, payload = await connection.request("GET", path, insurer["key"])
            now = time.monotonic()
            if status != 200:
                failures.append(f"feed {status}")
                continue
            page = json.loads(payload)
            for item in page["items"]:
                seen.setdefault(item["claimId"], now)
            cursor = page["cursor"] or cursor

    pollers = [asyncio.create_task(poll(insurer)) for insurer in setup["insurers"]]
    await asyncio.sleep(0.5)

    idle = asyncio.Queue()
    for _ in range(64):
        idle.put_nowait(Connection(host, port))

    async def submit(index):
        connection = await idle.get()
        hospital = setup["hospitals"][index % len(setup["hospitals"])]
        insurer = setup["insurers"][index % len(setup["insurers"])]
        body = b'{"insurer":"%s","patient":"%s","claim":%s}' % (insurer["org"].encode(), hospital["patient"].encode(), claim)
        started = time.monotonic()
        try:
            status, payload = await connection.request("POST", "/v1/claims", hospital["key"], body)
        except Exception as error:  # a broken connection is a failure to report, not a crash
            failures.append(f"submit {error!r}")
            idle.put_nowait(Connection(host, port))
            return
        now = time.monotonic()
        idle.put_nowait(connection)
        if status != 201:
            failures.append(f"submit {status} {payload[:120]!r}")
            return
        created[json.loads(payload)["id"]] = now
        submit_latency.append(now - started)

    begin = time.monotonic()
    tasks, index = [], 0
    while time.monotonic() - begin < seconds:
        due = begin + index / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(submit(index)))
        index += 1
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - begin
    await asyncio.sleep(2)
    stop.set()
    for task in pollers:
        task.cancel()

    delivery = [seen[claim_id] - at for claim_id, at in created.items() if claim_id in seen]
    ms = lambda value: None if value is None else round(value * 1000, 1)
    print(json.dumps({
        "submitted": len(created), "rate": round(len(created) / elapsed, 1), "failures": len(failures), "firstFailures": failures[:3],
        "undelivered": len(created) - len(delivery),
        "submitP50ms": ms(percentile(submit_latency, 0.5)), "submitP99ms": ms(percentile(submit_latency, 0.99)),
        "deliveryP50ms": ms(percentile(delivery, 0.5)), "deliveryP99ms": ms(percentile(delivery, 0.99)),
        "deliveryMaxMs": ms(max(delivery) if delivery else None),
        "deliveredBefore201": sum(1 for value in delivery if value <= 0),
    }))


asyncio.run(main())
