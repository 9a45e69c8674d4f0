import FoundationEssentials
import Postgres

/// A registered device as stored.
struct StoredDevice: Sendable {
    let id: String
    let ownerOrg: String
    let registeredBy: String
    let type: String
    let deviceIdentifier: String?
    let issuer: String?
    let agency: String?
    let lot: String?
    let serial: String?
    let manufactureDate: String?
    let expiryDate: String?
    var status: DeviceStatus
    var location: String
    var patientId: String?
    let rfidEPC: String?
    let telemetryInterval: Int?
    var lastSeenAt: Date?
    var lastSeenLocation: String?
    var lastSeenOrg: String?
    /// A `left_owner` alert was raised for the current stay away from the owner's sites.
    var awayAlerted: Bool
    var lastTelemetryAt: Date?
    var lastCounter: Int64?
    /// The FHIR Device exactly as sent.
    let resource: [UInt8]
    let documentHash: String
    var queueId: Int64
    let createdAt: Date
    var updatedAt: Date

    static let registeredType = "device.registered"
}

/// One lifecycle move as anchored.
struct DeviceMove: Sendable {
    let deviceId: String
    let from: DeviceStatus?
    let to: DeviceStatus
    let location: String?
    let patientId: String?
    let reason: String?
    let actorOrg: String
    let documentHash: String
    let at: Date
    var queueId: Int64 = 0

    static let entryType = "device.event"
}

struct DeviceAlert: Sendable {
    enum Kind: String, CaseIterable, Sendable {
        case unknownTag = "unknown_tag"
        case leftOwner = "left_owner"
        case notSeen = "not_seen"
        case recalled
        case telemetryGap = "telemetry_gap"
        case badSignature = "bad_signature"
    }

    let id: String
    let kind: Kind
    let deviceId: String?
    let epc: String?
    let detail: String
    let parties: [String]
    let documentHash: String
    var queueId: Int64 = 0
    let raisedAt: Date

    static let entryType = "device.alert"
}

struct DeviceKey: Sendable {
    let id: String
    let deviceId: String
    let publicKey: [UInt8]
    let createdBy: String
    let createdAt: Date
    var revokedAt: Date?
    var replacedBy: String?
}

/// An accepted telemetry reading as stored: the compact JWS sealed under the patient's data key.
struct StoredObservation: Sendable {
    let id: String
    let batchId: String
    let position: Int
    let deviceId: String
    let patientId: String
    let ownerOrg: String
    let keyId: String
    let counter: Int64
    let issuedAt: Date
    let digest: [UInt8]
    let sealed: [UInt8]
    let receivedAt: Date
}

/// The filters of an inventory query; nil means any.
struct DeviceFilter: Sendable {
    var owner: String?
    var type: String?
    var deviceIdentifier: String?
    var status: String?
    var location: String?
    var notSeenSince: Date?
    var after: String?
    var limit: Int = 100
}

/// The SQL of the device registry, RFID sightings, device keys, telemetry and device alerts.
struct DeviceStore: Sendable {
    static let separator = "\u{1F}"
    static let rfidBatchType = "device.rfid.batch"
    static let recallType = "device.recall"
    static let telemetryBatchType = "telemetry.batch"
    static let keyType = "device.key"

    // MARK: Locations

    func saveLocation(org: String, name: String, gln: String?, readers: [String], on runner: some QueryRunner) async throws {
        try await runner.query("""
            INSERT INTO device_locations (organization_id, name, gln) VALUES (\(org), \(name), \(gln))
            ON CONFLICT (organization_id, name) DO UPDATE SET gln = EXCLUDED.gln
            """)
        guard !readers.isEmpty else { return }
        try await runner.query("""
            INSERT INTO device_readers (organization_id, reader_id, location_name)
            SELECT \(org), r, \(name) FROM unnest(\(PostgresArray(readers))::text[]) AS r
            ON CONFLICT (organization_id, reader_id) DO UPDATE SET location_name = EXCLUDED.location_name
            """)
    }

    func locations(org: String, on runner: some QueryRunner) async throws -> [(name: String, gln: String?, readers: [String])] {
        try await runner.query("""
            SELECT l.name, l.gln, coalesce(string_agg(r.reader_id, chr(31) ORDER BY r.reader_id), '') AS readers
            FROM device_locations l LEFT JOIN device_readers r ON r.organization_id = l.organization_id AND r.location_name = l.name
            WHERE l.organization_id = \(org) GROUP BY l.name, l.gln ORDER BY l.name
            """).all.map { row in
            let readers: String = try row.decode("readers")
            return (try row.decode("name"), try row.decode("gln", as: String?.self),
                    readers.isEmpty ? [] : readers.split(separator: Character(Self.separator)).map(String.init))
        }
    }

