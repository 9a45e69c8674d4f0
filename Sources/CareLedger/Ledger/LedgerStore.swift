import Crypto
import FoundationEssentials
import Ledger
import Postgres

/// One queued or sequenced thing to anchor: what kind of record, which organization, which object,
/// and the object's document hash. Never PHI, never a stable patient identifier.
struct LedgerItem: Sendable {
    let type: String
    let actor: String
    let ref: String
    let hash: String
    /// The anchored object a decision rests on (an adjudication's rule), named in the entry.
    var basis: LedgerBasis? = nil
    /// Set when read back from the queue.
    var enqueuedAt: Date?
}

/// Another anchored object an entry's decision rests on: its id and its hash.
struct LedgerBasis: Sendable, Equatable {
    let ref: String
    let hash: String
}

/// A sequenced entry.
struct LedgerEntryRow: Sendable {
    let seq: Int64
    let entry: [UInt8]
    let leafHash: [UInt8]
    let queueId: Int64
}

/// A signed tree head as stored.
struct LedgerHead: Sendable {
    let treeSize: Int64
    let rootHash: [UInt8]
    let keyId: String
    let checkpoint: String
    let signedAt: Date
}

/// A signing key as published.
struct LedgerKey: Sendable {
    let keyId: String
    let name: String
    let publicKey: [UInt8]
    let createdAt: Date
}

/// The ledger's SQL. The log tables are only ever inserted into.
struct LedgerStore: Sendable {
    /// Advisory lock classes; the second key is the schema's hash, so each log (one per schema,
    /// normally one per database) has its own sequencer.
    /// Held per session by the elected sequencer.
    static let electionLock: Int32 = 0x4C45_0001
    /// Taken by every sequencing batch transaction, so batches never overlap, whoever runs them.
    static let sequencingLock: Int32 = 0x4C45_0003
    /// Audit writers hold it shared while they insert; the audit batcher takes it exclusively for a
    /// moment, so every audit event with a lower seq than the last it then sees has committed.
    static let auditLock: Int32 = 0x4C45_0002
    /// Taken by the audit batcher while it reads, anchors and records a batch, so batches never overlap.
    static let auditBatchLock: Int32 = 0x4C45_0004

    // MARK: Writing

    /// Queues `item` in the caller's transaction: it is sequenced if and only if that commits.
    @discardableResult
    func enqueue(_ item: LedgerItem, on runner: some QueryRunner) async throws -> Int64 {
        let rows = try await runner.query("\(Self.queueAppend([item]))")
        guard let row = rows.first else { throw PostgresError(.decoding, message: "the queue insert returned no id") }
        return try row.decode("id", as: Int64.self)
    }

    /// The one insert into `ledger_queue`: `items` in order, `RETURNING id, ref`. For `enqueue`, and for
    /// single-statement writes that compose it as a CTE (an exchange send, a claim submission), so
    /// the entry commits with its object or neither does. One item binds its values directly.
    static func queueAppend(_ items: [LedgerItem]) -> PostgresFragment {
        if items.count == 1, let item = items.first {
            return """
                INSERT INTO ledger_queue (type, actor, ref, hash, basis, basis_hash)
                VALUES (\(item.type), \(item.actor), \(item.ref), \(item.hash), \(item.basis?.ref), \(item.basis?.hash))
                RETURNING id, ref
                """
        }
        return """
            INSERT INTO ledger_queue (type, actor, ref, hash, basis, basis_hash)
            SELECT t, a, r, h, b, bh
            FROM unnest(\(PostgresArray(items.map { Optional($0.type) }))::text[], \(PostgresArray(items.map { Optional($0.actor) }))::text[],
                        \(PostgresArray(items.map { Optional($0.ref) }))::text[], \(PostgresArray(items.map { Optional($0.hash) }))::text[],
                        \(PostgresArray(items.map { $0.basis?.ref }))::text[], \(PostgresArray(items.map { $0.basis?.hash }))::text[])
                 WITH ORDINALITY AS q(t, a, r, h, b, bh, position)
            ORDER BY position
            RETURNING id, ref
            """
    }

