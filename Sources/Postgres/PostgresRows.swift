import CLibPQ

/// The rows a statement returned, read straight from libpq's result without copying. Columns are
/// addressed by name only, so a reordered SELECT cannot silently shift values.
///
/// `@unchecked Sendable` is sound because a PGresult is immutable once returned and libpq documents
/// reading one from several threads as safe; the result is freed only in `deinit`.
public final class PostgresRows: @unchecked Sendable {
    private let result: OpaquePointer?

    /// The number of rows.
    public let count: Int

    init(result: OpaquePointer?) {
        self.result = result
        count = result.map { Int(PQntuples($0)) } ?? 0
    }

    /// Rows changed by INSERT/UPDATE/DELETE, from the command tag.
    public var affectedRows: Int {
        result.flatMap { Int(String(cString: PQcmdTuples($0))) } ?? 0
    }

    deinit {
        if let result { PQclear(result) }
    }

    /// Whether there are no rows.
    public var isEmpty: Bool { count == 0 }

    /// The row at `index` (0-based). A row the result does not have is not a trap: reading any of
    /// its columns throws, so `rows[0]` of an empty result is an error the caller can answer.
    public subscript(index: Int) -> PostgresRow {
        PostgresRow(rows: self, index: index >= 0 && index < count ? Int32(index) : -1)
    }

    /// The first row, if any.
    public var first: PostgresRow? { isEmpty ? nil : self[0] }

    /// Every row.
    public var all: [PostgresRow] { (0..<count).map { self[$0] } }

    /// A bytea column's bytes, decoded from libpq's buffer without an intermediate String.
    fileprivate func bytes(row: Int32, column name: String) throws(PostgresError) -> [UInt8]? {
        guard row >= 0 else { throw PostgresError(.decoding, message: "the statement returned no such row") }
        guard let result, case let column = PQfnumber(result, name), column >= 0 else {
            throw PostgresError(.client, message: "no column named \(name)")
        }
        if PQgetisnull(result, row, column) == 1 { return nil }
        guard let value = PQgetvalue(result, row, column) else { return nil }
        let buffer = UnsafeRawBufferPointer(start: value, count: Int(PQgetlength(result, row, column)))
        guard let bytes = PostgresBytes.decode(hex: buffer) else {
            throw PostgresError(.decoding, message: "column \(name) is not bytea")
        }
        return bytes
    }

    fileprivate func text(row: Int32, column name: String) throws(PostgresError) -> String? {
        guard row >= 0 else { throw PostgresError(.decoding, message: "the statement returned no such row") }
        // PQfnumber folds unquoted names to lower case, as SQL does; our column names are lower case.
        guard let result, case let column = PQfnumber(result, name), column >= 0 else {
            throw PostgresError(.client, message: "no column named \(name)")
        }
        if PQgetisnull(result, row, column) == 1 { return nil }
        guard let value = PQgetvalue(result, row, column) else { return nil }
        return String(cString: value)
    }
}

/// One row, read by column name.
public struct PostgresRow: Sendable {
    fileprivate let rows: PostgresRows
    fileprivate let index: Int32

    /// The column's value; NULL is an error here (use the optional overload for nullable columns).
    public func decode<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws(PostgresError) -> T {
        guard let text = try rows.text(row: index, column: column) else {
            throw PostgresError(.decoding, message: "column \(column) is NULL")
        }
        return try T(postgresText: text)
    }

    /// A non-NULL bytea column's bytes (faster than decoding `PostgresBytes`).
    public func bytes(_ column: String) throws(PostgresError) -> [UInt8] {
        guard let bytes = try rows.bytes(row: index, column: column) else {
            throw PostgresError(.decoding, message: "column \(column) is NULL")
        }
        return bytes
    }

    /// The column's value, nil for NULL.
    public func decode<T: PostgresDecodable>(_ column: String, as type: T?.Type) throws(PostgresError) -> T? {
        guard let text = try rows.text(row: index, column: column) else { return nil }
        return try T(postgresText: text)
    }
}
