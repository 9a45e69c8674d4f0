import FoundationEssentials
import Postgres

/// A claim's current state (its documents live in its events).
struct StoredClaim: Sendable {
    enum Status: String, Sendable {
        case submitted, adjudicated, cancelled
    }

    let id: String
    let hospitalOrg: String
    let insurerOrg: String
    let patientId: String
    let status: Status
    let total: Money
    let createdAt: Date
}

/// One change of a claim, anchored by the ledger entry queued as `queueId`.
struct ClaimEvent: Sendable {
    enum Kind: String, Sendable, CaseIterable {
        case submitted, cancelled, adjudicated

        /// The ledger entry type that anchors it.
        var entryType: String { "claim.\(rawValue)" }
    }

    let queueId: Int64
    let claimId: String
    let kind: Kind
    let actorOrg: String
    /// The canonical document, sealed under the patient's data key.
    let sealedDocument: [UInt8]
    let documentHash: String
    var outcome: String? = nil
    var ruleId: String? = nil
    var ruleHash: String? = nil
    let createdAt: Date

    /// What the seal authenticates besides the bytes: which claim and which change they are.
    static func sealContext(claimId: String, kind: Kind) -> [UInt8] {
        Array("claim:\(claimId):\(kind.rawValue)".utf8)
    }
}

/// An event with its claim's parties and, once sequenced, its ledger seq.
struct ClaimEventRow: Sendable {
    let event: ClaimEvent
    let hospitalOrg: String
    let insurerOrg: String
    let patientId: String
    let total: Money
    let seq: Int64?
}

/// A registered rule as stored: the canonical document and its hash.
struct StoredClaimRule: Sendable {
    let id: String
    let insurerOrg: String
    let document: [UInt8]
    let hash: String
    let queueId: Int64
    let createdAt: Date
    let retiredAt: Date?
    let retiredQueueId: Int64?
}

/// The claims area's SQL.
struct ClaimStore: Sendable {
    private static let claimColumns: StaticString = "id, hospital_org, insurer_org, patient_id, status, total::text AS total, currency, created_at"
    private static let eventColumns: StaticString = """
        ce.queue_id, ce.claim_id, ce.kind, ce.actor_org, ce.document, ce.document_hash, ce.outcome, ce.rule_id, ce.rule_hash, ce.created_at,
        c.hospital_org, c.insurer_org, c.patient_id, c.total::text AS total, c.currency
        """
    private static let ruleColumns: StaticString = "id, insurer_org, rule, rule_hash, queue_id, created_at, retired_at, retired_queue_id"

    /// Writes a new claim, its `claim.submitted` queue row and event, and (when given) its
    /// idempotency key as one statement: one round trip instead of four. The queue and idempotency
    /// inserts are their owners' fragments. Returns the queue id.
    func submit(_ claim: StoredClaim, document: (sealed: [UInt8], hash: String), idempotency: Idempotency?,
                on runner: some QueryRunner) async throws -> Int64 {
        let item = LedgerItem(type: ClaimEvent.Kind.submitted.entryType, actor: claim.hospitalOrg, ref: claim.id, hash: document.hash)
        let rows = try await runner.query("""
            WITH idempotency AS (\(IdempotencyStore.insert([(claim.hospitalOrg, idempotency, claim.id)]))),
            stored AS (
                INSERT INTO claims (id, hospital_org, insurer_org, patient_id, status, total, currency, created_at)
                VALUES (\(claim.id), \(claim.hospitalOrg), \(claim.insurerOrg), \(claim.patientId), 'submitted',
                        \("\(claim.total.value)")::numeric, \(claim.total.currency), \(claim.createdAt))
                RETURNING id),
            queued AS (\(LedgerStore.queueAppend([item])))
            INSERT INTO claim_events (queue_id, claim_id, kind, insurer_org, hospital_org, actor_org, document, document_hash, created_at)
            SELECT queued.id, stored.id, 'submitted', \(claim.insurerOrg), \(claim.hospitalOrg), \(claim.hospitalOrg),
                   \(PostgresBytes(document.sealed)), \(document.hash), \(claim.createdAt)
            FROM queued, stored
            RETURNING queue_id
            """)
        guard let row = rows.first else { throw PostgresError(.decoding, message: "the claim insert returned no queue id") }
        return try row.decode("queue_id", as: Int64.self)
    }

