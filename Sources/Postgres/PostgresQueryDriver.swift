import CLibPQ
#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Synchronization

/// The few serial queues on which every connection's socket events are handled. Nothing blocks on
/// them: statements are sent with libpq's non-blocking calls and results read when the socket is
/// readable, so a handful of threads serve any number of connections.
enum PostgresIOQueues {
    private static let queues: [DispatchQueue] = (0..<max(2, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))).map {
        DispatchQueue(label: "careledger.postgres.io-\($0)")
    }
    private static let next = Atomic<Int>(0)

    /// The queue for a new connection, round-robin.
    static func assign() -> DispatchQueue {
        queues[next.wrappingAdd(1, ordering: .relaxed).oldValue % queues.count]
    }
}

/// Runs one statement at a time on a connection through libpq's asynchronous API (libpq docs,
/// "Asynchronous Command Processing"): send, flush, then on each readable event `PQconsumeInput`
/// and `PQgetResult` until the statement's results are complete.
///
/// The statement is sent from the caller's thread (a non-blocking send), and only the wait for its
/// answer happens on the I/O queue, which saves a thread hop per statement.
///
/// `@unchecked Sendable` is sound because all mutable state (`pending`, the sources and their flags)
/// is touched only while holding `lock`: `run`, `close` and both source handlers take it.
final class PostgresQueryDriver: @unchecked Sendable {
    /// One protocol step.
    enum Step: Sendable {
        case prepare(name: String, sql: String, parameterCount: Int)
        case executePrepared(name: String, parameters: [String?])
        case execute(sql: String, parameters: [String?])
        case script(String)
    }

    private struct Pending {
        let continuation: CheckedContinuation<PostgresRows, any Error>
        var result: PostgresRows?
        var error: PostgresError?
    }

    private let owner: PostgresHandle
    private let lock = Mutex<Void>(())
    private let queue = PostgresIOQueues.assign()
    private var pending: Pending?
    private var readSource: (any DispatchSourceProtocol)?
    private var writeSource: (any DispatchSourceProtocol)?
    private var readArmed = false
    private var writeArmed = false
    private var isNonBlocking = false

    init(owner: PostgresHandle) {
        self.owner = owner
    }

    private var handle: OpaquePointer { owner.pointer }

    /// Sends `step` and returns its last result, or the first error among its results.
    @discardableResult
    func run(_ step: Step) async throws(PostgresError) -> PostgresRows {
        do {
            return try await withCheckedThrowingContinuation { continuation in
                lock.withLock { _ in start(step, continuation) }
            }
        } catch let error as PostgresError {
            throw error
        } catch {
            throw PostgresError(.client, message: "unexpected error")
        }
    }

    /// Stops watching the socket; the handle is finished once the sources let go of it.
    func close() {
        lock.withLock { _ in
            for source in [self.readSource, self.writeSource] {
                source?.cancel()
            }
            if let readSource = self.readSource, !self.readArmed { readSource.resume() }
            if let writeSource = self.writeSource, !self.writeArmed { writeSource.resume() }
            self.readSource = nil
            self.writeSource = nil
        }
    }

    // MARK: Holding `lock`

    private func start(_ step: Step, _ continuation: CheckedContinuation<PostgresRows, any Error>) {
        guard pending == nil else {
            return continuation.resume(throwing: PostgresError(.client, message: "connection already busy"))
        }
        if !isNonBlocking {
            guard PQsetnonblocking(handle, 1) == 0 else { return continuation.resume(throwing: connectionError(.connectionLost)) }
            isNonBlocking = true
        }
        // A connection whose server went away while it sat idle is found out here, by a
        // non-blocking read, instead of by waiting for an answer that will never come.
        guard PQconsumeInput(handle) == 1, PQstatus(handle) == CONNECTION_OK, send(step) == 1 else {
            return continuation.resume(throwing: connectionError(.connectionLost))
        }
        pending = Pending(continuation: continuation)
        flush()
    }

    /// libpq copies parameters into its output buffer, so the C strings need live only for the call.
    private func send(_ step: Step) -> Int32 {
        switch step {
        case .prepare(let name, let sql, let count):
            return PQsendPrepare(handle, name, sql, Int32(count), nil)
        case .executePrepared(let name, let parameters):
            return withCParameters(parameters) { PQsendQueryPrepared(handle, name, Int32(parameters.count), $0, nil, nil, 0) }
        case .execute(let sql, let parameters):
            return withCParameters(parameters) { PQsendQueryParams(handle, sql, Int32(parameters.count), nil, $0, nil, nil, 0) }
        case .script(let sql):
            return PQsendQuery(handle, sql)
        }
    }

