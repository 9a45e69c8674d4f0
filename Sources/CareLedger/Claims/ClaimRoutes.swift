import FoundationEssentials
import HTTP
import Telemetry

/// `POST /v1/claims` (hospital), `GET /v1/claims/{claimId}` (its parties), `POST .../cancel`
/// (hospital) and `POST .../adjudication` (insurer), with the feeds and the rules registered too.
enum ClaimRoutes {
    static let submitFields: Set<String> = ["insurer", "patient", "claim"]

    static func register(in api: inout APIRouteBuilder, ledger: LedgerService, keys: PatientKeys, log: EventLog?) {
        let service = ClaimService(pool: api.access.pool, ledger: ledger, keys: keys, log: log)
        ClaimFeedRoutes.register(in: &api, service: service)
        ClaimRuleRoutes.register(in: &api, ledger: ledger)

        api.on(.post, "/v1/claims", .claimsSubmit) { context in
            let body = try JSONBody.parse(context.request, fields: submitFields)
            guard let insurer = body["insurer"]?.stringValue else { throw DomainError.invalid("Missing field 'insurer'.") }
            guard let patientId = body["patient"]?.stringValue else { throw DomainError.invalid("Missing field 'patient'.") }
            guard let document = body["claim"] else { throw DomainError.invalid("Missing field 'claim'.") }
            let claim = try FHIRClaim(document)
            let submitted = try await service.submit(insurer: insurer, patientId: patientId, claim: claim,
                                                     idempotency: try Idempotency.of(context.request), context.call)
            return try JSONBody.response(.created, Submitted(
                id: submitted.id, status: submitted.status.rawValue, documentHash: submitted.documentHash, total: MoneyView(submitted.total),
                ledger: submitted.entry.map(LedgerRef.init), adjudication: submitted.adjudication.map { ClaimEventView($0, seq: nil) },
                createdAt: Timestamp.format(submitted.createdAt)))
        }

        api.on(.get, "/v1/claims/{claimId}", .claimsRead) { context in
            let (claim, events, documents) = try await service.read(try context.parameter("claimId"), context.call)
            var raw: [(name: String, json: [UInt8])] = []
            if let submitted = events.first(where: { $0.event.kind == .submitted }) { raw.append(("claim", documents[submitted.event.queueId] ?? Array("null".utf8))) }
            if let adjudicated = events.first(where: { $0.event.kind == .adjudicated }) {
                raw.append(("response", documents[adjudicated.event.queueId] ?? Array("null".utf8)))
            }
            return .json(.ok, try JSONBody.object(ClaimView(claim, history: events.map(ClaimEventView.init)), adding: raw))
        }

        api.on(.post, "/v1/claims/{claimId}/cancel", .claimsCancel) { context in
            let id: String = try context.parameter("claimId")
            let reason = try JSONBody.optionalReason(context.request)
            return try JSONBody.response(.ok, Changed(try await service.cancel(id, reason: reason, idempotency: try Idempotency.of(context.request), context.call)))
        }

        api.on(.post, "/v1/claims/{claimId}/adjudication", .claimsAdjudicate) { context in
            let id: String = try context.parameter("claimId")
            let body = try JSONBody.parse(context.request)
            return try JSONBody.response(.created, Changed(try await service.adjudicate(id, response: body, idempotency: try Idempotency.of(context.request), context.call)))
        }
    }
}

struct MoneyView: Encodable {
    let value: Decimal
    let currency: String

    init(_ money: Money) {
        value = money.value
        currency = money.currency
    }
}

private struct Submitted: Encodable {
    let id: String
    let status: String
    let documentHash: String
    let total: MoneyView
    let ledger: LedgerRef?
    let adjudication: ClaimEventView?
    let createdAt: String
}

private struct Changed: Encodable {
    let claimId: String
    let status: String
    let outcome: String?
    let documentHash: String
    let ledger: LedgerRef?
    let createdAt: String

    init(_ changed: ClaimService.Changed) {
        claimId = changed.claimId
        status = changed.status.rawValue
        outcome = changed.outcome
        documentHash = changed.documentHash
        ledger = changed.entry.map(LedgerRef.init)
        createdAt = Timestamp.format(changed.createdAt)
    }
}

private struct ClaimView: Encodable {
    let id: String
    let hospital: String
    let insurer: String
    let patient: String
    let status: String
    let total: MoneyView
    let createdAt: String
    let history: [ClaimEventView]

    init(_ claim: StoredClaim, history: [ClaimEventView]) {
        id = claim.id
        hospital = claim.hospitalOrg
        insurer = claim.insurerOrg
        patient = claim.patientId
        status = claim.status.rawValue
        total = MoneyView(claim.total)
        createdAt = Timestamp.format(claim.createdAt)
        self.history = history
    }
}

/// One line of a claim's status history.
struct ClaimEventView: Encodable {
    let event: String
    let by: String
    let at: String
    let documentHash: String
    let outcome: String?
    let ruleId: String?
    let ruleHash: String?
    let ledgerSeq: Int64?

    init(_ row: ClaimEventRow) {
        self.init(row.event, seq: row.seq)
    }

    init(_ claimEvent: ClaimEvent, seq: Int64?) {
        event = claimEvent.kind.entryType
        by = claimEvent.actorOrg
        at = Timestamp.format(claimEvent.createdAt)
        documentHash = claimEvent.documentHash
        outcome = claimEvent.outcome
        ruleId = claimEvent.ruleId
        ruleHash = claimEvent.ruleHash
        ledgerSeq = seq
    }
}
