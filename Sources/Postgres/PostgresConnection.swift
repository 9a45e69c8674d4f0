import CLibPQ
#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Synchronization
import IOLoop

/// One libpq connection. Statements go through libpq's non-blocking API driven by socket events
/// (`PostgresQueryDriver`): no thread waits on the database, so many connections share a few
/// threads, as pgbench's do. The blocking `executeScript` exists only for a connection no driver has
/// touched: the LISTEN connection, which watches its socket itself.
///
/// `@unchecked Sendable` is sound because the connection is used by one holder at a time (the pool
/// hands it out exclusively) and that holder awaits each call before making the next, so libpq is
/// never entered from two threads at once; `preparedStatements` is only touched inside those calls,
/// each ordered after the previous one by the awaited continuation.
public final class PostgresConnection: @unchecked Sendable {
    private let owner: PostgresHandle
    private var handle: OpaquePointer { owner.pointer }
    private let driver: PostgresQueryDriver
    private var preparedStatements: [String: String] = [:]
    private let broken = Atomic<Bool>(false)
    /// Statements prepared at most: 512, or none behind a transaction pooler.
    private let preparedStatementLimit: Int

    private init(handle: OpaquePointer, loop: IOEventLoop, prepares: Bool) {
        owner = PostgresHandle(handle)
        driver = PostgresQueryDriver(owner: owner, loop: loop)
        preparedStatementLimit = prepares ? 512 : 0
    }

    /// The event loop that reads this connection's answers: a task running on it (see
    /// `IOEventLoop`) is resumed without a thread hop.
    public var eventLoop: IOEventLoop { driver.eventLoop }

    var eventLoopIndex: Int { driver.eventLoopIndex }

    /// Has `loop` read this connection's answers from the next statement on; for the pool, before it
    /// hands the connection to a task running on `loop`.
    func move(to loop: IOEventLoop) {
        driver.move(to: loop)
    }

    deinit {
        driver.close()
    }

    /// Opens a connection from a libpq URI or conninfo string, on a background queue. The session is
    /// set to UTC and ISO dates so timestamps decode exactly. Its answers are read on `loop`, by
    /// default the caller's own loop if it runs on one.
    /// Without `prepares`, every statement runs unnamed (for a transaction pooler).
    public static func connect(_ conninfo: String, connectTimeout: Duration, prepares: Bool = true,
                               loop: IOEventLoop = IOEventLoop.current ?? .next()) async throws -> PostgresConnection {
        try await withCheckedThrowingContinuation { continuation in
            // A serial queue of its own gets a thread of its own: the global queue runs only as many
            // threads as there are cores, and connects that block through an outage would hold them all.
            DispatchQueue(label: "careledger.postgres.connect").async {
                continuation.resume(with: Result { try connectBlocking(conninfo, connectTimeout: connectTimeout, prepares: prepares, loop: loop) })
            }
        }
    }

    static func connectBlocking(_ conninfo: String, connectTimeout: Duration, prepares: Bool = true,
                                loop: IOEventLoop = .next()) throws(PostgresError) -> PostgresConnection {
        PostgresConnection(handle: try openSession(conninfo, connectTimeout: connectTimeout), loop: loop, prepares: prepares)
    }

