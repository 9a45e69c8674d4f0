#!/usr/bin/env python3
"""A real hot standby serves the reads that tolerate lag, and never a read that must be current.

  1. A standby is made from the primary with `pg_basebackup -R` and started (streaming replication).
  2. A server runs with DATABASE_URL (primary) and DATABASE_REPLICA_URL (standby); exchanges,
     claims and anchors are written through it.
  3. Caught up, the standby serves ledger entries, proofs and feeds (`/metrics` counts them), and
     every answer matches the primary's rows.
  4. With the standby's replay paused (`pg_wal_replay_pause()`), new writes are still read back at
     once: the sender's own exchange, an inclusion proof in the newest tree, and the new items of
     the claims feed and the inbox past their cursor all come from the primary.
  5. `careledger verify --database` run against the standby passes, paused and caught up.

Standard library only. Run by Tests/Faults/run.sh replica, which makes the primary, keys and admin key.
"""
import asyncio
import base64
import hashlib
import json
import os
import shutil
import subprocess

from faults import Client, Cluster, EVIDENCE, Instance, PATIENT_SYSTEM, run_script, script_parser


def leaf_hash(entry):
    return hashlib.sha256(b"\x00" + entry.encode()).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion(index, size, leaf, proof):
    """RFC 9162 section 2.1.3.2, written out again here so the check does not trust the server's code."""
    if index >= size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return None
        if fn % 2 == 1 or fn == sn:
            r = node_hash(p, r)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return r if sn == 0 else None


