import GS1
import Ledger
import Postgres

/// Supply-chain entries: every captured event re-hashes (CBV 2.0, under the prefixes it was sent
/// with) to its hash id and its entry; declarations, alerts, resolutions and recalls match theirs.
struct SupplyRecordCheck: AnchoredObjectCheck {
    let entryType: String

    static let all = [StoredEPCISEvent.entryType, "epcis.error_declared", SupplyAlert.raisedType, SupplyAlert.resolvedType, "supply.recall"]
        .map(SupplyRecordCheck.init)

    func check(entries: [Int64: EntryFacts], in scope: VerificationScope, keys: PatientKeys?) async throws -> Int {
        let pool = scope.pool
        let store = SupplyStore()
        let objects: [AnchoredObject]
        let table: String
        switch entryType {
        case StoredEPCISEvent.entryType:
            table = "epcis_events"
            var checked: [AnchoredObject] = []
            for event in try await store.allEvents(on: pool) {
                try Self.rehash(event, entry: entries[event.queueId])
                checked.append(AnchoredObject(ref: event.hashID, queueId: event.queueId, hash: event.ledgerHash))
            }
            objects = checked
        case "epcis.error_declared":
            table = "epcis_error_declarations"
            objects = try await pool.query("SELECT hash_id, document_hash, queue_id FROM epcis_error_declarations ORDER BY queue_id").all.map {
                AnchoredObject(ref: try $0.decode("hash_id"), queueId: try $0.decode("queue_id", as: Int64.self), hash: try $0.decode("document_hash"))
            }
        case SupplyAlert.raisedType, SupplyAlert.resolvedType:
            table = "supply_alerts"
            let resolved = entryType == SupplyAlert.resolvedType
            objects = try await store.allAlerts(on: pool).compactMap { alert in
                guard resolved else { return AnchoredObject(ref: alert.id, queueId: alert.queueId, hash: alert.documentHash) }
                guard let queueId = alert.resolveQueueId, let hash = alert.resolutionHash else { return nil }
                return AnchoredObject(ref: alert.id, queueId: queueId, hash: hash)
            }
        default:
            table = "supply_recalls"
            objects = try await pool.query("SELECT id, document_hash, queue_id FROM supply_recalls ORDER BY queue_id").all.map {
                AnchoredObject(ref: try $0.decode("id"), queueId: try $0.decode("queue_id", as: Int64.self), hash: try $0.decode("document_hash"))
            }
        }
        return try AnchoredObject.match(objects, entries: entries, pending: try await scope.unsequencedQueueIds(), table: table)
    }

    /// The stored event, hashed again from its stored form, must still be the event that was anchored.
    static func rehash(_ event: StoredEPCISEvent, entry: EntryFacts?) throws {
        guard let json = try? JSONParser.parse(event.event), case .object(let members)? = try? JSONParser.parse(event.prefixes) else {
            throw VerificationFailure(seq: entry?.seq, table: "epcis_events", detail: "\(event.hashID) is no longer readable JSON")
        }
        var prefixes: [String: String] = [:]
        for member in members { prefixes[member.key] = member.value.stringValue }
        guard EventHash.id(of: json, context: EPCISContext(prefixes: prefixes)) == event.hashID else {
            throw VerificationFailure(seq: entry?.seq, table: "epcis_events", detail: "\(event.hashID) no longer hashes to its event hash id")
        }
    }
}
