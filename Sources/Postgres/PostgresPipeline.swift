import CLibPQ
#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import IOLoop

/// One connection in libpq's pipeline mode (libpq docs, "Pipeline Mode"), shared by the tasks of one
/// event loop for statements that stand alone: the pool's `query`.
///
/// Why: with a connection per statement, every statement wakes a backend of its own, and on a small
/// machine those wake-ups (a context switch, often an interrupt to the other core) cost more than the
/// statement. Here the statements of all the loop's tasks queue on one backend, which reads several
/// per wake-up, and their answers come back several per read.
///
/// Each statement is followed by its own Sync, so it is its own implicit transaction, exactly as on a
/// connection of its own: a failing statement fails alone and never rolls back a neighbour's. The
/// price is that a slow statement delays the ones queued behind it, so the pool caps the depth and
/// sends nothing more here while the oldest statement has waited long (`oldestWait`).
///
/// Only reads stay here. A durable commit waits for its WAL flush, and on one backend the commits
/// queue one flush each, where sixteen backends share one (`Benchmarks/db.sh`, 16 tasks: 9.6k jsonb
/// inserts/s pipelined, 23.5–26.4k on connections of their own). So the session is read-only: a statement
/// that writes is refused (SQLSTATE 25006) before it changes anything, and the pool runs it, and that
/// SQL text from then on, on a connection of its own.
///
/// `@unchecked Sendable` is sound because all mutable state is touched only while holding `lock`:
/// `query`, `close` and `socketReady` take it, and continuations are resumed after releasing it.
final class PostgresPipeline: IOWatcher, @unchecked Sendable {
    /// One caller's statement in flight.
    private struct Entry {
        let continuation: UnsafeContinuation<PostgresRows?, any Error>
        let sql: String
        /// When it was sent, in `monotonicNanoseconds`.
        let sentAt: Int
        /// Statements whose results (each closed by a null from PQgetResult) are still to come: 2
        /// when a Prepare goes ahead of the Execute, else 1; at 0 the Sync is next.
        var statementsLeft: Int
        /// The statement being prepared ahead of the Execute, recorded as prepared if that works.
        var preparing: (sql: String, name: String)?
        var rows: PostgresRows?
        var error: PostgresError?
    }

    private typealias Completion = (continuation: UnsafeContinuation<PostgresRows?, any Error>, result: Result<PostgresRows?, PostgresError>)

    /// What the pipeline knows of a SQL text.
    private enum Statement {
        case prepared(name: String)
        /// Refused as a write: never sent here again.
        case writes
    }

    let loop: IOEventLoop
    private let owner: PostgresHandle
    private var handle: OpaquePointer { owner.pointer }
    private let lock = Mutex<Void>(())
    /// In send order; `head` is the oldest unanswered, and the slots before it are spent.
    private var entries: [Entry] = []
    private var head = 0
    private var completions: [Completion] = []
    private var statements: [String: Statement] = [:]
    private var preparing: Set<String> = []
    private var preparedNames = 0
    private var registration: (token: UInt64, descriptor: Int32)?
    private var writeArmed = false
    private let broken = Atomic<Bool>(false)
    private let depth = Atomic<Int>(0)
    /// When the oldest unanswered statement was sent; 0 when none is.
    private let oldestSentAt = Atomic<Int>(0)
    private static let preparedStatementLimit = 512

    /// Makes an open connection no driver has used read-only and puts it into non-blocking pipeline
    /// mode, watched by `loop`.
    init(handle: OpaquePointer, loop: IOEventLoop) throws(PostgresError) {
        owner = PostgresHandle(handle)
        self.loop = loop
        _ = try rowsOrError(PQexec(handle, "SET default_transaction_read_only TO on"), handle: handle)
        guard PQsetnonblocking(handle, 1) == 0, PQenterPipelineMode(handle) == 1 else {
            throw PostgresError(.client, message: String(cString: PQerrorMessage(handle)).trimmingTrailingNewlines())
        }
        let descriptor = PQsocket(handle)
        guard descriptor >= 0, let token = loop.register(descriptor, self, readable: true, writable: false) else {
            throw PostgresError(.connectionLost, message: "the connection has no socket")
        }
        registration = (token, descriptor)
    }