class Replica:
    def __init__(self, args):
        self.args = args
        self.primary = Cluster(args.cluster, os.environ["DATABASE_URL"])
        self.standby_dir = f"{args.work}/standby"
        self.standby = Cluster(self.standby_dir, f"postgresql:///careledger?host={self.standby_dir}/socket&user={self.primary.superuser}")
        self.instance = Instance(args.bin, args.port, f"{args.work}/serve-replica.log",
                                 environment={"DATABASE_REPLICA_URL": self.standby.database_url})
        self.http = Client(args.port)
        self.failures = []

    def check(self, condition, text):
        print(("ok    " if condition else "FAIL  ") + text, flush=True)
        if not condition:
            self.failures.append(text)

    def make_standby(self):
        os.makedirs(self.standby_dir, mode=0o755)
        if os.geteuid() == 0:
            shutil.chown(self.standby_dir, "postgres", "postgres")
        subprocess.run(self.primary.as_owner(f"{self.primary.bindir}/pg_basebackup", "-h", f"{self.args.cluster}/socket", "-D",
                                             f"{self.standby_dir}/data", "-X", "stream", "-c", "fast", "-R"),
                       check=True, capture_output=True, timeout=300)
        self.standby.start()
        self.check(self.standby.sql("SELECT pg_is_in_recovery()")[0][0] == "t", "the standby is in recovery, streaming from the primary")

    def signed(self, cluster):
        return cluster.value("SELECT coalesce(max(tree_size), 0) FROM ledger_heads")

    async def until(self, what, condition, seconds=30):
        for _ in range(int(seconds / 0.05)):
            if condition():
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"timed out waiting for {what}")

    async def metrics(self):
        connection_status, text = await self.http.call_text("GET", "/metrics", None)
        served = {}
        for line in text.splitlines():
            if line.startswith("careledger_replica_reads_total{"):
                label = line.split('served_by="')[1].split('"')[0]
                served[label] = int(float(line.split()[-1]))
        return served

    async def setup(self):
        admin = self.args.admin_key
        orgs, keys = {}, {}
        for name, kind in [("sender", "hospital"), ("receiver", "hospital"), ("insurer", "insurer")]:
            orgs[name] = (await self.http.must("POST", "/v1/orgs", admin, {"name": f"Replica {name}", "kind": kind}))["id"]
            keys[name] = (await self.http.must("POST", f"/v1/orgs/{orgs[name]}/keys", admin, {"role": kind, "label": "replica"}))["apiKey"]
        patient = (await self.http.must("POST", "/v1/patients", keys["sender"],
                                        {"resourceType": "Patient", "identifier": [{"system": PATIENT_SYSTEM, "value": "replica"}]}))["id"]
        for grantee, purposes, categories in [(orgs["receiver"], ["TREAT"], ["*"]), (orgs["insurer"], ["HPAYMT"], ["claim"])]:
            await self.http.must("POST", f"/v1/patients/{patient}/consents", keys["sender"],
                                 {"grantee": {"orgId": grantee}, "purposes": purposes, "categories": categories, "evidenceHash": EVIDENCE})
        self.orgs, self.keys, self.patient = orgs, keys, patient

    async def write(self, tag):
        document = {"resourceType": "Observation", "status": "final", "id": tag, "code": {"text": "heart rate"}}
        exchange = await self.http.must("POST", "/v1/exchanges", self.keys["sender"],
                                        {"to": self.orgs["receiver"], "patient": self.patient, "purpose": "TREAT", "category": "lab", "document": document})
        claim = {"resourceType": "Claim", "status": "active", "type": {}, "use": "claim", "patient": {}, "created": "2026-12-01",
                 "provider": {}, "priority": {}, "insurance": [{}], "identifier": [{"system": PATIENT_SYSTEM, "value": tag}],
                 "item": [{"productOrService": {}, "net": {"value": 10, "currency": "USD"}}], "total": {"value": 10, "currency": "USD"}}
        submitted = await self.http.must("POST", "/v1/claims", self.keys["sender"], {"insurer": self.orgs["insurer"], "patient": self.patient, "claim": claim})
        return exchange["id"], submitted["id"]

    async def feed(self, path, key, after=None):
        separator = "&" if "?" in path else "?"
        page = await self.http.must("GET", path + (f"{separator}after={after}" if after else ""), key, ok=(200,))
        return page

    async def proof_verifies(self, seq, size):
        proof = await self.http.must("GET", f"/v1/ledger/proofs/inclusion?seq={seq}&size={size}", self.keys["sender"], ok=(200,))
        head_root = self.primary.sql(f"SELECT encode(root_hash, 'base64') FROM ledger_heads WHERE tree_size = {size}")[0][0]
        root = root_from_inclusion(seq, size, leaf_hash(proof["entry"]), [base64.b64decode(p) for p in proof["proof"]])
        return root is not None and base64.b64encode(root).decode() == head_root

    def verify(self, url):
        environment = dict(os.environ, DATABASE_URL=url)
        environment.pop("DATABASE_REPLICA_URL", None)
        return subprocess.run([self.args.bin, "verify", "--database"], capture_output=True, text=True, timeout=300, env=environment)

    async def run(self):
        self.make_standby()
        self.instance.start()
        await self.http.wait_ready(self.args.port)
        await self.setup()
        written = [await self.write(f"caught-up-{n}") for n in range(10)]
        await self.until("the primary signs every entry", lambda: self.primary.value("SELECT count(*) FROM ledger_queue") == 0)
        size = self.signed(self.primary)
        await self.until("the standby replays every head", lambda: self.signed(self.standby) == size)

        before = await self.metrics()
        entries = await self.http.must("GET", f"/v1/ledger/entries?from=0&to={size}", self.keys["sender"], ok=(200,))
        stored = self.primary.sql(f"SELECT seq, encode(leaf_hash, 'base64') FROM ledger_entries WHERE seq < {min(size, 1000)} ORDER BY seq")
        self.check([(str(e["seq"]), e["leafHash"]) for e in entries["items"]] == [tuple(row) for row in stored[:len(entries["items"])]],
                   f"ledger entries 0..{len(entries['items'])} read through the standby match the primary's")
        self.check(await self.proof_verifies(size // 2, size), f"an inclusion proof in the tree of {size} verifies against the primary's head")
        claims = await self.feed("/v1/claims/feed", self.keys["insurer"])
        inbox = await self.feed("/v1/exchanges?box=inbox", self.keys["receiver"])
        self.check([i["claimId"] for i in claims["items"]] == [c for _, c in written], "the claims feed lists every claim, in order")
        self.check([i["exchangeId"] for i in inbox["items"]] == [x for x, _ in written], "the inbox lists every exchange, in order")
        after = await self.metrics()
        self.check(after.get("replica", 0) - before.get("replica", 0) >= 4,
                   f"the standby served the lag-tolerant reads (replica {before.get('replica', 0)} -> {after.get('replica', 0)})")

        self.standby.sql("SELECT pg_wal_replay_pause()")
        await self.until("replay pauses", lambda: self.standby.sql("SELECT pg_get_wal_replay_pause_state()")[0][0] == "paused")
        paused_at = self.signed(self.standby)
        exchange_id, claim_id = await self.write("while-paused")
        read_back = await self.http.must("GET", f"/v1/exchanges/{exchange_id}", self.keys["sender"], ok=(200,))
        self.check(read_back.get("id") == exchange_id, "the sender reads its own new exchange at once")
        await self.until("the primary signs the new entries", lambda: self.primary.value("SELECT count(*) FROM ledger_queue") == 0)
        newest = self.signed(self.primary)
        self.check(self.signed(self.standby) == paused_at < newest, f"the standby stays at {paused_at} while the primary is at {newest}")
        self.check(await self.proof_verifies(newest - 1, newest), f"the newest entry's proof in the tree of {newest} (past the standby) verifies")
        claims_after = await self.feed("/v1/claims/feed", self.keys["insurer"], claims.get("cursor"))
        inbox_after = await self.feed("/v1/exchanges?box=inbox", self.keys["receiver"], inbox.get("cursor"))
        self.check([i["claimId"] for i in claims_after["items"]] == [claim_id], "the claims feed past its cursor has the new claim")
        self.check([i["exchangeId"] for i in inbox_after["items"]] == [exchange_id], "the inbox past its cursor has the new exchange")
        paused_metrics = await self.metrics()
        self.check(paused_metrics.get("primary", 0) > after.get("primary", 0), "reads the standby could not answer went to the primary")
        verified = self.verify(self.standby.database_url)
        self.check(verified.returncode == 0, f"verify --database on the paused standby passes: {verified.stdout.strip()[:120]}{verified.stderr.strip()[-300:]}")

        self.standby.sql("SELECT pg_wal_replay_resume()")
        # The primary may have signed more since (audit batches of the reads above).
        await self.until("the standby catches up", lambda: self.signed(self.standby) >= newest)
        verified = self.verify(self.standby.database_url)
        entries = json.loads(verified.stdout)["report"]["entries"] if verified.returncode == 0 else -1
        self.check(entries >= newest, f"verify --database on the caught-up standby passes with {entries} entries (primary had {newest})")
        # A standby that goes away costs no answer: its reads go to the primary.
        self.standby.stop("fast")
        down_at = await self.metrics()
        # A size the standby was known to hold, so the server tries it first and has to fall back.
        self.check(await self.proof_verifies(paused_at // 2, paused_at), "with the standby stopped, a proof it held still verifies (from the primary)")
        entries = await self.http.call("GET", f"/v1/ledger/entries?from=0&to={paused_at}", self.keys["sender"])
        claims_down = await self.http.call("GET", "/v1/claims/feed", self.keys["insurer"])
        self.check(entries[0] == 200 and claims_down[0] == 200, f"ledger entries and the claims feed answer {entries[0]} and {claims_down[0]}")
        after_down = await self.metrics()
        self.check(after_down.get("primary", 0) > down_at.get("primary", 0), "and the primary served them")
        self.instance.kill()
        print(f"\nReplica: {len(self.failures)} failed" if self.failures else "\nReplica reads: all checks passed")
        return 1 if self.failures else 0


def main():
    parser = script_parser(__doc__, 18495)
    args = parser.parse_args()
    test = Replica(args)

    def cleanup():
        test.instance.kill()
        try:
            test.standby.stop("fast")
        except (subprocess.CalledProcessError, OSError):
            pass
    run_script(test, cleanup)


if __name__ == "__main__":
    main()
