import Dispatch

/// A point on the monotonic clock, in nanoseconds. Time is passed into the state machines, never read
/// by them, so timeouts are tested without sleeping.
public struct MonotonicInstant: Comparable, Sendable, Hashable {
    /// Nanoseconds since an arbitrary boot-time origin.
    public let nanoseconds: UInt64

    /// Wraps a nanosecond count.
    public init(nanoseconds: UInt64) {
        self.nanoseconds = nanoseconds
    }

    /// The current instant.
    public static func now() -> MonotonicInstant {
        MonotonicInstant(nanoseconds: DispatchTime.now().uptimeNanoseconds)
    }

    /// This instant plus `duration` (negative durations are treated as zero).
    public func advanced(by duration: Duration) -> MonotonicInstant {
        MonotonicInstant(nanoseconds: nanoseconds &+ duration.nanoseconds)
    }

    /// The time from `earlier` to this instant, zero if `earlier` is later.
    public func since(_ earlier: MonotonicInstant) -> Duration {
        nanoseconds > earlier.nanoseconds ? .nanoseconds(Int64(nanoseconds - earlier.nanoseconds)) : .zero
    }

    public static func < (lhs: MonotonicInstant, rhs: MonotonicInstant) -> Bool {
        lhs.nanoseconds < rhs.nanoseconds
    }
}

extension Duration {
    /// Whole nanoseconds, clamped to zero and UInt64.
    var nanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        guard seconds >= 0 else { return 0 }
        return UInt64(seconds) &* 1_000_000_000 &+ UInt64(attoseconds / 1_000_000_000)
    }

    /// Milliseconds as a Double, for logs.
    var milliseconds: Double { Double(nanoseconds) / 1_000_000 }
}
