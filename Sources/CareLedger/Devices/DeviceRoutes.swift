import FoundationEssentials
import HTTP
import Ledger

/// `/v1/devices` (registry, lifecycle, recalls, locations, inventory, RFID reads, keys, alerts) and
/// `/v1/telemetry` (signed readings and their proofs), with the patients' telemetry reads.
enum DeviceRoutes {
    static func register(in api: inout APIRouteBuilder, ledger: LedgerService, keys: PatientKeys, settings: DeviceSettings) {
        let service = DeviceService(pool: api.access.pool, ledger: ledger, keys: keys, settings: settings)
        let telemetry = TelemetryService(devices: service)

        api.on(.post, "/v1/devices", .devicesRegister) { context in
            let body = try JSONBody.parse(context.request, fields: ["resource", "type", "location", "rfidTag", "owner", "telemetryIntervalSeconds"])
            guard let resource = body["resource"] else { throw DomainError.invalid("'resource' is the FHIR R4 Device.") }
            let location = try requiredString(body, "location", "'location' (a GLN or a registered location name) is required.")
            let interval = try body["telemetryIntervalSeconds"].map { value throws -> Int in
                guard let number = value.numberValue, number.rounded() == number, (1...31_536_000).contains(number) else {
                    throw DomainError.invalid("'telemetryIntervalSeconds' must be an integer from 1 to 31536000.")
                }
                return Int(number)
            }
            let registration = DeviceService.Registration(
                resource: resource, type: try optionalString(body, "type"), location: location, rfidTag: try optionalString(body, "rfidTag"),
                owner: try optionalString(body, "owner"), telemetryInterval: interval)
            let (device, entry) = try await service.register(registration, idempotency: try Idempotency.of(context.request), context.call)
            var response = Response.json(.created, try deviceJSON(device, ledger: entry.map(LedgerRef.init), history: nil))
            response.headers.add(name: "Location", value: "/v1/devices/\(device.id)")
            return response
        }

        api.on(.get, "/v1/devices", .devicesRead) { context in
            let query = try context.query()
            let pagination = try Pagination(query)
            var filter = DeviceFilter(owner: try queryText(query, "owner"), type: try queryText(query, "type"), deviceIdentifier: try queryText(query, "di"),
                                      status: try queryText(query, "status"), location: try queryText(query, "location"),
                                      after: try queryText(query, "after"), limit: pagination.limit + 1)
            if let since = query["notSeenSince"] {
                guard let date = Timestamp.parse(since) else { throw DomainError.invalid("'notSeenSince' must be an RFC 3339 timestamp.") }
                filter.notSeenSince = date
            }
            let devices = try await service.inventory(filter, context.call)
            let shown = devices.prefix(pagination.limit)
            return try JSONBody.page(encodedItems: try shown.map { try deviceJSON($0, ledger: nil, history: nil) },
                                     next: devices.count > pagination.limit ? shown.last?.id : nil)
        }

        api.on(.get, "/v1/devices/availability", .devicesRead) { context in
            guard let di = try queryText(try context.query(), "di"), (1...100).contains(di.count) else {
                throw DomainError.invalid("'di' is the device identifier you are about to buy.")
            }
            let counts = try await service.availability(di: di, context.call)
            let available = counts.filter { $0.status == DeviceStatus.available.rawValue }
            return try JSONBody.response(.ok, Availability(
                di: di, owned: counts.reduce(0) { $0 + $1.count }, available: available.reduce(0) { $0 + $1.count },
                availableAt: available.map { LocationCount(location: $0.location, count: $0.count) },
                byStatus: Dictionary(counts.map { ($0.status, $0.count) }, uniquingKeysWith: +)))
        }

        api.on(.get, "/v1/devices/{deviceId}", .devicesRead) { context in
            let device = try await service.device(try context.parameter("deviceId"), context.call)
            return .json(.ok, try deviceJSON(device, ledger: nil, history: try await service.moves(of: device)))
        }

        api.on(.post, "/v1/devices/{deviceId}/events", .devicesMove) { context in
            let body = try JSONBody.parse(context.request, fields: ["to", "location", "patientId", "reason"])
            let to = try requiredString(body, "to", "'to' is the state the device moves to.")
            let move = DeviceService.Move(to: to, location: try optionalString(body, "location"), patientId: try optionalString(body, "patientId"),
                                          reason: try optionalString(body, "reason"))
            let (moved, entry) = try await service.move(try context.parameter("deviceId"), move, context.call)
            return try JSONBody.response(.created, MoveView(moved, ledger: entry.map(LedgerRef.init)))
        }

        api.on(.post, "/v1/devices/recalls", .devicesRecall) { context in
            let body = try JSONBody.parse(context.request, fields: ["di", "lots", "reason"])
            let di = try requiredString(body, "di", "'di' and 'reason' are required; 'lots' narrows the recall to lots.")
            let reason = try requiredString(body, "reason", "'di' and 'reason' are required; 'lots' narrows the recall to lots.")
            let lots = try stringArray(body["lots"], "lots") ?? []
            let recall = try await service.recall(di: di, lots: lots, reason: reason, context.call)
            return try JSONBody.response(.created, RecallView(id: recall.id, di: di, lots: lots, devicesMarked: recall.marked.count,
                                                              owners: Set(recall.marked.map(\.ownerOrg)).count, ledger: recall.entry.map(LedgerRef.init)))
        }

        api.on(.post, "/v1/devices/locations", .devicesLocations) { context in
            let body = try JSONBody.parse(context.request, fields: ["name", "gln", "readers"])
            let name = try requiredString(body, "name", "'name' names the location (a ward, a store room).")
            let gln = try optionalString(body, "gln"), readers = try stringArray(body["readers"], "readers") ?? []
            try await service.saveLocation(name: name, gln: gln, readers: readers, context.call)
            return try JSONBody.response(.created, LocationView(name: name, gln: gln, readers: readers))
        }

        api.on(.get, "/v1/devices/locations", .devicesLocations) { context in
            try JSONBody.response(.ok, Page(items: try await service.locations(context.call).map { LocationView(name: $0.name, gln: $0.gln, readers: $0.readers) },
                                            next: nil))
        }

        api.on(.post, "/v1/devices/rfid-reads", .devicesRFID) { context in
            let body = try JSONBody.parse(context.request, fields: ["readerId", "readPoint", "reads"])
            let result = try await service.ingest(try RFIDBatch(body, limit: settings.maximumReads), idempotency: try Idempotency.of(context.request),
                                                  context.call)
            let entry = await ledger.sequencedEntry(queueId: result.queueId)
            return try JSONBody.response(.created, IngestView(result, ledger: entry.map(LedgerRef.init)))
        }

        api.on(.get, "/v1/devices/alerts", .devicesAlerts) { context in
            try await service.sweep()
            let page = try await service.alerts(try LedgerFeed(try context.query()), context.call)
            return try JSONBody.page(encodedItems: try page.shown.map { try JSONBody.encoded(AlertView($0.alert, seq: $0.seq)) }, next: page.next,
                                     cursor: .some(page.cursor))
        }

        api.on(.post, "/v1/devices/{deviceId}/keys", .devicesKeys) { context in
            let body = try JSONBody.parse(context.request, fields: ["publicKeyPem", "replaces"])
            // Lines and all, read by OpenSSL only; the database gets the raw key.
            guard let pem = body["publicKeyPem"]?.stringValue, pem.utf8.count <= 4096 else {
                throw DomainError.invalid("'publicKeyPem' is the device's Ed25519 public key in PEM.")
            }
            let (key, entry) = try await telemetry.addKey(deviceId: try context.parameter("deviceId"), pem: pem, replaces: try optionalString(body, "replaces"),
                                                          context.call)
            return try JSONBody.response(.created, KeyView(key, ledger: entry.map(LedgerRef.init)))
        }

        api.on(.get, "/v1/devices/{deviceId}/keys", .devicesKeys) { context in
            try JSONBody.response(.ok, Page(items: try await telemetry.keys(deviceId: try context.parameter("deviceId"), context.call).map { KeyView($0, ledger: nil) },
                                            next: nil))
        }

        api.on(.post, "/v1/devices/{deviceId}/keys/{keyId}/revoke", .devicesKeys) { context in
            let key = try await telemetry.revokeKey(deviceId: try context.parameter("deviceId"), keyId: try context.parameter("keyId"), context.call)
            return try JSONBody.response(.ok, KeyView(key, ledger: nil))
        }

        api.on(.post, "/v1/telemetry", .telemetryIngest) { context in
            let body = try JSONBody.parse(context.request, fields: ["observations"])
            guard let compacts = try stringArray(body["observations"], "observations") else {
                throw DomainError.invalid("'observations' is an array of JWS compact serializations.")
            }
            let accepted = try await telemetry.ingest(compacts, context.call)
            let entry = await ledger.sequencedEntry(queueId: accepted.queueId)
            return try JSONBody.response(.created, TelemetryAccepted(
                batch: accepted.batchId, root: accepted.root, accepted: accepted.observations.count,
                observations: accepted.observations.map { AcceptedReading(id: $0.id, device: $0.deviceId, counter: $0.counter) },
                ledger: entry.map(LedgerRef.init)))
        }

        api.on(.get, "/v1/telemetry/{observationId}/proof", .telemetryProof) { context in
            try JSONBody.response(.ok, try await telemetry.proof(try context.parameter("observationId"), context.call))
        }

        api.on(.get, "/v1/patients/{patientId}/telemetry", .telemetryRead) { context in
            try await readings(try context.parameter("patientId"), context, telemetry)
        }

        api.on(.get, "/v1/me/telemetry", .meTelemetry) { context in
            guard let patientId = context.call.caller.patientId else { throw DomainError.forbidden }
            return try await readings(patientId, context, telemetry)
        }
    }

