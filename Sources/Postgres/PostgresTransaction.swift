/// Transaction isolation levels (PostgreSQL docs, "Transaction Isolation").
public enum IsolationLevel: String, Sendable {
    case readCommitted = "READ COMMITTED"
    case repeatableRead = "REPEATABLE READ"
    case serializable = "SERIALIZABLE"
}

/// Statements inside one transaction, all on the same connection.
public struct PostgresTransaction: Sendable {
    let connection: PostgresConnection

    /// Runs one statement in the transaction.
    @discardableResult
    public func query(_ query: PostgresQuery) async throws -> PostgresRows {
        try await connection.query(query)
    }
}

extension PostgresPool {
    /// Runs `body` in a transaction: COMMIT when it returns, ROLLBACK when it throws. A serialization
    /// failure (40001) or deadlock (40P01), from any statement or from COMMIT, runs the whole body
    /// again, up to `maxAttempts` times, with a short growing pause between attempts.
    @discardableResult
    public func withTransaction<T: Sendable>(
        isolation: IsolationLevel = .readCommitted,
        maxAttempts: Int = 3,
        _ body: (PostgresTransaction) async throws -> T
    ) async throws -> T {
        var attempt = 1
        while true {
            do {
                return try await withConnection { connection in
                    try await Self.runOnce(connection, isolation: isolation, body)
                }
            } catch let error as PostgresError where error.isRetryable && attempt < maxAttempts {
                try await Task.sleep(for: .milliseconds(5 * attempt * attempt))
                attempt += 1
            }
        }
    }

    private static func runOnce<T: Sendable>(
        _ connection: PostgresConnection,
        isolation: IsolationLevel,
        _ body: (PostgresTransaction) async throws -> T
    ) async throws -> T {
        let begin = "BEGIN ISOLATION LEVEL " + isolation.rawValue
        try await connection.script(begin)
        do {
            let value = try await body(PostgresTransaction(connection: connection))
            try await connection.script("COMMIT")
            return value
        } catch {
            do {
                try await connection.script("ROLLBACK")
            } catch {
                // A connection that cannot roll back must never be reused mid-transaction.
                connection.markBroken()
            }
            throw error
        }
    }
}
