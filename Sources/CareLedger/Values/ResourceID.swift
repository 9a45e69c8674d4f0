import Crypto
import FoundationEssentials
import Synchronization

/// Opaque, prefixed, time-ordered identifiers such as `org_06f8k3q2z9m4x7c1v5b8n2r4ta`: 48 bits of
/// milliseconds since 1970 then 80 random bits, in lower-case Crockford base32. Ids made later sort
/// later, so they serve as pagination cursors, and they reveal nothing else. Within one process
/// and millisecond the random part counts up from the first (as monotonic ULIDs do), so even ids
/// made in the same millisecond sort in creation order.
public enum ResourceID {
    private static let last = Mutex<(milliseconds: UInt64, tail: [UInt8])>((0, []))

    /// Characters after the prefix and its underscore.
    static let bodyLength = 26

    /// A new id with `prefix` (e.g. `org`).
    public static func generate(_ prefix: String, now: Date = Date()) -> String {
        let (milliseconds, tail) = last.withLock { last -> (UInt64, [UInt8]) in
            let now = UInt64(max(0, now.timeIntervalSince1970 * 1000))
            if now > last.milliseconds || last.tail.isEmpty {
                last = (now, SecureRandom.bytes(10))
            } else if let position = last.tail.lastIndex(where: { $0 != 0xFF }) {
                last.tail[position] += 1
                for index in (position + 1)..<last.tail.count { last.tail[index] = 0 }
            } else {
                // 2^80 ids in one millisecond cannot happen; move to the next millisecond anyway.
                last = (last.milliseconds + 1, SecureRandom.bytes(10))
            }
            return last
        }
        let bytes = (0..<6).map { UInt8(truncatingIfNeeded: milliseconds >> (40 - 8 * $0)) } + tail
        return prefix + "_" + Base32.encode(bytes)
    }

    /// Whether `text` has the shape of an id with `prefix`; says nothing of whether it exists.
    public static func isWellFormed(_ text: String, prefix: String) -> Bool {
        guard text.hasPrefix(prefix + "_") else { return false }
        let body = text.dropFirst(prefix.count + 1)
        return body.utf8.count == bodyLength && Base32.isValid(body)
    }
}
