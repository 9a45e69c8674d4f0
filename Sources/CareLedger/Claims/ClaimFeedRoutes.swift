import HTTP

/// The two polled feeds: `GET /v1/claims/feed` (an insurer's claims as submitted and cancelled, and
/// its rules' decisions) and `GET /v1/claims/responses/feed` (a hospital's adjudications). Both are
/// ledger-ordered (see `LedgerFeed` for why they never skip), carry each event's document, and
/// record each delivery in the audit trail. Delivery is at least once: a consumer that crashes and
/// asks again from its last stored cursor gets the same items again, which carry the claim id and
/// event to deduplicate on.
enum ClaimFeedRoutes {
    static func register(in api: inout APIRouteBuilder, service: ClaimService) {
        @Sendable func serve(_ context: APIContext, responses: Bool) async throws -> Response {
            let (page, documents) = try await service.feed(responses: responses, try LedgerFeed(try context.query()), context.call)
            let items = try page.shown.map { row in
                try JSONBody.object(FeedItem(row), adding: [("document", documents[row.event.queueId] ?? Array("null".utf8))])
            }
            return try JSONBody.page(encodedItems: items, next: page.next, cursor: .some(page.cursor))
        }

        api.on(.get, "/v1/claims/feed", .claimsFeed) { context in try await serve(context, responses: false) }
        api.on(.get, "/v1/claims/responses/feed", .claimsResponses) { context in try await serve(context, responses: true) }
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
    let ledgerSeq: Int64
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
        ledgerSeq = row.seq ?? -1
        at = Timestamp.format(row.event.createdAt)
    }
}
