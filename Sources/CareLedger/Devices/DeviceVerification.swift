import Crypto
import Ledger
import Postgres

/// Device entries: a registration's stored resource and an RFID batch's stored document re-hash to
/// their entries, a telemetry batch's readings rebuild its Merkle root; moves, recalls, keys and
/// alerts match theirs.
struct DeviceRecordCheck: AnchoredObjectCheck {
    let entryType: String

    static let all = [StoredDevice.registeredType, DeviceMove.entryType, DeviceStore.recallType, DeviceStore.rfidBatchType, DeviceStore.keyType,
                      DeviceStore.telemetryBatchType, DeviceAlert.entryType].map(DeviceRecordCheck.init)

    func check(entries: [Int64: EntryFacts], in scope: VerificationScope, keys: PatientKeys?) async throws -> Int {
        let pool = scope.pool
        let objects: [AnchoredObject]
        let table: String
        switch entryType {
        case StoredDevice.registeredType:
            table = "devices"
            objects = try await DeviceStore().allDevices(on: pool).map { device in
                guard "sha256:" + SHA256.hexDigest(device.resource) == device.documentHash else {
                    throw VerificationFailure(seq: entries[device.queueId]?.seq, table: table, detail: "\(device.id)'s resource no longer hashes to its registration")
                }
                return AnchoredObject(ref: device.id, queueId: device.queueId, hash: device.documentHash)
            }
        case DeviceStore.rfidBatchType:
            table = "rfid_batches"
            objects = try await pool.query("SELECT id, document, document_hash, queue_id FROM rfid_batches ORDER BY queue_id").all.map { row in
                let id: String = try row.decode("id"), hash: String = try row.decode("document_hash"), queueId = try row.decode("queue_id", as: Int64.self)
                guard "sha256:" + SHA256.hexDigest(try row.bytes("document")) == hash else {
                    throw VerificationFailure(seq: entries[queueId]?.seq, table: table, detail: "batch \(id) no longer hashes to its entry")
                }
                return AnchoredObject(ref: id, queueId: queueId, hash: hash)
            }
        case DeviceStore.telemetryBatchType:
            table = "telemetry_batches"
            let digests = try await pool.query("SELECT batch_id, digest FROM telemetry_observations ORDER BY batch_id, position").all
                .reduce(into: [String: [[UInt8]]]()) { $0[try $1.decode("batch_id"), default: []].append(try $1.bytes("digest")) }
            objects = try await pool.query("SELECT id, root, size, queue_id FROM telemetry_batches ORDER BY queue_id").all.map { row in
                let id: String = try row.decode("id"), root: String = try row.decode("root"), queueId = try row.decode("queue_id", as: Int64.self)
                let leaves = (digests[id] ?? []).map(MerkleHash.leaf)
                guard leaves.count == (try row.decode("size", as: Int.self)), "sha256:" + Hex.encode(MerkleBatch.root(leaves[...])) == root else {
                    throw VerificationFailure(seq: entries[queueId]?.seq, table: "telemetry_observations", detail: "batch \(id)'s readings no longer make its root")
                }
                return AnchoredObject(ref: id, queueId: queueId, hash: root)
            }
        case DeviceMove.entryType:
            table = "device_events"
            objects = try await Self.objects("SELECT device_id AS ref, document_hash, queue_id FROM device_events ORDER BY queue_id", pool)
        case DeviceStore.recallType:
            table = "device_recalls"
            objects = try await Self.objects("SELECT id AS ref, document_hash, queue_id FROM device_recalls ORDER BY queue_id", pool)
        case DeviceStore.keyType:
            table = "device_keys"
            objects = try await Self.objects("SELECT id AS ref, document_hash, queue_id FROM device_keys ORDER BY queue_id", pool)
        default:
            table = "device_alerts"
            objects = try await Self.objects("SELECT id AS ref, document_hash, queue_id FROM device_alerts ORDER BY queue_id", pool)
        }
        return try AnchoredObject.match(objects, entries: entries, pending: try await scope.unsequencedQueueIds(), table: table)
    }

    private static func objects(_ sql: StaticString, _ pool: PostgresPool) async throws -> [AnchoredObject] {
        try await pool.query("\(sql: sql)").all.map {
            AnchoredObject(ref: try $0.decode("ref"), queueId: try $0.decode("queue_id", as: Int64.self), hash: try $0.decode("document_hash"))
        }
    }
}
