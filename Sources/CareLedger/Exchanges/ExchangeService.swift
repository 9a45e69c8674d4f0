import Crypto
import FoundationEssentials
import Ledger
import Postgres

/// Exchanges: a clinical document about a patient, sent from one organization to another. A send
/// checks who may send and the patient's consent to the disclosure, hashes the document (RFC 8785),
/// seals it under the patient's data key and anchors it, all in one transaction; sends that arrive
/// together share one statement and one commit. The recipient's first read re-checks consent and
/// leaves a proof of delivery.
final class ExchangeService: Sendable {
    /// A send's answer: the exchange, its document hash and, once sequenced, its entry.
    struct Sent: Sendable {
        let id: String
        let documentHash: String
        let entry: LedgerEntryRow?
        let createdAt: Date
    }

    let pool: PostgresPool
    let ledger: LedgerService
    let keys: PatientKeys
    let store = ExchangeStore()
    let consents = ConsentStore()
    let audit = AuditStore()
    let idempotencyKeys = IdempotencyStore()
    private let gate = DisclosureGate()
    private let sends: WriteCoalescer<ExchangeStore.Send, Int64>

    init(pool: PostgresPool, ledger: LedgerService, keys: PatientKeys) {
        self.pool = pool
        self.ledger = ledger
        self.keys = keys
        let store = store
        sends = WriteCoalescer(failsEveryone: { ($0 as? PostgresError)?.isUnavailable == true }) { batch in
            try await store.send(batch, on: pool)
        }
    }

    func send(_ request: SendRequest, idempotency: Idempotency?, _ call: CallContext) async throws -> Sent {
        if let idempotency, let earlier = try await idempotencyKeys.earlierResource(idempotency, orgId: call.caller.orgId, on: pool) {
            return try await replay(earlier)
        }
        let permitted = try await gate.check(call, recipient: request.to, recipientField: "to", patientId: request.patient,
                                             purpose: request.purpose, category: request.category, on: pool)
        let id = ResourceID.generate("exc")
        let canonical = JCS.canonicalize(request.document)
        let documentHash = "sha256:" + SHA256.hexDigest(canonical)
        let sealed = try AESGCM.seal(canonical, key: try keys.unwrap(permitted.wrappedDataKey, patientId: request.patient),
                                     authenticating: ExchangeStore.sealContext(id))
        let now = Date()
        var event = call.permitted("exchange", id, patientId: request.patient, reason: request.breakGlassReason == nil ? "consent" : "break-the-glass")
        event.purpose = request.purpose
        let stored = StoredExchange(
            id: id, senderOrg: call.caller.orgId, recipientOrg: request.to, patientId: request.patient, purpose: request.purpose.rawValue,
            category: request.category.rawValue, sealedDocument: sealed, documentHash: documentHash, breakGlassReason: request.breakGlassReason,
            sentQueueId: 0, createdAt: now, receivedAt: nil)
        guard let queueId = try await Idempotency.unlessRaced(idempotency, { try await sends.submit(ExchangeStore.Send(exchange: stored, event: event, idempotency: idempotency)) }) else {
            guard let idempotency, let earlier = try await idempotencyKeys.earlierResource(idempotency, orgId: call.caller.orgId, on: pool) else {
                throw DomainError.inconsistentStorage
            }
            return try await replay(earlier)
        }
        if request.breakGlassReason != nil { call.metrics.brokeTheGlass() }
        return Sent(id: id, documentHash: documentHash, entry: await ledger.sequencedEntry(queueId: queueId), createdAt: now)
    }

    /// The exchange and its document, to its sender or recipient; the recipient's first read
    /// re-checks consent and anchors a receipt.
    func read(_ id: String, _ call: CallContext) async throws -> (exchange: StoredExchange, document: [UInt8]) {
        var exchange = try await party(to: id, call)
        if exchange.recipientOrg == call.caller.orgId, exchange.receivedAt == nil {
            exchange.receivedAt = try await receive(exchange, call)
        }
        let document = try AESGCM.open(exchange.sealedDocument, key: try await keys.dataKey(of: exchange.patientId, on: pool),
                                       authenticating: ExchangeStore.sealContext(id))
        try await audit.record(call.permitted("exchange", id, patientId: exchange.patientId, reason: "sender or recipient"), on: pool)
        return (exchange, document)
    }

    /// Receipts of the exchange's ledger entries (sent, and received once read), oldest first.
    func proof(_ id: String, _ call: CallContext) async throws -> [Receipt] {
        let exchange = try await party(to: id, call)
        let queueIds = [exchange.sentQueueId] + (exchange.receivedQueueId.map { [$0] } ?? [])
        guard let receipts = try await ledger.receipts(queueIds: queueIds) else {
            throw DomainError.notYetSigned("The exchange is not in a signed tree head yet; retry shortly.")
        }
        try await audit.record(call.permitted("exchange", id, patientId: exchange.patientId, reason: "proof"), on: pool)
        return receipts
    }

