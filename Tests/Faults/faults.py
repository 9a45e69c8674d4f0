#!/usr/bin/env python3
"""Fault injection under load, then an account of every operation (the Jepsen way, small).

Two `careledger serve` instances share one PostgreSQL cluster behind a round-robin TCP proxy on
loopback. Client tasks write through the proxy, every write with an Idempotency-Key, each retrying
with the same key after a timeout, a dropped connection or a 5xx, until an answer or its deadline.
Meanwhile, at random moments: an instance is killed with SIGKILL (and restarted), PostgreSQL is
stopped `immediate` (a crash) or `fast` (and started), or the server's backends are terminated.

Afterwards, with the faults healed, every operation is acknowledged (its last answer 2xx), failed
(answered, last answer not 2xx) or unknown (an attempt went unanswered and no later one answered).
Checked, each a violation when it does not hold:
  - every acknowledged write exists, under its key, with the id it was answered with;
  - per table, the rows that exist equal the keys recorded: nothing exists twice, acknowledged or
    unknown, and nothing exists without its key;
  - a write that was only ever refused with a 4xx does not exist;
  - every acknowledged write, replayed with its key, answers the same;
  - the ledger is dense (seq 0..n-1, queue drained) and `careledger verify --database` exits 0;
  - the claims feed, the claim responses feed, the exchange inbox and the supply and device alert
    feeds, walked from their first cursor, deliver every committed item exactly once, in ledger order.
The writes: exchanges, consent grants and revocations, claims, cancellations, adjudications,
prescriptions, fills, EPCIS captures (commissioning, shipping, receiving, commissioning twice),
device registrations and RFID batches.
Prints the counts as a table; exits 1 on any violation.

Standard library only. Run by Tests/Faults/run.sh, which makes the cluster, keys and admin key.
"""
import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import time

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
# Drugs the benchmark prescribes again and again without a high finding.
DRUGS = ["311372", "1094107", "1049630", "309097", "309045"]
PATIENT_SYSTEM = "urn:careledger:faults"
EVIDENCE = "sha256:" + "e" * 64
# The supply chain: a manufacturer's company prefix, its plant and a wholesaler's warehouse.
COMPANY_PREFIX = "4012345"
ITEM_REFERENCE = "011111"
EPCIS_HEADERS = [("GS1-EPCIS-Version", "2.0.0")]
REQUEST_TIMEOUT = 10.0
OPERATION_DEADLINE = 60.0


def gln(twelve):
    """A GLN: twelve digits and their GS1 mod-10 check digit."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(twelve)))
    return twelve + str((10 - total % 10) % 10)


PLANT, WAREHOUSE = gln("401234500011"), gln("402333300000")


def site(number):
    return f"urn:epc:id:sgln:{number[:7]}.{number[7:12]}.0"


def party(number):
    return f"urn:epc:id:pgln:{number[:7]}.{number[7:12]}"


def epcis_event(serial, biz_step, at, second, action="OBSERVE", destination=None):
    """An ObjectEvent for one pack; `second` makes each event's time (and so its hash id) its own."""
    event = {"type": "ObjectEvent", "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(1780272000 + second)) + ".000Z",
             "eventTimeZoneOffset": "+00:00", "action": action, "bizStep": biz_step, "readPoint": {"id": site(at)},
             "epcList": [f"urn:epc:id:sgtin:{COMPANY_PREFIX}.{ITEM_REFERENCE}.{serial}"]}
    if destination:
        event["destinationList"] = [{"type": "owning_party", "destination": party(destination)}]
    if biz_step == "commissioning":
        event["ilmd"] = {"cbvmda:lotNumber": "L1", "cbvmda:itemExpirationDate": "2030-12-31"}
    return {"@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"], "type": "EPCISDocument", "schemaVersion": "2.0",
            "creationDate": "2026-06-01T00:00:00Z", "epcisBody": {"eventList": [event]}}


class Closed(Exception):
    """The connection ended before a whole answer arrived."""


class Connection:
    """One HTTP/1.1 keep-alive connection; any failure closes it, the next request reconnects."""

    def __init__(self, port):
        self.port = port
        self.reader = self.writer = None

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, method, path, key, body=None, headers=()):
        try:
            return await asyncio.wait_for(self._request(method, path, key, body, headers), REQUEST_TIMEOUT)
        except BaseException:
            self.close()
            raise

    async def _request(self, method, path, key, body, headers):
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        if key:
            head += f"Authorization: Bearer {key}\r\n"
        for name, value in headers:
            head += f"{name}: {value}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + (body or b""))
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise Closed()
        status = int(status_line.split()[1])
        length, close = 0, False
        while True:
            line = await self.reader.readline()
            if not line:
                raise Closed()
            if line == b"\r\n":
                break
            name, _, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                close = True
        payload = await self.reader.readexactly(length)
        if close:
            self.close()
        try:
            document = json.loads(payload) if payload else None
        except ValueError:
            document = None
        return status, document


