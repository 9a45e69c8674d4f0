import Crypto
import FoundationEssentials
import Postgres

/// Patients: registration, lookup by identifier, identifiers, reading and erasure. Organizations
/// converge on one patient: an identifier (system + value) belongs to one patient, so registering it
/// again is a conflict naming that patient, and the caller, who evidently has a care relationship,
/// becomes one of its custodians. Custodians see a patient; so does an organization a consent
/// covers for the request's purpose, and a hospital breaking the glass; everyone else gets what an
/// unknown id gets.
struct PatientService: Sendable {
    let pool: PostgresPool
    let keys: PatientKeys
    let store = PatientStore()
    let consents = ConsentStore()
    let audit = AuditStore()

    /// Registers a FHIR Patient; returns its id and how many identifiers it is found by.
    func register(_ body: [UInt8], _ call: CallContext) async throws -> (id: String, identifiers: Int) {
        let patient = try FHIRPatient(body: body)
        let indexes = patient.identifiers.map { keys.blindIndex(system: $0.system, value: $0.value) }
        let id = ResourceID.generate("pat")
        let (dataKey, wrapped) = try keys.newDataKey(patientId: id)
        let sealed = try AESGCM.seal(patient.bytes, key: dataKey, authenticating: Self.sealContext(id))
        // A registration racing another for the same identifier loses (on the primary key, or on
        // finding the winner's identifier at claim time) and rolls back; the retry then finds the
        // winner and answers with it.
        let existing: String? = try await retryingLostRace {
            try await pool.withTransaction { transaction in
                for index in indexes {
                    if let other = try await store.patient(byIndex: index, on: transaction) {
                        try await store.addCustodian(patientId: other, orgId: call.caller.orgId, on: transaction)
                        try await audit.record(call.permitted("patient", other, patientId: other, reason: "identifier already registered; caller added as custodian"), on: transaction)
                        return other
                    }
                }
                try await store.create(id: id, wrappedDataKey: wrapped, resource: sealed, orgId: call.caller.orgId, on: transaction)
                if try await store.claimIdentifiers(indexes, patientId: id, orgId: call.caller.orgId, on: transaction) != nil {
                    throw LostRace()
                }
                try await audit.record(call.permitted("patient", id, patientId: id, reason: "registered"), on: transaction)
                return nil
            }
        }
        if let existing { throw DomainError.patientAlreadyRegistered(patientId: existing) }
        return (id, indexes.count)
    }

    /// The patient an identifier belongs to, read as `read` reads it.
    func find(system: String, value: String, _ call: CallContext) async throws -> [UInt8] {
        guard let id = try await store.patient(byIndex: keys.blindIndex(system: system, value: value), on: pool) else {
            throw Denial.notVisible("patient_identifier", "lookup", reason: "no patient with that identifier")
        }
        return try await read(id, call)
    }

    /// `{"id":...,"resource":...}` with the resource byte for byte as it was registered.
    func read(_ id: String, _ call: CallContext) async throws -> [UInt8] {
        var reason = "custodian"
        if try await !store.isCustodian(orgId: call.caller.orgId, patientId: id, on: pool) {
            let rules = try await consents.rules(patientId: id, on: pool)
            let decisions = DataCategory.allCases.map { category in
                ConsentPolicy.decide(ConsentRequest(actorOrg: call.caller.orgId, actorKind: call.caller.orgKind, patientId: id,
                                                    purpose: call.effectivePurpose, category: category, time: Date()), consents: rules)
            }
            if let permit = decisions.first(where: \.permitted) {
                reason = "consent \(permit.consentId ?? "")"
            } else if try BreakTheGlass.applies(to: call) {
                reason = "break-the-glass"
                call.metrics.brokeTheGlass()
            } else {
                throw Denial.notVisible("patient", id)
            }
        }
        guard let patient = try await store.patient(id, on: pool) else { throw Denial.notVisible("patient", id) }
        guard let wrapped = patient.wrappedDataKey, let sealed = patient.resource else { throw DomainError.erased }
        let resource = try AESGCM.open(sealed, key: try keys.unwrap(wrapped, patientId: id), authenticating: Self.sealContext(id))
        try await audit.record(call.permitted("patient", id, patientId: id, reason: reason), on: pool)
        return Array(#"{"id":"#.utf8) + Array(("\"" + id + "\"").utf8) + Array(#","resource":"#.utf8) + resource + [UInt8(ascii: "}")]
    }

    /// Another identifier for a patient the caller is a custodian of.
    func addIdentifier(to id: String, system: String, value: String, _ call: CallContext) async throws {
        guard !system.isEmpty, !value.isEmpty, system.utf8.count <= 500, value.utf8.count <= 500 else {
            throw DomainError.invalid("'system' and 'value' must be 1-500 characters.")
        }
        guard try await store.isCustodian(orgId: call.caller.orgId, patientId: id, on: pool) else {
            throw Denial.notVisible("patient", id)
        }
        let index = keys.blindIndex(system: system, value: value)
        let other: String? = try await retryingLostRace {
            try await pool.withTransaction { transaction in
                if let other = try await store.claimIdentifiers([index], patientId: id, orgId: call.caller.orgId, on: transaction) {
                    return other
                }
                try await audit.record(call.permitted("patient", id, patientId: id, reason: "identifier added"), on: transaction)
                return nil
            }
        }
        if other != nil { throw DomainError.conflict("That identifier belongs to another patient.") }
    }

    /// Destroys the patient's data key: every sealed resource and document of the patient becomes
    /// unreadable for everyone; the ledger, which holds only hashes, still verifies. Returns whether
    /// it was erased already.
    func erase(_ id: String, reason: String, _ call: CallContext) async throws -> Bool {
        guard reason.trimmingWhitespace().count >= 10 else {
            throw DomainError.invalid("'reason' must state the legal basis (at least 10 characters).")
        }
        return try await pool.withTransaction { transaction in
            guard try await store.patient(id, on: transaction) != nil else { throw Denial.notVisible("patient", id, reason: "no such patient") }
            let erased = try await store.erase(id, on: transaction)
            try await audit.record(call.permitted("patient", id, patientId: id, reason: "erased: \(reason)"), on: transaction)
            return !erased
        }
    }

    /// What the seal of a patient's resource authenticates besides the bytes.
    private static func sealContext(_ id: String) -> [UInt8] {
        Array("patient:\(id)".utf8)
    }

    /// Another transaction registered one of the identifiers first.
    private struct LostRace: Error {}

    /// Runs `body` again (a few times at most) when it lost a race for an identifier.
    private func retryingLostRace<T: Sendable>(_ body: () async throws -> T) async throws -> T {
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
