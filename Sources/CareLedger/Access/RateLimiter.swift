import Synchronization

/// Token buckets by name (a key id, a client address): each holds up to `capacity` tokens and
/// refills at `capacity / period`. A bucket is kept as the tokens it is missing, so tokens taken
/// elsewhere (another instance of the deployment, told by `DeploymentLimits`) can be charged to it
/// before this instance knows its capacity. The table is bounded: when it is full, buckets that
/// have refilled completely (and so carry no information) are dropped first.
final class RateLimiter: Sendable {
    private struct Bucket {
        var missing: Double
        var updated: ContinuousClock.Instant
        /// The capacity it was last taken from; nil while only charged.
        var capacity: Int?
    }

    private struct State {
        var buckets: [String: Bucket] = [:]
        /// Tokens granted here since the last `drainTaken()`, by name.
        var taken: [String: Int] = [:]
    }

    private let period: Duration
    private let maximumTracked: Int
    private let clock: @Sendable () -> ContinuousClock.Instant
    private let state = Mutex(State())

    /// `clock` is the time a call without `now` is taken at (tests move it instead of waiting).
    init(period: Duration, maximumTracked: Int = 100_000, clock: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        self.period = period
        self.maximumTracked = maximumTracked
        self.clock = clock
    }

    /// Takes a token from `name`'s bucket of `capacity`. Nil when granted; otherwise the whole
    /// seconds until a token will be there, for `Retry-After`.
    func take(_ name: String, capacity: Int, now: ContinuousClock.Instant? = nil) -> Int? {
        let now = now ?? clock()
        return state.withLock { state in
            var bucket = refilled(state.buckets[name], capacity: capacity, now: now)
            defer { store(bucket, for: name, in: &state, now: now) }
            guard Double(capacity) - bucket.missing >= 1 else { return secondsUntilToken(bucket, capacity: capacity) }
            bucket.missing += 1
            if state.taken.count < maximumTracked || state.taken[name] != nil { state.taken[name, default: 0] += 1 }
            return nil
        }
    }

    /// Like `take`, without taking: whether `name` would be refused now.
    func retryAfter(_ name: String, capacity: Int, now: ContinuousClock.Instant? = nil) -> Int? {
        let now = now ?? clock()
        return state.withLock { state in
            let bucket = refilled(state.buckets[name], capacity: capacity, now: now)
            return Double(capacity) - bucket.missing >= 1 ? nil : secondsUntilToken(bucket, capacity: capacity)
        }
    }

    /// Tokens taken elsewhere from the same bucket: they are missing here too.
    func charge(_ name: String, tokens: Int, now: ContinuousClock.Instant? = nil) {
        guard tokens > 0 else { return }
        let now = now ?? clock()
        state.withLock { state in
            let known = state.buckets[name]
            var bucket = known.flatMap { bucket in bucket.capacity.map { refilled(bucket, capacity: $0, now: now) } }
                ?? Bucket(missing: known?.missing ?? 0, updated: known?.updated ?? now, capacity: nil)
            bucket.missing += Double(tokens)
            store(bucket, for: name, in: &state, now: now)
        }
    }

    /// The tokens granted here since the last call, by name (for `DeploymentLimits` to publish).
    func drainTaken() -> [String: Int] {
        state.withLock { state in
            defer { state.taken = [:] }
            return state.taken
        }
    }

    /// Grants `drainTaken()` returned that could not be published: reported with the next ones.
    func restoreTaken(_ taken: [String: Int]) {
        state.withLock { state in
            for (name, count) in taken { state.taken[name, default: 0] += count }
        }
    }

    private func refilled(_ bucket: Bucket?, capacity: Int, now: ContinuousClock.Instant) -> Bucket {
        guard let bucket else { return Bucket(missing: 0, updated: now, capacity: capacity) }
        let elapsed = (now - bucket.updated) / period
        return Bucket(missing: max(0, bucket.missing - elapsed * Double(capacity)), updated: now, capacity: capacity)
    }

    private func secondsUntilToken(_ bucket: Bucket, capacity: Int) -> Int {
        let short = bucket.missing - Double(capacity) + 1
        let seconds = short / Double(capacity) * (Double(period.components.seconds) + Double(period.components.attoseconds) / 1e18)
        return max(1, Int(seconds.rounded(.up)))
    }

    private func store(_ bucket: Bucket, for name: String, in state: inout State, now: ContinuousClock.Instant) {
        if state.buckets[name] == nil, state.buckets.count >= maximumTracked {
            state.buckets = state.buckets.filter { entry in
                entry.value.capacity.map { refilled(entry.value, capacity: $0, now: now).missing > 0 } ?? true
            }
            guard state.buckets.count < maximumTracked else { return }
        }
        state.buckets[name] = bucket
    }
}
