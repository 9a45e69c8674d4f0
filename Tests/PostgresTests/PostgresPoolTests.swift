import Foundation
import Postgres
import Testing
import TestSupport
import IOLoop

@Suite struct PostgresPoolTests {
    /// Behind a transaction pooler a statement prepared on one server connection may be executed on
    /// another: every statement runs unnamed, and nothing reads from a pipelined connection.
    @Test func behindATransactionPoolerNothingIsPrepared() async throws {
        for pooler in [false, true] {
            var configuration = PostgresPool.Configuration(conninfo: try TestDatabase.url)
            configuration.maxConnections = 1
            configuration.transactionPooler = pooler
            let pool = PostgresPool(configuration: configuration)
            let prepared = try await pool.withConnection { connection in
                for value in 1...3 { _ = try await connection.query("SELECT \(value)::int AS n") }
                return try await connection.query("SELECT count(*) AS n FROM pg_prepared_statements")[0].decode("n", as: Int.self)
            }
            #expect(pooler ? prepared == 0 : prepared >= 1, "pooler \(pooler): \(prepared) prepared")
            pool.closeIdle()
        }
    }

    @Test func exhaustedPoolTimesOutInsteadOfHanging() async throws {
        try await TestDatabase.withSchema(maxConnections: 1, acquireTimeout: .milliseconds(200)) { pool in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    _ = try await pool.withConnection { connection in
                        try await connection.query("SELECT pg_sleep(4)").count
                    }
                }
                try await waitUntil("the only connection is taken") { pool.statistics.inUse == 1 }
                let clock = ContinuousClock()
                let started = clock.now
                let error = await #expect(throws: PostgresError.self) { try await pool.query("SELECT 1 AS one") }
                #expect(error?.kind == .poolTimeout && error?.isUnavailable == true)
                // Well under the 4 s the holder keeps its connection: the waiter gave up at its own
                // deadline (the margin absorbs a loaded test machine).
                #expect(clock.now - started < .milliseconds(2500))
                try await group.waitForAll()
            }
            // Once the holder is done, the pool serves again.
            #expect(try await pool.query("SELECT 1 AS one").first?.decode("one", as: Int.self) == 1)
        }
    }

    @Test func concurrentQueriesShareABoundedPool() async throws {
        // A long acquire timeout: this is about sharing, and the whole suite loads the machine.
        try await TestDatabase.withSchema(maxConnections: 3, acquireTimeout: .seconds(20)) { pool in
            try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<50 {
                    group.addTask { try #require(try await pool.query("SELECT \(index)::int AS v").first).decode("v") }
                }
                var sum = 0
                for try await value in group { sum += value }
                #expect(sum == (0..<50).reduce(0, +))
            }
            #expect(pool.statistics.open <= 3)
            #expect(pool.statistics.inUse == 0)
        }
    }

    @Test func aTaskOnAnEventLoopRunsThereAndGetsItsConnectionMovedToThatLoop() async throws {
        try await TestDatabase.withSchema(maxConnections: 1, acquireTimeout: .seconds(20)) { pool in
            #expect(IOEventLoop.current == nil)
            let first = IOEventLoop.next()
            let second = IOEventLoop.next()
            let (current, opened, one) = try await withTaskExecutorPreference(first) { () async throws -> (IOEventLoop?, IOEventLoop, Int?) in
                try await pool.withConnection { connection in
                    (IOEventLoop.current, connection.eventLoop, try await connection.query("SELECT 1 AS one").first?.decode("one", as: Int.self))
                }
            }
            #expect(current === first && opened === first && one == 1)
            // The pool's one connection now belongs to `first`; a task on `second` gets it moved over,
            // and its answers still arrive (they are read by `second` from now on).
            let (moved, value) = try await withTaskExecutorPreference(second) { () async throws -> (IOEventLoop, Int?) in
                try await pool.withConnection { connection in
                    (connection.eventLoop, try await connection.query("SELECT 2 AS two").first?.decode("two", as: Int.self))
                }
            }
            #expect(moved === second && value == 2)
            #expect(pool.statistics.open == 1)
        }
    }

    @Test func tasksSpreadOverEventLoopsShareASmallPool() async throws {
        // Without pipelines, so every statement takes a connection of its own (moved between loops).
        try await TestDatabase.withSchema(maxConnections: 3, acquireTimeout: .seconds(20), multiplexing: false) { pool in
            try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<60 {
                    group.addTask(executorPreference: IOEventLoop.next()) {
                        var total = 0
                        for round in 0..<5 {
                            total += try #require(try await pool.query("SELECT \(index * 5 + round)::int AS v").first).decode("v", as: Int.self)
                        }
                        return total
                    }
                }
                var sum = 0
                for try await value in group { sum += value }
                #expect(sum == (0..<300).reduce(0, +))
            }
            #expect(pool.statistics.open <= 3)
            #expect(pool.statistics.inUse == 0)
            #expect(pool.statistics.pipelined == 0)
        }
    }

    @Test func unreachableServerFailsFastAsUnavailable() async throws {
        let pool = PostgresPool(configuration: .init(conninfo: "postgresql:///nowhere?host=/nonexistent-socket-dir"))
        let error = await #expect(throws: PostgresError.self) { try await pool.query("SELECT 1") }
        #expect(error?.kind == .connectionFailed && error?.isUnavailable == true)
        #expect(pool.statistics.open == 0)
    }

    @Test func killedBackendIsReplacedTransparentlyOnTheNextCall() async throws {
        try await TestDatabase.withSchema(maxConnections: 1) { pool in
            let pid = try #require(try await pool.query("SELECT pg_backend_pid() AS pid").first).decode("pid", as: Int.self)
            let admin = PostgresPool(configuration: .init(conninfo: try TestDatabase.url))
            try await admin.query("SELECT pg_terminate_backend(\(pid))")
            let failure = await #expect(throws: PostgresError.self) { try await pool.query("SELECT 1 AS one") }
            #expect(failure?.isUnavailable == true)
            let next = try #require(try await pool.query("SELECT pg_backend_pid() AS pid").first).decode("pid", as: Int.self)
            #expect(next != pid)
        }
    }
}
