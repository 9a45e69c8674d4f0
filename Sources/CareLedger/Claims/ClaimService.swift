import Crypto
import FoundationEssentials
import Ledger
import Postgres
import Telemetry

/// Claims between a hospital and an insurer: a hospital submits a FHIR R4 Claim under the patient's
/// consent for payment; the addressed insurer adjudicates it (by hand with a ClaimResponse, or at
/// submission by one of its rules), or the hospital cancels it first. Every change is sealed,
/// anchored, and one event in the parties' feeds.
struct ClaimService: Sendable {
    /// A submission's answer.
    struct Submitted: Sendable {
        let id: String
        let status: StoredClaim.Status
        let documentHash: String
        let total: Money
        let entry: LedgerEntryRow?
        /// The rule's adjudication, when one decided at submission.
        let adjudication: ClaimEvent?
        let createdAt: Date
    }

    /// A cancellation's or adjudication's answer.
    struct Changed: Sendable {
        let claimId: String
        let status: StoredClaim.Status
        let outcome: String?
        let documentHash: String
        let entry: LedgerEntryRow?
        let createdAt: Date
    }

    let pool: PostgresPool
    let ledger: LedgerService
    let documents: ClaimDocuments
    let log: EventLog?
    let store = ClaimStore()
    let patients = PatientStore()
    let audit = AuditStore()
    let idempotencyKeys = IdempotencyStore()
    private let gate = DisclosureGate()

    init(pool: PostgresPool, ledger: LedgerService, keys: PatientKeys, log: EventLog?) {
        self.pool = pool
        self.ledger = ledger
        documents = ClaimDocuments(keys: keys)
        self.log = log
    }

    func submit(insurer: String, patientId: String, claim: FHIRClaim, idempotency: Idempotency?, _ call: CallContext) async throws -> Submitted {
        if let idempotency, let earlier = try await idempotencyKeys.earlierResource(idempotency, orgId: call.caller.orgId, on: pool) {
            return try await replay(earlier)
        }
        let permitted = try await gate.check(call, recipient: insurer, recipientField: "insurer", recipientKind: .insurer,
                                             patientId: patientId, purpose: .payment, category: .claim, on: pool)
        let dataKey = try documents.keys.unwrap(permitted.wrappedDataKey, patientId: patientId)
        let id = ResourceID.generate("clm")
        let now = Date()
        let submission = try documents.seal(claim.document, key: dataKey, claimId: id, kind: .submitted)
        var event = call.permitted("claim", id, patientId: patientId, reason: "consent")
        event.purpose = .payment
        let stored = StoredClaim(id: id, hospitalOrg: call.caller.orgId, insurerOrg: insurer, patientId: patientId, status: .submitted,
                                 total: claim.total, createdAt: now)
        let written = try await Idempotency.unlessRaced(idempotency) {
            try await pool.withTransaction { transaction -> (queueId: Int64, adjudication: ClaimEvent?) in
                // Read first, under a share lock: the rules cannot be retired until this commits.
                let rules = try await readableRules(insurerOrg: insurer, metrics: call.metrics, on: transaction)
                let queueId = try await store.submit(stored, document: submission, idempotency: idempotency, on: transaction)
                try await audit.record(event, on: transaction)
                // The insurer's rules decide in the same transaction: a matching claim is never
                // seen submitted-but-undecided.
                guard let decided = ClaimAdjudicator.decide(claim, patientId: patientId, rules: rules, rule: \.rule) else { return (queueId, nil) }
                let response = ClaimAdjudicator.response(to: claim, claimId: id, insurerOrg: insurer, ruleId: decided.stored.id,
                                                         ruleHash: decided.stored.hash, rule: decided.rule, at: now)
                let adjudication = try documents.seal(response, key: dataKey, claimId: id, kind: .adjudicated)
                let basis = LedgerBasis(ref: decided.stored.id, hash: decided.stored.hash)
                let adjudicationQueueId = try await ledger.store.enqueue(
                    LedgerItem(type: ClaimEvent.Kind.adjudicated.entryType, actor: insurer, ref: id, hash: adjudication.hash, basis: basis), on: transaction)
                let adjudicated = ClaimEvent(queueId: adjudicationQueueId, claimId: id, kind: .adjudicated, actorOrg: insurer,
                                             sealedDocument: adjudication.sealed, documentHash: adjudication.hash, outcome: "complete",
                                             ruleId: decided.stored.id, ruleHash: decided.stored.hash, createdAt: now)
                try await store.append(adjudicated, status: .adjudicated, on: transaction)
                return (queueId, adjudicated)
            }
        }
        guard let written else {
            guard let idempotency, let earlier = try await idempotencyKeys.earlierResource(idempotency, orgId: call.caller.orgId, on: pool) else {
                throw DomainError.inconsistentStorage
            }
            return try await replay(earlier)
        }
        return Submitted(id: id, status: written.adjudication == nil ? .submitted : .adjudicated, documentHash: submission.hash, total: claim.total,
                         entry: await ledger.sequencedEntry(queueId: written.queueId), adjudication: written.adjudication, createdAt: now)
    }

