import FoundationEssentials

/// Instants as the API writes and reads them: RFC 3339 in UTC, e.g. `2026-11-25T14:00:59.104Z`.
enum Timestamp {
    private static let withFraction = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
    private static let withoutFraction = Date.ISO8601FormatStyle()

    static func format(_ date: Date) -> String {
        date.formatted(withFraction)
    }

    /// A full date and time with a zone; anything looser (a bare date, `now`) is nil.
    static func parse(_ text: String) -> Date? {
        (try? withFraction.parse(text)) ?? (try? withoutFraction.parse(text))
    }
}
