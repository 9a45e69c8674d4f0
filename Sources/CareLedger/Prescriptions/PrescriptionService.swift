import Crypto
import FoundationEssentials
import Ledger
import Postgres

/// E-prescriptions: a hospital's MedicationRequest is checked against the patient's allergies,
/// prescriptions and fills from every organization before it is accepted; the findings the
/// prescriber saw, the knowledge version and any override are anchored together; pharmacies fill it
/// only as written. Consent decides what the prescriber learns about other organizations' records,
/// never whether the checks see them.
final class PrescriptionService: Sendable {
    /// A prescription or dry run as asked for, checked.
    struct Proposal: Sendable {
        let patientId: String
        let request: FHIRMedicationRequest
        let override: Override?
    }

    /// The prescriber's answer to the findings: a reason, and an acknowledgement of each finding
    /// by id (with an optional note that becomes that finding's mitigation).
    struct Override: Sendable {
        static let minimumReason = 20

        let reason: String
        let acknowledgements: [String: String?]
    }

    /// A finding as the caller is shown it.
    struct Shown: Sendable {
        let id: String
        let finding: Finding
        let redacted: Bool
        /// When this prescriber acknowledged the same finding for this patient before.
        let acknowledgedBefore: (at: Date, prescription: String)?
        let acknowledgementKey: [UInt8]?
        /// The public source the finding rests on, as the knowledge set cites it.
        let citation: String?
        var mitigation: JSONValue? = nil
        var detectedIssue: JSONValue = .null

        /// High, and not acknowledged before: what an override must answer.
        var blocking: Bool { finding.severity == .high && acknowledgedBefore == nil }
    }

    struct Evaluation: Sendable {
        var findings: [Shown]
        let knowledgeVersion: String
        let consultedElsewhere: Int
        let hidden: Int
    }

    struct Created: Sendable {
        let id: String
        /// The findings as answered (`findingsJSON`), kept with the prescription for replays.
        let findings: [UInt8]
        let knowledgeVersion: String
        let decisionHash: String
        let entry: LedgerEntryRow?
        let createdAt: Date
    }

    /// A prescription with what its reader may see of it.
    struct Read: Sendable {
        let prescription: StoredPrescription
        let request: [UInt8]
        let findings: [UInt8]?
        let fills: [StoredDispense]
    }

    struct Filled: Sendable {
        let prescriptionId: String
        let fill: Int
        let fillsRemaining: Int
        let documentHash: String
        let entry: LedgerEntryRow?
        let createdAt: Date
    }

    let pool: PostgresPool
    let ledger: LedgerService
    let keys: PatientKeys
    let settings: SafetyChecks.Settings
    let knowledgeStore: MedicationKnowledgeStore
    let store = PrescriptionStore()
    let parsedRecords: ParsedRecords
    let patients = PatientStore()
    let consents = ConsentStore()
    let identity = IdentityStore()
    let idempotencyKeys = IdempotencyStore()
    /// Prescriptions accepted together are written together: one statement, one commit.
    private let creates: WriteCoalescer<PrescriptionStore.Create, Int64>
    /// A dry run writes only its audit event; dry runs that arrive together write theirs together.
    private let checkAudits: WriteCoalescer<AuditEvent, Bool>
    /// Records the dispensing of the packs a fill names.
    private let supply: SupplyService

    init(pool: PostgresPool, ledger: LedgerService, keys: PatientKeys, knowledge: MedicationKnowledgeStore, settings: SafetyChecks.Settings) {
        self.pool = pool
        self.ledger = ledger
        self.keys = keys
        knowledgeStore = knowledge
        self.settings = settings
        parsedRecords = ParsedRecords()
        supply = SupplyService(pool: pool, ledger: ledger)
        let store = store
        let unavailable: @Sendable (any Error) -> Bool = { ($0 as? PostgresError)?.isUnavailable == true }
        creates = WriteCoalescer(failsEveryone: unavailable) { batch in
            try await store.create(batch, on: pool)
        }
        checkAudits = WriteCoalescer(failsEveryone: unavailable) { events in
            try await AuditStore().record(events, on: pool)
            return events.map { _ in true }
        }
    }

    // MARK: Checking and prescribing

