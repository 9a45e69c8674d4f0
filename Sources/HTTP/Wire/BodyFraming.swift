/// How a request's body is delimited. Decided in exactly one place, `decide`, from RFC 9112 §6.
public enum BodyFraming: Equatable, Sendable {
    case none
    /// A Content-Length body; the count may exceed the body limit, which the decoder answers with 413.
    case length(UInt64)
    case chunked

    /// Whether a field name describes framing; handlers may not set these, and re-serialization drops them.
    public static func isFramingField(_ name: String) -> Bool {
        HTTPHeaders.namesEqual(name, "Content-Length") || HTTPHeaders.namesEqual(name, "Transfer-Encoding")
    }

    /// The framing of a request, or why it cannot be trusted.
    public static func decide(_ head: RequestHead) throws(HTTPParseError) -> BodyFraming {
        let transferEncodings = head.headers["Transfer-Encoding"]
        let contentLengths = head.headers["Content-Length"]
        if !transferEncodings.isEmpty {
            // §6.1: both at once is a smuggling attempt; the message is faulty.
            guard contentLengths.isEmpty else { throw .contentLengthWithTransferEncoding }
            // §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
            guard head.version.defaultsToKeepAlive else { throw .transferEncodingNotChunked }
            return try chunkedFraming(codings: head.headers.tokens(name: "Transfer-Encoding"))
        }
        guard !contentLengths.isEmpty else { return .none }
        let length = try contentLength(contentLengths)
        return length == 0 ? .none : .length(length)
    }

    /// §6.3 item 4: a request whose final coding is not chunked cannot be delimited (400); a coding we do
    /// not implement is 501 (§6.1); chunked applied twice is invalid (§7).
    private static func chunkedFraming(codings: [String]) throws(HTTPParseError) -> BodyFraming {
        guard codings.last == "chunked" else { throw .transferEncodingNotChunked }
        guard codings.allSatisfy({ $0 == "chunked" }) else { throw .unsupportedTransferCoding }
        guard codings.count == 1 else { throw .transferEncodingNotChunked }
        return .chunked
    }

    /// §6.3 item 5: digits only; repeated values (as separate fields or a list) must all agree.
    private static func contentLength(_ values: [String]) throws(HTTPParseError) -> UInt64 {
        var agreed: UInt64?
        for value in values {
            for element in value.split(separator: ",", omittingEmptySubsequences: false) {
                let digits = element.trimmingWhitespace()
                guard !digits.isEmpty, digits.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else {
                    throw .invalidContentLength
                }
                let parsed = saturatingDecimal(digits)
                if let agreed, agreed != parsed { throw .conflictingContentLength }
                agreed = parsed
            }
        }
        return agreed ?? 0
    }

    /// A decimal value that saturates rather than overflows: an absurd length is simply too large (413).
    private static func saturatingDecimal(_ digits: String) -> UInt64 {
        var value: UInt64 = 0
        for byte in digits.utf8 {
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(UInt64(byte - 0x30))
            if overflow1 || overflow2 { return .max }
            value = sum
        }
        return value
    }
}
