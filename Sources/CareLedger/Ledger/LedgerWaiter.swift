import Postgres
import Synchronization

/// Lets a request wait, briefly, for the entries its transaction queued to be sequenced, so a 201
/// can carry `seq` and `leafHash`. One loop per instance checks every pending queue id at once,
/// whenever a sequencer (here or on another instance) announces a batch, and at least every poll
/// interval in case an announcement was missed.
final class LedgerWaiter: Sendable {
    private struct Waiter {
        let queueId: Int64
        let continuation: CheckedContinuation<LedgerEntryRow?, Never>
        /// The timeout, cancelled when the entry comes first: a busy server answers thousands of
        /// waiters a second, and their sleeping timers would otherwise pile up for the whole timeout.
        var timer: Task<Void, Never>?

        func resume(returning entry: LedgerEntryRow?) {
            timer?.cancel()
            continuation.resume(returning: entry)
        }
    }

    /// Waiters, and what this instance's own sequencer delivered lately: a request whose entry was
    /// sequenced here before it started waiting is answered from memory, not from the database.
    private struct State {
        var waiters: [Int: Waiter] = [:]
        /// Two generations of recent entries by queue id; the older is dropped when the newer fills.
        var recent: [Int64: LedgerEntryRow] = [:]
        var older: [Int64: LedgerEntryRow] = [:]
        /// The tree size after the last batch sequenced here, and when that was.
        var deliveredSize: Int64 = 0
        var lastDelivery: ContinuousClock.Instant?

        func recentEntry(_ queueId: Int64) -> LedgerEntryRow? {
            recent[queueId] ?? older[queueId]
        }

        /// Whether this instance's sequencer is the one at work (it delivered within the last second).
        var sequencesHere: Bool {
            lastDelivery.map { ContinuousClock.now - $0 < .seconds(1) } ?? false
        }
    }

    static let recentCapacity = 20_000

    private let pool: PostgresPool
    private let store = LedgerStore()
    private let state = Mutex(State())
    private let nextToken = Atomic<Int>(0)
    private let loop = BackgroundLoop()
    private var wake: WakeSignal { loop.wake }
    private let poll: Duration

    init(pool: PostgresPool, poll: Duration = .milliseconds(100)) {
        self.pool = pool
        self.poll = poll
    }

    /// A batch was sequenced somewhere, making the tree `treeSize` big (nil when unknown, as after a
    /// reconnect). The database is asked only for batches this instance did not sequence itself;
    /// returns whether this one is such news.
    @discardableResult
    func sequenced(treeSize: Int64?) -> Bool {
        let known = state.withLock { state in treeSize.map { $0 <= state.deliveredSize } ?? false }
        if !known { wake.signal() }
        return !known
    }

    /// A batch was sequenced here: its waiters are answered from the entries at hand.
    func deliver(_ entries: [LedgerEntryRow]) {
        guard let last = entries.map(\.seq).max() else { return }
        let ready = state.withLock { state -> [(Waiter, LedgerEntryRow)] in
            state.deliveredSize = max(state.deliveredSize, last + 1)
            state.lastDelivery = ContinuousClock.now
            if state.recent.count + entries.count > Self.recentCapacity {
                state.older = state.recent
                state.recent = [:]
            }
            for entry in entries { state.recent[entry.queueId] = entry }
            var ready: [(Waiter, LedgerEntryRow)] = []
            for (token, waiter) in state.waiters {
                if let entry = state.recent[waiter.queueId] {
                    ready.append((waiter, entry))
                    state.waiters.removeValue(forKey: token)
                }
            }
            return ready
        }
        for (waiter, entry) in ready { waiter.resume(returning: entry) }
    }

    func start() {
        loop.start { await self.run() }
    }

    func stop() async {
        await loop.stop()
        let left = state.withLock { state -> [Waiter] in
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in left { waiter.resume(returning: nil) }
    }

    /// The sequenced entry for `queueId`, or nil if it is not sequenced within `timeout`. Either
    /// way the item is safe: it was committed to the queue before this is called.
    func entry(queueId: Int64, timeout: Duration) async -> LedgerEntryRow? {
        let token = nextToken.wrappingAdd(1, ordering: .relaxed).oldValue
        return await withCheckedContinuation { continuation in
            // Checked and registered under one lock with `deliver`, so a local batch cannot slip between.
            let (found, sequencesHere) = state.withLock { state -> (LedgerEntryRow?, Bool) in
                if let entry = state.recentEntry(queueId) { return (entry, true) }
                state.waiters[token] = Waiter(queueId: queueId, continuation: continuation)
                return (nil, state.sequencesHere)
            }
            if let found {
                continuation.resume(returning: found)
                return
            }
            // Started only once the waiter is registered, so the timeout always finds it (or a no-op).
            let timer = Task {
                guard (try? await Task.sleep(for: timeout)) != nil else { return }
                self.finish(token, with: nil)
            }
            let stillWaiting = state.withLock { state -> Bool in
                guard state.waiters[token] != nil else { return false }
                state.waiters[token]?.timer = timer
                return true
            }
            if !stillWaiting { timer.cancel() }
            // Another instance sequences: its batch may have been announced before this waiter came.
            if !sequencesHere { wake.signal() }
        }
    }

    private func finish(_ token: Int, with entry: LedgerEntryRow?) {
        state.withLock { $0.waiters.removeValue(forKey: token) }?.resume(returning: entry)
    }

    private func run() async {
        while !Task.isCancelled {
            await wake.wait(timeout: poll)
            let pending = state.withLock { $0.waiters.map { ($0.key, $0.value.queueId) } }
            guard !pending.isEmpty, let found = try? await store.entries(queueIds: Array(Set(pending.map { $0.1 })), on: pool) else { continue }
            for (token, queueId) in pending {
                if let entry = found[queueId] { finish(token, with: entry) }
            }
        }
    }
}
