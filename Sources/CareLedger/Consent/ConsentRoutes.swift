import Crypto
import FoundationEssentials
import HTTP
import Ledger
import Postgres

/// `/v1/patients/{patientId}/consents` and `/v1/consents/{consentId}/revoke`. A patient manages its
/// own consents with its `patient` key; a custodian hospital records them on the patient's behalf
/// and must attach the hash of the signed consent form. Grants and revocations are anchored in the
/// ledger in the same transaction, and take effect from the very next request (no cache).
enum ConsentRoutes {
    static func register(in api: inout APIRouteBuilder, ledger: LedgerService) {
        let store = ConsentStore()
        let patients = PatientStore()
        let audit = api.access.audit
        let pool = api.access.pool

        api.on(.post, "/v1/patients/{patientId}/consents", .consentsCreate) { context in
            let patientId = try context.request.parameters.require("patientId", as: String.self)
            try await requireStanding(context, patientId: patientId, patients: patients, pool: pool)
            let id = ResourceID.generate("con")
            let rule: ConsentRule
            var evidenceHash: String?
            if let resource = try? JSONParser.parse(context.request.body), resource["resourceType"]?.stringValue == "Consent" {
                // A FHIR Consent is its own evidence: its canonical hash is recorded as such.
                let mapped = try FHIRConsent(resource).rule
                rule = ConsentRule(id: id, patientId: patientId, grantee: mapped.0, purposes: mapped.1, categories: mapped.2,
                                   coversAllCategories: mapped.3, start: mapped.4, end: mapped.5, provision: mapped.6)
                evidenceHash = JCS.documentHash(resource)
            } else {
                let body = try JSONBody.decode(ConsentBody.self, from: context.request, fields: ConsentBody.fields)
                rule = try body.rule(id: id, patientId: patientId)
                if context.caller.role != .patient, body.evidenceHash == nil {
                    throw APIError.badRequest("A consent recorded on the patient's behalf needs 'evidenceHash', the hash of the signed consent form.")
                }
                if let evidence = body.evidenceHash, !DocumentHash.isValid(evidence) {
                    throw APIError.badRequest("'evidenceHash' must be sha256: followed by 64 lowercase hex digits.")
                }
                evidenceHash = body.evidenceHash
            }
            let now = Date()
            let document = ConsentDocument.grant(rule, evidenceHash: evidenceHash, recordedBy: context.caller.orgId, at: now)
            let hash = "sha256:" + SHA256.hexDigest(document)
            let queueId = try await pool.withTransaction { transaction in
                let queueId = try await ledger.enqueue(LedgerItem(type: "consent.granted", actor: context.caller.orgId, ref: id, hash: hash), on: transaction)
                try await store.insert(rule, evidenceHash: evidenceHash, recordedBy: context.caller.orgId, createdAt: now, document: document,
                                       queueId: queueId, on: transaction)
                try await audit.record(context.permitted("consent", id, patientId: patientId, reason: "\(rule.provision.rawValue) recorded"), on: transaction)
                return queueId
            }
            let entry = await ledger.sequencedEntry(queueId: queueId)
            return try JSONBody.response(.created, ConsentCreated(
                id: id, status: "active", documentHash: hash, seq: entry.map { String($0.seq) }, leafHash: entry.map { Base64.encode($0.leafHash) }))
        }

        api.on(.get, "/v1/patients/{patientId}/consents", .consentsRead) { context in
            let patientId = try context.request.parameters.require("patientId", as: String.self)
            try await requireStanding(context, patientId: patientId, patients: patients, pool: pool)
            let pagination = try Pagination(try context.request.query())
            let consents = try await store.consents(patientId: patientId, after: pagination.after, limit: pagination.limit + 1, on: pool)
            try await audit.record(context.permitted("consent", patientId: patientId, reason: "listed"), on: pool)
            return try JSONBody.response(.ok, pagination.page(consents, cursor: \.rule.id) { ConsentView($0) })
        }

        api.on(.post, "/v1/consents/{consentId}/revoke", .consentsRevoke) { context in
            let consentId = try context.request.parameters.require("consentId", as: String.self)
            let view = try await pool.withTransaction { transaction -> ConsentView in
                guard let consent = try await store.consent(consentId, on: transaction) else {
                    throw Denial.notVisible("consent", consentId, reason: "no such consent")
                }
                try await requireStanding(context, patientId: consent.rule.patientId, patients: patients, pool: transaction)
                guard consent.revokedAt == nil else { return ConsentView(consent) }
                let now = Date()
                let revocation = ConsentDocument.revocation(consentId, by: context.caller.orgId, at: now)
                let queueId = try await ledger.enqueue(LedgerItem(
                    type: "consent.revoked", actor: context.caller.orgId, ref: consentId, hash: "sha256:" + SHA256.hexDigest(revocation)), on: transaction)
                try await store.revoke(consentId, at: now, revocation: revocation, queueId: queueId, on: transaction)
                try await audit.record(context.permitted("consent", consentId, patientId: consent.rule.patientId, reason: "revoked"), on: transaction)
                return try await store.consent(consentId, on: transaction).map(ConsentView.init) ?? ConsentView(consent)
            }
            return try JSONBody.response(.ok, view)
        }
    }

