@testable import CareLedger
import Ledger
import Crypto
import Foundation
import Postgres
import Synchronization
import Testing
import TestSupport

/// `careledger admin bootstrap` and the curl scripts in deploy/admin/, run for real: the CLI binary,
/// a live `careledger serve`, and bash.
@Suite struct AdminTests {
    private func environment(_ conninfo: String) throws -> [String: String] {
        var environment = try serverEnvironment(conninfo)
        environment["CARELEDGER_BIN"] = RepositoryPaths.executable.path
        return environment
    }

    @Test func bootstrapPrintsTheFirstKeyOnceAndThenRefuses() async throws {
        try await TestDatabase.withDatabase { conninfo in
            let environment = try environment(conninfo)
            #expect(try await runProcess(RepositoryPaths.executable, ["migrate"], environment: environment).status == 0)
            // Two at once: the advisory lock lets exactly one mint the first key.
            async let first = runProcess(RepositoryPaths.executable, ["admin", "bootstrap"], environment: environment)
            async let second = runProcess(RepositoryPaths.executable, ["admin", "bootstrap"], environment: environment)
            let results = try await [first, second]
            #expect(results.map(\.status).sorted() == [0, 3])
            let winner = try #require(results.first { $0.status == 0 })
            let json = try #require(try JSONSerialization.jsonObject(with: Data(winner.stdout.utf8)) as? [String: String])
            #expect(Set(json.keys) == ["orgId", "keyId", "apiKey"])
            #expect(json["apiKey"]?.hasPrefix("clk_\(json["keyId"] ?? "?")_") == true)
            let loser = try #require(results.first { $0.status == 3 })
            #expect(loser.stdout.isEmpty && loser.stderr.contains("an admin key already exists"))
            let again = try await runProcess(RepositoryPaths.executable, ["admin", "bootstrap"], environment: environment)
            #expect(again.status == 3)
            let usage = try await runProcess(RepositoryPaths.executable, ["admin"], environment: environment)
            #expect(usage.status == 64 && usage.stderr.contains("missing subcommand"))
        }
    }

