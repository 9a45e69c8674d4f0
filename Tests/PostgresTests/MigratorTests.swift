import Foundation
@testable import Postgres
import Testing
import TestSupport

@Suite struct MigratorTests {
    /// A temporary Migrations/ folder with the given files.
    private func directory(_ files: [String: String]) throws -> String {
        let path = Scratch.path("migrations")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        for (name, sql) in files {
            try sql.write(toFile: path + "/" + name, atomically: true, encoding: .utf8)
        }
        return path
    }

    @Test func appliesInVersionOrderAndRecordsChecksums() async throws {
        try await TestDatabase.withDatabase { conninfo in
            // 0002 depends on 0001; written in reverse so directory order cannot be relied on.
            let dir = try directory([
                "0002_add_column.sql": "ALTER TABLE things ADD COLUMN label text;",
                "0001_create.sql": "CREATE TABLE things (id int PRIMARY KEY);",
            ])
            let migrations = try Migration.load(directory: dir)
            #expect(migrations.map(\.version) == [1, 2])
            let pool = PostgresPool(configuration: .init(conninfo: conninfo))
            let report = try await Migrator(pool: pool).migrate(migrations)
            #expect(report == Migrator.Report(applied: ["0001_create.sql", "0002_add_column.sql"], alreadyApplied: 0))
            let rows = try await pool.query("SELECT version, checksum FROM schema_migrations ORDER BY version")
            #expect(try rows.all.map { try $0.decode("checksum", as: String.self) } == migrations.map(\.checksum))
            let again = try await Migrator(pool: pool).migrate(migrations)
            #expect(again == Migrator.Report(applied: [], alreadyApplied: 2))
            #expect(try await Migrator(pool: pool).pending(migrations).isEmpty)
        }
    }

    @Test func changedAppliedFileIsRefused() async throws {
        try await TestDatabase.withDatabase { conninfo in
            let dir = try directory(["0001_create.sql": "CREATE TABLE a (id int);"])
            let pool = PostgresPool(configuration: .init(conninfo: conninfo))
            try await Migrator(pool: pool).migrate(try Migration.load(directory: dir))
            try "CREATE TABLE a (id bigint);".write(toFile: dir + "/0001_create.sql", atomically: true, encoding: .utf8)
            let error = await #expect(throws: MigrationError.self) {
                try await Migrator(pool: pool).migrate(try Migration.load(directory: dir))
            }
            guard case .checksumMismatch(let name, _, _) = error else {
                Issue.record("expected a checksum mismatch, got \(String(describing: error))")
                return
            }
            #expect(name == "0001_create.sql")
            #expect(error?.description.contains("add a new migration") == true)
        }
    }

    @Test func failedMigrationLeavesNothingBehindAndStops() async throws {
        try await TestDatabase.withDatabase { conninfo in
            let dir = try directory([
                "0001_ok.sql": "CREATE TABLE ok (id int);",
                "0002_bad.sql": "CREATE TABLE half (id int); SELECT no_such_function();",
                "0003_never.sql": "CREATE TABLE never (id int);",
            ])
            let pool = PostgresPool(configuration: .init(conninfo: conninfo))
            await #expect(throws: MigrationError.self) { try await Migrator(pool: pool).migrate(try Migration.load(directory: dir)) }
            let tables = try await pool.query("""
                SELECT to_regclass('ok') IS NOT NULL AS ok, to_regclass('half') IS NOT NULL AS half,
                       to_regclass('never') IS NOT NULL AS never, (SELECT count(*) FROM schema_migrations) AS applied
                """)
            let row = try #require(tables.first)
            #expect(try row.decode("ok", as: Bool.self) && !(try row.decode("half", as: Bool.self)))
            #expect(try !row.decode("never", as: Bool.self))
            #expect(try row.decode("applied", as: Int.self) == 1)
        }
    }

    @Test func concurrentStartsApplyEachMigrationOnce() async throws {
        try await TestDatabase.withDatabase { conninfo in
            // Not idempotent on purpose: a second application would fail.
            let dir = try directory([
                "0001_a.sql": "CREATE TABLE a (id int); SELECT pg_sleep(0.2);",
                "0002_b.sql": "CREATE TABLE b (id int);",
            ])
            let migrations = try Migration.load(directory: dir)
            let reports = try await withThrowingTaskGroup(of: Migrator.Report.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        try await Migrator(pool: PostgresPool(configuration: .init(conninfo: conninfo))).migrate(migrations)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(reports.flatMap(\.applied).sorted() == ["0001_a.sql", "0002_b.sql"])
        }
    }

    /// Every test (and every deployment sharing a database) migrates a schema of its own: holding
    /// one schema's migration lock must not stop another's, or a full test run queues behind it.
    @Test func migrationsTakeTurnsWithinASchemaButNotAcrossSchemas() async throws {
        let migrations = try Migration.load(directory: try directory(["0001_a.sql": "CREATE TABLE a (id int);"]))
        try await TestDatabase.withSchema { held in
            try await TestDatabase.withSchema { other in
                let applied: @Sendable (PostgresPool) async throws -> Bool = { pool in
                    try await pool.query("SELECT to_regclass('schema_migrations') IS NOT NULL AS present")[0].decode("present", as: Bool.self)
                }
                try await held.withConnection { holder in
                    try await holder.query("SELECT pg_advisory_lock(\(Migrator.lockKey), hashtext(current_schema()))")
                    let waiting = Task { try await Migrator(pool: held).migrate(migrations) }
                    let elsewhere = try await Migrator(pool: other).migrate(migrations)
                    #expect(elsewhere.applied == ["0001_a.sql"], "another schema's migration ran while this one's lock was held")
                    try await Task.sleep(for: .milliseconds(300))
                    #expect(try await !applied(held), "a migration ran while its schema's lock was held")
                    try await holder.query("SELECT pg_advisory_unlock(\(Migrator.lockKey), hashtext(current_schema()))")
                    #expect(try await waiting.value.applied == ["0001_a.sql"])
                }
            }
        }
    }

    @Test func unknownAppliedVersionIsRefused() async throws {
        try await TestDatabase.withDatabase { conninfo in
            let pool = PostgresPool(configuration: .init(conninfo: conninfo))
            try await Migrator(pool: pool).migrate(try Migration.load(directory: try directory([
                "0001_a.sql": "SELECT 1;", "0002_b.sql": "SELECT 2;",
            ])))
            let older = try Migration.load(directory: try directory(["0001_a.sql": "SELECT 1;"]))
            await #expect(throws: MigrationError.unknownApplied(version: 2, name: "0002_b.sql")) {
                try await Migrator(pool: pool).migrate(older)
            }
        }
    }

    @Test(arguments: ["1_short.sql", "abcd_x.sql", "0001-dash.sql"])
    func badFileNamesAreRefused(_ name: String) throws {
        let dir = try directory([name: "SELECT 1;"])
        #expect(throws: MigrationError.badFileName(name)) { try Migration.load(directory: dir) }
    }

    @Test func projectMigrationsApplyToAFreshDatabase() async throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Migrations").path
        try await TestDatabase.withDatabase { conninfo in
            let migrations = try Migration.load(directory: dir)
            #expect(!migrations.isEmpty)
            let report = try await Migrator(pool: PostgresPool(configuration: .init(conninfo: conninfo))).migrate(migrations)
            #expect(report.applied.count == migrations.count)
        }
    }
}
