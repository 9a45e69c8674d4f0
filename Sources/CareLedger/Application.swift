import HTTP
import Postgres
import Telemetry

/// What the application's areas need, built once by the composition root.
public struct ApplicationContext: Sendable {
    /// The database.
    public let pool: PostgresPool
    /// The migrations this build ships, for readiness.
    public let migrations: [Migration]
    /// Application log.
    public let log: EventLog?
    /// Rate limits for keys and failed authentication.
    public let limits: AccessLimits
    /// The verifiable log.
    public let ledger: LedgerService
    /// The keys that seal patient data and index identifiers.
    public let patientKeys: PatientKeys
    /// The HTTP server's request metrics, and who may read `/metrics`.
    public let httpMetrics: HTTPMetrics?
    public let metricsAccess: MetricsAccess
    /// Thresholds of the prescribing checks.
    public let prescribing: SafetyChecks.Settings
    /// The supply chain's receipt window.
    public let supply: SupplySettings
    /// The device area's windows and batch limits.
    public let devices: DeviceSettings

    /// Bundles the dependencies.
    public init(pool: PostgresPool, migrations: [Migration], log: EventLog?, ledger: LedgerService, patientKeys: PatientKeys,
                limits: AccessLimits = AccessLimits(), httpMetrics: HTTPMetrics? = nil, metricsAccess: MetricsAccess = MetricsAccess(),
                prescribing: SafetyChecks.Settings = SafetyChecks.Settings(), supply: SupplySettings = SupplySettings(),
                devices: DeviceSettings = DeviceSettings()) {
        self.pool = pool
        self.migrations = migrations
        self.log = log
        self.ledger = ledger
        self.patientKeys = patientKeys
        self.limits = limits
        self.httpMetrics = httpMetrics
        self.metricsAccess = metricsAccess
        self.prescribing = prescribing
        self.supply = supply
        self.devices = devices
    }
}

/// The composition of every area's routes into one router.
public enum Application {
    /// Builds the router for the whole API.
    public static func makeRouter(_ context: ApplicationContext) throws -> Router {
        try make(context).router
    }

    /// The router and the table of routes it serves (for the contract and permission tests).
    public static func make(_ context: ApplicationContext) throws -> (router: Router, routes: [RouteDescription]) {
        var api = APIRouteBuilder(access: AccessControl(pool: context.pool, limits: context.limits))
        api.router.add(middleware: DatabaseErrorMiddleware(log: context.log))
        OpsRoutes.register(in: &api, readiness: ReadinessCheck(pool: context.pool, migrations: context.migrations))
        MetricsRoutes.register(in: &api, access: context.metricsAccess, http: context.httpMetrics, ledger: context.ledger)
        IdentityRoutes.register(in: &api)
        PatientRoutes.register(in: &api, keys: context.patientKeys)
        ConsentRoutes.register(in: &api, ledger: context.ledger)
        ExchangeRoutes.register(in: &api, ledger: context.ledger, keys: context.patientKeys)
        RecordRoutes.register(in: &api)
        ClaimRoutes.register(in: &api, ledger: context.ledger, keys: context.patientKeys, log: context.log)
        PrescriptionRoutes.register(in: &api, ledger: context.ledger, keys: context.patientKeys, settings: context.prescribing)
        SupplyRoutes.register(in: &api, ledger: context.ledger, settings: context.supply)
        DeviceRoutes.register(in: &api, ledger: context.ledger, keys: context.patientKeys, settings: context.devices)
        AuditRoutes.register(in: &api)
        LedgerRoutes.register(in: &api, ledger: context.ledger)
        return (try api.router.build(), api.routes)
    }
}