    /// Whether `location` names a site of `org`: a location name it registered, or a GLN.
    func knowsLocation(_ location: String, org: String, on runner: some QueryRunner) async throws -> Bool {
        try await runner.query("""
            SELECT 1 FROM device_locations WHERE organization_id = \(org) AND (name = \(location) OR gln = \(location)) LIMIT 1
            """).first != nil
    }

    /// Where a reader of `org` stands, by its reader id.
    func readerLocation(org: String, reader: String, on runner: some QueryRunner) async throws -> String? {
        try await runner.query("SELECT location_name FROM device_readers WHERE organization_id = \(org) AND reader_id = \(reader)")
            .first.map { try $0.decode("location_name", as: String.self) }
    }

    // MARK: Devices

    private static let columns: StaticString = """
        id, owner_org, registered_by, type, di, issuer, agency, lot, serial, manufacture_date, expiry_date, status, location, patient_id,
        rfid_epc, telemetry_interval, last_seen_at, last_seen_location, last_seen_org, away_alerted, last_telemetry_at, last_counter, resource, document_hash,
        queue_id, created_at, updated_at
        """

    /// A device's registry row with its sighting and telemetry state (see migration 0015).
    private static let joined: StaticString = "devices JOIN device_state ON device_state.device_id = devices.id"

    /// The same for an inventory page, where the state is probed once for each registry row read in
    /// id order (`OFFSET 0` keeps the planner from merging the two id orders instead): a page whose
    /// filters match few devices would otherwise walk every device's state to find them.
    private static let joinedByProbe: StaticString = """
        devices CROSS JOIN LATERAL (SELECT * FROM device_state WHERE device_state.device_id = devices.id OFFSET 0) AS device_state
        """

    static func device(_ row: PostgresRow) throws -> StoredDevice {
        let statusText: String = try row.decode("status")
        guard let status = DeviceStatus(rawValue: statusText) else { throw PostgresError(.decoding, message: "unknown device status") }
        return StoredDevice(
            id: try row.decode("id"), ownerOrg: try row.decode("owner_org"), registeredBy: try row.decode("registered_by"), type: try row.decode("type"),
            deviceIdentifier: try row.decode("di", as: String?.self), issuer: try row.decode("issuer", as: String?.self),
            agency: try row.decode("agency", as: String?.self), lot: try row.decode("lot", as: String?.self), serial: try row.decode("serial", as: String?.self),
            manufactureDate: try row.decode("manufacture_date", as: String?.self), expiryDate: try row.decode("expiry_date", as: String?.self),
            status: status, location: try row.decode("location"), patientId: try row.decode("patient_id", as: String?.self),
            rfidEPC: try row.decode("rfid_epc", as: String?.self), telemetryInterval: try row.decode("telemetry_interval", as: Int?.self),
            lastSeenAt: try row.decode("last_seen_at", as: Date?.self), lastSeenLocation: try row.decode("last_seen_location", as: String?.self),
            lastSeenOrg: try row.decode("last_seen_org", as: String?.self), awayAlerted: try row.decode("away_alerted", as: Bool.self),
            lastTelemetryAt: try row.decode("last_telemetry_at", as: Date?.self),
            lastCounter: try row.decode("last_counter", as: Int64?.self), resource: try row.bytes("resource"),
            documentHash: try row.decode("document_hash"), queueId: try row.decode("queue_id", as: Int64.self),
            createdAt: try row.decode("created_at", as: Date.self), updatedAt: try row.decode("updated_at", as: Date.self))
    }

    /// Stores a new device and queues its registration in one statement. False when its RFID tag is
    /// already another device's.
    func insert(_ device: StoredDevice, on runner: some QueryRunner) async throws -> Int64? {
        let item = LedgerItem(type: StoredDevice.registeredType, actor: device.registeredBy, ref: device.id, hash: device.documentHash)
        let rows = try await runner.query("""
            WITH queued AS (\(LedgerStore.queueAppend([item]))),
            registered AS (
            INSERT INTO devices (id, owner_org, registered_by, type, di, issuer, agency, lot, serial, manufacture_date, expiry_date, status, location,
                                 patient_id, rfid_epc, telemetry_interval, resource, document_hash, queue_id, created_at, updated_at)
            SELECT \(device.id), \(device.ownerOrg), \(device.registeredBy), \(device.type), \(device.deviceIdentifier), \(device.issuer), \(device.agency),
                   \(device.lot), \(device.serial), \(device.manufactureDate), \(device.expiryDate), \(device.status.rawValue), \(device.location),
                   \(device.patientId), \(device.rfidEPC), \(device.telemetryInterval), \(PostgresBytes(device.resource)), \(device.documentHash),
                   queued.id, \(device.createdAt), \(device.updatedAt)
            FROM queued
            ON CONFLICT (rfid_epc) DO NOTHING
            RETURNING id, owner_org, created_at, queue_id),
            state AS (INSERT INTO device_state (device_id, owner, seen_at) SELECT id, owner_org, created_at FROM registered)
            SELECT queue_id FROM registered
            """)
        return try rows.first.map { try $0.decode("queue_id", as: Int64.self) }
    }

