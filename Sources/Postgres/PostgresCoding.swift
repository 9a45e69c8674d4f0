#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A Swift value that can be sent as a bind parameter, in PostgreSQL's text input format.
public protocol PostgresEncodable: Sendable {
    /// The value's text form.
    var postgresText: String { get }
}

/// A Swift value that can be read from a column in PostgreSQL's text output format.
public protocol PostgresDecodable {
    /// Parses the column's text; throws `PostgresError.decoding` when it does not fit.
    init(postgresText text: String) throws(PostgresError)
}

private func decodingError<T>(_ type: T.Type) -> PostgresError {
    PostgresError(.decoding, message: "column value is not a valid \(T.self)")
}

extension String: PostgresEncodable, PostgresDecodable {
    public var postgresText: String { self }
    public init(postgresText text: String) { self = text }
}

extension PostgresEncodable where Self: FixedWidthInteger {
    public var postgresText: String { String(self) }
}

extension PostgresDecodable where Self: FixedWidthInteger {
    public init(postgresText text: String) throws(PostgresError) {
        guard let value = Self(text) else { throw decodingError(Self.self) }
        self = value
    }
}

extension Int: PostgresEncodable, PostgresDecodable {}
extension Int64: PostgresEncodable, PostgresDecodable {}
extension Int32: PostgresEncodable, PostgresDecodable {}

extension Bool: PostgresEncodable, PostgresDecodable {
    public var postgresText: String { self ? "t" : "f" }
    public init(postgresText text: String) throws(PostgresError) {
        switch text {
        case "t": self = true
        case "f": self = false
        default: throw decodingError(Bool.self)
        }
    }
}

extension Double: PostgresEncodable, PostgresDecodable {
    public var postgresText: String {
        if isNaN { return "NaN" }
        if isInfinite { return self > 0 ? "Infinity" : "-Infinity" }
        return "\(self)"
    }

    public init(postgresText text: String) throws(PostgresError) {
        switch text {
        case "NaN": self = .nan
        case "Infinity": self = .infinity
        case "-Infinity": self = -.infinity
        default:
            guard let value = Double(text) else { throw decodingError(Double.self) }
            self = value
        }
    }
}

extension UUID: PostgresEncodable, PostgresDecodable {
    public var postgresText: String { uuidString.lowercased() }
    public init(postgresText text: String) throws(PostgresError) {
        guard let value = UUID(uuidString: text) else { throw decodingError(UUID.self) }
        self = value
    }
}

/// bytea, sent and read in the hex format (`\x0a0b`).
public struct PostgresBytes: PostgresEncodable, PostgresDecodable, Equatable {
    /// The raw bytes.
    public let bytes: [UInt8]

    /// Wraps bytes.
    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    private static let digits = Array("0123456789abcdef".utf8)

    public var postgresText: String {
        var out: [UInt8] = [UInt8(ascii: "\\"), UInt8(ascii: "x")]
        out.reserveCapacity(2 + bytes.count * 2)
        for byte in bytes {
            out.append(Self.digits[Int(byte >> 4)])
            out.append(Self.digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    public init(postgresText text: String) throws(PostgresError) {
        let utf8 = Array(text.utf8)
        guard utf8.count >= 2, utf8[0] == UInt8(ascii: "\\"), utf8[1] == UInt8(ascii: "x"), utf8.count % 2 == 0 else {
            throw decodingError(PostgresBytes.self)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity((utf8.count - 2) / 2)
        var index = 2
        while index < utf8.count {
            guard let high = Self.nibble(utf8[index]), let low = Self.nibble(utf8[index + 1]) else {
                throw decodingError(PostgresBytes.self)
            }
            bytes.append(high << 4 | low)
            index += 2
        }
        self.bytes = bytes
    }

    private static func nibble(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

/// A json or jsonb value as its text.
public struct PostgresJSON: PostgresEncodable, PostgresDecodable, Equatable {
    /// The JSON text.
    public let text: String

    /// Wraps JSON text the caller has produced.
    public init(text: String) {
        self.text = text
    }

    public var postgresText: String { text }
    public init(postgresText text: String) { self.text = text }
}

/// timestamptz. Sessions run with `TimeZone=UTC` and `DateStyle=ISO`, so values read as
/// `2026-11-25 12:00:00.123456+00`; microsecond precision is kept.
extension Date: PostgresEncodable, PostgresDecodable {
    public var postgresText: String {
        let micros = Int64((timeIntervalSince1970 * 1_000_000).rounded(.down))
        return PostgresTimestamp.format(microsecondsSinceEpoch: micros)
    }

    public init(postgresText text: String) throws(PostgresError) {
        guard let micros = PostgresTimestamp.parse(text) else { throw decodingError(Date.self) }
        self = Date(timeIntervalSince1970: Double(micros) / 1_000_000)
    }
}

/// A one-dimensional array bind (`{a,b,c}`), for set-based statements such as
/// `INSERT ... SELECT * FROM unnest($1::bigint[], $2::text[])` that write a whole batch in one
/// round trip. Elements are quoted, so any text is safe; nil is NULL.
public struct PostgresArray: PostgresEncodable {
    private let elements: [String?]

    public init(_ elements: [String?]) {
        self.elements = elements
    }

    public init<Element: PostgresEncodable>(_ elements: [Element]) {
        self.elements = elements.map(\.postgresText)
    }

    public var postgresText: String {
        var text = "{"
        for (position, element) in elements.enumerated() {
            if position > 0 { text += "," }
            guard let element else {
                text += "NULL"
                continue
            }
            text += "\""
            for character in element.unicodeScalars {
                if character == "\"" || character == "\\" { text += "\\" }
                text.unicodeScalars.append(character)
            }
            text += "\""
        }
        return text + "}"
    }
}
