import Foundation
import Testing

/// Runs the real `careledger serve` binary: start, answer /health over a socket, stop on SIGTERM.
@Suite struct ServeProcessTests {
    @Test func serveAnswersHealthAndExitsCleanlyOnSIGTERM() async throws {
        let process = Process()
        process.executableURL = RepositoryPaths.executable
        process.arguments = ["serve", "--port", "0"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let listening = try #require(try readLine(containing: "\"listening\"", from: output.fileHandleForReading))
        let json = try #require(try JSONSerialization.jsonObject(with: Data(listening.utf8)) as? [String: Any])
        let port = try #require(json["port"] as? Int)
        let reply = try run("/usr/bin/env", ["curl", "-s", "-w", " %{http_code}", "http://127.0.0.1:\(port)/health"])
        #expect(reply.output == #"{"status":"ok"} 200"#)
        process.terminate()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let rest = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(rest.contains(#""route":"/health","status":200"#))
        #expect(rest.contains(#""msg":"stopped""#))
    }

    private func readLine(containing marker: String, from handle: FileHandle) throws -> String? {
        var buffer = ""
        while true {
            let chunk = handle.availableData
            guard !chunk.isEmpty else { return nil }
            buffer += String(decoding: chunk, as: UTF8.self)
            if let line = buffer.split(separator: "\n").first(where: { $0.contains(marker) }) { return String(line) }
        }
    }
}
