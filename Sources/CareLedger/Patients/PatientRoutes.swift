import Crypto
import FoundationEssentials
import HTTP
import Postgres

/// `/v1/patients`: registration, lookup by identifier, identifiers, and reading a patient.
/// Organizations converge on one patient: an identifier (system + value) belongs to one patient, so
/// registering it again answers 409 with that patient's id, and the caller, who evidently has a care
/// relationship, becomes one of its custodians. Only custodians see a patient (consent-based access
/// comes with consents); everyone else gets 404, as for an unknown id.
enum PatientRoutes {
    static func register(in api: inout APIRouteBuilder, keys: PatientKeys) {
        let store = PatientStore()
        let audit = api.access.audit
        let pool = api.access.pool

        api.on(.post, "/v1/patients", .patientsCreate) { context in
            let patient = try FHIRPatient(body: context.request.body)
            let indexes = patient.identifiers.map { keys.blindIndex(system: $0.system, value: $0.value) }
            let id = ResourceID.generate("pat")
            let (dataKey, wrapped) = try keys.newDataKey(patientId: id)
            let sealed = try AESGCM.seal(patient.bytes, key: dataKey, authenticating: Array("patient:\(id)".utf8))
            // A registration racing another for the same identifier loses (on the primary key, or on
            // finding the winner's identifier at claim time) and rolls back; the retry then finds
            // the winner and answers 409.
            let existing: String? = try await retryingLostRace {
                try await pool.withTransaction { transaction in
                    for index in indexes {
                        if let other = try await store.patient(byIndex: index, on: transaction) {
                            try await store.addCustodian(patientId: other, orgId: context.caller.orgId, on: transaction)
                            try await audit.record(context.permitted("patient", other, patientId: other, reason: "identifier already registered; caller added as custodian"), on: transaction)
                            return other
                        }
                    }
                    try await store.create(id: id, wrappedDataKey: wrapped, resource: sealed, orgId: context.caller.orgId, on: transaction)
                    if try await store.claimIdentifiers(indexes, patientId: id, orgId: context.caller.orgId, on: transaction) != nil {
                        throw LostRace()
                    }
                    try await audit.record(context.permitted("patient", id, patientId: id, reason: "registered"), on: transaction)
                    return nil
                }
            }
            if let existing {
                throw HTTPError(status: .conflict, code: "conflict", message: "An identifier of this patient is already registered, to patient \(existing).",
                                headers: HTTPHeaders([("Location", "/v1/patients/\(existing)")]))
            }
            return try JSONBody.response(.created, Registered(id: id, identifiers: indexes.count))
        }

        api.on(.get, "/v1/patients", .patientsRead) { context in
            guard let token = try context.request.query()["identifier"], let bar = token.firstIndex(of: "|"),
                  token.startIndex != bar, token.index(after: bar) != token.endIndex else {
                throw APIError.badRequest("Give identifier=system|value.")
            }
            let index = keys.blindIndex(system: String(token[..<bar]), value: String(token[token.index(after: bar)...]))
            guard let id = try await store.patient(byIndex: index, on: pool) else {
                throw Denial.notVisible("patient_identifier", "lookup", reason: "no patient with that identifier")
            }
            return try await read(id, context, store: store, keys: keys, pool: pool, audit: audit)
        }

        api.on(.get, "/v1/patients/{patientId}", .patientsRead) { context in
            let id = try context.request.parameters.require("patientId", as: String.self)
            return try await read(id, context, store: store, keys: keys, pool: pool, audit: audit)
        }

        api.on(.post, "/v1/patients/{patientId}/identifiers", .patientsIdentify) { context in
            let id = try context.request.parameters.require("patientId", as: String.self)
            let body = try JSONBody.decode(NewIdentifier.self, from: context.request, fields: ["system", "value"])
            guard !body.system.isEmpty, !body.value.isEmpty, body.system.utf8.count <= 500, body.value.utf8.count <= 500 else {
                throw APIError.badRequest("'system' and 'value' must be 1-500 characters.")
            }
            guard try await store.isCustodian(orgId: context.caller.orgId, patientId: id, on: pool) else {
                throw Denial.notVisible("patient", id)
            }
            let index = keys.blindIndex(system: body.system, value: body.value)
            let other: String? = try await retryingLostRace {
                try await pool.withTransaction { transaction in
                    if let other = try await store.claimIdentifiers([index], patientId: id, orgId: context.caller.orgId, on: transaction) {
                        return other
                    }
                    try await audit.record(context.permitted("patient", id, patientId: id, reason: "identifier added"), on: transaction)
                    return nil
                }
            }
            if other != nil {
                throw APIError.conflict("That identifier belongs to another patient.")
            }
            return try JSONBody.response(.created, Registered(id: id, identifiers: 1))
        }
    }

