/// Every bound the request parser enforces, in one place. Defaults follow common server practice
/// (nginx, NIO); each limit names the status a request over it receives.
public struct HTTPParserLimits: Sendable, Equatable {
    /// Longest request line, CRLF excluded. Over it: 414 URI Too Long.
    public var maxRequestLineBytes: Int = 8 * 1024
    /// Largest header section, request line and CRLFs included. Over it: 431.
    public var maxHeaderBytes: Int = 16 * 1024
    /// Most header field lines. Over it: 431.
    public var maxHeaderCount: Int = 100
    /// Largest decoded body. Over it: 413 Content Too Large, answered before the body is read.
    public var maxBodyBytes: Int = 1024 * 1024
    /// Longest chunk-size line, extensions included (RFC 9112 §7.1.1 leaves it to us). Over it: 400.
    public var maxChunkLineBytes: Int = 1024
    /// Largest trailer section of a chunked body. Over it: 431.
    public var maxTrailerBytes: Int = 4 * 1024
    /// Empty lines tolerated before a request line (RFC 9112 §2.2 says to ignore at least one).
    public var maxLeadingEmptyLines: Int = 4

    /// The defaults above.
    public init() {}
}
