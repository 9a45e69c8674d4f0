import Synchronization

/// Request ids: a client's `X-Request-Id` is kept when it is well-formed (so ids follow a request
/// across systems), otherwise one is made from a per-process random prefix and a counter, which is
/// unique across instances and costs no system call per request.
public enum RequestID {
    private static let prefix: String = {
        var generator = SystemRandomNumberGenerator()
        return hex(generator.next() as UInt64)
    }()
    private static let counter = Atomic<UInt64>(0)

    /// The client's id if it is 1...128 characters of `A-Z a-z 0-9 - _ . :`, else nil.
    public static func accepting(_ candidate: String?) -> String? {
        guard let candidate, (1...128).contains(candidate.utf8.count),
              candidate.utf8.allSatisfy(isAllowed) else { return nil }
        return candidate
    }

    /// A fresh id, 32 lowercase hex digits.
    public static func generate() -> String {
        let sequence = counter.wrappingAdd(1, ordering: .relaxed).newValue
        return prefix + hex(sequence)
    }

    private static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"),
             UInt8(ascii: "."), UInt8(ascii: ":"):
            return true
        default:
            return false
        }
    }

    private static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
