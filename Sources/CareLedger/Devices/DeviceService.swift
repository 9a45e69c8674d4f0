import Crypto
import FoundationEssentials
import GS1
import Ledger
import Postgres

/// Limits and windows of the device area.
public struct DeviceSettings: Sendable {
    /// Repeats of one tag at one reader within this many seconds are one sighting.
    public var collapseWindow: Double = 5
    /// A reading signed further than this from our clock is refused.
    public var telemetrySkew: Double = 300
    /// A tagged device no reader has seen for this long raises `not_seen`.
    public var notSeenAfter: Double = 7 * 24 * 3600
    public var maximumReads = 1000
    public var maximumObservations = 1000
    public init() {}
}

/// The device registry's rules: who registers, moves, recalls and reads devices; what an RFID batch
/// does to them; what is anchored and what raises an alert.
struct DeviceService: Sendable {
    let pool: PostgresPool
    let ledger: LedgerService
    let keys: PatientKeys
    let settings: DeviceSettings
    let sweeps = SweepThrottle()
    let store = DeviceStore()
    let audit = AuditStore()
    let idempotencyKeys = IdempotencyStore()

    struct Registration: Sendable {
        let resource: JSONValue
        let type: String?
        let location: String
        let rfidTag: String?
        let owner: String?
        let telemetryInterval: Int?
    }

    // MARK: Registry

    func register(_ registration: Registration, idempotency: Idempotency? = nil, _ call: CallContext) async throws -> (device: StoredDevice, entry: LedgerEntryRow?) {
        try await idempotencyKeys.once(idempotency, orgId: call.caller.orgId, on: pool, replay: { try await replayRegistration($0, registration) }) {
            try await registerOnce(registration, idempotency: idempotency, call)
        }
    }

    /// A retried registration's answer: the device as it was registered (the same request, so the
    /// same location), not as it has moved and been seen since.
    private func replayRegistration(_ id: String, _ registration: Registration) async throws -> (device: StoredDevice, entry: LedgerEntryRow?) {
        guard var device = try await store.device(id, lock: false, on: pool) else { throw DomainError.inconsistentStorage }
        device.status = .received
        device.location = registration.location
        device.patientId = nil
        (device.lastSeenAt, device.lastSeenLocation, device.lastSeenOrg, device.lastTelemetryAt) = (nil, nil, nil, nil)
        device.updatedAt = device.createdAt
        return (device, try await ledger.store.entries(queueIds: [device.queueId], on: pool)[device.queueId])
    }

    private func registerOnce(_ registration: Registration, idempotency: Idempotency?, _ call: CallContext) async throws -> (device: StoredDevice, entry: LedgerEntryRow?) {
        let now = Date()
        let fhir = try FHIRDevice(registration.resource, referenceYear: GS1Date.today.year)
        guard let type = registration.type ?? fhir.type, (1...100).contains(type.count) else {
            throw DomainError.invalid("'type' names the kind of device (1 to 100 characters): give it, or a Device.type coding.")
        }
        let owner = try await owner(of: registration, call)
        let epc = try registration.rfidTag.map(Self.epc)
        if let interval = registration.telemetryInterval, !(1...31_536_000).contains(interval) {
            throw DomainError.invalid("'telemetryIntervalSeconds' must be 1 to 31536000.")
        }
        let canonical = JCS.canonicalize(registration.resource)
        var device = StoredDevice(
            id: ResourceID.generate("dev", now: now), ownerOrg: owner, registeredBy: call.caller.orgId, type: type,
            deviceIdentifier: fhir.deviceIdentifier, issuer: fhir.issuer, agency: fhir.agency?.rawValue, lot: fhir.lot, serial: fhir.serial,
            manufactureDate: fhir.manufactureDate, expiryDate: fhir.expiryDate, status: .received, location: registration.location, patientId: nil,
            rfidEPC: epc, telemetryInterval: registration.telemetryInterval, lastSeenAt: nil, lastSeenLocation: nil, lastSeenOrg: nil,
            awayAlerted: false, lastTelemetryAt: nil, lastCounter: nil, resource: canonical, documentHash: "sha256:" + SHA256.hexDigest(canonical),
            queueId: 0, createdAt: now, updatedAt: now)
        let queueId = try await pool.withTransaction { transaction in
            try await checkLocation(registration.location, org: owner, on: transaction)
            guard let queueId = try await store.insert(device, on: transaction) else {
                throw DomainError.conflict("RFID tag \(epc ?? "") is already another device's.")
            }
            try await audit.record(call.permitted("device", device.id, reason: "registered for \(owner)"), on: transaction)
            try await idempotencyKeys.record(idempotency, orgId: call.caller.orgId, resourceId: device.id, on: transaction)
            return queueId
        }
        device.queueId = queueId
        return (device, await ledger.sequencedEntry(queueId: queueId))
    }

