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

    public init() {}
}

/// A refusal that is also an audit event: the answer the caller gets, and what the trail records.
struct Denial: Error {
    let error: HTTPError
    let reason: String
    let resourceType: String
    let resourceId: String?
    /// The patient the refused request was about, so it shows in the patient's access log.
    let patientId: String?

    init(error: HTTPError, reason: String, resourceType: String, resourceId: String?, patientId: String? = nil) {
        self.error = error
        self.reason = reason
        self.resourceType = resourceType
        self.resourceId = resourceId
        self.patientId = patientId ?? (resourceType == "patient" ? resourceId : nil)
    }

    /// An object the caller may not see answers exactly like one that does not exist (OWASP API1).
    static func notVisible(_ resourceType: String, _ resourceId: String, reason: String = "not visible to the caller") -> Denial {
        Denial(error: HTTPError.notFound(), reason: reason, resourceType: resourceType, resourceId: resourceId)
    }

    static func conflict(_ message: String, _ resourceType: String, _ resourceId: String) -> Denial {
        Denial(error: APIError.conflict(message), reason: message, resourceType: resourceType, resourceId: resourceId)
    }
}

/// What a protected handler gets: the request, the authenticated caller, and the audit event
/// templates for what it does.
struct APIContext: Sendable {
    let request: Request
    let caller: Caller
    let action: Action
    let purpose: PurposeOfUse?
    let metrics: ServiceMetrics

    /// A `permit` event for this request about one resource.
    func permitted(_ resourceType: String, _ resourceId: String? = nil, patientId: String? = nil, reason: String = "allowed by role") -> AuditEvent {
        event(.permit, resourceType: resourceType, resourceId: resourceId, patientId: patientId, reason: reason)
    }

    func event(_ decision: AuditEvent.Decision, resourceType: String?, resourceId: String?, patientId: String?, reason: String) -> AuditEvent {
        AuditEvent(
            requestId: request.requestId, actorOrg: caller.orgId, keyId: caller.keyId, role: caller.role,
            action: action.rawValue, resourceType: resourceType, resourceId: resourceId, patientId: patientId,
            purpose: purpose, decision: decision, reason: reason, clientAddress: request.clientAddress)
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
    let identity: IdentityStore
    let audit: AuditStore
    let limits: AccessLimits
    let metrics = ServiceMetrics()
    private let requestLimiter = RateLimiter(period: .seconds(1))
    private let failureLimiter = RateLimiter(period: .seconds(60))

    init(pool: PostgresPool, limits: AccessLimits) {
        self.pool = pool
        identity = IdentityStore()
        audit = AuditStore()
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
            if let retry = failureLimiter.take(address, capacity: limits.authFailuresPerMinute) {
                metrics.rateLimited()
                throw APIError.rateLimited(retryAfterSeconds: retry)
            }
            try await audit.record(AuditEvent(
                requestId: request.requestId, keyId: token?.keyId, action: action.rawValue, decision: .deny,
                reason: "unauthenticated", clientAddress: address), on: pool)
            throw APIError.unauthenticated
        }
        if let retry = requestLimiter.take(caller.keyId, capacity: caller.rateLimit ?? limits.keyRequestsPerSecond) {
            metrics.rateLimited()
            throw APIError.rateLimited(retryAfterSeconds: retry)
        }
        let context = APIContext(request: request, caller: caller, action: action, purpose: try Self.purpose(of: request), metrics: metrics)
        guard PermissionMatrix.permits(caller.role, action) else {
            metrics.denied(code: APIError.forbidden.code)
            try await audit.record(context.event(.deny, resourceType: nil, resourceId: nil, patientId: nil, reason: "role not permitted"), on: pool)
            throw APIError.forbidden
        }
        do {
            return try await handler(context)
        } catch let denial as Denial {
            metrics.denied(code: denial.error.code)
            try await audit.record(context.event(
                .deny, resourceType: denial.resourceType, resourceId: denial.resourceId, patientId: denial.patientId, reason: denial.reason), on: pool)
            throw denial.error
        }
    }

    private static func purpose(of request: Request) throws(HTTPError) -> PurposeOfUse? {
        guard let text = request.headers.first(name: PurposeOfUse.headerName) else { return nil }
        guard let purpose = PurposeOfUse(rawValue: text) else {
            let known = PurposeOfUse.allCases.map(\.rawValue).joined(separator: ", ")
            throw APIError.badRequest("\(PurposeOfUse.headerName) must be one of \(known).")
        }
        return purpose
    }
}

/// A route as registered: what the contract test and the permission test walk.
public struct RouteDescription: Sendable, Hashable {
    public let method: HTTPMethod
    public let template: String
    /// Nil for public routes (`/health`, `/ready`).
    public let action: Action?
}

/// Registers routes and remembers them, so the route table can be checked against openapi.yaml and
/// the permission matrix.
struct APIRouteBuilder {
    var router = RouterBuilder()
    private(set) var routes: [RouteDescription] = []
    let access: AccessControl

    init(access: AccessControl) {
        self.access = access
    }

    /// A route anyone may call.
    mutating func onPublic(_ method: HTTPMethod, _ template: String, use handler: @escaping RouteHandler) {
        routes.append(RouteDescription(method: method, template: template, action: nil))
        router.on(method, template, use: handler)
    }

    /// A read-only route that needs a key whose role may perform `action`, unless `isPublic`, when
    /// anyone may call it (for data that holds no PHI, such as the ledger).
    mutating func on(_ method: HTTPMethod, _ template: String, _ action: Action, publicWhen isPublic: Bool, use handler: @escaping RouteHandler) {
        guard isPublic else {
            return on(method, template, action) { context in try await handler(context.request) }
        }
        routes.append(RouteDescription(method: method, template: template, action: action))
        router.on(method, template, use: handler)
    }

    /// A route that needs a key whose role may perform `action`.
    mutating func on(_ method: HTTPMethod, _ template: String, _ action: Action, use handler: @escaping @Sendable (APIContext) async throws -> Response) {
        routes.append(RouteDescription(method: method, template: template, action: action))
        let access = self.access
        router.on(method, template) { request in
            try await access.handle(request, action, handler)
        }
    }
}
