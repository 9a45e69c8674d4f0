#if canImport(Glibc)
import Glibc
#endif
import CareLedger
import Dispatch
import HTTP
import Postgres
import TLS
import Telemetry

/// `careledger serve`: runs the API server until SIGTERM or SIGINT, then drains and exits.
struct ServeCommand: Command {
    static let name = "serve"
    static let summary = "Run the HTTP API server."

    static let hostOption = OptionSpec(
        name: "host", valueName: "host",
        help: "Address to listen on; '::' listens on every IPv4 and IPv6 address.",
        environment: "CARELEDGER_HOST", defaultValue: "127.0.0.1")
    static let portOption = OptionSpec(
        name: "port", valueName: "port", help: "TCP port to listen on; 0 picks a free port.",
        environment: "CARELEDGER_PORT", defaultValue: "8080")
    static let keyRateOption = OptionSpec(
        name: "key-rate-limit", valueName: "n",
        help: "Requests per second one API key may make (a key's own rateLimitPerSecond wins); more answer 429.",
        environment: "CARELEDGER_KEY_RATE_LIMIT", defaultValue: "100")
    static let authFailureOption = OptionSpec(
        name: "auth-failure-limit", valueName: "n",
        help: "Failed authentications per minute one client address may make; past it, its failed attempts answer 429 (keys that verify still pass).",
        environment: "CARELEDGER_AUTH_FAILURE_LIMIT", defaultValue: "20")
    static let trustedProxiesOption = OptionSpec(
        name: "trusted-proxies", valueName: "addresses",
        help: "Comma-separated proxy addresses or CIDR blocks whose X-Forwarded-For (or Forwarded) names the client; no one else's is believed.",
        environment: "CARELEDGER_TRUSTED_PROXIES", defaultValue: "")
    static let maxConnectionsOption = OptionSpec(
        name: "max-connections", valueName: "n", help: "Open client connections at most; more are answered 503 and closed.",
        environment: "CARELEDGER_MAX_CONNECTIONS", defaultValue: "4096")
    static let maxConnectionsPerAddressOption = OptionSpec(
        name: "max-connections-per-address", valueName: "n",
        help: "Open connections one client address may hold (trusted proxies exempt); more are answered 503 and closed.",
        environment: "CARELEDGER_MAX_CONNECTIONS_PER_ADDRESS", defaultValue: "512")
    static let configOption = OptionSpec(
        name: "config", valueName: "file",
        help: "A file of 'name = value' lines for any option below (flags: true or false); flags and environment win over it.",
        environment: "CARELEDGER_CONFIG", defaultValue: nil)
    static let logLevelOption = OptionSpec(
        name: "log-level", valueName: "level", help: "Least important application log lines written: debug, info, warning or error.",
        environment: "CARELEDGER_LOG_LEVEL", defaultValue: "info")
    static let metricsAllowOption = OptionSpec(
        name: "metrics-allow", valueName: "addresses",
        help: "Comma-separated client addresses that may read GET /metrics without the token.",
        environment: "CARELEDGER_METRICS_ALLOW", defaultValue: "127.0.0.1,::1")
    static let metricsTokenOption = OptionSpec(
        name: "metrics-token-file", valueName: "file",
        help: "A file (mode 600) holding a bearer token that may read GET /metrics from any address.",
        environment: "CARELEDGER_METRICS_TOKEN_FILE", defaultValue: nil)
    static let controlledPrescribersOption = OptionSpec(
        name: "controlled-prescribers", valueName: "n",
        help: "Prescribers of one patient's controlled substances within the window that raise an ABUSE finding.",
        environment: "CARELEDGER_CONTROLLED_PRESCRIBERS", defaultValue: "4")
    static let controlledPharmaciesOption = OptionSpec(
        name: "controlled-pharmacies", valueName: "n",
        help: "Pharmacies filling one patient's controlled substances within the window that raise an ABUSE finding.",
        environment: "CARELEDGER_CONTROLLED_PHARMACIES", defaultValue: "4")
    static let controlledWindowOption = OptionSpec(
        name: "controlled-window-days", valueName: "days", help: "The window of the ABUSE check, in days.",
        environment: "CARELEDGER_CONTROLLED_WINDOW_DAYS", defaultValue: "90")
    static let shipmentReceiptOption = OptionSpec(
        name: "shipment-receipt-hours", valueName: "hours",
        help: "How long a shipment may wait for its receipt before shipper and receiver get a shipment_not_received alert.",
        environment: "CARELEDGER_SHIPMENT_RECEIPT_HOURS", defaultValue: "72")
    static let options = [
        configOption, hostOption, portOption, logLevelOption, metricsAllowOption, metricsTokenOption, keyRateOption, authFailureOption,
        trustedProxiesOption, maxConnectionsOption, maxConnectionsPerAddressOption, LedgerOptions.signingKeyFile, LedgerOptions.masterKeyFile, LedgerOptions.origin,
        LedgerOptions.sequencingWait, DatabaseOptions.migrationsDirectory, DatabaseOptions.poolSize, DatabaseOptions.acquireTimeout,
        controlledPrescribersOption, controlledPharmaciesOption, controlledWindowOption, shipmentReceiptOption,
    ] + TLSOptions.all