    func device(_ id: String, lock: Bool, on runner: some QueryRunner) async throws -> StoredDevice? {
        let rows = lock
            ? try await runner.query("SELECT \(sql: Self.columns) FROM \(sql: Self.joined) WHERE id = \(id) FOR UPDATE")
            : try await runner.query("SELECT \(sql: Self.columns) FROM \(sql: Self.joined) WHERE id = \(id)")
        return try rows.first.map(Self.device)
    }

    /// What accepting a reading needs of its device, its counter locked against concurrent batches.
    struct TelemetrySender: Sendable {
        let id: String
        let ownerOrg: String
        let patientId: String?
        let lastCounter: Int64?
    }

    /// Locks the devices' state rows first, then reads their registry rows in a second statement:
    /// a move holds the state row too (`device(_:lock:)`), so the assignment read here is the one
    /// in force once no move is under way, never a version the lock wait left behind.
    func telemetrySenders(_ ids: [String], on runner: some QueryRunner) async throws -> [String: TelemetrySender] {
        guard !ids.isEmpty else { return [:] }
        let counters = try await runner.query("""
            SELECT device_id, last_counter FROM device_state WHERE device_id = ANY(\(PostgresArray(ids))::text[]) ORDER BY device_id FOR UPDATE
            """).all.reduce(into: [String: Int64?]()) { counters, row in
                // updateValue, not subscript assignment: a device with no counter yet stays in the map.
                counters.updateValue(try row.decode("last_counter", as: Int64?.self), forKey: try row.decode("device_id"))
            }
        let rows = try await runner.query("SELECT id, owner_org, patient_id FROM devices WHERE id = ANY(\(PostgresArray(ids))::text[])")
        var senders: [String: TelemetrySender] = [:]
        for row in rows.all {
            let id: String = try row.decode("id")
            guard let counter = counters[id] else { throw PostgresError(.decoding, message: "device \(id) has no state row") }
            senders[id] = TelemetrySender(id: id, ownerOrg: try row.decode("owner_org"), patientId: try row.decode("patient_id", as: String?.self),
                                          lastCounter: counter)
        }
        return senders
    }

    /// An inventory page, by id, with only the filters given in the statement.
    func devices(_ filter: DeviceFilter, on pool: PostgresPool) async throws -> [StoredDevice] {
        var conditions: [PostgresFragment] = ["true"]
        if let owner = filter.owner { conditions.append("owner_org = \(owner)") }
        if let type = filter.type { conditions.append("type = \(type)") }
        if let di = filter.deviceIdentifier { conditions.append("di = \(di)") }
        if let status = filter.status { conditions.append("status = \(status)") }
        if let location = filter.location { conditions.append("location = \(location)") }
        if let after = filter.after { conditions.append("id > \(after)") }
        guard let since = filter.notSeenSince else {
            return try await pool.query("""
                SELECT \(sql: Self.columns) FROM \(sql: Self.joinedByProbe)
                WHERE \(PostgresFragment.joined(conditions, separator: " AND "))
                ORDER BY id LIMIT \(filter.limit)
                """).all.map(Self.device)
        }
        // The not-seen report: few stale devices are best read from `device_state_by_owner_seen`,
        // many from the site's devices in id order. Only the cutoff's value tells which, so this
        // statement is planned for its values each time, not by a generic plan of the prepared one.
        conditions.append("seen_at < \(since)")
        if let owner = filter.owner { conditions.append("device_state.owner = \(owner)") }
        return try await pool.withTransaction { transaction in
            try await transaction.query("SELECT set_config('plan_cache_mode', 'force_custom_plan', true)")
            return try await transaction.query("""
                SELECT \(sql: Self.columns) FROM \(sql: Self.joined)
                WHERE \(PostgresFragment.joined(conditions, separator: " AND "))
                ORDER BY id LIMIT \(filter.limit)
                """).all.map(Self.device)
        }
    }

    /// Counts of an owner's devices of one DI by status and location (all owners' for a regulator).
    func availability(di: String, owner: String?, on runner: some QueryRunner) async throws -> [(status: String, location: String, count: Int)] {
        // Two statements, not `$2 IS NULL OR owner_org = $2`: a generic plan of that could not put
        // the owner in its index condition and would count every owner's devices of the DI.
        let rows = if let owner {
            try await runner.query("""
                SELECT status, location, count(*)::bigint AS n FROM devices WHERE owner_org = \(owner) AND di = \(di)
                GROUP BY status, location ORDER BY status, location
                """)
        } else {
            try await runner.query("""
                SELECT status, location, count(*)::bigint AS n FROM devices WHERE di = \(di) GROUP BY status, location ORDER BY status, location
                """)
        }
        return try rows.all.map { (try $0.decode("status"), try $0.decode("location"), Int(try $0.decode("n", as: Int64.self))) }
    }

