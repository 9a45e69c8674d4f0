import Crypto
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One numbered SQL file from Migrations/.
public struct Migration: Sendable, Equatable {
    /// The number before the first underscore, e.g. 1 for `0001_init.sql`.
    public let version: Int
    /// The file name.
    public let name: String
    /// The file's text. It must not contain transaction control: the migrator wraps it in one.
    public let sql: String
    /// Hex SHA-256 of the file's bytes.
    public let checksum: String

    /// Loads every `NNNN_name.sql` in `directory`, in version order.
    public static func load(directory: String) throws -> [Migration] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".sql") }
        var migrations: [Migration] = []
        for name in names {
            let prefix = name.prefix { $0.isNumber }
            guard prefix.count == 4, name.dropFirst(4).first == "_", let version = Int(prefix) else {
                throw MigrationError.badFileName(name)
            }
            let data = try Data(contentsOf: URL(fileURLWithPath: directory).appendingPathComponent(name))
            migrations.append(Migration(
                version: version, name: name, sql: String(decoding: data, as: UTF8.self),
                checksum: SHA256.hexDigest(Array(data))))
        }
        migrations.sort { $0.version < $1.version }
        for (earlier, later) in zip(migrations, migrations.dropFirst()) where earlier.version == later.version {
            throw MigrationError.duplicateVersion(later.version)
        }
        return migrations
    }
}

/// Why migrating stopped. Nothing after the failing step was applied.
public enum MigrationError: Error, Equatable, CustomStringConvertible {
    case badFileName(String)
    case duplicateVersion(Int)
    /// An applied migration's file changed since; applied migrations are immutable.
    case checksumMismatch(name: String, applied: String, onDisk: String)
    /// The database has a migration this build does not know (a newer build migrated it).
    case unknownApplied(version: Int, name: String)
    case failed(name: String, message: String)

    public var description: String {
        switch self {
        case .badFileName(let name):
            return "migration file \(name) must be named NNNN_description.sql"
        case .duplicateVersion(let version):
            return "two migration files have version \(version)"
        case .checksumMismatch(let name, let applied, let onDisk):
            return "\(name) was changed after it was applied (applied sha256 \(applied), file sha256 \(onDisk)); "
                + "add a new migration instead of editing an applied one"
        case .unknownApplied(let version, let name):
            return "the database has migration \(version) (\(name)) that this build does not have; upgrade the build"
        case .failed(let name, let message):
            return "\(name) failed: \(message)"
        }
    }
}

/// Applies pending migrations in order, each in its own transaction, recording each with its checksum
/// in `schema_migrations`. A session advisory lock makes concurrent starts on one schema take turns;
/// the lock is per schema, so deployments (or tests) that each own a schema never queue on each other.
public struct Migrator: Sendable {
    /// What a run did.
    public struct Report: Sendable, Equatable {
        /// Migrations applied by this run, in order.
        public let applied: [String]
        /// How many were already applied.
        public let alreadyApplied: Int
    }

    /// The advisory lock's first key, ASCII "CLMI"; the second is the hash of the schema migrated.
    static let lockKey: Int32 = 0x434C_4D49

    private let pool: PostgresPool

    /// A migrator working through `pool`.
    public init(pool: PostgresPool) {
        self.pool = pool
    }

    /// Applies what is pending.
    @discardableResult
    public func migrate(_ migrations: [Migration]) async throws -> Report {
        // The lock is session state: past a transaction pooler, on a connection to the database itself.
        guard !pool.configuration.transactionPooler else {
            let connection = try await PostgresConnection.connect(pool.configuration.sessionTarget, connectTimeout: pool.configuration.connectTimeout)
            return try await migrate(migrations, on: connection)
        }
        return try await pool.withConnection { connection in try await migrate(migrations, on: connection) }
    }

    private func migrate(_ migrations: [Migration], on connection: PostgresConnection) async throws -> Report {
        // Read once: a migration that changed search_path must not make the unlock miss the lock.
        let scope = try await connection.query("SELECT hashtext(coalesce(current_schema(), '')) AS scope")[0].decode("scope", as: Int32.self)
        try await connection.query("SELECT pg_advisory_lock(\(Self.lockKey), \(scope))")
        do {
            let report = try await Self.migrate(connection, migrations)
            try await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey), \(scope))")
            return report
        } catch {
            // The lock is per session; if unlocking fails the connection is dropped, which frees it.
            if (try? await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey), \(scope))")) == nil {
                connection.markBroken()
            }
            throw error
        }
    }

    /// Names of migrations not yet applied; throws on a checksum mismatch or unknown applied version.
    public func pending(_ migrations: [Migration]) async throws -> [String] {
        try await pool.withConnection { connection in
            let applied = try await Self.appliedMigrations(connection)
            try Self.verify(applied: applied, against: migrations)
            return migrations.filter { applied[$0.version] == nil }.map(\.name)
        }
    }

    private static func migrate(_ connection: PostgresConnection, _ migrations: [Migration]) async throws -> Report {
        try await connection.script("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """)
        let applied = try await appliedMigrations(connection)
        try verify(applied: applied, against: migrations)
        var appliedNow: [String] = []
        for migration in migrations where applied[migration.version] == nil {
            do {
                try await connection.script("BEGIN")
                try await connection.script(migration.sql)
                try await connection.query("""
                    INSERT INTO schema_migrations (version, name, checksum) \
                    VALUES (\(migration.version), \(migration.name), \(migration.checksum))
                    """)
                try await connection.script("COMMIT")
            } catch {
                _ = try? await connection.script("ROLLBACK")
                throw MigrationError.failed(name: migration.name, message: error.message)
            }
            appliedNow.append(migration.name)
        }
        return Report(applied: appliedNow, alreadyApplied: applied.count)
    }

    private static func appliedMigrations(_ connection: PostgresConnection) async throws -> [Int: (name: String, checksum: String)] {
        let exists = try await connection.query("SELECT to_regclass('schema_migrations') IS NOT NULL AS present")
        guard try exists.first?.decode("present", as: Bool.self) == true else { return [:] }
        var applied: [Int: (String, String)] = [:]
        for row in try await connection.query("SELECT version, name, checksum FROM schema_migrations").all {
            applied[try row.decode("version")] = (try row.decode("name"), try row.decode("checksum"))
        }
        return applied
    }

    private static func verify(applied: [Int: (name: String, checksum: String)], against migrations: [Migration]) throws {
        let known = Dictionary(uniqueKeysWithValues: migrations.map { ($0.version, $0) })
        for (version, record) in applied.sorted(by: { $0.key < $1.key }) {
            guard let migration = known[version] else {
                throw MigrationError.unknownApplied(version: version, name: record.name)
            }
            guard migration.checksum == record.checksum else {
                throw MigrationError.checksumMismatch(name: migration.name, applied: record.checksum, onDisk: migration.checksum)
            }
        }
    }
}
