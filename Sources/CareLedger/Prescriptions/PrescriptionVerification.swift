import Crypto
import Postgres

/// Allergies, prescriptions (their decision records and cancellations) and fills: each entry of its
/// type matches its object's hash; with the master key each sealed document is opened and re-hashed
/// (an erased patient's documents cannot be opened by anyone: that is erasure, not tampering).
struct PrescriptionRecordCheck: AnchoredObjectCheck {
    let entryType: String

    static let all = [PrescriptionStore.allergyType, PrescriptionStore.createdType, PrescriptionStore.cancelledType, PrescriptionStore.dispensedType]
        .map(PrescriptionRecordCheck.init)

    private struct Sealed {
        let object: AnchoredObject
        let patientId: String
        let sealed: [UInt8]
        let context: [UInt8]
    }

    func check(entries: [Int64: EntryFacts], in scope: VerificationScope, keys: PatientKeys?) async throws -> Int {
        let pool = scope.pool
        let store = PrescriptionStore()
        let table: String
        var objects: [Sealed] = []
        switch entryType {
        case PrescriptionStore.allergyType:
            table = "allergies"
            objects = try await store.allAllergies(on: pool).map {
                Sealed(object: AnchoredObject(ref: $0.id, queueId: $0.queueId, hash: $0.documentHash), patientId: $0.patientId,
                       sealed: $0.sealedDocument, context: PrescriptionSeal.allergy($0.id))
            }
        case PrescriptionStore.dispensedType:
            table = "dispenses"
            objects = try await store.allDispenses(on: pool).map {
                Sealed(object: AnchoredObject(ref: $0.prescriptionId, queueId: $0.queueId, hash: $0.documentHash), patientId: $0.patientId,
                       sealed: $0.sealedDocument, context: PrescriptionSeal.dispense($0.prescriptionId, fill: $0.fillNumber))
            }
        default:
            table = "prescriptions"
            let cancelled = entryType == PrescriptionStore.cancelledType
            objects = try await store.allPrescriptions(on: pool).compactMap { prescription in
                guard cancelled else {
                    return Sealed(object: AnchoredObject(ref: prescription.id, queueId: prescription.queueId, hash: prescription.decisionHash),
                                  patientId: prescription.patientId, sealed: prescription.sealedDecision, context: PrescriptionSeal.decision(prescription.id))
                }
                guard let queueId = prescription.cancelQueueId, let hash = prescription.cancellationHash, let sealed = prescription.sealedCancellation else {
                    return nil
                }
                return Sealed(object: AnchoredObject(ref: prescription.id, queueId: queueId, hash: hash), patientId: prescription.patientId,
                              sealed: sealed, context: PrescriptionSeal.cancellation(prescription.id))
            }
        }
        let matched = try AnchoredObject.match(objects.map { $0.object }, entries: entries, pending: try await scope.unsequencedQueueIds(), table: table)
        guard let keys else { return matched }
        let patients = PatientStore()
        var dataKeys: [String: [UInt8]?] = [:]
        for item in objects {
            if dataKeys[item.patientId] == nil {
                dataKeys[item.patientId] = .some(try await patients.patient(item.patientId, on: pool)?.wrappedDataKey.map { try keys.unwrap($0, patientId: item.patientId) })
            }
            guard case .some(.some(let key)) = dataKeys[item.patientId] else { continue }
            let seq = entries[item.object.queueId]?.seq
            let document: [UInt8]
            do {
                document = try AESGCM.open(item.sealed, key: key, authenticating: item.context)
            } catch {
                throw VerificationFailure(seq: seq, table: table, detail: "\(item.object.ref)'s sealed \(entryType) document does not open: altered")
            }
            guard "sha256:" + SHA256.hexDigest(document) == item.object.hash else {
                throw VerificationFailure(seq: seq, table: table, detail: "\(item.object.ref)'s \(entryType) document no longer hashes to its ledger entry")
            }
        }
        return matched
    }
}
