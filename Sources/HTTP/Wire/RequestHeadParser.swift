/// Parses a complete header section whose line endings `HeadScanner` has already checked.
enum RequestHeadParser {
    static func parse(
        _ bytes: UnsafeRawBufferPointer,
        start: Int,
        requestLineEnd: Int,
        end: Int,
        limits: HTTPParserLimits
    ) throws(HTTPParseError) -> RequestHead {
        let requestLine = UnsafeRawBufferPointer(rebasing: bytes[start..<requestLineEnd])
        var head = try parseRequestLine(requestLine)
        var lineStart = requestLineEnd + 2
        let fieldsEnd = end - 2
        while lineStart < fieldsEnd {
            var lineEnd = lineStart
            while bytes[lineEnd] != ByteClass.cr { lineEnd += 1 }
            if head.headers.count == limits.maxHeaderCount { throw .tooManyHeaders }
            let field = try FieldLineParser.parse(UnsafeRawBufferPointer(rebasing: bytes[lineStart..<lineEnd]))
            head.headers.add(name: field.name, value: field.value)
            lineStart = lineEnd + 2
        }
        try checkHost(head)
        return head
    }

    /// `method SP request-target SP HTTP-version` (RFC 9112 §3), single spaces only.
    static func parseRequestLine(_ line: UnsafeRawBufferPointer) throws(HTTPParseError) -> RequestHead {
        guard let firstSpace = line.firstIndex(of: ByteClass.sp) else { throw .invalidRequestLine }
        let methodBytes = UnsafeRawBufferPointer(rebasing: line[0..<firstSpace])
        guard !methodBytes.isEmpty, methodBytes.allSatisfy(ByteClass.isTChar) else { throw .invalidMethod }
        let rest = UnsafeRawBufferPointer(rebasing: line[(firstSpace + 1)...])
        // Exactly two single spaces: an empty target or a space in the version is a malformed line.
        guard let secondSpace = rest.firstIndex(of: ByteClass.sp), secondSpace > 0,
              !rest[(secondSpace + 1)...].contains(ByteClass.sp)
        else { throw .invalidRequestLine }
        let targetBytes = UnsafeRawBufferPointer(rebasing: rest[0..<secondSpace])
        let versionBytes = UnsafeRawBufferPointer(rebasing: rest[(secondSpace + 1)...])
        let method = HTTPMethod(String(decoding: methodBytes, as: UTF8.self))
        let version = try parseVersion(versionBytes)
        let target = try parseTarget(targetBytes, method: method)
        return RequestHead(method: method, target: target, version: version, headers: HTTPHeaders())
    }

    /// `HTTP-version = "HTTP/" DIGIT "." DIGIT` (RFC 9112 §2.3); a major version other than 1 is 505.
    private static func parseVersion(_ bytes: UnsafeRawBufferPointer) throws(HTTPParseError) -> HTTPVersion {
        let prefix = Array("HTTP/".utf8)
        guard bytes.count == 8, bytes.prefix(5).elementsEqual(prefix), bytes[6] == UInt8(ascii: "."),
              let major = decimalDigit(bytes[5]), let minor = decimalDigit(bytes[7])
        else { throw .invalidVersion }
        guard major == 1 else { throw .unsupportedVersion }
        return HTTPVersion(major: major, minor: minor)
    }

    /// The four target forms of RFC 9112 §3.2, each only where it is allowed; visible ASCII only.
    private static func parseTarget(
        _ bytes: UnsafeRawBufferPointer,
        method: HTTPMethod
    ) throws(HTTPParseError) -> String {
        guard let first = bytes.first, bytes.allSatisfy({ ByteClass.targetByte[Int($0)] }) else {
            throw .invalidTarget
        }
        let target = String(decoding: bytes, as: UTF8.self)
        if first == UInt8(ascii: "/") { return target }                          // origin-form
        if method == .options && target == "*" { return target }                 // asterisk-form
        if method == .connect { return target }                                  // authority-form
        let lowered = target.lowercased()
        if lowered.hasPrefix("http://") || lowered.hasPrefix("https://") { return target } // absolute-form
        throw .invalidTarget
    }

    /// RFC 9112 §3.2: an HTTP/1.1 request carries exactly one Host field, and a server answers 400
    /// to one whose value is invalid.
    private static func checkHost(_ head: RequestHead) throws(HTTPParseError) {
        let hosts = head.headers["Host"]
        if hosts.count > 1 { throw .duplicateHost }
        if hosts.isEmpty && head.version.defaultsToKeepAlive { throw .missingHost }
        if let host = hosts.first, !isValidHost(Array(host.utf8)) { throw .invalidHost }
    }

    /// RFC 9110 §7.2: `Host = uri-host [ ":" port ]`, with RFC 3986 §3.2.2's `uri-host` (an IP
    /// literal in brackets, or a reg-name of unreserved, percent-encoded and sub-delim characters,
    /// which covers IPv4 addresses) and `port = *DIGIT`. Empty is valid (a target without authority).
    static func isValidHost(_ value: [UInt8]) -> Bool {
        var index = 0
        if value.first == UInt8(ascii: "[") {
            guard let close = value.firstIndex(of: UInt8(ascii: "]")), close > 1, isIPLiteral(value[1..<close]) else { return false }
            index = close + 1
        } else {
            while index < value.count, value[index] != UInt8(ascii: ":") {
                let byte = value[index]
                if byte == UInt8(ascii: "%") {
                    guard index + 2 < value.count, ByteClass.hexValue(value[index + 1]) != nil, ByteClass.hexValue(value[index + 2]) != nil else { return false }
                    index += 3
                    continue
                }
                guard isUnreserved(byte) || isSubDelimiter(byte) else { return false }
                index += 1
            }
        }
        guard index < value.count else { return true }
        guard value[index] == UInt8(ascii: ":") else { return false }
        return value[(index + 1)...].allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
    }

    /// `IPv6address / IPvFuture` inside the brackets, by their characters (hex digits, colons and
    /// dots; or `v` HEXDIG+ "." and unreserved, sub-delims or colons).
    private static func isIPLiteral(_ inner: ArraySlice<UInt8>) -> Bool {
        if inner.first == UInt8(ascii: "v") || inner.first == UInt8(ascii: "V") {
            guard let dot = inner.firstIndex(of: UInt8(ascii: ".")), dot > inner.startIndex + 1, dot < inner.endIndex - 1,
                  inner[(inner.startIndex + 1)..<dot].allSatisfy({ ByteClass.hexValue($0) != nil }) else { return false }
            return inner[(dot + 1)...].allSatisfy { isUnreserved($0) || isSubDelimiter($0) || $0 == UInt8(ascii: ":") }
        }
        return inner.contains(UInt8(ascii: ":"))
            && inner.allSatisfy { ByteClass.hexValue($0) != nil || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") }
    }

    private static func isUnreserved(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
            || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "~")
    }

    private static func isSubDelimiter(_ byte: UInt8) -> Bool {
        Array("!$&'()*+,;=".utf8).contains(byte)
    }

    private static func decimalDigit(_ byte: UInt8) -> UInt8? {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) ? byte - UInt8(ascii: "0") : nil
    }
}
