/// Checks in one pass, without building a document, that bytes are already in RFC 8785 canonical
/// form, and hands back the top-level object's scalar members. `JCS.canonicalize(parse(b)) == b`
/// says the same, but this allocates next to nothing, which matters when a verifier reads
/// millions of entries.
public struct CanonicalScanner {
    private let bytes: [UInt8]
    private var index = 0
    private var depth = 0

    private init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// The top-level members whose values are strings, numbers, booleans or null (nested values
    /// are checked but not returned), or nil unless `bytes` is one canonical JSON object.
    public static func canonicalObjectMembers(_ bytes: [UInt8]) -> [String: JSONValue]? {
        var scanner = CanonicalScanner(bytes)
        var members: [String: JSONValue] = [:]
        guard scanner.scanObject(collect: &members), scanner.index == bytes.count else { return nil }
        return members
    }

    /// Whether `bytes` is a JSON value in canonical form.
    public static func isCanonical(_ bytes: [UInt8]) -> Bool {
        var scanner = CanonicalScanner(bytes)
        return scanner.scanValue().ok && scanner.index == bytes.count
    }

    private var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    /// Scans one value; `scalar` is its value when it is not an object or array.
    private mutating func scanValue() -> (ok: Bool, scalar: JSONValue?) {
        switch current {
        case UInt8(ascii: "{"):
            var nested: [String: JSONValue] = [:]
            return (scanObject(collect: &nested, keep: false), nil)
        case UInt8(ascii: "["): return (scanArray(), nil)
        case UInt8(ascii: "\""):
            guard let text = scanString() else { return (false, nil) }
            return (true, .string(text))
        case UInt8(ascii: "t"): return scanLiteral("true", .bool(true))
        case UInt8(ascii: "f"): return scanLiteral("false", .bool(false))
        case UInt8(ascii: "n"): return scanLiteral("null", .null)
        case .some(let byte) where byte == UInt8(ascii: "-") || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")):
            guard let number = scanNumber() else { return (false, nil) }
            return (true, .number(number))
        default: return (false, nil)
        }
    }

    private mutating func scanLiteral(_ word: StaticString, _ value: JSONValue) -> (ok: Bool, scalar: JSONValue?) {
        let expected = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        guard bytes.count - index >= expected.count, bytes[index..<(index + expected.count)].elementsEqual(expected) else { return (false, nil) }
        index += expected.count
        return (true, value)
    }

    /// An object with members in canonical order; with `keep`, scalar members go into `members`.
    private mutating func scanObject(collect members: inout [String: JSONValue], keep: Bool = true) -> Bool {
        guard current == UInt8(ascii: "{") else { return false }
        depth += 1
        defer { depth -= 1 }
        guard depth <= JSONParser.maximumDepth else { return false }
        index += 1
        if current == UInt8(ascii: "}") {
            index += 1
            return true
        }
        var previous: String?
        while true {
            guard current == UInt8(ascii: "\""), let key = scanString() else { return false }
            if let previous, !JCS.keyPrecedes(previous, key) { return false }
            previous = key
            guard current == UInt8(ascii: ":") else { return false }
            index += 1
            let (ok, scalar) = scanValue()
            guard ok else { return false }
            if keep, let scalar { members[key] = scalar }
            switch current {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"):
                index += 1
                return true
            default: return false
            }
        }
    }

    private mutating func scanArray() -> Bool {
        depth += 1
        defer { depth -= 1 }
        guard depth <= JSONParser.maximumDepth else { return false }
        index += 1
        if current == UInt8(ascii: "]") {
            index += 1
            return true
        }
        while true {
            guard scanValue().ok else { return false }
            switch current {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"):
                index += 1
                return true
            default: return false
            }
        }
    }

    /// A string written as JCS writes it: only `\"`, `\\`, the five short escapes and `\u00xx`
    /// (lower-case) for other control characters; everything else literal, valid UTF-8.
    private mutating func scanString() -> String? {
        index += 1
        let start = index
        var escaped = false
        var scalars = String.UnicodeScalarView()
        var runStart = index
        while let byte = current {
            switch byte {
            case UInt8(ascii: "\""):
                if !escaped {
                    let text = String(validating: bytes[start..<index], as: UTF8.self)
                    index += 1
                    return text
                }
                guard let run = String(validating: bytes[runStart..<index], as: UTF8.self) else { return nil }
                scalars.append(contentsOf: run.unicodeScalars)
                index += 1
                return String(scalars)
            case ..<0x20:
                return nil
            case UInt8(ascii: "\\"):
                guard let run = String(validating: bytes[runStart..<index], as: UTF8.self) else { return nil }
                scalars.append(contentsOf: run.unicodeScalars)
                escaped = true
                guard let scalar = scanEscape() else { return nil }
                scalars.append(scalar)
                runStart = index
            default:
                index += 1
            }
        }
        return nil
    }

    private mutating func scanEscape() -> Unicode.Scalar? {
        guard bytes.count - index >= 2 else { return nil }
        let letter = bytes[index + 1]
        index += 2
        if let scalar = JSONParser.shortEscape(letter) { return scalar }
        switch letter {
        case UInt8(ascii: "u"):
            let hex = Array("0123456789abcdef".utf8)
            guard bytes.count - index >= 4, bytes[index] == UInt8(ascii: "0"), bytes[index + 1] == UInt8(ascii: "0"),
                  let high = hex.firstIndex(of: bytes[index + 2]), high < 2, let low = hex.firstIndex(of: bytes[index + 3]) else { return nil }
            let value = UInt32(high * 16 + low)
            // Characters with a short escape must use it.
            guard ![0x08, 0x09, 0x0A, 0x0C, 0x0D].contains(value) else { return nil }
            index += 4
            return Unicode.Scalar(value)
        default:
            return nil
        }
    }

    /// A number exactly as ECMAScript prints its value.
    private mutating func scanNumber() -> Double? {
        let start = index
        while let byte = current, byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+") || byte == UInt8(ascii: ".")
                || byte == UInt8(ascii: "e") || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) {
            index += 1
        }
        let token = String(decoding: bytes[start..<index], as: UTF8.self)
        guard let value = Double(token), value.isFinite, ECMAScriptNumber.format(value) == token else { return nil }
        return value
    }
}