    /// The caller's inbox or outbox in ledger order, from `feed`'s cursor.
    func box(inbox: Bool, _ feed: LedgerFeed, _ call: CallContext) async throws -> LedgerFeed.Page<ExchangeStore.BoxRow> {
        try await feed.poll(ledger, seq: \.seq) { seqs, limit, source in
            try await store.box(orgId: call.caller.orgId, inbox: inbox, seqs: seqs, limit: limit, on: source)
        }
    }

    /// The exchange, if the caller sent or received it; everyone else gets what an unknown id gets.
    private func party(to id: String, _ call: CallContext) async throws -> StoredExchange {
        guard let exchange = try await store.exchange(id, on: pool),
              exchange.senderOrg == call.caller.orgId || exchange.recipientOrg == call.caller.orgId else {
            throw Denial.notVisible("exchange", id)
        }
        return exchange
    }

    /// The recipient's first read: consent again (unless the glass was broken), then the receipt.
    private func receive(_ exchange: StoredExchange, _ call: CallContext) async throws -> Date {
        if exchange.breakGlassReason == nil, let purpose = PurposeOfUse(rawValue: exchange.purpose), let category = DataCategory(rawValue: exchange.category) {
            let rules = try await consents.rules(patientId: exchange.patientId, on: pool)
            let decision = ConsentPolicy.decide(ConsentRequest(
                actorOrg: call.caller.orgId, actorKind: call.caller.orgKind, patientId: exchange.patientId, purpose: purpose,
                category: category, time: Date()), consents: rules)
            guard decision.permitted else {
                throw Denial(error: .consentRevoked, reason: decision.reason, resourceType: "exchange", resourceId: exchange.id, patientId: exchange.patientId)
            }
        }
        let now = Date()
        let receipt = JCS.canonicalize(.object([("exchange", .string(exchange.id)), ("receivedAt", .string(Timestamp.format(now))),
                                                ("receivedBy", .string(call.caller.orgId))]))
        let hash = "sha256:" + SHA256.hexDigest(receipt)
        try await pool.withTransaction { transaction in
            guard try await store.exchange(exchange.id, lock: true, on: transaction)?.receivedAt == nil else { return }
            let queueId = try await ledger.store.enqueue(LedgerItem(type: "exchange.received", actor: call.caller.orgId, ref: exchange.id, hash: hash), on: transaction)
            try await store.markReceived(exchange.id, at: now, hash: hash, queueId: queueId, on: transaction)
        }
        return now
    }

    /// The answer to a repeated request: the exchange the first one created.
    private func replay(_ exchangeId: String) async throws -> Sent {
        guard let exchange = try await store.exchange(exchangeId, on: pool) else { throw DomainError.inconsistentStorage }
        let entry = try await ledger.store.entries(queueIds: [exchange.sentQueueId], on: pool)[exchange.sentQueueId]
        return Sent(id: exchange.id, documentHash: exchange.documentHash, entry: entry, createdAt: exchange.createdAt)
    }
}

/// The parts of a send request, checked.
struct SendRequest: Sendable {
    static let fields: Set<String> = ["to", "patient", "purpose", "category", "document", "reason"]

    let to: String
    let patient: String
    let purpose: PurposeOfUse
    let category: DataCategory
    let document: JSONValue
    let breakGlassReason: String?

    init(_ value: JSONValue) throws(DomainError) {
        guard let to = value["to"]?.stringValue else { throw .invalid("Missing field 'to'.") }
        guard let patient = value["patient"]?.stringValue else { throw .invalid("Missing field 'patient'.") }
        guard let purposeText = value["purpose"]?.stringValue, let purpose = PurposeOfUse(rawValue: purposeText) else {
            throw .invalid("'purpose' must be one of \(PurposeOfUse.allCases.map { $0.rawValue }.joined(separator: ", ")).")
        }
        guard let categoryText = value["category"]?.stringValue, let category = DataCategory(rawValue: categoryText) else {
            throw .invalid("'category' must be one of \(DataCategory.allCases.map { $0.rawValue }.joined(separator: ", ")).")
        }
        guard let document = value["document"] else { throw .invalid("Missing field 'document'.") }
        try FHIRDocument.validate(document)
        var reason: String?
        if purpose == .emergencyTreatment {
            guard let text = value["reason"]?.stringValue, text.trimmingWhitespace().count >= BreakTheGlass.minimumReason else {
                throw .invalid("Break-the-glass (purpose ETREAT) needs a 'reason' of at least \(BreakTheGlass.minimumReason) characters.")
            }
            reason = text
        } else if value["reason"] != nil {
            throw .invalid("'reason' is only for break-the-glass (purpose ETREAT).")
        }
        self.to = to
        self.patient = patient
        self.purpose = purpose
        self.category = category
        self.document = document
        breakGlassReason = reason
    }
}
