/// A piece of SQL with its values, owned by one store and composed into another's statement: the
/// ledger-queue append or the audit insert as a CTE of a single-statement send. Written like a
/// `PostgresQuery`, with every interpolated value a bind; interpolated into a query (or another
/// fragment), its values become that statement's next `$n`.
public struct PostgresFragment: Sendable, ExpressibleByStringInterpolation {
    enum Part: Sendable {
        case sql(String)
        case bind(PostgresBind)
    }

    private(set) var parts: [Part]

    public init(stringLiteral value: String) {
        parts = [.sql(value)]
    }

    public init(stringInterpolation: StringInterpolation) {
        parts = stringInterpolation.parts
    }

    /// Collects literal SQL, values (each a bind) and nested fragments.
    public struct StringInterpolation: StringInterpolationProtocol {
        var parts: [Part] = []

        public init(literalCapacity: Int, interpolationCount: Int) {
            parts.reserveCapacity(2 * interpolationCount + 1)
        }

        public mutating func appendLiteral(_ literal: String) {
            parts.append(.sql(literal))
        }

        public mutating func appendInterpolation(_ value: some PostgresEncodable) {
            parts.append(.bind(PostgresBind(value)))
        }

        public mutating func appendInterpolation(_ value: (some PostgresEncodable)?) {
            parts.append(.bind(value.map(PostgresBind.init) ?? .null))
        }

        /// SQL text fixed in the source (see `PostgresQuery`).
        public mutating func appendInterpolation(sql fragment: StaticString) {
            parts.append(.sql(fragment.description))
        }

        public mutating func appendInterpolation(_ fragment: PostgresFragment) {
            parts += fragment.parts
        }
    }
}

extension PostgresQuery.StringInterpolation {
    /// Another store's fragment: its text in place, its values as this statement's next binds.
    public mutating func appendInterpolation(_ fragment: PostgresFragment) {
        for part in fragment.parts {
            switch part {
            case .sql(let text):
                appendLiteral(text)
            case .bind(let bind):
                binds.append(bind)
                sql += "$\(binds.count)"
            }
        }
    }
}

extension PostgresFragment {
    /// The fragments in order with `separator` between them: the conditions a request names and no
    /// others, so each combination is its own statement with its own plan, never one generic plan
    /// that must serve every `$n IS NULL OR …` at once.
    public static func joined(_ fragments: [PostgresFragment], separator: StaticString) -> PostgresFragment {
        var joined = PostgresFragment(stringLiteral: "")
        for (index, fragment) in fragments.enumerated() {
            if index > 0 { joined.parts.append(.sql(separator.description)) }
            joined.parts += fragment.parts
        }
        return joined
    }
}
