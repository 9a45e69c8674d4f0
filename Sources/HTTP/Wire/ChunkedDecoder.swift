/// Decodes a chunked body (RFC 9112 §7.1) incrementally, one state per syntactic position, so input
/// split at any byte decodes the same. Extensions are checked and ignored; trailers are checked,
/// bounded and discarded (§7.1.2 lets a recipient drop them).
struct ChunkedDecoder {
    enum Outcome: Equatable {
        case needMore
        case done
        case failed(HTTPParseError)
    }

    private enum State: Equatable {
        /// Reading `chunk-size` hex digits.
        case size(value: UInt64, digits: Int, lineBytes: Int)
        /// Whitespace after the size (BWS), which must lead to `;` (§7.1.1).
        case sizeWhitespace(size: UInt64, lineBytes: Int)
        /// Inside chunk extensions, up to the line's CR.
        case extensions(size: UInt64, lineBytes: Int)
        case sizeLF(UInt64)
        case data(remaining: UInt64)
        case dataCR
        case dataLF
        /// At the start of a trailer line, or of the final empty line.
        case trailerLineStart
        case trailerLine
        case trailerLF
        case finalLF
        case done
    }

    private var state: State = .size(value: 0, digits: 0, lineBytes: 0)
    private var trailerLine: [UInt8] = []
    private var trailerBytes = 0

    /// Consumes bytes, appending chunk data to `body`; returns how many bytes were used.
    mutating func decode(
        _ bytes: UnsafeRawBufferPointer,
        into body: inout [UInt8],
        limits: HTTPParserLimits
    ) -> (consumed: Int, outcome: Outcome) {
        var index = 0
        while index < bytes.count {
            if case .data(let remaining) = state {
                let take = Int(min(remaining, UInt64(bytes.count - index)))
                body.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[index..<(index + take)]))
                index += take
                state = remaining == UInt64(take) ? .dataCR : .data(remaining: remaining - UInt64(take))
                continue
            }
            let result = step(bytes[index], bodyCount: body.count, limits: limits)
            index += 1
            if let result { return (index, result) }
        }
        return (index, .needMore)
    }

    /// Advances one byte outside chunk data; a non-nil result ends decoding.
    private mutating func step(_ byte: UInt8, bodyCount: Int, limits: HTTPParserLimits) -> Outcome? {
        switch state {
        case .size(let value, let digits, let lineBytes):
            return sizeByte(byte, value: value, digits: digits, lineBytes: lineBytes, bodyCount: bodyCount, limits: limits)
        case .sizeWhitespace(let size, let lineBytes):
            guard lineBytes < limits.maxChunkLineBytes else { return .failed(.chunkLineTooLong) }
            if byte == UInt8(ascii: ";") {
                state = .extensions(size: size, lineBytes: lineBytes + 1)
            } else if ByteClass.isWhitespace(byte) {
                state = .sizeWhitespace(size: size, lineBytes: lineBytes + 1)
            } else {
                return .failed(.invalidChunkSize)
            }
        case .extensions(let size, let lineBytes):
            guard lineBytes < limits.maxChunkLineBytes else { return .failed(.chunkLineTooLong) }
            if byte == ByteClass.cr {
                state = .sizeLF(size)
            } else if ByteClass.isFieldValue(byte) {
                state = .extensions(size: size, lineBytes: lineBytes + 1)
            } else {
                return .failed(.invalidChunkExtension)
            }
        case .sizeLF(let size):
            guard byte == ByteClass.lf else { return .failed(.invalidLineEnding) }
            state = size == 0 ? .trailerLineStart : .data(remaining: size)
        case .dataCR:
            guard byte == ByteClass.cr else { return .failed(.invalidChunkTerminator) }
            state = .dataLF
        case .dataLF:
            guard byte == ByteClass.lf else { return .failed(.invalidChunkTerminator) }
            state = .size(value: 0, digits: 0, lineBytes: 0)
        case .trailerLineStart, .trailerLine:
            return trailerByte(byte, limits: limits)
        case .trailerLF:
            guard byte == ByteClass.lf else { return .failed(.invalidLineEnding) }
            return finishTrailerLine()
        case .finalLF:
            guard byte == ByteClass.lf else { return .failed(.invalidLineEnding) }
            state = .done
            return .done
        case .data, .done:
            return .failed(.invalidChunkTerminator)
        }
        return nil
    }

    private mutating func sizeByte(
        _ byte: UInt8, value: UInt64, digits: Int, lineBytes: Int, bodyCount: Int, limits: HTTPParserLimits
    ) -> Outcome? {
        if lineBytes >= limits.maxChunkLineBytes { return .failed(.chunkLineTooLong) }
        if let digit = ByteClass.hexValue(byte) {
            guard digits < 16 else { return .failed(.chunkSizeOverflow) }
            let next = value << 4 | UInt64(digit)
            if next > UInt64(limits.maxBodyBytes - bodyCount) { return .failed(.bodyTooLarge) }
            state = .size(value: next, digits: digits + 1, lineBytes: lineBytes + 1)
            return nil
        }
        guard digits > 0 else { return .failed(.invalidChunkSize) }
        switch byte {
        case ByteClass.cr:
            state = .sizeLF(value)
        case UInt8(ascii: ";"):
            state = .extensions(size: value, lineBytes: lineBytes + 1)
        case ByteClass.sp, ByteClass.htab:
            state = .sizeWhitespace(size: value, lineBytes: lineBytes + 1)
        default:
            return .failed(.invalidChunkSize)
        }
        return nil
    }

    private mutating func trailerByte(_ byte: UInt8, limits: HTTPParserLimits) -> Outcome? {
        trailerBytes += 1
        if trailerBytes > limits.maxTrailerBytes { return .failed(.trailerTooLarge) }
        if byte == ByteClass.cr {
            state = state == .trailerLineStart ? .finalLF : .trailerLF
            return nil
        }
        if byte == ByteClass.lf { return .failed(.invalidLineEnding) }
        trailerLine.append(byte)
        state = .trailerLine
        return nil
    }

    private mutating func finishTrailerLine() -> Outcome? {
        defer { trailerLine.removeAll(keepingCapacity: true) }
        let valid = trailerLine.withUnsafeBytes { line in (try? FieldLineParser.parse(line)) != nil }
        guard valid else { return .failed(.invalidTrailer) }
        state = .trailerLineStart
        return nil
    }
}