    /// The dry run: the same checks, nothing stored but the audit event.
    func check(_ proposal: Proposal, _ call: CallContext) async throws -> Evaluation {
        let access = try await PatientAccess.open(proposal.patientId, call, keys: keys, on: pool)
        let now = Date()
        var evaluation = try await evaluate(proposal, prescriptionId: nil, access, call, at: now)
        issue(&evaluation, proposal, prescriptionId: nil, status: "preliminary", at: now)
        _ = try await checkAudits.submit(checkEvent(call, proposal.patientId, nil, evaluation, access))
        call.metrics.prescribing.checked(patientId: proposal.patientId, prescriber: proposal.request.prescriber,
                                         requestHash: JCS.documentHash(proposal.request.document), findings: Self.counted(evaluation), at: now)
        return evaluation
    }

    func prescribe(_ proposal: Proposal, idempotency: Idempotency?, _ call: CallContext) async throws -> Created {
        if let idempotency, let earlier = try await idempotencyKeys.earlierResource(idempotency, orgId: call.caller.orgId, on: pool) {
            return try await replay(earlier, call)
        }
        let access = try await PatientAccess.open(proposal.patientId, call, keys: keys, on: pool)
        let dispenser = try await dispenser(named: proposal.request.performer)
        let id = ResourceID.generate("rx")
        let now = Date()
        var evaluation = try await evaluate(proposal, prescriptionId: id, access, call, at: now)
        let canonicalRequest = JCS.canonicalize(proposal.request.document)
        let requestHash = "sha256:" + SHA256.hexDigest(canonicalRequest)
        let acknowledged = try apply(proposal.override, to: &evaluation, prescriber: proposal.request, at: now)
        issue(&evaluation, proposal, prescriptionId: id, status: "final", at: now)
        let unanswered = evaluation.findings.filter { $0.blocking && $0.mitigation == nil }
        guard unanswered.isEmpty else {
            try await AuditStore().record(checkEvent(call, proposal.patientId, nil, evaluation, access, refused: true), on: pool)
            call.metrics.prescribing.checked(patientId: proposal.patientId, prescriber: proposal.request.prescriber, requestHash: requestHash,
                                             findings: Self.counted(evaluation), at: now)
            throw SafetyCheckRefusal(error: .safetyCheckFailed(unacknowledged: unanswered.count), findings: evaluation.findings)
        }
        let decision = decisionRecord(id, proposal, evaluation, call, at: now)
        let decisionHash = "sha256:" + SHA256.hexDigest(decision)
        let answer = Self.findingsJSON(evaluation.findings)
        var stored = StoredPrescription(
            id: id, patientId: proposal.patientId, prescriberOrg: call.caller.orgId, prescriber: proposal.request.prescriber, dispenser: dispenser,
            active: proposal.request.active, fillsAllowed: proposal.request.fillsAllowed, fills: 0, fillQuantity: proposal.request.fillQuantity,
            validFrom: proposal.request.validFrom, validUntil: proposal.request.validUntil,
            sealedDocument: try AESGCM.seal(canonicalRequest, key: access.dataKey, authenticating: PrescriptionSeal.request(id)),
            sealedDecision: try AESGCM.seal(decision, key: access.dataKey, authenticating: PrescriptionSeal.decision(id)),
            decisionHash: decisionHash, knowledgeVersion: evaluation.knowledgeVersion, queueId: 0, createdAt: now)
        stored.sealedAnswer = try AESGCM.seal(answer, key: access.dataKey, authenticating: PrescriptionSeal.answer(id))
        let event = checkEvent(call, proposal.patientId, id, evaluation, access)
        guard let queueId = try await Idempotency.unlessRaced(idempotency, {
            try await creates.submit(PrescriptionStore.Create(prescription: stored, acknowledgements: acknowledged, event: event, idempotency: idempotency))
        }) else {
            guard let idempotency, let earlier = try await idempotencyKeys.earlierResource(idempotency, orgId: call.caller.orgId, on: pool) else {
                throw DomainError.inconsistentStorage
            }
            return try await replay(earlier, call)
        }
        // Kept as a stored record is: without its document tree.
        if let kept = try? FHIRMedicationRequest(proposal.request.document, callerOrg: call.caller.orgId, keepingDocument: false) {
            parsedRecords.remember(kept, for: id)
        }
        call.metrics.prescribing.prescribed(patientId: proposal.patientId, prescriber: proposal.request.prescriber, requestHash: requestHash,
                                            findings: Self.counted(evaluation),
                                            overridden: evaluation.findings.contains { $0.mitigation != nil && $0.acknowledgedBefore == nil }, at: now)
        return Created(id: id, findings: answer, knowledgeVersion: evaluation.knowledgeVersion, decisionHash: decisionHash,
                       entry: await ledger.sequencedEntry(queueId: queueId), createdAt: now)
    }

