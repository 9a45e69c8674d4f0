// libFuzzer entry point for the request decoder. Built by Tests/Fuzz/run.sh together with
// Sources/HTTP/Wire and Tests/HTTPTests/DecodeHarness.swift into one module.
//
// Invariants checked on every input, beyond "does not crash":
// 1. Splitting the same bytes into reads at pseudo-random points, or one byte at a time, gives exactly
//    the same requests, errors and 100-continue signals as decoding them all at once.
// 2. Every request accepted re-serializes (Content-Length framing) into bytes that decode to the same
//    head (framing fields aside) and the same body.

private var fuzzLimits: HTTPParserLimits {
    var limits = HTTPParserLimits()
    limits.maxRequestLineBytes = 512
    limits.maxHeaderBytes = 2048
    limits.maxHeaderCount = 32
    limits.maxBodyBytes = 4096
    limits.maxChunkLineBytes = 64
    limits.maxTrailerBytes = 256
    return limits
}

/// Re-serialization adds ": " and a Content-Length line, so the round trip gets a little headroom.
private var roundTripLimits: HTTPParserLimits {
    var limits = fuzzLimits
    limits.maxHeaderBytes = 2 * fuzzLimits.maxHeaderBytes + 64
    limits.maxHeaderCount = fuzzLimits.maxHeaderCount + 1
    return limits
}

/// Decodes in pieces whose sizes (1...32) come from a small PRNG seeded by the input, so failures reproduce.
private func decodeInRandomPieces(_ bytes: [UInt8]) -> (events: [Decoded], heads: [RequestHead], continues: Int) {
    var seed = bytes.reduce(UInt64(1469598103934665603)) { ($0 ^ UInt64($1)) &* 1099511628211 }
    return decodeStream(bytes, limits: fuzzLimits) {
        seed = seed &* 6364136223846793005 &+ 1442695040888963407
        return Int(seed >> 59) + 1
    }
}

private func withoutFraming(_ head: RequestHead) -> RequestHead {
    var copy = head
    copy.headers.remove(name: "Content-Length")
    copy.headers.remove(name: "Transfer-Encoding")
    return copy
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let whole = decodeStream(bytes, limits: fuzzLimits)
    let random = decodeInRandomPieces(bytes)
    precondition(whole.events == random.events && whole.heads == random.heads && whole.continues == random.continues,
                 "random split changed the outcome")
    if size <= 1024 {
        let single = decodeStream(bytes, pieceSize: 1, limits: fuzzLimits)
        precondition(whole.events == single.events && whole.heads == single.heads, "byte-by-byte changed the outcome")
    }
    for (head, event) in zip(whole.heads, whole.events) {
        guard case .request(_, _, let bodyText) = event else { continue }
        // Bodies are compared as bytes re-decoded the same way, so non-UTF-8 bodies compare equal too.
        let body = Array(bodyText.utf8)
        let again = decodeStream(head.serialized(body: body), limits: roundTripLimits)
        precondition(again.heads.count == 1 && again.events.count == 1, "round trip did not yield one request")
        precondition(withoutFraming(again.heads[0]) == withoutFraming(head), "round trip changed the head")
        guard case .request(_, _, let againBody) = again.events[0], Array(againBody.utf8) == body else {
            preconditionFailure("round trip changed the body")
        }
    }
    return 0
}
