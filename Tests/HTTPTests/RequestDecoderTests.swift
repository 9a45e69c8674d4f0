import HTTP
import Testing

/// One wire fixture and what it must decode to.
struct DecoderCase: CustomTestStringConvertible, Sendable {
    let name: String
    let raw: String
    let expected: [Decoded]
    var limits = HTTPParserLimits()

    var testDescription: String { name }
}

private func ok(_ method: String = "GET", _ target: String = "/", body: String = "") -> Decoded {
    .request(method: method, target: target, body: body)
}

private let host = "Host: h\r\n"

private var smallLimits: HTTPParserLimits {
    var limits = HTTPParserLimits()
    limits.maxRequestLineBytes = 32
    limits.maxHeaderBytes = 96
    limits.maxHeaderCount = 3
    limits.maxBodyBytes = 10
    limits.maxChunkLineBytes = 16
    limits.maxTrailerBytes = 16
    return limits
}

let decoderCases: [DecoderCase] = [
    // Valid requests and framing.
    DecoderCase(name: "simple GET", raw: "GET / HTTP/1.1\r\n\(host)\r\n", expected: [ok()]),
    DecoderCase(name: "HTTP/1.0 without Host", raw: "GET /a HTTP/1.0\r\n\r\n", expected: [ok("GET", "/a")]),
    DecoderCase(name: "content-length body", raw: "POST /p HTTP/1.1\r\n\(host)Content-Length: 5\r\n\r\nhello",
                expected: [ok("POST", "/p", body: "hello")]),
    DecoderCase(name: "identical duplicate content-length", raw: "POST / HTTP/1.1\r\n\(host)Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
                expected: [ok("POST", body: "abc")]),
    DecoderCase(name: "content-length list of equal values", raw: "POST / HTTP/1.1\r\n\(host)Content-Length: 3, 3\r\n\r\nabc",
                expected: [ok("POST", body: "abc")]),
    DecoderCase(name: "chunked body", raw: "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
                expected: [ok("POST", body: "hello world")]),
    DecoderCase(name: "chunked with upper-case hex and extensions", raw: "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\n\r\nA;name=value;q=\"x y\"\r\n0123456789\r\n0;last\r\n\r\n",
                expected: [ok("POST", body: "0123456789")]),
    DecoderCase(name: "chunked with BWS before extension", raw: "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\n\r\n3 ;x\r\nabc\r\n0\r\n\r\n",
                expected: [ok("POST", body: "abc")]),
    DecoderCase(name: "chunked with trailers", raw: "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nDigest: x\r\nOther: y\r\n\r\n",
                expected: [ok("POST", body: "abc")]),
    DecoderCase(name: "transfer-encoding in other casing", raw: "POST / HTTP/1.1\r\n\(host)transfer-encoding: Chunked\r\n\r\n1\r\na\r\n0\r\n\r\n",
                expected: [ok("POST", body: "a")]),
    DecoderCase(name: "transfer-encoding with trailing comma (empty list element, RFC 9110 5.6.1)",
                raw: "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: chunked,\r\n\r\n1\r\na\r\n0\r\n\r\n",
                expected: [ok("POST", body: "a")]),
    DecoderCase(name: "leading empty line is ignored", raw: "\r\nGET / HTTP/1.1\r\n\(host)\r\n", expected: [ok()]),
    DecoderCase(name: "three pipelined requests", raw: "GET /1 HTTP/1.1\r\n\(host)\r\nPOST /2 HTTP/1.1\r\n\(host)Content-Length: 2\r\n\r\nhiGET /3 HTTP/1.1\r\n\(host)\r\n",
                expected: [ok("GET", "/1"), ok("POST", "/2", body: "hi"), ok("GET", "/3")]),
    DecoderCase(name: "absolute-form target", raw: "GET http://h/x?y=1 HTTP/1.1\r\n\(host)\r\n", expected: [ok("GET", "http://h/x?y=1")]),
    DecoderCase(name: "asterisk-form for OPTIONS", raw: "OPTIONS * HTTP/1.1\r\n\(host)\r\n", expected: [ok("OPTIONS", "*")]),
    DecoderCase(name: "HTTP/1.2 is served as 1.x", raw: "GET / HTTP/1.2\r\n\(host)\r\n", expected: [ok()]),
    DecoderCase(name: "obs-text in a value is allowed", raw: "GET / HTTP/1.1\r\n\(host)X: caf\u{e9}\r\n\r\n", expected: [ok()]),
    DecoderCase(name: "empty header value", raw: "GET / HTTP/1.1\r\n\(host)X-Empty:\r\n\r\n", expected: [ok()]),
    DecoderCase(name: "content-length zero", raw: "POST / HTTP/1.1\r\n\(host)Content-Length: 0\r\n\r\n", expected: [ok("POST")]),
    DecoderCase(name: "truncated body", raw: "POST / HTTP/1.1\r\n\(host)Content-Length: 10\r\n\r\nabc", expected: [.incomplete]),
    DecoderCase(name: "truncated head", raw: "GET / HTTP/1.1\r\nHost: h\r\n", expected: [.incomplete]),

    // Request line.
    DecoderCase(name: "invalid method token", raw: "G(T / HTTP/1.1\r\n\(host)\r\n", expected: [.error(.invalidMethod)]),
    DecoderCase(name: "empty method", raw: " / HTTP/1.1\r\n\(host)\r\n", expected: [.error(.invalidMethod)]),
    DecoderCase(name: "two spaces in request line", raw: "GET  / HTTP/1.1\r\n\(host)\r\n", expected: [.error(.invalidRequestLine)]),
    DecoderCase(name: "space inside the version part", raw: "GET / HTTP/1.1 x\r\n\(host)\r\n", expected: [.error(.invalidRequestLine)]),
    DecoderCase(name: "missing version", raw: "GET /\r\n\(host)\r\n", expected: [.error(.invalidRequestLine)]),
    DecoderCase(name: "lower-case version", raw: "GET / http/1.1\r\n\(host)\r\n", expected: [.error(.invalidVersion)]),
    DecoderCase(name: "HTTP/2.0 is 505", raw: "GET / HTTP/2.0\r\n\(host)\r\n", expected: [.error(.unsupportedVersion)]),
    DecoderCase(name: "HTTP/0.9 is 505", raw: "GET / HTTP/0.9\r\n\r\n", expected: [.error(.unsupportedVersion)]),
    DecoderCase(name: "target with control byte", raw: "GET /a\u{7f}b HTTP/1.1\r\n\(host)\r\n", expected: [.error(.invalidTarget)]),
    DecoderCase(name: "target not origin-form", raw: "GET abc HTTP/1.1\r\n\(host)\r\n", expected: [.error(.invalidTarget)]),
    DecoderCase(name: "asterisk only for OPTIONS", raw: "GET * HTTP/1.1\r\n\(host)\r\n", expected: [.error(.invalidTarget)]),
    DecoderCase(name: "request line too long is 414", raw: "GET /\(String(repeating: "a", count: 40)) HTTP/1.1\r\n\(host)\r\n",
                expected: [.error(.requestLineTooLong)], limits: smallLimits),
    DecoderCase(name: "too many leading empty lines", raw: "\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\(host)\r\n", expected: [.error(.invalidRequestLine)]),

    // Line endings and bytes.
    DecoderCase(name: "LF-only line ends", raw: "GET / HTTP/1.1\nHost: h\n\n", expected: [.error(.invalidLineEnding)]),
    DecoderCase(name: "LF-only after a header", raw: "GET / HTTP/1.1\r\nHost: h\n\r\n", expected: [.error(.invalidLineEnding)]),
    DecoderCase(name: "bare CR in a header value", raw: "GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", expected: [.error(.invalidLineEnding)]),
    DecoderCase(name: "NUL in a header value", raw: "GET / HTTP/1.1\r\nHost: h\u{0}x\r\n\r\n", expected: [.error(.invalidByte)]),
    DecoderCase(name: "control byte in a header value", raw: "GET / HTTP/1.1\r\nHost: h\u{1}x\r\n\r\n", expected: [.error(.invalidHeaderValue)]),
    DecoderCase(name: "DEL in a header value", raw: "GET / HTTP/1.1\r\nHost: h\u{7f}\r\n\r\n", expected: [.error(.invalidHeaderValue)]),

    // Header lines.
    DecoderCase(name: "header without colon", raw: "GET / HTTP/1.1\r\n\(host)NoColon\r\n\r\n", expected: [.error(.missingColon)]),
    DecoderCase(name: "whitespace before colon", raw: "GET / HTTP/1.1\r\nHost : h\r\n\r\n", expected: [.error(.whitespaceBeforeColon)]),
    DecoderCase(name: "tab before colon", raw: "GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", expected: [.error(.whitespaceBeforeColon)]),
    DecoderCase(name: "obs-fold", raw: "GET / HTTP/1.1\r\n\(host)X: a\r\n  b\r\n\r\n", expected: [.error(.obsoleteLineFolding)]),
    DecoderCase(name: "obs-fold hiding a Transfer-Encoding", raw: "POST / HTTP/1.1\r\n\(host)X: a\r\n Transfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\na",
                expected: [.error(.obsoleteLineFolding)]),
    DecoderCase(name: "invalid header name", raw: "GET / HTTP/1.1\r\n\(host)Bad@Name: x\r\n\r\n", expected: [.error(.invalidHeaderName)]),
    DecoderCase(name: "empty header name", raw: "GET / HTTP/1.1\r\n\(host): x\r\n\r\n", expected: [.error(.invalidHeaderName)]),
    DecoderCase(name: "missing Host on 1.1", raw: "GET / HTTP/1.1\r\n\r\n", expected: [.error(.missingHost)]),
    DecoderCase(name: "duplicate Host", raw: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", expected: [.error(.duplicateHost)]),
    DecoderCase(name: "Host with a space is 400", raw: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", expected: [.error(.invalidHost)]),
    DecoderCase(name: "Host with a letter in the port is 400", raw: "GET / HTTP/1.1\r\nHost: example.com:80x\r\n\r\n", expected: [.error(.invalidHost)]),
    DecoderCase(name: "Host with userinfo is 400", raw: "GET / HTTP/1.1\r\nHost: user@example.com\r\n\r\n", expected: [.error(.invalidHost)]),
    DecoderCase(name: "Host with an unclosed IP literal is 400", raw: "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", expected: [.error(.invalidHost)]),
    DecoderCase(name: "Host with a path is 400", raw: "GET / HTTP/1.1\r\nHost: example.com/x\r\n\r\n", expected: [.error(.invalidHost)]),
    DecoderCase(name: "Host IP literal of non-hex is 400", raw: "GET / HTTP/1.1\r\nHost: [zz::1]\r\n\r\n", expected: [.error(.invalidHost)]),
    DecoderCase(name: "Host with a bad percent-escape is 400", raw: "GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", expected: [.error(.invalidHost)]),
    DecoderCase(name: "Host with two ports is 400", raw: "GET / HTTP/1.1\r\nHost: a:1:2\r\n\r\n", expected: [.error(.invalidHost)]),
    DecoderCase(name: "Host with a quote is 400", raw: "GET / HTTP/1.1\r\nHost: a\"b\r\n\r\n", expected: [.error(.invalidHost)]),
    DecoderCase(name: "Host name and port is accepted", raw: "GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", expected: [.request(method: "GET", target: "/", body: "")]),
    DecoderCase(name: "Host IPv6 literal and port is accepted", raw: "GET / HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n", expected: [.request(method: "GET", target: "/", body: "")]),
    DecoderCase(name: "Host IPv4 is accepted", raw: "GET / HTTP/1.1\r\nHost: 192.0.2.1\r\n\r\n", expected: [.request(method: "GET", target: "/", body: "")]),
    DecoderCase(name: "Host empty (no authority) is accepted", raw: "GET / HTTP/1.1\r\nHost: \r\n\r\n", expected: [.request(method: "GET", target: "/", body: "")]),
    DecoderCase(name: "Host percent-encoded is accepted", raw: "GET / HTTP/1.1\r\nHost: a%2Db\r\n\r\n", expected: [.request(method: "GET", target: "/", body: "")]),
    DecoderCase(name: "Host IPvFuture is accepted", raw: "GET / HTTP/1.1\r\nHost: [v1.fe80::a+en1]\r\n\r\n", expected: [.request(method: "GET", target: "/", body: "")]),
    DecoderCase(name: "Host empty port is accepted", raw: "GET / HTTP/1.1\r\nHost: example.com:\r\n\r\n", expected: [.request(method: "GET", target: "/", body: "")]),
    DecoderCase(name: "header section too large is 431", raw: "GET / HTTP/1.1\r\n\(host)X: \(String(repeating: "v", count: 100))\r\n\r\n",
                expected: [.error(.headerSectionTooLarge)], limits: smallLimits),
    DecoderCase(name: "too many headers is 431", raw: "GET / HTTP/1.1\r\n\(host)A: 1\r\nB: 2\r\nC: 3\r\n\r\n",
                expected: [.error(.tooManyHeaders)], limits: smallLimits),

    // Content-Length.
    DecoderCase(name: "differing content-lengths", raw: "POST / HTTP/1.1\r\n\(host)Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
                expected: [.error(.conflictingContentLength)]),
    DecoderCase(name: "content-length list with differing values", raw: "POST / HTTP/1.1\r\n\(host)Content-Length: 3, 4\r\n\r\nabcd",
                expected: [.error(.conflictingContentLength)]),
    DecoderCase(name: "signed content-length", raw: "POST / HTTP/1.1\r\n\(host)Content-Length: +3\r\n\r\nabc", expected: [.error(.invalidContentLength)]),
    DecoderCase(name: "negative content-length", raw: "POST / HTTP/1.1\r\n\(host)Content-Length: -1\r\n\r\n", expected: [.error(.invalidContentLength)]),
    DecoderCase(name: "hex content-length", raw: "POST / HTTP/1.1\r\n\(host)Content-Length: 0x10\r\n\r\n", expected: [.error(.invalidContentLength)]),
    DecoderCase(name: "content-length with junk", raw: "POST / HTTP/1.1\r\n\(host)Content-Length: 3 3\r\n\r\nabc", expected: [.error(.invalidContentLength)]),
    DecoderCase(name: "empty content-length", raw: "POST / HTTP/1.1\r\n\(host)Content-Length:\r\n\r\n", expected: [.error(.invalidContentLength)]),
    DecoderCase(name: "content-length over the body limit is 413", raw: "POST / HTTP/1.1\r\n\(host)Content-Length: 11\r\n\r\n",
                expected: [.error(.bodyTooLarge)], limits: smallLimits),
    DecoderCase(name: "overflowing content-length is 413", raw: "POST / HTTP/1.1\r\n\(host)Content-Length: 99999999999999999999999\r\n\r\n",
                expected: [.error(.bodyTooLarge)]),

    // Transfer-Encoding and smuggling.
    DecoderCase(name: "CL and TE together", raw: "POST / HTTP/1.1\r\n\(host)Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                expected: [.error(.contentLengthWithTransferEncoding)]),
    DecoderCase(name: "TE and CL together, TE first", raw: "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
                expected: [.error(.contentLengthWithTransferEncoding)]),
    DecoderCase(name: "CL with differently cased TE", raw: "POST / HTTP/1.1\r\n\(host)Content-Length: 4\r\ntRaNsFeR-eNcOdInG: cHuNkEd\r\n\r\n0\r\n\r\n",
                expected: [.error(.contentLengthWithTransferEncoding)]),
    DecoderCase(name: "unknown transfer coding is 501", raw: "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
                expected: [.error(.unsupportedTransferCoding)]),
    DecoderCase(name: "chunked not last is 400", raw: "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
                expected: [.error(.transferEncodingNotChunked)]),
    DecoderCase(name: "identity alone is 400", raw: "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: identity\r\n\r\n",
                expected: [.error(.transferEncodingNotChunked)]),
    DecoderCase(name: "chunked twice", raw: "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                expected: [.error(.transferEncodingNotChunked)]),
    DecoderCase(name: "near-miss xchunked", raw: "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
                expected: [.error(.transferEncodingNotChunked)]),
    DecoderCase(name: "TE on HTTP/1.0", raw: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                expected: [.error(.transferEncodingNotChunked)]),
    DecoderCase(name: "empty TE value", raw: "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: \r\n\r\n", expected: [.error(.transferEncodingNotChunked)]),
    DecoderCase(name: "smuggled request after a bad one is never parsed", raw: "POST / HTTP/1.1\r\n\(host)Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\n\(host)\r\n",
                expected: [.error(.contentLengthWithTransferEncoding)]),

    // Chunk syntax.
    DecoderCase(name: "chunk size with junk", raw: "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\n\r\n5x\r\nhello\r\n0\r\n\r\n",
                expected: [.error(.invalidChunkSize)]),
    DecoderCase(name: "chunk size with 0x prefix", raw: "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
                expected: [.error(.invalidChunkSize)]),
    DecoderCase(name: "negative chunk size", raw: "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
                expected: [.error(.invalidChunkSize)]),
    DecoderCase(name: "empty chunk size", raw: "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n",
                expected: [.error(.invalidChunkSize)]),
    DecoderCase(name: "whitespace then CR after chunk size", raw: "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n",
                expected: [.error(.invalidChunkSize)]),
    DecoderCase(name: "chunk size overflow", raw: "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\n\r\n00000000000000001\r\na\r\n0\r\n\r\n",
                expected: [.error(.chunkSizeOverflow)]),
    DecoderCase(name: "huge chunk size is 413", raw: "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFF\r\n",
                expected: [.error(.bodyTooLarge)]),
    DecoderCase(name: "chunked total over the body limit is 413", raw: "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n6\r\nabcdef\r\n0\r\n\r\n",
                expected: [.error(.bodyTooLarge)], limits: smallLimits),
    DecoderCase(name: "chunk data longer than its size", raw: "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n",
                expected: [.error(.invalidChunkTerminator)]),
    DecoderCase(name: "LF-only after chunk size", raw: "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n",
                expected: [.error(.invalidChunkSize)]),
    DecoderCase(name: "control byte in chunk extension", raw: "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\n\r\n3;a\u{1}\r\nabc\r\n0\r\n\r\n",
                expected: [.error(.invalidChunkExtension)]),
    DecoderCase(name: "chunk extension too long", raw: "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\n\r\n3;\(String(repeating: "e", count: 20))\r\nabc\r\n0\r\n\r\n",
                expected: [.error(.chunkLineTooLong)], limits: smallLimits),
    DecoderCase(name: "malformed trailer", raw: "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\n\r\n0\r\nno colon\r\n\r\n",
                expected: [.error(.invalidTrailer)]),
    DecoderCase(name: "trailers too large", raw: "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\n\r\n0\r\nX: \(String(repeating: "t", count: 20))\r\n\r\n",
                expected: [.error(.trailerTooLarge)], limits: smallLimits),
    DecoderCase(name: "LF-only final line", raw: "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\n\r\n0\r\n\n",
                expected: [.error(.invalidLineEnding)]),

    // Expect.
    DecoderCase(name: "unknown expectation is 417", raw: "POST / HTTP/1.1\r\n\(host)Expect: something\r\nContent-Length: 1\r\n\r\na",
                expected: [.error(.unsupportedExpectation)]),
]

@Suite struct RequestDecoderTests {
    @Test(arguments: decoderCases)
    func allAtOnce(_ testCase: DecoderCase) {
        #expect(decodeStream(testCase.raw.wire, limits: testCase.limits).events == testCase.expected)
    }

    @Test(arguments: decoderCases)
    func byteByByte(_ testCase: DecoderCase) {
        #expect(decodeStream(testCase.raw.wire, pieceSize: 1, limits: testCase.limits).events == testCase.expected)
    }

    @Test func headersKeepOrderDuplicatesAndTrimOWS() throws {
        let raw = "GET / HTTP/1.1\r\nHost: h\r\nX-A:  one \t\r\nx-a: two\r\nX-B:\tthree\r\n\r\n"
        let head = try #require(decodeStream(raw.wire).heads.first)
        #expect(head.headers["X-A"] == ["one", "two"])
        #expect(head.headers.first(name: "x-b") == "three")
        #expect(head.headers.count == 4)
    }

    @Test func expectContinueIsSignalledOnceBeforeTheBody() {
        let raw = "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok"
        let result = decodeStream(raw.wire, pieceSize: 1)
        #expect(result.continues == 1)
        #expect(result.events == [.request(method: "POST", target: "/", body: "ok")])
    }

    @Test func expectContinueOnHTTP10IsIgnored() {
        let raw = "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok"
        #expect(decodeStream(raw.wire).continues == 0)
    }

    @Test func keepAliveFollowsVersionAndConnectionTokens() throws {
        func head(_ raw: String) throws -> RequestHead { try #require(decodeStream(raw.wire).heads.first) }
        #expect(try head("GET / HTTP/1.1\r\nHost: h\r\n\r\n").wantsKeepAlive)
        #expect(try !head("GET / HTTP/1.1\r\nHost: h\r\nConnection: Close\r\n\r\n").wantsKeepAlive)
        #expect(try !head("GET / HTTP/1.0\r\n\r\n").wantsKeepAlive)
        #expect(try head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").wantsKeepAlive)
        #expect(try !head("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, close\r\n\r\n").wantsKeepAlive)
    }

    @Test func serializedRequestParsesBackToTheSameRequest() throws {
        let raw = "POST /x?y=1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        let first = decodeStream(raw.wire)
        let head = try #require(first.heads.first)
        let again = decodeStream(head.serialized(body: Array("abc".utf8)))
        #expect(again.events == first.events)
        #expect(again.heads.first?.headers["X-A"] == ["1"])
    }

    @Test func everyErrorHasAStatusCodeAndMessage() {
        let statuses = Set(decoderCases.flatMap { $0.expected }.compactMap { decoded -> Int? in
            if case .error(let error) = decoded { return error.status.code } else { return nil }
        })
        #expect(statuses == [400, 413, 414, 417, 431, 501, 505])
    }
}
