/// Turns a byte stream into complete requests, one at a time, across any number of reads and with any
/// number of pipelined requests in one read. The caller owns the buffer; the decoder only reports how
/// many bytes it consumed, so nothing is copied except the body it assembles.
public struct RequestDecoder {
    /// What the caller should do next.
    public enum Event: Equatable {
        /// Read more bytes and call again with the unconsumed input.
        case needMore
        /// The client sent `Expect: 100-continue` and is owed an interim 100 response before the body.
        case continueExpected
        /// One whole request.
        case request(RequestHead, body: [UInt8])
        /// The stream is not valid HTTP; answer with the error's status and close.
        case failed(HTTPParseError)
    }

    /// Where in a request the decoder is, which decides the timeout that applies.
    public enum Phase: Equatable, Sendable {
        case betweenRequests
        case head
        case body
    }

    private enum State {
        case head(HeadScanner)
        case fixedBody(RequestHead, remaining: UInt64)
        case chunkedBody(RequestHead, ChunkedDecoder)
        case failed(HTTPParseError)
    }

    private let limits: HTTPParserLimits
    private var state: State = .head(HeadScanner())
    private var body: [UInt8] = []

    /// Creates a decoder enforcing `limits`.
    public init(limits: HTTPParserLimits) {
        self.limits = limits
    }

    /// The current phase.
    public var phase: Phase {
        switch state {
        case .head(let scanner): return scanner.hasStarted ? .head : .betweenRequests
        case .fixedBody, .chunkedBody: return .body
        case .failed: return .head
        }
    }

    /// Decodes from the start of the unconsumed input. The caller drops `consumed` bytes and calls again
    /// after any event but `needMore` and `failed`.
    public mutating func decode(_ bytes: UnsafeRawBufferPointer) -> (consumed: Int, event: Event) {
        switch state {
        case .failed(let error):
            return (0, .failed(error))
        case .head(var scanner):
            let outcome = scanner.scan(bytes, limits: limits)
            state = .head(scanner)
            return headOutcome(outcome, bytes)
        case .fixedBody(let head, let remaining):
            let take = Int(min(remaining, UInt64(bytes.count)))
            body.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[0..<take]))
            if UInt64(take) == remaining { return (take, finishRequest(head)) }
            state = .fixedBody(head, remaining: remaining - UInt64(take))
            return (take, .needMore)
        case .chunkedBody(let head, var chunked):
            let (consumed, outcome) = chunked.decode(bytes, into: &body, limits: limits)
            state = .chunkedBody(head, chunked)
            switch outcome {
            case .needMore: return (consumed, .needMore)
            case .done: return (consumed, finishRequest(head))
            case .failed(let error): return (consumed, fail(error))
            }
        }
    }

    private mutating func headOutcome(_ outcome: HeadScanner.Outcome, _ bytes: UnsafeRawBufferPointer) -> (Int, Event) {
        switch outcome {
        case .needMore:
            return (0, .needMore)
        case .failed(let error):
            return (0, fail(error))
        case .complete(let start, let requestLineEnd, let end):
            let event: Event
            do {
                let head = try RequestHeadParser.parse(
                    bytes, start: start, requestLineEnd: requestLineEnd, end: end, limits: limits)
                event = try beginBody(head)
            } catch {
                return (end, fail(error))
            }
            guard event == .needMore else { return (end, event) }
            // The body may already be here, behind the head.
            let (bodyConsumed, bodyEvent) = decode(UnsafeRawBufferPointer(rebasing: bytes[end...]))
            return (end + bodyConsumed, bodyEvent)
        }
    }

    /// Chooses the body state for a parsed head; refuses an oversized Content-Length before reading it.
    private mutating func beginBody(_ head: RequestHead) throws(HTTPParseError) -> Event {
        let expectsContinue = try Self.expectsContinue(head)
        switch try BodyFraming.decide(head) {
        case .none:
            return finishRequest(head)
        case .length(let length):
            guard length <= UInt64(limits.maxBodyBytes) else { throw .bodyTooLarge }
            body.reserveCapacity(Int(length))
            state = .fixedBody(head, remaining: length)
        case .chunked:
            state = .chunkedBody(head, ChunkedDecoder())
        }
        return expectsContinue ? .continueExpected : .needMore
    }

    /// RFC 9110 §10.1.1: 100-continue is the only expectation defined; anything else is 417. HTTP/1.0
    /// clients cannot receive an interim response, so their expectation is ignored.
    private static func expectsContinue(_ head: RequestHead) throws(HTTPParseError) -> Bool {
        let expectations = head.headers.tokens(name: "Expect")
        guard !expectations.isEmpty else { return false }
        guard expectations.allSatisfy({ $0 == "100-continue" }) else { throw .unsupportedExpectation }
        return head.version.defaultsToKeepAlive
    }

    private mutating func finishRequest(_ head: RequestHead) -> Event {
        defer {
            body = []
            state = .head(HeadScanner())
        }
        return .request(head, body: body)
    }

    private mutating func fail(_ error: HTTPParseError) -> Event {
        state = .failed(error)
        body = []
        return .failed(error)
    }
}