    /// The caller may act on this patient's consents: the patient itself, or a custodian. Anyone
    /// else gets 404, as for a patient that does not exist.
    static func requireStanding(_ context: APIContext, patientId: String, patients: PatientStore, pool: some QueryRunner) async throws {
        if context.caller.role == .patient {
            guard context.caller.patientId == patientId, try await patients.patient(patientId, on: pool) != nil else {
                throw Denial.notVisible("patient", patientId)
            }
            return
        }
        guard try await patients.isCustodian(orgId: context.caller.orgId, patientId: patientId, on: pool) else {
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
            ("purposes", .array(rule.purposes.map(\.rawValue).sorted().map(JSONValue.string))),
            ("categories", .array(((rule.coversAllCategories ? ["*"] : []) + rule.categories.map(\.rawValue).sorted()).map(JSONValue.string))),
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

private struct ConsentBody: Decodable {
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

    func rule(id: String, patientId: String) throws(HTTPError) -> ConsentRule {
        let target: ConsentRule.Grantee
        switch (grantee.orgId, grantee.orgKind) {
        case (let org?, nil):
            guard ResourceID.isWellFormed(org, prefix: "org") else { throw APIError.badRequest("'grantee.orgId' must be an organization id.") }
            target = .organization(org)
        case (nil, let kind?):
            guard let kind = OrganizationKind(rawValue: kind), kind != .platform else {
                throw APIError.badRequest("'grantee.orgKind' must be an organization kind such as insurer.")
            }
            target = .kind(kind)
        default:
            throw APIError.badRequest("'grantee' needs exactly one of orgId and orgKind.")
        }
        let consentable: Set<PurposeOfUse> = [.treatment, .payment, .operations, .research, .publicHealth]
        let purposeSet = Set(purposes.compactMap(PurposeOfUse.init).filter(consentable.contains))
        guard !purposes.isEmpty, purposeSet.count == Set(purposes).count else {
            throw APIError.badRequest("'purposes' must list some of TREAT, HPAYMT, HOPERAT, HRESCH, PUBHLTH.")
        }
        let wildcard = categories.contains("*")
        let named = Set(categories.filter { $0 != "*" }.compactMap(DataCategory.init))
        guard !categories.isEmpty, named.count == Set(categories.filter { $0 != "*" }).count else {
            throw APIError.badRequest("'categories' must list data categories (\(DataCategory.allCases.map(\.rawValue).joined(separator: ", "))) or \"*\".")
        }
        var start: Date?
        var end: Date?
        if let text = period?.start {
            guard let date = Timestamp.parse(text) else { throw APIError.badRequest("'period.start' must be an RFC 3339 date-time.") }
            start = date
        }
        if let text = period?.end {
            guard let date = Timestamp.parse(text) else { throw APIError.badRequest("'period.end' must be an RFC 3339 date-time.") }
            end = date
        }
        if let start, let end, end <= start { throw APIError.badRequest("'period.end' must be after 'period.start'.") }
        guard let provision = ConsentRule.Provision(rawValue: provision ?? "permit") else {
            throw APIError.badRequest("'provision' must be permit or deny.")
        }
        return ConsentRule(id: id, patientId: patientId, grantee: target, purposes: purposeSet, categories: named,
                           coversAllCategories: wildcard, start: start, end: end, provision: provision)
    }
}

private struct ConsentCreated: Encodable {
    let id: String
    let status: String
    let documentHash: String
    let seq: String?
    let leafHash: String?
}

struct ConsentView: Encodable {
    let id: String
    let patientId: String
    let grantee: [String: String]
    let purposes: [String]
    let categories: [String]
    let periodStart: String?
    let periodEnd: String?
    let provision: String
    let evidenceHash: String?
    let recordedBy: String
    let status: String
    let createdAt: String
    let revokedAt: String?

    init(_ stored: StoredConsent) {
        let rule = stored.rule
        id = rule.id
        patientId = rule.patientId
        switch rule.grantee {
        case .organization(let org): grantee = ["orgId": org]
        case .kind(let kind): grantee = ["orgKind": kind.rawValue]
        }
        purposes = rule.purposes.map(\.rawValue).sorted()
        categories = (rule.coversAllCategories ? ["*"] : []) + rule.categories.map(\.rawValue).sorted()
        periodStart = rule.start.map(Timestamp.format)
        periodEnd = rule.end.map(Timestamp.format)
        provision = rule.provision.rawValue
        evidenceHash = stored.evidenceHash
        recordedBy = stored.recordedBy
        status = stored.revokedAt == nil ? "active" : "revoked"
        createdAt = Timestamp.format(stored.createdAt)
        revokedAt = stored.revokedAt.map(Timestamp.format)
    }
}
