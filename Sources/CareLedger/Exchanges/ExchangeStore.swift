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
    let receivedAt: Date?
    var receivedQueueId: Int64? = nil
}

/// The exchanges area's SQL.
struct ExchangeStore: Sendable {
    private static let columns: StaticString = """
        id, sender_org, recipient_org, patient_id, purpose, category, document, document_hash, break_glass_reason, sent_queue_id,
        created_at, received_at, received_queue_id
        """

    /// Writes a sent exchange, its ledger queue row, its audit event and (when given) its
    /// idempotency key as one statement: atomic on its own, and one round trip instead of five
    /// (BEGIN, queue, insert, audit, COMMIT), which the send path measured as its largest cost. The
    /// queue and audit inserts mirror `LedgerStore.enqueue` and `AuditStore.record` (with the same
    /// shared audit lock); keep them in step. A reused idempotency key fails on its primary key.
    func send(_ exchange: StoredExchange, event: AuditEvent, idempotency: Idempotency?, on runner: some QueryRunner) async throws -> Int64 {
        let rows = try await runner.query("""
            WITH gate AS (SELECT pg_advisory_xact_lock_shared(\(LedgerStore.auditLock), hashtext(current_schema()))),
            idempotency AS (
                INSERT INTO idempotency_keys (org_id, key, request_hash, resource_id)
                SELECT \(exchange.senderOrg), \(idempotency?.key), \(idempotency?.requestHash), \(exchange.id) WHERE \(idempotency?.key)::text IS NOT NULL
                RETURNING 1),
            queued AS (
                INSERT INTO ledger_queue (type, actor, ref, hash) VALUES ('exchange.sent', \(exchange.senderOrg), \(exchange.id), \(exchange.documentHash))
                RETURNING id),
            stored AS (
                INSERT INTO exchanges (id, sender_org, recipient_org, patient_id, purpose, category, document, document_hash, break_glass_reason,
                                       sent_queue_id, created_at)
                SELECT \(exchange.id), \(exchange.senderOrg), \(exchange.recipientOrg), \(exchange.patientId), \(exchange.purpose), \(exchange.category),
                       \(PostgresBytes(exchange.sealedDocument)), \(exchange.documentHash), \(exchange.breakGlassReason), queued.id, \(exchange.createdAt)
                FROM queued
                RETURNING 1),
            audited AS (
                INSERT INTO audit_events (request_id, actor_org, key_id, role, action, resource_type, resource_id, patient_id, purpose, decision,
                                          reason, client_address)
                SELECT \(event.requestId), \(event.actorOrg), \(event.keyId), \(event.role?.rawValue), \(event.action), \(event.resourceType),
                       \(event.resourceId), \(event.patientId), \(event.purpose?.rawValue), \(event.decision.rawValue), \(event.reason),
                       \(event.clientAddress)
                FROM gate
                RETURNING 1)
            SELECT id FROM queued
            """)
        return try rows[0].decode("id", as: Int64.self)
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
    func box(orgId: String, inbox: Bool, seqs: ClosedRange<Int64>, limit: Int, on runner: some QueryRunner) async throws -> [BoxRow] {
        let rows = inbox
            ? try await runner.query("""
                WITH scanned AS MATERIALIZED (SELECT seq, queue_id FROM ledger_entries WHERE seq BETWEEN \(seqs.lowerBound) AND \(seqs.upperBound))
                SELECT x.id, x.sender_org, x.recipient_org, x.patient_id, x.purpose, x.category, x.document_hash, x.created_at, e.seq
                FROM scanned e JOIN exchanges x ON x.sent_queue_id = e.queue_id
                WHERE x.recipient_org = \(orgId) ORDER BY e.seq LIMIT \(limit)
                """)
            : try await runner.query("""
                WITH scanned AS MATERIALIZED (SELECT seq, queue_id FROM ledger_entries WHERE seq BETWEEN \(seqs.lowerBound) AND \(seqs.upperBound))
                SELECT x.id, x.sender_org, x.recipient_org, x.patient_id, x.purpose, x.category, x.document_hash, x.created_at, e.seq
                FROM scanned e JOIN exchanges x ON x.sent_queue_id = e.queue_id
                WHERE x.sender_org = \(orgId) ORDER BY e.seq LIMIT \(limit)
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
