import CareLedger
import Postgres

/// `careledger migrate`: applies pending migrations and reports what it did; with `--app-role`,
/// grants the serving role exactly what the schema needs.
struct MigrateCommand: Command {
    static let name = "migrate"
    static let summary = "Apply pending database migrations."
    static let appRoleOption = OptionSpec(
        name: "app-role", valueName: "role",
        help: "Then grant this existing role exactly what `serve --no-migrate` needs: append-only on the log and the trails.",
        environment: "CARELEDGER_APP_ROLE", defaultValue: nil)
    static let options = [DatabaseOptions.migrationsDirectory, appRoleOption]
    static let help = helpText(
        usage: "migrate [--migrations-dir <dir>] [--app-role <role>]",
        description: "Apply every migration in the folder that the database has not applied yet, each in\n"
            + "its own transaction. Refuses to run if an applied migration's file has changed.\n"
            + "With --app-role, the role the server runs as gets SELECT and INSERT on the ledger, audit and\n"
            + "claim-event tables (never UPDATE or DELETE), DELETE on the ledger queue, UPDATE where objects\n"
            + "change state, and nothing else; run it again after each upgrade.\n"
            + DatabaseOptions.environmentNote,
        options: options)

    let database: DatabaseOptions
    let appRole: String?

    init(arguments: [String], environment: [String: String]) throws(CLIError) {
        let parsed = try ParsedArguments(arguments, options: Self.options, flags: [])
        guard parsed.positionals.isEmpty else { throw CLIError("unexpected argument '\(parsed.positionals[0])'") }
        database = try DatabaseOptions(parsed, environment: environment)
        appRole = parsed.value(of: Self.appRoleOption, environment: environment).flatMap { $0.isEmpty ? nil : $0 }
    }

    func run() async throws -> Int32 {
        let migrations = try database.loadMigrations()
        let pool = PostgresPool(configuration: database.pool)
        let report = try await Migrator(pool: pool).migrate(migrations)
        for name in report.applied { print("applied \(name)") }
        print("database is up to date: \(migrations.count) migration(s), \(report.applied.count) applied now")
        if let appRole {
            do {
                let tables = try await AppRoleGrants.grant(to: appRole, on: pool)
                print("granted \(appRole) what serving needs on \(tables) table(s)")
            } catch let problem as AppRoleGrants.Problem {
                CareLedgerCLI.printError("careledger migrate: \(problem.description)")
                return 1
            }
        }
        return 0
    }
}
