import Foundation
import Postgres
import Testing
import TestSupport

/// Runs the real `careledger serve` binary: start, answer /health over a socket, stop on SIGTERM.
@Suite struct ServeProcessTests {
    @Test func serveMigratesAnswersAndExitsCleanlyOnSIGTERM() async throws {
        try await TestDatabase.withDatabase { conninfo in try await serve(conninfo) }
    }

    private func serve(_ conninfo: String) async throws {
        let server = try ServerProcess(environment: try serverEnvironment(conninfo))
        defer { server.stop() }
        let startup = server.outputSoFar
        let migrationCount = try Migration.load(directory: RepositoryPaths.root.appendingPathComponent("Migrations").path).count
        #expect(startup.contains(#""msg":"migrated","applied":\#(migrationCount)"#))
        let reply = try run("/usr/bin/env", ["curl", "-s", "-m", "10", "-w", " %{http_code}", "http://127.0.0.1:\(server.port)/health"])
        #expect(reply.output == #"{"status":"ok"} 200"#)
        let ready = try run("/usr/bin/env", ["curl", "-s", "-m", "10", "-w", " %{http_code}", "http://127.0.0.1:\(server.port)/ready"])
        #expect(ready.output == #"{"status":"ready"} 200"#)
        let all = server.stop()
        #expect(server.terminationStatus == 0)
        #expect(all.contains(#""route":"/health","status":200"#))
        #expect(all.contains(#""msg":"stopped""#))
        #expect(!all.contains(conninfo), "the connection string must never be logged")
    }
}