    /// The owner: a hospital registers its own devices; a manufacturer names the hospital it ships to.
    private func owner(of registration: Registration, _ call: CallContext) async throws -> String {
        guard call.caller.role == .manufacturer else {
            if let owner = registration.owner, owner != call.caller.orgId {
                throw DomainError.invalid("'owner' is your own organization; only a manufacturer registers devices for another.")
            }
            return call.caller.orgId
        }
        guard let owner = registration.owner else { throw DomainError.invalid("'owner' names the organization the device is shipped to.") }
        guard let organization = try await IdentityStore().organization(owner, on: pool), organization.kind == OrganizationKind.hospital.rawValue else {
            throw DomainError.invalid("'owner' must be a registered hospital.")
        }
        return owner
    }

    /// A location is a GLN, or a name the owner registered.
    func checkLocation(_ location: String, org: String, on runner: some QueryRunner) async throws {
        guard (1...200).contains(location.count) else { throw DomainError.invalid("'location' must be 1 to 200 characters.") }
        if location.count == 13, location.allSatisfy(\.isNumber) {
            do { _ = try GLN(location) } catch { throw DomainError.invalidResource(path: "location", problem: error.message) }
            return
        }
        guard try await store.knowsLocation(location, org: org, on: runner) else {
            throw DomainError.invalid("'location' \(location) is neither a GLN nor a location \(org) registered (POST /v1/devices/locations).")
        }
    }

    /// A tag as an EPC pure-identity URN: from a pure-identity or tag URN, or the hex of its EPC bank.
    static func epc(_ text: String) throws -> String {
        if text.hasPrefix("urn:epc:id:sgtin:") || text.hasPrefix("urn:epc:id:giai:") {
            guard text.utf8.count <= 100, text.split(separator: ":").last?.split(separator: ".", omittingEmptySubsequences: false).count ?? 0 >= 2 else {
                throw DomainError.invalidResource(path: "epc", problem: "\(text.prefix(100)) is not an SGTIN or GIAI URN")
            }
            return text
        }
        if text.hasPrefix("urn:epc:tag:sgtin-96:") || text.hasPrefix("urn:epc:tag:giai-96:") {
            let scheme = text.hasPrefix("urn:epc:tag:sgtin-96:") ? "sgtin" : "giai"
            let parts = text.split(separator: ":").last?.split(separator: ".", omittingEmptySubsequences: false) ?? []
            guard parts.count >= 3 else { throw DomainError.invalidResource(path: "epc", problem: "\(text.prefix(100)) is not a tag URI") }
            return "urn:epc:id:\(scheme):" + parts.dropFirst().joined(separator: ".")
        }
        if text.hasPrefix("urn:") {
            throw DomainError.device(.unsupportedTag, "epc: \(text.prefix(40)) is not an SGTIN or GIAI EPC; RFID tags are read as SGTIN-96 or GIAI-96.")
        }
        do {
            return try EPCTag(hex: text).pureIdentity
        } catch let error where error.code == "unsupported_header" {
            throw DomainError.device(.unsupportedTag, "epc: \(error.message).")
        } catch {
            throw DomainError.invalidResource(path: "epc", problem: error.message)
        }
    }

    func device(_ id: String, _ call: CallContext) async throws -> StoredDevice {
        guard let device = try await store.device(id, lock: false, on: pool), Self.sees(device, call) else { throw Denial.notVisible("device", id) }
        return device
    }

    static func sees(_ device: StoredDevice, _ call: CallContext) -> Bool {
        call.caller.role == .national || device.ownerOrg == call.caller.orgId || device.registeredBy == call.caller.orgId
            || (call.caller.role == .device && call.caller.deviceId == device.id)
    }

    func moves(of device: StoredDevice) async throws -> [DeviceMove] {
        try await store.moves(of: device.id, on: pool)
    }

    // MARK: Lifecycle

    struct Move: Sendable {
        let to: String
        let location: String?
        let patientId: String?
        let reason: String?
    }

