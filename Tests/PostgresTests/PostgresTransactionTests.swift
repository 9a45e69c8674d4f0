import Postgres
import Synchronization
import Testing
import TestSupport

@Suite struct PostgresTransactionTests {
    struct Boom: Error {}

    @Test func commitOnReturnRollbackOnThrow() async throws {
        try await TestDatabase.withSchema { pool in
            try await pool.query("CREATE TABLE items (name text)")
            try await pool.withTransaction { tx in
                try await tx.query("INSERT INTO items VALUES (\("kept"))")
            }
            await #expect(throws: Boom.self) {
                try await pool.withTransaction { tx in
                    try await tx.query("INSERT INTO items VALUES (\("discarded"))")
                    throw Boom()
                }
            }
            let names = try await pool.query("SELECT name FROM items").all.map { try $0.decode("name", as: String.self) }
            #expect(names == ["kept"])
        }
    }

    @Test func serializationFailureIsRetried() async throws {
        try await TestDatabase.withSchema { pool in
            try await pool.query("CREATE TABLE counter (n int)")
            try await pool.query("INSERT INTO counter VALUES (0)")
            let attempts = Atomic<Int>(0)
            try await pool.withTransaction(isolation: .serializable) { tx in
                try await tx.query("UPDATE counter SET n = n + 1")
                if attempts.add(1, ordering: .relaxed).newValue == 1 {
                    try await tx.query("DO $$ BEGIN RAISE EXCEPTION 'forced' USING ERRCODE = '40001'; END $$")
                }
            }
            #expect(attempts.load(ordering: .relaxed) == 2)
            #expect(try await pool.query("SELECT n FROM counter").first?.decode("n", as: Int.self) == 1)
        }
    }

    @Test func realSerializationConflictBetweenTwoTransactionsResolves() async throws {
        // A connection for each of the eight: what is tested is the retry of conflicting
        // transactions, not the wait for a connection, which under a loaded CI ran past 2 s.
        try await TestDatabase.withSchema(maxConnections: 8) { pool in
            try await pool.query("CREATE TABLE balance (n int)")
            try await pool.query("INSERT INTO balance VALUES (0)")
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        try await pool.withTransaction(isolation: .serializable, maxAttempts: 20) { tx in
                            let n = try #require(try await tx.query("SELECT n FROM balance").first).decode("n", as: Int.self)
                            try await tx.query("UPDATE balance SET n = \(n + 1)")
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await pool.query("SELECT n FROM balance").first?.decode("n", as: Int.self) == 8)
        }
    }

    @Test func retriesStopAtMaxAttempts() async throws {
        try await TestDatabase.withSchema { pool in
            let attempts = Atomic<Int>(0)
            let error = await #expect(throws: PostgresError.self) {
                try await pool.withTransaction(maxAttempts: 3) { tx in
                    attempts.add(1, ordering: .relaxed)
                    try await tx.query("DO $$ BEGIN RAISE EXCEPTION 'forced' USING ERRCODE = '40P01'; END $$")
                }
            }
            #expect(error?.isRetryable == true)
            #expect(attempts.load(ordering: .relaxed) == 3)
        }
    }
}
