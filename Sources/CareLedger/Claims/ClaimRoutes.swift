import Crypto
import FoundationEssentials
import HTTP
import Ledger
import Postgres

/// Claims between a hospital and an insurer: `POST /v1/claims` (hospital) submits a FHIR R4 Claim
/// under the patient's consent for payment; the addressed insurer adjudicates it (by hand with a
/// ClaimResponse, or at submission by one of its rules), or the hospital cancels it first. Every
/// change is sealed, anchored, and one event in the parties' feeds.
enum ClaimRoutes {
    static let submitFields: Set<String> = ["insurer", "patient", "claim"]

    static func register(in api: inout APIRouteBuilder, ledger: LedgerService, keys: PatientKeys) {
        let claims = ClaimDocuments(keys: keys)
        registerSubmission(in: &api, ledger: ledger, claims: claims)
        registerChanges(in: &api, ledger: ledger, claims: claims)
        ClaimFeedRoutes.register(in: &api, ledger: ledger, claims: claims)
        ClaimRuleRoutes.register(in: &api, ledger: ledger)
    }

    private static func registerSubmission(in api: inout APIRouteBuilder, ledger: LedgerService, claims: ClaimDocuments) {
        let store = ClaimStore()
        let gate = DisclosureGate()
        let audit = api.access.audit
        let pool = api.access.pool

        api.on(.post, "/v1/claims", .claimsSubmit) { context in
            let body = try JSONBody.parse(context.request, fields: submitFields)
            guard let insurer = body["insurer"]?.stringValue else { throw APIError.badRequest("Missing field 'insurer'.") }
            guard let patientId = body["patient"]?.stringValue else { throw APIError.badRequest("Missing field 'patient'.") }
            guard let document = body["claim"] else { throw APIError.badRequest("Missing field 'claim'.") }
            let claim = try FHIRClaim(document)
            let idempotency = try Idempotency.of(context.request)
            if let earlier = try await idempotency?.earlierResource(orgId: context.caller.orgId, on: pool) {
                return try await submitted(earlier, store: store, ledger: ledger)
            }
            let permitted = try await gate.check(context, recipient: insurer, recipientField: "insurer", recipientKind: .insurer,
                                                 patientId: patientId, purpose: .payment, category: .claim, on: pool)
            let dataKey = try claims.keys.unwrap(permitted.wrappedDataKey, patientId: patientId)
            let id = ResourceID.generate("clm")
            let now = Date()
            let submission = try claims.seal(claim.document, key: dataKey, claimId: id, kind: .submitted)
            var event = context.permitted("claim", id, patientId: patientId, reason: "consent")
            event.purpose = .payment
            let stored = StoredClaim(id: id, hospitalOrg: context.caller.orgId, insurerOrg: insurer, patientId: patientId, status: .submitted,
                                     total: claim.total, createdAt: now)
            let written = try await Idempotency.unlessRaced(idempotency) {
                try await pool.withTransaction { transaction -> (queueId: Int64, adjudication: ClaimEventView?) in
                    // Read first, under a share lock: the rules cannot be retired until this commits.
                    let rules = try await store.activeRules(insurerOrg: insurer, share: true, on: transaction).compactMap { stored in
                        (try? JSONParser.parse(stored.document)).flatMap { try? ClaimRule($0) }.map { (stored: stored, rule: $0) }
                    }
                    let queueId = try await store.submit(stored, document: submission, idempotency: idempotency, on: transaction)
                    try await audit.record(event, on: transaction)
                    // The insurer's rules decide in the same transaction: a matching claim is never
                    // seen submitted-but-undecided.
                    guard let decided = ClaimAdjudicator.decide(claim, patientId: patientId, rules: rules, rule: \.rule) else { return (queueId, nil) }
                    let response = ClaimAdjudicator.response(to: claim, claimId: id, insurerOrg: insurer, ruleId: decided.stored.id,
                                                             ruleHash: decided.stored.hash, rule: decided.rule, at: now)
                    let adjudication = try claims.seal(response, key: dataKey, claimId: id, kind: .adjudicated)
                    let basis = LedgerBasis(ref: decided.stored.id, hash: decided.stored.hash)
                    let adjudicationQueueId = try await ledger.enqueue(
                        LedgerItem(type: ClaimEvent.Kind.adjudicated.entryType, actor: insurer, ref: id, hash: adjudication.hash, basis: basis), on: transaction)
                    let event = ClaimEvent(queueId: adjudicationQueueId, claimId: id, kind: .adjudicated, actorOrg: insurer,
                                           sealedDocument: adjudication.sealed, documentHash: adjudication.hash, outcome: "complete",
                                           ruleId: decided.stored.id, ruleHash: decided.stored.hash, createdAt: now)
                    try await store.append(event, status: .adjudicated, on: transaction)
                    return (queueId, ClaimEventView(event, seq: nil))
                }
            }
            guard let written else {
                guard let earlier = try await idempotency?.earlierResource(orgId: context.caller.orgId, on: pool) else { throw HTTPError.internalError }
                return try await submitted(earlier, store: store, ledger: ledger)
            }
            let entry = await ledger.sequencedEntry(queueId: written.queueId)
            return try JSONBody.response(.created, Submitted(
                id: id, status: written.adjudication == nil ? "submitted" : "adjudicated", documentHash: submission.hash, total: MoneyView(claim.total),
                ledger: entry.map(LedgerRef.init), adjudication: written.adjudication, createdAt: Timestamp.format(now)))
        }

        api.on(.get, "/v1/claims/{claimId}", .claimsRead) { context in
            let id = try context.request.parameters.require("claimId", as: String.self)
            let claim = try await party(to: id, context, store: store, on: pool)
            let events = try await store.events(claimId: id, on: pool)
            let documents = try await claims.open(events, on: pool)
            try await audit.record(context.permitted("claim", id, patientId: claim.patientId, reason: "party to the claim"), on: pool)
            var raw: [(name: String, json: [UInt8])] = []
            if let submitted = events.first(where: { $0.event.kind == .submitted }) { raw.append(("claim", documents[submitted.event.queueId] ?? Array("null".utf8))) }
            if let adjudicated = events.first(where: { $0.event.kind == .adjudicated }) {
                raw.append(("response", documents[adjudicated.event.queueId] ?? Array("null".utf8)))
            }
            return .json(.ok, try JSONBody.object(ClaimView(claim, history: events.map(ClaimEventView.init)), adding: raw))
        }
    }