    /// Findings as the answers carry them: the finding's id, code and severity, whether it blocks,
    /// whether it was acknowledged before or is shown without its details, and the DetectedIssue.
    static func findingsJSON(_ findings: [Shown]) -> [UInt8] {
        JCS.canonicalize(.array(findings.map { shown in
            .object([
                ("id", .string(shown.id)),
                ("code", .string(shown.finding.code.rawValue)),
                ("severity", .string(shown.finding.severity.rawValue)),
                ("blocking", .bool(shown.blocking)),
                ("redacted", .bool(shown.redacted)),
                ("acknowledged", shown.acknowledgedBefore.map { .object([("at", .string(Timestamp.format($0.at))), ("prescription", .string($0.prescription))]) } ?? .null),
                ("detectedIssue", shown.detectedIssue),
            ])
        }))
    }

    /// Runs the checks over all of the patient's records, then shapes each finding for the caller:
    /// details of another organization's record only where consent (or the glass) lets the caller see it.
    func evaluate(_ proposal: Proposal, prescriptionId: String?, _ access: PatientAccess, _ call: CallContext, at now: Date) async throws -> Evaluation {
        // What a check reads, in one statement; the documents only for records not read before
        // (they never change: see ParsedRecords).
        async let loadedKnowledge = knowledgeStore.knowledge(on: pool)
        let inputs = try await store.checkInputs(patientId: proposal.patientId, prescriber: proposal.request.prescriber, on: pool)
        let knowledge = try await loadedKnowledge
        let stored = inputs.prescriptions, recordedAllergies = inputs.allergies
        async let parsedRequests = parsedRecords.requests(stored.map { ($0.id, $0.prescriberOrg) }, key: access.dataKey, on: pool)
        async let parsedAllergies = parsedRecords.allergies(recordedAllergies.map { $0.id }, key: access.dataKey, on: pool)
        let requests = try await parsedRequests, allergyDocuments = try await parsedAllergies
        var fillsOf: [String: [(pharmacy: String, at: Date)]] = [:]
        for fill in inputs.fills { fillsOf[fill.prescriptionId, default: []].append((fill.pharmacy, fill.at)) }
        var others: [MedicationOrder] = []
        for prescription in stored {
            guard let request = requests[prescription.id] else { throw DomainError.inconsistentStorage }
            others.append(MedicationOrder(id: prescription.id, org: prescription.prescriberOrg, prescriber: prescription.prescriber,
                                          createdAt: prescription.createdAt, request: request, cancelled: prescription.cancelled,
                                          fills: fillsOf[prescription.id] ?? []))
        }
        var allergies: [RecordedAllergy] = []
        for allergy in recordedAllergies {
            guard let parsed = allergyDocuments[allergy.id] else { throw DomainError.inconsistentStorage }
            allergies.append(RecordedAllergy(id: allergy.id, org: allergy.recordedBy, allergy: parsed))
        }
        let order = MedicationOrder(id: prescriptionId, org: call.caller.orgId, prescriber: proposal.request.prescriber, createdAt: now,
                                    request: proposal.request, cancelled: false, fills: [])
        let findings = SafetyChecks(knowledge: knowledge, settings: settings).run(order, others: others, allergies: allergies, at: now)
        let earlier = inputs.acknowledgements
        let elsewhere = others.filter { $0.org != call.caller.orgId }.count + allergies.filter { $0.org != call.caller.orgId }.count
        var shown: [Shown] = []
        var hidden = 0
        for finding in findings {
            let redacted = finding.records.contains { !access.canSee(org: $0.org, call) }
            if redacted { hidden += 1 }
            let key = finding.acknowledgementKey.map {
                keys.blindIndex(system: "careledger:acknowledgement:\(proposal.patientId):\(proposal.request.prescriber)", value: $0)
            }
            let id = "fnd-" + String(SHA256.hexDigest(Array("\(proposal.patientId)|\(finding.identity)".utf8)).prefix(24))
            var item = Shown(id: id, finding: finding, redacted: redacted, acknowledgedBefore: key.flatMap { earlier[$0] }, acknowledgementKey: key,
                             citation: finding.source.flatMap { knowledge.citations[$0] })
            if let before = item.acknowledgedBefore {
                item.mitigation = .array([.object([
                    ("action", .object([("text", .string("Acknowledged by this prescriber for this patient with prescription \(before.prescription)."))])),
                    ("date", .string(Timestamp.format(before.at))),
                ])])
            }
            shown.append(item)
        }
        return Evaluation(findings: shown, knowledgeVersion: knowledge.version, consultedElsewhere: elsewhere, hidden: hidden)
    }

