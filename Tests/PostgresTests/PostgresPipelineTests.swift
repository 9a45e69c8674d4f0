import Foundation
import Postgres
import Synchronization
import Testing
import TestSupport
import IOLoop

/// Reads by tasks on an event loop share the loop's pipelined connection (`PostgresPipeline`).
@Suite struct PostgresPipelineTests {
    /// Reads on every loop until each has its pipeline (they open in the background on first use).
    private func openPipelines(_ pool: PostgresPool) async throws {
        try await waitUntil("every loop has its pipeline", every: .milliseconds(20)) {
            for loop in IOEventLoop.all {
                try await withTaskExecutorPreference(loop) { _ = try await pool.query("SELECT 1 AS one") }
            }
            return pool.statistics.pipelined == IOEventLoop.all.count
        }
    }

    /// The backend that answers a read from a task on `loop`: its pipeline's, once that is open.
    private func backendPID(_ pool: PostgresPool, readingOn loop: IOEventLoop) async throws -> Int {
        try await withTaskExecutorPreference(loop) {
            try #require(try await pool.query("SELECT pg_backend_pid() AS pid").first).decode("pid", as: Int.self)
        }
    }

    @Test func readsOnALoopShareOneBackendAndNeedNoPooledConnection() async throws {
        // No stall guard here (a loaded machine can delay any statement past 10 ms, which would send
        // readers to the pool): this is about sharing; `aSlowReadSendsTheNextOnesElsewhere` is about the guard.
        try await TestDatabase.withSchema(maxConnections: 1, acquireTimeout: .milliseconds(300), pipelineStall: .seconds(30)) { pool in
            try await openPipelines(pool)
            try await withThrowingTaskGroup(of: Void.self) { group in
                // The pool's only connection is held for 2 s, so a read that needed it would time out.
                group.addTask {
                    try await pool.withConnection { connection in _ = try await connection.query("SELECT pg_sleep(2)") }
                }
                try await waitUntil("the pool's connection is taken") { pool.statistics.inUse == 1 }
                let loop = IOEventLoop.all[0]
                // Fewer than the 64 a pipeline holds at once; beyond that readers take pooled connections.
                let answers = try await withThrowingTaskGroup(of: (value: Int, pid: Int).self) { readers in
                    for index in 0..<60 {
                        readers.addTask(executorPreference: loop) {
                            let row = try #require(try await pool.query("SELECT \(index)::int AS v, pg_backend_pid() AS pid").first)
                            return (try row.decode("v", as: Int.self), try row.decode("pid", as: Int.self))
                        }
                    }
                    var answers: [(value: Int, pid: Int)] = []
                    for try await answer in readers { answers.append(answer) }
                    return answers
                }
                #expect(answers.map(\.value).sorted() == Array(0..<60))
                #expect(Set(answers.map(\.pid)).count == 1)
                #expect(pool.statistics.inUse == 1)
                try await group.waitForAll()
            }
        }
    }

