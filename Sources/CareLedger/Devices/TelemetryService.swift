import Crypto
import FoundationEssentials
import Ledger
import Postgres

enum TelemetrySeal {
    static func observation(_ id: String) -> [UInt8] { Array("telemetry:\(id)".utf8) }
}

/// Device keys and signed telemetry: a reading is accepted only when its device's registered key
/// signed it, it names that device and the patient the device is assigned to, its counter moves
/// forward and its time is near ours. A request is taken whole or refused whole, storing nothing.
/// Accepted readings are sealed under the patient's key and anchored as one Merkle batch.
struct TelemetryService: Sendable {
    let devices: DeviceService
    var pool: PostgresPool { devices.pool }
    var store: DeviceStore { devices.store }

    // MARK: Keys

    func addKey(deviceId: String, pem: String, replaces: String?, _ call: CallContext) async throws -> (key: DeviceKey, entry: LedgerEntryRow?) {
        let publicKey: Ed25519PublicKey
        do { publicKey = try Ed25519PublicKey(pem: pem) } catch {
            throw DomainError.invalid("'publicKeyPem' must be an Ed25519 public key in PEM (SubjectPublicKeyInfo): \(error).")
        }
        let now = Date()
        let key = DeviceKey(id: ResourceID.generate("dky", now: now), deviceId: deviceId, publicKey: publicKey.rawRepresentation,
                            createdBy: call.caller.orgId, createdAt: now)
        let queueId = try await pool.withTransaction { transaction in
            guard let device = try await store.device(deviceId, lock: true, on: transaction), device.ownerOrg == call.caller.orgId else {
                throw Denial.notVisible("device", deviceId)
            }
            let document = JSONValue.object([("id", .string(key.id)), ("device", .string(deviceId)),
                                             ("publicKey", .string(Base64URL.encode(key.publicKey))), ("at", .string(Timestamp.format(now)))])
            let queueId = try await store.insert(key, documentHash: JCS.documentHash(document), on: transaction)
            if let replaces {
                guard let old = try await store.keys(ids: [replaces], on: transaction)[replaces], old.deviceId == deviceId else {
                    throw DomainError.notFound("Device \(deviceId) has no key \(replaces).")
                }
                _ = try await store.revoke(replaces, replacedBy: key.id, at: now, on: transaction)
            }
            try await devices.audit.record(call.permitted("device_key", key.id, reason: replaces.map { "rotated from \($0)" } ?? "registered"), on: transaction)
            return queueId
        }
        return (key, await devices.ledger.sequencedEntry(queueId: queueId))
    }

    func revokeKey(deviceId: String, keyId: String, _ call: CallContext) async throws -> DeviceKey {
        try await pool.withTransaction { transaction in
            guard let device = try await store.device(deviceId, lock: true, on: transaction), device.ownerOrg == call.caller.orgId else {
                throw Denial.notVisible("device", deviceId)
            }
            guard var key = try await store.keys(ids: [keyId], on: transaction)[keyId], key.deviceId == deviceId else {
                throw DomainError.notFound("Device \(deviceId) has no key \(keyId).")
            }
            guard key.revokedAt == nil else { throw DomainError.conflict("Key \(keyId) is already revoked.") }
            let now = Date()
            _ = try await store.revoke(keyId, replacedBy: nil, at: now, on: transaction)
            try await devices.audit.record(call.permitted("device_key", keyId, reason: "revoked"), on: transaction)
            key.revokedAt = now
            return key
        }
    }

    func keys(deviceId: String, _ call: CallContext) async throws -> [DeviceKey] {
        let device = try await devices.device(deviceId, call)
        return try await store.keys(of: device.id, on: pool)
    }

    // MARK: Ingest

    struct Accepted: Sendable {
        let batchId: String
        let root: String
        let observations: [StoredObservation]
        let queueId: Int64
    }