    /// Each finding as its FHIR DetectedIssue, once its mitigation (if any) is known.
    private func issue(_ evaluation: inout Evaluation, _ proposal: Proposal, prescriptionId: String?, status: String, at now: Date) {
        for index in evaluation.findings.indices {
            evaluation.findings[index].detectedIssue = DetectedIssues.resource(
                evaluation.findings[index], patientId: proposal.patientId, prescriptionId: prescriptionId, request: proposal.request,
                knowledgeVersion: evaluation.knowledgeVersion, status: status, at: now)
        }
    }

    /// Applies the override to the findings (each acknowledged one gets its mitigation) and returns
    /// the acknowledgement keys to store. An override must give a reason and may acknowledge only
    /// findings that were raised.
    private func apply(_ override: Override?, to evaluation: inout Evaluation, prescriber request: FHIRMedicationRequest, at now: Date) throws -> [[UInt8]] {
        guard let override else { return [] }
        guard override.reason.trimmingWhitespace().count >= Override.minimumReason else {
            throw DomainError.invalid("'override.reason' must say why, in at least \(Override.minimumReason) characters.")
        }
        let known = Set(evaluation.findings.map { $0.id })
        if let unknown = override.acknowledgements.keys.sorted().first(where: { !known.contains($0) }) {
            throw DomainError.invalid("'override.acknowledgements' names \(unknown), which is not a finding of this prescription; run the check again.")
        }
        var keys: [[UInt8]] = []
        for index in evaluation.findings.indices {
            let finding = evaluation.findings[index]
            guard let note = override.acknowledgements[finding.id] else { continue }
            evaluation.findings[index].mitigation = .array([.object([
                ("action", .object([("text", .string("Override: " + (note ?? override.reason)))])),
                ("date", .string(Timestamp.format(now))),
                ("author", DetectedIssues.prescriberReference(request)),
            ])])
            if let key = finding.acknowledgementKey { keys.append(key) }
        }
        return keys
    }

    /// The decision record anchored as `prescription.created`: what was prescribed, what the
    /// prescriber was shown, against which knowledge, and what they answered.
    private func decisionRecord(_ id: String, _ proposal: Proposal, _ evaluation: Evaluation, _ call: CallContext, at now: Date) -> [UInt8] {
        var override: JSONValue = .null
        if let given = proposal.override {
            override = .object([
                ("reason", .string(given.reason)),
                ("acknowledged", .array(given.acknowledgements.keys.sorted().map(JSONValue.string))),
            ])
        }
        return JCS.canonicalize(.object([
            ("prescription", .string(id)),
            ("patient", .string(proposal.patientId)),
            ("prescriberOrg", .string(call.caller.orgId)),
            ("prescriber", .string(proposal.request.prescriber)),
            ("medicationRequest", proposal.request.document),
            ("findings", .array(evaluation.findings.map { $0.detectedIssue })),
            ("knowledgeVersion", .string(evaluation.knowledgeVersion)),
            ("override", override),
            ("decidedAt", .string(Timestamp.format(now))),
        ]))
    }

