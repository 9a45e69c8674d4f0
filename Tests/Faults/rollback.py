#!/usr/bin/env python3
"""A rollback is caught: the database restored from a base backup taken before the latest
published checkpoint.

  1. Entries are anchored through the server; a base backup is taken (pg_basebackup) at tree size A.
  2. More entries are anchored, up to tree size B > A. A monitor (`careledger verify --url`) saves
     the checkpoint of size B, as a witness would; a copy of it is kept for `verify --database`.
  3. The cluster is stopped and its data directory replaced by the backup; it starts at size A.
  4. `careledger verify --database --trusted-head` and the monitor's next run must both fail and
     name the first missing sequence number, A; before the restore both passed.

Standard library only. Run by Tests/Faults/run.sh rollback, which makes the cluster, keys and admin key.
"""
import asyncio
import os
import shutil
import subprocess

from faults import Client, Cluster, Instance, run_script, script_parser


class Rollback:
    def __init__(self, args):
        self.args = args
        self.cluster = Cluster(args.cluster, os.environ["DATABASE_URL"])
        self.instance = Instance(args.bin, args.port, f"{args.work}/serve-rollback.log")
        self.client = Client(args.port)
        self.failures = []

    def check(self, condition, text):
        print(("ok    " if condition else "FAIL  ") + text, flush=True)
        if not condition:
            self.failures.append(text)

    async def anchor(self, key, count, tag):
        for number in range(count):
            digest = f"{tag}{number:060d}".encode().hex()[:64]
            await self.client.must("POST", "/v1/ledger/anchors", key, {"hash": f"sha256:{digest}", "kind": "rollback-test", "reference": f"{tag}-{number}"})

    def signed_size(self):
        return self.cluster.value("SELECT coalesce(max(tree_size), 0) FROM ledger_heads")

    async def signed_at_least(self, size):
        for _ in range(200):
            if self.signed_size() >= size:
                return self.signed_size()
            await asyncio.sleep(0.05)
        raise RuntimeError(f"the ledger was not signed up to {size} entries")

    def careledger(self, *arguments, key=None):
        environment = dict(os.environ)
        if key:
            environment["CARELEDGER_API_KEY"] = key
        return subprocess.run([self.args.bin, *arguments], capture_output=True, text=True, timeout=300, env=environment)

    def restore(self, backup):
        data = f"{self.args.cluster}/data"
        self.cluster.stop("fast")
        shutil.rmtree(data)
        shutil.copytree(backup, data, symlinks=True)
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", "postgres:postgres", data], check=True)
        os.chmod(data, 0o700)
        self.cluster.start()

    async def run(self):
        work, admin = self.args.work, self.args.admin_key
        self.instance.start()
        await self.client.wait_ready(self.args.port)
        org = (await self.client.must("POST", "/v1/orgs", admin, {"name": "Rollback witness", "kind": "hospital"}))["id"]
        key = (await self.client.must("POST", f"/v1/orgs/{org}/keys", admin, {"role": "hospital", "label": "rollback"}))["apiKey"]
        keys = await self.client.must("GET", "/v1/ledger/keys", key, ok=(200,))
        public_key, monitor_head = f"{work}/log.pub", f"{work}/monitor-head.txt"
        with open(public_key, "w") as out:
            out.write(keys["items"][0]["verifierKey"])
        url = f"http://127.0.0.1:{self.args.port}"

        await self.anchor(key, 20, "a")
        backed_up = await self.signed_at_least(20)
        backup = f"{work}/backup"
        os.makedirs(backup, mode=0o700)
        if os.geteuid() == 0:
            shutil.chown(backup, "postgres", "postgres")
        subprocess.run(self.cluster.as_owner(f"{self.cluster.bindir}/pg_basebackup", "-h", f"{self.args.cluster}/socket", "-D", backup,
                                             "-X", "stream", "-c", "fast"), check=True, capture_output=True, timeout=300)
        at_backup = self.cluster.value("SELECT count(*) FROM ledger_entries")
        await self.anchor(key, 15, "b")
        published = await self.signed_at_least(at_backup + 15)
        monitored = self.careledger("verify", "--url", url, "--key", public_key, "--trusted-head", monitor_head, key=key)
        with open(monitor_head) as head:
            published = int(head.read().splitlines()[1])  # the latest when the monitor ran, maybe past the wait's
        self.check(monitored.returncode == 0, f"the monitor trusts the checkpoint of size {published}: {monitored.stdout.strip()}{monitored.stderr.strip()}")
        saved = f"{work}/saved-checkpoint.txt"
        shutil.copy(monitor_head, saved)
        before = self.careledger("verify", "--database", "--trusted-head", saved)
        self.check(before.returncode == 0, "verify --database with the saved checkpoint passes before the restore")

        self.instance.kill()
        self.restore(backup)
        self.instance.start()
        await self.client.wait_ready(self.args.port)
        restored = self.cluster.value("SELECT count(*) FROM ledger_entries")
        # Entries sequenced while the backup ran may or may not be in it: between the two counts.
        self.check(backed_up <= restored <= at_backup and restored < published,
                   f"the restored database holds {restored} entries (backup at signed size {backed_up}), fewer than the published {published}")
        missing = f"first missing sequence number is {restored}"
        after = self.careledger("verify", "--database", "--trusted-head", saved)
        self.check(after.returncode == 1 and missing in after.stderr, f"verify --database reports the rollback: {after.stderr.strip()}")
        witness = self.careledger("verify", "--url", url, "--key", public_key, "--trusted-head", monitor_head, key=key)
        self.check(witness.returncode == 1 and missing in witness.stderr, f"verify --url reports the rollback: {witness.stderr.strip()}")
        with open(monitor_head) as head:
            self.check(head.read().splitlines()[1] == str(published), "the monitor keeps the checkpoint it trusted, not the rolled-back one")
        self.instance.kill()
        print(f"\nRollback: {len(self.failures)} failed" if self.failures else "\nRollback caught by both checks")
        return 1 if self.failures else 0


def main():
    parser = script_parser(__doc__, 18490)
    args = parser.parse_args()
    test = Rollback(args)

    def cleanup():
        test.instance.kill()
    run_script(test, cleanup)


if __name__ == "__main__":
    main()