    static let help = helpText(
        usage: "serve [--config <file>] [--host <host>] [--port <port>] [--tls-cert <file> --tls-key <file>] [--no-migrate] [...]",
        description: "Run the CareLedger HTTP API server until SIGTERM or SIGINT, then finish\n"
            + "in-flight requests and exit. Applies pending migrations first unless --no-migrate.\n"
            + "Each setting comes from its flag, else its environment variable, else the config file,\n"
            + "else its default; secrets only from files or the environment, never from flags.\n"
            + DatabaseOptions.environmentNote + "\n" + DatabaseOptions.replicaNote,
        options: options,
        flags: [("no-migrate", "Do not apply migrations at start (another instance or a deploy step does)."), LedgerOptions.publicFlag,
                DatabaseOptions.noPipelinesFlag])

    let configuration: HTTPServerConfiguration
    let logLevel: EventLog.Level
    let metricsAccess: MetricsAccess
    let tls: TLSServer?
    let database: DatabaseOptions
    let migrateOnStart: Bool
    let limits: AccessLimits
    let signer: LedgerSigner
    let patientKeys: PatientKeys
    let ledgerSettings: LedgerService.Settings
    let prescribing: SafetyChecks.Settings
    let supply: SupplySettings

    init(arguments: [String], environment: [String: String]) throws(CLIError) {
        let flags: Set<String> = ["no-migrate", LedgerOptions.publicFlag.name, DatabaseOptions.noPipelinesFlag.name]
        var parsed = try ParsedArguments(arguments, options: Self.options, flags: flags)
        guard parsed.positionals.isEmpty else {
            throw CLIError("unexpected argument '\(parsed.positionals[0])'")
        }
        if let path = parsed.value(of: Self.configOption, environment: environment) {
            try parsed.readConfigFile(path, options: Self.options.filter { $0.name != Self.configOption.name }, flags: flags)
        }
        let levelText = parsed.value(of: Self.logLevelOption, environment: environment) ?? ""
        guard let logLevel = EventLog.Level(rawValue: levelText) else {
            throw CLIError("--log-level must be one of \(EventLog.Level.allCases.map(\.rawValue).joined(separator: ", ")), got '\(levelText)'")
        }
        self.logLevel = logLevel
        var metricsAccess = MetricsAccess()
        let allowed = (parsed.value(of: Self.metricsAllowOption, environment: environment) ?? "").split(separator: ",").map {
            String($0).trimmingCharacters([" "])
        }
        metricsAccess.addresses = Set(allowed.filter { !$0.isEmpty })
        if let path = parsed.value(of: Self.metricsTokenOption, environment: environment) {
            let token = Array(try LedgerOptions.readSecretFile(path, what: "metrics token")).filter { $0 != 10 && $0 != 13 && $0 != 32 }
            guard token.count >= 16 else { throw CLIError("--metrics-token-file: the token in '\(path)' must be at least 16 characters") }
            metricsAccess.token = token
        }
        self.metricsAccess = metricsAccess
        var configuration = HTTPServerConfiguration()
        let host = parsed.value(of: Self.hostOption, environment: environment) ?? ""
        guard !host.isEmpty else { throw CLIError("--host must not be empty") }
        configuration.host = host
        let portText = parsed.value(of: Self.portOption, environment: environment) ?? ""
        guard let port = Int(portText), (0...65_535).contains(port) else {
            throw CLIError("--port must be an integer from 0 to 65535, got '\(portText)'")
        }
        configuration.port = port
        do {
            configuration.trustedProxies = try AddressSet(parsing: (parsed.value(of: Self.trustedProxiesOption, environment: environment) ?? "")
                .split(separator: ",").map(String.init))
        } catch {
            throw CLIError("--trusted-proxies: \(error.description)")
        }
        configuration.maxConnections = try parsed.integer(Self.maxConnectionsOption, environment, in: 1...1_000_000)
        configuration.maxConnectionsPerAddress = try parsed.integer(Self.maxConnectionsPerAddressOption, environment, in: 1...1_000_000)
        tls = try TLSOptions.server(parsed, environment: environment)
        configuration.security = tls
        // Handlers mostly wait on the database, whose connections the same event loops watch: a
        // request is read, handled, waited for and answered on one thread (see IOEventLoop).
        configuration.handlersRunOnEventLoops = true
        self.configuration = configuration
        database = try DatabaseOptions(parsed, environment: environment)
        migrateOnStart = !parsed.flags.contains("no-migrate")
        var limits = AccessLimits()
        limits.keyRequestsPerSecond = try parsed.integer(Self.keyRateOption, environment, in: 1...100_000)
        limits.authFailuresPerMinute = try parsed.integer(Self.authFailureOption, environment, in: 1...100_000)
        self.limits = limits
        signer = try LedgerOptions.signer(parsed, environment: environment)
        patientKeys = try LedgerOptions.patientKeys(parsed, environment: environment)
        var ledgerSettings = LedgerService.Settings()
        ledgerSettings.sequencingWait = .milliseconds(try parsed.integer(LedgerOptions.sequencingWait, environment, in: 0...60_000))
        ledgerSettings.publicRead = parsed.flags.contains(LedgerOptions.publicFlag.name)
        self.ledgerSettings = ledgerSettings
        var prescribing = SafetyChecks.Settings()
        prescribing.abusePrescribers = try parsed.integer(Self.controlledPrescribersOption, environment, in: 2...1000)
        prescribing.abusePharmacies = try parsed.integer(Self.controlledPharmaciesOption, environment, in: 2...1000)
        prescribing.abuseWindowDays = try parsed.integer(Self.controlledWindowOption, environment, in: 1...3650)
        self.prescribing = prescribing
        var supply = SupplySettings()
        supply.receiptWindow = .seconds(3600 * (try parsed.integer(Self.shipmentReceiptOption, environment, in: 1...8760)))
        self.supply = supply
    }