    /// False once the connection broke; the pool then opens another.
    var isUsable: Bool { !broken.load(ordering: .acquiring) }

    /// Statements sent and not yet answered.
    var inFlight: Int { depth.load(ordering: .relaxed) }

    /// How long the oldest unanswered statement has waited (zero when none has): long means a slow
    /// statement holds up the ones behind it.
    var oldestWait: Duration {
        let sentAt = oldestSentAt.load(ordering: .relaxed)
        return sentAt == 0 ? .zero : .nanoseconds(max(0, monotonicNanoseconds() - sentAt))
    }

    /// Runs one statement, queued behind those already sent; nil when it writes, and so must run on a
    /// connection of its own (it changed nothing here).
    func query(_ query: PostgresQuery) async throws(PostgresError) -> PostgresRows? {
        do {
            return try await withUnsafeThrowingContinuation { continuation in
                let refused = lock.withLock { _ in enqueue(query, continuation) }
                if let refused { continuation.resume(with: refused) }
            }
        } catch let error as PostgresError {
            throw error
        } catch {
            throw PostgresError(.client, message: "unexpected error")
        }
    }

    /// Stops watching the socket (the loop holds the pipeline until then) and fails whatever is still
    /// in flight.
    func close() {
        let failed = lock.withLock { _ in
            breakDown(PostgresError(.connectionLost, message: "the pipelined connection was closed"))
            return takeCompletions()
        }
        failed.forEach { $0.continuation.resume(with: $0.result.mapError { $0 }) }
    }

    func socketReady(readable: Bool, writable: Bool) {
        let done = lock.withLock { _ -> [Completion] in
            guard !broken.load(ordering: .relaxed) else { return [] }
            if writable, writeArmed { flush() }
            if readable { read() }
            return takeCompletions()
        }
        done.forEach { $0.continuation.resume(with: $0.result.mapError { $0 }) }
    }

    // MARK: Holding `lock`

    /// Sends the statement and its Sync; returns the outcome instead when it is not sent.
    private func enqueue(_ query: PostgresQuery, _ continuation: UnsafeContinuation<PostgresRows?, any Error>) -> Result<PostgresRows?, any Error>? {
        guard !broken.load(ordering: .relaxed) else {
            return .failure(PostgresError(.connectionLost, message: "the pipelined connection is closed"))
        }
        let now = monotonicNanoseconds()
        var entry = Entry(continuation: continuation, sql: query.sql, sentAt: now, statementsLeft: 1)
        let count = Int32(query.binds.count)
        let sent: Bool
        let known = statements[query.sql]
        if case .writes = known {
            return .success(nil)
        } else if case .prepared(let name) = known {
            sent = withCParameters(query.binds) { PQsendQueryPrepared(handle, name, count, $0, $1, $2, 0) } == 1
        } else if !preparing.contains(query.sql), statements.count + preparing.count < Self.preparedStatementLimit {
            // A fresh name every time: a Prepare that failed must not leave a name a later one reuses.
            let name = "p\(preparedNames)"
            preparedNames += 1
            preparing.insert(query.sql)
            entry.preparing = (query.sql, name)
            entry.statementsLeft = 2
            sent = PQsendPrepare(handle, name, query.sql, count, nil) == 1
                && withCParameters(query.binds) { PQsendQueryPrepared(handle, name, count, $0, $1, $2, 0) } == 1
        } else {
            // Being prepared by a statement still in flight, or over the limit: the unnamed statement.
            sent = withCParameters(query.binds) { PQsendQueryParams(handle, query.sql, count, nil, $0, $1, $2, 0) } == 1
        }
        // libpq 15's PQpipelineSync also flushes, so each statement leaves in its own write.
        guard sent, PQpipelineSync(handle) == 1 else {
            let error = PostgresError(.connectionLost, message: String(cString: PQerrorMessage(handle)).trimmingTrailingNewlines())
            breakDown(error)
            return .failure(error)
        }
        if head == entries.count { oldestSentAt.store(now, ordering: .relaxed) }
        entries.append(entry)
        depth.add(1, ordering: .relaxed)
        flush()
        return nil
    }

    /// PQflush: 0 all sent, 1 more to send once the socket is writable, -1 failed.
    private func flush() {
        switch PQflush(handle) {
        case 0: watch(writable: false)
        case 1: watch(writable: true)
        default: breakDown(PostgresError(.connectionLost, message: String(cString: PQerrorMessage(handle)).trimmingTrailingNewlines()))
        }
    }