    /// Takes the oldest queued items, up to `limit`, out of the queue (inside the sequencing
    /// transaction, so they come back if it does not commit), in queue order.
    ///
    /// The queue churns: every row is deleted within milliseconds, and autovacuum visits at most once
    /// a minute, so between visits the table holds up to a minute of dead rows while its statistics
    /// still say "a few live ones". The planner then picks a sequential scan and a sort, reading
    /// every dead row on every batch (measured: 1,462 scans over 18k dead rows in 8 s of exchange
    /// load). The primary-key index reads from the oldest id and learns to skip dead entries (their
    /// index items get marked dead on the first visit), so the transaction forbids the scan.
    func dequeue(limit: Int, on runner: some QueryRunner) async throws -> [(id: Int64, item: LedgerItem)] {
        try await runner.query("SELECT set_config('enable_seqscan', 'off', true)")
        let rows = try await runner.query("""
            DELETE FROM ledger_queue WHERE id IN (SELECT id FROM ledger_queue ORDER BY id LIMIT \(limit))
            RETURNING id, type, actor, ref, hash, basis, basis_hash, enqueued_at
            """)
        return try rows.all.map { row in
            let basis = try row.decode("basis", as: String?.self)
            let basisHash = try row.decode("basis_hash", as: String?.self)
            return (try row.decode("id", as: Int64.self),
                    LedgerItem(type: try row.decode("type"), actor: try row.decode("actor"), ref: try row.decode("ref"), hash: try row.decode("hash"),
                               basis: basis.flatMap { ref in basisHash.map { LedgerBasis(ref: ref, hash: $0) } },
                               enqueuedAt: try row.decode("enqueued_at", as: Date.self)))
        }.sorted { $0.0 < $1.0 }
    }

    /// Writes a sequenced batch: entries, the subtree hashes they complete, and the signed head.
    /// Runs inside the sequencing transaction that dequeued the items.
    func appendBatch(
        entries: [LedgerEntryRow], items: [LedgerItem], nodes: [(id: NodeID, hash: [UInt8])], head: LedgerHead,
        on runner: some QueryRunner
    ) async throws {
        if !entries.isEmpty {
            try await runner.query("""
                INSERT INTO ledger_entries (seq, entry, leaf_hash, queue_id, type, ref, enqueued_at, sequenced_at)
                SELECT s, e, l, q, t, r, coalesce(w, \(head.signedAt)), \(head.signedAt)
                FROM unnest(\(PostgresArray(entries.map { $0.seq }))::bigint[], \(PostgresArray(entries.map { PostgresBytes($0.entry) }))::bytea[],
                            \(PostgresArray(entries.map { PostgresBytes($0.leafHash) }))::bytea[], \(PostgresArray(entries.map { $0.queueId }))::bigint[],
                            \(PostgresArray(items.map { $0.type }))::text[], \(PostgresArray(items.map { $0.ref }))::text[],
                            \(PostgresArray(items.map { $0.enqueuedAt?.postgresText }))::timestamptz[]) AS u(s, e, l, q, t, r, w)
                """)
        }
        if !nodes.isEmpty {
            try await runner.query("""
                INSERT INTO ledger_nodes (level, idx, hash)
                SELECT l, i, h
                FROM unnest(\(PostgresArray(nodes.map { $0.id.level }))::smallint[], \(PostgresArray(nodes.map { $0.id.index }))::bigint[],
                            \(PostgresArray(nodes.map { PostgresBytes($0.hash) }))::bytea[]) AS u(l, i, h)
                """)
        }
        // The announcement goes with the head; NOTIFY is delivered at commit.
        try await runner.query("""
            WITH head AS (
                INSERT INTO ledger_heads (tree_size, root_hash, key_id, checkpoint, signed_at)
                VALUES (\(head.treeSize), \(PostgresBytes(head.rootHash)), \(head.keyId), \(head.checkpoint), \(head.signedAt))
                RETURNING tree_size)
            SELECT pg_notify('careledger_ledger', tree_size::text) FROM head
            """)
    }

    func registerKey(keyId: String, name: String, publicKey: [UInt8], on runner: some QueryRunner) async throws {
        try await runner.query("""
            INSERT INTO ledger_keys (key_id, name, public_key) VALUES (\(keyId), \(name), \(PostgresBytes(publicKey)))
            ON CONFLICT (key_id) DO NOTHING
            """)
    }

