import FoundationEssentials
import Postgres

/// A consent as stored and shown.
struct StoredConsent: Sendable {
    let rule: ConsentRule
    let evidenceHash: String?
    let recordedBy: String
    let createdAt: Date
    let revokedAt: Date?
    let document: [UInt8]
    let queueId: Int64
    let revocation: [UInt8]?
    let revocationQueueId: Int64?
}

/// The consent area's SQL.
struct ConsentStore: Sendable {
    private static let columns: StaticString = """
        id, patient_id, grantee_org, grantee_kind, purposes, categories, all_categories, period_start, period_end, provision,
        evidence_hash, recorded_by, document, queue_id, created_at, revoked_at, revocation, revocation_queue_id
        """
    private static let ruleColumns: StaticString = """
        consents.id, consents.patient_id, grantee_org, grantee_kind, purposes, categories, all_categories, period_start, period_end,
        provision, revoked_at
        """

    func insert(_ rule: ConsentRule, evidenceHash: String?, recordedBy: String, createdAt: Date, document: [UInt8], queueId: Int64,
                on runner: some QueryRunner) async throws {
        var grantOrg: String?
        var grantKind: String?
        switch rule.grantee {
        case .organization(let id): grantOrg = id
        case .kind(let kind): grantKind = kind.rawValue
        }
        try await runner.query("""
            INSERT INTO consents (id, patient_id, grantee_org, grantee_kind, purposes, categories, all_categories, period_start, period_end,
                                  provision, evidence_hash, recorded_by, document, queue_id, created_at)
            VALUES (\(rule.id), \(rule.patientId), \(grantOrg), \(grantKind), \(PostgresArray(rule.purposes.map { $0.rawValue }.sorted()))::text[],
                    \(PostgresArray(rule.categories.map { $0.rawValue }.sorted()))::text[], \(rule.coversAllCategories), \(rule.start), \(rule.end),
                    \(rule.provision.rawValue), \(evidenceHash), \(recordedBy), \(PostgresBytes(document)), \(queueId), \(createdAt))
            """)
    }

    func consents(patientId: String, after: String? = nil, limit: Int = 10_000, on runner: some QueryRunner) async throws -> [StoredConsent] {
        let rows = try await runner.query("""
            SELECT \(sql: Self.columns) FROM consents WHERE patient_id = \(patientId) AND id > \(after ?? "") ORDER BY id LIMIT \(limit)
            """)
        return try rows.all.map(Self.consent)
    }

    /// The patient's consents in force (not revoked), as the policy needs them: the rules alone,
    /// without the anchored documents.
    func rules(patientId: String, on runner: some QueryRunner) async throws -> [ConsentRule] {
        try await runner.query("""
            SELECT \(sql: Self.ruleColumns) FROM consents WHERE patient_id = \(patientId) AND revoked_at IS NULL ORDER BY id
            """).all.map(Self.rule)
    }

    /// What a disclosure about a patient (an exchange, a claim) needs to know before it writes.
    struct DisclosureFacts: Sendable {
        let recipientKind: OrganizationKind?
        let senderIsCustodian: Bool
        let patientExists: Bool
        let wrappedDataKey: [UInt8]?
        /// The patient's consents in force.
        let rules: [ConsentRule]
    }

