import FoundationEssentials
import Postgres

/// An exchange as stored (the document still sealed).
struct StoredExchange: Sendable {
    let id: String
    let senderOrg: String
    let recipientOrg: String
    let patientId: String
    let purpose: String
    let category: String
    let sealedDocument: [UInt8]
    let documentHash: String
    let breakGlassReason: String?
    let sentQueueId: Int64
    let createdAt: Date
    var receivedAt: Date?
    var receivedQueueId: Int64? = nil
}

/// The exchanges area's SQL.
struct ExchangeStore: Sendable {
    /// What the seal of an exchange's document authenticates besides the bytes.
    static func sealContext(_ exchangeId: String) -> [UInt8] {
        Array("exchange:\(exchangeId)".utf8)
    }

    private static let columns: StaticString = """
        id, sender_org, recipient_org, patient_id, purpose, category, document, document_hash, break_glass_reason, sent_queue_id,
        created_at, received_at, received_queue_id
        """

    /// One exchange to send: the row, its audit event and its idempotency key, if any.
    struct Send: Sendable {
        let exchange: StoredExchange
        let event: AuditEvent
        let idempotency: Idempotency?
    }

    /// Writes sent exchanges, each with its ledger queue row, its audit event and (when given) its
    /// idempotency key, as one statement: one round trip and one commit for the lot, the send path's
    /// largest cost when it took five round trips per exchange (BEGIN, queue, insert, audit, COMMIT).
    /// The queue, audit and idempotency inserts are their owners' fragments. Returns each exchange's
    /// queue id, in order. A reused idempotency key fails on its primary key.
    func send(_ sends: [Send], on runner: some QueryRunner) async throws -> [Int64] {
        let exchanges = sends.map { $0.exchange }
        let items = exchanges.map { LedgerItem(type: "exchange.sent", actor: $0.senderOrg, ref: $0.id, hash: $0.documentHash) }
        let keys = sends.map { (orgId: $0.exchange.senderOrg, idempotency: $0.idempotency, resourceId: $0.exchange.id) }
        let rows = try await runner.query("""
            WITH input AS (
                SELECT * FROM unnest(
                    \(PostgresArray(exchanges.map { $0.id }))::text[], \(PostgresArray(exchanges.map { $0.senderOrg }))::text[],
                    \(PostgresArray(exchanges.map { $0.recipientOrg }))::text[], \(PostgresArray(exchanges.map { $0.patientId }))::text[],
                    \(PostgresArray(exchanges.map { $0.purpose }))::text[], \(PostgresArray(exchanges.map { $0.category }))::text[],
                    \(PostgresArray(exchanges.map { PostgresBytes($0.sealedDocument) }))::bytea[],
                    \(PostgresArray(exchanges.map { $0.documentHash }))::text[], \(PostgresArray(exchanges.map { $0.breakGlassReason }))::text[],
                    \(PostgresArray(exchanges.map { $0.createdAt }))::timestamptz[])
                    WITH ORDINALITY AS i(id, sender_org, recipient_org, patient_id, purpose, category, document, document_hash,
                                         break_glass_reason, created_at, position)),
            idempotency AS (\(IdempotencyStore.insert(keys))),
            queued AS (\(LedgerStore.queueAppend(items))),
            stored AS (
                INSERT INTO exchanges (id, sender_org, recipient_org, patient_id, purpose, category, document, document_hash, break_glass_reason,
                                       sent_queue_id, created_at)
                SELECT i.id, i.sender_org, i.recipient_org, i.patient_id, i.purpose, i.category, i.document, i.document_hash,
                       i.break_glass_reason, q.id, i.created_at
                FROM input i JOIN queued q ON q.ref = i.id
                RETURNING 1),
            audited AS (\(AuditStore.insert(sends.map { $0.event })))
            SELECT q.id FROM input i JOIN queued q ON q.ref = i.id ORDER BY i.position
            """)
        return try rows.all.map { try $0.decode("id", as: Int64.self) }
    }

    func exchange(_ id: String, lock: Bool = false, on runner: some QueryRunner) async throws -> StoredExchange? {
        let rows = lock
            ? try await runner.query("SELECT \(sql: Self.columns) FROM exchanges WHERE id = \(id) FOR UPDATE")
            : try await runner.query("SELECT \(sql: Self.columns) FROM exchanges WHERE id = \(id)")
        return try rows.first.map { row in
            StoredExchange(
                id: try row.decode("id"), senderOrg: try row.decode("sender_org"), recipientOrg: try row.decode("recipient_org"),
                patientId: try row.decode("patient_id"), purpose: try row.decode("purpose"), category: try row.decode("category"),
                sealedDocument: try row.bytes("document"), documentHash: try row.decode("document_hash"),
                breakGlassReason: try row.decode("break_glass_reason", as: String?.self), sentQueueId: try row.decode("sent_queue_id", as: Int64.self),
                createdAt: try row.decode("created_at", as: Date.self), receivedAt: try row.decode("received_at", as: Date?.self),
                receivedQueueId: try row.decode("received_queue_id", as: Int64?.self))
        }
    }

