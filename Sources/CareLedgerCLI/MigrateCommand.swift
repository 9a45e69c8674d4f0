import Postgres

/// `careledger migrate`: applies pending migrations and reports what it did.
struct MigrateCommand: Command {
    static let name = "migrate"
    static let summary = "Apply pending database migrations."
    static let options = [DatabaseOptions.migrationsDirectory]
    static let help = helpText(
        usage: "migrate [--migrations-dir <dir>]",
        description: "Apply every migration in the folder that the database has not applied yet, each in\n"
            + "its own transaction. Refuses to run if an applied migration's file has changed.\n"
            + DatabaseOptions.environmentNote,
        options: options)

    let database: DatabaseOptions

    init(arguments: [String], environment: [String: String]) throws(CLIError) {
        let parsed = try ParsedArguments(arguments, options: Self.options, flags: [])
        guard parsed.positionals.isEmpty else { throw CLIError("unexpected argument '\(parsed.positionals[0])'") }
        database = try DatabaseOptions(parsed, environment: environment)
    }

    func run() async throws -> Int32 {
        let migrations = try database.loadMigrations()
        let report = try await Migrator(pool: PostgresPool(configuration: database.pool)).migrate(migrations)
        for name in report.applied { print("applied \(name)") }
        print("database is up to date: \(migrations.count) migration(s), \(report.applied.count) applied now")
        return 0
    }
}
