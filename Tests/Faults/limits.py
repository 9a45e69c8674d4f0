#!/usr/bin/env python3
"""Limits hold for the deployment, not per instance: two `careledger serve` processes against one
database, requests spread over both.

  - A key allowed 20 requests a second sends 160 over about a second, half to each instance: the
    deployment grants about 20 + 20 (the bucket, then a second's refill), far fewer than the 80
    two separate buckets would.
  - 40 requests with unknown keys from one address, half to each: past the budget of 20 a minute
    the answers are 429, about 20 in all, not 40.
  - An address allowed 4 connections holds 3 on one instance: the other accepts 1 more, not 4.

Standard library only. Run by Tests/Faults/run.sh limits, which makes the cluster, keys and admin key.
"""
import asyncio

from faults import Client, Closed, Connection, Instance, run_script, script_parser

KEY_RATE = 20
AUTH_BUDGET = 20
CONNECTIONS = 4


class Limits:
    def __init__(self, args):
        self.args = args
        self.instances = []
        self.failures = []

    async def start(self, connections_per_address):
        """Both instances (again), with this per-address connection limit."""
        for instance in self.instances:
            instance.kill()
        flags = ["--auth-failure-limit", str(AUTH_BUDGET), "--max-connections-per-address", str(connections_per_address)]
        self.instances = [Instance(self.args.bin, self.args.port + n, f"{self.args.work}/serve-limits-{n}.log", extra=flags) for n in range(2)]
        for instance in self.instances:
            instance.start()
        for instance in self.instances:
            await Client(instance.port).wait_ready(instance.port)
        return [instance.port for instance in self.instances]

    def check(self, condition, text):
        print(("ok    " if condition else "FAIL  ") + text, flush=True)
        if not condition:
            self.failures.append(text)

    async def statuses(self, requests):
        """Each (port, key) request on a connection of its own, all at once; their statuses."""
        async def one(port, key):
            connection = Connection(port)
            try:
                status, _ = await connection.request("GET", "/v1/me", key)
                return status
            except (OSError, Closed, asyncio.TimeoutError, asyncio.IncompleteReadError):
                return None
            finally:
                connection.close()
        return await asyncio.gather(*(one(port, key) for port, key in requests))

    async def run(self):
        ports = await self.start(connections_per_address=1000)
        http = Client(ports[0])
        admin = self.args.admin_key
        org = (await http.must("POST", "/v1/orgs", admin, {"name": "Limits", "kind": "hospital"}))["id"]
        key = (await http.must("POST", f"/v1/orgs/{org}/keys", admin, {"role": "hospital", "label": "limits", "rateLimitPerSecond": KEY_RATE}))["apiKey"]

        granted = 0
        started = asyncio.get_running_loop().time()
        for burst in range(8):
            answers = await self.statuses([(ports[n % 2], key) for n in range(20)])
            granted += answers.count(200)
            await asyncio.sleep(max(0, started + (burst + 1) * 0.125 - asyncio.get_running_loop().time()))
        elapsed = asyncio.get_running_loop().time() - started
        # One shared bucket grants its 20 and a second's refill; separate ones would grant twice that.
        # The ceiling leaves room for rounds slowed by a loaded machine, and stays well below twice.
        separate = 2 * (KEY_RATE + KEY_RATE * elapsed)
        ceiling = 0.75 * separate
        self.check(granted <= ceiling, f"a key of {KEY_RATE}/s was granted {granted} of 160 requests over {elapsed:.2f} s on two instances "
                                       f"(one shared bucket: about {separate / 2:.0f}, at most {ceiling:.0f} here; two separate ones would grant about {separate:.0f})")

        unauthorized = 0
        for burst in range(4):
            answers = await self.statuses([(ports[n % 2], f"clk_key_unknown{burst}{n}_secret") for n in range(10)])
            unauthorized += answers.count(401)
            await asyncio.sleep(0.5)
        self.check(unauthorized <= AUTH_BUDGET + 10, f"{unauthorized} of 40 failed authentications answered 401 before 429 "
                                                     f"(a budget of {AUTH_BUDGET} a minute for the deployment, not {2 * AUTH_BUDGET})")

        ports = await self.start(connections_per_address=CONNECTIONS)
        held = []
        for _ in range(CONNECTIONS - 1):
            connection = Connection(ports[0])
            status, _ = await connection.request("GET", "/health", None)
            held.append(connection)
            self.check(status == 200, "a connection held on the first instance")
        await asyncio.sleep(1.0)
        accepted = 0
        for _ in range(3):
            connection = Connection(ports[1])
            try:
                status, _ = await connection.request("GET", "/health", None)
                accepted += status == 200
                if status == 200:
                    held.append(connection)
                else:
                    connection.close()
            except (OSError, Closed, asyncio.TimeoutError, asyncio.IncompleteReadError):
                connection.close()
        self.check(accepted == 1, f"with {CONNECTIONS - 1} connections held on the first instance, the second accepted {accepted} more "
                                  f"from the same address (the deployment's share is {CONNECTIONS})")
        for connection in held:
            connection.close()
        for instance in self.instances:
            instance.kill()
        print(f"\nLimits: {len(self.failures)} failed" if self.failures else "\nLimits hold for the deployment")
        return 1 if self.failures else 0


def main():
    parser = script_parser(__doc__, 18500)
    args = parser.parse_args()
    test = Limits(args)

    def cleanup():
        for instance in test.instances:
            instance.kill()
    run_script(test, cleanup)


if __name__ == "__main__":
    main()
