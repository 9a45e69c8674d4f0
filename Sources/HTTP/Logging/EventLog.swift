/// Application log lines in the same JSON-lines shape as the access log: time, level, msg, fields.
public struct EventLog: Sendable {
    /// A field value: logs carry only plain scalars, never documents.
    public enum Value: Sendable {
        case string(String)
        case int(Int)
    }

    private let sink: any LogSink

    /// Logs into `sink`.
    public init(sink: any LogSink) {
        self.sink = sink
    }

    /// Writes one line.
    public func log(_ level: String, _ message: String, _ fields: [(String, Value)] = []) {
        let now = WallClock.now()
        var line = #"{"time":""# + WallClock.rfc3339(seconds: now.seconds, milliseconds: now.milliseconds)
        line += #"","level":"#
        JSONText.appendQuoted(level, to: &line)
        line += #","msg":"#
        JSONText.appendQuoted(message, to: &line)
        for (name, value) in fields {
            line += ","
            JSONText.appendQuoted(name, to: &line)
            line += ":"
            switch value {
            case .string(let text): JSONText.appendQuoted(text, to: &line)
            case .int(let number): line += String(number)
            }
        }
        line += "}"
        sink.write(line)
    }

    /// Pushes out buffered lines.
    public func flush() {
        sink.flush()
    }
}