    /// Applies lifecycle moves and stores them, each with its ledger entry, in one statement.
    func apply(_ moves: [DeviceMove], on runner: some QueryRunner) async throws -> [Int64] {
        guard !moves.isEmpty else { return [] }
        // One move per device per statement: the device id is the entry's ref.
        let items = moves.map { LedgerItem(type: DeviceMove.entryType, actor: $0.actorOrg, ref: $0.deviceId, hash: $0.documentHash) }
        let rows = try await runner.query("""
            WITH input AS (
                SELECT * FROM unnest(\(PostgresArray(moves.map { $0.deviceId }))::text[],
                                     \(PostgresArray(moves.map { $0.from?.rawValue }))::text[], \(PostgresArray(moves.map { $0.to.rawValue }))::text[],
                                     \(PostgresArray(moves.map { $0.location }))::text[], \(PostgresArray(moves.map { $0.patientId }))::text[],
                                     \(PostgresArray(moves.map { $0.reason }))::text[], \(PostgresArray(moves.map { $0.actorOrg }))::text[],
                                     \(PostgresArray(moves.map { $0.documentHash }))::text[], \(PostgresArray(moves.map { $0.at }))::timestamptz[])
                     WITH ORDINALITY AS i(device_id, from_status, to_status, location, patient_id, reason, actor_org, document_hash, at, position)),
            queued AS (\(LedgerStore.queueAppend(items))),
            stored AS (
                INSERT INTO device_events (queue_id, device_id, from_status, to_status, location, patient_id, reason, actor_org, document_hash, at)
                SELECT q.id, i.device_id, i.from_status, i.to_status, i.location, i.patient_id, i.reason, i.actor_org, i.document_hash, i.at
                FROM input i JOIN queued q ON q.ref = i.device_id RETURNING 1),
            moved AS (
                UPDATE devices d SET status = i.to_status, location = coalesce(i.location, d.location),
                    patient_id = CASE WHEN i.to_status = 'in_use' THEN i.patient_id ELSE NULL END, updated_at = i.at
                FROM input i WHERE d.id = i.device_id RETURNING 1)
            SELECT q.id FROM input i JOIN queued q ON q.ref = i.device_id ORDER BY i.position
            """)
        return try rows.all.map { try $0.decode("id", as: Int64.self) }
    }

    func moves(of deviceId: String, on runner: some QueryRunner) async throws -> [DeviceMove] {
        try await runner.query("""
            SELECT queue_id, device_id, from_status, to_status, location, patient_id, reason, actor_org, document_hash, at
            FROM device_events WHERE device_id = \(deviceId) ORDER BY queue_id
            """).all.map(Self.move)
    }

    static func move(_ row: PostgresRow) throws -> DeviceMove {
        let to: String = try row.decode("to_status")
        guard let status = DeviceStatus(rawValue: to) else { throw PostgresError(.decoding, message: "unknown device status") }
        return DeviceMove(deviceId: try row.decode("device_id"), from: try row.decode("from_status", as: String?.self).flatMap(DeviceStatus.init(rawValue:)),
                          to: status, location: try row.decode("location", as: String?.self), patientId: try row.decode("patient_id", as: String?.self),
                          reason: try row.decode("reason", as: String?.self), actorOrg: try row.decode("actor_org"),
                          documentHash: try row.decode("document_hash"), at: try row.decode("at", as: Date.self),
                          queueId: try row.decode("queue_id", as: Int64.self))
    }

    // MARK: Recalls

    /// The live devices of a DI in any of `lots` (every lot when empty), locked.
    func recallable(di: String, lots: [String], on runner: some QueryRunner) async throws -> [StoredDevice] {
        try await runner.query("""
            SELECT \(sql: Self.columns) FROM \(sql: Self.joined)
            WHERE di = \(di) AND (cardinality(\(PostgresArray(lots))::text[]) = 0 OR lot = ANY(\(PostgresArray(lots))::text[]))
              AND status NOT IN ('recalled', 'lost', 'retired')
            ORDER BY id FOR UPDATE
            """).all.map(Self.device)
    }

