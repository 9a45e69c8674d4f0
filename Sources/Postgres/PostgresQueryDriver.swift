import CLibPQ
#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import IOLoop

/// Runs one statement at a time on a connection through libpq's asynchronous API (libpq docs,
/// "Asynchronous Command Processing"): send, flush, then on each readable event `PQconsumeInput`
/// and `PQgetResult` until the statement's results are complete.
///
/// The statement is sent from the caller's thread (a non-blocking send), and the answer is read on
/// the event loop's thread, which resumes the caller: no thread hop when the caller runs on that
/// loop, else one per statement.
///
/// `@unchecked Sendable` is sound because all mutable state (`pending`, the registration and its
/// flags) is touched only while holding `lock`: `run`, `close` and `socketReady` take it.
final class PostgresQueryDriver: IOWatcher, @unchecked Sendable {
    /// One protocol step.
    enum Step: Sendable {
        case prepare(name: String, sql: String, parameterCount: Int)
        case executePrepared(name: String, parameters: [PostgresBind])
        case execute(sql: String, parameters: [PostgresBind])
        case script(String)
    }

    private struct Completed {
        let continuation: UnsafeContinuation<PostgresRows, any Error>
        let result: Result<PostgresRows, PostgresError>

        func resume() {
            continuation.resume(with: result.mapError { $0 })
        }
    }

    private struct Pending {
        let continuation: UnsafeContinuation<PostgresRows, any Error>
        var result: PostgresRows?
        var error: PostgresError?
    }

    private let owner: PostgresHandle
    /// The loop that watches this connection's socket; changed only between statements (`move`).
    private var loop: IOEventLoop
    /// `loop`'s index, readable without the lock.
    private let loopIndex: Atomic<Int>
    private let lock = Mutex<Void>(())
    private var pending: Pending?
    /// A statement's outcome, handed back after the lock is released: a caller resumed while we still
    /// held it would often run its next statement at once and find the lock taken.
    private var completed: Completed?
    private var registration: (token: UInt64, descriptor: Int32)?
    private var readArmed = false
    private var writeArmed = false
    private var isNonBlocking = false
    private var isClosed = false

    init(owner: PostgresHandle, loop: IOEventLoop) {
        self.owner = owner
        self.loop = loop
        loopIndex = Atomic(loop.index)
    }

    /// The loop that reads this connection's answers.
    var eventLoop: IOEventLoop { IOEventLoop.all[eventLoopIndex] }

    /// Its index in `IOEventLoop.all`, for comparing without touching the loop object.
    var eventLoopIndex: Int { loopIndex.load(ordering: .relaxed) }

    /// Hands the socket to `loop` for the statements to come. Only between statements: the holder
    /// calls this before its first one. An event the old loop already took out of `epoll_wait` may
    /// still arrive, and is handled under the lock like any other.
    func move(to loop: IOEventLoop) {
        lock.withLock { _ in
            guard loop !== self.loop, pending == nil, !isClosed else { return }
            if let registration {
                self.loop.unregister(liveDescriptor(registration), token: registration.token)
                self.registration = nil
                readArmed = false
                writeArmed = false
            }
            self.loop = loop
            loopIndex.store(loop.index, ordering: .relaxed)
        }
    }

    private var handle: OpaquePointer { owner.pointer }

    /// Sends `step` and returns its last result, or the first error among its results.
    ///
    /// An unsafe continuation (a checked one allocates a guard object per statement): each one is
    /// stored once, in `pending` or straight in `completed`, and leaves through `takeCompleted` once.
    @discardableResult
    func run(_ step: Step) async throws(PostgresError) -> PostgresRows {
        do {
            return try await withUnsafeThrowingContinuation { continuation in
                lock.withLock { _ in
                    start(step, continuation)
                    return takeCompleted()
                }?.resume()
            }
        } catch let error as PostgresError {
            throw error
        } catch {
            throw PostgresError(.client, message: "unexpected error")
        }
    }

    /// Stops watching the socket. The handle is finished when the last reference to the driver goes,
    /// which is never while the event loop is inside `socketReady`.
    func close() {
        lock.withLock { _ in
            isClosed = true
            guard let registration else { return }
            loop.unregister(liveDescriptor(registration), token: registration.token)
            self.registration = nil
        }
    }

