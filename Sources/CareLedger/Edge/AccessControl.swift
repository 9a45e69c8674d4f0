import HTTP
import Postgres

/// Rate-limit settings.
public struct AccessLimits: Sendable {
    /// Requests per second a key may make when it has no limit of its own (bucket of the same size).
    public var keyRequestsPerSecond = 100
    /// Failed authentications a client address may make per minute; past it, further failed
    /// attempts from the address answer 429 (unlooked-at when they carry no usable credential, and
    /// unaudited), while a request whose key verifies still goes through.
    public var authFailuresPerMinute = 20
    /// The buckets every copy of these settings shares (and `DeploymentLimits` keeps in step with
    /// the deployment's other instances).
    let buckets: AccessBuckets

    public init() {
        buckets = AccessBuckets(clock: { .now })
    }

    /// Limits whose buckets tell time by `clock`.
    init(clock: @escaping @Sendable () -> ContinuousClock.Instant) {
        buckets = AccessBuckets(clock: clock)
    }
}

/// The token buckets of the request rate (per key, per second) and of failed authentications (per
/// client address, per minute).
final class AccessBuckets: Sendable {
    let requests: RateLimiter
    let failures: RateLimiter

    init(clock: @escaping @Sendable () -> ContinuousClock.Instant) {
        requests = RateLimiter(period: .seconds(1), clock: clock)
        failures = RateLimiter(period: .seconds(60), clock: clock)
    }
}

/// Runs every protected request through the same gate, in this order: the key (or client
/// certificate), the key's request rate, the declared purpose, the permission matrix; then the
/// handler. A failed authentication counts against the client address's budget: within it the
/// answer is 401 and an audit event, past it 429 and nothing written. A valid key is never held
/// back by its address, so one misconfigured client behind a hospital's NAT or a proxy cannot lock
/// out everyone else there. Denials by role or by object are written to the audit trail.
struct AccessControl: Sendable {
    let pool: PostgresPool
    let identity = IdentityStore()
    let audit = AuditStore()
    let limits: AccessLimits
    let metrics = ServiceMetrics()

    init(pool: PostgresPool, limits: AccessLimits) {
        self.pool = pool
        self.limits = limits
    }

    func handle(_ request: Request, _ action: Action, _ handler: (APIContext) async throws -> Response) async throws -> Response {
        let address = request.clientAddress
        // A bearer key when one is presented; else a verified TLS client certificate (mutual TLS).
        let authorization = request.headers.first(name: "Authorization")
        let token = APIKeyToken(authorization: authorization)
        let caller: Caller?
        if let token {
            caller = try await identity.caller(for: token, on: pool)
        } else if authorization == nil, let certificate = request.clientCertificateSHA256 {
            caller = try await identity.caller(certificateSHA256: certificate, on: pool)
        } else {
            caller = nil
        }
        guard let caller else {
            if let retry = limits.buckets.failures.take(address, capacity: limits.authFailuresPerMinute) {
                metrics.rateLimited()
                throw APIError.rateLimited(retryAfterSeconds: retry)
            }
            try await audit.record(AuditEvent(
                requestId: request.requestId, keyId: token?.keyId, action: action.rawValue, decision: .deny,
                reason: "unauthenticated", clientAddress: address), on: pool)
            throw APIError.unauthenticated
        }
        if let retry = limits.buckets.requests.take(caller.keyId, capacity: caller.rateLimit ?? limits.keyRequestsPerSecond) {
            metrics.rateLimited()
            throw APIError.rateLimited(retryAfterSeconds: retry)
        }
        let call = CallContext(
            caller: caller, action: action, purpose: try Self.purpose(of: request), requestId: request.requestId, clientAddress: address,
            breakGlassReason: request.headers.first(name: BreakTheGlass.headerName), metrics: metrics)
        guard PermissionMatrix.permits(caller.role, action) else {
            metrics.denied(code: DomainError.forbidden.code)
            try await audit.record(call.event(.deny, resourceType: nil, resourceId: nil, patientId: nil, reason: "role not permitted"), on: pool)
            throw DomainError.forbidden
        }
        do {
            return try await handler(APIContext(request: request, call: call))
        } catch let denial as Denial {
            metrics.denied(code: denial.error.code)
            try await audit.record(call.event(
                .deny, resourceType: denial.resourceType, resourceId: denial.resourceId, patientId: denial.patientId, reason: denial.reason), on: pool)
            throw denial.error
        }
    }

    private static func purpose(of request: Request) throws(DomainError) -> PurposeOfUse? {
        guard let text = request.headers.first(name: PurposeOfUse.headerName) else { return nil }
        guard let purpose = PurposeOfUse(rawValue: text) else {
            let known = PurposeOfUse.allCases.map { $0.rawValue }.joined(separator: ", ")
            throw .invalid("\(PurposeOfUse.headerName) must be one of \(known).")
        }
        return purpose
    }
}
