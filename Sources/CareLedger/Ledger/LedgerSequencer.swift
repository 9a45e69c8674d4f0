import FoundationEssentials
import Ledger
import Postgres
import Synchronization
import Telemetry

/// Wakes a waiting task, or lets the next wait return at once.
final class WakeSignal: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    func signal() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.pending = true
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    /// Returns on the next signal, or after `timeout`.
    func wait(timeout: Duration) async {
        let timer = Task {
            // Cancelled when the wait ends early; it must not then leave a stale wake-up behind.
            guard (try? await Task.sleep(for: timeout)) != nil else { return }
            signal()
        }
        defer { timer.cancel() }
        await withCheckedContinuation { continuation in
            let resumeNow = state.withLock { state -> Bool in
                if state.pending {
                    state.pending = false
                    return true
                }
                state.waiter = continuation
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }
}

/// A task that loops until stopped, and the signal that wakes it early.
final class BackgroundLoop: Sendable {
    let wake = WakeSignal()
    private let task = Mutex<Task<Void, Never>?>(nil)

    func start(_ body: @escaping @Sendable () async -> Void) {
        let task = Task { await body() }
        self.task.withLock { $0 = task }
    }

    /// Cancels the loop, wakes it so it sees that, and waits for it to finish.
    func stop() async {
        let task = self.task.withLock { task -> Task<Void, Never>? in
            defer { task = nil }
            return task
        }
        task?.cancel()
        wake.signal()
        await task?.value
    }
}

/// Moves queued items into the log, Trillian style. Any number of instances run one; the one that
/// holds a session advisory lock sequences, and if it dies its connection drops, the lock with it,
/// and another instance takes over within `electionInterval`. Each batch runs in one transaction
/// under a second, transaction-level lock and re-reads the tree size, so even two sequencers at
/// once (a lock connection lost mid-batch) could not fork the log: a batch either commits whole,
/// entries, subtree hashes and signed head together, or not at all.
final class LedgerSequencer: Sendable {
    struct Settings: Sendable {
        var batchSize = 5_000
        /// How often an idle sequencer looks at the queue (other instances' writes arrive unannounced).
        var idlePoll: Duration = .milliseconds(10)
        var electionInterval: Duration = .seconds(1)
        /// How often the sequencer anchors the audit events that arrived since the last batch.
        var auditBatchInterval: Duration = .seconds(1)
        var auditBatchLimit = 10_000
    }

    private let pool: PostgresPool
    private let conninfo: String
    private let signer: LedgerSigner
    private let settings: Settings
    private let store = LedgerStore()
    private let loop = BackgroundLoop()
    private var wake: WakeSignal { loop.wake }
    private let frontier = Mutex<MerkleFrontier?>(nil)
    /// Told of every committed batch, with its entries, so local waiters need not look them up.
    private let afterBatch: @Sendable ([LedgerEntryRow]) -> Void
    /// Whether this signer's key is known to be in `ledger_keys` (registered once, not per batch).
    private let keyRegistered = Atomic<Bool>(false)
    private let log: EventLog?

    init(pool: PostgresPool, conninfo: String, signer: LedgerSigner, settings: Settings = Settings(),
         log: EventLog? = nil, afterBatch: @escaping @Sendable ([LedgerEntryRow]) -> Void = { _ in }) {
        self.pool = pool
        self.conninfo = conninfo
        self.signer = signer
        self.settings = settings
        self.log = log
        self.afterBatch = afterBatch
    }

    /// Something was queued: sequence soon.
    func poke() {
        wake.signal()
    }

    func start() {
        loop.start { await self.run() }
    }

    func stop() async {
        await loop.stop()
    }

    private func run() async {
        while !Task.isCancelled {
            guard let leader = await becomeLeader() else {
                try? await Task.sleep(for: settings.electionInterval)
                continue
            }
            log?.log(.info, "sequencer elected", [("origin", .string(signer.origin))])
            await lead(holding: leader)
            log?.log(.info, "sequencer stepped down")
        }
    }

    /// A connection holding the session lock, or nil if another instance holds it.
    private func becomeLeader() async -> PostgresConnection? {
        do {
            let connection = try await PostgresConnection.connect(conninfo, connectTimeout: .seconds(2))
            let rows = try await connection.query("SELECT pg_try_advisory_lock(\(LedgerStore.electionLock), hashtext(current_schema())) AS held")
            return try rows[0].decode("held", as: Bool.self) ? connection : nil
        } catch {
            return nil
        }
    }

    private func lead(holding leader: PostgresConnection) async {
        var lastCheck = ContinuousClock.now
        var lastAuditBatch = ContinuousClock.now
        frontier.withLock { $0 = nil }
        while !Task.isCancelled {
            // The lock lives as long as its connection; check it now and then.
            if ContinuousClock.now - lastCheck > settings.electionInterval {
                lastCheck = .now
                guard (try? await leader.query("SELECT 1 AS alive")) != nil else { return }
            }
            do {
                if ContinuousClock.now - lastAuditBatch > settings.auditBatchInterval {
                    lastAuditBatch = .now
                    try await anchorAuditEvents()
                }
                let sequenced = try await sequenceBatch()
                if sequenced < settings.batchSize { await wake.wait(timeout: settings.idlePoll) }
            } catch {
                // PostgresError's description is generic by design; the kind is enough to act on.
                log?.log(.error, "sequencing failed", [("error", .string(String(describing: type(of: error))))])
                frontier.withLock { $0 = nil }
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    /// Queues an `audit.batch` entry for the audit events not yet anchored (the sequencer's duty,
    /// so only one instance does it).
    @discardableResult
    func anchorAuditEvents() async throws -> Int {
        try await AuditStore().anchorNextBatch(limit: settings.auditBatchLimit, ledger: store, on: pool)
    }

    /// Sequences up to one batch; returns how many entries it appended.
    @discardableResult
    func sequenceBatch() async throws -> Int {
        // Nil when there was nothing to do (and no head was written).
        guard let appended = try await appendBatch() else { return 0 }
        keyRegistered.store(true, ordering: .relaxed)
        // Readers of the head and waiters for entries look again now that the batch is committed.
        afterBatch(appended)
        return appended.count
    }

    private func appendBatch() async throws -> [LedgerEntryRow]? {
        try await pool.withTransaction { transaction in
            try await store.lockSequencing(on: transaction)
            let head = try await store.latestHead(on: transaction)
            let size = head?.treeSize ?? 0
            let queued = try await store.dequeue(limit: settings.batchSize, on: transaction)
            // An empty log gets its size-0 head once, so there is always a signed head to show.
            guard !queued.isEmpty || head == nil else { return nil }
            var tree = try await currentFrontier(size: size, on: transaction)
            let now = Date()
            var entries: [LedgerEntryRow] = []
            var nodes: [(id: NodeID, hash: [UInt8])] = []
            entries.reserveCapacity(queued.count)
            for (offset, queuedItem) in queued.enumerated() {
                let seq = size + Int64(offset)
                let entry = LedgerEntry.canonical(seq: seq, item: queuedItem.item, time: now)
                let leafHash = MerkleHash.leaf(entry)
                entries.append(LedgerEntryRow(seq: seq, entry: entry, leafHash: leafHash, queueId: queuedItem.id))
                nodes += tree.append(leafHash: leafHash).dropFirst()
            }
            if !keyRegistered.load(ordering: .relaxed) {
                try await store.registerKey(keyId: signer.keyId, name: signer.origin, publicKey: signer.key.publicKey.rawRepresentation, on: transaction)
            }
            let root = tree.root
            let newHead = LedgerHead(
                treeSize: tree.size, rootHash: root, keyId: signer.keyId,
                checkpoint: try signer.signedCheckpoint(size: tree.size, root: root), signedAt: now)
            try await store.appendBatch(entries: entries, items: queued.map { $0.item }, nodes: nodes, head: newHead, on: transaction)
            // If the commit fails after all, the next batch finds a different size and refetches.
            let extended = tree
            frontier.withLock { $0 = extended }
            return entries
        }
    }

    /// The frontier for `size`, from memory when it matches, else from the stored subtree hashes.
    private func currentFrontier(size: Int64, on runner: some QueryRunner) async throws -> MerkleFrontier {
        if let cached = frontier.withLock({ $0 }), cached.size == size { return cached }
        let ids = MerkleFrontier.nodeIDs(size: size)
        let hashes = try await store.nodeHashes(ids, on: runner).hashes
        return try MerkleFrontier(size: size) { id in
            guard let hash = hashes[id] else { throw LedgerError.missingNode(id) }
            return hash
        }
    }
}

/// Inconsistencies inside the stored log.
enum LedgerError: Error, CustomStringConvertible {
    case missingNode(NodeID)

    var description: String {
        switch self {
        case .missingNode(let id): "the stored log lacks subtree \(id)"
        }
    }
}
