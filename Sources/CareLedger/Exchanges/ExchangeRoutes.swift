import Crypto
import FoundationEssentials
import HTTP
import Ledger
import Postgres

/// `POST /v1/exchanges` and `GET /v1/exchanges/{exchangeId}`: a clinical document about a patient,
/// sent from one organization to another. The hub checks who may send, the patient's consent to
/// the disclosure, hashes the document (RFC 8785), seals it under the patient's data key, and
/// anchors it, all in one transaction.
enum ExchangeRoutes {
    static let fields: Set<String> = ["to", "patient", "purpose", "category", "document", "reason"]

    static func register(in api: inout APIRouteBuilder, ledger: LedgerService, keys: PatientKeys) {
        let store = ExchangeStore()
        let patients = PatientStore()
        let consents = ConsentStore()
        let gate = DisclosureGate()
        let audit = api.access.audit
        let pool = api.access.pool
        let sends = WriteCoalescer<ExchangeStore.Send, Int64>(failsEveryone: { ($0 as? PostgresError)?.isUnavailable == true }) { batch in
            try await store.send(batch, on: pool)
        }

        api.on(.post, "/v1/exchanges", .exchangesSend) { context in
            let request = try SendRequest(context.request)
            let idempotency = try Idempotency.of(context.request)
            if let earlier = try await idempotency?.earlierResource(orgId: context.caller.orgId, on: pool) {
                return try await replay(earlier, store: store, ledger: ledger)
            }
            let permitted = try await gate.check(context, recipient: request.to, recipientField: "to", patientId: request.patient,
                                                 purpose: request.purpose, category: request.category, on: pool)
            let id = ResourceID.generate("exc")
            let canonical = JCS.canonicalize(request.document)
            let documentHash = "sha256:" + SHA256.hexDigest(canonical)
            let sealed = try AESGCM.seal(canonical, key: try keys.unwrap(permitted.wrappedDataKey, patientId: request.patient), authenticating: Array("exchange:\(id)".utf8))
            let now = Date()
            var event = context.permitted("exchange", id, patientId: request.patient, reason: request.breakGlassReason == nil ? "consent" : "break-the-glass")
            event.purpose = request.purpose
            let stored = StoredExchange(
                id: id, senderOrg: context.caller.orgId, recipientOrg: request.to, patientId: request.patient, purpose: request.purpose.rawValue,
                category: request.category.rawValue, sealedDocument: sealed, documentHash: documentHash, breakGlassReason: request.breakGlassReason,
                sentQueueId: 0, createdAt: now, receivedAt: nil)
            guard let queueId = try await Idempotency.unlessRaced(idempotency, { try await sends.submit(ExchangeStore.Send(exchange: stored, event: event, idempotency: idempotency)) }) else {
                guard let earlier = try await idempotency?.earlierResource(orgId: context.caller.orgId, on: pool) else { throw HTTPError.internalError }
                return try await replay(earlier, store: store, ledger: ledger)
            }
            if request.breakGlassReason != nil { context.metrics.brokeTheGlass() }
            let entry = await ledger.sequencedEntry(queueId: queueId)
            return try JSONBody.response(.created, Sent(id: id, documentHash: documentHash, ledger: entry.map(LedgerRef.init), createdAt: Timestamp.format(now)))
        }

        api.on(.get, "/v1/exchanges/{exchangeId}", .exchangesRead) { context in
            let id = try context.request.parameters.require("exchangeId", as: String.self)
            guard let exchange = try await store.exchange(id, on: pool),
                  exchange.senderOrg == context.caller.orgId || exchange.recipientOrg == context.caller.orgId else {
                throw Denial.notVisible("exchange", id)
            }
            var receivedAt = exchange.receivedAt
            if exchange.recipientOrg == context.caller.orgId, exchange.receivedAt == nil {
                // The recipient's first read re-checks consent and leaves a proof of delivery.
                if exchange.breakGlassReason == nil, let purpose = PurposeOfUse(rawValue: exchange.purpose), let category = DataCategory(rawValue: exchange.category) {
                    let rules = try await consents.rules(patientId: exchange.patientId, on: pool)
                    let decision = ConsentPolicy.decide(ConsentRequest(
                        actorOrg: context.caller.orgId, actorKind: context.caller.orgKind, patientId: exchange.patientId, purpose: purpose,
                        category: category, time: Date()), consents: rules)
                    guard decision.permitted else {
                        throw Denial(error: HTTPError(status: .forbidden, code: "consent_revoked", message: "The patient's consent no longer permits this disclosure."),
                                     reason: decision.reason, resourceType: "exchange", resourceId: id, patientId: exchange.patientId)
                    }
                }
                let now = Date()
                let receipt = JCS.canonicalize(.object([("exchange", .string(id)), ("receivedAt", .string(Timestamp.format(now))), ("receivedBy", .string(context.caller.orgId))]))
                let hash = "sha256:" + SHA256.hexDigest(receipt)
                try await pool.withTransaction { transaction in
                    guard try await store.exchange(id, lock: true, on: transaction)?.receivedAt == nil else { return }
                    let queueId = try await ledger.enqueue(LedgerItem(type: "exchange.received", actor: context.caller.orgId, ref: id, hash: hash), on: transaction)
                    try await store.markReceived(id, at: now, hash: hash, queueId: queueId, on: transaction)
                }
                receivedAt = now
            }
            guard let patient = try await patients.patient(exchange.patientId, on: pool), let wrapped = patient.wrappedDataKey else {
                throw APIError.erased
            }
            let document = try AESGCM.open(exchange.sealedDocument, key: try keys.unwrap(wrapped, patientId: exchange.patientId),
                                           authenticating: Array("exchange:\(id)".utf8))
            try await audit.record(context.permitted("exchange", id, patientId: exchange.patientId, reason: "sender or recipient"), on: pool)
            let head = ExchangeView(id: id, from: exchange.senderOrg, to: exchange.recipientOrg, patient: exchange.patientId, purpose: exchange.purpose,
                                    category: exchange.category, documentHash: exchange.documentHash, breakGlass: exchange.breakGlassReason != nil,
                                    createdAt: Timestamp.format(exchange.createdAt), receivedAt: receivedAt.map(Timestamp.format))
            return .json(.ok, try JSONBody.object(head, adding: [("document", document)]))
        }
    }