    func insertRecall(id: String, di: String, lots: [String], org: String, reason: String, marked: Int, documentHash: String, at: Date,
                      on runner: some QueryRunner) async throws -> Int64 {
        let queueId = try await LedgerStore().enqueue(LedgerItem(type: Self.recallType, actor: org, ref: id, hash: documentHash), on: runner)
        try await runner.query("""
            INSERT INTO device_recalls (id, di, lots, organization_id, reason, devices_marked, document_hash, queue_id, created_at)
            VALUES (\(id), \(di), \(PostgresArray(lots))::text[], \(org), \(reason), \(marked), \(documentHash), \(queueId), \(at))
            """)
        return queueId
    }

    // MARK: RFID

    /// Serializes the batches of one reader, so repeats across two batches collapse however they race.
    func lockReader(org: String, reader: String, on runner: some QueryRunner) async throws {
        try await runner.query("SELECT pg_advisory_xact_lock(hashtext('rfid:' || \(org)), hashtext(\(reader)))")
    }

    /// The last sighting of each tag at this reader.
    func lastSightings(org: String, reader: String, epcs: [String], on runner: some QueryRunner) async throws -> [String: Date] {
        guard !epcs.isEmpty else { return [:] }
        let rows = try await runner.query("""
            SELECT epc, sighted_at FROM rfid_sightings WHERE organization_id = \(org) AND reader = \(reader) AND epc = ANY(\(PostgresArray(epcs))::text[])
            """)
        var last: [String: Date] = [:]
        for row in rows.all { last[try row.decode("epc")] = try row.decode("sighted_at", as: Date.self) }
        return last
    }

    /// What a sighting needs of a tagged device: whose it is and whether its stay away was alerted.
    struct SightedDevice: Sendable {
        let id: String
        let ownerOrg: String
        let awayAlerted: Bool
    }

    /// The devices carrying these tags, by tag; their state rows locked (the registry rows are not
    /// written, so they are not locked either).
    func devices(byEPC epcs: [String], on runner: some QueryRunner) async throws -> [String: SightedDevice] {
        guard !epcs.isEmpty else { return [:] }
        let rows = try await runner.query("""
            SELECT id, owner_org, rfid_epc, away_alerted FROM \(sql: Self.joined)
            WHERE rfid_epc = ANY(\(PostgresArray(epcs))::text[]) ORDER BY id FOR UPDATE OF device_state
            """)
        var found: [String: SightedDevice] = [:]
        for row in rows.all {
            found[try row.decode("rfid_epc")] = SightedDevice(id: try row.decode("id"), ownerOrg: try row.decode("owner_org"),
                                                              awayAlerted: try row.decode("away_alerted", as: Bool.self))
        }
        return found
    }

    struct Sighting: Sendable {
        let epc: String
        let at: Date
    }

    /// Records one batch: the sightings it collapsed into, the devices they moved, the tags nobody
    /// registered (returns those never seen before by this organization), and the batch itself with
    /// its ledger entry.
    func recordBatch(id: String, org: String, reader: String, location: String, reads: Int, sightings: [Sighting], document: [UInt8],
                     documentHash: String, seen devices: [(id: String, at: Date, away: Bool)], unknown: [Sighting], at now: Date,
                     on runner: some QueryRunner) async throws -> (queueId: Int64, newUnknown: Set<String>) {
        if !sightings.isEmpty {
            // The latest per tag: one statement may not update a row twice.
            let latest = sightings.reduce(into: [String: Date]()) { $0[$1.epc] = max($0[$1.epc] ?? $1.at, $1.at) }.sorted { $0.key < $1.key }
            try await runner.query("""
                INSERT INTO rfid_sightings (organization_id, reader, epc, sighted_at)
                SELECT \(org), \(reader), e, t FROM unnest(\(PostgresArray(latest.map { $0.key }))::text[],
                                                          \(PostgresArray(latest.map { $0.value }))::timestamptz[]) AS s(e, t)
                ON CONFLICT (organization_id, reader, epc) DO UPDATE SET sighted_at = greatest(rfid_sightings.sighted_at, EXCLUDED.sighted_at)
                """)
        }
        if !devices.isEmpty {
            try await runner.query("""
                UPDATE device_state d SET last_seen_at = s.t, seen_at = s.t, last_seen_location = \(location), last_seen_org = \(org),
                    not_seen_alerted = false, away_alerted = s.away
                FROM unnest(\(PostgresArray(devices.map { $0.id }))::text[], \(PostgresArray(devices.map { $0.at }))::timestamptz[],
                            \(PostgresArray(devices.map { $0.away ? "t" : "f" }))::boolean[]) AS s(id, t, away)
                WHERE d.device_id = s.id AND (d.last_seen_at IS NULL OR d.last_seen_at <= s.t)
                """)
        }
        var fresh: Set<String> = []
        if !unknown.isEmpty {
            let rows = try await runner.query("""
                INSERT INTO rfid_unknown_tags (organization_id, epc, first_seen, last_seen, last_location)
                SELECT \(org), e, t, t, \(location) FROM unnest(\(PostgresArray(unknown.map { $0.epc }))::text[],
                                                              \(PostgresArray(unknown.map { $0.at }))::timestamptz[]) AS s(e, t)
                ON CONFLICT (organization_id, epc) DO UPDATE SET last_seen = greatest(rfid_unknown_tags.last_seen, EXCLUDED.last_seen),
                    last_location = EXCLUDED.last_location
                RETURNING epc, (xmax = 0) AS inserted
                """)
            for row in rows.all where try row.decode("inserted", as: Bool.self) { fresh.insert(try row.decode("epc")) }
        }
        let item = LedgerItem(type: Self.rfidBatchType, actor: org, ref: id, hash: documentHash)
        let rows = try await runner.query("""
            WITH queued AS (\(LedgerStore.queueAppend([item])))
            INSERT INTO rfid_batches (id, organization_id, reader, read_count, sighting_count, document, document_hash, queue_id, created_at)
            SELECT \(id), \(org), \(reader), \(reads), \(sightings.count), \(PostgresBytes(document)), \(documentHash), queued.id, \(now) FROM queued
            RETURNING queue_id
            """)
        guard let row = rows.first else { throw PostgresError(.decoding, message: "the batch insert returned nothing") }
        return (try row.decode("queue_id", as: Int64.self), fresh)
    }

