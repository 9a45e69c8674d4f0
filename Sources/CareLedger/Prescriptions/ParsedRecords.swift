import Crypto
import Ledger
import Postgres
import Synchronization

/// The patients' MedicationRequests and AllergyIntolerances as the checks read them, kept once
/// opened: a stored document never changes (a cancellation or a fill is a column or a row of its
/// own), so every later check of the same patient skips reading, opening and parsing it again.
/// Bounded (oldest out first). Only reached after the patient's data key was unwrapped for the
/// request, so an erased patient's records, whose key is gone, are never served from it.
final class ParsedRecords: Sendable {
    static let capacity = 50_000

    private struct Entries<Value> {
        var values: [String: Value] = [:]
        var order: [String] = []
        var head = 0

        mutating func insert(_ value: Value, for id: String) {
            guard values.updateValue(value, forKey: id) == nil else { return }
            order.append(id)
            if values.count > ParsedRecords.capacity {
                values.removeValue(forKey: order[head])
                head += 1
                if head > ParsedRecords.capacity {
                    order.removeFirst(head)
                    head = 0
                }
            }
        }
    }

    private let store = PrescriptionStore()
    private let requestCache = Mutex(Entries<FHIRMedicationRequest>())
    private let allergyCache = Mutex(Entries<FHIRAllergyIntolerance>())

    /// A prescription just stored: the next check of its patient need not read it back.
    func remember(_ request: FHIRMedicationRequest, for id: String) {
        requestCache.withLock { $0.insert(request, for: id) }
    }

    /// The MedicationRequests of prescriptions `(id, prescribing organization)`.
    func requests(_ prescriptions: [(id: String, org: String)], key: [UInt8], on runner: some QueryRunner) async throws -> [String: FHIRMedicationRequest] {
        var found = requestCache.withLock { cache in prescriptions.reduce(into: [String: FHIRMedicationRequest]()) { $0[$1.id] = cache.values[$1.id] } }
        let missing = prescriptions.filter { found[$0.id] == nil }
        guard !missing.isEmpty else { return found }
        let sealed = try await store.requestDocuments(missing.map { $0.id }, on: runner)
        var opened: [(String, FHIRMedicationRequest)] = []
        for prescription in missing {
            guard let bytes = sealed[prescription.id] else { continue }
            let document = try AESGCM.open(bytes, key: key, authenticating: PrescriptionSeal.request(prescription.id))
            opened.append((prescription.id, try FHIRMedicationRequest(try JSONParser.parse(document), callerOrg: prescription.org, keepingDocument: false)))
        }
        requestCache.withLock { cache in for (id, request) in opened { cache.insert(request, for: id) } }
        for (id, request) in opened { found[id] = request }
        return found
    }

    func allergies(_ ids: [String], key: [UInt8], on runner: some QueryRunner) async throws -> [String: FHIRAllergyIntolerance] {
        var found = allergyCache.withLock { cache in ids.reduce(into: [String: FHIRAllergyIntolerance]()) { $0[$1] = cache.values[$1] } }
        let missing = ids.filter { found[$0] == nil }
        guard !missing.isEmpty else { return found }
        let sealed = try await store.allergyDocuments(missing, on: runner)
        var opened: [(String, FHIRAllergyIntolerance)] = []
        for id in missing {
            guard let bytes = sealed[id] else { continue }
            let document = try AESGCM.open(bytes, key: key, authenticating: PrescriptionSeal.allergy(id))
            opened.append((id, try FHIRAllergyIntolerance(try JSONParser.parse(document), keepingDocument: false)))
        }
        allergyCache.withLock { cache in for (id, allergy) in opened { cache.insert(allergy, for: id) } }
        for (id, allergy) in opened { found[id] = allergy }
        return found
    }
}
