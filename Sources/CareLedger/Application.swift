import HTTP
import Postgres

/// What the application's areas need, built once by the composition root.
public struct ApplicationContext: Sendable {
    /// The database.
    public let pool: PostgresPool
    /// The migrations this build ships, for readiness.
    public let migrations: [Migration]
    /// Application log.
    public let log: EventLog?

    /// Bundles the dependencies.
    public init(pool: PostgresPool, migrations: [Migration], log: EventLog?) {
        self.pool = pool
        self.migrations = migrations
        self.log = log
    }
}

/// The composition of every area's routes into one router.
public enum Application {
    /// Builds the router for the whole API.
    public static func makeRouter(_ context: ApplicationContext) throws -> Router {
        var builder = RouterBuilder()
        builder.add(middleware: DatabaseErrorMiddleware(log: context.log))
        OpsRoutes.register(in: &builder, readiness: ReadinessCheck(pool: context.pool, migrations: context.migrations))
        return try builder.build()
    }
}
