/// Finds the end of a request's header section across any number of reads, looking at each byte once.
/// Line endings are checked here, as they arrive (RFC 9112 §2.2: CRLF only; a bare CR or LF is
/// refused rather than guessed at), and the size limits are enforced by position, so the outcome
/// never depends on how the bytes were split into reads.
struct HeadScanner {
    enum Outcome: Equatable {
        case needMore
        /// The head occupies `start..<end`; `requestLineEnd` is the offset of the request line's CR.
        case complete(start: Int, requestLineEnd: Int, end: Int)
        case failed(HTTPParseError)
    }

    /// Bytes examined so far, relative to the start of the unconsumed input.
    private(set) var scanned = 0
    private var headStart = 0
    private var lineStart = 0
    private var requestLineEnd: Int?
    private var emptyLinesSkipped = 0

    /// Whether any byte of a request has been seen (used to tell an idle connection from a slow one).
    var hasStarted: Bool { scanned > 0 }

    mutating func scan(_ bytes: UnsafeRawBufferPointer, limits: HTTPParserLimits) -> Outcome {
        var index = scanned
        defer { scanned = index }
        while index < bytes.count {
            let byte = bytes[index]
            if byte == ByteClass.lf { return .failed(.invalidLineEnding) }
            if byte == 0 { return .failed(.invalidByte) }
            if byte == ByteClass.cr {
                guard index + 1 < bytes.count else { return .needMore }
                guard bytes[index + 1] == ByteClass.lf else { return .failed(.invalidLineEnding) }
                if let outcome = endOfLine(at: index, limits: limits) { return outcome }
                index += 2
                lineStart = index
                continue
            }
            index += 1
            if let failure = overLimit(at: index, limits: limits) { return .failed(failure) }
        }
        return .needMore
    }

    /// Handles the CRLF at `index`: an empty line either precedes the request line (skipped, RFC 9112
    /// §2.2) or ends the header section.
    private mutating func endOfLine(at index: Int, limits: HTTPParserLimits) -> Outcome? {
        guard index == lineStart else {
            if requestLineEnd == nil { requestLineEnd = index }
            return nil
        }
        guard let requestLineEnd else {
            emptyLinesSkipped += 1
            if emptyLinesSkipped > limits.maxLeadingEmptyLines { return .failed(.invalidRequestLine) }
            headStart = index + 2
            return nil
        }
        return .complete(start: headStart, requestLineEnd: requestLineEnd, end: index + 2)
    }

    private func overLimit(at index: Int, limits: HTTPParserLimits) -> HTTPParseError? {
        let length = index - headStart
        if requestLineEnd == nil && length > limits.maxRequestLineBytes { return .requestLineTooLong }
        if length > limits.maxHeaderBytes { return .headerSectionTooLarge }
        return nil
    }
}
