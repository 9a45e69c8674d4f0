import Crypto
import FoundationEssentials
import Ledger
import Postgres

/// Consents: a patient manages its own with its `patient` key; a custodian hospital records them on
/// the patient's behalf and must attach the hash of the signed consent form. Grants and revocations
/// are anchored in the ledger in the same transaction, and take effect from the very next request
/// (no cache).
struct ConsentService: Sendable {
    /// What a consent is recorded from: a FHIR R4 Consent (its own evidence), or CareLedger's shape.
    enum Input: Sendable {
        case fhir(JSONValue)
        case native(ConsentBody)
    }

    let pool: PostgresPool
    let ledger: LedgerService
    let store = ConsentStore()
    let patients = PatientStore()
    let audit = AuditStore()
    let idempotencyKeys = IdempotencyStore()

    /// A grant's answer: the consent, its anchored document's hash and, once sequenced, its entry.
    struct Granted: Sendable {
        let id: String
        let documentHash: String
        let entry: LedgerEntryRow?
    }

    /// Records a consent; returns it with its anchored document's hash and, once sequenced, its entry.
    func grant(patientId: String, _ input: Input, idempotency: Idempotency?, _ call: CallContext) async throws -> Granted {
        try await idempotencyKeys.once(idempotency, orgId: call.caller.orgId, on: pool, replay: replay) {
            try await grantOnce(patientId: patientId, input, idempotency: idempotency, call)
        }
    }

    private func grantOnce(patientId: String, _ input: Input, idempotency: Idempotency?, _ call: CallContext) async throws -> Granted {
        try await requireStanding(call, patientId: patientId, on: pool)
        let id = ResourceID.generate("con")
        let rule: ConsentRule
        var evidenceHash: String?
        switch input {
        case .fhir(let resource):
            // A FHIR Consent is its own evidence: its canonical hash is recorded as such.
            let mapped = try FHIRConsent(resource).rule
            rule = ConsentRule(id: id, patientId: patientId, grantee: mapped.0, purposes: mapped.1, categories: mapped.2,
                               coversAllCategories: mapped.3, start: mapped.4, end: mapped.5, provision: mapped.6)
            evidenceHash = JCS.documentHash(resource)
        case .native(let body):
            rule = try body.rule(id: id, patientId: patientId)
            if call.caller.role != .patient, body.evidenceHash == nil {
                throw DomainError.invalid("A consent recorded on the patient's behalf needs 'evidenceHash', the hash of the signed consent form.")
            }
            if let evidence = body.evidenceHash, !DocumentHash.isValid(evidence) {
                throw DomainError.invalid("'evidenceHash' must be sha256: followed by 64 lowercase hex digits.")
            }
            evidenceHash = body.evidenceHash
        }
        let now = Date()
        let document = ConsentDocument.grant(rule, evidenceHash: evidenceHash, recordedBy: call.caller.orgId, at: now)
        let hash = "sha256:" + SHA256.hexDigest(document)
        let queueId = try await pool.withTransaction { transaction in
            let queueId = try await ledger.store.enqueue(LedgerItem(type: "consent.granted", actor: call.caller.orgId, ref: id, hash: hash), on: transaction)
            try await store.insert(rule, evidenceHash: evidenceHash, recordedBy: call.caller.orgId, createdAt: now, document: document,
                                   queueId: queueId, on: transaction)
            try await audit.record(call.permitted("consent", id, patientId: patientId, reason: "\(rule.provision.rawValue) recorded"), on: transaction)
            try await idempotencyKeys.record(idempotency, orgId: call.caller.orgId, resourceId: id, on: transaction)
            return queueId
        }
        return Granted(id: id, documentHash: hash, entry: await ledger.sequencedEntry(queueId: queueId))
    }

    /// The answer to a repeated grant: the consent the first one recorded.
    private func replay(_ consentId: String) async throws -> Granted {
        guard let consent = try await store.consent(consentId, on: pool) else { throw DomainError.inconsistentStorage }
        let entry = try await ledger.store.entries(queueIds: [consent.queueId], on: pool)[consent.queueId]
        return Granted(id: consentId, documentHash: "sha256:" + SHA256.hexDigest(consent.document), entry: entry)
    }

    func consents(patientId: String, _ pagination: Pagination, _ call: CallContext) async throws -> [StoredConsent] {
        try await requireStanding(call, patientId: patientId, on: pool)
        let consents = try await store.consents(patientId: patientId, after: pagination.after, limit: pagination.limit + 1, on: pool)
        try await audit.record(call.permitted("consent", patientId: patientId, reason: "listed"), on: pool)
        return consents
    }

    /// Revokes the consent (a no-op when revoked already) and returns it as it now stands.
    func revoke(_ consentId: String, _ call: CallContext) async throws -> StoredConsent {
        try await pool.withTransaction { transaction in
            guard let consent = try await store.consent(consentId, on: transaction) else {
                throw Denial.notVisible("consent", consentId, reason: "no such consent")
            }
            try await requireStanding(call, patientId: consent.rule.patientId, on: transaction)
            guard consent.revokedAt == nil else { return consent }
            let now = Date()
            let revocation = ConsentDocument.revocation(consentId, by: call.caller.orgId, at: now)
            let queueId = try await ledger.store.enqueue(LedgerItem(
                type: "consent.revoked", actor: call.caller.orgId, ref: consentId, hash: "sha256:" + SHA256.hexDigest(revocation)), on: transaction)
            try await store.revoke(consentId, at: now, revocation: revocation, queueId: queueId, on: transaction)
            try await audit.record(call.permitted("consent", consentId, patientId: consent.rule.patientId, reason: "revoked"), on: transaction)
            return try await store.consent(consentId, on: transaction) ?? consent
        }
    }

