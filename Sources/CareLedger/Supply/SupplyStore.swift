import FoundationEssentials
import GS1
import Postgres

/// A captured event as stored.
struct StoredEPCISEvent: Sendable {
    let hashID: String
    let senderEventID: String?
    let senderHashAgrees: Bool?
    let eventType: String
    let eventTime: Date
    let recordTime: Date
    let action: String?
    let bizStep: String?
    let disposition: String?
    let readPoint: String?
    let bizLocation: String?
    let parentID: String?
    let epcs: [String]
    let anyEPCs: [String]
    let reporterOrg: String
    let captureID: String
    let violations: [String]
    /// The event's RFC 8785 canonical form.
    let event: [UInt8]
    /// JCS of the CURIE prefixes in force where it was sent.
    let prefixes: [UInt8]
    var queueId: Int64 = 0

    static let entryType = "epcis.event"

    /// What the ledger anchors: the digest inside the hash id.
    var ledgerHash: String { "sha256:" + String(EventHash.digestPart(hashID).dropFirst("sha-256;".count)) }
}

/// An alert as stored.
struct SupplyAlert: Sendable {
    let id: String
    let kind: String
    let epc: String?
    let gtin: String?
    let serial: String?
    let eventHashID: String?
    let detail: String
    let parties: [String]
    let documentHash: String
    var queueId: Int64 = 0
    let raisedAt: Date
    var resolution: String? = nil
    var resolutionReason: String? = nil
    var resolvedBy: String? = nil
    var resolvedAt: Date? = nil
    var resolutionHash: String? = nil
    var resolveQueueId: Int64? = nil

    static let raisedType = "supply.alert.raised"
    static let resolvedType = "supply.alert.resolved"
}

/// A capture job.
struct EPCISCaptureJob: Sendable {
    let id: String
    let organizationId: String
    let errorBehaviour: String
    var status: String
    let eventCount: Int
    var capturedCount: Int
    var errors: [UInt8]
    let createdAt: Date
    var finishedAt: Date?
}

/// The supply chain's SQL: bindings, events, items and their custody, shipments, alerts, recalls.
struct SupplyStore: Sendable {
    static let separator = "\u{1F}"

    // MARK: Bindings

    func bindPrefix(_ prefix: String, to org: String, on runner: some QueryRunner) async throws -> Bool {
        let rows = try await runner.query("""
            INSERT INTO gs1_company_prefixes (prefix, organization_id) VALUES (\(prefix), \(org))
            ON CONFLICT (prefix) DO UPDATE SET prefix = EXCLUDED.prefix WHERE gs1_company_prefixes.organization_id = EXCLUDED.organization_id
            RETURNING prefix
            """)
        return rows.first != nil
    }

    func bindLocation(_ gln: String, to org: String, name: String, on runner: some QueryRunner) async throws -> Bool {
        let rows = try await runner.query("""
            INSERT INTO gs1_locations (gln, organization_id, name) VALUES (\(gln), \(org), \(name))
            ON CONFLICT (gln) DO UPDATE SET name = EXCLUDED.name WHERE gs1_locations.organization_id = EXCLUDED.organization_id
            RETURNING gln
            """)
        return rows.first != nil
    }

    func bindings(of org: String, on runner: some QueryRunner) async throws -> (prefixes: [String], locations: [(gln: String, name: String)]) {
        let prefixes = try await runner.query("SELECT prefix FROM gs1_company_prefixes WHERE organization_id = \(org) ORDER BY prefix")
            .all.map { try $0.decode("prefix", as: String.self) }
        let locations = try await runner.query("SELECT gln, name FROM gs1_locations WHERE organization_id = \(org) ORDER BY gln")
            .all.map { (try $0.decode("gln", as: String.self), try $0.decode("name", as: String.self)) }
        return (prefixes, locations)
    }

