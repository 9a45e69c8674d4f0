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
        let audit = api.access.audit
        let pool = api.access.pool

        api.on(.post, "/v1/exchanges", .exchangesSend) { context in
            let request = try SendRequest(context.request)
            let idempotencyKey = try idempotencyKey(context.request)
            let requestHash = "sha256:" + SHA256.hexDigest(context.request.body)
            if let key = idempotencyKey, let earlier = try await store.idempotencyRecord(orgId: context.caller.orgId, key: key, on: pool) {
                return try await replay(earlier, requestHash: requestHash, store: store, ledger: ledger)
            }
            let known = try await store.sendContext(recipient: request.to, sender: context.caller.orgId, patientId: request.patient, on: pool)
            guard let recipientKind = known.recipientKind else {
                throw APIError.badRequest("'to' is not an active organization.")
            }
            // The sender must have a relationship with the patient; anyone else learns nothing.
            let rules = try await consents.consents(patientId: request.patient, on: pool).map(\.rule)
            let senderConsent = ConsentPolicy.decide(ConsentRequest(
                actorOrg: context.caller.orgId, actorKind: context.caller.orgKind, patientId: request.patient,
                purpose: request.purpose, category: request.category, time: Date()), consents: rules)
            guard known.patientExists, known.senderIsCustodian || senderConsent.permitted else {
                throw Denial.notVisible("patient", request.patient)
            }
            if request.purpose == .emergencyTreatment {
                guard context.caller.role == .hospital else { throw APIError.forbidden }
            } else {
                let disclosure = ConsentPolicy.decide(ConsentRequest(
                    actorOrg: request.to, actorKind: recipientKind, patientId: request.patient, purpose: request.purpose,
                    category: request.category, time: Date()), consents: rules)
                guard disclosure.permitted else {
                    throw Denial(error: HTTPError(status: .forbidden, code: "consent_denied", message: "The patient's consent does not permit this disclosure."),
                                 reason: disclosure.reason + (disclosure.consentId.map { " (\($0))" } ?? ""), resourceType: "patient", resourceId: request.patient)
                }
            }
            guard let wrapped = known.wrappedDataKey else { throw HTTPError(status: .gone, code: "erased", message: "This patient's data was erased.") }
            let id = ResourceID.generate("exc")
            let canonical = JCS.canonicalize(request.document)
            let documentHash = "sha256:" + SHA256.hexDigest(canonical)
            let sealed = try AESGCM.seal(canonical, key: try keys.unwrap(wrapped, patientId: request.patient), authenticating: Array("exchange:\(id)".utf8))
            let now = Date()
            // Nil when a request with the same key committed first (then its answer is replayed); a
            // request racing it with the same key meets the key's primary key and replays too.
            var event = context.permitted("exchange", id, patientId: request.patient, reason: request.breakGlassReason == nil ? "consent" : "break-the-glass")
            event.purpose = request.purpose
            let stored = StoredExchange(
                id: id, senderOrg: context.caller.orgId, recipientOrg: request.to, patientId: request.patient, purpose: request.purpose.rawValue,
                category: request.category.rawValue, sealedDocument: sealed, documentHash: documentHash, breakGlassReason: request.breakGlassReason,
                sentQueueId: 0, createdAt: now, receivedAt: nil)
            // Nil when a request with the same key committed first: its answer is replayed.
            let queued: Int64? = try await replayingDuplicateKey {
                try await store.send(stored, event: event, idempotency: idempotencyKey.map { ($0, requestHash) }, on: pool)
            }
            guard let queueId = queued else {
                guard let key = idempotencyKey, let earlier = try await store.idempotencyRecord(orgId: context.caller.orgId, key: key, on: pool) else {
                    throw HTTPError.internalError
                }
                return try await replay(earlier, requestHash: requestHash, store: store, ledger: ledger)
            }
            let entry = await ledger.sequencedEntry(queueId: queueId)
            return JSONBody.response(.created, Sent(id: id, documentHash: documentHash, ledger: entry.map(LedgerRef.init), createdAt: Timestamp.format(now)))
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
                    let rules = try await consents.consents(patientId: exchange.patientId, on: pool).map(\.rule)
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
                throw HTTPError(status: .gone, code: "erased", message: "This patient's data was erased.")
            }
            let document = try AESGCM.open(exchange.sealedDocument, key: try keys.unwrap(wrapped, patientId: exchange.patientId),
                                           authenticating: Array("exchange:\(id)".utf8))
            try await audit.record(context.permitted("exchange", id, patientId: exchange.patientId, reason: "sender or recipient"), on: pool)
            let head = ExchangeView(id: id, from: exchange.senderOrg, to: exchange.recipientOrg, patient: exchange.patientId, purpose: exchange.purpose,
                                    category: exchange.category, documentHash: exchange.documentHash, breakGlass: exchange.breakGlassReason != nil,
                                    createdAt: Timestamp.format(exchange.createdAt), receivedAt: receivedAt.map(Timestamp.format))
            // The view's fields, then the document as stored (canonical JSON), in one object.
            var body = JSONBody.response(.ok, head).body
            body.removeLast()
            body += Array(#","document":"#.utf8) + document + [UInt8(ascii: "}")]
            return .json(.ok, body)
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
            let pagination = try Pagination(query)
            let afterSeq = try pagination.afterSequence() ?? -1
            var wait: Duration = .zero
            if let text = query["wait"] {
                guard let seconds = Int(text), (0...30).contains(seconds) else { throw APIError.badRequest("'wait' must be 0 to 30 seconds.") }
                wait = .seconds(seconds)
            }
            let deadline = ContinuousClock.now + wait
            while true {
                let rows = try await store.box(orgId: context.caller.orgId, inbox: box == "inbox", afterSeq: afterSeq, limit: pagination.limit + 1, on: pool)
                if !rows.isEmpty || ContinuousClock.now >= deadline {
                    let shown = rows.prefix(pagination.limit)
                    let next = rows.count > pagination.limit ? shown.last.map { String($0.seq) } : nil
                    return JSONBody.response(.ok, BoxPage(items: shown.map(BoxItem.init), next: next, cursor: shown.last.map { String($0.seq) } ?? pagination.after))
                }
                await ledger.batches.next(timeout: deadline - ContinuousClock.now)
            }
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
            return JSONBody.response(.ok, Page(items: receipts, next: nil))
        }
    }

    private static func replayingDuplicateKey(_ body: () async throws -> Int64?) async throws -> Int64? {
        do {
            return try await body()
        } catch let error as PostgresError where error.isUniqueViolation {
            return nil
        }
    }

    private static func idempotencyKey(_ request: Request) throws(HTTPError) -> String? {
        guard let key = request.headers.first(name: "Idempotency-Key") else { return nil }
        guard (1...200).contains(key.utf8.count), key.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw APIError.badRequest("Idempotency-Key must be 1-200 visible ASCII characters.")
        }
        return key
    }

    /// The answer to a repeated request: the original exchange if the body is the same, else 409.
    private static func replay(_ earlier: (requestHash: String, resourceId: String), requestHash: String, store: ExchangeStore,
                               ledger: LedgerService) async throws -> Response {
        guard earlier.requestHash == requestHash else {
            throw APIError.conflict("This Idempotency-Key was used with a different request.")
        }
        guard let exchange = try await store.exchange(earlier.resourceId, on: ledger.pool) else { throw HTTPError.internalError }
        let entry = try await ledger.store.entries(queueIds: [exchange.sentQueueId], on: ledger.pool)[exchange.sentQueueId]
        return JSONBody.response(.created, Sent(id: exchange.id, documentHash: exchange.documentHash, ledger: entry.map(LedgerRef.init),
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
        if let contentType = request.headers.first(name: "Content-Type"), !contentType.lowercased().hasPrefix("application/json") {
            throw APIError.unsupportedMediaType
        }
        let value: JSONValue
        do {
            value = try JSONParser.parse(request.body)
        } catch {
            throw APIError.badRequest("The body is not valid JSON: \(error).")
        }
        guard case .object(let members) = value else { throw APIError.badRequest("The body is not a JSON object.") }
        if let unknown = members.map(\.key).sorted().first(where: { !ExchangeRoutes.fields.contains($0) }) {
            throw APIError.badRequest("Unknown field '\(unknown)'.")
        }
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

private struct LedgerRef: Encodable {
    let seq: String
    let leafHash: String

    init(_ entry: LedgerEntryRow) {
        seq = String(entry.seq)
        leafHash = Base64.encode(entry.leafHash)
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