    @Test func everyAdminScriptWorksAgainstALiveServer() async throws {
        try await TestDatabase.withDatabase { conninfo in
            let server = try ServerProcess(environment: try environment(conninfo))
            defer { server.stop() }
            var environment = try environment(conninfo)
            environment["CARELEDGER_URL"] = "http://127.0.0.1:\(server.port)"
            let scripts = RepositoryPaths.root.appendingPathComponent("deploy/admin")
            func script(_ name: String, _ arguments: [String] = [], extra: [String: String] = [:]) async throws -> ProcessResult {
                try await runProcess(scripts.appendingPathComponent(name), arguments, environment: environment.merging(extra) { $1 })
            }
            func json(_ result: ProcessResult) throws -> [String: Any] {
                try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result)")
            }

            let bootstrap = try await script("bootstrap.sh")
            #expect(bootstrap.status == 0, "\(bootstrap.stderr)")
            let adminKey = try #require(try json(bootstrap)["apiKey"] as? String)
            environment["CARELEDGER_API_KEY"] = adminKey
            #expect(try await script("bootstrap.sh").status == 3)

            let whoami = try await script("whoami.sh")
            #expect(whoami.status == 0)
            #expect(try json(whoami)["role"] as? String == "admin")
            let created = try await script("create-org.sh", ["Clinic \"Nord\"", "hospital"])
            let orgId = try #require(try json(created)["id"] as? String)
            #expect((try json(created)["name"] as? String) == "Clinic \"Nord\"")
            let listed = try await script("list-orgs.sh")
            #expect(((try json(listed)["items"] as? [[String: Any]]) ?? []).contains { $0["id"] as? String == orgId })

            let issued = try await script("issue-key.sh", [orgId, "hospital", "front desk"], extra: ["EXPIRES_AT": "2099-01-01T00:00:00Z"])
            let hospitalKey = try #require(try json(issued)["apiKey"] as? String)
            let keyId = try #require(try json(issued)["keyId"] as? String)
            #expect((try json(issued)["label"] as? String) == "front desk")
            let patientKey = try await script("issue-key.sh", [orgId, "patient"], extra: ["PATIENT_ID": "pat_06h161e40yjs3kwrwyv5pywpzg"])
            #expect(patientKey.status == 0, "\(patientKey.stderr)")
            let keys = try await script("list-keys.sh", [orgId])
            #expect(((try json(keys)["items"] as? [[String: Any]]) ?? []).count == 2)
            #expect(!keys.stdout.contains(String(hospitalKey.split(separator: "_").last!)))

            let asHospital = try await script("whoami.sh", extra: ["CARELEDGER_API_KEY": hospitalKey])
            #expect((try json(asHospital)["orgId"] as? String) == orgId)
            let suspended = try await script("suspend-org.sh", [orgId])
            #expect((try json(suspended)["status"] as? String) == "suspended")
            let refused = try await script("whoami.sh", extra: ["CARELEDGER_API_KEY": hospitalKey])
            #expect(refused.status == 1 && refused.stdout.isEmpty && refused.stderr.contains("HTTP 401 unauthenticated"))
            #expect(try await script("reactivate-org.sh", [orgId]).status == 0)
            #expect(try await script("whoami.sh", extra: ["CARELEDGER_API_KEY": hospitalKey]).status == 0)
            let revoked = try await script("revoke-key.sh", [orgId, keyId])
            #expect((try json(revoked)["status"] as? String) == "revoked")
            #expect(try await script("whoami.sh", extra: ["CARELEDGER_API_KEY": hospitalKey]).status == 1)

            let maker = try #require(try json(try await script("create-org.sh", ["Maker", "manufacturer"]))["id"] as? String)
            let bound = try await script("bind-company-prefix.sh", [maker, "4012345"])
            #expect(bound.status == 0, "\(bound.stderr)")
            #expect((try json(bound)["prefix"] as? String) == "4012345")
            #expect(try await script("bind-company-prefix.sh", [orgId, "0614141"]).stderr.contains("HTTP 400"))
            let site = try await script("bind-location.sh", [maker, "4012345000115", "Plant 1"])
            #expect((try json(site)["gln"] as? String) == "4012345000115", "\(site.stderr)")
            #expect(try await script("bind-location.sh", [orgId, "4012345000115", "Taken"]).stderr.contains("HTTP 409"))
            #expect(try await script("bind-location.sh", [maker, "4012345000116", "Bad"]).stderr.contains("check digit"))

            // Errors carry the server's words and a non-zero status; bad usage is 64.
            let badKind = try await script("create-org.sh", ["X", "castle"])
            #expect(badKind.status == 1 && badKind.stderr.contains("HTTP 400 bad_request: 'kind' must be one of"))
            let forbidden = try await script("list-orgs.sh", extra: ["CARELEDGER_API_KEY": String(patientKey.stdout.split(separator: "\"").first { $0.hasPrefix("clk_") } ?? "")])
            #expect(forbidden.status == 1 && forbidden.stderr.contains("HTTP 403 forbidden"))
            #expect(try await script("revoke-key.sh", [orgId]).status == 64)
            let unreachable = try await script("whoami.sh", extra: ["CARELEDGER_URL": "http://127.0.0.1:1"])
            #expect(unreachable.status == 1 && unreachable.stderr.contains("cannot reach"))

            // No secret ever reaches the server's log.
            let log = server.stop()
            #expect(log.contains(#""route":"/v1/orgs/{orgId}/keys""#))
            for key in [adminKey, hospitalKey] {
                #expect(!log.contains(String(key.split(separator: "_").last!)), "a key secret reached the log")
            }
        }
    }
}

