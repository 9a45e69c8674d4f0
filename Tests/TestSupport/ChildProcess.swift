#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// A finished process: status, stdout and stderr apart.
public struct ProcessResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

/// A child process that ran past its deadline and was killed.
public struct ProcessTimedOut: Error, CustomStringConvertible {
    public let description: String
}

/// Runs child processes for tests, each with a deadline: past it the process is killed and the test
/// gets an error naming the command, instead of the run hanging until CI's limit. Output is read on
/// threads of its own as it comes (a full pipe would otherwise stall the child), never on the
/// cooperative pool (in-process servers need its threads).
public enum ChildProcess {
    public static let defaultDeadline: Duration = .seconds(180)

    /// Runs `executable` to completion or until `deadline`, blocking the calling thread.
    public static func runBlocking(
        _ executable: URL, _ arguments: [String], environment: [String: String]? = nil, stdin: String? = nil,
        mergeOutput: Bool = false, deadline: Duration = defaultDeadline
    ) throws -> ProcessResult {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let environment { process.environment = environment }
        let stdout = Pipe()
        let stderr = mergeOutput ? stdout : Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        let input = stdin.map { _ in Pipe() }
        if let input { process.standardInput = input } else { process.standardInput = FileHandle.nullDevice }
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        try process.run()
        if let input, let stdin {
            input.fileHandleForWriting.write(Data(stdin.utf8))
            try? input.fileHandleForWriting.close()
        }
        let readers = DispatchGroup()
        let collected = Collected()
        for (handle, isError) in [(stdout.fileHandleForReading, false)] + (mergeOutput ? [] : [(stderr.fileHandleForReading, true)]) {
            readers.enter()
            Thread.detachNewThread {
                let data = handle.readDataToEndOfFile()
                collected.data.withLock { if isError { $0.err = data } else { $0.out = data } }
                readers.leave()
            }
        }
        let seconds = max(1, Int(deadline.components.seconds))
        if exited.wait(timeout: .now() + .seconds(seconds)) != .success {
            kill(process.processIdentifier, SIGKILL)
            _ = exited.wait(timeout: .now() + .seconds(5))
            _ = readers.wait(timeout: .now() + .seconds(5))
            let output = collected.data.withLock { String(decoding: $0.out + $0.err, as: UTF8.self) }
            throw ProcessTimedOut(description: "\(executable.lastPathComponent) \(arguments.joined(separator: " ")) ran past its \(seconds) s deadline and was killed; it wrote: \(output.suffix(2_000))")
        }
        // Grandchildren holding the pipes open must not hang the test either.
        _ = readers.wait(timeout: .now() + .seconds(10))
        let (out, err) = collected.data.withLock { ($0.out, $0.err) }
        return ProcessResult(status: process.terminationStatus, stdout: String(decoding: out, as: UTF8.self), stderr: String(decoding: err, as: UTF8.self))
    }

    /// `runBlocking` on a thread of its own, for async tests.
    public static func run(
        _ executable: URL, _ arguments: [String], environment: [String: String]? = nil, stdin: String? = nil,
        mergeOutput: Bool = false, deadline: Duration = defaultDeadline
    ) async throws -> ProcessResult {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result {
                    try runBlocking(executable, arguments, environment: environment, stdin: stdin, mergeOutput: mergeOutput, deadline: deadline)
                })
            }
        }
    }
}

private final class Collected: Sendable {
    let data = Mutex<(out: Data, err: Data)>((Data(), Data()))
}
