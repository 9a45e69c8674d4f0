import HTTP

/// The domain's answers that are not successes, each with its stable code.
enum APIError {
    static func badRequest(_ message: String) -> HTTPError {
        HTTPError(status: .badRequest, code: "bad_request", message: message)
    }

    /// The same answer for a missing, malformed, unknown, revoked or expired key and a suspended
    /// organization, so a caller learns nothing about which.
    static let unauthenticated = HTTPError(
        status: .unauthorized, code: "unauthenticated", message: "A valid API key is required.",
        headers: HTTPHeaders([("WWW-Authenticate", #"Bearer realm="careledger""#)]))

    static let forbidden = HTTPError(
        status: .forbidden, code: "forbidden", message: "Your role does not allow this action.")

    static func rateLimited(retryAfterSeconds: Int) -> HTTPError {
        HTTPError(
            status: .tooManyRequests, code: "rate_limited", message: "Too many requests; retry later.",
            headers: HTTPHeaders([("Retry-After", String(retryAfterSeconds))]))
    }

    static func conflict(_ message: String) -> HTTPError {
        HTTPError(status: .conflict, code: "conflict", message: message)
    }

    /// 422 `invalid_resource`: well-formed JSON that is not an acceptable resource, naming where.
    static func invalidResource(_ path: String, _ problem: String) -> HTTPError {
        HTTPError(status: .unprocessableContent, code: "invalid_resource", message: "\(path): \(problem).")
    }

    /// 410 `erased`: the patient's data key was destroyed, so nothing about them can be read again.
    static let erased = HTTPError(status: .gone, code: "erased", message: "This patient's data was erased.")

    static let unsupportedMediaType = HTTPError(
        status: .unsupportedMediaType, code: "unsupported_media_type", message: "Send the body as application/json.")
}
