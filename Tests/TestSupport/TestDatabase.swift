import Foundation
import Postgres

/// Test databases: every test gets its own schema (or its own database) so no state is shared.
public enum TestDatabase {
    public static var url: String {
        get throws {
            guard let url = ProcessInfo.processInfo.environment["DATABASE_URL"], !url.isEmpty else {
                throw PostgresError(.client, message: "DATABASE_URL is not set; run ./deploy/test.sh")
            }
            return url
        }
    }

    public static func uniqueName(_ prefix: String) -> String {
        "\(prefix)_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16))"
    }

    /// `url` with `key=value` added to its query string.
    public static func url(_ base: String, adding key: String, _ value: String) -> String {
        let encoded = value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? value
        return base + (base.contains("?") ? "&" : "?") + "\(key)=\(encoded)"
    }

    /// Every test session's statements and lock waits have a deadline, so a statement stuck behind
    /// a lock fails the test that made it (SQLSTATE 57014 or 55P03) instead of hanging the run.
    public static let statementDeadlines = "-c statement_timeout=120s -c lock_timeout=60s"

    /// A pool whose connections see only a fresh schema; the schema is dropped afterwards.
    public static func withSchema<T: Sendable>(
        maxConnections: Int = 4, acquireTimeout: Duration = .seconds(2), multiplexing: Bool = true,
        pipelineStall: Duration = .milliseconds(10), _ body: (PostgresPool) async throws -> T
    ) async throws -> T {
        try await admitted {
            try await freshSchema(maxConnections: maxConnections, acquireTimeout: acquireTimeout, multiplexing: multiplexing,
                                  pipelineStall: pipelineStall, body)
        }
    }

    private static func freshSchema<T: Sendable>(
        maxConnections: Int, acquireTimeout: Duration, multiplexing: Bool, pipelineStall: Duration,
        _ body: (PostgresPool) async throws -> T
    ) async throws -> T {
        let base = try url
        let schema = uniqueName("t")
        let admin = PostgresPool(configuration: .init(conninfo: base))
        try await admin.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA \(schema)"))
        var configuration = PostgresPool.Configuration(conninfo: url(base, adding: "options", "-c search_path=\(schema) \(statementDeadlines)"))
        configuration.maxConnections = maxConnections
        configuration.acquireTimeout = acquireTimeout
        configuration.multiplexing = multiplexing
        configuration.pipelineStall = pipelineStall
        let pool = PostgresPool(configuration: configuration)
        do {
            let value = try await body(pool)
            pool.closeIdle()
            try await admin.query(PostgresQuery(unsafeSQL: "DROP SCHEMA \(schema) CASCADE"))
            return value
        } catch {
            pool.closeIdle()
            _ = try? await admin.query(PostgresQuery(unsafeSQL: "DROP SCHEMA \(schema) CASCADE"))
            throw error
        }
    }

    /// A fresh database (for migrations, which own the whole schema); dropped afterwards.
    public static func withDatabase<T: Sendable>(_ body: (String) async throws -> T) async throws -> T {
        try await admitted { try await freshDatabase(body) }
    }

    private static func freshDatabase<T: Sendable>(_ body: (String) async throws -> T) async throws -> T {
        let base = try url
        let name = uniqueName("db")
        let admin = PostgresPool(configuration: .init(conninfo: base))
        try await admin.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"))
        let drop = PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
        do {
            let value = try await body(url(url(base, adding: "dbname", name), adding: "options", statementDeadlines))
            try await admin.query(drop)
            return value
        } catch {
            _ = try? await admin.query(drop)
            throw error
        }
    }

    // MARK: Admission

    /// How many tests may use the database at once. Swift Testing starts every test together; on a
    /// two-core machine a few hundred migrating, polling and timing tests at once only thrash, and
    /// the tests that measure a rate or a deadline then fail for want of CPU, not for a fault.
    public static let slots = ProcessInfo.processInfo.environment["CARELEDGER_TEST_DATABASE_SLOTS"].flatMap { Int($0) }
        .map { max(1, $0) } ?? 2 * max(1, ProcessInfo.processInfo.activeProcessorCount)

    private static let admission = Admission(slots: slots)

    /// Set while a test holds a slot: a test that opens a second schema (or a task it started)
    /// uses the slot it has, so tests never wait on one another for a second slot.
    @TaskLocal private static var holdsSlot = false

    private static func admitted<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        if holdsSlot { return try await body() }
        await admission.enter()
        do {
            let value = try await $holdsSlot.withValue(true) { try await body() }
            await admission.leave()
            return value
        } catch {
            await admission.leave()
            throw error
        }
    }
}

/// A counting semaphore for tasks, first come first served.
private actor Admission {
    private var free: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(slots: Int) { free = slots }

    func enter() async {
        if free > 0 {
            free -= 1
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func leave() {
        if waiting.isEmpty {
            free += 1
        } else {
            waiting.removeFirst().resume()
        }
    }
}
