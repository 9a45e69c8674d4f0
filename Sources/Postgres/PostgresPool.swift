import Dispatch
import Synchronization
import IOLoop

/// A bounded pool of connections. Callers wait at most `acquireTimeout` for a connection and then get
/// `PostgresError(.poolTimeout)`, so a request never hangs on the database. Broken connections are
/// dropped and replaced on demand, so the pool recovers by itself when PostgreSQL comes back.
public final class PostgresPool: Sendable {
    /// Pool settings.
    public struct Configuration: Sendable {
        /// libpq URI or conninfo string.
        public var conninfo: String
        /// Connections at most.
        public var maxConnections: Int = 16
        /// How long a caller waits for a free connection (or a new one to open).
        public var acquireTimeout: Duration = .seconds(2)
        /// libpq's connect_timeout (whole seconds, at least 1).
        public var connectTimeout: Duration = .seconds(2)
        /// Whether reads by `query` from a task running on an event loop share that loop's pipelined,
        /// read-only connection (`PostgresPipeline`) instead of taking a connection of their own.
        /// Those connections, one per loop that reads, come on top of `maxConnections`: like the
        /// LISTEN connection, they are a fixed few, and counting them in would take connections
        /// from the writes, which need many to share WAL flushes.
        public var multiplexing = true
        /// How long the oldest statement on a pipeline may have waited before callers go elsewhere:
        /// reads take well under a millisecond, so this means a slow one holds up the rest.
        public var pipelineStall: Duration = .milliseconds(10)
        /// `conninfo` reaches PostgreSQL through a transaction-mode pooler (PgBouncer with
        /// `pool_mode = transaction`), which may run each transaction on another server connection:
        /// statements then run unnamed (a named one would be prepared on one server connection and
        /// executed on another), and no pipelined connections are kept (their session setting would
        /// stay on a server connection other clients get). Implies `multiplexing` off.
        public var transactionPooler = false
        /// Where the connections that keep session state go (LISTEN, session advisory locks): the
        /// database itself, when `conninfo` is a transaction pooler; nil for `conninfo`.
        public var sessionConninfo: String?

        /// The conninfo of connections that keep session state.
        public var sessionTarget: String { sessionConninfo ?? conninfo }

        /// Settings for `conninfo` with the defaults above.
        public init(conninfo: String) {
            self.conninfo = conninfo
        }
    }

    /// What a waiting caller is handed.
    private enum Grant: Sendable {
        case connection(PostgresConnection)
        /// A slot freed up: open a new connection in it.
        case openNew
    }

    /// An event loop's pipelined connection.
    private enum PipelineSlot {
        case none
        case opening
        case open(PostgresPipeline)
        /// Opening failed; not tried again before then, so an outage is not hammered per statement.
        case failed(retryAfter: ContinuousClock.Instant)
    }

    private struct State {
        var pipelines: [PipelineSlot] = Array(repeating: .none, count: IOEventLoop.all.count)
        var idle: [PostgresConnection] = []
        var open = 0
        var inUse = 0
        var nextWaiter: UInt64 = 0
        var waiters: [(id: UInt64, deadline: DispatchTime, continuation: CheckedContinuation<Grant, any Error>)] = []

        var openPipelines: [PostgresPipeline] {
            pipelines.compactMap { slot in if case .open(let pipeline) = slot { pipeline } else { nil } }
        }
        /// Whether a sweep for expired waiters is scheduled (at most one at a time).
        var sweeping = false
    }

    /// A snapshot for metrics and tests.
    public struct Statistics: Sendable, Equatable {
        public let open: Int
        public let idle: Int
        public let inUse: Int
        public let waiting: Int
        /// Pipelined read-only connections, shared by their loop's reads (not counted in `open`).
        public let pipelined: Int
    }

    /// The settings.
    public let configuration: Configuration
    private let state = Mutex(State())
    private let sweepQueue = DispatchQueue(label: "careledger.postgres.pool-sweep")

    /// A pool that opens connections lazily.
    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    deinit {
        // The loops hold the pipelines (they watch their sockets) until they are closed.
        state.withLock { $0.openPipelines }.forEach { $0.close() }
    }

    /// Current counts.
    public var statistics: Statistics {
        state.withLock { state in
            Statistics(open: state.open, idle: state.idle.count, inUse: state.inUse, waiting: state.waiters.count,
                       pipelined: state.openPipelines.count)
        }
    }