    /// Cancellation by the hospital and adjudication by the insurer: each only from `submitted`
    /// (409 otherwise), under a row lock so two changes cannot both win.
    private static func registerChanges(in api: inout APIRouteBuilder, ledger: LedgerService, claims: ClaimDocuments) {
        let store = ClaimStore()
        let patients = PatientStore()
        let audit = api.access.audit
        let pool = api.access.pool

        @Sendable func change(_ context: APIContext, claim: StoredClaim, kind: ClaimEvent.Kind, document: JSONValue, outcome: String?) async throws -> Response {
            guard let wrapped = try await patients.patient(claim.patientId, on: pool)?.wrappedDataKey else { throw APIError.erased }
            let now = Date()
            let sealed = try claims.seal(document, key: try claims.keys.unwrap(wrapped, patientId: claim.patientId), claimId: claim.id, kind: kind)
            let status: StoredClaim.Status = kind == .cancelled ? .cancelled : .adjudicated
            let queueId = try await pool.withTransaction { transaction -> Int64 in
                guard try await store.claim(claim.id, lock: true, on: transaction)?.status == .submitted else {
                    throw notSubmitted(claim.id, wanted: status)
                }
                let queueId = try await ledger.enqueue(LedgerItem(type: kind.entryType, actor: context.caller.orgId, ref: claim.id, hash: sealed.hash),
                                                       on: transaction)
                try await store.append(ClaimEvent(queueId: queueId, claimId: claim.id, kind: kind, actorOrg: context.caller.orgId,
                                                  sealedDocument: sealed.sealed, documentHash: sealed.hash, outcome: outcome, createdAt: now),
                                       status: status, on: transaction)
                try await audit.record(context.permitted("claim", claim.id, patientId: claim.patientId, reason: kind.rawValue), on: transaction)
                return queueId
            }
            let entry = await ledger.sequencedEntry(queueId: queueId)
            return try JSONBody.response(kind == .adjudicated ? .created : .ok, Changed(
                claimId: claim.id, status: status.rawValue, outcome: outcome, documentHash: sealed.hash, ledger: entry.map(LedgerRef.init),
                createdAt: Timestamp.format(now)))
        }

        api.on(.post, "/v1/claims/{claimId}/cancel", .claimsCancel) { context in
            let id = try context.request.parameters.require("claimId", as: String.self)
            var reason: String?
            if !context.request.body.isEmpty {
                let body = try JSONBody.parse(context.request, fields: ["reason"])
                if let value = body["reason"] {
                    guard let text = value.stringValue, (1...500).contains(text.count) else { throw APIError.badRequest("'reason' must be a string of 1 to 500 characters.") }
                    reason = text
                }
            }
            let claim = try await party(to: id, context, store: store, on: pool)
            guard claim.hospitalOrg == context.caller.orgId else { throw Denial.notVisible("claim", id) }
            var members: [(key: String, value: JSONValue)] = [
                ("claim", .string(id)), ("cancelledAt", .string(Timestamp.format(Date()))), ("cancelledBy", .string(context.caller.orgId)),
            ]
            if let reason { members.append(("reason", .string(reason))) }
            return try await change(context, claim: claim, kind: .cancelled, document: .object(members), outcome: nil)
        }

        api.on(.post, "/v1/claims/{claimId}/adjudication", .claimsAdjudicate) { context in
            let id = try context.request.parameters.require("claimId", as: String.self)
            let body = try JSONBody.parse(context.request)
            let claim = try await party(to: id, context, store: store, on: pool)
            guard claim.insurerOrg == context.caller.orgId else { throw Denial.notVisible("claim", id) }
            // A decided claim is a conflict whatever the response says (checked again under the lock).
            guard claim.status == .submitted else { throw notSubmitted(claim.id, wanted: .adjudicated) }
            let response = try FHIRClaimResponse(body, claimTotal: claim.total)
            return try await change(context, claim: claim, kind: .adjudicated, document: response.document, outcome: response.outcome)
        }
    }