class Cluster:
    """The PostgreSQL cluster run.sh started, driven with pg_ctl and psql."""

    def __init__(self, directory, database_url):
        self.directory, self.database_url = directory, database_url
        bindirs = sorted((d for d in os.listdir("/usr/lib/postgresql")), key=lambda d: int(d) if d.isdigit() else 0)
        self.bindir = f"/usr/lib/postgresql/{bindirs[-1]}/bin"
        # pg-cluster.sh makes its clusters' superuser the postgres user when run as root, else the caller.
        self.superuser = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")

    def as_owner(self, *command):
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return prefix + list(command)

    def stop(self, mode):
        subprocess.run(self.as_owner(f"{self.bindir}/pg_ctl", "-D", f"{self.directory}/data", "-m", mode, "-w", "-t", "60", "stop"),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self):
        subprocess.run(["deploy/lib/pg-cluster.sh", "start", self.directory, "careledger"], check=True, stdout=subprocess.DEVNULL)

    def sql(self, statement):
        # On standard input: a statement naming thousands of ids is longer than an argument may be.
        done = subprocess.run(["psql", self.database_url, "-XAtq", "-v", "ON_ERROR_STOP=1"], input=statement, check=True, capture_output=True,
                              text=True, timeout=60)
        return [line.split("|") for line in done.stdout.splitlines() if line]

    def value(self, statement):
        return int(self.sql(statement)[0][0])


class PgBouncer:
    """PgBouncer in transaction mode in front of the cluster, on a unix socket of its own; run as
    the postgres user (it refuses root). The settings CareLedger needs: `pool_mode = transaction`,
    `auth_type` as the deployment requires (here `any`, on a socket only the tests reach), and room
    for every instance's pool; the server sets DATABASE_SESSION_URL to reach PostgreSQL itself for
    LISTEN and its session locks. TimeZone and DateStyle, which each connection sets, are among the
    parameters PgBouncer tracks per client and sets again on whichever server connection it hands out."""

    def __init__(self, cluster, directory):
        self.cluster, self.directory = cluster, directory
        self.config = f"{directory}/pgbouncer.ini"

    @property
    def database_url(self):
        return f"postgresql:///careledger?host={self.directory}&port=6432&user={self.cluster.superuser}"

    def start(self):
        os.makedirs(self.directory, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        with open(self.config, "w") as out:
            out.write(f"""[databases]
careledger = host={self.cluster.directory}/socket dbname=careledger user={self.cluster.superuser}

[pgbouncer]
listen_addr =
unix_socket_dir = {self.directory}
listen_port = 6432
auth_type = any
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 40
ignore_startup_parameters = extra_float_digits
logfile = {self.directory}/pgbouncer.log
pidfile = {self.directory}/pgbouncer.pid
""")
        subprocess.run(self.cluster.as_owner("pgbouncer", "-d", self.config), check=True, capture_output=True, timeout=30)

    def stop(self):
        try:
            with open(f"{self.directory}/pgbouncer.pid") as pid:
                os.kill(int(pid.read().strip()), 15)
        except (OSError, ValueError):
            pass


class Instance:
    """One `careledger serve` process on its own port."""

    def __init__(self, binary, port, log_path, environment=None, extra=()):
        self.binary, self.port, self.log_path, self.extra = binary, port, log_path, list(extra)
        self.environment = dict(os.environ, **(environment or {}))
        self.process = None

    def start(self):
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen([self.binary, "serve", "--port", str(self.port), "--no-migrate", "--key-rate-limit", "100000"] + self.extra,
                                        stdout=log, stderr=log, env=self.environment)
        log.close()

    def kill(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def alive(self):
        return self.process is not None and self.process.poll() is None


class RoundRobin:
    """A TCP proxy that hands each new connection to the next instance, skipping one that refuses."""

    def __init__(self, ports):
        self.ports, self.turn = ports, 0

    async def serve(self, port):
        return await asyncio.start_server(self.accept, "127.0.0.1", port)

    async def accept(self, client_reader, client_writer):
        upstream = None
        for _ in range(len(self.ports)):
            port = self.ports[self.turn % len(self.ports)]
            self.turn += 1
            try:
                upstream = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                continue
        if upstream is None:
            client_writer.close()
            return
        server_reader, server_writer = upstream

        async def pipe(reader, writer):
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                writer.close()

        try:
            await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))
        except asyncio.CancelledError:
            pass  # the harness is shutting down with this connection open


