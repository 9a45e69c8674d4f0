#if canImport(HTTP)
import HTTP
#endif

/// What a byte stream decoded to, in order.
enum Decoded: Equatable, CustomStringConvertible {
    case request(method: String, target: String, body: String)
    case error(HTTPParseError)
    /// The stream ended inside a request.
    case incomplete

    var description: String {
        switch self {
        case .request(let method, let target, let body): return "\(method) \(target) body=\(body.debugDescription)"
        case .error(let error): return "error(\(error))"
        case .incomplete: return "incomplete"
        }
    }
}

/// Feeds `bytes` to a fresh decoder in pieces of `pieceSize` (0 = all at once) and records what came out.
/// Heads are returned alongside for tests that inspect headers.
func decodeStream(
    _ bytes: [UInt8], pieceSize: Int = 0, limits: HTTPParserLimits = HTTPParserLimits()
) -> (events: [Decoded], heads: [RequestHead], continues: Int) {
    let step = pieceSize == 0 ? max(bytes.count, 1) : pieceSize
    return decodeStream(bytes, limits: limits, nextPieceSize: { step })
}

/// The same, with each piece's size chosen by `nextPieceSize` (the fuzzer's random splits).
func decodeStream(
    _ bytes: [UInt8], limits: HTTPParserLimits, nextPieceSize: () -> Int
) -> (events: [Decoded], heads: [RequestHead], continues: Int) {
    var decoder = RequestDecoder(limits: limits)
    var buffer: [UInt8] = []
    var events: [Decoded] = []
    var heads: [RequestHead] = []
    var continues = 0
    var offset = 0
    repeat {
        let end = min(offset + nextPieceSize(), bytes.count)
        buffer.append(contentsOf: bytes[offset..<end])
        offset = end
        decoding: while true {
            let (consumed, event) = buffer.withUnsafeBytes { decoder.decode($0) }
            buffer.removeFirst(consumed)
            switch event {
            case .needMore:
                break decoding
            case .continueExpected:
                continues += 1
            case .request(let head, let body):
                heads.append(head)
                events.append(.request(method: head.method.rawValue, target: head.target,
                                       body: String(decoding: body, as: UTF8.self)))
            case .failed(let error):
                events.append(.error(error))
                return (events, heads, continues)
            }
        }
    } while offset < bytes.count
    if !buffer.isEmpty || decoder.phase != .betweenRequests { events.append(.incomplete) }
    return (events, heads, continues)
}

extension String {
    /// The string's UTF-8 bytes, for wire fixtures written with `\r\n`.
    var wire: [UInt8] { Array(utf8) }
}
