/// GS1 Digital Link URIs (URI syntax 1.2): `https://{any host}/{optional path}/{primary AI}/{key}` then
/// key qualifiers as `/{AI}/{value}` pairs and data attributes in the query string.
public struct DigitalLink: Equatable, Sendable {
    /// The primary key, then its qualifiers, in the order of the path.
    public let path: [(ai: String, value: String)]
    /// Data attributes from the query string (`17`, `10`, ...), as sent.
    public let attributes: [(ai: String, value: String)]

    public static func == (lhs: DigitalLink, rhs: DigitalLink) -> Bool {
        lhs.path.elementsEqual(rhs.path) { $0 == $1 } && lhs.attributes.elementsEqual(rhs.attributes) { $0 == $1 }
    }

    static let qualifiers: [String: [String]] = [
        "01": ["22", "10", "21", "235"], "8006": ["22", "10", "21"], "414": ["254"], "8010": ["8011"],
    ]
    static let primaryKeys: Set<String> = ["00", "01", "253", "255", "401", "402", "414", "417", "8003", "8004", "8006", "8010", "8017", "8018"]

    /// Reads a Digital Link URI, or nil when the text is not one (any other URL, a URN, plain text).
    public init?(_ text: String) {
        let scheme: String
        if text.hasPrefix("https://") { scheme = "https://" } else if text.hasPrefix("http://") { scheme = "http://" } else { return nil }
        let afterScheme = text.dropFirst(scheme.count)
        let withoutFragment = afterScheme.prefix { $0 != "#" }
        let pathAndQuery = withoutFragment.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let segments = pathAndQuery[0].split(separator: "/", omittingEmptySubsequences: false).dropFirst()   // drop the host
        guard let start = segments.firstIndex(where: { DigitalLink.primaryKeys.contains(String($0)) }) else { return nil }
        let keyed = Array(segments[start...])
        guard keyed.count >= 2, keyed.count % 2 == 0 else { return nil }
        var pairs: [(ai: String, value: String)] = []
        for index in stride(from: 0, to: keyed.count, by: 2) {
            guard let value = DigitalLink.percentDecode(keyed[index + 1]), !value.isEmpty else { return nil }
            pairs.append((String(keyed[index]), value))
        }
        let primary = pairs[0].ai
        let allowed = DigitalLink.qualifiers[primary] ?? []
        guard pairs.dropFirst().allSatisfy({ allowed.contains($0.ai) }) else { return nil }
        guard let key = DigitalLink.canonicalKey(ai: primary, value: pairs[0].value) else { return nil }
        pairs[0].value = key
        path = pairs
        var query: [(ai: String, value: String)] = []
        if pathAndQuery.count == 2 {
            for item in pathAndQuery[1].split(separator: "&") {
                let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2, let value = DigitalLink.percentDecode(parts[1]) else { continue }
                query.append((String(parts[0]), value))
            }
        }
        attributes = query
    }

    public func value(of ai: String) -> String? {
        path.first { $0.ai == ai }?.value ?? attributes.first { $0.ai == ai }?.value
    }

    /// The constrained canonical form the CBV 2.0 event hash uses (rule 18): host `id.gs1.org`, no
    /// query, and only the finest level of identification the key allows.
    public var constrainedCanonical: String {
        let primary = path[0]
        var text = "https://id.gs1.org/\(primary.ai)/\(DigitalLink.percentEncode(primary.value))"
        let finest: [String]
        switch primary.ai {
        case "01": finest = ["21", "235", "10"]
        case "8006": finest = ["21", "10"]
        case "414": finest = ["254"]
        case "8010": finest = ["8011"]
        default: finest = []
        }
        for ai in finest {
            if let qualifier = path.first(where: { $0.ai == ai }) {
                text += "/\(ai)/\(DigitalLink.percentEncode(qualifier.value))"
                break
            }
        }
        return text
    }

    /// The key in its canonical form (a GTIN padded to 14 digits), or nil when it cannot be that key.
    static func canonicalKey(ai: String, value: String) -> String? {
        switch ai {
        case "01": return (try? GTIN(value))?.digits
        case "00": return GS1CheckDigit.allDigits(value) && value.count == 18 ? value : nil
        case "414", "417": return GS1CheckDigit.allDigits(value) && value.count == 13 ? value : nil
        case "402": return GS1CheckDigit.allDigits(value) && value.count == 17 ? value : nil
        case "8006", "8017", "8018": return GS1CheckDigit.allDigits(value) && value.count == 18 ? value : nil
        case "253", "255", "8003":
            return value.count >= 13 && GS1CheckDigit.allDigits(value.prefix(13)) ? value : nil
        default: return value.count <= 30 ? value : nil
        }
    }

    /// RFC 3986 percent-encoding of everything but the unreserved characters.
    public static func percentEncode(_ value: String) -> String {
        if value.utf8.allSatisfy(isUnreserved) { return value }
        var out = ""
        let hex = Array("0123456789ABCDEF")
        for byte in value.utf8 {
            if isUnreserved(byte) {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += "%" + String(hex[Int(byte >> 4)]) + String(hex[Int(byte & 0x0F)])
            }
        }
        return out
    }

    /// `%xx` escapes decoded; nil when an escape is incomplete or the result is not UTF-8.
    public static func percentDecode<S: StringProtocol>(_ text: S) -> String? {
        if !text.utf8.contains(UInt8(ascii: "%")) { return String(text) }
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else { bytes.append(byte); continue }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
            bytes.append(high << 4 | low)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"): true
        default: false
        }
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