    /// Records `event` and moves the claim to `status`, in the caller's transaction.
    func append(_ event: ClaimEvent, status: StoredClaim.Status, on runner: some QueryRunner) async throws {
        try await runner.query("""
            WITH moved AS (UPDATE claims SET status = \(status.rawValue) WHERE id = \(event.claimId) RETURNING hospital_org, insurer_org)
            INSERT INTO claim_events (queue_id, claim_id, kind, insurer_org, hospital_org, actor_org, document, document_hash, outcome, rule_id,
                                      rule_hash, created_at)
            SELECT \(event.queueId), \(event.claimId), \(event.kind.rawValue), insurer_org, hospital_org, \(event.actorOrg),
                   \(PostgresBytes(event.sealedDocument)), \(event.documentHash), \(event.outcome), \(event.ruleId), \(event.ruleHash), \(event.createdAt)
            FROM moved
            """)
    }

    func claim(_ id: String, lock: Bool = false, on runner: some QueryRunner) async throws -> StoredClaim? {
        let rows = lock
            ? try await runner.query("SELECT \(sql: Self.claimColumns) FROM claims WHERE id = \(id) FOR UPDATE")
            : try await runner.query("SELECT \(sql: Self.claimColumns) FROM claims WHERE id = \(id)")
        return try rows.first.map { row in
            StoredClaim(
                id: try row.decode("id"), hospitalOrg: try row.decode("hospital_org"), insurerOrg: try row.decode("insurer_org"),
                patientId: try row.decode("patient_id"), status: try Self.status(row), total: try Self.total(row),
                createdAt: try row.decode("created_at", as: Date.self))
        }
    }

    /// A claim's events, oldest first, with their seq once sequenced.
    func events(claimId: String, on runner: some QueryRunner) async throws -> [ClaimEventRow] {
        try await runner.query("""
            SELECT \(sql: Self.eventColumns), e.seq
            FROM claim_events ce JOIN claims c ON c.id = ce.claim_id LEFT JOIN ledger_entries e ON e.queue_id = ce.queue_id
            WHERE ce.claim_id = \(claimId) ORDER BY ce.queue_id
            """).all.map(Self.eventRow)
    }

    /// An insurer's feed among the entries `seqs`, in ledger order: its claims as submitted and
    /// cancelled, and the adjudications its rules made (its own adjudications by hand it already knows).
    func insurerFeed(insurerOrg: String, seqs: ClosedRange<Int64>, limit: Int, on runner: some QueryRunner) async throws -> [ClaimEventRow] {
        // The entries first (a bounded range of the primary key), then their events: the cost
        // follows the range, not how many claims the insurer has. The events are looked up one
        // entry at a time (LATERAL, LIMIT 1): see `ExchangeStore.box` for the plan a join got.
        try await runner.query("""
            WITH scanned AS MATERIALIZED (SELECT seq, queue_id FROM ledger_entries WHERE seq BETWEEN \(seqs.lowerBound) AND \(seqs.upperBound))
            SELECT event.*, e.seq
            FROM scanned e CROSS JOIN LATERAL (
                SELECT \(sql: Self.eventColumns) FROM claim_events ce JOIN claims c ON c.id = ce.claim_id
                WHERE ce.queue_id = e.queue_id AND ce.insurer_org = \(insurerOrg) AND (ce.kind <> 'adjudicated' OR ce.rule_id IS NOT NULL)
                LIMIT 1) AS event
            ORDER BY e.seq LIMIT \(limit)
            """).all.map(Self.eventRow)
    }

    /// A hospital's adjudications among the entries `seqs`, in ledger order.
    func responseFeed(hospitalOrg: String, seqs: ClosedRange<Int64>, limit: Int, on runner: some QueryRunner) async throws -> [ClaimEventRow] {
        try await runner.query("""
            WITH scanned AS MATERIALIZED (SELECT seq, queue_id FROM ledger_entries WHERE seq BETWEEN \(seqs.lowerBound) AND \(seqs.upperBound))
            SELECT event.*, e.seq
            FROM scanned e CROSS JOIN LATERAL (
                SELECT \(sql: Self.eventColumns) FROM claim_events ce JOIN claims c ON c.id = ce.claim_id
                WHERE ce.queue_id = e.queue_id AND ce.hospital_org = \(hospitalOrg) AND ce.kind = 'adjudicated'
                LIMIT 1) AS event
            ORDER BY e.seq LIMIT \(limit)
            """).all.map(Self.eventRow)
    }

    /// Every event, for verification.
    func allEvents(on runner: some QueryRunner) async throws -> [ClaimEventRow] {
        try await runner.query("""
            SELECT \(sql: Self.eventColumns), NULL::bigint AS seq FROM claim_events ce JOIN claims c ON c.id = ce.claim_id ORDER BY ce.queue_id
            """).all.map(Self.eventRow)
    }

    // MARK: Rules

