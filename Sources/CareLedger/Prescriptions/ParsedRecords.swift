import Crypto
import Ledger
import Postgres
import Synchronization

/// The patients' MedicationRequests and AllergyIntolerances as the checks read them, kept for a
/// short while once opened: a stored document never changes (a cancellation or a fill is a column
/// or a row of its own), so the checks that come close together for one patient (a dry run, the
/// CDS Hooks call, the prescription itself, the next order of the same visit) read, open and parse
/// each record once. Kept for `lifetime`, not longer: memory then follows the rate of checks rather
/// than growing with every patient ever checked, and opened PHI does not stay in memory for hours.
/// Bounded by `capacity` too (oldest out first). Only reached after the patient's data key was
/// unwrapped for the request, so an erased patient's records, whose key is gone, are never served
/// from it.
final class ParsedRecords: Sendable {
    private struct Entries<Value> {
        var values: [String: (value: Value, storedAt: ContinuousClock.Instant)] = [:]
        /// Ids in the order they were stored, from `head` on; the part before `head` is spent.
        var order: [String] = []
        var head = 0

        func value(_ id: String, at now: ContinuousClock.Instant, lifetime: Duration) -> Value? {
            guard let entry = values[id], now - entry.storedAt < lifetime else { return nil }
            return entry.value
        }

        mutating func insert(_ value: Value, for id: String, at now: ContinuousClock.Instant, lifetime: Duration, capacity: Int) {
            if values.updateValue((value, now), forKey: id) == nil { order.append(id) }
            // Oldest first. An id stored again since keeps its old place but its new time, so it
            // stops the sweep early: expiry is also checked on every read, and capacity still holds.
            while head < order.count {
                if let entry = values[order[head]] {
                    guard values.count > capacity || now - entry.storedAt >= lifetime else { break }
                    values.removeValue(forKey: order[head])
                }
                head += 1
            }
            if head > 1024, head * 2 > order.count {
                order.removeFirst(head)
                head = 0
            }
        }
    }

    let capacity: Int
    let lifetime: Duration
    private let store = PrescriptionStore()
    private let requestCache = Mutex(Entries<FHIRMedicationRequest>())
    private let allergyCache = Mutex(Entries<FHIRAllergyIntolerance>())

    init(capacity: Int = 10_000, lifetime: Duration = .seconds(60)) {
        self.capacity = capacity
        self.lifetime = lifetime
    }

    /// Records held now (both kinds): for tests and `GET /metrics`.
    var count: Int { requestCache.withLock { $0.values.count } + allergyCache.withLock { $0.values.count } }

    /// A prescription just stored: the next check of its patient need not read it back.
    func remember(_ request: FHIRMedicationRequest, for id: String, now: ContinuousClock.Instant = .now) {
        requestCache.withLock { $0.insert(request, for: id, at: now, lifetime: lifetime, capacity: capacity) }
    }

    /// The MedicationRequests of prescriptions `(id, prescribing organization)`.
    func requests(_ prescriptions: [(id: String, org: String)], key: [UInt8], on runner: some QueryRunner,
                  now: ContinuousClock.Instant = .now) async throws -> [String: FHIRMedicationRequest] {
        try await cached(prescriptions, in: requestCache, now: now, id: { $0.id }, read: { try await self.store.requestDocuments($0, on: runner) }) {
            prescription, bytes in
            let document = try AESGCM.open(bytes, key: key, authenticating: PrescriptionSeal.request(prescription.id))
            return try FHIRMedicationRequest(try JSONParser.parse(document), callerOrg: prescription.org, keepingDocument: false)
        }
    }

    func allergies(_ ids: [String], key: [UInt8], on runner: some QueryRunner,
                   now: ContinuousClock.Instant = .now) async throws -> [String: FHIRAllergyIntolerance] {
        try await cached(ids, in: allergyCache, now: now, id: { $0 }, read: { try await self.store.allergyDocuments($0, on: runner) }) { id, bytes in
            let document = try AESGCM.open(bytes, key: key, authenticating: PrescriptionSeal.allergy(id))
            return try FHIRAllergyIntolerance(try JSONParser.parse(document), keepingDocument: false)
        }
    }

    /// The records of `wanted` from the cache, the rest read in one statement, opened and kept.
    private func cached<Wanted, Value: Sendable>(_ wanted: [Wanted], in cache: borrowing Mutex<Entries<Value>>, now: ContinuousClock.Instant,
                                       id: (Wanted) -> String, read: ([String]) async throws -> [String: [UInt8]],
                                       open: (Wanted, [UInt8]) throws -> Value) async throws -> [String: Value] {
        let ids = wanted.map(id), lifetime = lifetime
        var found = cache.withLock { cache in
            ids.reduce(into: [String: Value]()) { found, id in found[id] = cache.value(id, at: now, lifetime: lifetime) }
        }
        let missing = wanted.filter { found[id($0)] == nil }
        guard !missing.isEmpty else { return found }
        let sealed = try await read(missing.map(id))
        var opened: [(String, Value)] = []
        for item in missing {
            guard let bytes = sealed[id(item)] else { continue }
            opened.append((id(item), try open(item, bytes)))
        }
        cache.withLock { cache in for (id, value) in opened { cache.insert(value, for: id, at: now, lifetime: lifetime, capacity: capacity) } }
        for (id, value) in opened { found[id] = value }
        return found
    }
}
