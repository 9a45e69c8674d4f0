import Foundation
import Postgres
import Testing

/// Stops and starts a real PostgreSQL cluster (the second one deploy/test.sh starts for this purpose).
@Suite(.serialized) struct RestartRecoveryTests {
    private static var restartDir: String? { ProcessInfo.processInfo.environment["CARELEDGER_TEST_RESTART_DIR"] }
    private static var restartURL: String? { ProcessInfo.processInfo.environment["CARELEDGER_TEST_RESTART_URL"] }

    static func cluster(_ command: String) throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("deploy/lib/pg-cluster.sh").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = command == "start" ? [script, "start", try #require(restartDir), "careledger", "fast"]
            : [script, command, try #require(restartDir)]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
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
        let restarted = clock.now
        var recovered = false
        while clock.now - restarted < .seconds(5) {
            if (try? await pool.query("SELECT 1 AS one")) != nil {
                recovered = true
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(recovered, "pool must recover within 5 s of PostgreSQL coming back")
    }
}
