/// An error that knows how it is shown to a client. Anything else thrown by a handler becomes a 500 with
/// a generic message, so internal details never leak by accident.
public protocol HTTPResponseError: Error {
    /// The response status.
    var status: HTTPStatus { get }
    /// A stable machine-readable code, e.g. `not_found`.
    var code: String { get }
    /// A message safe to show the caller: no SQL, no parameters, no patient data.
    var message: String { get }
    /// Extra response fields such as `Allow`, `Retry-After` or `WWW-Authenticate`.
    var headers: HTTPHeaders { get }
}

extension HTTPResponseError {
    public var headers: HTTPHeaders { HTTPHeaders() }
}
