import Crypto
import HTTP
import Ledger

/// `/v1/patients/{patientId}/consents` and `/v1/consents/{consentId}/revoke`.
enum ConsentRoutes {
    static func register(in api: inout APIRouteBuilder, ledger: LedgerService) {
        let service = ConsentService(pool: api.access.pool, ledger: ledger)

        api.on(.post, "/v1/patients/{patientId}/consents", .consentsCreate) { context in
            let patientId: String = try context.parameter("patientId")
            let input: ConsentService.Input
            if let resource = try? JSONParser.parse(context.request.body), resource["resourceType"]?.stringValue == "Consent" {
                input = .fhir(resource)
            } else {
                input = .native(try JSONBody.decode(ConsentBody.self, from: context.request, fields: ConsentBody.fields))
            }
            let granted = try await service.grant(patientId: patientId, input, idempotency: try Idempotency.of(context.request), context.call)
            return try JSONBody.response(.created, ConsentCreated(
                id: granted.id, status: "active", documentHash: granted.documentHash, seq: granted.entry?.seq,
                leafHash: granted.entry.map { Base64.encode($0.leafHash) }))
        }

        api.on(.get, "/v1/patients/{patientId}/consents", .consentsRead) { context in
            let pagination = try Pagination(try context.query())
            let consents = try await service.consents(patientId: try context.parameter("patientId"), pagination, context.call)
            return try JSONBody.response(.ok, pagination.page(consents, cursor: \.rule.id) { ConsentView($0) })
        }

        api.on(.post, "/v1/consents/{consentId}/revoke", .consentsRevoke) { context in
            try JSONBody.response(.ok, ConsentView(try await service.revoke(try context.parameter("consentId"), context.call)))
        }
    }
}

private struct ConsentCreated: Encodable {
    let id: String
    let status: String
    let documentHash: String
    let seq: Int64?
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
        purposes = rule.purposes.map { $0.rawValue }.sorted()
        categories = (rule.coversAllCategories ? ["*"] : []) + rule.categories.map { $0.rawValue }.sorted()
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