    /// The pharmacy a prescription names: one of ours (it must be an active pharmacy), or the
    /// performer as written, which no pharmacy of ours matches; nil when it names none.
    private func dispenser(named performer: FHIRReference?) async throws -> String? {
        guard let performer else { return nil }
        guard let orgId = performer.organizationId else {
            return "unresolved:" + (performer.reference ?? performer.identifier.map { "\($0.system)|\($0.value)" } ?? performer.display ?? "")
        }
        guard let organization = try await identity.organization(orgId, on: pool), organization.kind == OrganizationKind.pharmacy.rawValue,
              organization.status == "active" else {
            throw DomainError.invalidResource("medicationRequest.dispenseRequest.performer", "names no active pharmacy")
        }
        return orgId
    }

    private func checkEvent(_ call: CallContext, _ patientId: String, _ prescriptionId: String?, _ evaluation: Evaluation, _ access: PatientAccess,
                            refused: Bool = false) -> AuditEvent {
        var reason = "safety check: \(evaluation.findings.count) finding(s); consulted \(evaluation.consultedElsewhere) record(s) of other organizations"
        if evaluation.hidden > 0 { reason += ", \(evaluation.hidden) finding(s) shown without their details (no consent)" }
        if access.breakGlass { reason += "; break-the-glass" }
        if refused { reason += "; refused: unanswered high findings" }
        return call.permitted("prescription", prescriptionId, patientId: patientId, reason: reason)
    }

    private static func counted(_ evaluation: Evaluation) -> [(code: String, severity: String)] {
        evaluation.findings.map { ($0.finding.code.rawValue, $0.finding.severity.rawValue) }
    }

    /// What the first request answered: the findings as they were shown then, not a new check.
    private func replay(_ id: String, _ call: CallContext) async throws -> Created {
        guard let prescription = try await store.prescription(id, on: pool) else { throw DomainError.inconsistentStorage }
        let entry = try await ledger.store.entries(queueIds: [prescription.queueId], on: pool)[prescription.queueId]
        let dataKey = try await keys.dataKey(of: prescription.patientId, on: pool)
        let findings: [UInt8]
        if let sealed = try await store.sealedAnswer(of: id, on: pool) {
            findings = try AESGCM.open(sealed, key: dataKey, authenticating: PrescriptionSeal.answer(id))
        } else {
            // Written before answers were kept: the decision record's DetectedIssues, in the answer's
            // shape, without what the record does not keep (shown redacted, acknowledged before).
            let decision = try JSONParser.parse(try AESGCM.open(prescription.sealedDecision, key: dataKey, authenticating: PrescriptionSeal.decision(id)))
            guard case .array(let issues) = decision["findings"] ?? .array([]) else { throw DomainError.inconsistentStorage }
            findings = JCS.canonicalize(.array(issues.map { issue in
                let severity = issue["severity"]?.stringValue ?? ""
                var code: JSONValue = .null
                if case .array(let codings) = issue["code"]?["coding"], let first = codings.first { code = first["code"] ?? .null }
                return .object([
                    ("id", issue["id"] ?? .null), ("code", code), ("severity", .string(severity)),
                    ("blocking", .bool(severity == "high")), ("redacted", .bool(false)), ("acknowledged", .null), ("detectedIssue", issue),
                ])
            }))
        }
        return Created(id: id, findings: findings, knowledgeVersion: prescription.knowledgeVersion, decisionHash: prescription.decisionHash, entry: entry,
                       createdAt: prescription.createdAt)
    }

    /// The patient an identifier belongs to (CDS Hooks finds its patient this way).
    func patient(system: String, value: String) async throws -> String? {
        try await patients.patient(byIndex: keys.blindIndex(system: system, value: value), on: pool)
    }

    // MARK: Reading

    /// The prescription, to its prescribing organization, the patient, the pharmacy it names and
    /// the pharmacies that filled it; findings only to the first two.
    func read(_ id: String, _ call: CallContext) async throws -> Read {
        let (prescription, fills) = try await party(to: id, call)
        let dataKey = try await keys.dataKey(of: prescription.patientId, on: pool)
        let request = try AESGCM.open(prescription.sealedDocument, key: dataKey, authenticating: PrescriptionSeal.request(id))
        var findings: [UInt8]?
        if prescription.prescriberOrg == call.caller.orgId || call.caller.patientId == prescription.patientId {
            let decision = try JSONParser.parse(try AESGCM.open(prescription.sealedDecision, key: dataKey, authenticating: PrescriptionSeal.decision(id)))
            findings = JCS.canonicalize(decision["findings"] ?? .array([]))
        }
        try await AuditStore().record(call.permitted("prescription", id, patientId: prescription.patientId, reason: "party to the prescription"), on: pool)
        return Read(prescription: prescription, request: request, findings: findings, fills: fills)
    }

