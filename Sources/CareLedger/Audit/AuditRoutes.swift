import HTTP

/// `GET /v1/audit`: the audit trail, for auditors and national health systems.
enum AuditRoutes {
    static func register(in api: inout APIRouteBuilder) {
        let audit = api.access.audit
        let pool = api.access.pool
        api.on(.get, "/v1/audit", .auditRead) { context in
            let query = try context.request.query()
            let pagination = try Pagination(query)
            let afterSeq = try pagination.afterSequence()
            let filter = AuditStore.Filter(
                patientId: query["patient"], actorOrg: query["actor"], action: query["action"], afterSeq: afterSeq,
                limit: pagination.limit)
            let events = try await audit.events(filter, on: pool)
            // Reading the trail is itself on the trail.
            try await audit.record(context.permitted("audit_event", patientId: filter.patientId), on: pool)
            return try JSONBody.response(.ok, pagination.page(events, cursor: \.seq) { $0 })
        }
    }
}
