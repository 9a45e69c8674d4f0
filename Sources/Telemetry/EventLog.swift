/// Application log lines in the same JSON-lines shape as the access log: time, level, msg, fields.
public struct EventLog: Sendable {
    /// A field value: logs carry only plain scalars, never documents.
    public enum Value: Sendable {
        case string(String)
        case int(Int)
    }

    /// How much a line matters; lines below the log's minimum level are not written.
    public enum Level: String, Sendable, CaseIterable, Comparable {
        case debug, info, warning, error

        public static func < (lhs: Level, rhs: Level) -> Bool {
            allCases.firstIndex(of: lhs) ?? 0 < allCases.firstIndex(of: rhs) ?? 0
        }
    }

    private let sink: any LogSink
    private let minimumLevel: Level

    /// Logs into `sink` the lines of `minimumLevel` and above.
    public init(sink: any LogSink, minimumLevel: Level = .info) {
        self.sink = sink
        self.minimumLevel = minimumLevel
    }

    /// Writes one line.
    public func log(_ level: Level, _ message: String, _ fields: [(String, Value)] = []) {
        guard level >= minimumLevel else { return }
        let now = WallClock.now()
        var line = #"{"time":""# + WallClock.rfc3339(seconds: now.seconds, milliseconds: now.milliseconds)
        line += #"","level":"#
        JSONText.appendQuoted(level.rawValue, to: &line)
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
