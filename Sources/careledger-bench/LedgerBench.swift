import CareLedger
import Crypto
import Foundation
import Postgres

/// `careledger-bench ledger <writers> <seconds> [rate]`: writers commit queue rows as fast as they can
/// (each its own transaction, as a domain change would) while the elected sequencer turns them into
/// signed log entries. Reports sustained entries/s (until the queue is drained) and the time from a
/// row's commit to its entry being sequenced. Expects a migrated database.
///
/// `careledger-bench ledger-fill <entries>`: queues that many rows, 10,000 a statement, and lets the
/// sequencer take them in batches, to build a large log for the proof and verify benchmarks.
enum LedgerBench {
    static func run(arguments: [String], url: String) async throws {
        var configuration = PostgresPool.Configuration(conninfo: url)
        configuration.maxConnections = 40
        let pool = PostgresPool(configuration: configuration)
        let signer = try LedgerSigner(origin: "bench.careledger/log", key: Ed25519PrivateKey())
        let ledger = try LedgerService(pool: pool, signer: signer)
        ledger.start()
        defer { pool.closeIdle() }
        let before = try await pool.query("SELECT count(*) AS n FROM ledger_entries")[0].decode("n", as: Int64.self)
        let clock = ContinuousClock()
        let started = clock.now
        if arguments[0] == "ledger-fill", let count = Int(arguments[1]), count >= 0 {
            for start in stride(from: 1, through: count, by: 10_000) {
                let numbers = start...min(count, start + 9_999)
                try await ledger.enqueueLoad(type: "bench", actor: "org_bench", refs: numbers.map { "bench_\($0)" },
                                             hashes: numbers.map { "sha256:" + SHA256.hexDigest(Array(String($0).utf8)) })
            }
        } else if arguments[0] == "ledger", (3...4).contains(arguments.count), let writers = Int(arguments[1]), let seconds = Int(arguments[2]) {
            let deadline = started + .seconds(seconds)
            // With a rate (entries/s over all writers) each writer keeps to its share of a schedule,
            // so the lag measures the sequencer, not a backlog the writers built.
            let interval: Duration? = arguments.count == 4 ? Int(arguments[3]).map { .seconds(Double(writers) / Double($0)) } : nil
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<writers {
                    group.addTask {
                        var index = 0
                        var due = started
                        while clock.now < deadline {
                            if let interval {
                                due += interval
                                if due > clock.now { try await Task.sleep(until: due, clock: clock) }
                            }
                            try await ledger.enqueueLoad(type: "bench", actor: "org_bench", refs: ["w\(writer)-\(index)"],
                                                         hashes: ["sha256:" + String(repeating: "ab", count: 32)])
                            index += 1
                        }
                    }
                }
                try await group.waitForAll()
            }
        } else {
            throw CocoaError(.featureUnsupported, userInfo: [NSLocalizedDescriptionKey: "usage: careledger-bench ledger <writers> <seconds> [entries/s] | ledger-fill <entries>"])
        }
        let enqueued = clock.now - started
        while try await pool.query("SELECT count(*) AS n FROM ledger_queue")[0].decode("n", as: Int64.self) > 0 {
            try await Task.sleep(for: .milliseconds(20))
        }
        let drained = clock.now - started
        await ledger.stop()
        let after = try await pool.query("SELECT count(*) AS n FROM ledger_entries")[0].decode("n", as: Int64.self)
        // Commit to sequenced: from the row's insert (clock_timestamp, just before its commit) to the
        // start of the batch that took it; the batch then commits within a few milliseconds.
        let latency = try await pool.query("""
            SELECT coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), 0) AS p50,
                   coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms), 0) AS p99
            FROM (SELECT extract(epoch FROM (sequenced_at - enqueued_at)) * 1000 AS ms FROM ledger_entries WHERE seq >= \(before)) s
            """)
        let p50 = try latency[0].decode("p50", as: Double.self), p99 = try latency[0].decode("p99", as: Double.self)
        let seconds = Double(drained.components.seconds) + Double(drained.components.attoseconds) / 1e18
        let writing = Double(enqueued.components.seconds) + Double(enqueued.components.attoseconds) / 1e18
        print(String(format: #"{"entries":%lld,"seconds":%.2f,"writeSeconds":%.2f,"entriesPerSecond":%.0f,"lagP50ms":%.1f,"lagP99ms":%.1f}"#,
                     after - before, seconds, writing, Double(after - before) / seconds, p50, p99))
    }
}