    func move(_ id: String, _ request: Move, _ call: CallContext) async throws -> (move: DeviceMove, entry: LedgerEntryRow?) {
        guard let to = DeviceStatus(rawValue: request.to) else {
            throw DomainError.invalid("'to' must be one of \(DeviceStatus.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
        if request.patientId != nil, to != .inUse { throw DomainError.invalid("'patientId' assigns a device in use; 'to' is \(to.rawValue).") }
        if let reason = request.reason, reason.count > 500 { throw DomainError.invalid("'reason' is at most 500 characters.") }
        if let patientId = request.patientId {
            // The owner reaches the patient (custodian, consent or the glass broken) before assigning a device to them.
            _ = try await PatientAccess.open(patientId, call, keys: keys, on: pool, category: .lab)
        }
        let now = Date()
        let move = try await pool.withTransaction { transaction in
            guard let device = try await store.device(id, lock: true, on: transaction), device.ownerOrg == call.caller.orgId else {
                throw Denial.notVisible("device", id)
            }
            guard DeviceLifecycle.allows(device.status, to) else {
                let next = DeviceLifecycle.next(from: device.status).map(\.rawValue)
                throw DomainError.device(.transitionNotAllowed, "Device \(id) is \(device.status.rawValue); "
                    + (next.isEmpty ? "that state is final." : "it can move to \(next.joined(separator: ", ")), not \(to.rawValue)."))
            }
            if let location = request.location { try await checkLocation(location, org: device.ownerOrg, on: transaction) }
            var move = DeviceMove(deviceId: id, from: device.status, to: to, location: request.location, patientId: request.patientId,
                                  reason: request.reason, actorOrg: call.caller.orgId,
                                  documentHash: "", at: now)
            move = Self.hashed(move)
            move.queueId = try await store.apply([move], on: transaction)[0]
            try await audit.record(call.permitted("device", id, patientId: request.patientId, reason: "\(device.status.rawValue) to \(to.rawValue)"),
                                   on: transaction)
            return move
        }
        return (move, await ledger.sequencedEntry(queueId: move.queueId))
    }

    /// A move's anchored document: what happened to which device, when, by whom.
    static func hashed(_ move: DeviceMove) -> DeviceMove {
        let document = JSONValue.object([
            ("device", .string(move.deviceId)), ("from", move.from.map { .string($0.rawValue) } ?? .null), ("to", .string(move.to.rawValue)),
            ("location", move.location.map(JSONValue.string) ?? .null), ("patientId", move.patientId.map(JSONValue.string) ?? .null),
            ("reason", move.reason.map(JSONValue.string) ?? .null), ("actor", .string(move.actorOrg)), ("at", .string(Timestamp.format(move.at))),
        ])
        return DeviceMove(deviceId: move.deviceId, from: move.from, to: move.to, location: move.location, patientId: move.patientId,
                          reason: move.reason, actorOrg: move.actorOrg, documentHash: JCS.documentHash(document), at: move.at)
    }

    // MARK: Recalls

    func recall(di: String, lots: [String], reason: String, _ call: CallContext) async throws -> (id: String, marked: [StoredDevice], entry: LedgerEntryRow?) {
        guard (1...100).contains(di.count) else { throw DomainError.invalid("'di' is the device identifier being recalled.") }
        guard lots.count <= 1000, lots.allSatisfy({ (1...100).contains($0.count) }) else { throw DomainError.invalid("'lots' is at most 1000 lot numbers.") }
        guard (1...1000).contains(reason.count) else { throw DomainError.invalid("'reason' must be 1 to 1000 characters.") }
        let now = Date()
        let id = ResourceID.generate("drc", now: now)
        let (marked, queueId) = try await pool.withTransaction { transaction in
            let devices = try await store.recallable(di: di, lots: lots, on: transaction)
            let moves = devices.map { device in
                Self.hashed(DeviceMove(deviceId: device.id, from: device.status, to: .recalled, location: nil, patientId: nil,
                                       reason: "recall \(id): \(reason)", actorOrg: call.caller.orgId, documentHash: "", at: now))
            }
            _ = try await store.apply(moves, on: transaction)
            let document = JSONValue.object([("id", .string(id)), ("di", .string(di)), ("lots", .array(lots.map(JSONValue.string))),
                                             ("reason", .string(reason)), ("by", .string(call.caller.orgId)), ("at", .string(Timestamp.format(now)))])
            let queueId = try await store.insertRecall(id: id, di: di, lots: lots, org: call.caller.orgId, reason: reason, marked: devices.count,
                                                       documentHash: JCS.documentHash(document), at: now, on: transaction)
            try await store.insert(devices.map { device in
                alert(.recalled, device: device.id, epc: device.rfidEPC, detail: "recall \(id) of \(di)\(device.lot.map { " lot \($0)" } ?? ""): \(reason)",
                      parties: [device.ownerOrg, call.caller.orgId], at: now)
            }, on: transaction)
            try await audit.record(call.permitted("device_recall", id, reason: "\(devices.count) devices marked"), on: transaction)
            return (devices, queueId)
        }
        return (id, marked, await ledger.sequencedEntry(queueId: queueId))
    }

    // MARK: Locations and inventory

    func saveLocation(name: String, gln: String?, readers: [String], _ call: CallContext) async throws {
        guard (1...200).contains(name.count), !(name.count == 13 && name.allSatisfy(\.isNumber)) else {
            throw DomainError.invalid("'name' must be 1 to 200 characters, and not a GLN.")
        }
        if let gln { do { _ = try GLN(gln) } catch { throw DomainError.invalidResource(path: "gln", problem: error.message) } }
        guard readers.count <= 100, readers.allSatisfy({ (1...100).contains($0.count) }) else {
            throw DomainError.invalid("'readers' is at most 100 reader ids of 1 to 100 characters.")
        }
        try await pool.withTransaction { transaction in
            try await store.saveLocation(org: call.caller.orgId, name: name, gln: gln, readers: Array(Set(readers)).sorted(), on: transaction)
            try await audit.record(call.permitted("device_location", name, reason: "\(readers.count) readers"), on: transaction)
        }
    }

    func locations(_ call: CallContext) async throws -> [(name: String, gln: String?, readers: [String])] {
        try await store.locations(org: call.caller.orgId, on: pool)
    }

    func inventory(_ filter: DeviceFilter, _ call: CallContext) async throws -> [StoredDevice] {
        var filter = filter
        if call.caller.role != .national {
            if let owner = filter.owner, owner != call.caller.orgId { throw DomainError.forbidden }
            filter.owner = call.caller.orgId
        }
        if let status = filter.status, DeviceStatus(rawValue: status) == nil {
            throw DomainError.invalid("'status' must be one of \(DeviceStatus.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
        return try await store.devices(filter, on: pool)
    }

    func availability(di: String, _ call: CallContext) async throws -> [(status: String, location: String, count: Int)] {
        try await store.availability(di: di, owner: call.caller.role == .national ? nil : call.caller.orgId, on: pool)
    }

    // MARK: Alerts

    func alert(_ kind: DeviceAlert.Kind, device: String?, epc: String?, detail: String, parties: [String], at now: Date) -> DeviceAlert {
        var distinct: [String] = []
        for party in parties where !distinct.contains(party) { distinct.append(party) }
        let id = ResourceID.generate("dal", now: now)
        let document = JSONValue.object([
            ("id", .string(id)), ("kind", .string(kind.rawValue)), ("device", device.map(JSONValue.string) ?? .null),
            ("epc", epc.map(JSONValue.string) ?? .null), ("detail", .string(detail)), ("parties", .array(distinct.map(JSONValue.string))),
            ("raisedAt", .string(Timestamp.format(now))),
        ])
        return DeviceAlert(id: id, kind: kind, deviceId: device, epc: epc, detail: detail, parties: distinct, documentHash: JCS.documentHash(document),
                           raisedAt: now)
    }

    /// Raises `not_seen` for tagged devices no reader saw within the window and `telemetry_gap` for
    /// devices silent past their interval; each once until the device is seen or heard again. Runs
    /// as the alert feed is polled, a sweep per few seconds per process.
    func sweep(now: Date = Date()) async throws {
        guard sweeps.due(now: ContinuousClock.now) else { return }
        try await pool.withTransaction { transaction in
            let unseen = try await store.unseen(before: now.addingTimeInterval(-settings.notSeenAfter), on: transaction)
            let silent = try await store.silent(at: now, on: transaction)
            guard !unseen.isEmpty || !silent.isEmpty else { return }
            var alerts = unseen.map { device in
                alert(.notSeen, device: device.id, epc: device.rfidEPC,
                      detail: device.lastSeenAt.map { "last seen \(Timestamp.format($0)) at \(device.lastSeenLocation ?? device.location)" }
                          ?? "never seen by a reader since registration at \(device.location)",
                      parties: [device.ownerOrg], at: now)
            }
            alerts += silent.map { device in
                alert(.telemetryGap, device: device.id, epc: nil,
                      detail: "no reading since \(Timestamp.format(device.lastTelemetryAt ?? device.createdAt)); the device declared one every \(device.telemetryInterval ?? 0) s",
                      parties: [device.ownerOrg], at: now)
            }
            try await store.insert(alerts, on: transaction)
            try await store.markAlerted(notSeen: unseen.map(\.id), gap: silent.map(\.id), on: transaction)
        }
    }

    func alerts(_ feed: LedgerFeed, _ call: CallContext) async throws -> LedgerFeed.Page<(alert: DeviceAlert, seq: Int64)> {
        let org = call.caller.orgId, national = call.caller.role == .national
        return try await feed.poll(ledger, seq: { $0.seq }) { seqs, limit, source in
            try await store.alertFeed(org: org, national: national, seqs: seqs, limit: limit, on: source)
        }
    }
}