    /// The bindings and recalls that the GTINs and sites named by a capture need, in one round trip.
    func directory(gtins: [String], glns: [String], on runner: some QueryRunner) async throws -> SupplyDirectory {
        let prefixes = Array(Set(gtins.flatMap(SupplyDirectory.candidatePrefixes)))
        let rows = try await runner.query("""
            SELECT 'prefix' AS kind, prefix AS key, organization_id AS value FROM gs1_company_prefixes WHERE prefix = ANY(\(PostgresArray(prefixes))::text[])
            UNION ALL
            SELECT 'gln', gln, organization_id FROM gs1_locations WHERE gln = ANY(\(PostgresArray(glns))::text[])
            UNION ALL
            SELECT 'recall', gtin, lot FROM supply_recalls, unnest(lots) AS lot WHERE gtin = ANY(\(PostgresArray(gtins))::text[])
            """)
        var directory = SupplyDirectory()
        for row in rows.all {
            let key: String = try row.decode("key"), value: String = try row.decode("value")
            switch try row.decode("kind", as: String.self) {
            case "prefix": directory.prefixes[key] = value
            case "gln": directory.locations[key] = value
            default: directory.recalledLots[key, default: []].insert(value)
            }
        }
        return directory
    }

    func owner(ofGTIN gtin: String, on runner: some QueryRunner) async throws -> String? {
        try await directory(gtins: [gtin], glns: [], on: runner).owner(ofGTIN: gtin)
    }

    // MARK: Items

    /// Serializes captures that touch the same items (also items that do not exist yet, which a
    /// row lock cannot cover): a capture of a few items takes one transaction-scoped advisory lock
    /// per item, in order, under a shared lock of the whole supply chain; one naming more items
    /// than the lock table should hold for one transaction takes that lock exclusively instead.
    /// PostgreSQL's lock table holds max_locks_per_transaction (64) × max_connections (100) locks
    /// by default: 256 per capture leaves room for a pool of 16 connections all capturing at once.
    static let itemLockLimit = 256

    func lock(_ epcs: [String], on runner: some QueryRunner) async throws {
        guard !epcs.isEmpty else { return }
        let distinct = Array(Set(epcs))
        guard distinct.count <= Self.itemLockLimit else {
            try await runner.query("SELECT pg_advisory_xact_lock(hashtext(current_schema()), 0)")
            return
        }
        try await runner.query("""
            SELECT pg_advisory_xact_lock_shared(hashtext(current_schema()), 0),
                   (SELECT count(pg_advisory_xact_lock(hashtext(current_schema() || ':supply-item'), hashtext(e)))
                    FROM (SELECT e FROM unnest(\(PostgresArray(distinct))::text[]) AS e ORDER BY e) AS ordered)
            """)
    }

    static let itemColumns: StaticString = """
        epc, gtin, serial, lot, expiry::text AS expiry, manufacturer_org, custodian_org, state, parent, pending_receiver, commissioned_by, last_event
        """

    /// The items and everything packed inside them, however deep, locked for update.
    func items(_ epcs: [String], lock: Bool, on runner: some QueryRunner) async throws -> [String: SupplyItem] {
        guard !epcs.isEmpty else { return [:] }
        let rows = lock
            ? try await runner.query("""
                WITH RECURSIVE tree AS (
                    SELECT epc FROM supply_items WHERE epc = ANY(\(PostgresArray(epcs))::text[])
                    UNION SELECT s.epc FROM supply_items s JOIN tree t ON s.parent = t.epc)
                SELECT \(sql: Self.itemColumns) FROM supply_items WHERE epc IN (SELECT epc FROM tree) ORDER BY epc FOR UPDATE
                """)
            : try await runner.query("SELECT \(sql: Self.itemColumns) FROM supply_items WHERE epc = ANY(\(PostgresArray(epcs))::text[])")
        var items: [String: SupplyItem] = [:]
        for row in rows.all {
            let item = try Self.item(row)
            items[item.epc] = item
        }
        return items
    }

    static func item(_ row: PostgresRow) throws -> SupplyItem {
        let stateText: String = try row.decode("state")
        guard let state = SupplyItem.State(rawValue: stateText) else { throw PostgresError(.decoding, message: "unknown item state") }
        return SupplyItem(
            epc: try row.decode("epc"), gtin: try row.decode("gtin", as: String?.self), serial: try row.decode("serial", as: String?.self),
            lot: try row.decode("lot", as: String?.self), expiry: try row.decode("expiry", as: String?.self).flatMap(GS1Date.init(isoDate:)),
            manufacturerOrg: try row.decode("manufacturer_org", as: String?.self), custodianOrg: try row.decode("custodian_org"), state: state,
            parent: try row.decode("parent", as: String?.self), pendingReceiver: try row.decode("pending_receiver", as: String?.self),
            commissionedBy: try row.decode("commissioned_by", as: String?.self), lastEvent: try row.decode("last_event"))
    }

