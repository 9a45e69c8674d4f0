import CareLedger
import FoundationEssentials
import Postgres

/// `careledger admin bootstrap`: the platform organization and its first admin key.
struct AdminCommand: Command {
    static let name = "admin"
    static let summary = "Administration that needs the database itself (bootstrap)."
    /// Exit status when an admin key exists already; scripts tell it from a failure.
    static let alreadyBootstrappedStatus: Int32 = 3
    static let help = helpText(
        usage: "admin bootstrap",
        description: "bootstrap: create the platform organization and its first admin key, and print\n"
            + "{\"orgId\",\"keyId\",\"apiKey\"} once on stdout. The key is not stored anywhere in clear: keep it.\n"
            + "Refuses (exit status \(alreadyBootstrappedStatus)) while any usable admin key exists.\n"
            + DatabaseOptions.environmentNote,
        options: [])

    let database: DatabaseOptions

    init(arguments: [String], environment: [String: String]) throws(CLIError) {
        let parsed = try ParsedArguments(arguments, options: [], flags: [])
        guard parsed.positionals == ["bootstrap"] else {
            throw CLIError(parsed.positionals.isEmpty ? "missing subcommand; the only one is 'bootstrap'" : "unknown subcommand '\(parsed.positionals.joined(separator: " "))'; the only one is 'bootstrap'")
        }
        database = try DatabaseOptions(parsed, environment: environment)
    }

    func run() async throws -> Int32 {
        do {
            let result = try await Bootstrap.run(pool: PostgresPool(configuration: database.pool))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(result), as: UTF8.self))
            return 0
        } catch let error as BootstrapError {
            CareLedgerCLI.printError("careledger admin bootstrap: refused: \(error)")
            return Self.alreadyBootstrappedStatus
        }
    }
}