    private static func readings(_ patientId: String, _ context: APIContext, _ telemetry: TelemetryService) async throws -> Response {
        let pagination = try Pagination(try context.query())
        let readings = try await telemetry.readings(patientId: patientId, after: pagination.after, limit: pagination.limit + 1, context.call)
        let shown = readings.prefix(pagination.limit)
        return try JSONBody.page(encodedItems: try shown.map { reading in
            let observation = try? SignedObservation(compact: reading.jws)
            return try JSONBody.object(ReadingView(reading), adding: [("observation", observation?.canonicalObservation ?? Array("null".utf8))])
        }, next: readings.count > pagination.limit ? shown.last?.stored.id : nil)
    }

    private static func optionalString(_ body: JSONValue, _ name: String) throws -> String? {
        guard let value = body[name], value != .null else { return nil }
        guard let text = value.stringValue else { throw DomainError.invalid("'\(name)' must be a string.") }
        return try PlainText.validated(text, field: name)
    }

    private static func requiredString(_ body: JSONValue, _ name: String, _ problem: String) throws -> String {
        guard let text = try optionalString(body, name) else { throw DomainError.invalid(problem) }
        return text
    }

    /// The query's text parameters, each checked like a body's.
    private static func queryText(_ query: QueryParameters, _ name: String) throws -> String? {
        try query[name].map { text throws(DomainError) in try PlainText.validated(text, field: name) }
    }