    /// Writes the items custody changed (parents before children, for the parent reference).
    func save(_ items: [SupplyItem], holders: [CustodyEngine.Pair], at now: Date, on runner: some QueryRunner) async throws {
        if !items.isEmpty {
            let ordered = Self.parentsFirst(items)
            try await runner.query("""
                INSERT INTO supply_items (epc, gtin, serial, lot, expiry, manufacturer_org, custodian_org, state, parent, pending_receiver,
                                          commissioned_by, last_event, updated_at)
                SELECT i.epc, i.gtin, i.serial, i.lot, i.expiry::date, i.manufacturer_org, i.custodian_org, i.state, i.parent, i.pending_receiver,
                       i.commissioned_by, i.last_event, \(now)
                FROM unnest(\(PostgresArray(ordered.map { $0.epc }))::text[], \(PostgresArray(ordered.map { $0.gtin }))::text[],
                            \(PostgresArray(ordered.map { $0.serial }))::text[], \(PostgresArray(ordered.map { $0.lot }))::text[],
                            \(PostgresArray(ordered.map { $0.expiry?.description }))::text[], \(PostgresArray(ordered.map { $0.manufacturerOrg }))::text[],
                            \(PostgresArray(ordered.map { $0.custodianOrg }))::text[], \(PostgresArray(ordered.map { $0.state.rawValue }))::text[],
                            \(PostgresArray(ordered.map { $0.parent }))::text[], \(PostgresArray(ordered.map { $0.pendingReceiver }))::text[],
                            \(PostgresArray(ordered.map { $0.commissionedBy }))::text[], \(PostgresArray(ordered.map { $0.lastEvent }))::text[])
                     WITH ORDINALITY AS i(epc, gtin, serial, lot, expiry, manufacturer_org, custodian_org, state, parent, pending_receiver,
                                          commissioned_by, last_event, position)
                ORDER BY i.position
                ON CONFLICT (epc) DO UPDATE SET custodian_org = EXCLUDED.custodian_org, state = EXCLUDED.state, parent = EXCLUDED.parent,
                    pending_receiver = EXCLUDED.pending_receiver, last_event = EXCLUDED.last_event, updated_at = EXCLUDED.updated_at
                """)
        }
        if !holders.isEmpty {
            try await runner.query("""
                INSERT INTO supply_item_holders (epc, organization_id)
                SELECT * FROM unnest(\(PostgresArray(holders.map { $0.epc }))::text[], \(PostgresArray(holders.map { $0.org }))::text[])
                ON CONFLICT DO NOTHING
                """)
        }
    }

    static func parentsFirst(_ items: [SupplyItem]) -> [SupplyItem] {
        let byEPC = Dictionary(items.map { ($0.epc, $0) }, uniquingKeysWith: { first, _ in first })
        func depth(_ item: SupplyItem) -> Int {
            var depth = 0
            var current = item.parent
            while let parent = current, let next = byEPC[parent], depth < 64 { depth += 1; current = next.parent }
            return depth
        }
        return items.sorted { depth($0) < depth($1) }
    }

    func recordShipments(_ shipments: [CustodyEngine.Shipment], receipts: [(epc: String, event: String, at: Date)], on runner: some QueryRunner) async throws {
        for receipt in receipts {
            try await runner.query("""
                UPDATE supply_shipments SET received_event = \(receipt.event), received_at = \(receipt.at)
                WHERE id = (SELECT id FROM supply_shipments WHERE epc = \(receipt.epc) AND received_at IS NULL ORDER BY id DESC LIMIT 1)
                """)
        }
        guard !shipments.isEmpty else { return }
        try await runner.query("""
            INSERT INTO supply_shipments (epc, from_org, to_org, shipped_event, shipped_at)
            SELECT * FROM unnest(\(PostgresArray(shipments.map { $0.epc }))::text[], \(PostgresArray(shipments.map { $0.from }))::text[],
                                 \(PostgresArray(shipments.map { $0.to }))::text[], \(PostgresArray(shipments.map { $0.event }))::text[],
                                 \(PostgresArray(shipments.map { $0.at }))::timestamptz[])
            """)
    }

