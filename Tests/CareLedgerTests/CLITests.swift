@testable import CareLedgerCLI
import Foundation
import Testing

@Suite struct CLITests {
    @Test func serveHelpIsStable() {
        #expect(ServeCommand.help == """
            USAGE: careledger serve [--config <file>] [--host <host>] [--port <port>] [--tls-cert <file> --tls-key <file>] [--no-migrate] [...]

            Run the CareLedger HTTP API server until SIGTERM or SIGINT, then finish
            in-flight requests and exit. Applies pending migrations first unless --no-migrate.
            Each setting comes from its flag, else its environment variable, else the config file,
            else its default; secrets only from files or the environment, never from flags.
            Reads DATABASE_URL (a libpq URI or conninfo string) from the environment.
            DATABASE_REPLICA_URL, when set, names a hot standby of that database: it serves ledger entries, proofs and
            checkpoints at sizes it has replayed, and feeds past their cursor; every other read, and every write, goes to DATABASE_URL.
            DATABASE_SESSION_URL, when set, says DATABASE_URL is a transaction-mode pooler (PgBouncer) and names the database
            itself for what a pooler cannot carry: LISTEN and the session locks of the sequencer and of migrations.

            OPTIONS:
              --config <file>
                    A file of 'name = value' lines for any option below (flags: true or false); flags and environment win over it. (env CARELEDGER_CONFIG)
              --host <host>
                    Address to listen on; '::' listens on every IPv4 and IPv6 address. (env CARELEDGER_HOST, default 127.0.0.1)
              --port <port>
                    TCP port to listen on; 0 picks a free port. (env CARELEDGER_PORT, default 8080)
              --log-level <level>
                    Least important application log lines written: debug, info, warning or error. (env CARELEDGER_LOG_LEVEL, default info)
              --metrics-allow <addresses>
                    Comma-separated client addresses that may read GET /metrics without the token. (env CARELEDGER_METRICS_ALLOW, default 127.0.0.1,::1)
              --metrics-token-file <file>
                    A file (mode 600) holding a bearer token that may read GET /metrics from any address. (env CARELEDGER_METRICS_TOKEN_FILE)
              --key-rate-limit <n>
                    Requests per second one API key may make (a key's own rateLimitPerSecond wins); more answer 429. (env CARELEDGER_KEY_RATE_LIMIT, default 100)
              --auth-failure-limit <n>
                    Failed authentications per minute one client address may make; past it, its failed attempts answer 429 (keys that verify still pass). (env CARELEDGER_AUTH_FAILURE_LIMIT, default 20)
              --trusted-proxies <addresses>
                    Comma-separated proxy addresses or CIDR blocks whose X-Forwarded-For (or Forwarded) names the client; no one else's is believed. (env CARELEDGER_TRUSTED_PROXIES, default )
              --max-connections <n>
                    Open client connections at most; more are answered 503 and closed. (env CARELEDGER_MAX_CONNECTIONS, default 4096)
              --max-connections-per-address <n>
                    Open connections one client address may hold (trusted proxies exempt); more are answered 503 and closed. (env CARELEDGER_MAX_CONNECTIONS_PER_ADDRESS, default 512)
              --signing-key-file <file>
                    Ed25519 private key (PEM) that signs tree heads; make one with 'careledger keygen'. (env CARELEDGER_SIGNING_KEY_FILE)
              --master-key-file <file>
                    The 32-byte master key (base64) that wraps every patient's data key; make one with 'careledger keygen --master'. (env CARELEDGER_MASTER_KEY_FILE)
              --log-origin <name>
                    The log's name in every checkpoint (and its note key name); keep it stable for the life of the log. (env CARELEDGER_LOG_ORIGIN, default careledger.local/ledger)
              --sequencing-wait-ms <ms>
                    How long a create waits for its ledger entry to be sequenced before answering without seq. (env CARELEDGER_SEQUENCING_WAIT_MS, default 1000)
              --migrations-dir <dir>
                    Folder of numbered SQL migrations. (env CARELEDGER_MIGRATIONS_DIR, default Migrations)
              --db-pool-size <n>
                    Pooled database connections (besides one read-only pipelined connection per event loop, and the LISTEN and ledger-lock ones). (env CARELEDGER_DB_POOL_SIZE, default 16)
              --db-acquire-timeout-ms <ms>
                    How long a request waits for a database connection before answering 503. (env CARELEDGER_DB_ACQUIRE_TIMEOUT_MS, default 2000)
              --controlled-prescribers <n>
                    Prescribers of one patient's controlled substances within the window that raise an ABUSE finding. (env CARELEDGER_CONTROLLED_PRESCRIBERS, default 4)
              --controlled-pharmacies <n>
                    Pharmacies filling one patient's controlled substances within the window that raise an ABUSE finding. (env CARELEDGER_CONTROLLED_PHARMACIES, default 4)
              --controlled-window-days <days>
                    The window of the ABUSE check, in days. (env CARELEDGER_CONTROLLED_WINDOW_DAYS, default 90)
              --shipment-receipt-hours <hours>
                    How long a shipment may wait for its receipt before shipper and receiver get a shipment_not_received alert. (env CARELEDGER_SHIPMENT_RECEIPT_HOURS, default 72)
              --tls-cert <file>
                    PEM certificate chain; with --tls-key, serve HTTPS (TLS 1.2 and 1.3 only). SIGHUP reloads both files. (env CARELEDGER_TLS_CERT)
              --tls-key <file>
                    PEM private key of --tls-cert (mode 600). (env CARELEDGER_TLS_KEY)
              --tls-client-ca <file>
                    PEM CA certificates for mutual TLS: a client certificate that chains to them and is registered to a key authenticates without a bearer key. (env CARELEDGER_TLS_CLIENT_CA)
              --no-migrate
                    Do not apply migrations at start (another instance or a deploy step does).
              --ledger-public
                    Serve the read-only ledger endpoints without an API key (they hold no PHI).
              --no-db-pipelines
                    Give every statement a pooled connection of its own, with no shared read-only pipelined connection per event loop.
              -h, --help
                    Show this help.

            """)
    }

    @Test func migrateHelpIsStable() {
        #expect(MigrateCommand.help == """
            USAGE: careledger migrate [--migrations-dir <dir>] [--app-role <role>]

            Apply every migration in the folder that the database has not applied yet, each in
            its own transaction. Refuses to run if an applied migration's file has changed.
            With --app-role, the role the server runs as gets SELECT and INSERT on the ledger, audit and
            claim-event tables (never UPDATE or DELETE), DELETE on the ledger queue, UPDATE where objects
            change state, and nothing else; run it again after each upgrade.
            Reads DATABASE_URL (a libpq URI or conninfo string) from the environment.

            OPTIONS:
              --migrations-dir <dir>
                    Folder of numbered SQL migrations. (env CARELEDGER_MIGRATIONS_DIR, default Migrations)
              --app-role <role>
                    Then grant this existing role exactly what `serve --no-migrate` needs: append-only on the log and the trails. (env CARELEDGER_APP_ROLE)
              -h, --help
                    Show this help.

            """)
    }

    @Test func rootHelpListsEveryCommand() {
        #expect(CareLedgerCLI.help == """
            USAGE: careledger <command> [options]

            COMMANDS:
              serve    Run the HTTP API server.
              migrate  Apply pending database migrations.
              admin    Administration that needs the database itself (bootstrap).
              keygen   Create an Ed25519 signing key for tree heads.
              verify   Verify the ledger (database) or a receipt (offline).

            Run 'careledger <command> --help' for a command's options.

            """)
    }

    private static let keyFile = (try? temporarySigningKeyFile()) ?? "/nonexistent"
    private static let masterFile = (try? temporaryMasterKeyFile()) ?? "/nonexistent"
    private let database = ["DATABASE_URL": "postgresql:///db", "CARELEDGER_SIGNING_KEY_FILE": keyFile, "CARELEDGER_MASTER_KEY_FILE": masterFile]

    @Test func signingKeyProblemsAreExplained() throws {
        #expect(throws: CLIError("no signing key: set CARELEDGER_SIGNING_KEY_FILE or --signing-key-file (create one with 'careledger keygen --out FILE')")) {
            try ServeCommand(arguments: [], environment: ["DATABASE_URL": "postgresql:///db"])
        }
        #expect(throws: CLIError("no master key: set CARELEDGER_MASTER_KEY_FILE or --master-key-file (create one with 'careledger keygen --master --out FILE')")) {
            try ServeCommand(arguments: [], environment: ["DATABASE_URL": "postgresql:///db", "CARELEDGER_SIGNING_KEY_FILE": Self.keyFile])
        }
        let loose = try temporarySigningKeyFile()
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: loose)
        #expect(throws: CLIError("the signing key file '\(loose)' must not be readable by group or others (chmod 600)")) {
            try ServeCommand(arguments: ["--signing-key-file", loose], environment: database)
        }
        #expect(throws: CLIError("--log-origin: the log origin must be non-empty, without spaces or '+'")) {
            try ServeCommand(arguments: ["--log-origin", "a b"], environment: database)
        }
        let serve = try ServeCommand(arguments: ["--ledger-public", "--sequencing-wait-ms", "250"], environment: database)
        #expect(serve.ledgerSettings.publicRead && serve.ledgerSettings.sequencingWait == .milliseconds(250))
        #expect(serve.signer.origin == "careledger.local/ledger" && serve.signer.keyId.count == 64)
    }

    @Test func flagsBeatEnvironmentWhichBeatsDefaults() throws {
        let defaults = try ServeCommand(arguments: [], environment: database)
        #expect(defaults.configuration.host == "127.0.0.1" && defaults.configuration.port == 8080)
        let fromEnvironment = try ServeCommand(arguments: [], environment: database.merging(["CARELEDGER_HOST": "::", "CARELEDGER_PORT": "9000"]) { $1 })
        #expect(fromEnvironment.configuration.host == "::" && fromEnvironment.configuration.port == 9000)
        let fromFlags = try ServeCommand(arguments: ["--host", "0.0.0.0", "--port=9001"], environment: database.merging(["CARELEDGER_PORT": "9000"]) { $1 })
        #expect(fromFlags.configuration.host == "0.0.0.0" && fromFlags.configuration.port == 9001)
        #expect(defaults.migrateOnStart)
        #expect(try !ServeCommand(arguments: ["--no-migrate"], environment: database).migrateOnStart)
        let tuned = try ServeCommand(arguments: ["--db-pool-size", "4"], environment: database.merging(["CARELEDGER_DB_ACQUIRE_TIMEOUT_MS": "250"]) { $1 })
        #expect(tuned.database.pool.maxConnections == 4 && tuned.database.pool.acquireTimeout == .milliseconds(250))
        #expect(defaults.database.pool.multiplexing)
        #expect(try !ServeCommand(arguments: ["--no-db-pipelines"], environment: database).database.pool.multiplexing)
        #expect(defaults.configuration.trustedProxies.isEmpty && defaults.configuration.maxConnectionsPerAddress == 512)
        let proxied = try ServeCommand(arguments: ["--trusted-proxies", "10.0.0.0/8, 192.0.2.7", "--max-connections-per-address", "64"], environment: database)
        #expect(proxied.configuration.trustedProxies.contains("10.20.30.40") && proxied.configuration.trustedProxies.contains("192.0.2.7"))
        #expect(!proxied.configuration.trustedProxies.contains("192.0.2.8") && proxied.configuration.maxConnectionsPerAddress == 64)
        #expect(defaults.prescribing.abusePrescribers == 4 && defaults.prescribing.abusePharmacies == 4 && defaults.prescribing.abuseWindowDays == 90)
        let strict = try ServeCommand(arguments: ["--controlled-prescribers", "3", "--controlled-window-days", "30"],
                                      environment: database.merging(["CARELEDGER_CONTROLLED_PHARMACIES": "2"]) { $1 })
        #expect(strict.prescribing.abusePrescribers == 3 && strict.prescribing.abusePharmacies == 2 && strict.prescribing.abuseWindowDays == 30)
        #expect(defaults.supply.receiptWindow == .seconds(72 * 3600))
        #expect(try ServeCommand(arguments: ["--shipment-receipt-hours", "24"], environment: database).supply.receiptWindow == .seconds(24 * 3600))
        #expect(throws: (any Error).self) { try ServeCommand(arguments: ["--shipment-receipt-hours", "0"], environment: database) }
    }

    @Test func aConfigFileComesAfterFlagsAndEnvironment() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("careledger-\(UUID().uuidString).conf")
        defer { try? FileManager.default.removeItem(at: file) }
        try "# comment\n\nport = 9100\nhost=0.0.0.0\nlog-level = warning\nno-migrate = true\ndb-pool-size = 7\n".write(to: file, atomically: true, encoding: .utf8)
        let fromFile = try ServeCommand(arguments: ["--config", file.path], environment: database)
        #expect(fromFile.configuration.port == 9100 && fromFile.configuration.host == "0.0.0.0" && fromFile.logLevel == .warning)
        #expect(!fromFile.migrateOnStart && fromFile.database.pool.maxConnections == 7)
        let environment = database.merging(["CARELEDGER_CONFIG": file.path, "CARELEDGER_PORT": "9200"]) { $1 }
        let mixed = try ServeCommand(arguments: ["--host", "::1"], environment: environment)
        #expect(mixed.configuration.host == "::1" && mixed.configuration.port == 9200 && mixed.logLevel == .warning)

        try "port = 9100\nwhat = 1\n".write(to: file, atomically: true, encoding: .utf8)
        #expect(throws: CLIError("\(file.path):2: unknown setting 'what'")) { try ServeCommand(arguments: ["--config", file.path], environment: database) }
        try "port = many\n".write(to: file, atomically: true, encoding: .utf8)
        #expect(throws: CLIError("--port must be an integer from 0 to 65535, got 'many'")) {
            try ServeCommand(arguments: ["--config", file.path], environment: database)
        }
        try "ledger-public = maybe\n".write(to: file, atomically: true, encoding: .utf8)
        #expect(throws: CLIError("\(file.path):1: 'ledger-public' must be true or false")) {
            try ServeCommand(arguments: ["--config", file.path], environment: database)
        }
        #expect(throws: CLIError("cannot read the config file '/nonexistent.conf'")) {
            try ServeCommand(arguments: ["--config", "/nonexistent.conf"], environment: database)
        }
    }

    @Test(arguments: [
        (["--log-level", "loud"], "--log-level must be one of debug, info, warning, error, got 'loud'"),
        (["--tls-key", "/x.key"], "--tls-cert and --tls-key go together (and --tls-client-ca needs both)"),
        (["--port", "70000"], "--port must be an integer from 0 to 65535, got '70000'"),
        (["--port", "abc"], "--port must be an integer from 0 to 65535, got 'abc'"),
        (["--port"], "--port needs a value"),
        (["--verbose"], "unknown option --verbose"),
        (["extra"], "unexpected argument 'extra'"),
        (["--host="], "--host must not be empty"),
        (["--db-pool-size", "0"], "--db-pool-size must be an integer from 1 to 1000, got '0'"),
        (["--no-migrate=yes"], "--no-migrate takes no value"),
        (["--trusted-proxies", "10.0.0.0/8,proxy.example"], "--trusted-proxies: 'proxy.example' is not an IP address or CIDR block"),
        (["--max-connections-per-address", "0"], "--max-connections-per-address must be an integer from 1 to 1000000, got '0'"),
        (["--controlled-prescribers", "1"], "--controlled-prescribers must be an integer from 2 to 1000, got '1'"),
    ])
    func badArgumentsNameTheProblem(arguments: [String], message: String) {
        #expect(throws: CLIError(message)) { try ServeCommand(arguments: arguments, environment: database) }
    }

    @Test func missingDatabaseURLIsExplained() {
        #expect(throws: CLIError("DATABASE_URL is not set (a libpq URI or conninfo string); ./deploy/run.sh starts a local database")) {
            try ServeCommand(arguments: [], environment: [:])
        }
    }

    @Test func unknownCommandAndMissingCommandExitWithUsage() async {
        #expect(await CareLedgerCLI.main(arguments: ["frobnicate"], environment: [:]) == 64)
        #expect(await CareLedgerCLI.main(arguments: [], environment: [:]) == 64)
        #expect(await CareLedgerCLI.main(arguments: ["serve", "--help"], environment: [:]) == 0)
    }
}
