import FoundationEssentials
import GS1
import Ledger
import Postgres

/// The EPCIS query interface's parameters that matter here, checked.
struct EPCISEventQuery: Sendable {
    var eventTypes: [String] = []
    var fromTime: Date?
    var beforeTime: Date?
    var bizSteps: [String] = []
    var dispositions: [String] = []
    var epcs: [String] = []
    var anyEPCs: [String] = []
    var bizLocations: [String] = []
    var readPoints: [String] = []
    var perPage = 30
    /// The queue id of the last event of the previous page.
    var after: Int64 = 0

    static let maximumPerPage = 1000
}

extension SupplyStore {
    func events(_ query: EPCISEventQuery, visibleTo org: String, national: Bool, on runner: some QueryRunner) async throws -> [StoredEPCISEvent] {
        let rows = try await runner.query("""
            SELECT \(sql: Self.eventColumns) FROM epcis_events e
            WHERE e.queue_id > \(query.after)
              AND (\(query.eventTypes.isEmpty) OR e.event_type = ANY(\(PostgresArray(query.eventTypes))::text[]))
              AND (\(query.fromTime == nil) OR e.event_time >= \(query.fromTime ?? Date(timeIntervalSince1970: 0)))
              AND (\(query.beforeTime == nil) OR e.event_time < \(query.beforeTime ?? Date(timeIntervalSince1970: 0)))
              AND (\(query.bizSteps.isEmpty) OR e.biz_step = ANY(\(PostgresArray(query.bizSteps))::text[]))
              AND (\(query.dispositions.isEmpty) OR e.disposition = ANY(\(PostgresArray(query.dispositions))::text[]))
              AND (\(query.epcs.isEmpty) OR e.epcs && \(PostgresArray(query.epcs))::text[])
              AND (\(query.anyEPCs.isEmpty) OR e.any_epcs && \(PostgresArray(query.anyEPCs))::text[])
              AND (\(query.bizLocations.isEmpty) OR e.biz_location = ANY(\(PostgresArray(query.bizLocations))::text[]))
              AND (\(query.readPoints.isEmpty) OR e.read_point = ANY(\(PostgresArray(query.readPoints))::text[]))
              AND (\(national) OR \(Self.visible(to: org)))
            ORDER BY e.queue_id LIMIT \(query.perPage + 1)
            """)
        return try rows.all.map(Self.event)
    }

    func canSee(_ event: StoredEPCISEvent, org: String, on runner: some QueryRunner) async throws -> Bool {
        if event.reporterOrg == org { return true }
        let rows = try await runner.query("""
            SELECT 1 FROM supply_item_holders WHERE organization_id = \(org) AND epc = ANY(\(PostgresArray(event.anyEPCs))::text[]) LIMIT 1
            """)
        return rows.first != nil
    }

    /// A pack's state and who holds it, with its lot recall and open alerts, in one round trip.
    func verification(epc: String, on runner: some QueryRunner) async throws -> (item: SupplyItem, recalled: Bool, openAlerts: [String])? {
        let rows = try await runner.query("""
            SELECT \(sql: Self.itemColumns),
                   EXISTS (SELECT 1 FROM supply_recalls r WHERE r.gtin = i.gtin AND i.lot = ANY(r.lots)) AS recalled,
                   (SELECT coalesce(string_agg(DISTINCT a.kind, ','), '') FROM supply_alerts a WHERE a.epc = i.epc AND a.resolution IS NULL) AS open_alerts
            FROM supply_items i WHERE i.epc = \(epc)
            """)
        guard let row = rows.first else { return nil }
        let open: String = try row.decode("open_alerts")
        return (try Self.item(row), try row.decode("recalled", as: Bool.self), open.isEmpty ? [] : open.split(separator: ",").map(String.init))
    }

    /// Every event naming the item or a unit it was ever packed in, in capture order.
    func trace(epc: String, limit: Int, on runner: some QueryRunner) async throws -> [StoredEPCISEvent] {
        let rows = try await runner.query("""
            SELECT \(sql: Self.eventColumns) FROM epcis_events e
            WHERE e.any_epcs && ARRAY(SELECT \(epc)::text UNION
                                      SELECT DISTINCT parent_id FROM epcis_events
                                      WHERE event_type = 'AggregationEvent' AND \(epc) = ANY(epcs) AND parent_id IS NOT NULL)
            ORDER BY e.queue_id LIMIT \(limit)
            """)
        return try rows.all.map(Self.event)
    }
}
