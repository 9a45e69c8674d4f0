/// Builds the Prometheus text exposition format: each metric family's HELP and TYPE lines, then
/// its samples, with label values quoted as the format requires.
public struct PrometheusText: Sendable {
    public enum Kind: String, Sendable {
        case counter, gauge, histogram
    }

    public private(set) var text = ""

    public init() {}

    /// Starts a metric family.
    public mutating func family(_ name: String, _ kind: Kind, help: String) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(kind.rawValue)\n"
    }

    /// One sample; `labels` in the order given.
    public mutating func sample(_ name: String, _ labels: [(String, String)] = [], _ value: some CustomStringConvertible) {
        text += name
        if !labels.isEmpty {
            text += "{" + labels.map { "\($0.0)=\(Self.quoted($0.1))" }.joined(separator: ",") + "}"
        }
        text += " \(value)\n"
    }

    /// A family with a single unlabelled sample.
    public mutating func single(_ name: String, _ kind: Kind, help: String, _ value: some CustomStringConvertible) {
        family(name, kind, help: help)
        sample(name, [], value)
    }

    /// A label value in Prometheus quoting (backslash, quote and newline escaped).
    public static func quoted(_ value: String) -> String {
        var out = "\""
        for character in value {
            switch character {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out + "\""
    }
}
