#!/usr/bin/env python3
"""A soak: the fault harness's mixed writes (every write the product has, each with an
Idempotency-Key) and a read of each kind now and then, against one `careledger serve`, first flat
out for `--peak-seconds` to find the peak, then at `--fraction` of it for `--seconds`, with no
faults. Every minute: operations, 5xx answers, p50 and p99 latency, the server's RSS and CPU stolen,
the server's cache gauges, and PostgreSQL's background work as the same-run reference (checkpoints,
buffers its backends had to write themselves, blocks read from outside its buffers, the tables
autovacuum worked on, WAL fsyncs a second and their average time). At the end: p99 by kind of
operation in the first and last windows, and the table and index bytes each kind of row added, from
pg_total_relation_size before and after.

  Benchmarks/soak.sh [minutes] [fraction]

Before the soak each patient is given `--histories` prescriptions, as patients of a running
deployment have them: otherwise every patient's history would start empty and grow all hour, and so
would what each check reads.

Checks (exit 1 when one fails): no 5xx; after the warm-up (the first 5 minutes, or a fifth of a
shorter run), RSS within 10% of the first minute after it, and p99 over each ten minutes after it
within 20% of the first ten minutes' (a fifth of the rest, for short runs). Standard library only.
"""
import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "Tests", "Faults"))
from faults import Connection, Harness, run_script, script_parser  # noqa: E402

TABLES = ["exchanges", "consents", "claims", "claim_events", "prescriptions", "dispenses", "epcis_events", "epcis_captures", "supply_items",
          "devices", "device_state", "rfid_batches", "rfid_sightings", "ledger_entries", "ledger_nodes", "ledger_heads", "audit_events",
          "audit_batches", "idempotency_keys", "ledger_queue"]


def pg_minute(sample):
    checkpoints, backend_writes, blocks_read, autovacuums, syncs, sync_microseconds = sample.get("pg", [0] * 6)
    return (f"{checkpoints} checkpoints, {backend_writes} buffers written by backends, {blocks_read / 60:.0f} blocks read/s, "
            f"{autovacuums} autovacuums ({' '.join(sorted(sample.get('vacuumed', ()))) or 'none running'}), "
            f"{syncs / 60:.0f} WAL fsyncs/s of {sync_microseconds / max(1, syncs) / 1000:.2f} ms")


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def cpu_ticks():
    """(stolen, all) CPU ticks of the machine so far: on a shared machine, the share taken by other
    guests is the reference a latency figure needs beside it."""
    with open("/proc/stat") as stat:
        fields = [int(f) for f in stat.readline().split()[1:]]
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


# PostgreSQL counters read each minute (deltas) and what autovacuum is working on (every sample).
# The WAL fsyncs' count and time (track_wal_io_timing, soak.sh sets it) are the disk's side: every
# acknowledged write waits for one.
PG_COUNTERS = """SELECT (SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter),
  (SELECT buffers_backend FROM pg_stat_bgwriter),
  (SELECT blks_read FROM pg_stat_database WHERE datname = current_database()),
  (SELECT coalesce(sum(autovacuum_count), 0) FROM pg_stat_user_tables),
  (SELECT wal_sync FROM pg_stat_wal), (SELECT round(wal_sync_time * 1000) FROM pg_stat_wal),
  (SELECT coalesce(string_agg(relid::regclass::text, ' '), '') FROM pg_stat_progress_vacuum)"""
GAUGES = {"careledger_prescription_records_cached": "cached", "careledger_prescription_checks_pending": "pending"}


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0