class Client:
    """One-off requests to a port (a connection each), for setup and checks rather than load."""

    def __init__(self, port):
        self.port = port

    async def call(self, method, path, key, body=None, port=None, headers=()):
        connection = Connection(port or self.port)
        try:
            return await connection.request(method, path, key, None if body is None else json.dumps(body).encode(), headers)
        finally:
            connection.close()

    async def call_text(self, method, path, key):
        """A request whose answer is not JSON (such as /metrics): its status and text."""
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.port), REQUEST_TIMEOUT)
        try:
            writer.write(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n".encode()
                         + (f"Authorization: Bearer {key}\r\n".encode() if key else b"") + b"\r\n")
            answer = await asyncio.wait_for(reader.read(), REQUEST_TIMEOUT)
        finally:
            writer.close()
        head, _, body = answer.partition(b"\r\n\r\n")
        return int(head.split()[1]), body.decode()

    async def must(self, method, path, key, body=None, ok=(200, 201)):
        status, answer = await self.call(method, path, key, body)
        if status not in ok:
            raise RuntimeError(f"{method} {path}: {status} {answer}")
        return answer

    async def wait_ready(self, port, seconds=60):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                status, _ = await self.call("GET", "/ready", None, port=port)
                if status == 200:
                    return
            except (OSError, Closed, asyncio.TimeoutError, asyncio.IncompleteReadError):
                pass
            await asyncio.sleep(0.2)
        raise RuntimeError(f"the instance on port {port} is not ready after {seconds} s")


# Writes whose rows are one table's: the kinds that fill it (row counts are checked per table).
CAPTURES = ("commission", "ship", "receive", "recommission")
TABLES = {
    "exchanges": ("exchange",), "consents": ("consent",), "claims": ("claim",), "claim_events WHERE kind = 'adjudicated'": ("adjudicate",),
    "claim_events WHERE kind = 'cancelled'": ("cancel",), "prescriptions": ("prescribe",), "dispenses": ("dispense",),
    "epcis_captures": CAPTURES, "devices": ("register",), "rfid_batches": ("rfid",),
}


class Operation:
    def __init__(self, kind, key, method, path, body, idempotency_key, headers=()):
        self.kind, self.key, self.method, self.path = kind, key, method, path
        self.body = json.dumps(body, separators=(",", ":")).encode()
        self.idempotency_key = idempotency_key
        self.headers = [("Idempotency-Key", idempotency_key)] + list(headers)
        self.answers = []  # status per attempt, None for no answer
        self.response = None

    @property
    def outcome(self):
        if self.answers and self.answers[-1] is not None and 200 <= self.answers[-1] < 300:
            return "acknowledged"
        return "unknown" if None in self.answers else "failed"

    def resource_id(self):
        """The id the answer names, as the server records it under the key."""
        answer = self.response or {}
        if self.kind in ("adjudicate", "cancel"):
            return answer.get("claimId")
        if self.kind == "dispense":
            return f"{answer.get('prescription')}#{answer.get('fill')}"
        if self.kind in CAPTURES:
            return answer.get("captureID")
        if self.kind == "rfid":
            return answer.get("batch")
        return answer.get("id")


def comparable(answer):
    """An answer without what legitimately differs between a first answer and its replay: the
    ledger position, known only once sequenced."""
    return {k: v for k, v in (answer or {}).items() if k not in ("ledger", "seq", "leafHash")}


