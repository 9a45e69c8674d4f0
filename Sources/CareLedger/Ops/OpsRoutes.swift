import HTTP

/// Operational endpoints that load balancers and orchestrators call.
public enum OpsRoutes {
    private static let healthBody = Array(#"{"status":"ok"}"#.utf8)
    private static let readyBody = Array(#"{"status":"ready"}"#.utf8)

    /// Registers `GET /health` (the process serves HTTP; checks nothing else, so it stays cheap and
    /// never fails because a dependency is slow) and `GET /ready` (the database answers and the
    /// schema is current: the signal to route traffic here).
    static func register(in api: inout APIRouteBuilder, readiness: ReadinessCheck) {
        api.onPublic(.get, "/health") { _ in
            .json(.ok, healthBody)
        }
        api.onPublic(.get, "/ready") { _ in
            switch try await readiness.check() {
            case .ready:
                return .json(.ok, readyBody)
            case .databaseUnavailable:
                throw DatabaseErrorMiddleware.unavailable
            case .notReady(let message):
                throw HTTPError(status: .serviceUnavailable, code: "not_ready", message: message, headers: HTTPHeaders([("Retry-After", "5")]))
            }
        }
    }
}