class Soak(Harness):
    def __init__(self, args):
        args.fault_every, args.pgbouncer = [1e9, 1e9], False
        super().__init__(args)
        self.instances = self.instances[:1]
        self.proxy_port = self.instances[0].port
        self.http.port = self.proxy_port

    def sizes(self):
        rows = self.cluster.sql("SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relkind = 'r' AND relname IN (%s)"
                                % ",".join(f"'{t}'" for t in TABLES))
        return {name: int(size) for name, size in rows}

    async def load(self, seconds, rate, minutes):
        """Clients sending operations, paced to `rate` a second (None: flat out); per-minute samples."""
        stop, started = asyncio.Event(), time.monotonic()
        next_slot = [started]

        async def client(number):
            connection, sequence = Connection(self.proxy_port), 0
            while not stop.is_set():
                if rate:
                    slot = next_slot[0] = max(next_slot[0] + 1 / rate, time.monotonic())
                    await asyncio.sleep(max(0, slot - time.monotonic()))
                operation = self.next_operation(number, sequence)
                sequence += 1
                begun = time.monotonic()
                await self.perform(connection, operation)
                minute = int((time.monotonic() - started) // 60)
                sample = minutes.setdefault(minute, {"latencies": [], "fives": 0, "ops": 0})
                sample["ops"] += 1
                sample.setdefault("kinds", {}).setdefault(operation.kind, []).append(time.monotonic() - begun)
                sample["fives"] += sum(1 for s in operation.answers if s is not None and s >= 500)
                sample["latencies"].append(time.monotonic() - begun)
                # Counted, not kept: an hour of operations would not fit the client's memory.
                self.written[operation.kind] = self.written.get(operation.kind, 0) + 1
                self.follow_up(operation)
            connection.close()

        async def sampler():
            reported, ticks_at, counters_at = 0, {}, {}
            while not stop.is_set():
                minute = int((time.monotonic() - started) // 60)
                sample = minutes.setdefault(minute, {"latencies": [], "fives": 0, "ops": 0})
                sample["rss"] = max(sample.get("rss", 0), rss_kib(self.instances[0].process.pid))
                # psql in a thread: the clients' latencies must not include the sampler's waits.
                *counters, vacuuming = (await asyncio.to_thread(self.cluster.sql, PG_COUNTERS))[0]
                sample.setdefault("vacuumed", set()).update(vacuuming.split())
                if minute not in counters_at:
                    counters_at[minute] = [int(float(counter)) for counter in counters]
                    ticks_at[minute] = cpu_ticks()
                    _, text = await self.http.call_text("GET", "/metrics", None)
                    for line in text.splitlines():
                        name, _, value = line.partition(" ")
                        if name in GAUGES:
                            sample[GAUGES[name]] = int(float(value))
                if minute - 1 in ticks_at and "steal" not in minutes.get(minute - 1, {"steal": 0}):
                    (stolen_then, all_then), (stolen_now, all_now) = ticks_at[minute - 1], ticks_at[minute]
                    minutes[minute - 1]["steal"] = (stolen_now - stolen_then) / max(1, all_now - all_then)
                    minutes[minute - 1]["pg"] = [now - then for now, then in zip(counters_at[minute], counters_at[minute - 1])]
                # Each finished minute as it ends, so a long run shows how it goes (and leaves a trace if cut short).
                while reported < minute and rate:
                    done = minutes.get(reported, {"latencies": [], "fives": 0, "ops": 0})
                    print(f"minute {reported}: {done['ops']} operations, {done['fives']} 5xx, p50 {percentile(done['latencies'], 0.5) * 1000:.1f} ms, "
                          f"p99 {percentile(done['latencies'], 0.99) * 1000:.1f} ms, RSS {done.get('rss', 0) / 1024:.0f} MiB, "
                          f"CPU stolen {done.get('steal', 0):.0%}, cached records {done.get('cached', '?')}, pending checks {done.get('pending', '?')}; "
                          f"PostgreSQL: {pg_minute(done)}", flush=True)
                    reported += 1
                await asyncio.sleep(5)

        tasks = [asyncio.create_task(client(n)) for n in range(self.args.clients)] + [asyncio.create_task(sampler())]
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.gather(*tasks)
        return sum(m["ops"] for m in minutes.values()) / (time.monotonic() - started)

    async def run(self):
        self.instances[0].start()
        await self.http.wait_ready(self.proxy_port)
        await self.setup()
        for first in range(0, len(self.patients), 16):
            await asyncio.gather(*(self.http.must("POST", "/v1/prescriptions", self.keys["hospital_a"], self.prescription(patient, f"history-{first}-{n}"),
                                                  ok=(201, 422))
                                   for n, patient in enumerate(self.patients[first:first + 16]) for _ in range(self.args.histories)))
        self.written = {}
        peak = await self.load(self.args.peak_seconds, None, {})
        rate = peak * self.args.fraction
        print(f"peak {peak:.0f} operations/s; soaking at {rate:.0f}/s", flush=True)
        before = self.sizes()
        self.written = {}
        minutes = {}
        achieved = await self.load(self.args.seconds, rate, minutes)
        after = self.sizes()
        kinds = self.written
        print(f"\nSoak: peak {peak:.0f} operations/s with {self.args.clients} clients; then {self.args.seconds / 60:.0f} min "
              f"at {rate:.0f}/s ({self.args.fraction:.0%}), achieved {achieved:.0f}/s\n")
        print("| minute | operations | 5xx | p50 ms | p99 ms | RSS MiB | CPU stolen | cached records | pending checks | PostgreSQL |\n"
              "|---|---|---|---|---|---|---|---|---|---|")
        for minute in sorted(minutes):
            m = minutes[minute]
            print(f"| {minute} | {m['ops']} | {m['fives']} | {percentile(m['latencies'], 0.5) * 1000:.1f} | "
                  f"{percentile(m['latencies'], 0.99) * 1000:.1f} | {m.get('rss', 0) / 1024:.0f} | {m.get('steal', 0):.0%} | "
                  f"{m.get('cached', '')} | {m.get('pending', '')} | {pg_minute(m)} |")
        print(f"\nWrites in the soak, by kind: {', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))}")
        print("\n| table | bytes before | bytes after | added | per row written |\n|---|---|---|---|---|")
        rows_written = {"exchanges": kinds.get("exchange", 0), "claims": kinds.get("claim", 0), "prescriptions": kinds.get("prescribe", 0),
                        "devices": kinds.get("register", 0), "rfid_batches": kinds.get("rfid", 0),
                        "epcis_captures": sum(kinds.get(k, 0) for k in ("commission", "ship", "receive", "recommission"))}
        entries = self.cluster.value("SELECT count(*) FROM ledger_entries")
        for table in TABLES:
            added = after.get(table, 0) - before.get(table, 0)
            per = f"{added / rows_written[table]:.0f}" if rows_written.get(table) else ""
            print(f"| {table} | {before.get(table, 0)} | {after.get(table, 0)} | {added} | {per} |")
        total = sum(after.values()) - sum(before.values())
        writes = sum(kinds.values())
        print(f"\nAll of these tables: {total} bytes for {writes} writes "
              f"({total / max(1, writes):.0f} bytes a write); ledger now {entries} entries, "
              f"{after.get('ledger_entries', 0) + after.get('ledger_nodes', 0) + after.get('ledger_heads', 0)} bytes with its nodes and heads")
        warm = max(1, min(5, len(minutes) // 5))
        steady = [minutes[m] for m in sorted(minutes) if warm <= m < max(minutes)]
        failures = []
        fives = sum(m["fives"] for m in minutes.values())
        if fives:
            failures.append(f"{fives} 5xx answers")
        if steady:
            first_rss = steady[0].get("rss", 0)
            worst_rss = max(abs(m.get("rss", 0) - first_rss) for m in steady) / max(1, first_rss)
            # p99 per ten minutes: one minute's p99 on two shared cores swings by a third from
            # minute to minute with no trend (the load generator, the server and PostgreSQL share
            # them); drift shows over longer windows. Shorter runs: windows of a fifth of the run.
            span = 10 if len(steady) >= 20 else max(1, len(steady) // 5)
            windows = [steady[i:i + span] for i in range(0, len(steady) - span + 1, span)]
            p99s = [percentile([v for m in window for v in m["latencies"]], 0.99) for window in windows]
            worst_p99 = max(abs(p - p99s[0]) for p in p99s) / max(1e-9, p99s[0])
            # Which kinds of operation moved, first window against last.
            def by_kind(window):
                kinds = {}
                for m in window:
                    for kind, values in m.get("kinds", {}).items():
                        kinds.setdefault(kind, []).extend(values)
                return {kind: percentile(values, 0.99) * 1000 for kind, values in kinds.items()}
            first_kinds, last_kinds = by_kind(windows[0]), by_kind(windows[-1])
            print("p99 by kind, first and last window: " + ", ".join(
                f"{kind} {first_kinds[kind]:.1f} -> {last_kinds.get(kind, 0):.1f}" for kind in sorted(first_kinds)))
            by_minute = [percentile(m["latencies"], 0.99) * 1000 for m in steady]
            print(f"p99 per {span} minutes after the warm-up: {', '.join(f'{p * 1000:.1f}' for p in p99s)} ms "
                  f"(per minute: {min(by_minute):.1f} to {max(by_minute):.1f} ms)")
            print(f"After {warm} warm-up minute(s): RSS within {worst_rss:.1%} of minute {warm}'s, "
                  f"p99 of each {span} minutes within {worst_p99:.1%} of the first {span}'s")
            if worst_rss > 0.10:
                failures.append(f"RSS moved {worst_rss:.1%}")
            if worst_p99 > 0.20:
                failures.append(f"p99 moved {worst_p99:.1%}")
        print("Soak: " + ("; ".join(failures) if failures else "no 5xx, RSS and p99 flat"))
        self.instances[0].kill()
        return 1 if failures else 0


def main():
    parser = script_parser(__doc__, 18740)
    parser.add_argument("--seconds", type=float, default=3600)
    parser.add_argument("--peak-seconds", type=float, default=60)
    parser.add_argument("--fraction", type=float, default=0.7)
    parser.add_argument("--clients", type=int, default=16)
    # A population, not a handful: an hour at 400 writes/s makes about 100,000 prescriptions, and
    # 20,000 patients end the hour with about five each. Each check reads all of its patient's
    # records, so with a few thousand patients every patient's history would grow fifty-fold in an
    # hour, which is not what a deployment serving millions sees.
    parser.add_argument("--patients", type=int, default=20000)
    parser.add_argument("--histories", type=int, default=4)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    test = Soak(args)

    def cleanup():
        for instance in test.instances:
            instance.kill()
    run_script(test, cleanup)


if __name__ == "__main__":
    main()
