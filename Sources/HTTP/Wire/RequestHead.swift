/// The parsed request line and header section of one request.
public struct RequestHead: Sendable, Equatable {
    /// The method token.
    public var method: HTTPMethod
    /// The request-target exactly as sent (RFC 9112 §3.2).
    public var target: String
    /// The protocol version of the request line.
    public var version: HTTPVersion
    /// Every header field line, in order.
    public var headers: HTTPHeaders

    /// Creates a head from already validated parts.
    public init(method: HTTPMethod, target: String, version: HTTPVersion, headers: HTTPHeaders) {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
    }

    /// Whether the client wants the connection kept open after this exchange (RFC 9112 §9.3).
    public var wantsKeepAlive: Bool {
        let options = headers.tokens(name: "Connection")
        if options.contains("close") { return false }
        return version.defaultsToKeepAlive || options.contains("keep-alive")
    }

    /// Serializes the head and body with Content-Length framing. Parsing the result yields this head
    /// again (minus framing fields) and the same body; the fuzzer checks exactly that.
    public func serialized(body: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256 + body.count)
        out.append(contentsOf: "\(method.rawValue) \(target) \(version)\r\n".utf8)
        for field in headers where !BodyFraming.isFramingField(field.name) {
            out.append(contentsOf: "\(field.name): \(field.value)\r\n".utf8)
        }
        if !body.isEmpty {
            out.append(contentsOf: "Content-Length: \(body.count)\r\n".utf8)
        }
        out.append(contentsOf: "\r\n".utf8)
        out.append(contentsOf: body)
        return out
    }
}
