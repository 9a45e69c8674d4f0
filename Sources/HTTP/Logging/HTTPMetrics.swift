import Synchronization
import Telemetry

/// Request counts and latency histograms by route template, method and status, in the Prometheus
/// text exposition format. Fed by every connection as it answers (the same point the access log is
/// written); labels are route templates, never raw paths, so the series stay few.
public final class HTTPMetrics: Sendable {
    /// Histogram bucket bounds, in seconds.
    public static let buckets: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    private struct RequestKey: Hashable {
        let route: String
        let method: String
        let status: Int
    }

    private struct LatencyKey: Hashable {
        let route: String
        let method: String
    }

    private struct Histogram {
        var counts = [Int](repeating: 0, count: HTTPMetrics.buckets.count)
        var sum = 0.0
        var total = 0
    }

    private struct State {
        var requests: [RequestKey: Int] = [:]
        var latency: [LatencyKey: Histogram] = [:]
    }

    private let state = Mutex(State())
    private let connections = Mutex<(@Sendable () -> ConnectionCounts)?>(nil)

    public init() {}

    /// Where the connection gauges and counters are read from (the running server).
    func observeConnections(_ read: @escaping @Sendable () -> ConnectionCounts) {
        connections.withLock { $0 = read }
    }

    func record(route: String?, method: HTTPMethod?, status: Int, duration: Duration) {
        let routeLabel = route ?? "unmatched"
        let methodLabel = method?.rawValue ?? "-"
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        let bucket = Self.buckets.firstIndex { seconds <= $0 }
        state.withLock { state in
            state.requests[RequestKey(route: routeLabel, method: methodLabel, status: status), default: 0] += 1
            let key = LatencyKey(route: routeLabel, method: methodLabel)
            var histogram = state.latency[key] ?? Histogram()
            if let bucket { histogram.counts[bucket] += 1 }
            histogram.sum += seconds
            histogram.total += 1
            state.latency[key] = histogram
        }
    }

    /// The series as Prometheus text, prefixed `careledger_http_`.
    public func render(into out: inout PrometheusText) {
        let (requests, latency) = state.withLock { ($0.requests, $0.latency) }
        let counts = connections.withLock { $0 }?() ?? ConnectionCounts()
        out.single("careledger_http_open_connections", .gauge, help: "Client connections open now.", counts.open)
        out.family("careledger_http_connections_refused_total", .counter,
                   help: "Connections answered 503 and closed at accept: over the server's limit, or over one client address's.")
        out.sample("careledger_http_connections_refused_total", [("limit", "server")], counts.refusedForServerLimit)
        out.sample("careledger_http_connections_refused_total", [("limit", "address")], counts.refusedForAddressLimit)
        out.family("careledger_http_requests_total", .counter, help: "Requests answered, by route template, method and status.")
        for (key, count) in requests.sorted(by: { ($0.key.route, $0.key.method, $0.key.status) < ($1.key.route, $1.key.method, $1.key.status) }) {
            out.sample("careledger_http_requests_total", [("route", key.route), ("method", key.method), ("status", String(key.status))], count)
        }
        out.family("careledger_http_request_duration_seconds", .histogram,
                   help: "Time from a request's arrival to its response, by route template and method.")
        for (key, histogram) in latency.sorted(by: { ($0.key.route, $0.key.method) < ($1.key.route, $1.key.method) }) {
            let labels = [("route", key.route), ("method", key.method)]
            var cumulative = 0
            for (index, bound) in Self.buckets.enumerated() {
                cumulative += histogram.counts[index]
                out.sample("careledger_http_request_duration_seconds_bucket", labels + [("le", "\(bound)")], cumulative)
            }
            out.sample("careledger_http_request_duration_seconds_bucket", labels + [("le", "+Inf")], histogram.total)
            out.sample("careledger_http_request_duration_seconds_sum", labels, histogram.sum)
            out.sample("careledger_http_request_duration_seconds_count", labels, histogram.total)
        }
    }
}

/// The server's connection counts, as metrics read them.
struct ConnectionCounts: Sendable {
    var open = 0
    var refusedForServerLimit = 0
    var refusedForAddressLimit = 0
}