    /// Receipts of the prescription's entries: its creation, each fill, its cancellation.
    func proof(_ id: String, _ call: CallContext) async throws -> [Receipt] {
        let (prescription, fills) = try await party(to: id, call)
        let queueIds = [prescription.queueId] + fills.map { $0.queueId } + (prescription.cancelQueueId.map { [$0] } ?? [])
        guard let receipts = try await ledger.receipts(queueIds: queueIds) else {
            throw DomainError.notYetSigned("The prescription is not in a signed tree head yet; retry shortly.")
        }
        try await AuditStore().record(call.permitted("prescription", id, patientId: prescription.patientId, reason: "proof"), on: pool)
        return receipts
    }

    /// A patient's medications as `call` may see them: its own organization's prescriptions and
    /// fills, those the patient's consent covers, all of them to the patient or under break-the-glass.
    func medications(of patientId: String, _ call: CallContext) async throws -> [Read] {
        let access = try await PatientAccess.open(patientId, call, keys: keys, on: pool, allowingRelationship: true)
        let stored = try await store.prescriptions(patientId: patientId, on: pool)
        let fills = try await store.dispenses(prescriptionIds: stored.map { $0.id }, on: pool)
        var reads: [Read] = []
        for prescription in stored {
            let own = fills.filter { $0.prescriptionId == prescription.id }
            let visible = access.canSee(org: prescription.prescriberOrg, call) || own.contains { $0.pharmacyOrg == call.caller.orgId }
            guard visible else { continue }
            let request = try AESGCM.open(prescription.sealedDocument, key: access.dataKey, authenticating: PrescriptionSeal.request(prescription.id))
            reads.append(Read(prescription: prescription, request: request, findings: nil, fills: own))
        }
        try await AuditStore().record(call.permitted("medication-list", patientId, patientId: patientId,
                                                     reason: access.breakGlass ? "break-the-glass" : access.reason), on: pool)
        return reads
    }

    // MARK: Cancelling and filling

    func cancel(_ id: String, reason: String?, _ call: CallContext) async throws -> (cancelledAt: Date, entry: LedgerEntryRow?) {
        guard let prescription = try await store.prescription(id, on: pool), prescription.prescriberOrg == call.caller.orgId else {
            throw Denial.notVisible("prescription", id)
        }
        let dataKey = try await keys.dataKey(of: prescription.patientId, on: pool)
        let now = Date()
        var members: [(key: String, value: JSONValue)] = [
            ("prescription", .string(id)), ("cancelledAt", .string(Timestamp.format(now))), ("cancelledBy", .string(call.caller.orgId)),
        ]
        if let reason { members.append(("reason", .string(reason))) }
        let document = JCS.canonicalize(.object(members))
        let sealed = try AESGCM.seal(document, key: dataKey, authenticating: PrescriptionSeal.cancellation(id))
        let hash = "sha256:" + SHA256.hexDigest(document)
        let event = call.permitted("prescription", id, patientId: prescription.patientId, reason: "cancelled")
        let queueId = try await pool.withTransaction { transaction -> Int64 in
            guard try await store.prescription(id, lock: true, on: transaction)?.cancelledAt == nil else {
                throw Denial(error: .prescription(.cancelled), reason: "already cancelled", resourceType: "prescription", resourceId: id,
                             patientId: prescription.patientId)
            }
            return try await store.cancel(id, at: now, sealed: sealed, hash: hash, actor: call.caller.orgId, event: event, on: transaction)
        }
        return (now, await ledger.sequencedEntry(queueId: queueId))
    }