class Harness:
    def __init__(self, args):
        self.args = args
        self.random = random.Random(args.seed)
        self.cluster = Cluster(args.cluster, os.environ["DATABASE_URL"])
        base = args.port
        self.proxy_port = base
        self.bouncer = PgBouncer(self.cluster, f"{args.work}/pgbouncer") if args.pgbouncer else None
        through = {"DATABASE_URL": self.bouncer.database_url, "DATABASE_SESSION_URL": os.environ["DATABASE_URL"]} if self.bouncer else {}
        self.instances = [Instance(args.bin, base + 1 + i, f"{args.work}/serve-{i + 1}.log", environment=through) for i in range(2)]
        self.operations = []
        self.faults = {}
        self.violations = []
        self.open_claims, self.open_prescriptions, self.granted_consents = [], [], []
        # Packs by where they are in the chain, and registered devices' tags.
        self.commissioned, self.shipped, self.tags = [], [], []
        self.event_clock = 0
        self.http = Client(self.proxy_port)
        self.stopping = False

    # --- setup -------------------------------------------------------------------------------

    async def setup(self):
        admin = self.args.admin_key
        orgs, keys = {}, {}
        for name, kind in [("hospital_a", "hospital"), ("hospital_b", "hospital"), ("insurer", "insurer"), ("pharmacy", "pharmacy"),
                           ("researcher", "hospital"), ("maker", "manufacturer"), ("wholesaler", "distributor")]:
            orgs[name] = (await self.http.must("POST", "/v1/orgs", admin, {"name": f"Faults {name}", "kind": kind}))["id"]
            keys[name] = (await self.http.must("POST", f"/v1/orgs/{orgs[name]}/keys", admin,
                                          {"role": kind, "label": "faults", "rateLimitPerSecond": 100000}))["apiKey"]
        self.orgs, self.keys = orgs, keys
        async def register(number):
            patient = {"resourceType": "Patient", "identifier": [{"system": PATIENT_SYSTEM, "value": str(number)}]}
            patient_id = (await self.http.must("POST", "/v1/patients", keys["hospital_a"], patient))["id"]
            for grantee, purposes, categories in [(orgs["hospital_b"], ["TREAT"], ["*"]), (orgs["insurer"], ["HPAYMT"], ["claim"])]:
                await self.http.must("POST", f"/v1/patients/{patient_id}/consents", keys["hospital_a"],
                                {"grantee": {"orgId": grantee}, "purposes": purposes, "categories": categories, "evidenceHash": EVIDENCE})
            return patient_id

        # Sixteen at a time: the soak registers tens of thousands.
        self.patients = []
        for first in range(0, self.args.patients, 16):
            numbers = range(first, min(first + 16, self.args.patients))
            self.patients += await asyncio.gather(*(register(number) for number in numbers))
        await self.http.must("POST", "/v1/supply/company-prefixes", admin, {"organization": orgs["maker"], "prefix": COMPANY_PREFIX})
        for number, org in [(PLANT, "maker"), (WAREHOUSE, "wholesaler")]:
            await self.http.must("POST", "/v1/supply/locations", admin, {"organization": orgs[org], "gln": number, "name": org})
        await self.http.must("POST", "/v1/devices/locations", keys["hospital_a"], {"name": "Ward", "readers": ["ward-door"]})
        self.setup_counts = self.row_counts()

    def row_counts(self):
        return {table: self.cluster.value(f"SELECT count(*) FROM {table}") for table in TABLES}

    # --- the workload ------------------------------------------------------------------------

    def prescription(self, patient, tag):
        """A one-tablet-a-day order from hospital A for the faults' pharmacy, of one of a few drugs."""
        request = {
            "resourceType": "MedicationRequest", "status": "active", "intent": "order",
            "identifier": [{"system": PATIENT_SYSTEM, "value": tag}],
            "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": self.random.choice(DRUGS)}]},
            "subject": {"reference": "Patient/local"},
            "requester": {"identifier": {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1000000001"}},
            "dosageInstruction": [{"sequence": 1, "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                                   "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "TAB", "code": "TAB"}}]}],
            "dispenseRequest": {"validityPeriod": {"start": "2026-01-01", "end": "2030-12-31"}, "numberOfRepeatsAllowed": 1,
                                "quantity": {"value": 30, "unit": "TAB", "code": "TAB"},
                                "performer": {"reference": f"Organization/{self.orgs['pharmacy']}"}},
        }
        return {"patient": patient, "medicationRequest": request}

    def next_operation(self, client, sequence):
        tag = f"{client}-{sequence}"
        patient = self.random.choice(self.patients)
        keys, orgs = self.keys, self.orgs
        choices = ["exchange", "exchange", "consent", "claim", "claim", "prescribe", "commission", "register", "rfid"]
        if self.commissioned:
            choices += ["ship", "recommission"]
        if self.shipped:
            choices.append("receive")
        if self.open_claims:
            choices += ["adjudicate", "adjudicate", "cancel"]
        if self.open_prescriptions:
            choices += ["dispense", "dispense"]
        if self.granted_consents:
            choices.append("revoke")
        kind = self.random.choice(choices)
        key = f"{kind}-{tag}"
        if kind == "exchange":
            document = {"resourceType": "Observation", "status": "final", "id": tag,
                        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                        "valueQuantity": {"value": self.random.randint(40, 140), "unit": "/min"}}
            body = {"to": orgs["hospital_b"], "patient": patient, "purpose": "TREAT", "category": "lab", "document": document}
            return Operation(kind, keys["hospital_a"], "POST", "/v1/exchanges", body, key)
        if kind in CAPTURES:
            self.event_clock += 1
            if kind == "commission":
                serial, org, document = tag, "maker", epcis_event(tag, "commissioning", PLANT, self.event_clock, action="ADD")
            elif kind == "recommission":
                # Commissioning a serial twice is stored, marked, and raises an alert.
                serial, org = self.random.choice(self.commissioned + self.shipped), "maker"
                document = epcis_event(serial, "commissioning", PLANT, self.event_clock, action="ADD")
            elif kind == "ship":
                serial = self.commissioned.pop(self.random.randrange(len(self.commissioned)))
                org, document = "maker", epcis_event(serial, "shipping", PLANT, self.event_clock, destination=WAREHOUSE)
            else:
                serial = self.shipped.pop(self.random.randrange(len(self.shipped)))
                org, document = "wholesaler", epcis_event(serial, "receiving", WAREHOUSE, self.event_clock)
            operation = Operation(kind, keys[org], "POST", "/v1/epcis/capture", document, key, EPCIS_HEADERS)
            operation.serial = serial
            return operation
        if kind == "register":
            self.event_clock += 1
            body = {"resource": {"resourceType": "Device", "status": "active"}, "type": "infusion-pump", "location": "Ward",
                    "rfidTag": f"urn:epc:id:giai:{COMPANY_PREFIX}.{self.event_clock}{client:03d}"}
            return Operation(kind, keys["hospital_a"], "POST", "/v1/devices", body, key)
        if kind == "rfid":
            self.event_clock += 1
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".000Z"
            tags = self.random.sample(self.tags, min(3, len(self.tags))) + [f"urn:epc:id:giai:{COMPANY_PREFIX}.9{self.event_clock}{client:03d}"]
            body = {"readerId": "ward-door", "reads": [{"epc": epc, "time": stamp} for epc in tags]}
            return Operation(kind, keys["hospital_a"], "POST", "/v1/devices/rfid-reads", body, key)
        if kind == "consent":
            body = {"grantee": {"orgId": orgs["researcher"]}, "purposes": ["HRESCH"], "categories": ["lab"],
                    "provision": self.random.choice(["permit", "deny"]), "evidenceHash": EVIDENCE}
            return Operation(kind, keys["hospital_a"], "POST", f"/v1/patients/{patient}/consents", body, key)
        if kind == "revoke":
            consent = self.granted_consents.pop(self.random.randrange(len(self.granted_consents)))
            return Operation(kind, keys["hospital_a"], "POST", f"/v1/consents/{consent}/revoke", {}, key)
        if kind == "claim":
            value = self.random.randint(10, 900)
            claim = {"resourceType": "Claim", "status": "active", "type": {}, "use": "claim", "patient": {}, "created": "2026-12-01",
                     "provider": {}, "priority": {}, "insurance": [{}], "identifier": [{"system": PATIENT_SYSTEM, "value": tag}],
                     "item": [{"productOrService": {}, "net": {"value": value, "currency": "USD"}}], "total": {"value": value, "currency": "USD"}}
            return Operation(kind, keys["hospital_a"], "POST", "/v1/claims", {"insurer": orgs["insurer"], "patient": patient, "claim": claim}, key)
        if kind in ("adjudicate", "cancel"):
            claim_id = self.open_claims.pop(self.random.randrange(len(self.open_claims)))
            if kind == "cancel":
                return Operation(kind, keys["hospital_a"], "POST", f"/v1/claims/{claim_id}/cancel", {"reason": f"cancelled by {tag}"}, key)
            response = {"resourceType": "ClaimResponse", "outcome": "complete", "disposition": f"decided by {tag}"}
            return Operation(kind, keys["insurer"], "POST", f"/v1/claims/{claim_id}/adjudication", response, key)
        if kind == "prescribe":
            return Operation(kind, keys["hospital_a"], "POST", "/v1/prescriptions", self.prescription(patient, tag), key)
        prescription, code = self.open_prescriptions.pop(self.random.randrange(len(self.open_prescriptions)))
        dispense = {"resourceType": "MedicationDispense", "status": "completed", "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code}]},
                    "quantity": {"value": 30, "unit": "TAB", "code": "TAB"}}
        return Operation("dispense", keys["pharmacy"], "POST", f"/v1/prescriptions/{prescription}/dispense", {"medicationDispense": dispense}, key)

    async def perform(self, connection, operation):
        """Sends the operation until an answer that is not a 5xx, or the deadline; same key every time."""
        deadline = time.monotonic() + OPERATION_DEADLINE
        pause = 0.05
        while True:
            try:
                status, answer = await connection.request(operation.method, operation.path, operation.key, operation.body, operation.headers)
                operation.answers.append(status)
                operation.response = answer
                if status < 500:
                    return
            except (OSError, Closed, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError):
                operation.answers.append(None)
            if time.monotonic() + pause > deadline:
                return
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)

    def follow_up(self, operation):
        if operation.outcome != "acknowledged":
            return
        answer = operation.response or {}
        if operation.kind == "claim" and answer.get("status") == "submitted":
            self.open_claims.append(answer["id"])
        elif operation.kind == "prescribe":
            code = json.loads(operation.body)["medicationRequest"]["medicationCodeableConcept"]["coding"][0]["code"]
            for _ in range(2):
                self.open_prescriptions.append((answer["id"], code))
        elif operation.kind == "consent":
            self.granted_consents.append(answer["id"])
        elif operation.kind == "commission" and answer.get("success"):
            self.commissioned.append(operation.serial)
        elif operation.kind == "ship" and answer.get("success"):
            self.shipped.append(operation.serial)
        elif operation.kind == "register":
            self.tags.append(json.loads(operation.body)["rfidTag"])

    async def client(self, number):
        connection, sequence = Connection(self.proxy_port), 0
        while not self.stopping:
            operation = self.next_operation(number, sequence)
            sequence += 1
            self.operations.append(operation)
            await self.perform(connection, operation)
            self.follow_up(operation)
        connection.close()

    # --- faults ------------------------------------------------------------------------------

    def count(self, fault):
        self.faults[fault] = self.faults.get(fault, 0) + 1

    async def inject(self):
        low, high = self.args.fault_every
        kinds = ["kill-9 of an instance", "PostgreSQL stopped immediate", "PostgreSQL stopped fast",
                 "backends terminated", "both instances killed"]
        while not self.stopping:
            await asyncio.sleep(self.random.uniform(low, high))
            if self.stopping:
                return
            fault = self.random.choice(kinds)
            self.count(fault)
            if fault == "kill-9 of an instance":
                instance = self.random.choice(self.instances)
                instance.kill()
                await asyncio.sleep(self.random.uniform(0.2, 2.0))
                instance.start()
            elif fault == "both instances killed":
                for instance in self.instances:
                    instance.kill()
                await asyncio.sleep(self.random.uniform(0.2, 1.0))
                for instance in self.instances:
                    instance.start()
            elif fault.startswith("PostgreSQL stopped"):
                await asyncio.to_thread(self.cluster.stop, fault.split()[-1])
                await asyncio.sleep(self.random.uniform(0.2, 2.0))
                await asyncio.to_thread(self.cluster.start)
            else:
                await asyncio.to_thread(self.cluster.sql, """
                    SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                    WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'""")

    # --- the account -------------------------------------------------------------------------

    def violation(self, category, text):
        """One broken promise; `category` groups them in the report (the first few of each are shown)."""
        self.violations.append((category, text))

    async def account(self):
        # Let the sequencer drain what committed, then read the truth.
        for _ in range(300):
            if self.cluster.value("SELECT count(*) FROM ledger_queue") == 0:
                break
            await asyncio.sleep(0.2)
        else:
            self.violation("ledger", "the ledger queue did not drain")
        recorded = {}
        for org, key, resource in self.cluster.sql("SELECT org_id, key, resource_id FROM idempotency_keys"):
            recorded[(org, key)] = resource
        org_of_key = {self.keys[name]: self.orgs[name] for name in self.keys}
        keyed_kinds = [kind for kinds in TABLES.values() for kind in kinds]
        for operation in self.operations:
            if operation.kind not in keyed_kinds:
                continue
            stored = recorded.get((org_of_key[operation.key], operation.idempotency_key))
            if operation.outcome == "acknowledged":
                if stored is None:
                    self.violation("acknowledged write lost", f"acknowledged {operation.kind} {operation.idempotency_key} is not stored")
                elif stored != operation.resource_id():
                    self.violation("acknowledged write differs", f"acknowledged {operation.kind} {operation.idempotency_key} answered {operation.resource_id()} but {stored} is stored")
            elif operation.outcome == "failed" and all(s is not None and s < 500 for s in operation.answers) and stored is not None:
                self.violation("refused write stored", f"{operation.kind} {operation.idempotency_key} was refused ({operation.answers[-1]}) yet stored as {stored}")
        counts = self.row_counts()
        for table, kinds in TABLES.items():
            keys = sum(1 for (org, key) in recorded if key.split("-")[0] in kinds)
            created = counts[table] - self.setup_counts[table]
            if created != keys:
                self.violation("rows without their key", f"{table}: {created} rows created for {keys} keys recorded")
        revoked = {op.path.split("/")[3] for op in self.operations if op.kind == "revoke" and op.outcome == "acknowledged"}
        if revoked:
            still = self.cluster.value("SELECT count(*) FROM consents WHERE revoked_at IS NULL AND id IN (%s)" % ",".join(f"'{r}'" for r in revoked))
            if still:
                self.violation("acknowledged write lost", f"{still} acknowledged revocations are not recorded")
        await self.replay()
        self.check_ledger()
        await self.check_feeds()

    async def replay(self):
        """Every acknowledged write sent again with its key, over as many connections as there were clients."""
        acknowledged = [op for op in self.operations if op.outcome == "acknowledged"]
        self.replayed = len(acknowledged)

        async def worker(share):
            connection = Connection(self.proxy_port)
            for operation in share:
                again = Operation(operation.kind, operation.key, operation.method, operation.path, {}, operation.idempotency_key, operation.headers[1:])
                again.body = operation.body
                await self.perform(connection, again)
                if again.answers[-1] != operation.answers[-1] or comparable(again.response) != comparable(operation.response):
                    self.violation(f"replay of {operation.kind} differs",
                                   f"replay of {operation.kind} {operation.idempotency_key} answered {again.answers[-1]} {again.response}, "
                                   f"first {operation.answers[-1]} {operation.response}")
            connection.close()

        workers = max(1, self.args.clients)
        await asyncio.gather(*(worker(acknowledged[n::workers]) for n in range(workers)))

    def check_ledger(self):
        size, low, high = self.cluster.sql("SELECT count(*), coalesce(min(seq), 0), coalesce(max(seq), -1) FROM ledger_entries")[0]
        self.ledger_size = int(size)
        if int(low) != 0 or int(high) != int(size) - 1:
            self.violation("ledger", f"the ledger is not dense: {size} entries, seq {low}..{high}")
        verify = subprocess.run([self.args.bin, "verify", "--database"], capture_output=True, text=True, timeout=600)
        self.verify_exit = verify.returncode
        if verify.returncode != 0:
            self.violation("ledger", f"careledger verify --database exited {verify.returncode}: {(verify.stdout + verify.stderr)[-2000:]}")

    async def walk(self, path, key):
        """Every item of a feed from its first cursor, following `cursor` until a page is empty and
        says nothing more is waiting (an empty page may still say `next`: it scanned entries that
        held nothing for the caller)."""
        items, cursor = [], None
        while True:
            separator = "&" if "?" in path else "?"
            page = await self.http.must("GET", path + (f"{separator}limit=200&after={cursor}" if cursor else f"{separator}limit=200"), key)
            items += page["items"]
            if not page.get("cursor") or page["cursor"] == cursor or (not page["items"] and not page.get("next")):
                return items
            cursor = page["cursor"]

    def in_order_once(self, name, delivered, expected):
        """`delivered` are (identity, seq); `expected` the committed identities, in ledger order."""
        identities = [identity for identity, _ in delivered]
        seqs = [seq for _, seq in delivered]
        if len(set(identities)) != len(identities):
            self.violation("feed", f"{name}: {len(identities) - len(set(identities))} items delivered more than once")
        if any(a >= b for a, b in zip(seqs, seqs[1:])):
            self.violation("feed", f"{name}: items out of ledger order")
        if identities != expected:
            missing = set(expected) - set(identities)
            self.violation("feed", f"{name}: {len(identities)} delivered, {len(expected)} committed, {len(missing)} missing")
        self.feeds[name] = len(identities)

    async def check_feeds(self):
        self.feeds = {}
        claims = await self.walk("/v1/claims/feed", self.keys["insurer"])
        expected = self.cluster.sql(f"""
            SELECT e.claim_id, e.kind FROM claim_events e JOIN ledger_entries l ON l.queue_id = e.queue_id
            WHERE e.insurer_org = '{self.orgs["insurer"]}' AND e.kind IN ('submitted', 'cancelled') ORDER BY l.seq""")
        self.in_order_once("claims feed", [((i["claimId"], i["event"]), i["ledgerSeq"]) for i in claims],
                           [(claim, "claim." + kind) for claim, kind in expected])
        responses = await self.walk("/v1/claims/responses/feed", self.keys["hospital_a"])
        expected = self.cluster.sql(f"""
            SELECT e.claim_id FROM claim_events e JOIN ledger_entries l ON l.queue_id = e.queue_id
            WHERE e.hospital_org = '{self.orgs["hospital_a"]}' AND e.kind = 'adjudicated' ORDER BY l.seq""")
        self.in_order_once("claim responses feed", [(i["claimId"], i["ledgerSeq"]) for i in responses], [row[0] for row in expected])
        inbox = await self.walk("/v1/exchanges?box=inbox", self.keys["hospital_b"])
        expected = self.cluster.sql(f"""
            SELECT x.id FROM exchanges x JOIN ledger_entries l ON l.queue_id = x.sent_queue_id
            WHERE x.recipient_org = '{self.orgs["hospital_b"]}' ORDER BY l.seq""")
        self.in_order_once("exchange inbox", [(i["exchangeId"], i["ledgerSeq"]) for i in inbox], [row[0] for row in expected])
        for name, path, key, table, seq_field in [("supply alerts feed", "/v1/supply/alerts", "maker", "supply_alerts", "cursor"),
                                                   ("device alerts feed", "/v1/devices/alerts", "hospital_a", "device_alerts", "seq")]:
            delivered = await self.walk(path, self.keys[key])
            expected = self.cluster.sql(f"""
                SELECT a.id FROM {table} a JOIN ledger_entries l ON l.queue_id = a.queue_id
                WHERE '{self.orgs[key]}' = ANY(a.parties) ORDER BY l.seq""")
            self.in_order_once(name, [(i["id"], int(i[seq_field])) for i in delivered], [row[0] for row in expected])

    def report(self, seconds):
        kinds = sorted({op.kind for op in self.operations})
        print(f"\nFault injection: {seconds:.0f} s of load, {len(self.operations)} operations, {sum(self.faults.values())} faults\n")
        print("| operation | sent | acknowledged | failed | unknown | attempts | 5xx answers | no answer |")
        print("|---|---|---|---|---|---|---|---|")
        for kind in kinds + ["all"]:
            ops = [op for op in self.operations if kind in ("all", op.kind)]
            outcome = lambda name: sum(1 for op in ops if op.outcome == name)
            attempts = sum(len(op.answers) for op in ops)
            fives = sum(1 for op in ops for s in op.answers if s is not None and s >= 500)
            none = sum(1 for op in ops for s in op.answers if s is None)
            print(f"| {kind} | {len(ops)} | {outcome('acknowledged')} | {outcome('failed')} | {outcome('unknown')} | {attempts} | {fives} | {none} |")
        failed = {}
        for op in self.operations:
            if op.outcome == "failed":
                reason = f"{op.kind} {op.answers[-1]} {(op.response or {}).get('error', '')}"
                failed[reason] = failed.get(reason, 0) + 1
        if failed:
            print("\nFailed, by last answer: " + ", ".join(f"{reason} x{n}" for reason, n in sorted(failed.items())))
        print("\n| fault | injected |\n|---|---|")
        for fault, n in sorted(self.faults.items()):
            print(f"| {fault} | {n} |")
        print(f"\nChecks: {self.replayed} acknowledged writes replayed; ledger {self.ledger_size} entries; "
              f"verify --database exit {self.verify_exit}; feeds walked: "
              + ", ".join(f"{name} {n} items" for name, n in self.feeds.items()))
        print(f"Violations: {len(self.violations)}")
        by_category = {}
        for category, text in self.violations:
            by_category.setdefault(category, []).append(text)
        for category, texts in sorted(by_category.items()):
            print(f"  {category}: {len(texts)}")
            for text in texts[:3]:
                print("    - " + (text if len(text) <= 600 else text[:600] + "..."))
        if self.violations:
            with open(f"{self.args.work}/violations.txt", "w") as out:
                out.writelines(f"{category}: {text}\n" for category, text in self.violations)

    async def run(self):
        if self.bouncer:
            self.bouncer.start()
        for instance in self.instances:
            instance.start()
        proxy = await RoundRobin([i.port for i in self.instances]).serve(self.proxy_port)
        for instance in self.instances:
            await self.http.wait_ready(instance.port)
        await self.setup()
        started = time.monotonic()
        clients = [asyncio.create_task(self.client(n)) for n in range(self.args.clients)]
        injector = asyncio.create_task(self.inject())
        await asyncio.sleep(self.args.seconds)
        self.stopping = True
        await injector
        for instance in self.instances:
            if not instance.alive():
                instance.start()
        await asyncio.gather(*clients)
        seconds = time.monotonic() - started
        for instance in self.instances:
            await self.http.wait_ready(instance.port)
        await self.account()
        self.report(seconds)
        for instance in self.instances:
            instance.kill()
        proxy.close()
        return 1 if self.violations else 0