    func ingest(_ compacts: [String], _ call: CallContext) async throws -> Accepted {
        guard !compacts.isEmpty else { throw DomainError.invalid("'observations' is a non-empty array of JWS compact serializations.") }
        guard compacts.count <= devices.settings.maximumObservations else {
            throw DomainError.device(.batchTooLarge, "'observations' holds at most \(devices.settings.maximumObservations) readings per request; this one has \(compacts.count).")
        }
        var signed: [SignedObservation] = []
        signed.reserveCapacity(compacts.count)
        for (index, compact) in compacts.enumerated() {
            do {
                signed.append(try SignedObservation(compact: compact))
            } catch {
                let refusal: DomainError.DeviceRefusal = error.kind == .algorithm ? .unsupportedAlgorithm : .malformedSignature
                throw DomainError.device(refusal, "observations[\(index)]: \(error.message).")
            }
            if call.caller.role == .device, signed[index].deviceId != call.caller.deviceId {
                throw DomainError.device(.deviceMismatch, "observations[\(index)]: signed as device \(signed[index].deviceId); this key is device \(call.caller.deviceId ?? "")'s.")
            }
        }
        let keys = try await store.keys(ids: Array(Set(signed.map(\.keyId))), on: pool)
        let now = Date()
        for (index, reading) in signed.enumerated() {
            guard let key = keys[reading.keyId], key.deviceId == reading.deviceId else {
                throw DomainError.device(.unknownKey, "observations[\(index)]: \(reading.keyId) is no registered key of device \(reading.deviceId).")
            }
            guard key.revokedAt == nil else { throw DomainError.device(.revokedKey, "observations[\(index)]: key \(key.id) was revoked.") }
            guard let publicKey = try? Ed25519PublicKey(rawRepresentation: key.publicKey), reading.verifies(with: publicKey) else {
                try await rejectedSignature(reading.deviceId, at: now, call)
                throw DomainError.device(.badSignature, "observations[\(index)]: the signature does not verify with key \(key.id).")
            }
            guard abs(Double(reading.issuedAt) - now.timeIntervalSince1970) <= devices.settings.telemetrySkew else {
                throw DomainError.device(.outsideSkew, "observations[\(index)]: signed at \(reading.issuedAt) (iat), more than \(Int(devices.settings.telemetrySkew)) s from now.")
            }
            guard reading.observation["device"]?["reference"]?.stringValue == "Device/\(reading.deviceId)" else {
                throw DomainError.device(.deviceMismatch, "observations[\(index)]: Observation.device must reference Device/\(reading.deviceId), the signing device.")
            }
        }
        return try await pool.withTransaction { transaction in
            let found = try await store.telemetrySenders(Array(Set(signed.map(\.deviceId))), on: transaction)
            var counters: [String: Int64] = [:]
            let dataKeys = try await devices.keys.dataKeys(of: Set(found.values.compactMap(\.patientId)), on: transaction)
            var stored: [StoredObservation] = []
            let batchId = ResourceID.generate("tlb", now: now)
            for (index, reading) in signed.enumerated() {
                guard let device = found[reading.deviceId], call.caller.role == .device || device.ownerOrg == call.caller.orgId else {
                    throw DomainError.device(.deviceMismatch, "observations[\(index)]: device \(reading.deviceId) is not one of yours.")
                }
                guard let patientId = device.patientId else {
                    throw DomainError.device(.patientMismatch, "observations[\(index)]: device \(device.id) is assigned to no patient (move it in_use with a patientId).")
                }
                guard reading.observation["subject"]?["reference"]?.stringValue == "Patient/\(patientId)" else {
                    throw DomainError.device(.patientMismatch, "observations[\(index)]: Observation.subject must reference the patient device \(device.id) is assigned to.")
                }
                let last = counters[device.id] ?? device.lastCounter ?? -1
                guard reading.counter > last else {
                    throw DomainError.device(.replayed, "observations[\(index)]: counter \(reading.counter) is not above \(last), the last accepted from device \(device.id).")
                }
                counters[device.id] = reading.counter
                guard let dataKey = dataKeys[patientId] else { throw DomainError.erased }
                let id = ResourceID.generate("obs", now: now)
                stored.append(StoredObservation(
                    id: id, batchId: batchId, position: index, deviceId: device.id, patientId: patientId, ownerOrg: device.ownerOrg, keyId: reading.keyId,
                    counter: reading.counter, issuedAt: Date(timeIntervalSince1970: Double(reading.issuedAt)), digest: reading.digest,
                    sealed: try AESGCM.seal(Array(reading.compact.utf8), key: dataKey, authenticating: TelemetrySeal.observation(id)), receivedAt: now))
            }
            let root = "sha256:" + Hex.encode(MerkleBatch.root(stored.map { MerkleHash.leaf($0.digest) }[...]))
            let queueId = try await store.insertTelemetry(batchId: batchId, org: call.caller.orgId, root: root, observations: stored, at: now, on: transaction)
            let patients = Set(stored.map(\.patientId)).sorted()
            try await devices.audit.record(patients.map { patientId in
                call.permitted("telemetry", batchId, patientId: patientId, reason: "\(stored.filter { $0.patientId == patientId }.count) readings recorded")
            }, on: transaction)
            return Accepted(batchId: batchId, root: root, observations: stored, queueId: queueId)
        }
    }

