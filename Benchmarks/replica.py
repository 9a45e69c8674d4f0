#!/usr/bin/env python3
"""What a hot standby takes off the primary: the same read load (inclusion and consistency proofs,
ledger entry pages, inbox feed polls) with a trickle of writes, once against a server without
DATABASE_REPLICA_URL and once with it, counting on each database what it did (pg_stat_database:
transactions, rows fetched, buffer hits) and the server's own count of reads each served.

  Benchmarks/replica.sh [seconds] [clients]

Counts, not times: they hold on a noisy shared machine. Standard library only; the cluster, the
standby and the server come from Tests/Faults (faults.py, replica.py).
"""
import asyncio
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "Tests", "Faults"))
from faults import Client, Connection, Instance, run_script, script_parser  # noqa: E402
from replica import Replica  # noqa: E402

STATS = "SELECT xact_commit, tup_fetched + tup_returned, blks_hit + blks_read FROM pg_stat_database WHERE datname = 'careledger'"


def stats(cluster):
    return [int(v) for v in cluster.sql(STATS)[0]]


class Load:
    def __init__(self, args):
        self.args = args
        self.replica = Replica(args)  # makes the standby; its instance is not used
        self.primary, self.standby = self.replica.primary, self.replica.standby
        self.http = Client(args.port)

    async def writer(self, key, stop):
        connection, n = Connection(self.args.port), 0
        while not stop.is_set():
            n += 1
            digest = f"{n:064x}"
            await connection.request("POST", "/v1/ledger/anchors", key, f'{{"hash":"sha256:{digest}","kind":"load","reference":"w{n}"}}'.encode())
            await asyncio.sleep(0.02)
        connection.close()

    async def reader(self, keys, size, stop, counts):
        connection, rng = Connection(self.args.port), random.Random()
        while not stop.is_set():
            choice = rng.random()
            if choice < 0.4:
                path = f"/v1/ledger/proofs/inclusion?seq={rng.randrange(size)}&size={size}"
            elif choice < 0.6:
                path = f"/v1/ledger/proofs/consistency?from={rng.randrange(1, size)}&to={size}"
            elif choice < 0.8:
                start = rng.randrange(size - 100)
                path = f"/v1/ledger/entries?from={start}&to={start + 100}"
            else:
                path = f"/v1/exchanges?box=inbox&limit=50&after={rng.randrange(size)}"
            status, _ = await connection.request("GET", path, keys["receiver"] if "exchanges" in path else keys["sender"])
            counts[status] = counts.get(status, 0) + 1
        connection.close()

    async def measure(self, with_replica, keys, size):
        environment = {"DATABASE_REPLICA_URL": self.standby.database_url} if with_replica else {}
        instance = Instance(self.args.bin, self.args.port, f"{self.args.work}/serve-load-{with_replica}.log", environment=environment)
        instance.start()
        await self.http.wait_ready(self.args.port)
        before_primary, before_standby = stats(self.primary), stats(self.standby)
        stop, counts = asyncio.Event(), {}
        tasks = [asyncio.create_task(self.reader(keys, size, stop, counts)) for _ in range(self.args.clients)]
        tasks.append(asyncio.create_task(self.writer(keys["sender"], stop)))
        started = time.monotonic()
        await asyncio.sleep(self.args.seconds)
        stop.set()
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started
        after_primary, after_standby = stats(self.primary), stats(self.standby)
        served = await self.replica.metrics() if with_replica else {}
        instance.kill()
        reads = sum(counts.values())
        return {"reads": reads, "ok": counts.get(200, 0), "per_second": reads / elapsed,
                "primary": [a - b for a, b in zip(after_primary, before_primary)],
                "standby": [a - b for a, b in zip(after_standby, before_standby)], "served": served}

    async def run(self):
        self.replica.make_standby()
        setup = Instance(self.args.bin, self.args.port, f"{self.args.work}/serve-setup.log")
        setup.start()
        await self.http.wait_ready(self.args.port)
        self.replica.http = self.http
        await self.replica.setup()
        keys = self.replica.keys
        for n in range(40):
            await self.replica.write(f"load-{n}")
        anchors = [self.http.must("POST", "/v1/ledger/anchors", keys["sender"],
                                  {"hash": f"sha256:{n:064x}", "kind": "setup", "reference": f"s{n}"}) for n in range(3000)]
        for chunk in range(0, len(anchors), 50):
            await asyncio.gather(*anchors[chunk:chunk + 50])
        await self.replica.until("the primary signs everything", lambda: self.primary.value("SELECT count(*) FROM ledger_queue") == 0, 120)
        size = self.replica.signed(self.primary)
        await self.replica.until("the standby catches up", lambda: self.replica.signed(self.standby) >= size, 120)
        setup.kill()
        without = await self.measure(False, keys, size)
        with_replica = await self.measure(True, keys, size)
        print(f"\nReplica load: {self.args.seconds} s each, {self.args.clients} readers + 1 writer (50 anchors/s), a log of {size} entries\n")
        print("| server | reads | reads/s | primary xacts | primary rows | primary buffers | standby xacts | standby rows | standby buffers | reads served by standby / primary |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for name, run in [("without replica", without), ("with replica", with_replica)]:
            p, s = run["primary"], run["standby"]
            served = f"{run['served'].get('replica', 0)} / {run['served'].get('primary', 0)}" if run["served"] else "-"
            print(f"| {name} | {run['reads']} | {run['per_second']:.0f} | {p[0]} | {p[1]} | {p[2]} | {s[0]} | {s[1]} | {s[2]} | {served} |")
        per = lambda run, i: run["primary"][i] / max(1, run["reads"])
        print(f"\nPer read on the primary: transactions {per(without, 0):.2f} -> {per(with_replica, 0):.2f}, "
              f"rows {per(without, 1):.1f} -> {per(with_replica, 1):.1f}, buffers {per(without, 2):.1f} -> {per(with_replica, 2):.1f}")
        self.standby.stop("fast")
        return 0


def main():
    parser = script_parser(__doc__, 18720)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    test = Load(args)

    def cleanup():
        try:
            test.standby.stop("fast")
        except (subprocess.CalledProcessError, OSError):
            pass
    run_script(test, cleanup)


if __name__ == "__main__":
    main()