    /// The caller may act on this patient's consents: the patient itself, or a custodian. Anyone
    /// else gets what a patient that does not exist gets.
    private func requireStanding(_ call: CallContext, patientId: String, on runner: some QueryRunner) async throws {
        if call.caller.role == .patient {
            guard call.caller.patientId == patientId, try await patients.patient(patientId, on: runner) != nil else {
                throw Denial.notVisible("patient", patientId)
            }
            return
        }
        guard try await patients.isCustodian(orgId: call.caller.orgId, patientId: patientId, on: runner) else {
            throw Denial.notVisible("patient", patientId)
        }
    }
}

/// The canonical documents whose hashes the ledger carries for consents.
enum ConsentDocument {
    static func grant(_ rule: ConsentRule, evidenceHash: String?, recordedBy: String, at time: Date) -> [UInt8] {
        var grantee: [(key: String, value: JSONValue)] = []
        switch rule.grantee {
        case .organization(let id): grantee = [("orgId", .string(id))]
        case .kind(let kind): grantee = [("orgKind", .string(kind.rawValue))]
        }
        var members: [(key: String, value: JSONValue)] = [
            ("id", .string(rule.id)), ("patient", .string(rule.patientId)), ("grantee", .object(grantee)),
            ("purposes", .array(rule.purposes.map { $0.rawValue }.sorted().map(JSONValue.string))),
            ("categories", .array(((rule.coversAllCategories ? ["*"] : []) + rule.categories.map { $0.rawValue }.sorted()).map(JSONValue.string))),
            ("provision", .string(rule.provision.rawValue)), ("recordedBy", .string(recordedBy)), ("createdAt", .string(Timestamp.format(time))),
        ]
        var period: [(key: String, value: JSONValue)] = []
        if let start = rule.start { period.append(("start", .string(Timestamp.format(start)))) }
        if let end = rule.end { period.append(("end", .string(Timestamp.format(end)))) }
        if !period.isEmpty { members.append(("period", .object(period))) }
        if let evidenceHash { members.append(("evidenceHash", .string(evidenceHash))) }
        return JCS.canonicalize(.object(members))
    }

    static func revocation(_ consentId: String, by orgId: String, at time: Date) -> [UInt8] {
        JCS.canonicalize(.object([("consent", .string(consentId)), ("revokedAt", .string(Timestamp.format(time))), ("revokedBy", .string(orgId))]))
    }
}

/// A consent in CareLedger's own shape (the alternative to a FHIR Consent).
struct ConsentBody: Decodable, Sendable {
    static let fields: Set<String> = ["grantee", "purposes", "categories", "period", "provision", "evidenceHash"]

    struct Grantee: Decodable {
        let orgId: String?
        let orgKind: String?
    }

    struct Period: Decodable {
        let start: String?
        let end: String?
    }

    let grantee: Grantee
    let purposes: [String]
    let categories: [String]
    let period: Period?
    let provision: String?
    let evidenceHash: String?

    func rule(id: String, patientId: String) throws(DomainError) -> ConsentRule {
        let target: ConsentRule.Grantee
        switch (grantee.orgId, grantee.orgKind) {
        case (let org?, nil):
            guard ResourceID.isWellFormed(org, prefix: "org") else { throw DomainError.invalid("'grantee.orgId' must be an organization id.") }
            target = .organization(org)
        case (nil, let kind?):
            guard let kind = OrganizationKind(rawValue: kind), kind != .platform else {
                throw DomainError.invalid("'grantee.orgKind' must be an organization kind such as insurer.")
            }
            target = .kind(kind)
        default:
            throw DomainError.invalid("'grantee' needs exactly one of orgId and orgKind.")
        }
        let consentable: Set<PurposeOfUse> = [.treatment, .payment, .operations, .research, .publicHealth]
        let purposeSet = Set(purposes.compactMap(PurposeOfUse.init).filter(consentable.contains))
        guard !purposes.isEmpty, purposeSet.count == Set(purposes).count else {
            throw DomainError.invalid("'purposes' must list some of TREAT, HPAYMT, HOPERAT, HRESCH, PUBHLTH.")
        }
        let wildcard = categories.contains("*")
        let named = Set(categories.filter { $0 != "*" }.compactMap(DataCategory.init))
        guard !categories.isEmpty, named.count == Set(categories.filter { $0 != "*" }).count else {
            throw DomainError.invalid("'categories' must list data categories (\(DataCategory.allCases.map { $0.rawValue }.joined(separator: ", "))) or \"*\".")
        }
        var start: Date?
        var end: Date?
        if let text = period?.start {
            guard let date = Timestamp.parse(text) else { throw DomainError.invalid("'period.start' must be an RFC 3339 date-time.") }
            start = date
        }
        if let text = period?.end {
            guard let date = Timestamp.parse(text) else { throw DomainError.invalid("'period.end' must be an RFC 3339 date-time.") }
            end = date
        }
        if let start, let end, end <= start { throw DomainError.invalid("'period.end' must be after 'period.start'.") }
        guard let provision = ConsentRule.Provision(rawValue: provision ?? "permit") else {
            throw DomainError.invalid("'provision' must be permit or deny.")
        }
        return ConsentRule(id: id, patientId: patientId, grantee: target, purposes: purposeSet, categories: named,
                           coversAllCategories: wildcard, start: start, end: end, provision: provision)
    }
}

