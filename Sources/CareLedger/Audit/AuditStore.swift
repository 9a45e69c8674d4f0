import FoundationEssentials
import Ledger
import Postgres

/// The audit trail's SQL. Events are only ever inserted; the table's triggers refuse the rest.
struct AuditStore: Sendable {
    struct Filter {
        var patientId: String?
        var actorOrg: String?
        var action: String?
        var afterSeq: Int64?
        var limit: Int
    }

    /// An event as stored: its place in the trail, its time, and what it records.
    struct Row: Encodable {
        let seq: Int64
        let time: String
        let event: AuditEvent

        private enum CodingKeys: String, CodingKey { case seq, time }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(seq, forKey: .seq)
            try container.encode(time, forKey: .time)
            try event.encode(to: encoder)
        }
    }

    /// Appends `event` where `runner` says: inside the transaction of the change it records, or alone.
    func record(_ event: AuditEvent, on runner: some QueryRunner) async throws {
        try await runner.query("\(Self.insert([event]))")
    }

    /// Appends `events` in one statement.
    func record(_ events: [AuditEvent], on runner: some QueryRunner) async throws {
        guard !events.isEmpty else { return }
        try await runner.query("\(Self.insert(events))")
    }

    /// Appends one event per resource, `template` with each resource's id and patient: a feed page
    /// records every item it delivered (so each shows in its patient's access log), in one statement.
    func record(_ template: AuditEvent, forEach resources: [(id: String, patientId: String?)], on runner: some QueryRunner) async throws {
        guard !resources.isEmpty else { return }
        let events = resources.map { resource in
            var event = template
            event.resourceId = resource.id
            event.patientId = resource.patientId
            return event
        }
        try await runner.query("\(Self.insert(events))")
    }

    /// The one insert into `audit_events`, for `record` and for single-statement writes that compose
    /// it as a CTE (an exchange send audits in the statement that stores it). It first takes the
    /// audit lock shared (before any seq is drawn), so the batcher, which takes it exclusively,
    /// never reads past an event whose transaction is still open. One event binds its values
    /// directly: every read writes one, and twelve one-element arrays cost the server a parse each.
    static func insert(_ events: [AuditEvent]) -> PostgresFragment {
        let gate: PostgresFragment = "(SELECT pg_advisory_xact_lock_shared(\(LedgerStore.auditLock), hashtext(current_schema()))) AS gate"
        if events.count == 1, let event = events.first {
            return """
                INSERT INTO audit_events (\(sql: columns))
                SELECT \(event.requestId), \(event.actorOrg), \(event.keyId), \(event.role?.rawValue), \(event.action), \(event.resourceType),
                       \(event.resourceId), \(event.patientId), \(event.purpose?.rawValue), \(event.decision.rawValue), \(event.reason),
                       \(event.clientAddress)
                FROM \(gate)
                """
        }
        return """
            INSERT INTO audit_events (\(sql: columns))
            SELECT e.request_id, e.actor_org, e.key_id, e.role, e.action, e.resource_type, e.resource_id, e.patient_id, e.purpose,
                   e.decision, e.reason, e.client_address
            FROM \(gate), unnest(
                \(PostgresArray(events.map { Optional($0.requestId) }))::text[], \(PostgresArray(events.map { $0.actorOrg }))::text[],
                \(PostgresArray(events.map { $0.keyId }))::text[], \(PostgresArray(events.map { $0.role?.rawValue }))::text[],
                \(PostgresArray(events.map { Optional($0.action) }))::text[], \(PostgresArray(events.map { $0.resourceType }))::text[],
                \(PostgresArray(events.map { $0.resourceId }))::text[], \(PostgresArray(events.map { $0.patientId }))::text[],
                \(PostgresArray(events.map { $0.purpose?.rawValue }))::text[], \(PostgresArray(events.map { Optional($0.decision.rawValue) }))::text[],
                \(PostgresArray(events.map { Optional($0.reason) }))::text[], \(PostgresArray(events.map { $0.clientAddress }))::text[])
                WITH ORDINALITY AS e(request_id, actor_org, key_id, role, action, resource_type, resource_id, patient_id, purpose,
                                     decision, reason, client_address, position)
            ORDER BY e.position
            """
    }

    private static let columns: StaticString = """
        request_id, actor_org, key_id, role, action, resource_type, resource_id, patient_id, purpose, decision, reason, client_address
        """

    /// Events after `afterSeq` as they are hashed into audit batches: every column, as text.
    func batchEvents(after afterSeq: Int64, through lastSeq: Int64 = .max, limit: Int, on runner: some QueryRunner) async throws -> [(seq: Int64, value: JSONValue)] {
        let rows = try await runner.query("""
            SELECT seq, time::text AS time, request_id, actor_org, key_id, role, action, resource_type, resource_id,
                   patient_id, purpose, decision, reason, client_address
            FROM audit_events WHERE seq > \(afterSeq) AND seq <= \(lastSeq) ORDER BY seq LIMIT \(limit)
            """)
        let columns = ["time", "request_id", "actor_org", "key_id", "role", "action", "resource_type", "resource_id",
                       "patient_id", "purpose", "decision", "reason", "client_address"]
        return try rows.all.map { row in
            let seq = try row.decode("seq", as: Int64.self)
            var members: [(key: String, value: JSONValue)] = [("seq", .string(String(seq)))]
            for column in columns {
                members.append((column, try row.decode(column, as: String?.self).map(JSONValue.string) ?? .null))
            }
            return (seq, .object(members))
        }
    }

    /// The hash an audit batch anchors: SHA-256 of the canonical JSON array of its events.
    static func batchHash(_ events: [JSONValue]) -> String {
        JCS.documentHash(.array(events))
    }

    /// Anchors the next run of committed audit events as one `audit.batch` ledger entry. Returns
    /// how many events it covered.
    ///
    /// Every request writes an audit event, so the exclusive audit lock stops them all while it is
    /// held: it is held only to learn the last seq no open transaction can still commit below (every
    /// writer draws its seq holding the lock shared, so once the lock is granted exclusively they
    /// have all ended, and seqs drawn after it is released are higher). The batch itself is read,
    /// hashed, queued and committed after, under a lock of its own that writers never take.
    func anchorNextBatch(limit: Int, ledger: LedgerStore, on pool: PostgresPool) async throws -> Int {
        let settled = try await pool.withTransaction { transaction in
            try await transaction.query("SELECT pg_advisory_xact_lock(\(LedgerStore.auditLock), hashtext(current_schema()))")
            // A statement of its own: its snapshot is taken after the lock was granted.
            return try await transaction.query("SELECT coalesce(max(seq), 0) AS last FROM audit_events")[0].decode("last", as: Int64.self)
        }
        return try await pool.withTransaction { transaction in
            try await transaction.query("SELECT pg_advisory_xact_lock(\(LedgerStore.auditBatchLock), hashtext(current_schema()))")
            let last = try await transaction.query("SELECT coalesce(max(last_seq), 0) AS last FROM audit_batches")[0].decode("last", as: Int64.self)
            let events = try await batchEvents(after: last, through: settled, limit: limit, on: transaction)
            guard let first = events.first?.seq, let final = events.last?.seq else { return 0 }
            let hash = Self.batchHash(events.map { $0.value })
            let queueId = try await ledger.enqueue(LedgerItem(type: "audit.batch", actor: "careledger", ref: "audit:\(first)-\(final)", hash: hash),
                                                   on: transaction)
            try await transaction.query("""
                INSERT INTO audit_batches (first_seq, last_seq, hash, queue_id) VALUES (\(first), \(final), \(hash), \(queueId))
                """)
            return events.count
        }
    }

    /// Events matching `filter`, oldest first, one more than the limit (to tell whether there is more).
    func events(_ filter: Filter, on runner: some QueryRunner) async throws -> [Row] {
        let rows = try await runner.query("""
            SELECT seq, time, request_id, actor_org, key_id, role, action, resource_type, resource_id,
                   patient_id, purpose, decision, reason, client_address
            FROM audit_events
            WHERE seq > \(filter.afterSeq ?? 0)
              AND (\(filter.patientId)::text IS NULL OR patient_id = \(filter.patientId))
              AND (\(filter.actorOrg)::text IS NULL OR actor_org = \(filter.actorOrg))
              AND (\(filter.action)::text IS NULL OR action = \(filter.action))
            ORDER BY seq
            LIMIT \(filter.limit + 1)
            """)
        return try rows.all.map { row in
            let event = AuditEvent(
                requestId: try row.decode("request_id"), actorOrg: try row.decode("actor_org", as: String?.self),
                keyId: try row.decode("key_id", as: String?.self), role: try row.decode("role", as: String?.self).flatMap(Role.init),
                action: try row.decode("action"), resourceType: try row.decode("resource_type", as: String?.self),
                resourceId: try row.decode("resource_id", as: String?.self), patientId: try row.decode("patient_id", as: String?.self),
                purpose: try row.decode("purpose", as: String?.self).flatMap(PurposeOfUse.init),
                decision: AuditEvent.Decision(rawValue: try row.decode("decision")) ?? .deny, reason: try row.decode("reason"),
                clientAddress: try row.decode("client_address", as: String?.self))
            return Row(seq: try row.decode("seq", as: Int64.self), time: Timestamp.format(try row.decode("time", as: Date.self)), event: event)
        }
    }
}