def script_parser(doc, port, port_help="the port the server listens on"):
    """The flags Tests/Faults/run.sh passes every script (binary, cluster, work folder, admin key), and its port."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True)
    parser.add_argument("--cluster", required=True, help="the cluster directory (pg-cluster.sh's DIR)")
    parser.add_argument("--work", required=True, help="where the instances' logs go")
    parser.add_argument("--admin-key", required=True)
    parser.add_argument("--port", type=int, default=port, help=port_help)
    return parser


def run_script(test, cleanup):
    """Runs `test.run()` and exits with its code, cleaning up however it ends."""
    try:
        code = asyncio.run(test.run())
    finally:
        cleanup()
    sys.exit(code)


def main():
    parser = script_parser(__doc__, 18480, "the round robin's port; the instances take the next two")
    parser.add_argument("--seconds", type=float, default=75)
    parser.add_argument("--clients", type=int, default=12)
    parser.add_argument("--patients", type=int, default=8)
    parser.add_argument("--fault-every", type=float, nargs=2, default=[4, 6], metavar=("MIN", "MAX"), help="seconds between faults")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--pgbouncer", action="store_true", help="the instances reach PostgreSQL through PgBouncer in transaction mode")
    args = parser.parse_args()
    print(f"seed {args.seed}", flush=True)
    harness = Harness(args)

    def cleanup():
        for instance in harness.instances:
            instance.kill()
        if harness.bouncer:
            harness.bouncer.stop()
    run_script(harness, cleanup)


if __name__ == "__main__":
    main()