    /// One line of a patient's record index: what was exchanged, never the document.
    struct IndexRow: Sendable {
        let id: String
        let senderOrg: String
        let recipientOrg: String
        let purpose: String
        let category: String
        let documentHash: String
        let createdAt: Date
        let seq: Int64?
    }

    /// One line of an inbox or outbox.
    struct BoxRow: Sendable {
        let index: IndexRow
        let patientId: String
        let seq: Int64
    }

    /// A box in ledger order: the exchanges whose `exchange.sent` entry is among `seqs` (see
    /// `LedgerFeed` for why a seq cursor never skips an exchange that commits late).
    ///
    /// The lookup is a LATERAL subquery with LIMIT 1 (an entry names at most one exchange) so that it
    /// stays one index probe per scanned entry. As a plain join, the cached generic plan (which
    /// cannot see how narrow the seq window is) switched to hashing the whole table once the table
    /// grew: the claims feed, written the same way, went from 0.014 to 1.2 ms a call mid-benchmark.
    func box(orgId: String, inbox: Bool, seqs: ClosedRange<Int64>, limit: Int, on runner: some QueryRunner) async throws -> [BoxRow] {
        // The org column is fixed text, one of two: never a value.
        let party: StaticString = inbox ? "recipient_org" : "sender_org"
        let rows = try await runner.query("""
            WITH scanned AS MATERIALIZED (SELECT seq, queue_id FROM ledger_entries WHERE seq BETWEEN \(seqs.lowerBound) AND \(seqs.upperBound))
            SELECT x.*, e.seq
            FROM scanned e CROSS JOIN LATERAL (
                SELECT id, sender_org, recipient_org, patient_id, purpose, category, document_hash, created_at FROM exchanges
                WHERE sent_queue_id = e.queue_id AND \(sql: party) = \(orgId) LIMIT 1) AS x
            ORDER BY e.seq LIMIT \(limit)
            """)
        return try rows.all.map { row in
            let seq = try row.decode("seq", as: Int64.self)
            return BoxRow(
                index: IndexRow(id: try row.decode("id"), senderOrg: try row.decode("sender_org"), recipientOrg: try row.decode("recipient_org"),
                                purpose: try row.decode("purpose"), category: try row.decode("category"), documentHash: try row.decode("document_hash"),
                                createdAt: try row.decode("created_at", as: Date.self), seq: seq),
                patientId: try row.decode("patient_id"), seq: seq)
        }
    }

    /// Exchanges about a patient after the cursor, oldest first, with their `exchange.sent` seq.
    func index(patientId: String, after: String?, limit: Int, on runner: some QueryRunner) async throws -> [IndexRow] {
        let rows = try await runner.query("""
            SELECT x.id, x.sender_org, x.recipient_org, x.purpose, x.category, x.document_hash, x.created_at, e.seq
            FROM exchanges x LEFT JOIN ledger_entries e ON e.queue_id = x.sent_queue_id
            WHERE x.patient_id = \(patientId) AND x.id > \(after ?? "") ORDER BY x.id LIMIT \(limit)
            """)
        return try rows.all.map { row in
            IndexRow(id: try row.decode("id"), senderOrg: try row.decode("sender_org"), recipientOrg: try row.decode("recipient_org"),
                     purpose: try row.decode("purpose"), category: try row.decode("category"), documentHash: try row.decode("document_hash"),
                     createdAt: try row.decode("created_at", as: Date.self), seq: try row.decode("seq", as: Int64?.self))
        }
    }

    func allIds(on runner: some QueryRunner) async throws -> [String] {
        try await runner.query("SELECT id FROM exchanges ORDER BY id").all.map { try $0.decode("id") }
    }

    /// Every recorded delivery: exchange id, its ledger queue id, and the receipt's hash.
    func receipts(on runner: some QueryRunner) async throws -> [(String, Int64, String)] {
        try await runner.query("""
            SELECT id, received_queue_id, received_hash FROM exchanges WHERE received_queue_id IS NOT NULL ORDER BY id
            """).all.map { (try $0.decode("id"), try $0.decode("received_queue_id", as: Int64.self), try $0.decode("received_hash")) }
    }

    func markReceived(_ id: String, at time: Date, hash: String, queueId: Int64, on runner: some QueryRunner) async throws {
        try await runner.query("""
            UPDATE exchanges SET received_at = \(time), received_hash = \(hash), received_queue_id = \(queueId) WHERE id = \(id) AND received_at IS NULL
            """)
    }
}
