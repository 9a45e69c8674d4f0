import Crypto
import FoundationEssentials

/// Opaque, prefixed, time-ordered identifiers such as `org_06f8k3q2z9m4x7c1v5b8n2r4ta`: 48 bits of
/// milliseconds since 1970 then 80 random bits, in lower-case Crockford base32. Ids made later sort
/// later (to the millisecond), so they serve as pagination cursors, and they reveal nothing else.
public enum ResourceID {
    /// Characters after the prefix and its underscore.
    static let bodyLength = 26

    /// A new id with `prefix` (e.g. `org`).
    public static func generate(_ prefix: String, now: Date = Date()) -> String {
        let milliseconds = UInt64(max(0, now.timeIntervalSince1970 * 1000))
        var bytes = (0..<6).map { UInt8(truncatingIfNeeded: milliseconds >> (40 - 8 * $0)) }
        bytes += SecureRandom.bytes(10)
        return prefix + "_" + Base32.encode(bytes)
    }

    /// Whether `text` has the shape of an id with `prefix`; says nothing of whether it exists.
    public static func isWellFormed(_ text: String, prefix: String) -> Bool {
        guard text.hasPrefix(prefix + "_") else { return false }
        let body = text.dropFirst(prefix.count + 1)
        return body.utf8.count == bodyLength && Base32.isValid(body)
    }
}