    private static func notSubmitted(_ id: String, wanted: StoredClaim.Status) -> Denial {
        Denial.conflict("The claim is no longer submitted; only a submitted claim can be \(wanted.rawValue).", "claim", id)
    }

    /// The claim, if the caller is its hospital or its insurer; everyone else gets the 404 an
    /// unknown id gets.
    static func party(to id: String, _ context: APIContext, store: ClaimStore, on pool: PostgresPool) async throws -> StoredClaim {
        guard let claim = try await store.claim(id, on: pool),
              claim.hospitalOrg == context.caller.orgId || claim.insurerOrg == context.caller.orgId else {
            throw Denial.notVisible("claim", id)
        }
        return claim
    }

    /// The 201 of a replayed submission: the claim as it stands, with its submission's entry.
    private static func submitted(_ id: String, store: ClaimStore, ledger: LedgerService) async throws -> Response {
        guard let claim = try await store.claim(id, on: ledger.pool) else { throw HTTPError.internalError }
        let events = try await store.events(claimId: id, on: ledger.pool)
        guard let submission = events.first(where: { $0.event.kind == .submitted }) else { throw HTTPError.internalError }
        let entry = try await ledger.store.entries(queueIds: [submission.event.queueId], on: ledger.pool)[submission.event.queueId]
        let adjudication = events.first { $0.event.kind == .adjudicated && $0.event.ruleId != nil }
        return try JSONBody.response(.created, Submitted(
            id: id, status: claim.status.rawValue, documentHash: submission.event.documentHash, total: MoneyView(claim.total),
            ledger: entry.map(LedgerRef.init), adjudication: adjudication.map(ClaimEventView.init), createdAt: Timestamp.format(claim.createdAt)))
    }
}

/// Sealing and opening claim documents under the patient's data key.
struct ClaimDocuments: Sendable {
    let keys: PatientKeys
    let patients = PatientStore()

    /// The canonical bytes of `document` sealed, and their hash.
    func seal(_ document: JSONValue, key: [UInt8], claimId: String, kind: ClaimEvent.Kind) throws -> (sealed: [UInt8], hash: String) {
        let canonical = JCS.canonicalize(document)
        let sealed = try AESGCM.seal(canonical, key: key, authenticating: ClaimEvent.sealContext(claimId: claimId, kind: kind))
        return (sealed, "sha256:" + SHA256.hexDigest(canonical))
    }

    /// The canonical documents of `rows` by queue id; an erased patient's are missing.
    func open(_ rows: [ClaimEventRow], on runner: some QueryRunner) async throws -> [Int64: [UInt8]] {
        let keys = try await dataKeys(for: rows, on: runner)
        var documents: [Int64: [UInt8]] = [:]
        for row in rows {
            guard let key = keys[row.patientId] else { continue }
            documents[row.event.queueId] = try open(row, key: key)
        }
        return documents
    }

    /// The data keys of the patients of `rows`; erased patients have none.
    func dataKeys(for rows: [ClaimEventRow], on runner: some QueryRunner) async throws -> [String: [UInt8]] {
        var dataKeys: [String: [UInt8]] = [:]
        for patientId in Set(rows.map(\.patientId)) {
            if let wrapped = try await patients.patient(patientId, on: runner)?.wrappedDataKey {
                dataKeys[patientId] = try keys.unwrap(wrapped, patientId: patientId)
            }
        }
        return dataKeys
    }

    func open(_ row: ClaimEventRow, key: [UInt8]) throws -> [UInt8] {
        try AESGCM.open(row.event.sealedDocument, key: key, authenticating: ClaimEvent.sealContext(claimId: row.event.claimId, kind: row.event.kind))
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
    let ledgerSeq: String?

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
        ledgerSeq = seq.map(String.init)
    }
}