    @Test func aFailingStatementFailsAloneAmongItsNeighbours() async throws {
        try await TestDatabase.withSchema { pool in
            try await openPipelines(pool)
            let outcomes = try await withThrowingTaskGroup(of: (index: Int, value: Int?, sqlState: String?).self) { group in
                for index in 0..<120 {
                    group.addTask(executorPreference: IOEventLoop.all[index % IOEventLoop.all.count]) {
                        do {
                            let query: PostgresQuery = switch index % 3 {
                            case 0: "SELECT \(index)::int AS v"
                            case 1: "SELECT 1 / \(0)::int AS v"
                            default: "SELEC \(index)::int AS v"
                            }
                            return (index, try #require(try await pool.query(query).first).decode("v", as: Int.self), nil)
                        } catch let error as PostgresError {
                            return (index, nil, error.sqlState)
                        }
                    }
                }
                var outcomes: [(index: Int, value: Int?, sqlState: String?)] = []
                for try await outcome in group { outcomes.append(outcome) }
                return outcomes.sorted { $0.index < $1.index }
            }
            for outcome in outcomes {
                switch outcome.index % 3 {
                case 0: #expect(outcome.value == outcome.index && outcome.sqlState == nil)
                // Division by zero, then a syntax error each time: a statement that failed to
                // prepare is not left behind as a name that later ones would miss.
                case 1: #expect(outcome.value == nil && outcome.sqlState == "22012")
                default: #expect(outcome.value == nil && outcome.sqlState == "42601")
                }
            }
        }
    }

    @Test func writesLeaveThePipelineAndCommitOnAConnectionOfTheirOwn() async throws {
        try await TestDatabase.withSchema { pool in
            try await pool.query("CREATE TABLE items (v int PRIMARY KEY, note text)")
            try await openPipelines(pool)
            let pipelinePIDs = try await withThrowingTaskGroup(of: Int.self) { group in
                for loop in IOEventLoop.all {
                    group.addTask { try await backendPID(pool, readingOn: loop) }
                }
                return try await group.reduce(into: Set<Int>()) { $0.insert($1) }
            }
            let inserted = try await withThrowingTaskGroup(of: (value: Int, pid: Int).self) { group in
                for index in 0..<40 {
                    group.addTask(executorPreference: IOEventLoop.all[index % IOEventLoop.all.count]) {
                        let row = try #require(try await pool.query("INSERT INTO items (v) VALUES (\(index)) RETURNING v, pg_backend_pid() AS pid").first)
                        return (try row.decode("v", as: Int.self), try row.decode("pid", as: Int.self))
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(inserted.map(\.value).sorted() == Array(0..<40))
            #expect(Set(inserted.map(\.pid)).isDisjoint(with: pipelinePIDs))
            // A read that locks, and a write inside a SELECT, are writes too.
            let locked = try await withTaskExecutorPreference(IOEventLoop.all[0]) {
                try await pool.query("SELECT v FROM items WHERE v = \(7) FOR UPDATE").count
            }
            let noted = try await withTaskExecutorPreference(IOEventLoop.all[0]) {
                try await pool.query("WITH noted AS (UPDATE items SET note = 'seen' WHERE v < \(10) RETURNING v) SELECT count(*) AS n FROM noted")
                    .first?.decode("n", as: Int.self)
            }
            #expect(locked == 1 && noted == 10)
            // Committed: another connection sees every row.
            let admin = PostgresPool(configuration: .init(conninfo: pool.configuration.conninfo))
            let counts = try #require(try await admin.query("SELECT count(*) AS n, count(note) AS noted FROM items").first)
            #expect(try counts.decode("n", as: Int.self) == 40 && counts.decode("noted", as: Int.self) == 10)
        }
    }

    @Test func aTerminatedPipelineIsReplaced() async throws {
        try await TestDatabase.withSchema { pool in
            try await openPipelines(pool)
            let loop = IOEventLoop.all[0]
            let pid = try await backendPID(pool, readingOn: loop)
            let admin = PostgresPool(configuration: .init(conninfo: pool.configuration.conninfo))
            try await admin.query("SELECT pg_terminate_backend(\(pid))")
            // Statements caught by the loss fail as unavailable; within seconds reads work again, on a
            // new pipeline.
            var served: Int?
            try await waitUntil("reads work again", deadline: .seconds(5), every: .milliseconds(20)) {
                do {
                    served = try await backendPID(pool, readingOn: loop)
                } catch let error as PostgresError {
                    #expect(error.isUnavailable)
                }
                return served != nil
            }
            #expect(served != pid)
            try await openPipelines(pool)
            let replaced = try await backendPID(pool, readingOn: loop)
            #expect(replaced != pid)
        }
    }

    @Test func aSlowReadSendsTheNextOnesElsewhere() async throws {
        try await TestDatabase.withSchema { pool in
            try await openPipelines(pool)
            let loop = IOEventLoop.all[0]
            let pipelinePID = try await backendPID(pool, readingOn: loop)
            let slowDone = Atomic<Bool>(false)
            let slow = Task(executorPreference: loop) {
                defer { slowDone.store(true, ordering: .releasing) }
                return try #require(try await pool.query("SELECT pg_backend_pid() AS pid, pg_sleep(3)::text AS slept").first).decode("pid", as: Int.self)
            }
            // Past the guard: the slow read is running on the pipeline's backend and has waited 10 ms.
            let admin = PostgresPool(configuration: .init(conninfo: try TestDatabase.url))
            try await waitUntil("the slow read runs on the pipeline") {
                !(try await admin.query("SELECT 1 AS one FROM pg_stat_activity WHERE pid = \(pipelinePID) AND query LIKE '%pg_sleep(3)%'").isEmpty)
            }
            // The guard looks at how long the oldest statement has waited: let 10 ms pass.
            try await Task.sleep(for: .milliseconds(20))
            let (value, pid) = try await withTaskExecutorPreference(loop) {
                let row = try #require(try await pool.query("SELECT 7 AS v, pg_backend_pid() AS pid").first)
                return (try row.decode("v", as: Int.self), try row.decode("pid", as: Int.self))
            }
            // Answered by a pooled connection while the pipeline's backend sleeps, not after it.
            #expect(value == 7 && pid != pipelinePID)
            let slowEndedFirst = slowDone.load(ordering: .acquiring)
            #expect(!slowEndedFirst, "answered before the slow read ended")
            #expect(try await slow.value == pipelinePID)
        }
    }

    @Test func largeParametersAndAnswersCrossThePipelineWhole() async throws {
        // Megabyte statements stall the pipeline, so most of them go to the pool's four
        // connections; on a loaded CI machine waiting for one took over the default 2 s once.
        // What is tested is that the bytes cross whole, not how fast a connection frees up.
        try await TestDatabase.withSchema(acquireTimeout: .seconds(30)) { pool in
            try await openPipelines(pool)
            let loop = IOEventLoop.all[0]
            // Larger than the socket buffers both ways, so sends and reads each take several calls,
            // with small statements queued on either side.
            let big = String(repeating: "abcdefghij", count: 300_000) + "-the-end"
            let results = try await withThrowingTaskGroup(of: (index: Int, text: String).self) { group in
                for index in 0..<20 {
                    group.addTask(executorPreference: loop) {
                        let query: PostgresQuery = switch index % 4 {
                        case 0: "SELECT length(\(big))::text || right(\(big), 8) AS t"
                        case 1: "SELECT repeat('xy', \(1_500_000 + index)) AS t"
                        default: "SELECT \(index)::text AS t"
                        }
                        return (index, try #require(try await pool.query(query).first).decode("t", as: String.self))
                    }
                }
                return try await group.reduce(into: [Int: String]()) { $0[$1.index] = $1.text }
            }
            for (index, text) in results {
                switch index % 4 {
                case 0: #expect(text == "\(big.count)-the-end")
                case 1: #expect(text.utf8.count == 2 * (1_500_000 + index) && text.hasPrefix("xyxy"))
                default: #expect(text == String(index))
                }
            }
            #expect(results.count == 20)
        }
    }
}
