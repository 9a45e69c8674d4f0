/// A response as handlers build it. Framing (Content-Length, Transfer-Encoding, Connection) is the
/// server's job alone: `ResponseEncoder` drops any such field a handler sets.
public struct Response: Sendable {
    /// The status.
    public var status: HTTPStatus
    /// Header fields other than framing.
    public var headers: HTTPHeaders
    /// The whole body.
    public var body: [UInt8]
    /// The route template that produced this response, for the access log; never sent.
    public var routeTemplate: String?

    /// Creates a response.
    public init(status: HTTPStatus, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A response with an `application/json` body the caller has already encoded.
    public static func json(_ status: HTTPStatus, _ body: [UInt8]) -> Response {
        Response(status: status, headers: HTTPHeaders([("Content-Type", "application/json")]), body: body)
    }
}
