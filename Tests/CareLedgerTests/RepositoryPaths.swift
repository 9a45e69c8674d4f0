import Foundation
import TestSupport

/// Locations the tests read: the repository root (found from this file) and ../shared beside it.
enum RepositoryPaths {
    static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var executable: URL {
        let candidates = ["debug", "release"].map { root.appendingPathComponent(".build/\($0)/careledger") }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[0]
    }
}

/// Runs a process to completion (or its deadline) and returns its exit status and combined output.
func run(_ executable: String, _ arguments: [String], deadline: Duration = ChildProcess.defaultDeadline) throws -> (status: Int32, output: String) {
    let result = try ChildProcess.runBlocking(URL(fileURLWithPath: executable), arguments, mergeOutput: true, deadline: deadline)
    return (result.status, result.stdout)
}