    private static func stringArray(_ value: JSONValue?, _ name: String) throws -> [String]? {
        guard let value, value != .null else { return nil }
        guard case .array(let items) = value else { throw DomainError.invalid("'\(name)' must be an array of strings.") }
        let strings = items.compactMap(\.stringValue)
        guard strings.count == items.count else { throw DomainError.invalid("'\(name)' must be an array of strings.") }
        return try strings.map { try PlainText.validated($0, field: name, maximum: 65_536) }
    }

    /// A device as the API shows it, written as RFC 8785 JSON
    /// with the FHIR resource spliced in as sent. An inventory page carries fifty of these, and
    /// Foundation's JSONEncoder took most of the page's time.
    private static func deviceJSON(_ device: StoredDevice, ledger: LedgerRef?, history: [DeviceMove]?) throws -> [UInt8] {
        // Members in RFC 8785 order already, so canonicalizing does not sort them.
        var fields: [(key: String, value: JSONValue)] = [
            ("createdAt", .string(Timestamp.format(device.createdAt))), ("documentHash", .string(device.documentHash)), ("id", .string(device.id)),
        ]
        if let seen = device.lastSeenAt {
            var lastSeen: [(key: String, value: JSONValue)] = [("at", .string(Timestamp.format(seen)))]
            if let location = device.lastSeenLocation { lastSeen.append(("location", .string(location))) }
            if let organization = device.lastSeenOrg { lastSeen.append(("organization", .string(organization))) }
            fields.append(("lastSeen", .object(lastSeen)))
        }
        if let reading = device.lastTelemetryAt { fields.append(("lastTelemetryAt", .string(Timestamp.format(reading)))) }
        fields += [("location", .string(device.location)), ("owner", .string(device.ownerOrg))]
        if let patientId = device.patientId { fields.append(("patientId", .string(patientId))) }
        fields.append(("registeredBy", .string(device.registeredBy)))
        if let epc = device.rfidEPC { fields.append(("rfidTag", .string(epc))) }
        fields.append(("status", .string(device.status.rawValue)))
        if let interval = device.telemetryInterval { fields.append(("telemetryIntervalSeconds", .number(Double(interval)))) }
        fields.append(("type", .string(device.type)))
        if [device.deviceIdentifier, device.lot, device.serial, device.manufactureDate, device.expiryDate].contains(where: { $0 != nil }) {
            let udi: [(key: String, value: String?)] = [
                ("agency", device.agency), ("deviceIdentifier", device.deviceIdentifier), ("expiryDate", device.expiryDate), ("issuer", device.issuer),
                ("lot", device.lot), ("manufactureDate", device.manufactureDate), ("serial", device.serial),
            ]
            fields.append(("udi", .object(udi.compactMap { field in field.value.map { (field.key, JSONValue.string($0)) } })))
        }
        fields.append(("updatedAt", .string(Timestamp.format(device.updatedAt))))
        var members: [(name: String, json: [UInt8])] = [("resource", device.resource)]
        if let ledger { members.append(("ledger", try JSONBody.encoded(ledger))) }
        if let history { members.append(("history", try JSONBody.encoded(history.map { MoveView($0, ledger: nil) }))) }
        return try JSONBody.object(encoded: JCS.canonicalize(.object(fields)), adding: members)
    }
}

