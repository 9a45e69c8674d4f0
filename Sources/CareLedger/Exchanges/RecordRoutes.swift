import FoundationEssentials
import HTTP
import Postgres

/// The single view of a patient (the record locator of use case 3) and the patient's own views:
/// `GET /v1/patients/{patientId}/record`, `GET /v1/me/record`, `GET /v1/me/access-log`.
enum RecordRoutes {
    static func register(in api: inout APIRouteBuilder) {
        let exchanges = ExchangeStore()
        let consents = ConsentStore()
        let patients = PatientStore()
        let audit = api.access.audit
        let pool = api.access.pool

        /// The index lines `context` may see: its own exchanges, and those its consent covers for
        /// the request's purpose and the document's category.
        @Sendable func visibleIndex(patientId: String, context: APIContext, pagination: Pagination, everything: Bool) async throws -> Page<IndexItem> {
            let rules = try await consents.rules(patientId: patientId, on: pool)
            let purpose = PatientRoutes.purpose(of: context)
            var items: [IndexItem] = []
            var cursor = pagination.after
            var more = true
            // Pages are filtered after reading, so read until the page is full or the index ends.
            while items.count <= pagination.limit, more {
                let rows = try await exchanges.index(patientId: patientId, after: cursor, limit: 200, on: pool)
                more = rows.count == 200
                cursor = rows.last?.id ?? cursor
                for row in rows {
                    let own = row.senderOrg == context.caller.orgId || row.recipientOrg == context.caller.orgId
                    let covered = DataCategory(rawValue: row.category).map { category in
                        ConsentPolicy.decide(ConsentRequest(actorOrg: context.caller.orgId, actorKind: context.caller.orgKind, patientId: patientId,
                                                            purpose: purpose, category: category, time: Date()), consents: rules).permitted
                    } ?? false
                    if everything || own || covered { items.append(IndexItem(row)) }
                }
            }
            return pagination.page(items, cursor: \.exchangeId) { $0 }
        }

        api.on(.get, "/v1/patients/{patientId}/record", .recordRead) { context in
            let patientId = try context.request.parameters.require("patientId", as: String.self)
            let pagination = try Pagination(try context.request.query())
            guard try await patients.patient(patientId, on: pool) != nil else { throw Denial.notVisible("patient", patientId) }
            let page = try await visibleIndex(patientId: patientId, context: context, pagination: pagination, everything: false)
            // Nothing visible and no relationship: as if there were no such patient.
            if page.items.isEmpty, pagination.after == nil, try await !patients.isCustodian(orgId: context.caller.orgId, patientId: patientId, on: pool) {
                throw Denial.notVisible("patient", patientId)
            }
            try await audit.record(context.permitted("record", patientId, patientId: patientId, reason: "record index"), on: pool)
            return try JSONBody.response(.ok, page)
        }

        api.on(.get, "/v1/me/record", .meRecord) { context in
            guard let patientId = context.caller.patientId else { throw APIError.forbidden }
            let page = try await visibleIndex(patientId: patientId, context: context, pagination: try Pagination(try context.request.query()), everything: true)
            try await audit.record(context.permitted("record", patientId, patientId: patientId, reason: "own record"), on: pool)
            return try JSONBody.response(.ok, page)
        }

        api.on(.get, "/v1/me/access-log", .meAccessLog) { context in
            guard let patientId = context.caller.patientId else { throw APIError.forbidden }
            let pagination = try Pagination(try context.request.query())
            let afterSeq = try pagination.afterSequence()
            let events = try await audit.events(AuditStore.Filter(patientId: patientId, afterSeq: afterSeq, limit: pagination.limit), on: pool)
            try await audit.record(context.permitted("audit_event", patientId: patientId, reason: "own access log"), on: pool)
            return try JSONBody.response(.ok, pagination.page(events, cursor: \.seq) { AccessLogItem($0) })
        }
    }
}

private struct IndexItem: Encodable {
    let exchangeId: String
    let from: String
    let to: String
    let purpose: String
    let category: String
    let documentHash: String
    let createdAt: String
    let ledgerSeq: String?

    init(_ row: ExchangeStore.IndexRow) {
        exchangeId = row.id
        from = row.senderOrg
        to = row.recipientOrg
        purpose = row.purpose
        category = row.category
        documentHash = row.documentHash
        createdAt = Timestamp.format(row.createdAt)
        ledgerSeq = row.seq.map(String.init)
    }
}

/// One access as the patient sees it: who, when, what, why, and whether it was allowed.
private struct AccessLogItem: Encodable {
    let seq: String
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