    /// Counts the rejection for `/metrics`; the first, tenth, hundredth… for a device raise a
    /// `bad_signature` alert for its owner, so a flood of forgeries is seen without flooding the feed.
    private func rejectedSignature(_ deviceId: String, at now: Date, _ call: CallContext) async throws {
        let count = call.metrics.rejectedSignature(deviceId: deviceId)
        var power = 1
        while power < count, power <= Int.max / 10 { power *= 10 }
        guard power == count, let device = try await store.device(deviceId, lock: false, on: pool) else { return }
        try await store.insert([devices.alert(.badSignature, device: deviceId, epc: nil,
                                              detail: "\(count) telemetry signature\(count == 1 ? "" : "s") from device \(deviceId) did not verify (sent by \(call.caller.orgId))",
                                              parties: [device.ownerOrg], at: now)], on: pool)
    }

    // MARK: Reads

    struct Reading: Sendable {
        let stored: StoredObservation
        let jws: String
    }

    func readings(patientId: String, after: String?, limit: Int, _ call: CallContext) async throws -> [Reading] {
        let access = try await PatientAccess.open(patientId, call, keys: devices.keys, on: pool, category: .lab)
        var readings: [Reading] = []
        for observation in try await store.observations(patientId: patientId, after: after, limit: limit, on: pool)
        where access.canSee(org: observation.ownerOrg, call) {
            let bytes = try AESGCM.open(observation.sealed, key: access.dataKey, authenticating: TelemetrySeal.observation(observation.id))
            readings.append(Reading(stored: observation, jws: String(decoding: bytes, as: UTF8.self)))
        }
        try await devices.audit.record(call.permitted("telemetry", patientId, patientId: patientId, reason: "\(readings.count) readings (\(access.reason))"), on: pool)
        return readings
    }

    /// A reading's receipt: the batch entry's inclusion in a signed tree head, and the reading's
    /// audit path up to the batch root the entry commits to.
    func proof(_ id: String, _ call: CallContext) async throws -> Receipt {
        guard let observation = try await store.observation(id, on: pool),
              observation.ownerOrg == call.caller.orgId || call.caller.patientId == observation.patientId
                || (call.caller.role == .device && call.caller.deviceId == observation.deviceId)
        else { throw Denial.notVisible("observation", id) }
        guard let batch = try await store.batch(observation.batchId, on: pool) else { throw DomainError.inconsistentStorage }
        let leaves = batch.digests.map(MerkleHash.leaf)
        guard let path = MerkleBatch.inclusionProof(index: observation.position, leaves[...]),
              let receipt = try await devices.ledger.receipts(queueIds: [batch.queueId])?.first else {
            throw DomainError.notYetSigned("The reading's batch is not in a signed tree head yet; retry shortly.")
        }
        return receipt.proving(Receipt.Member(digest: Base64.encode(observation.digest), index: Int64(observation.position),
                                              size: Int64(batch.digests.count), proof: path.map(Base64.encode)))
    }
}
