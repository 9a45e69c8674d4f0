import FoundationEssentials
import Postgres

/// The single view of a patient (the record locator of use case 3): the index of what was
/// exchanged about a patient, across organizations, never the documents. An organization sees its
/// own exchanges and those the patient's consent covers for the request's purpose and the
/// document's category; the patient sees all of them.
struct RecordService: Sendable {
    let pool: PostgresPool
    let exchanges = ExchangeStore()
    let consents = ConsentStore()
    let patients = PatientStore()
    let audit = AuditStore()

    /// `patientId`'s index as `call` may see it.
    func index(of patientId: String, _ pagination: Pagination, _ call: CallContext) async throws -> Page<IndexItem> {
        guard try await patients.patient(patientId, on: pool) != nil else { throw Denial.notVisible("patient", patientId) }
        let page = try await visibleIndex(patientId: patientId, call, pagination, everything: false)
        // Nothing visible and no relationship: as if there were no such patient.
        if page.items.isEmpty, pagination.after == nil, try await !patients.isCustodian(orgId: call.caller.orgId, patientId: patientId, on: pool) {
            throw Denial.notVisible("patient", patientId)
        }
        try await audit.record(call.permitted("record", patientId, patientId: patientId, reason: "record index"), on: pool)
        return page
    }

    /// A patient key's own index, whole.
    func ownIndex(_ pagination: Pagination, _ call: CallContext) async throws -> Page<IndexItem> {
        guard let patientId = call.caller.patientId else { throw DomainError.forbidden }
        let page = try await visibleIndex(patientId: patientId, call, pagination, everything: true)
        try await audit.record(call.permitted("record", patientId, patientId: patientId, reason: "own record"), on: pool)
        return page
    }

    /// The index lines `call` may see: its own exchanges, and those its consent covers for the
    /// request's purpose and the document's category.
    private func visibleIndex(patientId: String, _ call: CallContext, _ pagination: Pagination, everything: Bool) async throws -> Page<IndexItem> {
        let rules = try await consents.rules(patientId: patientId, on: pool)
        let purpose = call.effectivePurpose
        var items: [IndexItem] = []
        var cursor = pagination.after
        var more = true
        // Pages are filtered after reading, so read until the page is full or the index ends.
        while items.count <= pagination.limit, more {
            let rows = try await exchanges.index(patientId: patientId, after: cursor, limit: 200, on: pool)
            more = rows.count == 200
            cursor = rows.last?.id ?? cursor
            for row in rows {
                let own = row.senderOrg == call.caller.orgId || row.recipientOrg == call.caller.orgId
                let covered = DataCategory(rawValue: row.category).map { category in
                    ConsentPolicy.decide(ConsentRequest(actorOrg: call.caller.orgId, actorKind: call.caller.orgKind, patientId: patientId,
                                                        purpose: purpose, category: category, time: Date()), consents: rules).permitted
                } ?? false
                if everything || own || covered { items.append(IndexItem(row)) }
            }
        }
        return pagination.page(items, cursor: \.exchangeId) { $0 }
    }
}

/// One line of a patient's record index.
struct IndexItem: Encodable, Sendable {
    let exchangeId: String
    let from: String
    let to: String
    let purpose: String
    let category: String
    let documentHash: String
    let createdAt: String
    let ledgerSeq: Int64?

    init(_ row: ExchangeStore.IndexRow) {
        exchangeId = row.id
        from = row.senderOrg
        to = row.recipientOrg
        purpose = row.purpose
        category = row.category
        documentHash = row.documentHash
        createdAt = Timestamp.format(row.createdAt)
        ledgerSeq = row.seq
    }
}
