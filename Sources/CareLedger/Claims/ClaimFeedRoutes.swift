import FoundationEssentials
import HTTP

/// The two polled feeds: `GET /v1/claims/feed` (an insurer's claims as submitted and cancelled, and
/// its rules' decisions) and `GET /v1/claims/responses/feed` (a hospital's adjudications). Both are
/// ledger-ordered (see `LedgerFeed` for why they never skip), carry each event's document, and
/// record each delivery in the audit trail. Delivery is at least once: a consumer that crashes and
/// asks again from its last stored cursor gets the same items again, which carry the claim id and
/// event to deduplicate on.
enum ClaimFeedRoutes {
    static func register(in api: inout APIRouteBuilder, ledger: LedgerService, claims: ClaimDocuments) {
        let store = ClaimStore()
        let audit = api.access.audit
        let pool = api.access.pool

        @Sendable func serve(_ context: APIContext, reason: String,
                             fetch: (_ seqs: ClosedRange<Int64>, _ limit: Int) async throws -> [ClaimEventRow]) async throws -> Response {
            let page = try await LedgerFeed(try context.request.query()).poll(ledger, seq: { $0.seq ?? -1 }, fetch: fetch)
            let documents = try await claims.open(page.shown, on: pool)
            try await audit.record(context.permitted("claim", reason: reason), forEach: page.shown.map { ($0.event.claimId, $0.patientId) }, on: pool)
            let items = try page.shown.map { row in
                try JSONBody.object(FeedItem(row), adding: [("document", documents[row.event.queueId] ?? Array("null".utf8))])
            }
            return try JSONBody.page(encodedItems: items, next: page.next, cursor: .some(page.cursor))
        }

        api.on(.get, "/v1/claims/feed", .claimsFeed) { context in
            try await serve(context, reason: "claims feed") { seqs, limit in
                try await store.insurerFeed(insurerOrg: context.caller.orgId, seqs: seqs, limit: limit, on: pool)
            }
        }

        api.on(.get, "/v1/claims/responses/feed", .claimsResponses) { context in
            try await serve(context, reason: "claim responses feed") { seqs, limit in
                try await store.responseFeed(hospitalOrg: context.caller.orgId, seqs: seqs, limit: limit, on: pool)
            }
        }
    }
}

/// One event of a feed; `cursor` is its ledger seq, where to go on from after it.
private struct FeedItem: Encodable {
    let cursor: String
    let event: String
    let claimId: String
    let hospital: String
    let insurer: String
    let patient: String
    let total: MoneyView
    let documentHash: String
    let outcome: String?
    let ruleId: String?
    let ruleHash: String?
    let ledgerSeq: String
    let at: String

    init(_ row: ClaimEventRow) {
        cursor = String(row.seq ?? -1)
        event = row.event.kind.entryType
        claimId = row.event.claimId
        hospital = row.hospitalOrg
        insurer = row.insurerOrg
        patient = row.patientId
        total = MoneyView(row.total)
        documentHash = row.event.documentHash
        outcome = row.event.outcome
        ruleId = row.event.ruleId
        ruleHash = row.event.ruleHash
        ledgerSeq = cursor
        at = Timestamp.format(row.event.createdAt)
    }
}