    /// A pharmacy fills the prescription: only as written (fills, quantity, validity, the named
    /// pharmacy), one fill at a time under the prescription's row lock, anchored.
    func dispense(_ id: String, _ dispense: FHIRMedicationDispense, patientIdentifier: FHIRReference.Identifier?, idempotency: Idempotency?,
                  _ call: CallContext) async throws -> Filled {
        if let idempotency, let earlier = try await idempotencyKeys.earlierResource(idempotency, orgId: call.caller.orgId, on: pool) {
            return try await replayFill(earlier)
        }
        guard let prescription = try await store.prescription(id, on: pool) else { throw Denial.notVisible("prescription", id) }
        func refuse(_ refusal: DomainError.PrescriptionRefusal, _ reason: String) -> Denial {
            Denial(error: .prescription(refusal), reason: reason, resourceType: "prescription", resourceId: id, patientId: prescription.patientId)
        }
        if let dispenser = prescription.dispenser {
            guard dispenser == call.caller.orgId else { throw refuse(.pharmacyNotNamed, "fill by a pharmacy the prescription does not name") }
        } else {
            guard let patientIdentifier,
                  try await patients.patient(byIndex: keys.blindIndex(system: patientIdentifier.system, value: patientIdentifier.value), on: pool)
                      == prescription.patientId else {
                throw Denial.notVisible("prescription", id, reason: "fill without a matching patient identifier")
            }
        }
        let dataKey = try await keys.dataKey(of: prescription.patientId, on: pool)
        let now = Date()
        let canonical = JCS.canonicalize(dispense.document)
        let hash = "sha256:" + SHA256.hexDigest(canonical)
        let event = call.permitted("prescription", id, patientId: prescription.patientId, reason: "dispensed")
        let written = try await Idempotency.unlessRaced(idempotency) {
            try await pool.withTransaction { transaction -> (queueId: Int64, fill: Int, allowed: Int) in
                guard let current = try await store.prescription(id, lock: true, on: transaction) else { throw DomainError.inconsistentStorage }
                if current.cancelledAt != nil { throw refuse(.cancelled, "fill after cancel") }
                if !current.active { throw refuse(.notActive, "fill of an inactive prescription") }
                if let from = current.validFrom, now < from { throw refuse(.notYetValid, "fill before the validity period") }
                if let until = current.validUntil, now > until { throw refuse(.expired, "fill after the validity period") }
                guard current.fills < current.fillsAllowed else { throw refuse(.noFillsLeft, "fill beyond the fills allowed") }
                if let limit = current.fillQuantity {
                    if let written = limit.unit, let given = dispense.quantity.unit, written.lowercased() != given.lowercased() {
                        throw refuse(.quantityUnitMismatch, "fill in another unit")
                    }
                    guard dispense.quantity.value <= limit.value else { throw refuse(.quantityExceeded, "fill over the quantity allowed") }
                }
                let fill = current.fills + 1
                let sealed = try AESGCM.seal(canonical, key: dataKey, authenticating: PrescriptionSeal.dispense(id, fill: fill))
                let row = StoredDispense(queueId: 0, prescriptionId: id, fillNumber: fill, pharmacyOrg: call.caller.orgId, patientId: current.patientId,
                                         quantity: dispense.quantity.value, sealedDocument: sealed, documentHash: hash, createdAt: now)
                let queueId = try await store.dispense(row, actor: call.caller.orgId, event: event, idempotency: idempotency, on: transaction)
                try await supply.recordDispense(of: dispense.packs, prescriptionId: id, fill: fill, at: now, call,
                                                                                   on: transaction)
                return (queueId, fill, current.fillsAllowed)
            }
        }
        guard let written else {
            guard let idempotency, let earlier = try await idempotencyKeys.earlierResource(idempotency, orgId: call.caller.orgId, on: pool) else {
                throw DomainError.inconsistentStorage
            }
            return try await replayFill(earlier)
        }
        return Filled(prescriptionId: id, fill: written.fill, fillsRemaining: written.allowed - written.fill, documentHash: hash,
                      entry: await ledger.sequencedEntry(queueId: written.queueId), createdAt: now)
    }

    private func replayFill(_ resource: String) async throws -> Filled {
        let parts = resource.split(separator: "#")
        guard parts.count == 2, let fill = Int(parts[1]),
              let row = try await store.dispense(prescriptionId: String(parts[0]), fill: fill, on: pool),
              let prescription = try await store.prescription(row.prescriptionId, on: pool) else { throw DomainError.inconsistentStorage }
        let entry = try await ledger.store.entries(queueIds: [row.queueId], on: pool)[row.queueId]
        return Filled(prescriptionId: row.prescriptionId, fill: fill, fillsRemaining: max(0, prescription.fillsAllowed - fill), documentHash: row.documentHash,
                      entry: entry, createdAt: row.createdAt)
    }

