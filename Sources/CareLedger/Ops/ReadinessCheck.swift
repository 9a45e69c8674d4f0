import Postgres

/// Whether this instance can serve: the database answers and every migration it knows is applied.
public struct ReadinessCheck: Sendable {
    /// What the check found.
    enum Outcome: Equatable, Sendable {
        case ready
        case databaseUnavailable
        case notReady(String)
    }

    private let pool: PostgresPool
    private let migrations: [Migration]

    /// Checks `pool` against the migrations this build ships.
    public init(pool: PostgresPool, migrations: [Migration]) {
        self.pool = pool
        self.migrations = migrations
    }

    func check() async throws -> Outcome {
        let pending: [String]
        do {
            pending = try await Migrator(pool: pool).pending(migrations)
        } catch let error as PostgresError where error.isUnavailable {
            return .databaseUnavailable
        } catch is MigrationError {
            return .notReady("The database schema does not match this build's migrations.")
        }
        return pending.isEmpty ? .ready : .notReady("\(pending.count) migration(s) not applied.")
    }
}
