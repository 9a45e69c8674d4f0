@testable import CareLedger
import Crypto
import Dispatch
import Foundation
import HTTP
import IOLoop
import Synchronization
import Telemetry
import Postgres
import TestSupport

/// A migrated throwaway schema, the whole API router over it, and the first admin key: requests go
/// straight to the router, as the server would hand them over.
struct APIHarness: Sendable {
    let pool: PostgresPool
    let router: Router
    let routes: [RouteDescription]
    let adminKey: String
    let platformOrg: String
    let ledger: LedgerService

    /// Limits high enough that only the rate-limit tests meet them; made anew for each harness, as
    /// the buckets are shared by every copy of the value, and tests must not share them.
    static var generousLimits: AccessLimits {
        var limits = AccessLimits()
        limits.keyRequestsPerSecond = 100_000
        limits.authFailuresPerMinute = 100_000
        return limits
    }

    /// `runningLedger` starts the sequencer, waiter and listener (three more connections); without
    /// it the log has just its signed size-0 head, which is all most tests need.
    static func with<T: Sendable>(limits: AccessLimits = generousLimits, runningLedger: Bool = false, patientKeys: PatientKeys? = nil,
                                  log: EventLog? = nil, _ body: (APIHarness) async throws -> T) async throws -> T {
        try await TestDatabase.withSchema(maxConnections: 4) { pool in
            try await Migrator(pool: pool).migrate(try Migration.load(directory: OpsRoutesTests.migrationsDirectory))
            let bootstrap = try await Bootstrap.run(pool: pool)
            let ledger = runningLedger ? try LedgerService.started(pool) : try LedgerService.unstarted(pool)
            if !runningLedger { try await ledger.sequencer.sequenceBatch() }
            let (router, routes) = try Application.make(ApplicationContext(pool: pool, migrations: [], log: log, ledger: ledger, patientKeys: try patientKeys ?? .forTests(), limits: limits))
            do {
                let value = try await body(APIHarness(pool: pool, router: router, routes: routes, adminKey: bootstrap.apiKey, platformOrg: bootstrap.orgId, ledger: ledger))
                await ledger.stop()
                return value
            } catch {
                await ledger.stop()
                throw error
            }
        }
    }

    struct Reply: Sendable {
        let response: Response
        var status: Int { response.status.code }
        var text: String { String(decoding: response.body, as: UTF8.self) }
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] ?? [:] }
        var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
        subscript(key: String) -> String? { json[key] as? String }
        var items: [[String: Any]] { json["items"] as? [[String: Any]] ?? [] }
    }

    func call(
        _ method: HTTPMethod, _ path: String, key: String?, body: String? = nil,
        headers: [(String, String)] = [], client: String = "192.0.2.10"
    ) async -> Reply {
        var fields = [("Host", "test")] + headers
        if let key { fields.append(("Authorization", "Bearer \(key)")) }
        if body != nil { fields.append(("Content-Type", "application/json")) }
        let request = Request(
            head: RequestHead(method: method, target: path, version: .http1_1, headers: HTTPHeaders(fields)),
            body: Array((body ?? "").utf8), requestId: "req-\(UUID().uuidString.prefix(8))", clientAddress: client)
        // On an event loop, as the server runs handlers: reads then take the loop's pipelined
        // connection, the path production takes, and the loops take turns as connections would.
        let loop = IOEventLoop.all[Int(Self.nextLoop.wrappingAdd(1, ordering: .relaxed).oldValue % IOEventLoop.all.count)]
        return Reply(response: await withTaskExecutorPreference(loop) { await router.respond(to: request) })
    }

    private static let nextLoop = Atomic<Int>(0)

    /// A new organization's id (made by the admin).
    func createOrg(_ name: String, _ kind: String) async throws -> String {
        let reply = await call(.post, "/v1/orgs", key: adminKey, body: #"{"name":"\#(name)","kind":"\#(kind)"}"#)
        guard reply.status == 201, let id = reply["id"] else { throw HarnessError(reply.text) }
        return id
    }

    /// A new key of `role` in `org`: its id and the secret token.
    func issueKey(_ org: String, _ role: String, extra: String = "") async throws -> (keyId: String, apiKey: String) {
        let reply = await call(.post, "/v1/orgs/\(org)/keys", key: adminKey, body: #"{"role":"\#(role)","label":"test"\#(extra)}"#)
        guard reply.status == 201, let keyId = reply["keyId"], let apiKey = reply["apiKey"] else { throw HarnessError(reply.text) }
        return (keyId, apiKey)
    }

    /// Audit events as rows of column name to text.
    func auditEvents(where condition: String = "true") async throws -> [[String: String?]] {
        let columns = ["request_id", "actor_org", "key_id", "role", "action", "resource_type", "resource_id", "patient_id",
                       "purpose", "decision", "reason", "client_address"]
        let rows = try await pool.query(PostgresQuery(unsafeSQL: "SELECT \(columns.joined(separator: ", ")), row_to_json(a)::text AS whole FROM audit_events a WHERE \(condition) ORDER BY seq"))
        return try rows.all.map { row in
            var values: [String: String?] = [:]
            for column in columns + ["whole"] { values[column] = try row.decode(column, as: String?.self) }
            return values
        }
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs a process to completion, or to its deadline (then it is killed and the test fails).
func runProcess(_ executable: URL, _ arguments: [String], environment: [String: String],
                deadline: Duration = ChildProcess.defaultDeadline) async throws -> ProcessResult {
    try await ChildProcess.run(executable, arguments, environment: environment, deadline: deadline)
}

extension LedgerService {
    /// A running ledger service with a fresh key, sequencing promptly.
    static func started(_ pool: PostgresPool) throws -> LedgerService {
        var settings = LedgerService.Settings()
        settings.sequencingWait = .seconds(5)
        let service = try LedgerService(pool: pool, signer: try LedgerSigner(origin: "test.careledger/log", key: Ed25519PrivateKey()), settings: settings)
        service.start()
        return service
    }

    /// A ledger service that is never started: routes exist, nothing sequences.
    static func unstarted(_ pool: PostgresPool) throws -> LedgerService {
        try LedgerService(pool: pool, signer: try LedgerSigner(origin: "test.careledger/log", key: Ed25519PrivateKey()))
    }
}

/// A throwaway signing key file (PEM, mode 0600) for server processes.
func temporarySigningKeyFile() throws -> String {
    let path = Scratch.path("signing-key", suffix: ".pem")
    guard FileManager.default.createFile(atPath: path, contents: Data(try Ed25519PrivateKey().pemRepresentation().utf8),
                                         attributes: [.posixPermissions: 0o600]) else { throw HarnessError("cannot write \(path)") }
    return path
}

extension PatientKeys {
    static func forTests() throws -> PatientKeys {
        try PatientKeys(masterKey: SecureRandom.bytes(32))
    }
}

/// A throwaway master key file (base64, mode 0600) for server processes.
func temporaryMasterKeyFile() throws -> String {
    let path = Scratch.path("master-key")
    guard FileManager.default.createFile(atPath: path, contents: Data(Base64.encode(SecureRandom.bytes(32)).utf8),
                                         attributes: [.posixPermissions: 0o600]) else { throw HarnessError("cannot write \(path)") }
    return path
}
