import Postgres

/// Reading the audit trail: for auditors and national systems, the whole trail by patient, actor
/// or action; for a patient, every access to their own data. Reading the trail is itself on it.
struct AuditService: Sendable {
    let pool: PostgresPool
    let store = AuditStore()

    func trail(_ filter: AuditStore.Filter, _ call: CallContext) async throws -> [AuditStore.Row] {
        let events = try await store.events(filter, on: pool)
        try await store.record(call.permitted("audit_event", patientId: filter.patientId), on: pool)
        return events
    }

    /// The caller's own access log: a patient key's patient only.
    func accessLog(_ pagination: Pagination, _ call: CallContext) async throws -> [AuditStore.Row] {
        guard let patientId = call.caller.patientId else { throw DomainError.forbidden }
        let filter = AuditStore.Filter(patientId: patientId, afterSeq: try pagination.afterSequence(), limit: pagination.limit)
        let events = try await store.events(filter, on: pool)
        try await store.record(call.permitted("audit_event", patientId: patientId, reason: "own access log"), on: pool)
        return events
    }
}