    struct PendingShipment: Sendable {
        let id: Int64
        let epc: String
        let from: String
        let to: String?
        let event: String
        let at: Date
    }

    /// Shipments announced before `cutoff` and still not received nor alerted, locked (others skip them).
    func overdueShipments(before cutoff: Date, on runner: some QueryRunner) async throws -> [PendingShipment] {
        try await runner.query("""
            SELECT id, epc, from_org, to_org, shipped_event, shipped_at FROM supply_shipments
            WHERE received_at IS NULL AND NOT overdue_alerted AND shipped_at < \(cutoff)
            ORDER BY id LIMIT 1000 FOR UPDATE SKIP LOCKED
            """).all.map { row in
            PendingShipment(id: try row.decode("id", as: Int64.self), epc: try row.decode("epc"), from: try row.decode("from_org"),
                            to: try row.decode("to_org", as: String?.self), event: try row.decode("shipped_event"),
                            at: try row.decode("shipped_at", as: Date.self))
        }
    }

    func markOverdue(_ ids: [Int64], on runner: some QueryRunner) async throws {
        try await runner.query("UPDATE supply_shipments SET overdue_alerted = true WHERE id = ANY(\(PostgresArray(ids))::bigint[])")
    }

    // MARK: Events

    /// Which of these hash ids are stored already.
    func existing(_ hashIDs: [String], on runner: some QueryRunner) async throws -> Set<String> {
        guard !hashIDs.isEmpty else { return [] }
        let rows = try await runner.query("SELECT hash_id FROM epcis_events WHERE hash_id = ANY(\(PostgresArray(hashIDs))::text[])")
        return Set(try rows.all.map { try $0.decode("hash_id", as: String.self) })
    }

    func insertCapture(_ job: EPCISCaptureJob, document: [UInt8], on runner: some QueryRunner) async throws {
        try await runner.query("""
            INSERT INTO epcis_captures (id, organization_id, error_behaviour, status, event_count, captured_count, errors, document, created_at, finished_at)
            VALUES (\(job.id), \(job.organizationId), \(job.errorBehaviour), \(job.status), \(job.eventCount), \(job.capturedCount),
                    \(String(decoding: job.errors, as: UTF8.self))::jsonb, \(PostgresBytes(document)), \(job.createdAt), \(job.finishedAt))
            """)
    }

    func finishCapture(_ job: EPCISCaptureJob, on runner: some QueryRunner) async throws {
        try await runner.query("""
            UPDATE epcis_captures SET status = \(job.status), captured_count = \(job.capturedCount),
                errors = \(String(decoding: job.errors, as: UTF8.self))::jsonb, finished_at = \(job.finishedAt)
            WHERE id = \(job.id)
            """)
    }

    func capture(_ id: String, on runner: some QueryRunner) async throws -> EPCISCaptureJob? {
        try await runner.query("""
            SELECT id, organization_id, error_behaviour, status, event_count, captured_count, errors::text AS errors, created_at, finished_at
            FROM epcis_captures WHERE id = \(id)
            """).first.map { row in
            EPCISCaptureJob(id: try row.decode("id"), organizationId: try row.decode("organization_id"), errorBehaviour: try row.decode("error_behaviour"),
                            status: try row.decode("status"), eventCount: try row.decode("event_count", as: Int.self),
                            capturedCount: try row.decode("captured_count", as: Int.self), errors: Array(try row.decode("errors", as: String.self).utf8),
                            createdAt: try row.decode("created_at", as: Date.self), finishedAt: try row.decode("finished_at", as: Date?.self))
        }
    }