    // MARK: Keys

    func insert(_ key: DeviceKey, documentHash: String, on runner: some QueryRunner) async throws -> Int64 {
        let queueId = try await LedgerStore().enqueue(LedgerItem(type: Self.keyType, actor: key.createdBy, ref: key.id, hash: documentHash), on: runner)
        try await runner.query("""
            INSERT INTO device_keys (id, device_id, public_key, created_by, created_at, document_hash, queue_id)
            VALUES (\(key.id), \(key.deviceId), \(PostgresBytes(key.publicKey)), \(key.createdBy), \(key.createdAt), \(documentHash), \(queueId))
            """)
        return queueId
    }

    static func key(_ row: PostgresRow) throws -> DeviceKey {
        DeviceKey(id: try row.decode("id"), deviceId: try row.decode("device_id"), publicKey: try row.bytes("public_key"),
                  createdBy: try row.decode("created_by"), createdAt: try row.decode("created_at", as: Date.self),
                  revokedAt: try row.decode("revoked_at", as: Date?.self), replacedBy: try row.decode("replaced_by", as: String?.self))
    }

    func keys(ids: [String], on runner: some QueryRunner) async throws -> [String: DeviceKey] {
        guard !ids.isEmpty else { return [:] }
        let rows = try await runner.query("""
            SELECT id, device_id, public_key, created_by, created_at, revoked_at, replaced_by FROM device_keys WHERE id = ANY(\(PostgresArray(ids))::text[])
            """)
        return Dictionary(try rows.all.map { let key = try Self.key($0); return (key.id, key) }, uniquingKeysWith: { first, _ in first })
    }

    func keys(of deviceId: String, on runner: some QueryRunner) async throws -> [DeviceKey] {
        try await runner.query("""
            SELECT id, device_id, public_key, created_by, created_at, revoked_at, replaced_by FROM device_keys WHERE device_id = \(deviceId) ORDER BY created_at, id
            """).all.map(Self.key)
    }

    func revoke(_ keyId: String, replacedBy: String?, at time: Date, on runner: some QueryRunner) async throws -> Bool {
        try await runner.query("""
            UPDATE device_keys SET revoked_at = \(time), replaced_by = \(replacedBy) WHERE id = \(keyId) AND revoked_at IS NULL RETURNING id
            """).first != nil
    }

    // MARK: Telemetry

