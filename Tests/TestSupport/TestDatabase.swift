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
}