    /// The recipient's kind, the sender's custody, the patient and its consents in force, in one
    /// round trip (a row per consent, or one row of facts when there is none).
    func disclosureFacts(recipient: String, sender: String, patientId: String, on runner: some QueryRunner) async throws -> DisclosureFacts {
        let rows = try await runner.query("""
            SELECT facts.*, \(sql: Self.ruleColumns)
            FROM (SELECT (SELECT kind FROM organizations WHERE id = \(recipient) AND status = 'active') AS recipient_kind,
                         EXISTS (SELECT 1 FROM patient_custodians WHERE patient_id = \(patientId) AND org_id = \(sender)) AS custodian,
                         p.id IS NOT NULL AS patient_exists, p.wrapped_data_key
                  FROM (SELECT 1) AS one LEFT JOIN patients p ON p.id = \(patientId)) AS facts
            LEFT JOIN consents ON consents.patient_id = \(patientId) AND consents.revoked_at IS NULL
            ORDER BY consents.id
            """).all
        let first = rows[0]
        return DisclosureFacts(
            recipientKind: try first.decode("recipient_kind", as: String?.self).flatMap(OrganizationKind.init),
            senderIsCustodian: try first.decode("custodian"), patientExists: try first.decode("patient_exists"),
            wrappedDataKey: try first.decode("wrapped_data_key", as: PostgresBytes?.self)?.bytes,
            rules: try rows.filter { try $0.decode("id", as: String?.self) != nil }.map(Self.rule))
    }

    func consent(_ id: String, on runner: some QueryRunner) async throws -> StoredConsent? {
        let rows = try await runner.query("SELECT \(sql: Self.columns) FROM consents WHERE id = \(id) FOR UPDATE")
        return try rows.first.map(Self.consent)
    }

    func revoke(_ id: String, at time: Date, revocation: [UInt8], queueId: Int64, on runner: some QueryRunner) async throws {
        try await runner.query("""
            UPDATE consents SET revoked_at = \(time), revocation = \(PostgresBytes(revocation)), revocation_queue_id = \(queueId)
            WHERE id = \(id) AND revoked_at IS NULL
            """)
    }

    /// Every consent with its anchored documents, for verify.
    func all(on runner: some QueryRunner) async throws -> [StoredConsent] {
        try await runner.query("SELECT \(sql: Self.columns) FROM consents ORDER BY id").all.map(Self.consent)
    }

    private static func rule(_ row: PostgresRow) throws -> ConsentRule {
        let grantee: ConsentRule.Grantee
        if let org = try row.decode("grantee_org", as: String?.self) {
            grantee = .organization(org)
        } else {
            guard let kind = OrganizationKind(rawValue: try row.decode("grantee_kind")) else {
                throw PostgresError(.decoding, message: "unknown grantee kind")
            }
            grantee = .kind(kind)
        }
        return ConsentRule(
            id: try row.decode("id"), patientId: try row.decode("patient_id"), grantee: grantee,
            purposes: Set(try textArray(row, "purposes").compactMap(PurposeOfUse.init)),
            categories: Set(try textArray(row, "categories").compactMap(DataCategory.init)),
            coversAllCategories: try row.decode("all_categories"), start: try row.decode("period_start", as: Date?.self),
            end: try row.decode("period_end", as: Date?.self),
            provision: ConsentRule.Provision(rawValue: try row.decode("provision")) ?? .deny,
            revoked: try row.decode("revoked_at", as: Date?.self) != nil)
    }

    private static func consent(_ row: PostgresRow) throws -> StoredConsent {
        let rule = try rule(row)
        return StoredConsent(
            rule: rule, evidenceHash: try row.decode("evidence_hash", as: String?.self), recordedBy: try row.decode("recorded_by"),
            createdAt: try row.decode("created_at", as: Date.self), revokedAt: try row.decode("revoked_at", as: Date?.self),
            document: try row.bytes("document"), queueId: try row.decode("queue_id", as: Int64.self),
            revocation: try row.decode("revocation", as: PostgresBytes?.self)?.bytes,
            revocationQueueId: try row.decode("revocation_queue_id", as: Int64?.self))
    }

    /// A text[] column of simple words (`{a,b}`), as our consents store them.
    private static func textArray(_ row: PostgresRow, _ column: String) throws -> [String] {
        let text: String = try row.decode(column)
        return text.dropFirst().dropLast().split(separator: ",").map { String($0).trimmingCharacters(["\""]) }
    }
}

private extension String {
    func trimmingCharacters(_ set: Set<Character>) -> String {
        String(drop { set.contains($0) }.reversed().drop { set.contains($0) }.reversed())
    }
}
