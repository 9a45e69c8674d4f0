import Foundation
import CareLedger
import HTTP
import Postgres
import Testing
import TestSupport

/// Stops and starts a real PostgreSQL cluster (the second one deploy/test.sh starts for this purpose).
/// Every test that touches that cluster lives in this one serialized suite.
@Suite(.serialized) struct RestartRecoveryTests {
    private static var restartDir: String? { ProcessInfo.processInfo.environment["CARELEDGER_TEST_RESTART_DIR"] }
    private static var restartURL: String? { ProcessInfo.processInfo.environment["CARELEDGER_TEST_RESTART_URL"] }

    static func cluster(_ command: String) throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("deploy/lib/pg-cluster.sh").path
        let arguments = command == "start" ? [script, "start", try #require(restartDir), "careledger", "fast"]
            : [script, command, try #require(restartDir)]
        let result = try ChildProcess.runBlocking(URL(fileURLWithPath: "/bin/bash"), arguments, deadline: .seconds(60))
        #expect(result.status == 0, "pg-cluster.sh \(command): \(result.stderr)")
    }

    @Test func poolAnswersUnavailableWhileDownAndRecoversWithoutRestart() async throws {
        let url = try #require(Self.restartURL, "run through ./deploy/test.sh")
        var configuration = PostgresPool.Configuration(conninfo: url)
        configuration.acquireTimeout = .milliseconds(500)
        let pool = PostgresPool(configuration: configuration)
        #expect(try await pool.query("SELECT 1 AS one").first?.decode("one", as: Int.self) == 1)
        try Self.cluster("stop")
        let clock = ContinuousClock()
        for _ in 0..<3 {
            let started = clock.now
            let error = await #expect(throws: PostgresError.self) { try await pool.query("SELECT 1 AS one") }
            #expect(error?.isUnavailable == true)
            #expect(clock.now - started < .seconds(3), "must fail fast, never hang")
        }
        try Self.cluster("start")
        // The pool must recover within 5 s of PostgreSQL coming back.
        try await waitUntil("the pool recovers", deadline: .seconds(5), every: .milliseconds(50)) {
            (try? await pool.query("SELECT 1 AS one")) != nil
        }
    }

    @Test func readyAnswers503WhileTheDatabaseIsDownAndRecoversByItself() async throws {
        let url = try #require(Self.restartURL, "run through ./deploy/test.sh")
        var configuration = PostgresPool.Configuration(conninfo: url)
        configuration.acquireTimeout = .milliseconds(500)
        let pool = PostgresPool(configuration: configuration)
        let migrations = try Migration.load(directory: OpsRoutesTests.migrationsDirectory)
        try await Migrator(pool: pool).migrate(migrations)
        let router = try Application.makeRouter(ApplicationContext(pool: pool, migrations: migrations, log: nil, ledger: try .unstarted(pool), patientKeys: try .forTests()))
        func ready() async -> Response {
            await router.respond(to: Request(head: RequestHead(method: .get, target: "/ready", version: .http1_1,
                                                               headers: HTTPHeaders([("Host", "t")])), requestId: "r"))
        }
        #expect(await ready().status == .ok)
        try Self.cluster("stop")
        let clock = ContinuousClock()
        let started = clock.now
        let down = await ready()
        #expect(down.status.code == 503 && down.headers.first(name: "Retry-After") == "1")
        #expect(clock.now - started < .seconds(3))
        try Self.cluster("start")
        // The server must recover within 5 s with no restart.
        try await waitUntil("/ready answers 200", deadline: .seconds(5), every: .milliseconds(50)) { await ready().status == .ok }
    }
}