    func insertRule(_ rule: StoredClaimRule, on runner: some QueryRunner) async throws {
        try await runner.query("""
            INSERT INTO claim_rules (id, insurer_org, rule, rule_hash, queue_id, created_at)
            VALUES (\(rule.id), \(rule.insurerOrg), \(PostgresBytes(rule.document)), \(rule.hash), \(rule.queueId), \(rule.createdAt))
            """)
    }

    /// The insurer's active rules, oldest first. `share` locks them until the transaction ends, so
    /// a rule cannot be retired while a claim it decides is being written.
    func activeRules(insurerOrg: String, share: Bool = false, after: String? = nil, limit: Int = 10_000,
                     on runner: some QueryRunner) async throws -> [StoredClaimRule] {
        let rows = share
            ? try await runner.query("""
                SELECT \(sql: Self.ruleColumns) FROM claim_rules WHERE insurer_org = \(insurerOrg) AND retired_at IS NULL ORDER BY id FOR SHARE
                """)
            : try await runner.query("""
                SELECT \(sql: Self.ruleColumns) FROM claim_rules
                WHERE insurer_org = \(insurerOrg) AND retired_at IS NULL AND id > \(after ?? "") ORDER BY id LIMIT \(limit)
                """)
        return try rows.all.map(Self.rule)
    }

    func activeRuleCount(insurerOrg: String, on runner: some QueryRunner) async throws -> Int {
        try await runner.query("SELECT count(*) AS n FROM claim_rules WHERE insurer_org = \(insurerOrg) AND retired_at IS NULL")[0].decode("n", as: Int.self)
    }

    func rule(_ id: String, lock: Bool = false, on runner: some QueryRunner) async throws -> StoredClaimRule? {
        let rows = lock
            ? try await runner.query("SELECT \(sql: Self.ruleColumns) FROM claim_rules WHERE id = \(id) FOR UPDATE")
            : try await runner.query("SELECT \(sql: Self.ruleColumns) FROM claim_rules WHERE id = \(id)")
        return try rows.first.map(Self.rule)
    }

    func retireRule(_ id: String, at time: Date, queueId: Int64, on runner: some QueryRunner) async throws {
        try await runner.query("UPDATE claim_rules SET retired_at = \(time), retired_queue_id = \(queueId) WHERE id = \(id) AND retired_at IS NULL")
    }

    func allRules(on runner: some QueryRunner) async throws -> [StoredClaimRule] {
        try await runner.query("SELECT \(sql: Self.ruleColumns) FROM claim_rules ORDER BY id").all.map(Self.rule)
    }

    // MARK: Rows

    private static func status(_ row: PostgresRow) throws -> StoredClaim.Status {
        guard let status = StoredClaim.Status(rawValue: try row.decode("status")) else { throw PostgresError(.decoding, message: "unknown claim status") }
        return status
    }

    private static func total(_ row: PostgresRow) throws -> Money {
        guard let value = Decimal(string: try row.decode("total", as: String.self)) else { throw PostgresError(.decoding, message: "bad claim total") }
        return Money(value: value, currency: try row.decode("currency"))
    }

    private static func eventRow(_ row: PostgresRow) throws -> ClaimEventRow {
        guard let kind = ClaimEvent.Kind(rawValue: try row.decode("kind")) else { throw PostgresError(.decoding, message: "unknown claim event kind") }
        let event = ClaimEvent(
            queueId: try row.decode("queue_id", as: Int64.self), claimId: try row.decode("claim_id"), kind: kind, actorOrg: try row.decode("actor_org"),
            sealedDocument: try row.bytes("document"), documentHash: try row.decode("document_hash"), outcome: try row.decode("outcome", as: String?.self),
            ruleId: try row.decode("rule_id", as: String?.self), ruleHash: try row.decode("rule_hash", as: String?.self),
            createdAt: try row.decode("created_at", as: Date.self))
        return ClaimEventRow(
            event: event, hospitalOrg: try row.decode("hospital_org"), insurerOrg: try row.decode("insurer_org"), patientId: try row.decode("patient_id"),
            total: try total(row), seq: try row.decode("seq", as: Int64?.self))
    }

    private static func rule(_ row: PostgresRow) throws -> StoredClaimRule {
        StoredClaimRule(
            id: try row.decode("id"), insurerOrg: try row.decode("insurer_org"), document: try row.bytes("rule"), hash: try row.decode("rule_hash"),
            queueId: try row.decode("queue_id", as: Int64.self), createdAt: try row.decode("created_at", as: Date.self),
            retiredAt: try row.decode("retired_at", as: Date?.self), retiredQueueId: try row.decode("retired_queue_id", as: Int64?.self))
    }
}