    /// `GET /v1/exchanges?box=inbox|outbox&after=&limit=&wait=`: metadata in ledger order; with
    /// `wait` (up to 30 s) an empty page waits for the next sequenced batch.
    static func registerBoxes(in api: inout APIRouteBuilder, ledger: LedgerService) {
        let store = ExchangeStore()
        let pool = api.access.pool
        api.on(.get, "/v1/exchanges", .exchangesRead) { context in
            let query = try context.request.query()
            guard let box = query["box"], box == "inbox" || box == "outbox" else { throw APIError.badRequest("'box' must be inbox or outbox.") }
            let page = try await LedgerFeed(query).poll(ledger, seq: \.seq) { seqs, limit in
                try await store.box(orgId: context.caller.orgId, inbox: box == "inbox", seqs: seqs, limit: limit, on: pool)
            }
            return try JSONBody.response(.ok, BoxPage(items: page.shown.map(BoxItem.init), next: page.next, cursor: page.cursor))
        }
    }

    /// Receipts of the exchange's ledger entries (sent, and received once read), oldest first.
    static func registerProof(in api: inout APIRouteBuilder, ledger: LedgerService) {
        let store = ExchangeStore()
        let pool = api.access.pool
        let audit = api.access.audit
        api.on(.get, "/v1/exchanges/{exchangeId}/proof", .exchangesRead) { context in
            let id = try context.request.parameters.require("exchangeId", as: String.self)
            guard let exchange = try await store.exchange(id, on: pool),
                  exchange.senderOrg == context.caller.orgId || exchange.recipientOrg == context.caller.orgId else {
                throw Denial.notVisible("exchange", id)
            }
            let queueIds = [exchange.sentQueueId] + (exchange.receivedQueueId.map { [$0] } ?? [])
            var receipts: [Receipt] = []
            for entry in try await ledger.store.entries(queueIds: queueIds, on: pool).values.sorted(by: { $0.seq < $1.seq }) {
                if let receipt = try await ledger.receipt(seq: entry.seq) { receipts.append(receipt) }
            }
            guard !receipts.isEmpty else {
                throw HTTPError(status: .serviceUnavailable, code: "unavailable", message: "The exchange is not in a signed tree head yet; retry shortly.",
                                headers: HTTPHeaders([("Retry-After", "1")]))
            }
            try await audit.record(context.permitted("exchange", id, patientId: exchange.patientId, reason: "proof"), on: pool)
            return try JSONBody.response(.ok, Page(items: receipts, next: nil))
        }
    }