    func lockSequencing(on runner: some QueryRunner) async throws {
        try await runner.query("SELECT pg_advisory_xact_lock(\(Self.sequencingLock), hashtext(current_schema()))")
    }

    // MARK: Reading

    func latestHead(on runner: some QueryRunner) async throws -> LedgerHead? {
        try await heads("ORDER BY tree_size DESC LIMIT 1", on: runner).first
    }

    func head(size: Int64, on runner: some QueryRunner) async throws -> LedgerHead? {
        let rows = try await runner.query("SELECT tree_size, root_hash, key_id, checkpoint, signed_at FROM ledger_heads WHERE tree_size = \(size)")
        return try rows.first.map(Self.head)
    }

    private func heads(_ order: StaticString, on runner: some QueryRunner) async throws -> [LedgerHead] {
        let rows = try await runner.query("SELECT tree_size, root_hash, key_id, checkpoint, signed_at FROM ledger_heads \(sql: order)")
        return try rows.all.map(Self.head)
    }

    func entries(from: Int64, to: Int64, on runner: some QueryRunner) async throws -> [LedgerEntryRow] {
        let rows = try await runner.query("""
            SELECT seq, entry, leaf_hash, queue_id FROM ledger_entries WHERE seq >= \(from) AND seq < \(to) ORDER BY seq
            """)
        return try rows.all.map(Self.entry)
    }

    func entry(seq: Int64, on runner: some QueryRunner) async throws -> LedgerEntryRow? {
        try await runner.query("SELECT seq, entry, leaf_hash, queue_id FROM ledger_entries WHERE seq = \(seq)").first.map(Self.entry)
    }

    /// The next `size` entries after `afterSeq`: the last one's seq and how many there are, or nil
    /// when there are none yet. Entries become visible a whole batch at a time and in seq order, so
    /// every entry up to the returned seq is visible from now on.
    func window(after afterSeq: Int64, size: Int, on runner: some QueryRunner) async throws -> (last: Int64, count: Int)? {
        let row = try await runner.query("""
            SELECT max(seq) AS last, count(*) AS n FROM (SELECT seq FROM ledger_entries WHERE seq > \(afterSeq) ORDER BY seq LIMIT \(size)) AS next
            """)[0]
        return try row.decode("last", as: Int64?.self).map { ($0, try row.decode("n", as: Int.self)) }
    }

    /// How many committed entries wait to be sequenced, and how long the oldest has waited.
    func queueState(on runner: some QueryRunner) async throws -> (count: Int, oldestAgeSeconds: Double) {
        let row = try await runner.query("""
            SELECT count(*) AS n, coalesce(extract(epoch FROM clock_timestamp() - min(enqueued_at)), 0)::float8 AS age FROM ledger_queue
            """)[0]
        return (try row.decode("n", as: Int.self), try row.decode("age", as: Double.self))
    }

    /// Queue ids not sequenced within the first `size` entries: still queued, or sequenced later.
    func queueIdsNotSequenced(within size: Int64, on runner: some QueryRunner) async throws -> Set<Int64> {
        Set(try await runner.query("""
            SELECT id FROM ledger_queue UNION ALL SELECT queue_id AS id FROM ledger_entries WHERE seq >= \(size)
            """).all.map { try $0.decode("id", as: Int64.self) })
    }

    /// The first entry past the latest signed head, with that head's size: both read in one
    /// statement, one snapshot, since a batch commits its entries and its head together.
    func firstUnsignedEntry(on runner: some QueryRunner) async throws -> (seq: Int64, headSize: Int64)? {
        let row = try await runner.query("""
            WITH head AS (SELECT coalesce(max(tree_size), 0) AS size FROM ledger_heads)
            SELECT (SELECT min(seq) FROM ledger_entries, head WHERE seq >= head.size) AS seq, head.size AS size FROM head
            """)[0]
        return try row.decode("seq", as: Int64?.self).map { ($0, try row.decode("size", as: Int64.self)) }
    }