private struct MoveView: Encodable {
    let device: String
    let from: String?
    let to: String
    let location: String?
    let patientId: String?
    let reason: String?
    let by: String
    let documentHash: String
    let at: String
    let ledger: LedgerRef?

    init(_ move: DeviceMove, ledger: LedgerRef?) {
        device = move.deviceId
        from = move.from?.rawValue
        to = move.to.rawValue
        location = move.location
        patientId = move.patientId
        reason = move.reason
        by = move.actorOrg
        documentHash = move.documentHash
        at = Timestamp.format(move.at)
        self.ledger = ledger
    }
}

private struct RecallView: Encodable {
    let id: String
    let di: String
    let lots: [String]
    let devicesMarked: Int
    let owners: Int
    let ledger: LedgerRef?
}

private struct LocationView: Encodable {
    let name: String
    let gln: String?
    let readers: [String]
}

private struct LocationCount: Encodable {
    let location: String
    let count: Int
}

private struct Availability: Encodable {
    let di: String
    let owned: Int
    let available: Int
    let availableAt: [LocationCount]
    let byStatus: [String: Int]
}

private struct IngestView: Encodable {
    let batch: String
    let reads: Int
    let sightings: Int
    let devicesSeen: Int
    let unknownTags: Int
    let alertsRaised: Int
    let ledger: LedgerRef?

    init(_ result: DeviceService.IngestResult, ledger: LedgerRef?) {
        batch = result.batchId
        reads = result.reads
        sightings = result.sightings
        devicesSeen = result.devicesSeen
        unknownTags = result.unknownTags
        alertsRaised = result.alerts
        self.ledger = ledger
    }
}

private struct AlertView: Encodable {
    let id: String
    let kind: String
    let device: String?
    let epc: String?
    let detail: String
    let parties: [String]
    let documentHash: String
    let raisedAt: String
    let seq: Int64

    init(_ alert: DeviceAlert, seq: Int64) {
        id = alert.id
        kind = alert.kind.rawValue
        device = alert.deviceId
        epc = alert.epc
        detail = alert.detail
        parties = alert.parties
        documentHash = alert.documentHash
        raisedAt = Timestamp.format(alert.raisedAt)
        self.seq = seq
    }
}

private struct KeyView: Encodable {
    let id: String
    let device: String
    let publicKey: String
    let createdAt: String
    let revokedAt: String?
    let replacedBy: String?
    let ledger: LedgerRef?

    init(_ key: DeviceKey, ledger: LedgerRef?) {
        id = key.id
        device = key.deviceId
        publicKey = Base64URL.encode(key.publicKey)
        createdAt = Timestamp.format(key.createdAt)
        revokedAt = key.revokedAt.map(Timestamp.format)
        replacedBy = key.replacedBy
        self.ledger = ledger
    }
}

private struct AcceptedReading: Encodable {
    let id: String
    let device: String
    let counter: Int64
}

private struct TelemetryAccepted: Encodable {
    let batch: String
    let root: String
    let accepted: Int
    let observations: [AcceptedReading]
    let ledger: LedgerRef?
}

private struct ReadingView: Encodable {
    let id: String
    let device: String
    let counter: Int64
    let issuedAt: String
    let receivedAt: String
    let batch: String
    let jws: String

    init(_ reading: TelemetryService.Reading) {
        id = reading.stored.id
        device = reading.stored.deviceId
        counter = reading.stored.counter
        issuedAt = Timestamp.format(reading.stored.issuedAt)
        receivedAt = Timestamp.format(reading.stored.receivedAt)
        batch = reading.stored.batchId
        jws = reading.jws
    }
}
