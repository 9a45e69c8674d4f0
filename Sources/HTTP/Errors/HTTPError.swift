/// The HTTP layer's own errors, and a ready-made error for handlers with nothing more specific.
public struct HTTPError: HTTPResponseError, Equatable {
    public let status: HTTPStatus
    public let code: String
    public let message: String
    public let headers: HTTPHeaders

    /// Creates an error shown to the client as given.
    public init(status: HTTPStatus, code: String, message: String, headers: HTTPHeaders = HTTPHeaders()) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    /// 400 `bad_request`.
    public static func badRequest(_ message: String) -> HTTPError {
        HTTPError(status: .badRequest, code: "bad_request", message: message)
    }

    /// 404 `not_found`.
    public static func notFound(_ message: String = "No such resource.") -> HTTPError {
        HTTPError(status: .notFound, code: "not_found", message: message)
    }

    /// 405 `method_not_allowed` with the `Allow` field RFC 9110 §15.5.6 requires.
    public static func methodNotAllowed(allowed: [HTTPMethod]) -> HTTPError {
        HTTPError(
            status: .methodNotAllowed, code: "method_not_allowed",
            message: "Method not allowed on this resource.",
            headers: HTTPHeaders([("Allow", allowed.map(\.rawValue).joined(separator: ", "))]))
    }

    /// 500 `internal_error`, deliberately saying nothing more.
    public static let internalError = HTTPError(
        status: .internalServerError, code: "internal_error", message: "Internal server error.")

    /// 503 `unavailable` when the server cannot take another connection.
    public static let tooManyConnections = HTTPError(
        status: .serviceUnavailable, code: "unavailable", message: "Too many connections; retry shortly.",
        headers: HTTPHeaders([("Retry-After", "1")]))

    /// 408 `request_timeout` when a client is too slow to send its request.
    public static let requestTimeout = HTTPError(
        status: .requestTimeout, code: "request_timeout", message: "The request was not received in time.")

    /// The error a parse failure is answered with.
    public init(_ parseError: HTTPParseError) {
        self.init(status: parseError.status, code: parseError.code, message: parseError.message)
    }
}
