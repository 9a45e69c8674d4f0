import FoundationEssentials
import GS1
import Ledger
import Postgres

/// What a verification found, in our own shape; the Lightweight Messaging shape is derived from it.
struct PackVerification: Sendable {
    enum Status: String, Sendable {
        case verified, unknown, suspect, recalled, expired, dispensed, decommissioned
    }

    let status: Status
    let key: PackKey
    let lotGiven: String?
    let lotRecorded: String?
    let expiryGiven: GS1Date?
    let expiryRecorded: GS1Date?
    let custodian: String?
    let manufacturer: String?
    let reasons: [String]

    var lotMatches: Bool? { lotGiven.map { $0 == lotRecorded } }
    var expiryMatches: Bool? { expiryGiven.map { $0 == expiryRecorded } }
}

extension SupplyService {
    static func isRegulator(_ call: CallContext) -> Bool { call.caller.role == .national }

    func events(_ query: EPCISEventQuery, _ call: CallContext) async throws -> (events: [StoredEPCISEvent], next: Int64?) {
        let rows = try await store.events(query, visibleTo: call.caller.orgId, national: Self.isRegulator(call), on: pool)
        let shown = Array(rows.prefix(query.perPage))
        try await audit.record(call.permitted("epcis_event", reason: "query: \(shown.count) events"), on: pool)
        return (shown, rows.count > query.perPage ? shown.last?.queueId : nil)
    }

    /// One event, to the parties that may see it; to anyone else it does not exist.
    func event(_ id: String, _ call: CallContext) async throws -> StoredEPCISEvent {
        guard let event = try await store.event(id, on: pool) else { throw DomainError.notFound("No event \(id).") }
        if !Self.isRegulator(call) {
            guard try await store.canSee(event, org: call.caller.orgId, on: pool) else { throw DomainError.notFound("No event \(id).") }
        }
        try await audit.record(call.permitted("epcis_event", event.hashID), on: pool)
        return event
    }

    func proof(_ id: String, _ call: CallContext) async throws -> [Receipt] {
        let event = try await event(id, call)
        guard let receipts = try await ledger.receipts(queueIds: [event.queueId]) else {
            throw DomainError.notYetSigned("The event is not in a signed tree head yet; retry shortly.")
        }
        return receipts
    }

    func declarations(_ events: [StoredEPCISEvent]) async throws -> [String: (time: Date, reason: String?, corrective: [String])] {
        try await store.declarations(of: events.map { $0.hashID }, on: pool)
    }

    /// Is this pack genuine, and who holds it? A serial never commissioned also raises an alert for
    /// the GTIN's manufacturer.
    func verify(_ pack: ScannedPack, lot: String?, expiry: GS1Date?, today: GS1Date, _ call: CallContext) async throws -> PackVerification {
        let epc = "https://id.gs1.org/01/\(pack.key.gtin.digits)/21/\(DigitalLink.percentEncode(pack.key.serial))"
        let lotGiven = lot ?? pack.lot, expiryGiven = expiry ?? pack.expiry
        guard let found = try await store.verification(epc: epc, on: pool) else {
            let manufacturer = try await store.owner(ofGTIN: pack.key.gtin.digits, on: pool)
            try await pool.withTransaction { transaction in
                var items: [String: SupplyItem] = [:]
                if let manufacturer {
                    items[epc] = SupplyItem(epc: epc, manufacturerOrg: manufacturer, custodianOrg: manufacturer, state: .active, lastEvent: "")
                }
                let raised = alert(kind: "unknown_serial_verified", epc: epc, event: nil,
                                   detail: "verification of a serial never commissioned", items: items, reporter: call.caller.orgId, at: Date())
                try await store.insert([raised], on: transaction)
                try await audit.record(call.permitted("supply_pack", epc, reason: "verify: unknown"), on: transaction)
            }
            return PackVerification(status: .unknown, key: pack.key, lotGiven: lotGiven, lotRecorded: nil, expiryGiven: expiryGiven, expiryRecorded: nil,
                                    custodian: nil, manufacturer: manufacturer, reasons: ["the serial was never commissioned"])
        }
        let item = found.item
        var reasons: [String] = []
        if let lotGiven, lotGiven != item.lot { reasons.append("lot \(lotGiven) does not match the commissioned lot") }
        if let expiryGiven, expiryGiven != item.expiry { reasons.append("expiry \(expiryGiven) does not match the commissioned expiry") }
        if item.state == .stolen { reasons.append("reported stolen") }
        reasons += found.openAlerts.map { "open alert: \($0)" }
        let status: PackVerification.Status
        if found.recalled {
            status = .recalled
            reasons.insert("lot \(item.lot ?? "") is recalled", at: 0)
        } else if !reasons.isEmpty {
            status = .suspect
        } else if item.state == .dispensed {
            status = .dispensed
        } else if item.state == .decommissioned || item.state == .destroyed {
            status = .decommissioned
        } else if let recorded = item.expiry, recorded < today {
            status = .expired
            reasons.append("expired on \(recorded)")
        } else {
            status = .verified
        }
        _ = try await readAudits.submit(call.permitted("supply_pack", epc, reason: "verify: \(status.rawValue)"))
        return PackVerification(status: status, key: pack.key, lotGiven: lotGiven, lotRecorded: item.lot, expiryGiven: expiryGiven,
                                expiryRecorded: item.expiry, custodian: item.custodianOrg, manufacturer: item.manufacturerOrg, reasons: reasons)
    }