    /// Closes every idle connection and the pipelined ones, failing statements still in flight on
    /// those (in-use connections are dropped when released if broken).
    public func closeIdle() {
        dropIdle()
        state.withLock { $0.openPipelines }.forEach(retire)
    }

    /// Runs `body` with a connection held exclusively; it goes back to the pool afterwards, or is
    /// dropped if it broke.
    @discardableResult
    public func withConnection<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        let connection = try await acquire()
        do {
            let value = try await body(connection)
            release(connection)
            return value
        } catch {
            release(connection)
            throw error
        }
    }

    /// Runs one statement as its own transaction. A read from a task on an event loop goes on that
    /// loop's pipelined connection (see `Configuration.multiplexing`); anything else, and any statement
    /// the pipeline found to write, on a free connection of its own.
    @discardableResult
    public func query(_ query: PostgresQuery) async throws -> PostgresRows {
        if let pipeline = pipelineForCurrentLoop(), let rows = try await run(query, on: pipeline) {
            return rows
        }
        return try await withConnection { connection in
            try await connection.query(query)
        }
    }

    private func run(_ query: PostgresQuery, on pipeline: PostgresPipeline) async throws(PostgresError) -> PostgresRows? {
        do {
            return try await pipeline.query(query)
        } catch {
            if error.kind == .connectionLost { retire(pipeline) }
            throw error
        }
    }

    // MARK: Pipelines

    /// Statements a pipeline may hold in flight before callers take connections of their own, which
    /// bounds how long a statement can queue behind others.
    private static let pipelineDepth = 64

    private enum PipelineChoice {
        case use(PostgresPipeline)
        case open
        case retire(PostgresPipeline)
        case none
    }

    /// The pipeline of the caller's loop, if it has one with room; opens it in the background the
    /// first time, meanwhile callers take connections of their own.
    private func pipelineForCurrentLoop() -> PostgresPipeline? {
        guard configuration.multiplexing, !configuration.transactionPooler, let loop = IOEventLoop.current else { return nil }
        let choice = state.withLock { state -> PipelineChoice in
            switch state.pipelines[loop.index] {
            case .open(let pipeline):
                guard pipeline.isUsable else { return .retire(pipeline) }
                let hasRoom = pipeline.inFlight < Self.pipelineDepth && pipeline.oldestWait < configuration.pipelineStall
                return hasRoom ? .use(pipeline) : .none
            case .opening:
                return .none
            case .failed(let retryAfter) where ContinuousClock.now < retryAfter:
                return .none
            case .none, .failed:
                state.pipelines[loop.index] = .opening
                return .open
            }
        }
        switch choice {
        case .use(let pipeline): return pipeline
        case .open: openPipeline(on: loop)
        case .retire(let pipeline): retire(pipeline)
        case .none: break
        }
        return nil
    }

    private func openPipeline(on loop: IOEventLoop) {
        let configuration = configuration
        // Blocking connect on a thread of its own, as in `PostgresConnection.connect`.
        DispatchQueue(label: "careledger.postgres.connect").async { [weak self] in
            let opened = try? PostgresPipeline(
                handle: PostgresConnection.openSession(configuration.conninfo, connectTimeout: configuration.connectTimeout), loop: loop)
            guard let self else { return opened?.close() ?? () }
            self.state.withLock { state in
                state.pipelines[loop.index] = opened.map { .open($0) } ?? .failed(retryAfter: .now + .seconds(1))
            }
        }
    }

    /// Takes a broken (or no longer wanted) pipeline out of service.
    private func retire(_ pipeline: PostgresPipeline) {
        let removed = state.withLock { state -> Bool in
            guard case .open(let current) = state.pipelines[pipeline.loop.index], current === pipeline else { return false }
            state.pipelines[pipeline.loop.index] = .none
            return true
        }
        guard removed else { return }
        // A broken one means the server probably restarted: idle connections are as dead.
        if !pipeline.isUsable { dropIdle() }
        pipeline.close()
    }

    // MARK: Acquire and release

    private enum Plan {
        case use(PostgresConnection)
        case openNew
        case wait(UInt64)
    }

    private func acquire() async throws -> PostgresConnection {
        // A task running on an event loop gets a connection of that loop when one is idle, else one
        // moved to it (two epoll_ctl calls): answers are read on the thread that goes on with the task.
        let home = IOEventLoop.current
        let homeIndex = home?.index ?? -1
        let plan = state.withLock { state -> Plan in
            if homeIndex >= 0, let index = state.idle.lastIndex(where: { $0.eventLoopIndex == homeIndex }) {
                state.inUse += 1
                return .use(state.idle.remove(at: index))
            }
            if let connection = state.idle.popLast() {
                state.inUse += 1
                return .use(connection)
            }
            if state.open < configuration.maxConnections {
                state.open += 1
                state.inUse += 1
                return .openNew
            }
            state.nextWaiter += 1
            return .wait(state.nextWaiter)
        }
        let connection: PostgresConnection
        switch plan {
        case .use(let idle):
            connection = idle
        case .openNew:
            return try await openInReservedSlot()
        case .wait(let id):
            switch try await waitForGrant(id: id) {
            case .connection(let granted): connection = granted
            case .openNew: return try await openInReservedSlot()
            }
        }
        if let home, connection.eventLoopIndex != homeIndex { connection.move(to: home) }
        return connection
    }

    private func openInReservedSlot() async throws -> PostgresConnection {
        do {
            return try await PostgresConnection.connect(configuration.conninfo, connectTimeout: configuration.connectTimeout,
                                                        prepares: !configuration.transactionPooler)
        } catch {
            freeSlot()
            throw error
        }
    }

    private func waitForGrant(id: UInt64) async throws -> Grant {
        let deadline = DispatchTime.now() + configuration.acquireTimeout.dispatchInterval
        return try await withCheckedThrowingContinuation { continuation in
            let startSweeping = state.withLock { state -> Bool in
                state.waiters.append((id, deadline, continuation))
                defer { state.sweeping = true }
                return !state.sweeping
            }
            if startSweeping { scheduleSweep() }
        }
    }

    /// One timer for all waiters, not one per wait: a busy pool has waiters all the time, and a
    /// timer per wait (almost always granted before it fires) kept the timer heap churning. Expiry
    /// is late by at most one sweep interval.
    private func scheduleSweep() {
        let interval = min(configuration.acquireTimeout, .milliseconds(50))
        // Its own queue, not the global one: that one runs no more threads than cores, so a few
        // blocked callers elsewhere in the process could delay every expiry.
        sweepQueue.asyncAfter(deadline: .now() + interval.dispatchInterval) { [weak self] in
            self?.sweep()
        }
    }

    private func sweep() {
        let now = DispatchTime.now()
        let (expired, again) = state.withLock { state -> ([CheckedContinuation<Grant, any Error>], Bool) in
            let expired = state.waiters.filter { $0.deadline <= now }.map(\.continuation)
            state.waiters.removeAll { $0.deadline <= now }
            state.sweeping = !state.waiters.isEmpty
            return (expired, state.sweeping)
        }
        for continuation in expired {
            continuation.resume(throwing: PostgresError(.poolTimeout, message: "no database connection became free in time"))
        }
        if again { scheduleSweep() }
    }

    private func release(_ connection: PostgresConnection) {
        guard connection.isHealthy else {
            // The server probably restarted: idle connections are as dead as this one.
            dropIdle()
            return freeSlot()
        }
        let waiter = state.withLock { state -> CheckedContinuation<Grant, any Error>? in
            guard !state.waiters.isEmpty else {
                state.inUse -= 1
                state.idle.append(connection)
                return nil
            }
            return state.waiters.removeFirst().continuation
        }
        waiter?.resume(returning: .connection(connection))
    }

    /// A connection slot is free (its connection broke or never opened): give it to a waiter or drop it.
    private func freeSlot() {
        let waiter = state.withLock { state -> CheckedContinuation<Grant, any Error>? in
            guard !state.waiters.isEmpty else {
                state.open -= 1
                state.inUse -= 1
                return nil
            }
            return state.waiters.removeFirst().continuation
        }
        waiter?.resume(returning: .openNew)
    }

    private func dropIdle() {
        let dropped = state.withLock { state -> [PostgresConnection] in
            let idle = state.idle
            state.idle = []
            state.open -= idle.count
            return idle
        }
        // Connections close in deinit, off the lock.
        _ = dropped
    }
}

extension Duration {
    /// The duration for Dispatch deadlines, in whole nanoseconds.
    var dispatchInterval: DispatchTimeInterval {
        let (seconds, attoseconds) = components
        return .nanoseconds(Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000))
    }
}
