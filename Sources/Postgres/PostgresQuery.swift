/// SQL with its values kept apart. Written as a string literal with interpolations, every interpolated
/// value becomes a `$n` bind parameter, never SQL text:
///
///     let query: PostgresQuery = "SELECT name FROM orgs WHERE id = \(orgId)"
///
/// SQL assembled at run time must say so with `init(unsafeSQL:binds:)`, which is easy to grep for.
public struct PostgresQuery: Sendable, ExpressibleByStringInterpolation {
    /// The statement text with `$1`, `$2`... placeholders.
    public let sql: String
    /// The values, in placeholder order.
    public let binds: [PostgresBind]

    /// A statement built from trusted text plus explicit binds.
    public init(unsafeSQL sql: String, binds: [PostgresBind] = []) {
        self.sql = sql
        self.binds = binds
    }

    public init(stringLiteral value: String) {
        self.init(unsafeSQL: value)
    }

    public init(stringInterpolation: StringInterpolation) {
        self.init(unsafeSQL: stringInterpolation.sql, binds: stringInterpolation.binds)
    }

    /// Collects literal SQL and turns each interpolated value into the next bind.
    public struct StringInterpolation: StringInterpolationProtocol {
        var sql = ""
        var binds: [PostgresBind] = []

        public init(literalCapacity: Int, interpolationCount: Int) {
            sql.reserveCapacity(literalCapacity + interpolationCount * 3)
            binds.reserveCapacity(interpolationCount)
        }

        public mutating func appendLiteral(_ literal: String) {
            sql += literal
        }

        public mutating func appendInterpolation(_ value: some PostgresEncodable) {
            binds.append(PostgresBind(value))
            sql += "$\(binds.count)"
        }

        /// SQL text fixed in the source, such as a column list several statements share. A
        /// `StaticString` cannot be built from runtime data, so no value can reach the SQL this way.
        public mutating func appendInterpolation(sql fragment: StaticString) {
            sql += fragment.description
        }

        public mutating func appendInterpolation(_ value: (some PostgresEncodable)?) {
            binds.append(value.map(PostgresBind.init) ?? .null)
            sql += "$\(binds.count)"
        }
    }
}

/// One bind value in PostgreSQL's text format, or NULL.
public struct PostgresBind: Sendable, Equatable {
    /// The text representation; nil is SQL NULL.
    public let text: String?

    /// The bind for a value.
    public init(_ value: some PostgresEncodable) {
        text = value.postgresText
    }

    private init(text: String?) {
        self.text = text
    }

    /// SQL NULL.
    public static let null = PostgresBind(text: nil)
}