    /// The claim, its history and its documents (the claim, and the response once adjudicated), to its parties.
    func read(_ id: String, _ call: CallContext) async throws -> (claim: StoredClaim, history: [ClaimEventRow], documents: [Int64: [UInt8]]) {
        let claim = try await party(to: id, call)
        let events = try await store.events(claimId: id, on: pool)
        let opened = try await documents.open(events, on: pool)
        try await audit.record(call.permitted("claim", id, patientId: claim.patientId, reason: "party to the claim"), on: pool)
        return (claim, events, opened)
    }

    /// The hospital withdraws its submitted claim.
    func cancel(_ id: String, reason: String?, idempotency: Idempotency?, _ call: CallContext) async throws -> Changed {
        try await idempotencyKeys.once(idempotency, orgId: call.caller.orgId, on: pool, replay: { try await replay(.cancelled, of: $0) }) {
            try await cancelOnce(id, reason: reason, idempotency: idempotency, call)
        }
    }

    private func cancelOnce(_ id: String, reason: String?, idempotency: Idempotency?, _ call: CallContext) async throws -> Changed {
        let claim = try await party(to: id, call)
        guard claim.hospitalOrg == call.caller.orgId else { throw Denial.notVisible("claim", id) }
        var members: [(key: String, value: JSONValue)] = [
            ("claim", .string(id)), ("cancelledAt", .string(Timestamp.format(Date()))), ("cancelledBy", .string(call.caller.orgId)),
        ]
        if let reason { members.append(("reason", .string(reason))) }
        return try await change(claim, kind: .cancelled, document: .object(members), outcome: nil, idempotency: idempotency, call)
    }

    /// The addressed insurer decides the claim with a FHIR ClaimResponse.
    func adjudicate(_ id: String, response body: JSONValue, idempotency: Idempotency?, _ call: CallContext) async throws -> Changed {
        try await idempotencyKeys.once(idempotency, orgId: call.caller.orgId, on: pool, replay: { try await replay(.adjudicated, of: $0) }) {
            try await adjudicateOnce(id, response: body, idempotency: idempotency, call)
        }
    }

    private func adjudicateOnce(_ id: String, response body: JSONValue, idempotency: Idempotency?, _ call: CallContext) async throws -> Changed {
        let claim = try await party(to: id, call)
        guard claim.insurerOrg == call.caller.orgId else { throw Denial.notVisible("claim", id) }
        // A decided claim is a conflict whatever the response says (checked again under the lock).
        guard claim.status == .submitted else { throw notSubmitted(claim.id, wanted: .adjudicated) }
        let response = try FHIRClaimResponse(body, claimTotal: claim.total)
        return try await change(claim, kind: .adjudicated, document: response.document, outcome: response.outcome, idempotency: idempotency, call)
    }

    /// An insurer's feed (its claims as submitted and cancelled, and its rules' decisions), or a
    /// hospital's (its adjudications), in ledger order, with each event's document; each delivery
    /// is recorded in the audit trail.
    func feed(responses: Bool, _ feed: LedgerFeed, _ call: CallContext) async throws -> (page: LedgerFeed.Page<ClaimEventRow>, documents: [Int64: [UInt8]]) {
        let page = try await feed.poll(ledger, seq: { $0.seq ?? -1 }) { seqs, limit, source in
            responses
                ? try await store.responseFeed(hospitalOrg: call.caller.orgId, seqs: seqs, limit: limit, on: source)
                : try await store.insurerFeed(insurerOrg: call.caller.orgId, seqs: seqs, limit: limit, on: source)
        }
        let opened = try await documents.open(page.shown, on: pool)
        let reason = responses ? "claim responses feed" : "claims feed"
        try await audit.record(call.permitted("claim", reason: reason), forEach: page.shown.map { ($0.event.claimId, $0.patientId) }, on: pool)
        return (page, opened)
    }

