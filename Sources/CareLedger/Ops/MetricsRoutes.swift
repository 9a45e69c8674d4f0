import Crypto
import HTTP
import Postgres

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
            var text = http?.render() ?? ""
            let statistics = pool.statistics
            text += "# HELP careledger_db_pool_connections Database connections by state.\n# TYPE careledger_db_pool_connections gauge\n"
            text += "careledger_db_pool_connections{state=\"in_use\"} \(statistics.inUse)\n"
            text += "careledger_db_pool_connections{state=\"idle\"} \(statistics.idle)\n"
            text += "# HELP careledger_db_pool_waiting Requests waiting for a database connection.\n# TYPE careledger_db_pool_waiting gauge\n"
            text += "careledger_db_pool_waiting \(statistics.waiting)\n"
            let head = try await ledger.latestHead()
            let queue = try await ledger.store.queueState(on: pool)
            text += "# HELP careledger_ledger_entries Entries in the log (the latest signed tree head's size).\n# TYPE careledger_ledger_entries gauge\n"
            text += "careledger_ledger_entries \(head?.treeSize ?? 0)\n"
            text += "# HELP careledger_ledger_queued Committed entries waiting to be sequenced.\n# TYPE careledger_ledger_queued gauge\n"
            text += "careledger_ledger_queued \(queue.count)\n"
            text += "# HELP careledger_ledger_sequencing_lag_seconds Age of the oldest entry waiting to be sequenced (0 when none).\n"
            text += "# TYPE careledger_ledger_sequencing_lag_seconds gauge\ncareledger_ledger_sequencing_lag_seconds \(queue.oldestAgeSeconds)\n"
            text += service.render()
            return Response(status: .ok, headers: HTTPHeaders([("Content-Type", "text/plain; version=0.0.4; charset=utf-8")]), body: Array(text.utf8))
        }
    }
}