    /// Opens a libpq connection, blocking, and sets the session up: UTC and ISO dates, so timestamps
    /// decode exactly, and notices dropped (by default they go to stderr, and they can quote data).
    static func openSession(_ conninfo: String, connectTimeout: Duration) throws(PostgresError) -> OpaquePointer {
        let seconds = max(1, Int(connectTimeout.components.seconds))
        // Keywords after dbname override the conninfo's own, so only defaults go here; session
        // settings are SET below, leaving any `options` in the caller's conninfo intact.
        let keywords = ["connect_timeout", "application_name", "dbname"]
        let values = [String(seconds), "careledger", conninfo]
        let handle = withCStringArray(keywords) { keywordPointers in
            withCStringArray(values) { valuePointers in
                PQconnectdbParams(keywordPointers, valuePointers, 1)
            }
        }
        guard let handle else { throw PostgresError(.connectionFailed, message: "out of memory") }
        guard PQstatus(handle) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(handle)).trimmingTrailingNewlines()
            PQfinish(handle)
            throw PostgresError(.connectionFailed, message: message)
        }
        PQsetNoticeProcessor(handle, { _, _ in }, nil)
        do {
            _ = try rowsOrError(PQexec(handle, "SET TimeZone TO 'UTC'; SET DateStyle TO 'ISO'"), handle: handle)
        } catch {
            PQfinish(handle)
            throw error
        }
        return handle
    }

    /// Whether libpq still considers the connection usable.
    public var isHealthy: Bool { !broken.load(ordering: .acquiring) && PQstatus(handle) == CONNECTION_OK }

    /// Marks the connection unusable; the pool closes it instead of reusing it.
    public func markBroken() {
        broken.store(true, ordering: .releasing)
    }

    /// The socket, for LISTEN.
    var socket: Int32 { PQsocket(handle) }

    /// Runs SQL text that may hold several statements and no parameters, blocking; only for a
    /// connection no driver has used.
    func executeScript(_ sql: String) throws(PostgresError) {
        let result = PQexec(handle, sql)
        _ = try check(result)
    }

    /// Turns a result into rows or the server's error, and notices a broken connection.
    @discardableResult
    private func check(_ result: OpaquePointer?) throws(PostgresError) -> PostgresRows {
        do {
            return try rowsOrError(result, handle: handle)
        } catch {
            if error.kind == .connectionLost { preparedStatements = [:] }
            throw error
        }
    }

    // MARK: Non-blocking statements

    /// Runs a parameterized statement without blocking a thread, preparing it once per connection.
    @discardableResult
    public func query(_ query: PostgresQuery) async throws(PostgresError) -> PostgresRows {
        let parameters = query.binds
        do {
            if let name = preparedStatements[query.sql] {
                return try await driver.run(.executePrepared(name: name, parameters: parameters))
            }
            guard preparedStatements.count < preparedStatementLimit else {
                return try await driver.run(.execute(sql: query.sql, parameters: parameters))
            }
            let name = "s\(preparedStatements.count)"
            try await driver.run(.prepare(name: name, sql: query.sql, parameterCount: parameters.count))
            preparedStatements[query.sql] = name
            return try await driver.run(.executePrepared(name: name, parameters: parameters))
        } catch {
            if error.kind == .connectionLost { markBroken() }
            throw error
        }
    }

    /// Runs parameterless SQL, possibly several statements, without blocking a thread.
    public func script(_ sql: String) async throws(PostgresError) {
        do {
            try await driver.run(.script(sql))
        } catch {
            if error.kind == .connectionLost { markBroken() }
            throw error
        }
    }

    // MARK: LISTEN support

    /// Reads whatever arrived on the socket and returns pending notifications; throws when the
    /// connection broke. Only the LISTEN connection uses this, on its own queue.
    func consumeNotifications() throws(PostgresError) -> [(channel: String, payload: String)] {
        var notifications = try consumeOnce()
        // The server may have sent its last words and closed; a second non-blocking read sees the EOF
        // now, since no further read event may come for it.
        notifications += try consumeOnce()
        return notifications
    }

    /// Puts the socket in non-blocking mode, so reading never waits for data that is not there.
    func makeNonBlocking() throws(PostgresError) {
        guard PQsetnonblocking(handle, 1) == 0 else {
            throw PostgresError(.client, message: String(cString: PQerrorMessage(handle)).trimmingTrailingNewlines())
        }
    }

    private func consumeOnce() throws(PostgresError) -> [(channel: String, payload: String)] {
        // libpq may read a termination message and the EOF in one call, close the socket itself and
        // still report success; the status is the only sign, and without it no read event ever comes.
        guard PQconsumeInput(handle) == 1, PQstatus(handle) == CONNECTION_OK else {
            throw PostgresError(.connectionLost, message: String(cString: PQerrorMessage(handle)).trimmingTrailingNewlines())
        }
        var notifications: [(String, String)] = []
        while let notification = PQnotifies(handle) {
            notifications.append((String(cString: notification.pointee.relname), String(cString: notification.pointee.extra)))
            PQfreemem(notification)
        }
        return notifications
    }
}