    /// The prescription and its fills, if the caller is a party to it; everyone else gets what an unknown id gets.
    private func party(to id: String, _ call: CallContext) async throws -> (StoredPrescription, [StoredDispense]) {
        guard let prescription = try await store.prescription(id, on: pool) else { throw Denial.notVisible("prescription", id) }
        let fills = try await store.dispenses(prescriptionIds: [id], on: pool)
        let party = prescription.prescriberOrg == call.caller.orgId && call.caller.role != .patient
            || call.caller.patientId == prescription.patientId
            || (call.caller.role == .pharmacy && (prescription.dispenser == call.caller.orgId || fills.contains { $0.pharmacyOrg == call.caller.orgId }))
        guard party else { throw Denial.notVisible("prescription", id) }
        return (prescription, fills)
    }
}

/// The refusal of a prescription with unanswered high findings: the error, and the findings the
/// answer carries.
struct SafetyCheckRefusal: Error {
    let error: DomainError
    let findings: [PrescriptionService.Shown]
}

/// How the caller reaches a patient's medication record (or telemetry): as the patient, as a custodian, under the
/// patient's consent for the purpose and the medication category, or by breaking the glass. The
/// patient's data key is unwrapped once for the whole request.
struct PatientAccess: Sendable {
    let patientId: String
    let dataKey: [UInt8]
    let rules: [ConsentRule]
    let breakGlass: Bool
    let reason: String
    /// The kind of record the access is for, which the patient's consent must cover.
    let category: DataCategory

    /// Unknown patients, and patients the caller has no way to reach, answer as unknown (404);
    /// erased ones 410. `allowingRelationship` also admits a caller whose only link is a record of
    /// its own (a pharmacy that filled a prescription), for reading its own records.
    static func open(_ patientId: String, _ call: CallContext, keys: PatientKeys, on pool: PostgresPool,
                     allowingRelationship: Bool = false, category: DataCategory = .medication) async throws -> PatientAccess {
        if call.caller.role == .patient, call.caller.patientId != patientId { throw Denial.notVisible("patient", patientId) }
        let facts = try await ConsentStore().disclosureFacts(recipient: call.caller.orgId, sender: call.caller.orgId, patientId: patientId, on: pool)
        guard facts.patientExists else { throw Denial.notVisible("patient", patientId) }
        // Declared even by a custodian: it then also opens the other organizations' records.
        let breakGlass = try BreakTheGlass.applies(to: call)
        let reason: String
        if call.caller.role == .patient {
            reason = "own record"
        } else if breakGlass {
            reason = "break-the-glass"
            call.metrics.brokeTheGlass()
        } else if facts.senderIsCustodian {
            reason = "custodian"
        } else if let consent = permission(call, patientId, facts.rules, category) {
            reason = "consent \(consent)"
        } else if allowingRelationship, call.caller.role == .pharmacy {
            reason = "own fills"
        } else {
            throw Denial.notVisible("patient", patientId)
        }
        guard let wrapped = facts.wrappedDataKey else { throw DomainError.erased }
        return PatientAccess(patientId: patientId, dataKey: try keys.unwrap(wrapped, patientId: patientId), rules: facts.rules, breakGlass: breakGlass,
                             reason: reason, category: category)
    }

    /// Whether the caller may see the details of a record `org` made: its own, the patient's own
    /// key, the glass broken, or the patient's consent for the purpose and the medication category.
    func canSee(org: String, _ call: CallContext) -> Bool {
        org == call.caller.orgId && call.caller.role != .patient || call.caller.role == .patient || breakGlass
            || Self.permission(call, patientId, rules, category) != nil
    }

    /// The consent that lets the caller's organization read the patient's records of the category for the purpose, if one does.
    private static func permission(_ call: CallContext, _ patientId: String, _ rules: [ConsentRule], _ category: DataCategory) -> String? {
        let decision = ConsentPolicy.decide(ConsentRequest(actorOrg: call.caller.orgId, actorKind: call.caller.orgKind, patientId: patientId,
                                                           purpose: call.effectivePurpose, category: category, time: Date()), consents: rules)
        return decision.permitted ? (decision.consentId ?? "") : nil
    }
}