    /// Stores events, each with its ledger queue row, in one statement; returns the queue ids in order.
    func insert(_ events: [StoredEPCISEvent], on runner: some QueryRunner) async throws -> [Int64] {
        guard !events.isEmpty else { return [] }
        let items = events.map { LedgerItem(type: StoredEPCISEvent.entryType, actor: $0.reporterOrg, ref: $0.hashID, hash: $0.ledgerHash) }
        let rows = try await runner.query("""
            WITH input AS (
                SELECT * FROM unnest(
                    \(PostgresArray(events.map { $0.hashID }))::text[], \(PostgresArray(events.map { $0.senderEventID }))::text[],
                    \(PostgresArray(events.map { $0.senderHashAgrees.map { $0 ? "t" : "f" } }))::boolean[], \(PostgresArray(events.map { $0.eventType }))::text[],
                    \(PostgresArray(events.map { $0.eventTime }))::timestamptz[], \(PostgresArray(events.map { $0.recordTime }))::timestamptz[],
                    \(PostgresArray(events.map { $0.action }))::text[], \(PostgresArray(events.map { $0.bizStep }))::text[],
                    \(PostgresArray(events.map { $0.disposition }))::text[], \(PostgresArray(events.map { $0.readPoint }))::text[],
                    \(PostgresArray(events.map { $0.bizLocation }))::text[], \(PostgresArray(events.map { $0.parentID }))::text[], \(PostgresArray(events.map { $0.epcs.joined(separator: Self.separator) }))::text[],
                    \(PostgresArray(events.map { $0.anyEPCs.joined(separator: Self.separator) }))::text[], \(PostgresArray(events.map { $0.reporterOrg }))::text[],
                    \(PostgresArray(events.map { $0.captureID }))::text[], \(PostgresArray(events.map { $0.violations.joined(separator: ",") }))::text[],
                    \(PostgresArray(events.map { PostgresBytes($0.event) }))::bytea[], \(PostgresArray(events.map { PostgresBytes($0.prefixes) }))::bytea[])
                    WITH ORDINALITY AS i(hash_id, sender_event_id, event_id_checked, event_type, event_time, record_time, action, biz_step, disposition,
                                         read_point, biz_location, parent_id, epcs, any_epcs, reporter_org, capture_id, violations, event, prefixes, position)),
            queued AS (\(LedgerStore.queueAppend(items))),
            stored AS (
                INSERT INTO epcis_events (hash_id, sender_event_id, event_id_checked, event_type, event_time, record_time, action, biz_step, disposition,
                                          read_point, biz_location, parent_id, epcs, any_epcs, reporter_org, capture_id, violations, event, prefixes, queue_id)
                SELECT i.hash_id, i.sender_event_id, i.event_id_checked, i.event_type, i.event_time, i.record_time, i.action, i.biz_step, i.disposition,
                       i.read_point, i.biz_location, i.parent_id, string_to_array(i.epcs, chr(31)), string_to_array(i.any_epcs, chr(31)), i.reporter_org,
                       i.capture_id, string_to_array(i.violations, ','), i.event, i.prefixes, q.id
                FROM input i JOIN queued q ON q.ref = i.hash_id
                RETURNING 1)
            SELECT q.id FROM input i JOIN queued q ON q.ref = i.hash_id ORDER BY i.position
            """)
        return try rows.all.map { try $0.decode("id", as: Int64.self) }
    }

    func insertDeclaration(hashID: String, by org: String, time: Date, reason: String?, corrective: [String], documentHash: String,
                           captureID: String, on runner: some QueryRunner) async throws -> Int64 {
        let queueId = try await LedgerStore().enqueue(LedgerItem(type: "epcis.error_declared", actor: org, ref: hashID, hash: documentHash), on: runner)
        try await runner.query("""
            INSERT INTO epcis_error_declarations (hash_id, declared_by, declaration_time, reason, corrective_event_ids, document_hash, capture_id, queue_id)
            VALUES (\(hashID), \(org), \(time), \(reason), \(PostgresArray(corrective))::text[], \(documentHash), \(captureID), \(queueId))
            """)
        return queueId
    }

    static let eventColumns: StaticString = """
        hash_id, sender_event_id, event_id_checked, event_type, event_time, record_time, action, biz_step, disposition, read_point, biz_location,
        parent_id, array_to_string(epcs, chr(31)) AS epcs, array_to_string(any_epcs, chr(31)) AS any_epcs, reporter_org, capture_id,
        array_to_string(violations, ',') AS violations, event, prefixes, queue_id
        """

