import HTTP

/// Operational endpoints that load balancers and orchestrators call.
public enum OpsRoutes {
    private static let healthBody = Array(#"{"status":"ok"}"#.utf8)

    /// Registers `GET /health`: the process is up and serving HTTP. It checks nothing else, so it stays
    /// cheap enough to poll and never fails because a dependency is slow.
    public static func register(in router: inout RouterBuilder) {
        router.on(.get, "/health") { _ in
            .json(.ok, healthBody)
        }
    }
}
