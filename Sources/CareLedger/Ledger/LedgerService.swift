import Crypto
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
    private let listener: PostgresListener
    private let consumer = Mutex<Task<Void, Never>?>(nil)
    /// The latest signed head, as last read; dropped whenever a batch is announced. Every read
    /// endpoint needs it, and it changes only once per batch.
    private let cachedHead: HeadCache
    /// Wakes long polls whenever a batch is sequenced, here or on another instance.
    let batches: BatchNotifier
    /// The hot standby that serves the reads tolerating lag, when there is one.
    let replica: ReplicaReads?
    /// The largest tree size known to be sequenced on the primary (by this instance, announced by
    /// another, or read): what a feed's standby must hold before it answers instead of the primary.
    private let primarySize: PrimarySize

    /// A service for the log in `pool`'s database, signing with `signer`. `conninfo` opens the
    /// sequencer's lock connection and the LISTEN connection; nothing starts before `start()`. A
    /// listener that cannot be made fails the service: one that ran without it would leave the
    /// sequencer and waiter to polling, or (as it once did) not start them at all.
    /// With `replica`, a hot standby of that database serves the reads that tolerate lag (see `ReplicaReads`).
    public convenience init(pool: PostgresPool, replica: PostgresPool? = nil, signer: LedgerSigner, settings: Settings = Settings(),
                            log: EventLog? = nil) throws(PostgresError) {
        try self.init(pool: pool, replica: replica, signer: signer, settings: settings, log: log, channel: Self.channel)
    }

    /// The NOTIFY channel batches are announced on.
    static let channel = "careledger_ledger"

    init(pool: PostgresPool, replica: PostgresPool? = nil, signer: LedgerSigner, settings: Settings, log: EventLog?, channel: String) throws(PostgresError) {
        self.pool = pool
        self.replica = replica.map { ReplicaReads(pool: $0) }
        let primarySize = PrimarySize()
        self.primarySize = primarySize
        self.signer = signer
        self.settings = settings
        // The election lock and LISTEN are session state: past a transaction pooler, to the database itself.
        let conninfo = pool.configuration.sessionTarget
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
                if let last = entries.last { primarySize.raise(to: last.seq + 1) }
                cachedHead.clear()
                waiter.deliver(entries)
                batches.notify()
            })
        listener = try PostgresListener(conninfo: conninfo, channels: [channel])
    }

    /// Starts listening, waiting and (when elected) sequencing.
    public func start() {
        let events = listener.events()
        listener.start()
        let waiter = self.waiter
        let cachedHead = self.cachedHead
        let batches = self.batches
        let primarySize = self.primarySize
        consumer.withLock {
            $0 = Task {
                for await event in events {
                    // A batch was sequenced (here or elsewhere; the payload is the new tree size), or
                    // the listener reconnected and may have missed one.
                    var treeSize: Int64?
                    if case .notification(_, let payload) = event { treeSize = Int64(payload) }
                    if let treeSize { primarySize.raise(to: treeSize) }
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
        listener.stop()
        let consumer = self.consumer.withLock { task -> Task<Void, Never>? in
            defer { task = nil }
            return task
        }
        consumer?.cancel()
    }

    /// Queues entries that anchor no domain object, one statement through the queue's one insert:
    /// what `careledger-bench` loads the sequencer with.
    public func enqueueLoad(type: String, actor: String, refs: [String], hashes: [String]) async throws {
        guard refs.count == hashes.count else { throw DomainError.invalid("one hash per ref") }
        let items = zip(refs, hashes).map { LedgerItem(type: type, actor: actor, ref: $0, hash: $1) }
        try await pool.query("\(LedgerStore.queueAppend(items))")
    }

    /// Anchors an organization's own document hash (`POST /v1/ledger/anchors`): the anchor and its
    /// entry commit together; the answer carries the entry once sequenced.
    func anchor(hash: String, kind: String, reference: String, _ call: CallContext) async throws -> (id: String, entry: LedgerEntryRow?) {
        guard DocumentHash.isValid(hash) else { throw DomainError.invalid("'hash' must be sha256: followed by 64 lowercase hex digits.") }
        guard (1...64).contains(kind.utf8.count), kind.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E || $0 == 0x2D || $0 == 0x5F }) else {
            throw DomainError.invalid("'kind' must be 1-64 characters of a-z 0-9 . - _")
        }
        _ = try DisplayName.validated(reference, field: "reference", required: true)
        let id = ResourceID.generate("anc")
        let queueId = try await pool.withTransaction { transaction in
            let queueId = try await store.enqueue(LedgerItem(type: "anchor", actor: call.caller.orgId, ref: id, hash: hash), on: transaction)
            try await store.createAnchor(id: id, orgId: call.caller.orgId, kind: kind, reference: reference, hash: hash, queueId: queueId, on: transaction)
            return queueId
        }
        return (id, await sequencedEntry(queueId: queueId))
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
        if let head {
            cachedHead.store(head)
            primarySize.raise(to: head.treeSize)
        }
        return head
    }

    /// Entries a page holds at most, and when the caller names no `to`.
    static let maximumPage: Int64 = 1000
    static let defaultPage: Int64 = 100

    /// The latest signed head; the log has one from its first sequencing batch on.
    func signedHead() async throws -> LedgerHead {
        guard let head = try await latestHead() else { throw DomainError.notYetSigned("The ledger has no signed head yet; retry shortly.") }
        return head
    }

    /// The signed head of `size` (which must have been published), or the latest.
    func signedHead(size: Int64?) async throws -> LedgerHead {
        guard let size else { return try await signedHead() }
        guard size >= 1 else { throw DomainError.invalid("A tree size must be a positive integer.") }
        guard let head = try await read(covering: size, { try await store.head(size: size, on: $0) }) else {
            throw DomainError.notFound("No signed tree head of size \(size); use the size of a published checkpoint.")
        }
        return head
    }

    func keys() async throws -> [LedgerKey] {
        try await store.keys(on: pool)
    }

    /// Entries from `from` to `to` (exclusive; the signed tree size when nil), a page at a time;
    /// `next` is the following page's `from`.
    func entries(from: Int64, to requestedTo: Int64?) async throws -> (entries: [LedgerEntryRow], next: Int64?) {
        let size = try await signedHead().treeSize
        let end = min(requestedTo ?? size, size)
        guard from <= end else { throw DomainError.invalid("'from' must not be past 'to' or the tree size (\(size)).") }
        // Differences, not sums: `from` may be anything up to Int64.max, and `from + page` would trap.
        let page = requestedTo == nil ? Self.defaultPage : Self.maximumPage
        let to = end - from <= page ? end : from + page
        return (try await read(covering: to) { try await store.entries(from: from, to: to, on: $0) }, to < end ? to : nil)
    }

    func entry(seq: Int64) async throws -> LedgerEntryRow {
        guard seq >= 0, let entry = try await read(covering: seq < Int64.max ? seq + 1 : seq, { try await store.entry(seq: seq, on: $0) }) else {
            throw DomainError.notFound("No entry with that sequence number yet.")
        }
        return entry
    }

    /// The entry at `seq`, its leaf hash and its audit path in the signed tree of `size` (the latest when nil).
    func inclusionProof(seq: Int64, size: Int64?) async throws -> (head: LedgerHead, entry: [UInt8], leafHash: [UInt8], path: [[UInt8]]) {
        let head = try await signedHead(size: size)
        guard seq < head.treeSize, let found = try await inclusion(seq: seq, size: head.treeSize) else {
            throw DomainError.notFound("No entry \(seq) in the tree of size \(head.treeSize).")
        }
        return (head, found.entry, found.leafHash, found.proof)
    }

    /// The proof that the signed tree of `to` (the latest when nil) extends the one of `from`.
    func consistencyProof(from: Int64, to: Int64?) async throws -> (head: LedgerHead, fromHead: LedgerHead?, path: [[UInt8]]) {
        let head = try await signedHead(size: to)
        guard from <= head.treeSize else { throw DomainError.invalid("'from' must not exceed 'to' (\(head.treeSize)).") }
        let shape = try ProofShape.consistency(oldSize: from, newSize: head.treeSize)
        return try await read(covering: head.treeSize) { source in
            (head, try await store.head(size: from, on: source), try await proofHashes(shape, on: source))
        }
    }

    /// A receipt for the entry at `seq` against the latest signed head, or nil if it is not in it yet.
    /// Receipts of the entries the queue ids became, oldest first; nil when none is in a signed head
    /// yet (an object's proof answers 503 then).
    func receipts(queueIds: [Int64]) async throws -> [Receipt]? {
        var receipts: [Receipt] = []
        for entry in try await store.entries(queueIds: queueIds, on: pool).values.sorted(by: { $0.seq < $1.seq }) {
            if let receipt = try await receipt(seq: entry.seq) { receipts.append(receipt) }
        }
        return receipts.isEmpty ? nil : receipts
    }

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
        let nodes = Array(Set(ranges.flatMap(\.nodes)))
        let fetched = try await read(covering: size) { try await store.nodeHashes(nodes, entrySeq: seq, on: $0) }
        guard let entry = fetched.entry else { return nil }
        return (entry.bytes, entry.leafHash, try Self.fold(ranges, fetched.hashes))
    }

    /// A read of the first `size` entries: on the standby when it holds them, else on the primary.
    func read<T>(covering size: Int64, _ body: (PostgresPool) async throws -> T) async throws -> T {
        guard let replica else { return try await body(pool) }
        return try await onStandbyOrPrimary(await replica.pool(covering: size, else: pool), body)
    }

    /// A feed's read past `seq`: on the standby when it has what the primary is known to have past
    /// the cursor, else on the primary.
    func feedRead<T>(after seq: Int64, _ body: (PostgresPool) async throws -> T) async throws -> T {
        guard let replica else { return try await body(pool) }
        return try await onStandbyOrPrimary(await replica.pool(feedAfter: seq, primarySize: primarySize.value, else: pool), body)
    }

    /// A standby that fails a read (gone, or cancelling it for a conflict with recovery) is left
    /// alone for a while, and the read runs on the primary: a standby never costs an answer.
    private func onStandbyOrPrimary<T>(_ source: PostgresPool, _ body: (PostgresPool) async throws -> T) async throws -> T {
        guard let replica, source !== pool else { return try await body(source) }
        do {
            return try await body(source)
        } catch is PostgresError {
            replica.markDown()
            return try await body(pool)
        }
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

/// The largest tree size seen; it only grows.
final class PrimarySize: Sendable {
    private let size = Atomic<Int64>(0)

    var value: Int64 { size.load(ordering: .relaxed) }

    func raise(to treeSize: Int64) {
        _ = size.max(treeSize, ordering: .relaxed)
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

    /// Polls waiting for the next batch now (for tests that must know one is waiting).
    var waiting: Int {
        waiters.withLock { $0.count }
    }

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
