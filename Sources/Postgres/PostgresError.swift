/// A failure talking to PostgreSQL. `description` is deliberately generic so that logging or showing
/// the error cannot leak SQL, parameters or data; the server's details are in `debugDescription`.
public struct PostgresError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// What went wrong, at the level a caller acts on.
    public enum Kind: Sendable, Equatable {
        /// No connection could be opened (server down, bad address, authentication).
        case connectionFailed
        /// An open connection broke mid-use.
        case connectionLost
        /// Every pooled connection was busy for the whole acquire timeout.
        case poolTimeout
        /// The server rejected a statement; `sqlState` says why.
        case server
        /// A value could not be decoded into the requested Swift type.
        case decoding
        /// The client was misused (unknown column, query on a closed connection...).
        case client
    }

    /// The kind.
    public let kind: Kind
    /// The five-character SQLSTATE for server errors, e.g. `23505`.
    public let sqlState: String?
    /// The server's primary message, or libpq's.
    public let message: String
    /// The server's detail line, which may quote data; never shown to API callers.
    public let detail: String?
    /// The violated constraint's name, for integrity errors.
    public let constraint: String?

    /// Creates an error.
    public init(_ kind: Kind, message: String, sqlState: String? = nil, detail: String? = nil, constraint: String? = nil) {
        self.kind = kind
        self.message = message
        self.sqlState = sqlState
        self.detail = detail
        self.constraint = constraint
    }

    /// Whether the database as a whole is unreachable right now (answer 503, retry later).
    public var isUnavailable: Bool {
        switch kind {
        case .connectionFailed, .connectionLost, .poolTimeout: return true
        case .server:
            // Class 57 (operator intervention: shutdown, admin terminate) and 08 (connection exception).
            return sqlState.map { $0.hasPrefix("57") || $0.hasPrefix("08") } ?? false
        case .decoding, .client: return false
        }
    }

    /// Serialization failure or deadlock: the transaction may simply be run again.
    public var isRetryable: Bool { sqlState == "40001" || sqlState == "40P01" }

    /// A unique-constraint violation (SQLSTATE 23505).
    public var isUniqueViolation: Bool { sqlState == "23505" }

    public var description: String {
        "PostgresError(\(kind)\(sqlState.map { ", sqlState: \($0)" } ?? ""))"
    }

    public var debugDescription: String {
        var text = "PostgresError(\(kind), sqlState: \(sqlState ?? "-"), message: \(message)"
        if let detail { text += ", detail: \(detail)" }
        if let constraint { text += ", constraint: \(constraint)" }
        return text + ")"
    }
}