    static func event(_ row: PostgresRow) throws -> StoredEPCISEvent {
        func list(_ column: String, _ separator: String) throws -> [String] {
            let text: String = try row.decode(column)
            return text.isEmpty ? [] : text.split(separator: Character(separator), omittingEmptySubsequences: false).map(String.init)
        }
        return StoredEPCISEvent(
            hashID: try row.decode("hash_id"), senderEventID: try row.decode("sender_event_id", as: String?.self),
            senderHashAgrees: try row.decode("event_id_checked", as: Bool?.self), eventType: try row.decode("event_type"),
            eventTime: try row.decode("event_time", as: Date.self), recordTime: try row.decode("record_time", as: Date.self),
            action: try row.decode("action", as: String?.self), bizStep: try row.decode("biz_step", as: String?.self),
            disposition: try row.decode("disposition", as: String?.self), readPoint: try row.decode("read_point", as: String?.self),
            bizLocation: try row.decode("biz_location", as: String?.self), parentID: try row.decode("parent_id", as: String?.self), epcs: try list("epcs", separator), anyEPCs: try list("any_epcs", separator),
            reporterOrg: try row.decode("reporter_org"), captureID: try row.decode("capture_id"), violations: try list("violations", ","),
            event: try row.bytes("event"), prefixes: try row.bytes("prefixes"), queueId: try row.decode("queue_id", as: Int64.self))
    }

    /// The event by its hash id, or by the eventID its sender gave it (the earliest, should two share one).
    func event(_ id: String, on runner: some QueryRunner) async throws -> StoredEPCISEvent? {
        let rows = try await runner.query("""
            SELECT \(sql: Self.eventColumns) FROM epcis_events WHERE hash_id = \(id)
            UNION ALL (SELECT \(sql: Self.eventColumns) FROM epcis_events WHERE sender_event_id = \(id) ORDER BY queue_id LIMIT 1)
            LIMIT 1
            """)
        return try rows.first.map(Self.event)
    }

    func declarations(of hashIDs: [String], on runner: some QueryRunner) async throws -> [String: (time: Date, reason: String?, corrective: [String])] {
        guard !hashIDs.isEmpty else { return [:] }
        let rows = try await runner.query("""
            SELECT hash_id, declaration_time, reason, array_to_string(corrective_event_ids, chr(31)) AS corrective
            FROM epcis_error_declarations WHERE hash_id = ANY(\(PostgresArray(hashIDs))::text[]) ORDER BY queue_id
            """)
        var result: [String: (time: Date, reason: String?, corrective: [String])] = [:]
        for row in rows.all {
            let corrective: String = try row.decode("corrective")
            result[try row.decode("hash_id")] = (try row.decode("declaration_time", as: Date.self), try row.decode("reason", as: String?.self),
                                                  corrective.isEmpty ? [] : corrective.split(separator: Character(Self.separator)).map(String.init))
        }
        return result
    }

    /// Whether the organization may see an item's events: it made, held or was sent it.
    static func visible(to org: String) -> PostgresFragment {
        """
        (e.reporter_org = \(org) OR EXISTS (SELECT 1 FROM supply_item_holders h WHERE h.organization_id = \(org) AND h.epc = ANY(e.any_epcs)))
        """
    }

    // MARK: Alerts

    func insert(_ alerts: [SupplyAlert], on runner: some QueryRunner) async throws {
        guard !alerts.isEmpty else { return }
        let items = alerts.map { LedgerItem(type: SupplyAlert.raisedType, actor: $0.parties.first ?? "", ref: $0.id, hash: $0.documentHash) }
        try await runner.query("""
            WITH input AS (
                SELECT * FROM unnest(
                    \(PostgresArray(alerts.map { $0.id }))::text[], \(PostgresArray(alerts.map { $0.kind }))::text[], \(PostgresArray(alerts.map { $0.epc }))::text[],
                    \(PostgresArray(alerts.map { $0.gtin }))::text[], \(PostgresArray(alerts.map { $0.serial }))::text[],
                    \(PostgresArray(alerts.map { $0.eventHashID }))::text[], \(PostgresArray(alerts.map { $0.detail }))::text[],
                    \(PostgresArray(alerts.map { $0.parties.joined(separator: Self.separator) }))::text[], \(PostgresArray(alerts.map { $0.documentHash }))::text[],
                    \(PostgresArray(alerts.map { $0.raisedAt }))::timestamptz[])
                    AS i(id, kind, epc, gtin, serial, event_hash_id, detail, parties, document_hash, raised_at)),
            queued AS (\(LedgerStore.queueAppend(items)))
            INSERT INTO supply_alerts (id, kind, epc, gtin, serial, event_hash_id, detail, parties, document_hash, queue_id, raised_at)
            SELECT i.id, i.kind, i.epc, i.gtin, i.serial, i.event_hash_id, i.detail, string_to_array(i.parties, chr(31)), i.document_hash, q.id, i.raised_at
            FROM input i JOIN queued q ON q.ref = i.id
            """)
    }