    /// Cancellation and adjudication: each only from `submitted`, under a row lock so two changes
    /// cannot both win.
    private func change(_ claim: StoredClaim, kind: ClaimEvent.Kind, document: JSONValue, outcome: String?, idempotency: Idempotency?,
                        _ call: CallContext) async throws -> Changed {
        let key = try await documents.keys.dataKey(of: claim.patientId, on: pool)
        let now = Date()
        let sealed = try documents.seal(document, key: key, claimId: claim.id, kind: kind)
        let status: StoredClaim.Status = kind == .cancelled ? .cancelled : .adjudicated
        let queueId = try await pool.withTransaction { transaction -> Int64 in
            guard try await store.claim(claim.id, lock: true, on: transaction)?.status == .submitted else {
                throw notSubmitted(claim.id, wanted: status)
            }
            let queueId = try await ledger.store.enqueue(LedgerItem(type: kind.entryType, actor: call.caller.orgId, ref: claim.id, hash: sealed.hash),
                                                         on: transaction)
            try await store.append(ClaimEvent(queueId: queueId, claimId: claim.id, kind: kind, actorOrg: call.caller.orgId,
                                              sealedDocument: sealed.sealed, documentHash: sealed.hash, outcome: outcome, createdAt: now),
                                   status: status, on: transaction)
            try await audit.record(call.permitted("claim", claim.id, patientId: claim.patientId, reason: kind.rawValue), on: transaction)
            try await idempotencyKeys.record(idempotency, orgId: call.caller.orgId, resourceId: claim.id, on: transaction)
            return queueId
        }
        return Changed(claimId: claim.id, status: status, outcome: outcome, documentHash: sealed.hash,
                       entry: await ledger.sequencedEntry(queueId: queueId), createdAt: now)
    }

    /// The insurer's active rules that still read as rules, locked shared. A stored rule that no
    /// longer parses (a change to the rule language, a damaged row) decides nothing, and says so:
    /// a log line naming it and `careledger_claim_rules_unreadable_total`.
    private func readableRules(insurerOrg: String, metrics: ServiceMetrics, on transaction: PostgresTransaction) async throws -> [(stored: StoredClaimRule, rule: ClaimRule)] {
        var readable: [(stored: StoredClaimRule, rule: ClaimRule)] = []
        for stored in try await store.activeRules(insurerOrg: insurerOrg, share: true, on: transaction) {
            do {
                readable.append((stored, try ClaimRule(try JSONParser.parse(stored.document))))
            } catch {
                log?.log(.error, "stored claim rule does not parse; it decides nothing", [("ruleId", .string(stored.id)), ("insurer", .string(insurerOrg))])
                metrics.unreadableClaimRule()
            }
        }
        return readable
    }

    /// The claim, if the caller is its hospital or its insurer; everyone else gets what an unknown id gets.
    private func party(to id: String, _ call: CallContext) async throws -> StoredClaim {
        guard let claim = try await store.claim(id, on: pool), claim.hospitalOrg == call.caller.orgId || claim.insurerOrg == call.caller.orgId else {
            throw Denial.notVisible("claim", id)
        }
        return claim
    }

    private func notSubmitted(_ id: String, wanted: StoredClaim.Status) -> Denial {
        Denial.conflict("The claim is no longer submitted; only a submitted claim can be \(wanted.rawValue).", "claim", id)
    }

    /// The answer to a replayed cancellation or adjudication: the change the first request made.
    private func replay(_ kind: ClaimEvent.Kind, of claimId: String) async throws -> Changed {
        let events = try await store.events(claimId: claimId, on: pool)
        guard let change = events.first(where: { $0.event.kind == kind })?.event else { throw DomainError.inconsistentStorage }
        let entry = try await ledger.store.entries(queueIds: [change.queueId], on: pool)[change.queueId]
        return Changed(claimId: claimId, status: kind == .cancelled ? .cancelled : .adjudicated, outcome: change.outcome,
                       documentHash: change.documentHash, entry: entry, createdAt: change.createdAt)
    }

    /// The answer to a replayed submission: what the first request answered, the claim as its
    /// submission left it (decided only by a rule in the same transaction), not as it stands now.
    private func replay(_ id: String) async throws -> Submitted {
        guard let claim = try await store.claim(id, on: pool) else { throw DomainError.inconsistentStorage }
        let events = try await store.events(claimId: id, on: pool)
        guard let submission = events.first(where: { $0.event.kind == .submitted }) else { throw DomainError.inconsistentStorage }
        let entry = try await ledger.store.entries(queueIds: [submission.event.queueId], on: pool)[submission.event.queueId]
        let adjudication = events.first { $0.event.kind == .adjudicated && $0.event.ruleId != nil }
        return Submitted(id: id, status: adjudication == nil ? .submitted : .adjudicated, documentHash: submission.event.documentHash,
                         total: claim.total, entry: entry, adjudication: adjudication?.event, createdAt: claim.createdAt)
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
        for patientId in Set(rows.map { $0.patientId }) {
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
