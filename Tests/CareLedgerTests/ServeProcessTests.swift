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
        let process = Process()
        var environment = ProcessInfo.processInfo.environment
        environment["DATABASE_URL"] = conninfo
        environment["CARELEDGER_MIGRATIONS_DIR"] = RepositoryPaths.root.appendingPathComponent("Migrations").path
        environment["CARELEDGER_SIGNING_KEY_FILE"] = try temporarySigningKeyFile()
        environment["CARELEDGER_MASTER_KEY_FILE"] = try temporaryMasterKeyFile()
        process.environment = environment
        process.executableURL = RepositoryPaths.executable
        process.arguments = ["serve", "--port", "0"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let startup = try #require(try readUntil(line: "\"listening\"", from: output.fileHandleForReading))
        let migrationCount = try Migration.load(directory: RepositoryPaths.root.appendingPathComponent("Migrations").path).count
        #expect(startup.contains(#""msg":"migrated","applied":\#(migrationCount)"#))
        let listening = try #require(startup.split(separator: "\n").last.map(String.init))
        let json = try #require(try JSONSerialization.jsonObject(with: Data(listening.utf8)) as? [String: Any])
        let port = try #require(json["port"] as? Int)
        let reply = try run("/usr/bin/env", ["curl", "-s", "-w", " %{http_code}", "http://127.0.0.1:\(port)/health"])
        #expect(reply.output == #"{"status":"ok"} 200"#)
        let ready = try run("/usr/bin/env", ["curl", "-s", "-w", " %{http_code}", "http://127.0.0.1:\(port)/ready"])
        #expect(ready.output == #"{"status":"ready"} 200"#)
        process.terminate()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let rest = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(rest.contains(#""route":"/health","status":200"#))
        #expect(rest.contains(#""msg":"stopped""#))
        #expect(!rest.contains(conninfo), "the connection string must never be logged")
    }

    /// Everything up to and including the first line containing `marker`.
    private func readUntil(line marker: String, from handle: FileHandle) throws -> String? {
        var buffer = ""
        while true {
            let chunk = handle.availableData
            guard !chunk.isEmpty else { return nil }
            buffer += String(decoding: chunk, as: UTF8.self)
            let lines = buffer.split(separator: "\n", omittingEmptySubsequences: false)
            if let index = lines.dropLast().firstIndex(where: { $0.contains(marker) }) {
                return lines[...index].joined(separator: "\n")
            }
        }
    }
}
