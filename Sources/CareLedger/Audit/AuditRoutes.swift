import HTTP

/// `GET /v1/audit`: the audit trail, for auditors and national health systems; `GET /v1/me/access-log`:
/// a patient's own.
enum AuditRoutes {
    static func register(in api: inout APIRouteBuilder) {
        let service = AuditService(pool: api.access.pool)

        api.on(.get, "/v1/audit", .auditRead) { context in
            let query = try context.query()
            let pagination = try Pagination(query)
            let filter = AuditStore.Filter(
                patientId: query["patient"], actorOrg: query["actor"], action: query["action"], afterSeq: try pagination.afterSequence(),
                limit: pagination.limit)
            let events = try await service.trail(filter, context.call)
            return try JSONBody.response(.ok, pagination.page(events, cursor: { String($0.seq) }) { $0 })
        }

        api.on(.get, "/v1/me/access-log", .meAccessLog) { context in
            let pagination = try Pagination(try context.query())
            let events = try await service.accessLog(pagination, context.call)
            return try JSONBody.response(.ok, pagination.page(events, cursor: { String($0.seq) }) { AccessLogItem($0) })
        }
    }
}

/// One access as the patient sees it: who, when, what, why, and whether it was allowed.
private struct AccessLogItem: Encodable {
    let seq: Int64
    let time: String
    let organization: String?
    let action: String
    let purpose: String?
    let decision: String
    let breakTheGlass: Bool
    let reason: String

    init(_ row: AuditStore.Row) {
        seq = row.seq
        time = row.time
        organization = row.event.actorOrg
        action = row.event.action
        purpose = row.event.purpose?.rawValue
        decision = row.event.decision.rawValue
        breakTheGlass = row.event.reason == "break-the-glass"
        reason = row.event.reason
    }
}