    private static let alertColumns: StaticString = """
        id, kind, epc, gtin, serial, event_hash_id, detail, array_to_string(parties, chr(31)) AS parties, document_hash, queue_id, raised_at,
        resolution, resolution_reason, resolved_by, resolved_at, resolution_hash, resolve_queue_id
        """

    static func alert(_ row: PostgresRow) throws -> SupplyAlert {
        let parties: String = try row.decode("parties")
        return SupplyAlert(
            id: try row.decode("id"), kind: try row.decode("kind"), epc: try row.decode("epc", as: String?.self),
            gtin: try row.decode("gtin", as: String?.self), serial: try row.decode("serial", as: String?.self),
            eventHashID: try row.decode("event_hash_id", as: String?.self), detail: try row.decode("detail"),
            parties: parties.split(separator: Character(separator)).map(String.init), documentHash: try row.decode("document_hash"),
            queueId: try row.decode("queue_id", as: Int64.self), raisedAt: try row.decode("raised_at", as: Date.self),
            resolution: try row.decode("resolution", as: String?.self), resolutionReason: try row.decode("resolution_reason", as: String?.self),
            resolvedBy: try row.decode("resolved_by", as: String?.self), resolvedAt: try row.decode("resolved_at", as: Date?.self),
            resolutionHash: try row.decode("resolution_hash", as: String?.self), resolveQueueId: try row.decode("resolve_queue_id", as: Int64?.self))
    }

    func alert(_ id: String, lock: Bool, on runner: some QueryRunner) async throws -> SupplyAlert? {
        let rows = lock
            ? try await runner.query("SELECT \(sql: Self.alertColumns) FROM supply_alerts WHERE id = \(id) FOR UPDATE")
            : try await runner.query("SELECT \(sql: Self.alertColumns) FROM supply_alerts WHERE id = \(id)")
        return try rows.first.map(Self.alert)
    }

    /// The alerts raised by entries among `seqs` that the organization sees (all of them for a
    /// national regulator), in ledger order.
    func alertFeed(org: String, national: Bool, seqs: ClosedRange<Int64>, limit: Int, on runner: some QueryRunner) async throws -> [(alert: SupplyAlert, seq: Int64)] {
        let rows = try await runner.query("""
            WITH scanned AS MATERIALIZED (SELECT seq, queue_id FROM ledger_entries WHERE seq BETWEEN \(seqs.lowerBound) AND \(seqs.upperBound))
            SELECT a.*, e.seq FROM scanned e CROSS JOIN LATERAL (
                SELECT \(sql: Self.alertColumns) FROM supply_alerts
                WHERE queue_id = e.queue_id AND (\(national) OR \(org) = ANY(parties)) LIMIT 1) AS a
            ORDER BY e.seq LIMIT \(limit)
            """)
        return try rows.all.map { (try Self.alert($0), try $0.decode("seq", as: Int64.self)) }
    }

    func resolve(_ id: String, resolution: String, reason: String, by org: String, at time: Date, hash: String, queueId: Int64, on runner: some QueryRunner) async throws {
        try await runner.query("""
            UPDATE supply_alerts SET resolution = \(resolution), resolution_reason = \(reason), resolved_by = \(org), resolved_at = \(time),
                resolution_hash = \(hash), resolve_queue_id = \(queueId)
            WHERE id = \(id) AND resolution IS NULL
            """)
    }

    func allAlerts(on runner: some QueryRunner) async throws -> [SupplyAlert] {
        try await runner.query("SELECT \(sql: Self.alertColumns) FROM supply_alerts ORDER BY queue_id").all.map(Self.alert)
    }

    func allEvents(on runner: some QueryRunner) async throws -> [StoredEPCISEvent] {
        try await runner.query("SELECT \(sql: Self.eventColumns) FROM epcis_events ORDER BY queue_id").all.map(Self.event)
    }
}
