/// Parses one field line (RFC 9112 §5): `field-name ":" OWS field-value OWS`, shared by the header
/// section and chunked trailers.
enum FieldLineParser {
    /// Parses `line`, which excludes its CRLF.
    static func parse(_ line: UnsafeRawBufferPointer) throws(HTTPParseError) -> HTTPHeaders.Field {
        guard let first = line.first else { throw .missingColon }
        // RFC 9112 §5.2: obs-fold is refused, not unfolded.
        if ByteClass.isWhitespace(first) { throw .obsoleteLineFolding }
        var colon = 0
        while colon < line.count, ByteClass.isTChar(line[colon]) { colon += 1 }
        guard colon < line.count else { throw .missingColon }
        guard line[colon] == ByteClass.colon else {
            // RFC 9112 §5.1: no whitespace is allowed between the field name and the colon.
            if ByteClass.isWhitespace(line[colon]) { throw .whitespaceBeforeColon }
            throw .invalidHeaderName
        }
        guard colon > 0 else { throw .invalidHeaderName }
        var valueStart = colon + 1
        var valueEnd = line.count
        for index in valueStart..<valueEnd where !ByteClass.isFieldValue(line[index]) {
            throw .invalidHeaderValue
        }
        while valueStart < valueEnd, ByteClass.isWhitespace(line[valueStart]) { valueStart += 1 }
        while valueEnd > valueStart, ByteClass.isWhitespace(line[valueEnd - 1]) { valueEnd -= 1 }
        let name = String(decoding: UnsafeRawBufferPointer(rebasing: line[0..<colon]), as: UTF8.self)
        let value = String(decoding: UnsafeRawBufferPointer(rebasing: line[valueStart..<valueEnd]), as: UTF8.self)
        return HTTPHeaders.Field(name: name, value: value)
    }
}
