/// Minimal JSON string escaping (RFC 8259 §7) for the few JSON lines the HTTP layer writes itself:
/// error bodies and access-log lines, which must not depend on Foundation's encoder on the hot path.
public enum JSONText {
    /// Appends `value` as a quoted JSON string.
    public static func appendQuoted(_ value: String, to output: inout String) {
        output += "\""
        // Ids, routes and methods never need escaping; copy them whole.
        if !value.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            output += value
            output += "\""
            return
        }
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case _ where scalar.value < 0x20:
                output += "\\u00"
                output += String(scalar.value >> 4, radix: 16)
                output += String(scalar.value & 0xF, radix: 16)
            default:
                output.unicodeScalars.append(scalar)
            }
        }
        output += "\""
    }

    /// `value` as a quoted JSON string.
    public static func quoted(_ value: String) -> String {
        var output = ""
        appendQuoted(value, to: &output)
        return output
    }
}