    /// The full custody history of a pack, for its manufacturer, those who held it, and regulators.
    func trace(_ key: PackKey, _ call: CallContext) async throws -> (item: SupplyItem, events: [StoredEPCISEvent]) {
        let epc = "https://id.gs1.org/01/\(key.gtin.digits)/21/\(DigitalLink.percentEncode(key.serial))"
        guard let item = try await store.items([epc], lock: false, on: pool)[epc] else { throw DomainError.notFound("No pack \(key).") }
        let events = try await store.trace(epc: epc, limit: 10_000, on: pool)
        if !Self.isRegulator(call) {
            let holders = try await pool.query("SELECT 1 FROM supply_item_holders WHERE epc = \(epc) AND organization_id = \(call.caller.orgId)")
            guard holders.first != nil else { throw DomainError.notFound("No pack \(key).") }
        }
        try await audit.record(call.permitted("supply_pack", epc, reason: "trace"), on: pool)
        return (item, events)
    }

    // MARK: Alerts

    func alerts(_ feed: LedgerFeed, _ call: CallContext) async throws -> LedgerFeed.Page<(alert: SupplyAlert, seq: Int64)> {
        let org = call.caller.orgId, national = Self.isRegulator(call)
        return try await feed.poll(ledger, seq: { $0.seq }) { seqs, limit, source in
            try await store.alertFeed(org: org, national: national, seqs: seqs, limit: limit, on: source)
        }
    }

    /// Resolves an alert once, by one of its parties or a regulator; the resolution is anchored.
    func resolve(_ id: String, resolution: String, reason: String, _ call: CallContext) async throws -> SupplyAlert {
        guard resolution == "cleared" || resolution == "illegitimate" else {
            throw DomainError.invalid("'resolution' must be cleared or illegitimate.")
        }
        guard (1...500).contains(reason.count) else { throw DomainError.invalid("'reason' must be 1 to 500 characters.") }
        let now = Date()
        return try await pool.withTransaction { transaction in
            guard var alert = try await store.alert(id, lock: true, on: transaction),
                  Self.isRegulator(call) || alert.parties.contains(call.caller.orgId) else {
                throw DomainError.notFound("No alert \(id).")
            }
            guard alert.resolution == nil else { throw DomainError.conflict("Alert \(id) was resolved already (\(alert.resolution ?? "")).") }
            let document = JSONValue.object([("alert", .string(id)), ("alertHash", .string(alert.documentHash)), ("resolution", .string(resolution)),
                                             ("reason", .string(reason)), ("by", .string(call.caller.orgId)), ("at", .string(Timestamp.format(now)))])
            let hash = JCS.documentHash(document)
            let queueId = try await ledger.store.enqueue(LedgerItem(type: SupplyAlert.resolvedType, actor: call.caller.orgId, ref: id, hash: hash), on: transaction)
            try await store.resolve(id, resolution: resolution, reason: reason, by: call.caller.orgId, at: now, hash: hash, queueId: queueId, on: transaction)
            try await audit.record(call.permitted("supply_alert", id, reason: resolution), on: transaction)
            alert.resolution = resolution
            alert.resolutionReason = reason
            alert.resolvedBy = call.caller.orgId
            alert.resolvedAt = now
            alert.resolutionHash = hash
            alert.resolveQueueId = queueId
            return alert
        }
    }