    /// `POST /v1/patients/{patientId}/erase` (national systems, with the legal basis): the patient's
    /// data key is destroyed, so every sealed resource and document of the patient becomes unreadable
    /// for everyone (410 `erased`); the ledger, which holds only hashes, still verifies.
    static func registerErasure(in api: inout APIRouteBuilder) {
        let store = PatientStore()
        let audit = api.access.audit
        let pool = api.access.pool
        api.on(.post, "/v1/patients/{patientId}/erase", .patientsErase) { context in
            let id = try context.request.parameters.require("patientId", as: String.self)
            let body = try JSONBody.decode(Erasure.self, from: context.request, fields: ["reason"])
            guard body.reason.trimmingWhitespace().count >= 10 else {
                throw APIError.badRequest("'reason' must state the legal basis (at least 10 characters).")
            }
            let erased = try await pool.withTransaction { transaction -> Bool in
                guard try await store.patient(id, on: transaction) != nil else { throw Denial.notVisible("patient", id, reason: "no such patient") }
                let erased = try await store.erase(id, on: transaction)
                try await audit.record(context.permitted("patient", id, patientId: id, reason: "erased: \(body.reason)"), on: transaction)
                return erased
            }
            return try JSONBody.response(.ok, ErasureDone(id: id, status: "erased", alreadyErased: !erased))
        }
    }

    static let breakGlassHeader = "X-Break-Glass-Reason"

    /// Whether a read without consent is an emergency: a hospital declaring purpose ETREAT with a
    /// written reason (at least 20 characters). It is allowed, and flagged in the trail and the
    /// patient's access log.
    static func breakingTheGlass(_ context: APIContext) throws(HTTPError) -> Bool {
        guard context.purpose == .emergencyTreatment else { return false }
        guard context.caller.role == .hospital else { throw APIError.forbidden }
        guard let reason = context.request.headers.first(name: breakGlassHeader), reason.trimmingWhitespace().count >= 20 else {
            throw APIError.badRequest("Break-the-glass needs \(breakGlassHeader) with at least 20 characters.")
        }
        return true
    }

    /// The purpose a read is for: as declared, else the caller's usual one.
    static func purpose(of context: APIContext) -> PurposeOfUse {
        if let declared = context.purpose { return declared }
        switch context.caller.role {
        case .insurer: return .payment
        case .national: return .publicHealth
        default: return .treatment
        }
    }

    /// The patient's resource as registered, to a custodian or an organization a consent covers for
    /// the purpose of the request (in any data category); 404 (and a deny event) to anyone else.
    private static func read(_ id: String, _ context: APIContext, store: PatientStore, keys: PatientKeys, pool: PostgresPool, audit: AuditStore) async throws -> Response {
        var reason = "custodian"
        if try await !store.isCustodian(orgId: context.caller.orgId, patientId: id, on: pool) {
            let consents = try await ConsentStore().rules(patientId: id, on: pool)
            let purpose = purpose(of: context)
            let decisions = DataCategory.allCases.map { category in
                ConsentPolicy.decide(ConsentRequest(actorOrg: context.caller.orgId, actorKind: context.caller.orgKind, patientId: id,
                                                    purpose: purpose, category: category, time: Date()), consents: consents)
            }
            if let permit = decisions.first(where: \.permitted) {
                reason = "consent \(permit.consentId ?? "")"
            } else if try breakingTheGlass(context) {
                reason = "break-the-glass"
                context.metrics.brokeTheGlass()
            } else {
                throw Denial.notVisible("patient", id)
            }
        }
        guard let patient = try await store.patient(id, on: pool) else { throw Denial.notVisible("patient", id) }
        guard let wrapped = patient.wrappedDataKey, let sealed = patient.resource else {
            throw APIError.erased
        }
        let dataKey = try keys.unwrap(wrapped, patientId: id)
        let resource = try AESGCM.open(sealed, key: dataKey, authenticating: Array("patient:\(id)".utf8))
        try await audit.record(context.permitted("patient", id, patientId: id, reason: reason), on: pool)
        // The resource goes back byte for byte as it was registered.
        var body = Array(#"{"id":"#.utf8)
        body += Array(("\"" + id + "\"").utf8)
        body += Array(#","resource":"#.utf8)
        body += resource
        body.append(UInt8(ascii: "}"))
        return .json(.ok, body)
    }

    /// Another transaction registered one of the identifiers first.
    private struct LostRace: Error {}

    /// Runs `body` again (a few times at most) when it lost a race for an identifier.
    private static func retryingLostRace<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        for _ in 0..<3 {
            do {
                return try await body()
            } catch is LostRace {
                continue
            } catch let error as PostgresError where error.isUniqueViolation {
                continue
            }
        }
        return try await body()
    }
}

private struct Registered: Encodable {
    let id: String
    let identifiers: Int
}

private struct Erasure: Decodable {
    let reason: String
}

private struct ErasureDone: Encodable {
    let id: String
    let status: String
    let alreadyErased: Bool
}

private struct NewIdentifier: Decodable {
    let system: String
    let value: String
}
