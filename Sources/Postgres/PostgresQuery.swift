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

/// One bind value: in PostgreSQL's text format, in its binary format (bytes), or NULL.
public struct PostgresBind: Sendable, Equatable {
    /// The text representation; nil for NULL and for a binary value.
    public let text: String?
    /// The binary representation, when the value has one.
    public let binary: [UInt8]?

    /// The bind for a value.
    public init(_ value: some PostgresEncodable) {
        binary = value.postgresBinary
        text = binary == nil ? value.postgresText : nil
    }

    private init() {
        text = nil
        binary = nil
    }

    /// SQL NULL.
    public static let null = PostgresBind()
}