extension String {
    func trimmingTrailingNewlines() -> String {
        var copy = self
        while copy.last?.isNewline == true { copy.removeLast() }
        return copy
    }
}

/// Calls `body` with a NULL-terminated array of C strings that live for the call.
func withCStringArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer { pointers.forEach { free($0) } }
    return pointers.withUnsafeBufferPointer { buffer in
        buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buffer.count) { body($0) }
    }
}

/// Calls `body` with libpq's parameter arrays for `binds`: values (NULL for SQL NULL), lengths (read
/// only for binary values) and formats (0 text, 1 binary). libpq copies the values into its output
/// buffer, so they need live only for the call.
func withParameters<R>(
    _ binds: [PostgresBind],
    _ body: (_ values: UnsafePointer<UnsafePointer<CChar>?>?, _ lengths: UnsafePointer<Int32>?, _ formats: UnsafePointer<Int32>?) throws(PostgresError) -> R
) throws(PostgresError) -> R {
    if binds.isEmpty { return try body(nil, nil, nil) }
    var lengths = [Int32](repeating: 0, count: binds.count)
    var formats = [Int32](repeating: 0, count: binds.count)
    var pointers: [UnsafeMutablePointer<CChar>?] = []
    pointers.reserveCapacity(binds.count)
    for (index, bind) in binds.enumerated() {
        if let text = bind.text {
            pointers.append(strdup(text))
        } else if let binary = bind.binary {
            guard let copy = malloc(max(1, binary.count)) else { fatalError("out of memory") }
            binary.withUnsafeBytes { if let base = $0.baseAddress { _ = memcpy(copy, base, $0.count) } }
            pointers.append(copy.assumingMemoryBound(to: CChar.self))
            lengths[index] = Int32(binary.count)
            formats[index] = 1
        } else {
            pointers.append(nil)
        }
    }
    defer { pointers.forEach { free($0) } }
    let constPointers = pointers.map { $0.map { UnsafePointer($0) } }
    return try constPointers.withUnsafeBufferPointer { values throws(PostgresError) in
        try lengths.withUnsafeBufferPointer { lengths throws(PostgresError) in
            try formats.withUnsafeBufferPointer { formats throws(PostgresError) in
                try body(values.baseAddress, lengths.baseAddress, formats.baseAddress)
            }
        }
    }
}

/// Owns the PGconn: it is finished only when the last holder (the connection, or a Dispatch source's
/// cancel handler still watching the socket) lets go, so the socket is never closed under a source.
final class PostgresHandle: @unchecked Sendable {
    // @unchecked: the pointer is immutable; calls through it are serialized by the connection's users.
    let pointer: OpaquePointer

    init(_ pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit {
        PQfinish(pointer)
    }
}

/// Rows for a successful result, or the error it carries; takes ownership of `result`.
func rowsOrError(_ result: OpaquePointer?, handle: OpaquePointer) throws(PostgresError) -> PostgresRows {
    let status = result.map(PQresultStatus) ?? PGRES_FATAL_ERROR
    switch status {
    case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
        return PostgresRows(result: result)
    default:
        defer { if let result { PQclear(result) } }
        if PQstatus(handle) != CONNECTION_OK {
            throw PostgresError(.connectionLost, message: String(cString: PQerrorMessage(handle)).trimmingTrailingNewlines())
        }
        guard let result else {
            throw PostgresError(.client, message: String(cString: PQerrorMessage(handle)).trimmingTrailingNewlines())
        }
        func field(_ code: Character) -> String? {
            guard let ascii = code.asciiValue, let pointer = PQresultErrorField(result, Int32(ascii)) else { return nil }
            return String(cString: pointer)
        }
        throw PostgresError(
            .server, message: field("M") ?? String(cString: PQresultErrorMessage(result)).trimmingTrailingNewlines(),
            sqlState: field("C"), detail: field("D"), constraint: field("n"))
    }
}
