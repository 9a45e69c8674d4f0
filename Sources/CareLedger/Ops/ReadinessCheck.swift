import HTTP
import Postgres

/// Whether this instance can serve: the database answers and every migration it knows is applied.
public struct ReadinessCheck: Sendable {
    private let pool: PostgresPool
    private let migrations: [Migration]

    /// Checks `pool` against the migrations this build ships.
    public init(pool: PostgresPool, migrations: [Migration]) {
        self.pool = pool
        self.migrations = migrations
    }

    /// Throws the error `/ready` answers with when not ready.
    public func check() async throws {
        let pending: [String]
        do {
            pending = try await Migrator(pool: pool).pending(migrations)
        } catch let error as PostgresError where error.isUnavailable {
            throw DatabaseErrorMiddleware.unavailable
        } catch is MigrationError {
            throw Self.notReady("The database schema does not match this build's migrations.")
        }
        guard pending.isEmpty else {
            throw Self.notReady("\(pending.count) migration(s) not applied.")
        }
    }

    private static func notReady(_ message: String) -> HTTPError {
        HTTPError(status: .serviceUnavailable, code: "not_ready", message: message,
                  headers: HTTPHeaders([("Retry-After", "5")]))
    }
}