    private func read() {
        guard PQconsumeInput(handle) == 1 else {
            return breakDown(PostgresError(.connectionLost, message: String(cString: PQerrorMessage(handle)).trimmingTrailingNewlines()))
        }
        drainResults()
        // libpq may read a termination message, close the socket itself and still report success;
        // no event ever comes for a closed socket, so its status is the only sign.
        if PQstatus(handle) != CONNECTION_OK {
            breakDown(PostgresError(.connectionLost, message: String(cString: PQerrorMessage(handle)).trimmingTrailingNewlines()))
        }
    }

    private func drainResults() {
        while head < entries.count, !broken.load(ordering: .relaxed), PQisBusy(handle) == 0 {
            let result = PQgetResult(handle)
            if entries[head].statementsLeft == 0 {
                // The Sync's result closes the entry. Nothing yet means it has not arrived.
                guard let result else { return }
                let status = PQresultStatus(result)
                PQclear(result)
                guard status == PGRES_PIPELINE_SYNC else {
                    return breakDown(PostgresError(.client, message: "pipeline out of step: expected a sync, got \(String(cString: PQresStatus(status)))"))
                }
                completeHead()
            } else if let result {
                record(result)
            } else {
                entries[head].statementsLeft -= 1
            }
        }
    }

    private func record(_ result: OpaquePointer) {
        let isPrepare = entries[head].statementsLeft == 2
        if PQresultStatus(result) == PGRES_PIPELINE_ABORTED {
            // Skipped because the Prepare before it failed; that failure is the entry's error.
            PQclear(result)
            if entries[head].error == nil {
                entries[head].error = PostgresError(.client, message: "statement skipped after an earlier failure")
            }
            return
        }
        do {
            let rows = try rowsOrError(result, handle: handle)
            if isPrepare {
                if let statement = entries[head].preparing {
                    preparing.remove(statement.sql)
                    if statements[statement.sql] == nil { statements[statement.sql] = .prepared(name: statement.name) }
                }
            } else {
                entries[head].rows = rows
            }
        } catch {
            if isPrepare, let statement = entries[head].preparing { preparing.remove(statement.sql) }
            if entries[head].error == nil { entries[head].error = error }
        }
    }

    private func completeHead() {
        let entry = entries[head]
        head += 1
        depth.subtract(1, ordering: .relaxed)
        oldestSentAt.store(head < entries.count ? entries[head].sentAt : 0, ordering: .relaxed)
        if head == entries.count {
            entries.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 64, head * 2 >= entries.count {
            entries.removeFirst(head)
            head = 0
        }
        let result: Result<PostgresRows?, PostgresError>
        if let error = entry.error {
            if error.sqlState == "25006" {
                statements[entry.sql] = .writes
                result = .success(nil)
            } else {
                result = .failure(error)
            }
        } else {
            result = .success(entry.rows ?? PostgresRows(result: nil))
        }
        completions.append((entry.continuation, result))
    }

    /// Marks the connection broken, stops watching it and fails every statement in flight.
    private func breakDown(_ error: PostgresError) {
        broken.store(true, ordering: .releasing)
        if let registration {
            loop.unregister(PQsocket(handle) == registration.descriptor ? registration.descriptor : nil, token: registration.token)
            self.registration = nil
        }
        for entry in entries[head...] {
            completions.append((entry.continuation, .failure(error)))
        }
        depth.store(0, ordering: .relaxed)
        oldestSentAt.store(0, ordering: .relaxed)
        entries.removeAll()
        head = 0
    }

    private func takeCompletions() -> [Completion] {
        defer { completions.removeAll(keepingCapacity: true) }
        return completions
    }

    private func watch(writable: Bool) {
        guard writable != writeArmed, let registration else { return }
        _ = loop.modify(registration.descriptor, token: registration.token, readable: true, writable: writable)
        writeArmed = writable
    }
}

/// CLOCK_MONOTONIC in nanoseconds (never 0 on a running system): an Int, so it fits an Atomic.
private func monotonicNanoseconds() -> Int {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return now.tv_sec * 1_000_000_000 + now.tv_nsec
}
