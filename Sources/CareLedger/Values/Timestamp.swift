import FoundationEssentials
import GS1
import Postgres

/// Instants as the API writes and reads them: RFC 3339 in UTC, e.g. `2026-11-25T14:00:59.104Z`.
enum Timestamp {
    private static let withFraction = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
    private static let withoutFraction = Date.ISO8601FormatStyle()

    /// From the microsecond the database keeps, in whole numbers: a time answered when it was made
    /// and the same time read back later print alike (the formatter's own rounding of a Double
    /// could put them a millisecond apart).
    static func format(_ date: Date) -> String {
        let milliseconds = date.postgresMicroseconds / 1000 - (date.postgresMicroseconds % 1000 < 0 ? 1 : 0)
        let seconds = milliseconds / 1000 - (milliseconds % 1000 < 0 ? 1 : 0)
        let fraction = milliseconds - seconds * 1000
        let whole = Date(timeIntervalSince1970: Double(seconds)).formatted(withoutFraction)
        guard whole.hasSuffix("Z") else { return date.formatted(withFraction) }
        let digits = String(fraction)
        return whole.dropLast() + "." + String(repeating: "0", count: 3 - digits.count) + digits + "Z"
    }

    /// Instants from 0001-01-01 to 9999-12-31 (UTC), the years RFC 3339 writes with four digits.
    static let range = Date(timeIntervalSince1970: -62_135_596_800)...Date(timeIntervalSince1970: 253_402_300_799.999)

    /// A full date and time with a zone, within `range`; anything looser (a bare date, `now`) is nil.
    static func parse(_ text: String) -> Date? {
        guard text.utf8.count <= 64, let date = (try? withFraction.parse(text)) ?? (try? withoutFraction.parse(text)),
              range.contains(date) else { return nil }
        return date
    }

    /// `parse` for bulk input (a reader's batch of reads): RFC 3339 with a zone, read on bytes to the
    /// millisecond, without a formatter's cost for each of hundreds of values.
    static func parseToMillisecond(_ text: String) -> Date? {
        guard text.utf8.count <= 64, let stamp = EPCISTimestamp(text) else { return nil }
        let date = Date(timeIntervalSince1970: Double(stamp.milliseconds) / 1000)
        return range.contains(date) ? date : nil
    }
}