    /// Stores one batch of accepted readings and its ledger entry (whose hash is the batch's Merkle
    /// root), and moves each device's counter and last reading forward.
    func insertTelemetry(batchId: String, org: String, root: String, observations: [StoredObservation], at now: Date,
                         on runner: some QueryRunner) async throws -> Int64 {
        let item = LedgerItem(type: Self.telemetryBatchType, actor: org, ref: batchId, hash: root)
        let rows = try await runner.query("""
            WITH queued AS (\(LedgerStore.queueAppend([item])))
            INSERT INTO telemetry_batches (id, organization_id, size, root, queue_id, created_at)
            SELECT \(batchId), \(org), \(observations.count), \(root), queued.id, \(now) FROM queued
            RETURNING queue_id
            """)
        guard let row = rows.first else { throw PostgresError(.decoding, message: "the batch insert returned nothing") }
        try await runner.query("""
            INSERT INTO telemetry_observations (id, batch_id, position, device_id, patient_id, owner_org, key_id, counter, issued_at, digest, sealed, received_at)
            SELECT i.id, \(batchId), i.position, i.device_id, i.patient_id, i.owner_org, i.key_id, i.counter, i.issued_at, i.digest, i.sealed, \(now)
            FROM unnest(\(PostgresArray(observations.map { $0.id }))::text[], \(PostgresArray(observations.map { Int64($0.position) }))::bigint[],
                        \(PostgresArray(observations.map { $0.deviceId }))::text[], \(PostgresArray(observations.map { $0.patientId }))::text[],
                        \(PostgresArray(observations.map { $0.ownerOrg }))::text[], \(PostgresArray(observations.map { $0.keyId }))::text[],
                        \(PostgresArray(observations.map { $0.counter }))::bigint[], \(PostgresArray(observations.map { $0.issuedAt }))::timestamptz[],
                        \(PostgresArray(observations.map { PostgresBytes($0.digest) }))::bytea[], \(PostgresArray(observations.map { PostgresBytes($0.sealed) }))::bytea[])
                 AS i(id, position, device_id, patient_id, owner_org, key_id, counter, issued_at, digest, sealed)
            """)
        var highest: [String: Int64] = [:]
        for observation in observations { highest[observation.deviceId] = max(highest[observation.deviceId] ?? observation.counter, observation.counter) }
        try await runner.query("""
            UPDATE device_state d SET last_counter = c.counter, last_telemetry_at = \(now), gap_alerted = false
            FROM unnest(\(PostgresArray(Array(highest.keys)))::text[], \(PostgresArray(Array(highest.values)))::bigint[]) AS c(id, counter)
            WHERE d.device_id = c.id
            """)
        return try row.decode("queue_id", as: Int64.self)
    }

    private static let observationColumns: StaticString = """
        id, batch_id, position, device_id, patient_id, owner_org, key_id, counter, issued_at, digest, sealed, received_at
        """

    static func observation(_ row: PostgresRow) throws -> StoredObservation {
        StoredObservation(id: try row.decode("id"), batchId: try row.decode("batch_id"), position: try row.decode("position", as: Int.self),
                          deviceId: try row.decode("device_id"), patientId: try row.decode("patient_id"), ownerOrg: try row.decode("owner_org"),
                          keyId: try row.decode("key_id"), counter: try row.decode("counter", as: Int64.self),
                          issuedAt: try row.decode("issued_at", as: Date.self), digest: try row.bytes("digest"), sealed: try row.bytes("sealed"),
                          receivedAt: try row.decode("received_at", as: Date.self))
    }

    func observations(patientId: String, after: String?, limit: Int, on runner: some QueryRunner) async throws -> [StoredObservation] {
        try await runner.query("""
            SELECT \(sql: Self.observationColumns) FROM telemetry_observations
            WHERE patient_id = \(patientId) AND (\(after)::text IS NULL OR id > \(after))
            ORDER BY id LIMIT \(limit)
            """).all.map(Self.observation)
    }

    func observation(_ id: String, on runner: some QueryRunner) async throws -> StoredObservation? {
        try await runner.query("SELECT \(sql: Self.observationColumns) FROM telemetry_observations WHERE id = \(id)").first.map(Self.observation)
    }

    /// A batch's ledger queue id and its readings' digests in position order: what a member proof is built from.
    func batch(_ id: String, on runner: some QueryRunner) async throws -> (queueId: Int64, root: String, digests: [[UInt8]])? {
        guard let batch = try await runner.query("SELECT queue_id, root FROM telemetry_batches WHERE id = \(id)").first else { return nil }
        let digests = try await runner.query("SELECT digest FROM telemetry_observations WHERE batch_id = \(id) ORDER BY position")
            .all.map { try $0.bytes("digest") }
        return (try batch.decode("queue_id", as: Int64.self), try batch.decode("root"), digests)
    }

    // MARK: Alerts

    func insert(_ alerts: [DeviceAlert], on runner: some QueryRunner) async throws {
        guard !alerts.isEmpty else { return }
        let items = alerts.map { LedgerItem(type: DeviceAlert.entryType, actor: $0.parties.first ?? "", ref: $0.id, hash: $0.documentHash) }
        try await runner.query("""
            WITH input AS (
                SELECT * FROM unnest(\(PostgresArray(alerts.map { $0.id }))::text[], \(PostgresArray(alerts.map { $0.kind.rawValue }))::text[],
                                     \(PostgresArray(alerts.map { $0.deviceId }))::text[], \(PostgresArray(alerts.map { $0.epc }))::text[],
                                     \(PostgresArray(alerts.map { $0.detail }))::text[],
                                     \(PostgresArray(alerts.map { $0.parties.joined(separator: Self.separator) }))::text[],
                                     \(PostgresArray(alerts.map { $0.documentHash }))::text[], \(PostgresArray(alerts.map { $0.raisedAt }))::timestamptz[])
                     AS i(id, kind, device_id, epc, detail, parties, document_hash, raised_at)),
            queued AS (\(LedgerStore.queueAppend(items)))
            INSERT INTO device_alerts (id, kind, device_id, epc, detail, parties, document_hash, queue_id, raised_at)
            SELECT i.id, i.kind, i.device_id, i.epc, i.detail, string_to_array(i.parties, chr(31)), i.document_hash, q.id, i.raised_at
            FROM input i JOIN queued q ON q.ref = i.id
            """)
    }