    func run() async throws -> Int32 {
        let sink = BufferedLogSink()
        let log = EventLog(sink: sink, minimumLevel: logLevel)
        defer { log.flush() }
        let migrations = try database.loadMigrations()
        let pool = PostgresPool(configuration: database.pool)
        if migrateOnStart {
            let report = try await Migrator(pool: pool).migrate(migrations)
            log.log(.info, "migrated", [("applied", .int(report.applied.count)), ("total", .int(migrations.count))])
        }
        let ledger = try LedgerService(pool: pool, replica: database.replica.map(PostgresPool.init(configuration:)), signer: signer,
                                       settings: ledgerSettings, log: log)
        ledger.start()
        let httpMetrics = HTTPMetrics()
        let router = try Application.makeRouter(ApplicationContext(
            pool: pool, migrations: migrations, log: log, ledger: ledger, patientKeys: patientKeys, limits: limits, httpMetrics: httpMetrics,
            metricsAccess: metricsAccess, prescribing: prescribing, supply: supply))
        // Every instance against this database shares the key rates, failure budgets and
        // per-address connections: N instances must not mean N times the limit.
        let shared = DeploymentLimits(pool: pool, limits: limits, log: log)
        var configuration = self.configuration
        configuration.connectionsElsewhere = shared
        let server = HTTPServer(configuration: configuration, responder: router, accessLog: AccessLog(sink: sink), metrics: httpMetrics)
        let port = try server.start()
        shared.start { server.openConnectionsByAddress() }
        log.log(.info, "listening", [("host", .string(configuration.host)), ("port", .int(port)), ("tls", .string(tls != nil ? "on" : "off"))])
        let tls = self.tls
        signal(SIGHUP, SIG_IGN)
        let reload = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        reload.setEventHandler {
            // New connections get the new certificate; open ones keep theirs, nothing is dropped.
            guard let tls else { return }
            do {
                try tls.reload()
                log.log(.info, "tls reloaded")
            } catch {
                log.log(.error, "tls reload failed; the previous certificate stays", [("error", .string("\(error)"))])
            }
        }
        reload.resume()
        let signals = [SIGTERM, SIGINT].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                log.log(.info, "shutting down", [("signal", .int(Int(number)))])
                server.shutdown()
            }
            source.resume()
            return source
        }
        await server.waitUntilStopped()
        signals.forEach { $0.cancel() }
        reload.cancel()
        shared.stop()
        await ledger.stop()
        log.log(.info, "stopped")
        return 0
    }
}