    // MARK: Recalls

    /// A recall by GTIN and lots, by the GTIN's manufacturer or a regulator: verification answers
    /// `recalled` from the next request, and every custodian of an affected pack gets an alert.
    func recall(gtin: GTIN, lots: [String], reason: String, _ call: CallContext) async throws -> (id: String, affected: Int, entry: LedgerEntryRow?) {
        guard !lots.isEmpty, lots.count <= 100, lots.allSatisfy({ (1...20).contains($0.count) }) else {
            throw DomainError.invalid("'lots' must list 1 to 100 lots of 1 to 20 characters.")
        }
        guard (1...500).contains(reason.count) else { throw DomainError.invalid("'reason' must be 1 to 500 characters.") }
        let now = Date()
        let id = ResourceID.generate("rcl", now: now)
        let (queueId, affected) = try await pool.withTransaction { transaction -> (Int64, Int) in
            if !Self.isRegulator(call) {
                guard try await store.owner(ofGTIN: gtin.digits, on: transaction) == call.caller.orgId else {
                    throw DomainError.forbidden
                }
            }
            let document = JSONValue.object([("id", .string(id)), ("gtin", .string(gtin.digits)), ("lots", .array(lots.map(JSONValue.string))),
                                             ("reason", .string(reason)), ("by", .string(call.caller.orgId)), ("at", .string(Timestamp.format(now)))])
            let hash = JCS.documentHash(document)
            let queueId = try await ledger.store.enqueue(LedgerItem(type: "supply.recall", actor: call.caller.orgId, ref: id, hash: hash), on: transaction)
            try await store.insertRecall(id: id, gtin: gtin.digits, lots: lots, by: call.caller.orgId, reason: reason, hash: hash, queueId: queueId, at: now, on: transaction)
            let items = try await store.itemsOfLots(gtin: gtin.digits, lots: lots, on: transaction)
            let alerts = items.filter { !$0.state.isFinal }.map { item in
                alert(kind: "recall", epc: item.epc, event: nil, detail: "lot \(item.lot ?? "") of GTIN \(gtin.digits) is recalled: \(reason)",
                      items: [item.epc: item], reporter: call.caller.orgId, at: now)
            }
            try await store.insert(alerts, on: transaction)
            try await audit.record(call.permitted("supply_recall", id, reason: "\(items.count) packs"), on: transaction)
            return (queueId, items.count)
        }
        return (id, affected, await ledger.sequencedEntry(queueId: queueId))
    }
}

extension SupplyStore {
    func insertRecall(id: String, gtin: String, lots: [String], by org: String, reason: String, hash: String, queueId: Int64, at time: Date,
                      on runner: some QueryRunner) async throws {
        try await runner.query("""
            INSERT INTO supply_recalls (id, gtin, lots, organization_id, reason, document_hash, queue_id, created_at)
            VALUES (\(id), \(gtin), \(PostgresArray(lots))::text[], \(org), \(reason), \(hash), \(queueId), \(time))
            """)
    }

    func itemsOfLots(gtin: String, lots: [String], on runner: some QueryRunner) async throws -> [SupplyItem] {
        try await runner.query("""
            SELECT \(sql: Self.itemColumns) FROM supply_items WHERE gtin = \(gtin) AND lot = ANY(\(PostgresArray(lots))::text[]) ORDER BY epc LIMIT 100000
            """).all.map(Self.item)
    }
}
