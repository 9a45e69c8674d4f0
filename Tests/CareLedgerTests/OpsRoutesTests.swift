import CareLedger
import Foundation
import HTTP
import Postgres
import Testing
import TestSupport
import Telemetry

@Suite struct OpsRoutesTests {
    static let migrationsDirectory = RepositoryPaths.root.appendingPathComponent("Migrations").path

    private func get(_ router: Router, _ path: String) async -> Response {
        await router.respond(to: Request(
            head: RequestHead(method: .get, target: path, version: .http1_1, headers: HTTPHeaders([("Host", "t")])),
            requestId: "rid"))
    }

    private func body(_ response: Response) -> String { String(decoding: response.body, as: UTF8.self) }

    @Test func readyOnlyOnceMigrationsAreApplied() async throws {
        try await TestDatabase.withDatabase { conninfo in
            let pool = PostgresPool(configuration: .init(conninfo: conninfo))
            let migrations = try Migration.load(directory: Self.migrationsDirectory)
            let router = try Application.makeRouter(ApplicationContext(pool: pool, migrations: migrations, log: nil, ledger: try .unstarted(pool), patientKeys: try .forTests()))
            let before = await get(router, "/ready")
            #expect(before.status.code == 503)
            #expect(body(before).contains(#""code":"not_ready""#))
            try await Migrator(pool: pool).migrate(migrations)
            let after = await get(router, "/ready")
            #expect(after.status == .ok && body(after) == #"{"status":"ready"}"#)
            #expect(body(await get(router, "/health")) == #"{"status":"ok"}"#)
        }
    }

    @Test func unreachableDatabaseIsA503WithRetryAfter() async throws {
        let pool = PostgresPool(configuration: .init(conninfo: "postgresql:///x?host=/nonexistent-socket-dir"))
        let router = try Application.makeRouter(ApplicationContext(pool: pool, migrations: [], log: nil, ledger: try .unstarted(pool), patientKeys: try .forTests()))
        let response = await get(router, "/ready")
        #expect(response.status.code == 503)
        #expect(response.headers.first(name: "Retry-After") == "1")
        #expect(body(response) == #"{"error":{"code":"database_unavailable","message":"The database is unavailable; retry shortly.","requestId":"rid"}}"#)
    }

    @Test(arguments: [
        (PostgresError(.poolTimeout, message: "busy"), 503, "database_unavailable"),
        (PostgresError(.connectionLost, message: "gone"), 503, "database_unavailable"),
        (PostgresError(.server, message: "terminating", sqlState: "57P01"), 503, "database_unavailable"),
        (PostgresError(.server, message: "duplicate key value 'secret'", sqlState: "23505", detail: "Key (id)=(secret)"), 500, "internal_error"),
    ])
    func databaseErrorsAreMappedWithoutLeakingDetails(error: PostgresError, status: Int, code: String) async throws {
        let log = CapturingSink()
        var builder = RouterBuilder()
        builder.add(middleware: DatabaseErrorMiddleware(log: EventLog(sink: log)))
        builder.on(.get, "/x") { _ in throw error }
        let response = await get(try builder.build(), "/x")
        #expect(response.status.code == status)
        #expect(body(response).contains(#""code":"\#(code)""#))
        #expect(!body(response).contains("secret") && !log.lines.joined().contains("secret"))
        #expect(log.lines.count == 1)
    }
}

final class CapturingSink: LogSink, @unchecked Sendable {
    // @unchecked: `stored` is only touched under `lock`.
    private let lock = NSLock()
    private var stored: [String] = []
    func write(_ line: String) { lock.withLock { stored.append(line) } }
    func flush() {}
    var lines: [String] { lock.withLock { stored } }
}
