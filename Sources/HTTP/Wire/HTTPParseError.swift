/// Why bytes on the wire are not an acceptable HTTP/1.1 request. Every case ends the connection after
/// the error response, so nothing can be smuggled behind a request the parser did not understand.
public enum HTTPParseError: Error, Equatable, Sendable {
    case invalidRequestLine
    case invalidMethod
    case invalidTarget
    case requestLineTooLong
    case invalidVersion
    case unsupportedVersion
    /// A line ended in LF without CR, or a CR not followed by LF (RFC 9112 §2.2).
    case invalidLineEnding
    /// A NUL or other control byte outside a field value.
    case invalidByte
    case headerSectionTooLarge
    case tooManyHeaders
    case missingColon
    case invalidHeaderName
    case whitespaceBeforeColon
    case obsoleteLineFolding
    case invalidHeaderValue
    case missingHost
    case duplicateHost
    /// A Host value that is not `uri-host [":" port]` (RFC 9110 §7.2).
    case invalidHost
    case invalidContentLength
    case conflictingContentLength
    case contentLengthWithTransferEncoding
    case transferEncodingNotChunked
    case unsupportedTransferCoding
    case invalidChunkSize
    case chunkSizeOverflow
    case invalidChunkExtension
    case chunkLineTooLong
    case invalidChunkTerminator
    case invalidTrailer
    case trailerTooLarge
    case bodyTooLarge
    case unsupportedExpectation

    /// The status the connection answers with before closing.
    public var status: HTTPStatus {
        switch self {
        case .requestLineTooLong: return .uriTooLong
        case .headerSectionTooLarge, .tooManyHeaders, .trailerTooLarge: return .requestHeaderFieldsTooLarge
        case .bodyTooLarge: return .contentTooLarge
        case .unsupportedVersion: return .httpVersionNotSupported
        case .unsupportedTransferCoding: return .notImplemented
        case .unsupportedExpectation: return .expectationFailed
        case .invalidRequestLine, .invalidMethod, .invalidTarget, .invalidVersion, .invalidLineEnding,
             .invalidByte, .missingColon, .invalidHeaderName, .whitespaceBeforeColon, .obsoleteLineFolding,
             .invalidHeaderValue, .missingHost, .duplicateHost, .invalidHost, .invalidContentLength,
             .conflictingContentLength, .contentLengthWithTransferEncoding, .transferEncodingNotChunked,
             .invalidChunkSize, .chunkSizeOverflow, .invalidChunkExtension, .chunkLineTooLong,
             .invalidChunkTerminator, .invalidTrailer:
            return .badRequest
        }
    }

    /// The machine-readable error code for the JSON error body.
    public var code: String {
        switch status.code {
        case 414: return "uri_too_long"
        case 431: return "headers_too_large"
        case 413: return "body_too_large"
        case 505: return "http_version_not_supported"
        case 501: return "not_implemented"
        case 417: return "expectation_failed"
        default: return "bad_request"
        }
    }

    /// A human-readable explanation that quotes nothing from the request.
    public var message: String {
        switch self {
        case .invalidRequestLine: return "Malformed request line."
        case .invalidMethod: return "Invalid method token."
        case .invalidTarget: return "Invalid request target."
        case .requestLineTooLong: return "Request line is too long."
        case .invalidVersion: return "Malformed HTTP version."
        case .unsupportedVersion: return "Only HTTP/1.0 and HTTP/1.1 are supported."
        case .invalidLineEnding: return "Lines must end in CRLF."
        case .invalidByte: return "Control byte in the request head."
        case .headerSectionTooLarge: return "Header section is too large."
        case .tooManyHeaders: return "Too many header fields."
        case .missingColon: return "Header line without a colon."
        case .invalidHeaderName: return "Invalid header field name."
        case .whitespaceBeforeColon: return "Whitespace between header name and colon."
        case .obsoleteLineFolding: return "Obsolete line folding is not accepted."
        case .invalidHeaderValue: return "Invalid byte in a header field value."
        case .missingHost: return "HTTP/1.1 requests need exactly one Host header."
        case .duplicateHost: return "More than one Host header."
        case .invalidHost: return "The Host header is not a host with an optional port."
        case .invalidContentLength: return "Content-Length must be digits only."
        case .conflictingContentLength: return "Conflicting Content-Length values."
        case .contentLengthWithTransferEncoding: return "Content-Length and Transfer-Encoding together."
        case .transferEncodingNotChunked: return "Transfer-Encoding must end in chunked."
        case .unsupportedTransferCoding: return "Unsupported transfer coding."
        case .invalidChunkSize: return "Malformed chunk size."
        case .chunkSizeOverflow: return "Chunk size overflows."
        case .invalidChunkExtension: return "Malformed chunk extension."
        case .chunkLineTooLong: return "Chunk size line is too long."
        case .invalidChunkTerminator: return "Chunk data must be followed by CRLF."
        case .invalidTrailer: return "Malformed trailer field."
        case .trailerTooLarge: return "Trailer section is too large."
        case .bodyTooLarge: return "Request body is too large."
        case .unsupportedExpectation: return "Only the 100-continue expectation is supported."
        }
    }
}