    func socketReady(readable: Bool, writable: Bool) {
        // If the caller is still inside its send, return: the socket stays ready (level-triggered), so
        // the event comes again in a moment, which is far cheaper than sleeping on the lock.
        let completed = lock.withLockIfAvailable { _ -> Completed? in
            guard !isClosed else { return nil }
            if writable, writeArmed { flush() }
            if readable { self.readable() }
            return takeCompleted()
        }
        completed??.resume()
    }

    // MARK: Holding `lock`

    private func takeCompleted() -> Completed? {
        defer { completed = nil }
        return completed
    }

    private func start(_ step: Step, _ continuation: UnsafeContinuation<PostgresRows, any Error>) {
        guard pending == nil else {
            return completed = Completed(continuation: continuation, result: .failure(PostgresError(.client, message: "connection already busy")))
        }
        if !isNonBlocking {
            guard PQsetnonblocking(handle, 1) == 0 else {
                return completed = Completed(continuation: continuation, result: .failure(connectionError(.connectionLost)))
            }
            isNonBlocking = true
        }
        // A server that went away while the connection sat idle has already been found out by the
        // event loop, which keeps reading between statements (see `readable`).
        guard PQstatus(handle) == CONNECTION_OK, send(step) == 1 else {
            return completed = Completed(continuation: continuation, result: .failure(connectionError(.connectionLost)))
        }
        pending = Pending(continuation: continuation)
        flush()
    }

    private func send(_ step: Step) -> Int32 {
        switch step {
        case .prepare(let name, let sql, let count):
            return PQsendPrepare(handle, name, sql, Int32(count), nil)
        case .executePrepared(let name, let parameters):
            return withCParameters(parameters) { PQsendQueryPrepared(handle, name, Int32(parameters.count), $0, $1, $2, 0) }
        case .execute(let sql, let parameters):
            return withCParameters(parameters) { PQsendQueryParams(handle, sql, Int32(parameters.count), nil, $0, $1, $2, 0) }
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
        let result: Result<PostgresRows, PostgresError> = done.error.map { .failure($0) } ?? .success(done.result ?? PostgresRows(result: nil))
        completed = Completed(continuation: done.continuation, result: result)
    }

    private func fail(_ error: PostgresError) {
        guard let done = pending else { return }
        pending = nil
        setReadArmed(false)
        setWriteArmed(false)
        completed = Completed(continuation: done.continuation, result: .failure(error))
    }

    private func connectionError(_ kind: PostgresError.Kind) -> PostgresError {
        let message = String(cString: PQerrorMessage(handle)).trimmingTrailingNewlines()
        return PQstatus(handle) == CONNECTION_OK ? PostgresError(.client, message: message) : PostgresError(kind, message: message)
    }

    private func setReadArmed(_ armed: Bool) {
        watch(readable: armed, writable: writeArmed)
    }

    private func setWriteArmed(_ armed: Bool) {
        watch(readable: readArmed, writable: armed)
    }

    /// Registers the socket on first use, then changes what it is watched for when that differs.
    private func watch(readable: Bool, writable: Bool) {
        guard !isClosed, readable != readArmed || writable != writeArmed || registration == nil else { return }
        if let registration {
            // A socket libpq has closed left the epoll set with its close; there is nothing to change.
            guard let descriptor = liveDescriptor(registration) else { return }
            loop.modify(descriptor, token: registration.token, readable: readable, writable: writable)
        } else {
            guard readable || writable else { return }
            let descriptor = PQsocket(handle)
            guard descriptor >= 0,
                  let token = loop.register(descriptor, self, readable: readable, writable: writable)
            else { return fail(connectionError(.connectionLost)) }
            registration = (token, descriptor)
        }
        readArmed = readable
        writeArmed = writable
    }

    /// The registered descriptor while libpq still has it open.
    private func liveDescriptor(_ registration: (token: UInt64, descriptor: Int32)) -> Int32? {
        PQsocket(handle) == registration.descriptor ? registration.descriptor : nil
    }
}

/// `withParameters` for a body that cannot fail.
func withCParameters<R>(
    _ binds: [PostgresBind],
    _ body: (UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?) -> R
) -> R {
    (try? withParameters(binds) { values, lengths, formats throws(PostgresError) in body(values, lengths, formats) }) ?? body(nil, nil, nil)
}
