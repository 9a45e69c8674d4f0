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
    }

    private let pool: PostgresPool
    private let store = LedgerStore()
    private let waiters = Mutex<[Int: Waiter]>([:])
    private let nextToken = Atomic<Int>(0)
    private let loop = BackgroundLoop()
    private var wake: WakeSignal { loop.wake }
    private let poll: Duration

    init(pool: PostgresPool, poll: Duration = .milliseconds(100)) {
        self.pool = pool
        self.poll = poll
    }

    /// A batch was sequenced somewhere.
    func sequenced() {
        wake.signal()
    }

    /// A batch was sequenced here: its waiters are answered from the entries at hand.
    func deliver(_ entries: [LedgerEntryRow]) {
        guard !entries.isEmpty else { return }
        let byQueueId = Dictionary(entries.map { ($0.queueId, $0) }, uniquingKeysWith: { first, _ in first })
        let ready = waiters.withLock { waiters -> [(Waiter, LedgerEntryRow)] in
            var ready: [(Waiter, LedgerEntryRow)] = []
            for (token, waiter) in waiters {
                if let entry = byQueueId[waiter.queueId] {
                    ready.append((waiter, entry))
                    waiters.removeValue(forKey: token)
                }
            }
            return ready
        }
        for (waiter, entry) in ready { waiter.continuation.resume(returning: entry) }
    }

    func start() {
        loop.start { await self.run() }
    }

    func stop() async {
        await loop.stop()
        let left = waiters.withLock { waiters -> [Waiter] in
            defer { waiters = [:] }
            return Array(waiters.values)
        }
        for waiter in left { waiter.continuation.resume(returning: nil) }
    }

    /// The sequenced entry for `queueId`, or nil if it is not sequenced within `timeout`. Either
    /// way the item is safe: it was committed to the queue before this is called.
    func entry(queueId: Int64, timeout: Duration) async -> LedgerEntryRow? {
        if let found = try? await store.entries(queueIds: [queueId], on: pool)[queueId] { return found }
        let token = nextToken.wrappingAdd(1, ordering: .relaxed).oldValue
        return await withCheckedContinuation { continuation in
            waiters.withLock { $0[token] = Waiter(queueId: queueId, continuation: continuation) }
            // Started only once the waiter is registered, so the timeout always finds it (or a no-op).
            Task {
                try? await Task.sleep(for: timeout)
                self.finish(token, with: nil)
            }
            wake.signal()
        }
    }

    private func finish(_ token: Int, with entry: LedgerEntryRow?) {
        waiters.withLock { $0.removeValue(forKey: token) }?.continuation.resume(returning: entry)
    }

    private func run() async {
        while !Task.isCancelled {
            await wake.wait(timeout: poll)
            let pending = waiters.withLock { $0.map { ($0.key, $0.value.queueId) } }
            guard !pending.isEmpty, let found = try? await store.entries(queueIds: Array(Set(pending.map(\.1))), on: pool) else { continue }
            for (token, queueId) in pending {
                if let entry = found[queueId] { finish(token, with: entry) }
            }
        }
    }
}
