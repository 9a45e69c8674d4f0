import Crypto

/// RFC 8785 JSON Canonicalization Scheme: one byte sequence per JSON value, so the same document
/// hashes the same wherever it was produced. Members sorted by their UTF-16 code units, no
/// whitespace, strings with the minimal escapes, numbers as ECMAScript prints them.
public enum JCS {
    /// The canonical bytes of `value`.
    public static func canonicalize(_ value: JSONValue) -> [UInt8] {
        // No capacity reserved up front: ledger entries (about 250 bytes) are kept by the thousand
        // (LedgerWaiter's recent entries), and a kilobyte reserved for each was most of the heap.
        var out: [UInt8] = []
        append(value, to: &out)
        return out
    }

    /// The canonical bytes of a JSON text; fails as the parser does.
    public static func canonicalize(json bytes: [UInt8]) throws(JSONParseError) -> [UInt8] {
        canonicalize(try JSONParser.parse(bytes))
    }

    /// A document's hash as CareLedger writes it: `sha256:` and the lowercase hex SHA-256 of its
    /// canonical bytes.
    public static func documentHash(_ value: JSONValue) -> String {
        "sha256:" + SHA256.hexDigest(canonicalize(value))
    }

    private static func append(_ value: JSONValue, to out: inout [UInt8]) {
        switch value {
        case .null: out += Array("null".utf8)
        case .bool(let flag): out += Array((flag ? "true" : "false").utf8)
        case .number(let number): out += Array(ECMAScriptNumber.format(number).utf8)
        case .string(let text): appendString(text, to: &out)
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            for (position, element) in elements.enumerated() {
                if position > 0 { out.append(UInt8(ascii: ",")) }
                append(element, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            // Positions, not members, are sorted: moving Ints is cheaper than moving (String, value).
            var order = Array(members.indices)
            if !zip(members, members.dropFirst()).allSatisfy({ keyPrecedes($0.key, $1.key) }) {
                order.sort { keyPrecedes(members[$0].key, members[$1].key) }
            }
            for (position, index) in order.enumerated() {
                if position > 0 { out.append(UInt8(ascii: ",")) }
                appendString(members[index].key, to: &out)
                out.append(UInt8(ascii: ":"))
                append(members[index].value, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// RFC 8785 §3.2.3: member names sort by their UTF-16 code units. UTF-8 bytes sort in code point
    /// order, which is UTF-16 order too except where a supplementary character (UTF-8 lead byte 0xF0
    /// and up) meets one of U+E000...U+FFFF (lead 0xEE, 0xEF): UTF-16's surrogates sort before those.
    /// So the bytes decide, in one pass and without copying, unless such a lead byte comes up first.
    static func keyPrecedes(_ a: String, _ b: String) -> Bool {
        var a = a, b = b
        let byBytes: Bool? = a.withUTF8 { x in
            b.withUTF8 { y in
                for index in 0..<min(x.count, y.count) {
                    let p = x[index], q = y[index]
                    if p >= 0xEE || q >= 0xEE { return nil }
                    if p != q { return p < q }
                }
                return x.count < y.count
            }
        }
        return byBytes ?? a.utf16.lexicographicallyPrecedes(b.utf16)
    }

    private static func appendString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        if !text.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            out.append(contentsOf: text.utf8)
            out.append(UInt8(ascii: "\""))
            return
        }
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0x08: out += [UInt8(ascii: "\\"), UInt8(ascii: "b")]
            case 0x09: out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0x0A: out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case 0x0C: out += [UInt8(ascii: "\\"), UInt8(ascii: "f")]
            case 0x0D: out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case ..<0x20: out += [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0xF)]]
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// ECMAScript's Number::toString (ECMA-262 §6.1.6.1.20), which JCS uses for every number: the
/// shortest digits that round-trip (Swift's `description` finds the same ones), laid out by the
/// ECMAScript rules for where the decimal point and exponent go.
public enum ECMAScriptNumber {
    public static func format(_ value: Double) -> String {
        if value == 0 { return "0" }
        // Integers below 2^53 print as their digits in both Swift and ECMAScript (up to 1e21).
        if value.rounded(.towardZero) == value, abs(value) < 9_007_199_254_740_992 { return String(Int64(value)) }
        let negative = value < 0
        let (digits, pointPosition) = shortestDigits(abs(value))
        let k = digits.count
        let n = pointPosition
        var text: String
        if k <= n && n <= 21 {
            text = digits + String(repeating: "0", count: n - k)
        } else if 0 < n && n <= 21 {
            text = String(digits.prefix(n)) + "." + String(digits.dropFirst(n))
        } else if -6 < n && n <= 0 {
            text = "0." + String(repeating: "0", count: -n) + digits
        } else {
            let exponent = n - 1
            let sign = exponent < 0 ? "-" : "+"
            text = String(digits.prefix(1)) + (k > 1 ? "." + String(digits.dropFirst()) : "") + "e" + sign + String(abs(exponent))
        }
        return negative ? "-" + text : text
    }

    /// The significant digits (no leading or trailing zeros) and n such that the value is
    /// 0.d1d2...dk × 10^n, read from Swift's shortest round-trip rendering.
    static func shortestDigits(_ value: Double) -> (String, Int) {
        let rendered = value.description
        let parts = rendered.split(separator: "e", maxSplits: 1)
        let exponent = parts.count == 2 ? Int(parts[1]) ?? 0 : 0
        let mantissa = parts[0]
        let integerPart = mantissa.prefix { $0 != "." }
        let fractionPart = mantissa.dropFirst(integerPart.count + (mantissa.contains(".") ? 1 : 0))
        var digits = Substring(String(integerPart) + String(fractionPart))
        var point = integerPart.count + exponent
        while digits.first == "0" {
            digits = digits.dropFirst()
            point -= 1
        }
        while digits.last == "0" { digits = digits.dropLast() }
        return (String(digits), point)
    }
}
