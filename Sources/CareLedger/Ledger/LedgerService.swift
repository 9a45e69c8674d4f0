import Crypto
import HTTP
import Ledger
import Postgres
import Synchronization
import Telemetry

/// The ledger as the rest of the application sees it: queue an item inside a domain transaction,
/// then (after commit) wait briefly for its sequence number. Owns the sequencer (elected), the
/// waiter, and the LISTEN connection that tells them when to look.
public final class LedgerService: Sendable {
    public struct Settings: Sendable {
        /// How long a create endpoint waits for its entry to be sequenced before answering without it.
        public var sequencingWait: Duration = .seconds(1)
        /// Whether the read-only ledger endpoints answer without an API key (they hold no PHI).
        public var publicRead = false
        /// Entries per sequencing batch (and signed head).
        public var batchSize = 5_000

        public init() {}
    }

    let pool: PostgresPool
    let signer: LedgerSigner
    let settings: Settings
    let store = LedgerStore()
    let sequencer: LedgerSequencer
    let waiter: LedgerWaiter
    private let listener: PostgresListener?
    private let consumer = Mutex<Task<Void, Never>?>(nil)
    /// The latest signed head, as last read; dropped whenever a batch is announced. Every read
    /// endpoint needs it, and it changes only once per batch.
    private let cachedHead: HeadCache
    /// Wakes long polls whenever a batch is sequenced, here or on another instance.
    let batches: BatchNotifier

    /// A service for the log in `pool`'s database, signing with `signer`. `conninfo` opens the
    /// sequencer's lock connection and the LISTEN connection; nothing starts before `start()`.
    public init(pool: PostgresPool, signer: LedgerSigner, settings: Settings = Settings(), log: EventLog? = nil) {
        self.pool = pool
        self.signer = signer
        self.settings = settings
        let conninfo = pool.configuration.conninfo
        let waiter = LedgerWaiter(pool: pool)
        self.waiter = waiter
        let cachedHead = HeadCache()
        self.cachedHead = cachedHead
        let batches = BatchNotifier()
        self.batches = batches
        var sequencerSettings = LedgerSequencer.Settings()
        sequencerSettings.batchSize = settings.batchSize
        sequencer = LedgerSequencer(
            pool: pool, conninfo: conninfo, signer: signer, settings: sequencerSettings,
            log: log, afterBatch: { entries in
                cachedHead.clear()
                waiter.deliver(entries)
                batches.notify()
            })
        listener = try? PostgresListener(conninfo: conninfo, channels: ["careledger_ledger"])
    }

    /// Starts listening, waiting and (when elected) sequencing.
    public func start() {
        guard let listener else { return }
        let events = listener.events()
        listener.start()
        let waiter = self.waiter
        let cachedHead = self.cachedHead
        let batches = self.batches
        consumer.withLock {
            $0 = Task {
                for await event in events {
                    // A batch was sequenced (here or elsewhere; the payload is the new tree size), or
                    // the listener reconnected and may have missed one.
                    var treeSize: Int64?
                    if case .notification(_, let payload) = event { treeSize = Int64(payload) }
                    // A batch sequenced here was announced to everyone here already.
                    guard waiter.sequenced(treeSize: treeSize) else { continue }
                    cachedHead.clear()
                    batches.notify()
                }
            }
        }
        waiter.start()
        sequencer.start()
    }

    public func stop() async {
        await sequencer.stop()
        await waiter.stop()
        listener?.stop()
        let consumer = self.consumer.withLock { task -> Task<Void, Never>? in
            defer { task = nil }
            return task
        }
        consumer?.cancel()
    }

    /// Queues `item` in the caller's transaction.
    func enqueue(_ item: LedgerItem, on transaction: PostgresTransaction) async throws -> Int64 {
        try await store.enqueue(item, on: transaction)
    }

    /// The entry for a committed queue id, if it is sequenced within the configured wait. Pokes
    /// this instance's sequencer first, in case it is the elected one.
    func sequencedEntry(queueId: Int64) async -> LedgerEntryRow? {
        sequencer.poke()
        return await waiter.entry(queueId: queueId, timeout: settings.sequencingWait)
    }

    /// The latest signed head: from the cache while no batch has been announced since it was read
    /// (and for at most a second, should an announcement be lost).
    func latestHead() async throws -> LedgerHead? {
        if let head = cachedHead.current() { return head }
        let head = try await store.latestHead(on: pool)
        if let head { cachedHead.store(head) }
        return head
    }

