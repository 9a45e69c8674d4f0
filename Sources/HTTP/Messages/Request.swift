/// A complete request as handlers see it: parsed head, whole body, and what the server and router
/// learned about it.
public struct Request: Sendable {
    /// The request line and header fields.
    public let head: RequestHead
    /// The decoded body (de-chunked), empty when there was none.
    public let body: [UInt8]
    /// The id echoed in `X-Request-Id` and in every error body and log line for this request.
    public let requestId: String
    /// The path of the target, still percent-encoded, without the query.
    public let path: String
    /// The query string after `?`, still percent-encoded, or nil when there is none.
    public let rawQuery: String?
    /// The client's IP address as text: the socket's peer, or, when that peer is a trusted proxy,
    /// the client its forwarding header names (see `HTTPServerConfiguration.trustedProxies`).
    public let clientAddress: String
    /// The socket's peer (a proxy's address behind a proxy).
    public let peerAddress: String
    /// The lowercase hex SHA-256 of the client's verified TLS certificate (mutual TLS), if any.
    public let clientCertificateSHA256: String?
    /// Values of the matched route's `{name}` segments, set by the router.
    public internal(set) var parameters = PathParameters()

    /// Creates a request from a parsed head; the path and query are taken from the target.
    public init(head: RequestHead, body: [UInt8] = [], requestId: String, clientAddress: String = "unknown",
                peerAddress: String? = nil, clientCertificateSHA256: String? = nil) {
        self.head = head
        self.body = body
        self.requestId = requestId
        self.clientAddress = clientAddress
        self.peerAddress = peerAddress ?? clientAddress
        self.clientCertificateSHA256 = clientCertificateSHA256
        (path, rawQuery) = Self.splitTarget(head.target)
    }

    /// The method.
    public var method: HTTPMethod { head.method }
    /// The header fields.
    public var headers: HTTPHeaders { head.headers }

    /// The decoded query parameters; a malformed percent-escape is a 400.
    public func query() throws(HTTPError) -> QueryParameters {
        try QueryParameters(parsing: rawQuery ?? "")
    }

    /// Splits origin-form or absolute-form targets (RFC 9112 §3.2) into path and query.
    private static func splitTarget(_ target: String) -> (String, String?) {
        var pathAndQuery = Substring(target)
        if !target.hasPrefix("/"), let schemeEnd = target.firstIndex(of: ":"),
           target[schemeEnd...].hasPrefix("://") {
            let afterAuthority = target[target.index(schemeEnd, offsetBy: 3)...]
            pathAndQuery = afterAuthority.firstIndex(where: { $0 == "/" || $0 == "?" })
                .map { afterAuthority[$0...] } ?? "/"
            if pathAndQuery.hasPrefix("?") { pathAndQuery = "/" + pathAndQuery }
        }
        guard let mark = pathAndQuery.firstIndex(of: "?") else { return (String(pathAndQuery), nil) }
        return (String(pathAndQuery[..<mark]), String(pathAndQuery[pathAndQuery.index(after: mark)...]))
    }
}
