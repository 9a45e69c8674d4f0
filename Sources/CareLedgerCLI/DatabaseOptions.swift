import Postgres

/// Database settings shared by commands that talk to PostgreSQL. The connection string is a secret
/// (it may hold a password), so it comes from the environment only, never from a flag.
struct DatabaseOptions {
    static let migrationsDirectory = OptionSpec(
        name: "migrations-dir", valueName: "dir", help: "Folder of numbered SQL migrations.",
        environment: "CARELEDGER_MIGRATIONS_DIR", defaultValue: "Migrations")
    static let poolSize = OptionSpec(
        name: "db-pool-size", valueName: "n", help: "Pooled database connections (besides one read-only pipelined connection per event loop, and the LISTEN and ledger-lock ones).",
        environment: "CARELEDGER_DB_POOL_SIZE", defaultValue: "16")
    static let acquireTimeout = OptionSpec(
        name: "db-acquire-timeout-ms", valueName: "ms",
        help: "How long a request waits for a database connection before answering 503.",
        environment: "CARELEDGER_DB_ACQUIRE_TIMEOUT_MS", defaultValue: "2000")

    static let noPipelinesFlag = (
        name: "no-db-pipelines",
        help: "Give every statement a pooled connection of its own, with no shared read-only pipelined connection per event loop.")

    /// Where DATABASE_URL is explained in help texts.
    static let environmentNote = "Reads DATABASE_URL (a libpq URI or conninfo string) from the environment."
    /// Where DATABASE_REPLICA_URL is explained in `serve`'s help.
    static let replicaNote = "DATABASE_REPLICA_URL, when set, names a hot standby of that database: it serves ledger entries, proofs and\n"
        + "checkpoints at sizes it has replayed, and feeds past their cursor; every other read, and every write, goes to DATABASE_URL.\n"
        + "DATABASE_SESSION_URL, when set, says DATABASE_URL is a transaction-mode pooler (PgBouncer) and names the database\n"
        + "itself for what a pooler cannot carry: LISTEN and the session locks of the sequencer and of migrations."

    let pool: PostgresPool.Configuration
    /// The hot standby's pool, sized like the primary's, when DATABASE_REPLICA_URL is set.
    let replica: PostgresPool.Configuration?
    let migrationsDirectory: String

    init(_ parsed: ParsedArguments, environment: [String: String]) throws(CLIError) {
        guard let url = environment["DATABASE_URL"], !url.isEmpty else {
            throw CLIError("DATABASE_URL is not set (a libpq URI or conninfo string); ./deploy/run.sh starts a local database")
        }
        var pool = PostgresPool.Configuration(conninfo: url)
        pool.maxConnections = try parsed.integer(Self.poolSize, environment, in: 1...1000)
        pool.acquireTimeout = .milliseconds(try parsed.integer(Self.acquireTimeout, environment, in: 1...600_000))
        pool.multiplexing = !parsed.flags.contains(Self.noPipelinesFlag.name)
        if let sessionURL = environment["DATABASE_SESSION_URL"], !sessionURL.isEmpty {
            pool.transactionPooler = true
            pool.sessionConninfo = sessionURL
        }
        self.pool = pool
        if let replicaURL = environment["DATABASE_REPLICA_URL"], !replicaURL.isEmpty {
            var replica = pool
            replica.conninfo = replicaURL
            // A standby is reached directly: read-only, it keeps no session state a pooler would drop.
            replica.transactionPooler = false
            replica.sessionConninfo = nil
            self.replica = replica
        } else {
            replica = nil
        }
        let directory = parsed.value(of: Self.migrationsDirectory, environment: environment) ?? ""
        guard !directory.isEmpty else { throw CLIError("--migrations-dir must not be empty") }
        migrationsDirectory = directory
    }

    /// The migrations on disk, or a one-line error naming the folder.
    func loadMigrations() throws(CLIError) -> [Migration] {
        do {
            return try Migration.load(directory: migrationsDirectory)
        } catch let error as MigrationError {
            throw CLIError(error.description)
        } catch {
            throw CLIError("cannot read migrations from '\(migrationsDirectory)': \(error)")
        }
    }
}