/// Two real server processes on one database append concurrently; only one sequences at a time,
/// and the result is one dense log that verifies.
@Suite struct TwoInstanceTests {
    @Test func twoServersAppendToOneDenseLogThatVerifies() async throws {
        try await TestDatabase.withDatabase { conninfo in
            let environment = try serverEnvironment(conninfo)
            let adminKey = try await migrateAndBootstrap(environment)
            let first = try ServerProcess(environment: environment, arguments: ["--no-migrate"])
            let second = try ServerProcess(environment: environment, arguments: ["--no-migrate"])
            defer {
                first.stop()
                second.stop()
            }
            func call(_ port: Int, _ method: String, _ path: String, key: String, body: String? = nil) async throws -> Data {
                var arguments = ["curl", "-s", "-X", method, "-H", "Authorization: Bearer \(key)", "http://127.0.0.1:\(port)\(path)"]
                if let body { arguments += ["-H", "Content-Type: application/json", "--data-binary", body] }
                return Data(try await runProcess(URL(fileURLWithPath: "/usr/bin/env"), arguments, environment: [:]).stdout.utf8)
            }
            func field(_ data: Data, _ name: String) -> Any? {
                (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?[name]
            }
            let org = try #require(field(try await call(first.port, "POST", "/v1/orgs", key: adminKey, body: #"{"name":"Lab","kind":"hospital"}"#), "id") as? String)
            let key = try #require(field(try await call(first.port, "POST", "/v1/orgs/\(org)/keys", key: adminKey, body: #"{"role":"hospital"}"#), "apiKey") as? String)
            let results = try await withThrowingTaskGroup(of: Data.self) { group in
                for index in 0..<40 {
                    let port = index % 2 == 0 ? first.port : second.port
                    let hash = SHA256.hexDigest(Array("doc \(index)".utf8))
                    let body = #"{"hash":"sha256:\#(hash)","kind":"report","reference":"r\#(index)"}"#
                    group.addTask { try await call(port, "POST", "/v1/ledger/anchors", key: key, body: body) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let seqs = results.compactMap { field($0, "seq") as? Int }
            #expect(seqs.count == 40 && Set(seqs).count == 40, "\(results.filter { field($0, "seq") == nil }.map { String(decoding: $0, as: UTF8.self) })")
            first.stop()
            second.stop()
            let verify = try await runProcess(RepositoryPaths.executable, ["verify", "--database"], environment: environment)
            #expect(verify.status == 0, "\(verify.stderr)")
            let pool = PostgresPool(configuration: .init(conninfo: conninfo))
            let rows = try await pool.query("SELECT count(*) AS n, max(seq) AS top FROM ledger_entries WHERE type = 'anchor'")
            #expect(try rows[0].decode("n", as: Int.self) == 40)
            pool.closeIdle()
        }
    }
}

@Suite struct MonitorTests {
    /// `careledger verify --url`, as a witness would run it: first run trusts and saves the head,
    /// later runs prove consistency with it; a server showing a shorter log is caught.
    @Test func theMonitorFollowsTheLogAndCatchesAShrink() async throws {
        try await TestDatabase.withDatabase { conninfo in
            var environment = try serverEnvironment(conninfo)
            let keyPath = try #require(environment["CARELEDGER_SIGNING_KEY_FILE"])
            environment.removeValue(forKey: "CARELEDGER_API_KEY")
            let server = try ServerProcess(environment: environment, arguments: ["--ledger-public", "--log-origin", "monitor.test/log"])
            defer { server.stop() }
            let signing = try Ed25519PrivateKey(pem: String(decoding: try Data(contentsOf: URL(fileURLWithPath: keyPath)), as: UTF8.self))
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("monitor-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let keyFile = folder.appendingPathComponent("log.pub"), headFile = folder.appendingPathComponent("trusted-head")
            try NoteVerifier(name: "monitor.test/log", publicKey: signing.publicKey).text.write(to: keyFile, atomically: true, encoding: .utf8)
            let url = "http://127.0.0.1:\(server.port)"
            func monitor(_ extra: [String] = []) async throws -> ProcessResult {
                try await runProcess(RepositoryPaths.executable, ["verify", "--url", url, "--key", keyFile.path, "--trusted-head", headFile.path] + extra, environment: environment)
            }
            // Something in the log: three entries queued straight into the database, through the queue's insert.
            let pool = PostgresPool(configuration: .init(conninfo: conninfo))
            defer { pool.closeIdle() }
            let queue = LedgerStore()
            for index in 0..<3 {
                try await queue.enqueue(LedgerItem(type: "note", actor: "x", ref: "r\(index)", hash: "sha256:" + String(repeating: "0", count: 64)), on: pool)
            }
            func signedSize() async throws -> Int64 {
                try await pool.query("SELECT coalesce(max(tree_size), 0) AS n FROM ledger_heads")[0].decode("n", as: Int64.self)
            }
            try await waitUntil("the server signs the three entries") { try await signedSize() == 3 }
            let first = try await monitor(["--full"])
            #expect(first.status == 0 && first.stdout.contains(#""entriesChecked":3"#), "\(first.stdout) \(first.stderr)")
            try await queue.enqueue(LedgerItem(type: "note", actor: "x", ref: "r9", hash: "sha256:" + String(repeating: "1", count: 64)), on: pool)
            try await waitUntil("the server signs the fourth") { try await signedSize() == 4 }
            let second = try await monitor()
            #expect(second.status == 0 && second.stdout.contains(#""previousSize":3"#) && second.stdout.contains(#""treeSize":4"#), "\(second.stdout) \(second.stderr)")
            // A trusted head the server can no longer extend (as if entries were cut off).
            let bigger = try SignedNote.sign(text: Checkpoint(origin: "monitor.test/log", size: 10, rootHash: SHA256.digest([1])).text, name: "monitor.test/log", key: signing)
            try bigger.write(to: headFile, atomically: true, encoding: .utf8)
            let shrunk = try await monitor()
            #expect(shrunk.status == 1 && shrunk.stderr.contains("rolled back from 10 to 4 entries") && shrunk.stderr.contains("first missing sequence number is 4"), "\(shrunk.stderr)")
            let wrongKey = folder.appendingPathComponent("other.pub")
            try Base64.encode(try Ed25519PrivateKey().publicKey.rawRepresentation).write(to: wrongKey, atomically: true, encoding: .utf8)
            let impostor = try await runProcess(RepositoryPaths.executable, ["verify", "--url", url, "--key", wrongKey.path], environment: environment)
            #expect(impostor.status == 1 && impostor.stderr.contains("not signed by the pinned key"))
        }
    }
}

/// Exchanges end to end over real sockets against a `careledger serve` process: official FHIR
/// examples go through unchanged, their hashes agree with an independent RFC 8785 implementation
/// (PyPI `rfc8785`), strangers see nothing, and tampering in the database is found by verify.
@Suite struct ExchangeSocketTests {
    @Test func officialFHIRExamplesTravelAndTheirHashesAreIndependentlyRight() async throws {
        try await TestDatabase.withDatabase { conninfo in
            let environment = try serverEnvironment(conninfo)
            let admin = try await migrateAndBootstrap(environment)
            let server = try ServerProcess(environment: environment, arguments: ["--no-migrate", "--key-rate-limit", "10000"])
            defer { server.stop() }
            func call(_ method: String, _ path: String, key: String, body: String? = nil, file: String? = nil) async throws -> (status: Int, body: String) {
                var arguments = ["curl", "-s", "-w", "\n%{http_code}", "-X", method, "-H", "Authorization: Bearer \(key)", "http://127.0.0.1:\(server.port)\(path)"]
                if let body { arguments += ["-H", "Content-Type: application/json", "--data-binary", body] }
                if let file { arguments += ["-H", "Content-Type: application/json", "--data-binary", "@\(file)"] }
                let result = try await runProcess(URL(fileURLWithPath: "/usr/bin/env"), arguments, environment: [:])
                let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
                return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
            }
            func field(_ text: String, _ name: String) -> String? {
                (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])?[name] as? String
            }
            let orgA = try #require(field(try await call("POST", "/v1/orgs", key: admin, body: #"{"name":"A","kind":"hospital"}"#).body, "id"))
            let orgB = try #require(field(try await call("POST", "/v1/orgs", key: admin, body: #"{"name":"B","kind":"hospital"}"#).body, "id"))
            let orgC = try #require(field(try await call("POST", "/v1/orgs", key: admin, body: #"{"name":"C","kind":"hospital"}"#).body, "id"))
            let keyA = try #require(field(try await call("POST", "/v1/orgs/\(orgA)/keys", key: admin, body: #"{"role":"hospital","rateLimitPerSecond":10000}"#).body, "apiKey"))
            let keyC = try #require(field(try await call("POST", "/v1/orgs/\(orgC)/keys", key: admin, body: #"{"role":"hospital"}"#).body, "apiKey"))
            let patient = try #require(field(try await call("POST", "/v1/patients", key: keyA, file: SharedFiles.url("fixtures/fhir/patient-example.json").path).body, "id"))
            let consent = try await call("POST", "/v1/patients/\(patient)/consents", key: keyA,
                                         body: #"{"grantee":{"orgId":"\#(orgB)"},"purposes":["TREAT"],"categories":["*"],"evidenceHash":"sha256:\#(String(repeating: "c", count: 64))"}"#)
            #expect(consent.status == 201)

            var sentIds: [String] = []
            for name in ["bundle-example.json", "observation-example-bloodpressure.json", "allergyintolerance-example.json", "medicationrequest0301.json"] {
                let path = SharedFiles.url("fixtures/fhir/\(name)").path
                let document = try String(contentsOfFile: path, encoding: .utf8)
                let sent = try await call("POST", "/v1/exchanges", key: keyA,
                                          body: #"{"to":"\#(orgB)","patient":"\#(patient)","purpose":"TREAT","category":"clinical-note","document":\#(document)}"#)
                #expect(sent.status == 201, "\(name): \(sent.body)")
                let reference = try await runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c",
                    "import rfc8785, json, hashlib, sys; print('sha256:' + hashlib.sha256(rfc8785.dumps(json.load(open(sys.argv[1])))).hexdigest())", path],
                    environment: ProcessInfo.processInfo.environment)
                #expect(field(sent.body, "documentHash") == reference.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "\(name)")
                sentIds.append(try #require(field(sent.body, "id")))
            }
            // C can neither read B's exchanges nor send about this patient; A cannot send to C without consent.
            #expect(try await call("GET", "/v1/exchanges/\(sentIds[0])", key: keyC).status == 404)
            #expect(try await call("POST", "/v1/exchanges", key: keyC, body: #"{"to":"\#(orgB)","patient":"\#(patient)","purpose":"TREAT","category":"lab","document":{"resourceType":"Observation"}}"#).status == 404)
            #expect(try await call("POST", "/v1/exchanges", key: keyA, body: #"{"to":"\#(orgC)","patient":"\#(patient)","purpose":"TREAT","category":"lab","document":{"resourceType":"Observation"}}"#).status == 403)
            let huge = #"{"to":"\#(orgB)","patient":"\#(patient)","purpose":"TREAT","category":"lab","document":{"resourceType":"Observation","note":"\#(String(repeating: "x", count: 1_100_000))"}}"#
            let hugeFile = FileManager.default.temporaryDirectory.appendingPathComponent("huge-\(UUID().uuidString).json")
            try huge.write(to: hugeFile, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: hugeFile) }
            #expect(try await call("POST", "/v1/exchanges", key: keyA, file: hugeFile.path).status == 413)

            server.stop()
            #expect(try await runProcess(RepositoryPaths.executable, ["verify", "--database"], environment: environment).status == 0)
            let pool = PostgresPool(configuration: .init(conninfo: conninfo))
            defer { pool.closeIdle() }
            // Flip a bit: a fixed byte written over ciphertext already matches it one time in 256.
            try await pool.query("UPDATE exchanges SET document = set_byte(document, 29, get_byte(document, 29) # 1) WHERE id = \(sentIds[1])")
            let broken = try await runProcess(RepositoryPaths.executable, ["verify", "--database"], environment: environment)
            #expect(broken.status == 1 && broken.stderr.contains("exchanges") && broken.stderr.contains("altered"), "\(broken.stderr)")
        }
    }
}

/// The environment of a `careledger` process on `conninfo`, with fresh signing and master keys.
func serverEnvironment(_ conninfo: String) throws -> [String: String] {
    var environment = ProcessInfo.processInfo.environment
    environment["DATABASE_URL"] = conninfo
    environment["CARELEDGER_MIGRATIONS_DIR"] = RepositoryPaths.root.appendingPathComponent("Migrations").path
    environment["CARELEDGER_SIGNING_KEY_FILE"] = try temporarySigningKeyFile()
    environment["CARELEDGER_MASTER_KEY_FILE"] = try temporaryMasterKeyFile()
    return environment
}

/// Migrates the database and returns the first admin key.
func migrateAndBootstrap(_ environment: [String: String]) async throws -> String {
    guard try await runProcess(RepositoryPaths.executable, ["migrate"], environment: environment).status == 0 else { throw HarnessError("migrate failed") }
    let bootstrap = try await runProcess(RepositoryPaths.executable, ["admin", "bootstrap"], environment: environment)
    guard let key = try JSONDecoder().decode([String: String].self, from: Data(bootstrap.stdout.utf8))["apiKey"] else { throw HarnessError("no admin key") }
    return key
}
