import HTTP
import Ledger

/// `POST /v1/exchanges`, `GET /v1/exchanges/{exchangeId}` (and its `/proof`), and the boxes
/// `GET /v1/exchanges?box=inbox|outbox&after=&limit=&wait=` (metadata in ledger order; with `wait`,
/// up to 30 s, an empty page waits for the next sequenced batch).
enum ExchangeRoutes {
    static func register(in api: inout APIRouteBuilder, ledger: LedgerService, keys: PatientKeys) {
        let service = ExchangeService(pool: api.access.pool, ledger: ledger, keys: keys)

        api.on(.post, "/v1/exchanges", .exchangesSend) { context in
            let request = try SendRequest(try JSONBody.parse(context.request, fields: SendRequest.fields))
            let sent = try await service.send(request, idempotency: try Idempotency.of(context.request), context.call)
            return try JSONBody.response(.created, Sent(id: sent.id, documentHash: sent.documentHash, ledger: sent.entry.map(LedgerRef.init),
                                                        createdAt: Timestamp.format(sent.createdAt)))
        }

        api.on(.get, "/v1/exchanges/{exchangeId}", .exchangesRead) { context in
            let (exchange, document) = try await service.read(try context.parameter("exchangeId"), context.call)
            return .json(.ok, try JSONBody.object(ExchangeView(exchange), adding: [("document", document)]))
        }

        api.on(.get, "/v1/exchanges/{exchangeId}/proof", .exchangesRead) { context in
            try JSONBody.response(.ok, Page(items: try await service.proof(try context.parameter("exchangeId"), context.call), next: nil))
        }

        api.on(.get, "/v1/exchanges", .exchangesRead) { context in
            let query = try context.query()
            guard let box = query["box"], box == "inbox" || box == "outbox" else { throw DomainError.invalid("'box' must be inbox or outbox.") }
            let page = try await service.box(inbox: box == "inbox", try LedgerFeed(query), context.call)
            return try JSONBody.response(.ok, BoxPage(items: page.shown.map(BoxItem.init), next: page.next, cursor: page.cursor))
        }
    }
}

private struct Sent: Encodable {
    let id: String
    let documentHash: String
    let ledger: LedgerRef?
    let createdAt: String
}

private struct ExchangeView: Encodable {
    let id: String
    let from: String
    let to: String
    let patient: String
    let purpose: String
    let category: String
    let documentHash: String
    let breakGlass: Bool
    let createdAt: String
    let receivedAt: String?

    init(_ exchange: StoredExchange) {
        id = exchange.id
        from = exchange.senderOrg
        to = exchange.recipientOrg
        patient = exchange.patientId
        purpose = exchange.purpose
        category = exchange.category
        documentHash = exchange.documentHash
        breakGlass = exchange.breakGlassReason != nil
        createdAt = Timestamp.format(exchange.createdAt)
        receivedAt = exchange.receivedAt.map(Timestamp.format)
    }
}

/// One line of a box: the record-index line of the exchange, and whom it is about.
private struct BoxItem: Encodable {
    let line: IndexItem
    let patient: String

    init(_ row: ExchangeStore.BoxRow) {
        line = IndexItem(row.index)
        patient = row.patientId
    }

    private enum CodingKeys: String, CodingKey { case patient }

    func encode(to encoder: any Encoder) throws {
        try line.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(patient, forKey: .patient)
    }
}

/// A page of a box: `next` when more is waiting now, and `cursor`, where to poll from next time.
private struct BoxPage: Encodable {
    let items: [BoxItem]
    let next: String?
    let cursor: String?

    private enum CodingKeys: String, CodingKey { case items, next, cursor }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(items, forKey: .items)
        try container.encode(next, forKey: .next)
        try container.encode(cursor, forKey: .cursor)
    }
}
