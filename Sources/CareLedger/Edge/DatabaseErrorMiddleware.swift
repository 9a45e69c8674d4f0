import HTTP
import Postgres
import Telemetry

/// Maps database failures to HTTP in one place: an unreachable or saturated database is a 503 the
/// client can retry; anything else the database refuses is a plain 500. Details stay out of the
/// response and the log (they can quote data); only the kind and SQLSTATE are logged.
public struct DatabaseErrorMiddleware: Middleware {
    private let log: EventLog?

    /// Logs failures to `log` when given.
    public init(log: EventLog?) {
        self.log = log
    }

    /// 503 `database_unavailable` with `Retry-After`.
    public static let unavailable = HTTPError(
        status: .serviceUnavailable, code: "database_unavailable",
        message: "The database is unavailable; retry shortly.", headers: HTTPHeaders([("Retry-After", "1")]))

    public func respond(to request: Request, next: RouteHandler) async throws -> Response {
        do {
            return try await next(request)
        } catch let error as PostgresError {
            log?.log(.error, "database error", [
                ("requestId", .string(request.requestId)), ("kind", .string("\(error.kind)")),
                ("sqlState", .string(error.sqlState ?? "-")),
            ])
            throw error.isUnavailable ? Self.unavailable : HTTPError.internalError
        }
    }
}
