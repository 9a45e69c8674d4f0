import Postgres

/// Where a statement runs: the pool (its own transaction) or an open transaction, so a store's
/// write can join the transaction of the change it belongs to.
protocol QueryRunner: Sendable {
    @discardableResult
    func query(_ query: PostgresQuery) async throws -> PostgresRows
}

extension PostgresPool: QueryRunner {}
extension PostgresTransaction: QueryRunner {}