    /// Sequenced entries for queue ids, by queue id.
    func entries(queueIds: [Int64], on runner: some QueryRunner) async throws -> [Int64: LedgerEntryRow] {
        let rows = try await runner.query("""
            SELECT seq, entry, leaf_hash, queue_id FROM ledger_entries WHERE queue_id = ANY(\(PostgresArray(queueIds))::bigint[])
            """)
        var found: [Int64: LedgerEntryRow] = [:]
        for row in rows.all {
            let entry = try Self.entry(row)
            found[entry.queueId] = entry
        }
        return found
    }

    /// Hashes of the given subtrees (leaves from the entries, the rest from the node table) and,
    /// when `entrySeq` is given, that entry's bytes and leaf hash: everything an inclusion proof
    /// needs in one round trip.
    func nodeHashes(_ ids: [NodeID], entrySeq: Int64? = nil, on runner: some QueryRunner) async throws -> (hashes: [NodeID: [UInt8]], entry: (bytes: [UInt8], leafHash: [UInt8])?) {
        let leaves = ids.filter { $0.level == 0 }.map { $0.index }
        let inner = ids.filter { $0.level > 0 }
        let rows = try await runner.query("""
            SELECT 0 AS level, seq AS idx, leaf_hash AS hash FROM ledger_entries WHERE seq = ANY(\(PostgresArray(leaves))::bigint[])
            UNION ALL
            SELECT n.level, n.idx, n.hash FROM ledger_nodes n
            JOIN unnest(\(PostgresArray(inner.map { $0.level }))::smallint[], \(PostgresArray(inner.map { $0.index }))::bigint[]) AS w(l, i)
              ON n.level = w.l AND n.idx = w.i
            UNION ALL
            SELECT -1, seq, entry FROM ledger_entries WHERE seq = \(entrySeq)
            UNION ALL
            SELECT -2, seq, leaf_hash FROM ledger_entries WHERE seq = \(entrySeq)
            """)
        var hashes: [NodeID: [UInt8]] = [:]
        var entryBytes: [UInt8]?
        var entryLeaf: [UInt8]?
        for row in rows.all {
            let level = try row.decode("level", as: Int.self)
            switch level {
            case -1: entryBytes = try row.bytes("hash")
            case -2: entryLeaf = try row.bytes("hash")
            default: hashes[NodeID(level: level, index: try row.decode("idx", as: Int64.self))] = try row.bytes("hash")
            }
        }
        guard let entryBytes, let entryLeaf else { return (hashes, nil) }
        return (hashes, (entryBytes, entryLeaf))
    }

    func keys(on runner: some QueryRunner) async throws -> [LedgerKey] {
        let rows = try await runner.query("SELECT key_id, name, public_key, created_at FROM ledger_keys ORDER BY created_at, key_id")
        return try rows.all.map { row in
            LedgerKey(
                keyId: try row.decode("key_id"), name: try row.decode("name"),
                publicKey: try row.decode("public_key", as: PostgresBytes.self).bytes, createdAt: try row.decode("created_at", as: Date.self))
        }
    }

    // MARK: Anchors

    func createAnchor(id: String, orgId: String, kind: String, reference: String, hash: String, queueId: Int64, on runner: some QueryRunner) async throws {
        try await runner.query("""
            INSERT INTO ledger_anchors (id, org_id, kind, reference, hash, queue_id)
            VALUES (\(id), \(orgId), \(kind), \(reference), \(hash), \(queueId))
            """)
    }

    // MARK: Rows

    private static func head(_ row: PostgresRow) throws -> LedgerHead {
        LedgerHead(
            treeSize: try row.decode("tree_size", as: Int64.self), rootHash: try row.decode("root_hash", as: PostgresBytes.self).bytes,
            keyId: try row.decode("key_id"), checkpoint: try row.decode("checkpoint"), signedAt: try row.decode("signed_at", as: Date.self))
    }

    private static func entry(_ row: PostgresRow) throws -> LedgerEntryRow {
        LedgerEntryRow(
            seq: try row.decode("seq", as: Int64.self), entry: try row.decode("entry", as: PostgresBytes.self).bytes,
            leafHash: try row.decode("leaf_hash", as: PostgresBytes.self).bytes, queueId: try row.decode("queue_id", as: Int64.self))
    }
}
