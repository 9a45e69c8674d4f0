import HTTP

/// The refusals the edge makes itself, before any area sees the request: authentication, rate and
/// media type. Everything an area refuses is a `DomainError`.
enum APIError {
    /// The same answer for a missing, malformed, unknown, revoked or expired key and a suspended
    /// organization, so a caller learns nothing about which.
    static let unauthenticated = HTTPError(
        status: .unauthorized, code: "unauthenticated", message: "A valid API key is required.",
        headers: HTTPHeaders([("WWW-Authenticate", #"Bearer realm="careledger""#)]))

    static func rateLimited(retryAfterSeconds: Int) -> HTTPError {
        HTTPError(
            status: .tooManyRequests, code: "rate_limited", message: "Too many requests; retry later.",
            headers: HTTPHeaders([("Retry-After", String(retryAfterSeconds))]))
    }

    static let unsupportedMediaType = HTTPError(
        status: .unsupportedMediaType, code: "unsupported_media_type", message: "Send the body as application/json.")
}
