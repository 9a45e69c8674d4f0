import Synchronization

/// Token buckets by name (a key id, a client address): each holds up to `capacity` tokens and
/// refills at `capacity / period`. Limits are per server instance. The table is bounded: when it is
/// full, buckets that have refilled completely (and so carry no information) are dropped first.
final class RateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    private let period: Duration
    private let maximumTracked: Int
    private let buckets = Mutex<[String: Bucket]>([:])

    init(period: Duration, maximumTracked: Int = 100_000) {
        self.period = period
        self.maximumTracked = maximumTracked
    }

    /// Takes a token from `name`'s bucket of `capacity`. Nil when granted; otherwise the whole
    /// seconds until a token will be there, for `Retry-After`.
    func take(_ name: String, capacity: Int, now: ContinuousClock.Instant = .now) -> Int? {
        buckets.withLock { buckets in
            var bucket = refilled(buckets[name], capacity: capacity, now: now)
            defer { store(bucket, for: name, in: &buckets, capacity: capacity, now: now) }
            guard bucket.tokens >= 1 else { return secondsUntilToken(bucket, capacity: capacity) }
            bucket.tokens -= 1
            return nil
        }
    }

    /// Like `take`, without taking: whether `name` would be refused now.
    func retryAfter(_ name: String, capacity: Int, now: ContinuousClock.Instant = .now) -> Int? {
        buckets.withLock { buckets in
            let bucket = refilled(buckets[name], capacity: capacity, now: now)
            return bucket.tokens >= 1 ? nil : secondsUntilToken(bucket, capacity: capacity)
        }
    }

    private func refilled(_ bucket: Bucket?, capacity: Int, now: ContinuousClock.Instant) -> Bucket {
        guard let bucket else { return Bucket(tokens: Double(capacity), updated: now) }
        let elapsed = (now - bucket.updated) / period
        return Bucket(tokens: min(Double(capacity), bucket.tokens + elapsed * Double(capacity)), updated: now)
    }

    private func secondsUntilToken(_ bucket: Bucket, capacity: Int) -> Int {
        let missing = 1 - bucket.tokens
        let seconds = missing / Double(capacity) * (Double(period.components.seconds) + Double(period.components.attoseconds) / 1e18)
        return max(1, Int(seconds.rounded(.up)))
    }

    private func store(_ bucket: Bucket, for name: String, in buckets: inout [String: Bucket], capacity: Int, now: ContinuousClock.Instant) {
        if buckets[name] == nil, buckets.count >= maximumTracked {
            buckets = buckets.filter { refilled($0.value, capacity: capacity, now: now).tokens < Double(capacity) }
            guard buckets.count < maximumTracked else { return }
        }
        buckets[name] = bucket
    }
}
