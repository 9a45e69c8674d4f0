/// Serializes a response head and body into one buffer, so it leaves in a single write. Body framing is
/// decided here and nowhere else (RFC 9112 §6.3, RFC 9110 §8.6): handlers cannot set Content-Length,
/// Transfer-Encoding or Connection, and a header a handler set with CR, LF or NUL in it turns the whole
/// response into a 500 rather than letting it split the response.
enum ResponseEncoder {
    struct Context {
        /// The request's method; a HEAD response gets the head only.
        var requestMethod: HTTPMethod?
        var requestId: String
        var keepAlive: Bool
        /// Whether the client speaks HTTP/1.0, which needs `Connection: keep-alive` spelled out.
        var clientIsHTTP10: Bool
        /// The current IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
        var date: String
    }

    static func encode(_ response: Response, context: Context) -> [UInt8] {
        guard response.headers.allSatisfy(isSafe) else {
            return encode(.error(HTTPError.internalError, requestId: context.requestId), context: context)
        }
        var head = "HTTP/1.1 \(response.status.code) \(response.status.reasonPhrase)\r\nDate: \(context.date)\r\n"
        if !response.status.forbidsContent || response.status.code == 304 {
            head += "Content-Length: \(response.body.count)\r\n"
        }
        for field in response.headers where !isFramingOrConnection(field.name) {
            head += "\(field.name): \(field.value)\r\n"
        }
        head += "X-Request-Id: \(context.requestId)\r\n"
        if !context.keepAlive {
            head += "Connection: close\r\n"
        } else if context.clientIsHTTP10 {
            head += "Connection: keep-alive\r\n"
        }
        head += "\r\n"
        var bytes = Array(head.utf8)
        if context.requestMethod != .head && !response.status.forbidsContent {
            bytes.append(contentsOf: response.body)
        }
        return bytes
    }

    /// The interim response to `Expect: 100-continue` (RFC 9110 §15.2.1).
    static let continueResponse = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    private static func isFramingOrConnection(_ name: String) -> Bool {
        BodyFraming.isFramingField(name) || HTTPHeaders.namesEqual(name, "Connection")
            || HTTPHeaders.namesEqual(name, "Date") || HTTPHeaders.namesEqual(name, "X-Request-Id")
    }

    /// A field is safe when its name is a token and its value holds no CR, LF, NUL or other control byte.
    private static func isSafe(_ field: HTTPHeaders.Field) -> Bool {
        !field.name.isEmpty && field.name.utf8.allSatisfy(ByteClass.isTChar)
            && field.value.utf8.allSatisfy(ByteClass.isFieldValue)
    }
}
