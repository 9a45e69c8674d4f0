import Crypto
import HTTP
import Postgres
import Telemetry

/// Who may read `GET /metrics`: clients from the listed addresses, and anyone presenting the
/// metrics token as a bearer (read from a file; compared in constant time). API keys play no part:
/// scrapers are infrastructure, not organizations.
public struct MetricsAccess: Sendable {
    public var addresses: Set<String> = ["127.0.0.1", "::1"]
    public var token: [UInt8]?

    public init() {}

    func allows(_ request: Request) -> Bool {
        if let token, let header = request.headers.first(name: "Authorization"), header.hasPrefix("Bearer ") {
            let presented = Array(header.utf8.dropFirst(7))
            // Hash both sides so the comparison takes the same time whatever the lengths.
            if ConstantTime.equals(SHA256.digest(presented), SHA256.digest(token)) { return true }
        }
        return addresses.contains(request.clientAddress)
    }
}

/// `GET /metrics` in the Prometheus text format: the HTTP layer's request counts, latencies and
/// open connections; the database pool; the ledger's size and sequencing lag; and the gate's
/// counters (denials, consent denials, break-the-glass, rate limiting).
enum MetricsRoutes {
    static func register(in api: inout APIRouteBuilder, access: MetricsAccess, http: HTTPMetrics?, ledger: LedgerService) {
        let pool = api.access.pool
        let service = api.access.metrics
        api.onPublic(.get, "/metrics") { request in
            guard access.allows(request) else {
                throw HTTPError(status: .forbidden, code: "forbidden", message: "Metrics are served to the configured addresses or token only.")
            }
            var out = PrometheusText()
            http?.render(into: &out)
            let statistics = pool.statistics
            out.family("careledger_db_pool_connections", .gauge, help: "Database connections by state.")
            out.sample("careledger_db_pool_connections", [("state", "in_use")], statistics.inUse)
            out.sample("careledger_db_pool_connections", [("state", "idle")], statistics.idle)
            out.sample("careledger_db_pool_connections", [("state", "pipelined")], statistics.pipelined)
            out.single("careledger_db_pool_waiting", .gauge, help: "Requests waiting for a database connection.", statistics.waiting)
            let head = try await ledger.latestHead()
            let queue = try await ledger.store.queueState(on: pool)
            out.single("careledger_ledger_entries", .gauge, help: "Entries in the log (the latest signed tree head's size).", head?.treeSize ?? 0)
            out.single("careledger_ledger_queued", .gauge, help: "Committed entries waiting to be sequenced.", queue.count)
            out.single("careledger_ledger_sequencing_lag_seconds", .gauge, help: "Age of the oldest entry waiting to be sequenced (0 when none).",
                       queue.oldestAgeSeconds)
            if let replica = ledger.replica {
                out.family("careledger_replica_reads_total", .counter, help: "Reads that tolerate lag, by the database they were sent to (one the standby fails is then sent to the primary too).")
                out.sample("careledger_replica_reads_total", [("served_by", "replica")], replica.servedByReplica.load(ordering: .relaxed))
                out.sample("careledger_replica_reads_total", [("served_by", "primary")], replica.servedByPrimary.load(ordering: .relaxed))
                out.single("careledger_replica_ledger_entries", .gauge, help: "The tree size the hot standby was last seen to hold.", replica.knownSize)
            }
            service.render(into: &out)
            let text = out.text
            return Response(status: .ok, headers: HTTPHeaders([("Content-Type", "text/plain; version=0.0.4; charset=utf-8")]), body: Array(text.utf8))
        }
    }
}
