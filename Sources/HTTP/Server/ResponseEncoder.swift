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
        var bytes: [UInt8] = []
        bytes.reserveCapacity(192 + response.body.count)
        bytes += "HTTP/1.1 ".utf8
        bytes += String(response.status.code).utf8
        bytes.append(ByteClass.sp)
        bytes += response.status.reasonPhrase.utf8
        bytes += "\r\nDate: ".utf8
        bytes += context.date.utf8
        bytes += crlf
        if !response.status.forbidsContent || response.status.code == 304 {
            bytes += "Content-Length: ".utf8
            bytes += String(response.body.count).utf8
            bytes += crlf
        }
        for field in response.headers where !isFramingOrConnection(field.name) {
            bytes += field.name.utf8
            bytes += ": ".utf8
            bytes += field.value.utf8
            bytes += crlf
        }
        bytes += "X-Request-Id: ".utf8
        bytes += context.requestId.utf8
        bytes += crlf
        if !context.keepAlive {
            bytes += "Connection: close\r\n".utf8
        } else if context.clientIsHTTP10 {
            bytes += "Connection: keep-alive\r\n".utf8
        }
        bytes += crlf
        if context.requestMethod != .head && !response.status.forbidsContent {
            bytes += response.body
        }
        return bytes
    }

    private static let crlf: [UInt8] = [ByteClass.cr, ByteClass.lf]

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
