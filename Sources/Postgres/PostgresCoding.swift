#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A Swift value that can be sent as a bind parameter, in PostgreSQL's text input format.
public protocol PostgresEncodable: Sendable {
    /// The value's text form.
    var postgresText: String { get }
    /// The value in PostgreSQL's binary format, sent instead of the text when not nil: for bytes,
    /// whose text form doubles their size and costs the server a parse. Only for types whose binary
    /// form is exactly what the parameter's type reads (bytea, bytea[]).
    var postgresBinary: [UInt8]? { get }
}

extension PostgresEncodable {
    public var postgresBinary: [UInt8]? { nil }
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

    public var postgresBinary: [UInt8]? { bytes }

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
        var text = text
        guard let bytes = text.withUTF8({ Self.decode(hex: UnsafeRawBufferPointer($0)) }) else { throw decodingError(PostgresBytes.self) }
        self.bytes = bytes
    }

    /// Bytes from PostgreSQL's hex output (`\x0a1b...`), read straight from a buffer; nil if malformed.
    static func decode(hex text: UnsafeRawBufferPointer) -> [UInt8]? {
        guard text.count >= 2, text.count % 2 == 0, text[0] == UInt8(ascii: "\\"), text[1] == UInt8(ascii: "x") else { return nil }
        let count = (text.count - 2) / 2
        var valid = true
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            for index in 0..<count {
                let high = nibbles[Int(text[2 + 2 * index])], low = nibbles[Int(text[3 + 2 * index])]
                if high > 15 || low > 15 { valid = false }
                buffer[index] = high << 4 | (low & 0x0F)
            }
            initialized = count
        }
        return valid ? bytes : nil
    }

    /// Hex digit values; 0xFF for anything else.
    private static let nibbles: [UInt8] = (0...255).map { byte in
        switch UInt8(byte) {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt8(byte) - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt8(byte) - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt8(byte) - UInt8(ascii: "A") + 10
        default: 0xFF
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
    /// The microsecond PostgreSQL keeps for this instant: the nearest one. A value read back is
    /// within a quarter microsecond of its microsecond (a Double's step at today's dates), so it maps
    /// to the same one again; rounding down could land on the microsecond before. Clamped to about
    /// 4713 BC ... 291 000 AD, PostgreSQL's range give or take: converting a Double outside Int64
    /// would trap, and PostgreSQL refuses a value outside its range by itself.
    public var postgresMicroseconds: Int64 {
        let micros = (timeIntervalSince1970 * 1_000_000).rounded()
        return Int64(micros.isNaN ? 0 : min(max(micros, -2.1e17), 9.2e18))
    }

    public var postgresText: String {
        PostgresTimestamp.format(microsecondsSinceEpoch: postgresMicroseconds)
    }

    public init(postgresText text: String) throws(PostgresError) {
        guard let micros = PostgresTimestamp.parse(text) else { throw decodingError(Date.self) }
        self = Date(timeIntervalSince1970: Double(micros) / 1_000_000)
    }
}

/// A one-dimensional array bind (`{a,b,c}`), for set-based statements such as
/// `INSERT ... SELECT * FROM unnest($1::bigint[], $2::text[])` that write a whole batch in one
/// round trip. Elements are quoted, so any text is safe; nil is NULL. An array of bytes goes in
/// binary (as `bytea[]`): in text, each element would be hex inside a quoted literal, twice the
/// size and a character-by-character parse for the server.
public struct PostgresArray: PostgresEncodable {
    private enum Elements {
        case texts([String?])
        case bytes([[UInt8]])
    }

    private let elements: Elements

    public init(_ elements: [String?]) {
        self.elements = .texts(elements)
    }

    public init<Element: PostgresEncodable>(_ elements: [Element]) {
        self.elements = .texts(elements.map(\.postgresText))
    }

    public init(_ elements: [PostgresBytes]) {
        self.elements = .bytes(elements.map(\.bytes))
    }

    public var postgresText: String {
        switch elements {
        case .texts(let texts): Self.literal(texts)
        case .bytes(let values): Self.literal(values.map { PostgresBytes($0).postgresText })
        }
    }

    /// `array_send`'s layout: dimensions, a has-nulls flag, the element type, each dimension's length
    /// and lower bound, then each element as a length and its bytes; all integers big-endian.
    public var postgresBinary: [UInt8]? {
        guard case .bytes(let values) = elements else { return nil }
        let byteaOID: UInt32 = 17
        var out: [UInt8] = []
        out.reserveCapacity(20 + values.reduce(0) { $0 + 4 + $1.count })
        func append(_ value: UInt32) {
            withUnsafeBytes(of: value.bigEndian) { out.append(contentsOf: $0) }
        }
        append(values.isEmpty ? 0 : 1)
        append(0)
        append(byteaOID)
        if !values.isEmpty {
            append(UInt32(values.count))
            append(1)
        }
        for value in values {
            append(UInt32(value.count))
            out.append(contentsOf: value)
        }
        return out
    }

    private static func literal(_ elements: [String?]) -> String {
        var bytes: [UInt8] = [UInt8(ascii: "{")]
        bytes.reserveCapacity(elements.reduce(2) { $0 + ($1?.utf8.count ?? 4) + 3 })
        for (position, element) in elements.enumerated() {
            if position > 0 { bytes.append(UInt8(ascii: ",")) }
            guard let element else {
                bytes += Array("NULL".utf8)
                continue
            }
            bytes.append(UInt8(ascii: "\""))
            let utf8 = element.utf8
            if utf8.contains(where: { $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
                for byte in utf8 {
                    if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { bytes.append(UInt8(ascii: "\\")) }
                    bytes.append(byte)
                }
            } else {
                bytes.append(contentsOf: utf8)
            }
            bytes.append(UInt8(ascii: "\""))
        }
        bytes.append(UInt8(ascii: "}"))
        return String(decoding: bytes, as: UTF8.self)
    }
}
