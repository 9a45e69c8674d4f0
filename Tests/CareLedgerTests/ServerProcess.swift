#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// A `careledger serve` child process on a free port, its output captured. The output is read as it
/// comes, so a busy server never blocks on a full pipe (its log writes would stall it). Every wait
/// has a deadline: a server that never starts, or never stops, fails the test that started it
/// instead of hanging the run.
final class ServerProcess: @unchecked Sendable {
    // @unchecked: `process` is used from the test's task only; `stopped` guards the one-time stop
    // that `defer` may repeat; the captured output is behind its own lock, and the semaphores are
    // thread-safe by themselves.
    private let process = Process()
    private let output = Pipe()
    private let log = CapturedOutput()
    private let exited = DispatchSemaphore(value: 0)
    private var stopped: String?
    let port: Int

    init(environment: [String: String], arguments: [String] = [], startupDeadline: Duration = .seconds(60)) throws {
        process.executableURL = RepositoryPaths.executable
        process.arguments = ["serve", "--port", "0"] + arguments
        process.environment = environment
        process.standardOutput = output
        process.standardError = output
        let exited = self.exited
        process.terminationHandler = { _ in exited.signal() }
        try process.run()
        let handle = output.fileHandleForReading
        let log = self.log
        Thread.detachNewThread {
            var announced = false
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                let text = log.text.withLock { $0 += String(decoding: chunk, as: UTF8.self); return $0 }
                if !announced, text.contains(#""msg":"listening""#) {
                    announced = true
                    log.listening.signal()
                }
            }
            if !announced { log.listening.signal() }
            log.drained.signal()
        }
        guard log.listening.wait(timeout: .now() + .nanoseconds(Int(startupDeadline.components.seconds) * 1_000_000_000)) == .success else {
            kill(process.processIdentifier, SIGKILL)
            throw HarnessError("the server did not start within \(startupDeadline): \(log.text.withLock { $0 })")
        }
        let buffer = log.text.withLock { $0 }
        guard let line = buffer.split(separator: "\n").first(where: { $0.contains(#""msg":"listening""#) }),
              let json = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], let port = json["port"] as? Int else {
            throw HarnessError("the server exited before listening: \(buffer)")
        }
        self.port = port
    }

    /// A migrated, bootstrapped database served with rate limits only the limit tests meet, and a
    /// short sequencing wait: the real binary as the contract and input tests drive it.
    static func serving(_ conninfo: String) async throws -> (server: ServerProcess, adminKey: String) {
        let environment = try serverEnvironment(conninfo)
        let adminKey = try await migrateAndBootstrap(environment)
        let server = try ServerProcess(environment: environment, arguments: [
            "--no-migrate", "--key-rate-limit", "100000", "--auth-failure-limit", "100000", "--sequencing-wait-ms", "50",
        ])
        return (server, adminKey)
    }

    /// The exit status, once stopped (a signal's number when it was killed by one).
    var terminationStatus: Int32 { process.terminationStatus }

    /// Whether the process ends within `timeout` (a request that made it trap has killed it by then).
    func exits(within timeout: Duration) -> Bool {
        guard exited.wait(timeout: .now() + .milliseconds(Int(timeout.components.seconds) * 1000 + Int(timeout.components.attoseconds / 1_000_000_000_000_000))) == .success else {
            return false
        }
        exited.signal()
        return true
    }

    /// Whether the process is still running (a trap or a crash ends it).
    var isRunning: Bool { process.isRunning }

    /// Everything the server has written so far.
    var outputSoFar: String { log.text.withLock { $0 } }

    /// Sends a signal (SIGHUP, to reload TLS files).
    func signal(_ number: Int32) {
        kill(process.processIdentifier, number)
    }

    /// Stops the server (SIGTERM, then SIGKILL if it has not exited within `deadline`) and returns
    /// everything it wrote.
    @discardableResult
    func stop(deadline: Duration = .seconds(20)) -> String {
        if let stopped { return stopped }
        process.terminate()
        let seconds = Int(deadline.components.seconds)
        if exited.wait(timeout: .now() + .seconds(seconds)) != .success {
            kill(process.processIdentifier, SIGKILL)
            _ = exited.wait(timeout: .now() + .seconds(5))
            log.text.withLock { $0 += "\n[test] the server ignored SIGTERM for \(seconds) s and was killed\n" }
        }
        _ = log.drained.wait(timeout: .now() + .seconds(5))
        let all = log.text.withLock { $0 }
        stopped = all
        return all
    }
}

/// What the output reader shares with the test: the text so far, and when it said "listening" and ended.
private final class CapturedOutput: Sendable {
    let text = Mutex("")
    let listening = DispatchSemaphore(value: 0)
    let drained = DispatchSemaphore(value: 0)
}
