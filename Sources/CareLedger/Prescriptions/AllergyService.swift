import Crypto
import FoundationEssentials
import Ledger
import Postgres

/// A patient's allergies: FHIR R4 AllergyIntolerance resources recorded by a hospital, a pharmacy or
/// the patient, sealed under the patient's key, anchored, audited, and read under consent. Every
/// prescription is checked against all of them.
struct AllergyService: Sendable {
    struct Recorded: Sendable {
        let id: String
        let documentHash: String
        let noKnownDrugAllergy: Bool
        let entry: LedgerEntryRow?
        let createdAt: Date
    }

    struct Listed: Sendable {
        let allergy: StoredAllergy
        let document: [UInt8]
        let noKnownDrugAllergy: Bool
    }

    let pool: PostgresPool
    let ledger: LedgerService
    let keys: PatientKeys
    let store = PrescriptionStore()

    func record(_ patientId: String, _ document: JSONValue, _ call: CallContext) async throws -> Recorded {
        let allergy = try FHIRAllergyIntolerance(document)
        let access = try await PatientAccess.open(patientId, call, keys: keys, on: pool)
        let id = ResourceID.generate("alg")
        let canonical = JCS.canonicalize(allergy.document)
        let hash = "sha256:" + SHA256.hexDigest(canonical)
        let now = Date()
        let stored = StoredAllergy(id: id, patientId: patientId, recordedBy: call.caller.orgId,
                                   sealedDocument: try AESGCM.seal(canonical, key: access.dataKey, authenticating: PrescriptionSeal.allergy(id)),
                                   documentHash: hash, queueId: 0, createdAt: now)
        let event = call.permitted("allergy", id, patientId: patientId, reason: "recorded (\(access.reason))")
        let queueId = try await store.insert(stored, event: event, on: pool)
        return Recorded(id: id, documentHash: hash, noKnownDrugAllergy: allergy.noKnownDrugAllergy,
                        entry: await ledger.sequencedEntry(queueId: queueId), createdAt: now)
    }

    /// The allergies `call` may see: its own organization's, those the patient's consent covers
    /// (medication category), all of them to the patient or under break-the-glass.
    func list(_ patientId: String, _ call: CallContext) async throws -> [Listed] {
        let access = try await PatientAccess.open(patientId, call, keys: keys, on: pool)
        var listed: [Listed] = []
        for allergy in try await store.allergies(patientId: patientId, on: pool) where access.canSee(org: allergy.recordedBy, call) {
            let bytes = try AESGCM.open(allergy.sealedDocument, key: access.dataKey, authenticating: PrescriptionSeal.allergy(allergy.id))
            let parsed = try FHIRAllergyIntolerance(try JSONParser.parse(bytes))
            listed.append(Listed(allergy: allergy, document: bytes, noKnownDrugAllergy: parsed.noKnownDrugAllergy))
        }
        try await AuditStore().record(call.permitted("allergy", patientId, patientId: patientId, reason: "allergy list (\(access.reason))"), on: pool)
        return listed
    }
}