    /// PQflush: 0 all sent, 1 more to send once the socket is writable (reading meanwhile), -1 failed.
    private func flush() {
        switch PQflush(handle) {
        case 0:
            setWriteArmed(false)
            setReadArmed(true)
        case 1:
            setWriteArmed(true)
            setReadArmed(true)
        default:
            fail(connectionError(.connectionLost))
        }
    }

    private func readable() {
        guard pending != nil else {
            // Between statements the source stays armed (re-arming costs system calls per statement);
            // whatever arrives now (a notice, or the server closing) is consumed so it cannot repeat.
            for _ in 0..<2 where PQconsumeInput(handle) != 1 || PQstatus(handle) != CONNECTION_OK {
                return setReadArmed(false)
            }
            return
        }
        guard PQconsumeInput(handle) == 1 else { return fail(connectionError(.connectionLost)) }
        if writeArmed { flush() }
        drainResults()
        guard pending != nil else { return }
        // A server that sends its last words and closes leaves the EOF unread, and no further read
        // event comes for it; a second non-blocking read finds it now.
        guard PQconsumeInput(handle) == 1, PQstatus(handle) == CONNECTION_OK else {
            return fail(connectionError(.connectionLost))
        }
        drainResults()
    }

    private func drainResults() {
        while pending != nil, PQisBusy(handle) == 0 {
            guard let result = PQgetResult(handle) else { return finish() }
            record(result)
        }
    }

    private func record(_ result: OpaquePointer) {
        do {
            let rows = try rowsOrError(result, handle: handle)
            pending?.result = rows
        } catch {
            if pending?.error == nil { pending?.error = error }
        }
    }

    private func finish() {
        guard let done = pending else { return }
        pending = nil
        setWriteArmed(false)
        if let error = done.error {
            done.continuation.resume(throwing: error)
        } else {
            done.continuation.resume(returning: done.result ?? PostgresRows(result: nil))
        }
    }

    private func fail(_ error: PostgresError) {
        guard let done = pending else { return }
        pending = nil
        setReadArmed(false)
        setWriteArmed(false)
        done.continuation.resume(throwing: error)
    }

    private func connectionError(_ kind: PostgresError.Kind) -> PostgresError {
        let message = String(cString: PQerrorMessage(handle)).trimmingTrailingNewlines()
        return PQstatus(handle) == CONNECTION_OK ? PostgresError(.client, message: message) : PostgresError(kind, message: message)
    }

    private func setReadArmed(_ armed: Bool) {
        arm(&readSource, &readArmed, armed) {
            DispatchSource.makeReadSource(fileDescriptor: PQsocket(handle), queue: queue)
        } onEvent: { driver in driver.readable() }
    }

    private func setWriteArmed(_ armed: Bool) {
        arm(&writeSource, &writeArmed, armed) {
            DispatchSource.makeWriteSource(fileDescriptor: PQsocket(handle), queue: queue)
        } onEvent: { driver in driver.flush() }
    }

    /// Creates the source on first use, then resumes or suspends it to match `armed`. Its cancel
    /// handler keeps the handle (and so the socket) alive until Dispatch is done with it.
    private func arm(
        _ source: inout (any DispatchSourceProtocol)?, _ isArmed: inout Bool, _ armed: Bool,
        make: () -> any DispatchSourceProtocol, onEvent: @escaping @Sendable (PostgresQueryDriver) -> Void
    ) {
        guard let existing = source else {
            guard armed else { return }
            let created = make()
            let owner = self.owner
            created.setEventHandler { [weak self] in
                guard let self else { return }
                // If the caller is still inside its send, return: the socket stays ready, so the
                // source fires again in a moment, which is far cheaper than sleeping on the lock.
                _ = self.lock.withLockIfAvailable { _ in onEvent(self) }
            }
            created.setCancelHandler { withExtendedLifetime(owner) {} }
            source = created
            isArmed = true
            return created.resume()
        }
        guard armed != isArmed else { return }
        isArmed = armed
        armed ? existing.resume() : existing.suspend()
    }
}

/// Calls `body` with C strings for parameter values, NULL where the value is SQL NULL.
private func withCParameters<R>(_ values: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
    (try? withOptionalCStrings(values) { pointers throws(PostgresError) in body(pointers) }) ?? body(nil)
}