    private static let alertColumns: StaticString = """
        id, kind, device_id, epc, detail, array_to_string(parties, chr(31)) AS parties, document_hash, queue_id, raised_at
        """

    static func alert(_ row: PostgresRow) throws -> DeviceAlert {
        let kind: String = try row.decode("kind"), parties: String = try row.decode("parties")
        guard let parsed = DeviceAlert.Kind(rawValue: kind) else { throw PostgresError(.decoding, message: "unknown device alert kind") }
        return DeviceAlert(id: try row.decode("id"), kind: parsed, deviceId: try row.decode("device_id", as: String?.self),
                           epc: try row.decode("epc", as: String?.self), detail: try row.decode("detail"),
                           parties: parties.split(separator: Character(separator)).map(String.init), documentHash: try row.decode("document_hash"),
                           queueId: try row.decode("queue_id", as: Int64.self), raisedAt: try row.decode("raised_at", as: Date.self))
    }

    /// The alerts raised by entries among `seqs` that the organization is party to (all to a regulator), in ledger order.
    func alertFeed(org: String, national: Bool, seqs: ClosedRange<Int64>, limit: Int, on runner: some QueryRunner) async throws -> [(alert: DeviceAlert, seq: Int64)] {
        let rows = try await runner.query("""
            WITH scanned AS MATERIALIZED (SELECT seq, queue_id FROM ledger_entries WHERE seq BETWEEN \(seqs.lowerBound) AND \(seqs.upperBound))
            SELECT a.*, e.seq FROM scanned e CROSS JOIN LATERAL (
                SELECT \(sql: Self.alertColumns) FROM device_alerts
                WHERE queue_id = e.queue_id AND (\(national) OR \(org) = ANY(parties)) LIMIT 1) AS a
            ORDER BY e.seq LIMIT \(limit)
            """)
        return try rows.all.map { (try Self.alert($0), try $0.decode("seq", as: Int64.self)) }
    }

    func allAlerts(on runner: some QueryRunner) async throws -> [DeviceAlert] {
        try await runner.query("SELECT \(sql: Self.alertColumns) FROM device_alerts ORDER BY queue_id").all.map(Self.alert)
    }

    /// Live devices last seen (or registered) before `cutoff` and not yet alerted, locked (others skip them).
    func unseen(before cutoff: Date, on runner: some QueryRunner) async throws -> [StoredDevice] {
        try await runner.query("""
            SELECT \(sql: Self.columns) FROM \(sql: Self.joined)
            WHERE rfid_epc IS NOT NULL AND NOT not_seen_alerted AND status NOT IN ('recalled', 'lost', 'retired')
              AND seen_at < \(cutoff)
            ORDER BY id LIMIT 1000 FOR UPDATE OF device_state SKIP LOCKED
            """).all.map(Self.device)
    }

    /// Devices whose last reading (or registration) is older than their declared interval, not yet alerted.
    func silent(at now: Date, on runner: some QueryRunner) async throws -> [StoredDevice] {
        try await runner.query("""
            SELECT \(sql: Self.columns) FROM \(sql: Self.joined)
            WHERE telemetry_interval IS NOT NULL AND NOT gap_alerted AND status NOT IN ('recalled', 'lost', 'retired')
              AND coalesce(last_telemetry_at, created_at) + make_interval(secs => telemetry_interval) < \(now)
            ORDER BY id LIMIT 1000 FOR UPDATE OF device_state SKIP LOCKED
            """).all.map(Self.device)
    }

    func markAlerted(notSeen ids: [String], gap gapIds: [String], on runner: some QueryRunner) async throws {
        try await runner.query("""
            UPDATE device_state SET not_seen_alerted = not_seen_alerted OR device_id = ANY(\(PostgresArray(ids))::text[]),
                                    gap_alerted = gap_alerted OR device_id = ANY(\(PostgresArray(gapIds))::text[])
            WHERE device_id = ANY(\(PostgresArray(ids + gapIds))::text[])
            """)
    }

    func allDevices(on runner: some QueryRunner) async throws -> [StoredDevice] {
        try await runner.query("SELECT \(sql: Self.columns) FROM \(sql: Self.joined) ORDER BY id").all.map(Self.device)
    }
}