    /// The answer to a repeated request: the exchange the first one created.
    private static func replay(_ exchangeId: String, store: ExchangeStore, ledger: LedgerService) async throws -> Response {
        guard let exchange = try await store.exchange(exchangeId, on: ledger.pool) else { throw HTTPError.internalError }
        let entry = try await ledger.store.entries(queueIds: [exchange.sentQueueId], on: ledger.pool)[exchange.sentQueueId]
        return try JSONBody.response(.created, Sent(id: exchange.id, documentHash: exchange.documentHash, ledger: entry.map(LedgerRef.init),
                                                createdAt: Timestamp.format(exchange.createdAt)))
    }
}

/// The parts of a send request, checked.
private struct SendRequest {
    let to: String
    let patient: String
    let purpose: PurposeOfUse
    let category: DataCategory
    let document: JSONValue
    let breakGlassReason: String?

    init(_ request: Request) throws(HTTPError) {
        let value = try JSONBody.parse(request, fields: ExchangeRoutes.fields)
        guard let to = value["to"]?.stringValue else { throw APIError.badRequest("Missing field 'to'.") }
        guard let patient = value["patient"]?.stringValue else { throw APIError.badRequest("Missing field 'patient'.") }
        guard let purposeText = value["purpose"]?.stringValue, let purpose = PurposeOfUse(rawValue: purposeText) else {
            throw APIError.badRequest("'purpose' must be one of \(PurposeOfUse.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
        guard let categoryText = value["category"]?.stringValue, let category = DataCategory(rawValue: categoryText) else {
            throw APIError.badRequest("'category' must be one of \(DataCategory.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
        guard let document = value["document"] else { throw APIError.badRequest("Missing field 'document'.") }
        try FHIRDocument.validate(document)
        var reason: String?
        if purpose == .emergencyTreatment {
            guard let text = value["reason"]?.stringValue, text.trimmingWhitespace().count >= 20 else {
                throw APIError.badRequest("Break-the-glass (purpose ETREAT) needs a 'reason' of at least 20 characters.")
            }
            reason = text
        } else if value["reason"] != nil {
            throw APIError.badRequest("'reason' is only for break-the-glass (purpose ETREAT).")
        }
        self.to = to
        self.patient = patient
        self.purpose = purpose
        self.category = category
        self.document = document
        breakGlassReason = reason
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
}

private struct BoxItem: Encodable {
    let exchangeId: String
    let from: String
    let to: String
    let patient: String
    let purpose: String
    let category: String
    let documentHash: String
    let createdAt: String
    let ledgerSeq: String

    init(_ row: ExchangeStore.BoxRow) {
        exchangeId = row.index.id
        from = row.index.senderOrg
        to = row.index.recipientOrg
        patient = row.patientId
        purpose = row.index.purpose
        category = row.index.category
        documentHash = row.index.documentHash
        createdAt = Timestamp.format(row.index.createdAt)
        ledgerSeq = String(row.seq)
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
