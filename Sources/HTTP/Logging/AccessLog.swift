import Telemetry

/// One JSON line per request: time, request id, method, route template, status, duration and bytes.
/// Never a body, a raw path or a query value, since those can carry identifiers.
public struct AccessLog: Sendable {
    private let sink: any LogSink

    /// Logs into `sink`.
    public init(sink: any LogSink) {
        self.sink = sink
    }

    /// What one finished request left behind.
    struct Entry {
        var requestId: String
        var method: HTTPMethod?
        var route: String?
        var status: Int
        var duration: Duration
        var bytes: Int
    }

    func record(_ entry: Entry) {
        let now = WallClock.now()
        var line = #"{"time":""#
        line += WallClock.rfc3339(seconds: now.seconds, milliseconds: now.milliseconds)
        line += #"","level":"info","msg":"request","requestId":"#
        JSONText.appendQuoted(entry.requestId, to: &line)
        line += #","method":"#
        if let method = entry.method { JSONText.appendQuoted(method.rawValue, to: &line) } else { line += "null" }
        line += #","route":"#
        if let route = entry.route { JSONText.appendQuoted(route, to: &line) } else { line += "null" }
        let micros = entry.duration.nanoseconds / 1000
        let fraction = micros % 1000
        let padded = fraction < 10 ? "00\(fraction)" : fraction < 100 ? "0\(fraction)" : "\(fraction)"
        line += #","status":\#(entry.status),"durationMs":\#(micros / 1000).\#(padded),"bytes":\#(entry.bytes)}"#
        sink.write(line)
    }

    /// Pushes out buffered lines (at shutdown).
    public func flush() {
        sink.flush()
    }
}
