extension String {
    /// The text without leading and trailing Unicode whitespace.
    func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        return String(scalars[first...last])
    }
}

/// Display names and labels as people type them: trimmed, at most 200 characters, no control characters.
enum DisplayName {
    static let maximumLength = 200

    static func validated(_ text: String?, field: String, required: Bool) throws(DomainError) -> String {
        let trimmed = (text ?? "").trimmingWhitespace()
        guard !required || !trimmed.isEmpty else { throw .invalid("'\(field)' must not be empty.") }
        guard trimmed.count <= maximumLength else { throw .invalid("'\(field)' must be at most \(maximumLength) characters.") }
        guard !trimmed.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw .invalid("'\(field)' must not contain control characters.")
        }
        return trimmed
    }
}

/// Document hashes as CareLedger writes them: `sha256:` and 64 lower-case hex digits.
enum DocumentHash {
    static func isValid(_ text: String) -> Bool {
        text.hasPrefix("sha256:") && text.utf8.count == 71
            && text.utf8.dropFirst(7).allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }
}

/// Names, identifiers and reasons bound for the database: PostgreSQL text cannot hold NUL, and none
/// of ours needs a control character, so both are refused here rather than failing in the database.
enum PlainText {
    static func validated(_ text: String, field: String, maximum: Int = 1000) throws(DomainError) -> String {
        // Printable ASCII, the usual case, is settled bytewise; counting characters and reading
        // Unicode properties cost a JWS of 64 KB more than verifying its signature.
        if text.utf8.count <= maximum, text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) { return text }
        guard text.count <= maximum else { throw .invalid("'\(field)' must be at most \(maximum) characters.") }
        guard !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw .invalid("'\(field)' must not contain control characters.")
        }
        return text
    }
}