    /// A receipt for the entry at `seq` against the latest signed head, or nil if it is not in it yet.
    func receipt(seq: Int64) async throws -> Receipt? {
        guard seq >= 0, let head = try await latestHead(), seq < head.treeSize,
              let found = try await inclusion(seq: seq, size: head.treeSize) else { return nil }
        return Receipt(
            origin: signer.origin, keyId: head.keyId, seq: seq, entry: String(decoding: found.entry, as: UTF8.self),
            leafHash: Base64.encode(found.leafHash), treeSize: head.treeSize, inclusionProof: found.proof.map(Base64.encode),
            checkpoint: head.checkpoint)
    }

    /// Hashes for proof ranges, fetched in one query.
    func proofHashes(_ ranges: [LeafRange], on runner: some QueryRunner) async throws -> [[UInt8]] {
        try Self.fold(ranges, try await store.nodeHashes(Array(Set(ranges.flatMap(\.nodes))), on: runner).hashes)
    }

    /// An entry, its leaf hash and its audit path in a tree of `size`, in one query; nil if the
    /// entry is not there.
    func inclusion(seq: Int64, size: Int64) async throws -> (entry: [UInt8], leafHash: [UInt8], proof: [[UInt8]])? {
        let ranges = try ProofShape.inclusion(index: seq, size: size)
        let fetched = try await store.nodeHashes(Array(Set(ranges.flatMap(\.nodes))), entrySeq: seq, on: pool)
        guard let entry = fetched.entry else { return nil }
        return (entry.bytes, entry.leafHash, try Self.fold(ranges, fetched.hashes))
    }

    private static func fold(_ ranges: [LeafRange], _ hashes: [NodeID: [UInt8]]) throws -> [[UInt8]] {
        try ranges.map { range in
            try range.hash { id in
                guard let hash = hashes[id] else { throw LedgerError.missingNode(id) }
                return hash
            }
        }
    }
}

/// The latest head and when it was read.
final class HeadCache: Sendable {
    private let state = Mutex<(head: LedgerHead, read: ContinuousClock.Instant)?>(nil)
    private let lifetime: Duration = .seconds(1)

    func current() -> LedgerHead? {
        state.withLock { state in
            guard let cached = state, ContinuousClock.now - cached.read < lifetime else { return nil }
            return cached.head
        }
    }

    func store(_ head: LedgerHead) {
        // A slower reader must not replace a newer head with an older one.
        state.withLock { state in
            if let cached = state, cached.head.treeSize > head.treeSize { return }
            state = (head, .now)
        }
    }

    func clear() {
        state.withLock { $0 = nil }
    }
}

/// Lets any number of tasks wait for the next sequenced batch (or a timeout): the long polls of
/// feeds, whose items become visible only once sequenced. A batch cancels the waiters' timers, so
/// busy feeds (woken every batch) do not pile up sleeping tasks for the rest of their `wait`.
final class BatchNotifier: Sendable {
    private struct Waiter {
        let continuation: CheckedContinuation<Void, Never>
        var timer: Task<Void, Never>?
    }

    private let waiters = Mutex<[Int: Waiter]>([:])
    private let nextToken = Atomic<Int>(0)

    func notify() {
        let all = waiters.withLock { waiters -> [Waiter] in
            defer { waiters = [:] }
            return Array(waiters.values)
        }
        for waiter in all {
            waiter.timer?.cancel()
            waiter.continuation.resume()
        }
    }

    /// Returns at the next batch, or after `timeout`.
    func next(timeout: Duration) async {
        let token = nextToken.wrappingAdd(1, ordering: .relaxed).oldValue
        await withCheckedContinuation { continuation in
            waiters.withLock { $0[token] = Waiter(continuation: continuation) }
            let timer = Task {
                try? await Task.sleep(for: timeout)
                self.waiters.withLock { $0.removeValue(forKey: token) }?.continuation.resume()
            }
            // A batch may have come between registering and here; then the timer has nothing to do.
            let stillWaiting = waiters.withLock { waiters -> Bool in
                guard waiters[token] != nil else { return false }
                waiters[token]?.timer = timer
                return true
            }
            if !stillWaiting { timer.cancel() }
        }
    }
}
