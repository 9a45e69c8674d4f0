// careledger-bench: load generators for Benchmarks/*.sh, run against the same database as the
// reference tool (pgbench) so the two are compared in one run.
//
//   careledger-bench postgres <select1|insert-jsonb> <concurrency> <seconds> [--no-multiplexing]
//   careledger-bench ledger <writers> <seconds> | ledger-fill <entries>   (see LedgerBench.swift)
//   careledger-bench http-rate <port> <requests/s> <seconds> <connections> <path>   (see HTTPRate.swift)
//
// Reads DATABASE_URL (not http-rate). Prints one JSON line: transactions, tps, p50/p99 latency in ms.
import Foundation
import Postgres
import IOLoop

struct Options {
    let scenario: String
    let concurrency: Int
    let seconds: Int
    /// Off: every statement takes a pooled connection of its own, as pgbench's clients each have one.
    let multiplexing: Bool

    init(_ arguments: [String]) throws {
        guard [4, 5].contains(arguments.count), arguments[0] == "postgres", ["select1", "insert-jsonb"].contains(arguments[1]),
              let concurrency = Int(arguments[2]), concurrency > 0, let seconds = Int(arguments[3]), seconds > 0,
              arguments.count == 4 || arguments[4] == "--no-multiplexing"
        else {
            throw CocoaError(.featureUnsupported, userInfo: [
                NSLocalizedDescriptionKey: "usage: careledger-bench postgres <select1|insert-jsonb> <concurrency> <seconds> [--no-multiplexing]"])
        }
        scenario = arguments[1]
        self.concurrency = concurrency
        self.seconds = seconds
        multiplexing = arguments.count == 4
    }
}

/// A 2 KB JSON document, like a small clinical payload.
let document = PostgresJSON(text: "{\"resourceType\":\"Observation\",\"note\":\"" + String(repeating: "x", count: 2000) + "\"}")

/// Each worker runs on a database event loop, as the server's request handlers do (see
/// `IOEventLoop`): its statements' answers resume it on the thread that read them.
func runWorker(pool: PostgresPool, scenario: String, until deadline: ContinuousClock.Instant) async throws -> [Duration] {
    try await withTaskExecutorPreference(IOEventLoop.next()) {
        try await runStatements(pool: pool, scenario: scenario, until: deadline)
    }
}

func runStatements(pool: PostgresPool, scenario: String, until deadline: ContinuousClock.Instant) async throws -> [Duration] {
    let clock = ContinuousClock()
    var latencies: [Duration] = []
    latencies.reserveCapacity(1_000_000)
    // One clock reading per statement: each one's end is the next one's start.
    var started = clock.now
    while started < deadline {
        if scenario == "select1" {
            try await pool.query("SELECT 1 AS one")
        } else {
            try await pool.query("INSERT INTO bench_jsonb (doc) VALUES (\(document)::jsonb)")
        }
        let ended = clock.now
        latencies.append(ended - started)
        started = ended
    }
    return latencies
}

if CommandLine.arguments.dropFirst().first == "http-rate" {
    try HTTPRate.run(arguments: Array(CommandLine.arguments.dropFirst()))
    exit(0)
}
guard let url = ProcessInfo.processInfo.environment["DATABASE_URL"] else {
    FileHandle.standardError.write(Data("DATABASE_URL is not set\n".utf8))
    exit(64)
}
let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.first?.hasPrefix("ledger") == true {
    try await LedgerBench.run(arguments: arguments, url: url)
    exit(0)
}
let options = try Options(arguments)
var configuration = PostgresPool.Configuration(conninfo: url)
configuration.maxConnections = options.concurrency
configuration.multiplexing = options.multiplexing
let pool = PostgresPool(configuration: configuration)
// Warm up: open every connection and prepare the statement before measuring.
try await withThrowingTaskGroup(of: [Duration].self) { group in
    for _ in 0..<options.concurrency {
        group.addTask { try await runWorker(pool: pool, scenario: options.scenario, until: .now + .milliseconds(500)) }
    }
    for try await _ in group {}
}
let clock = ContinuousClock()
let started = clock.now
let deadline = started + .seconds(options.seconds)
var latencies: [Duration] = try await withThrowingTaskGroup(of: [Duration].self) { group in
    for _ in 0..<options.concurrency {
        group.addTask { try await runWorker(pool: pool, scenario: options.scenario, until: deadline) }
    }
    var all: [Duration] = []
    for try await latencies in group { all += latencies }
    return all
}
let elapsed = clock.now - started
latencies.sort()
func milliseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
}
let seconds = milliseconds(elapsed) / 1000
let p50 = latencies.isEmpty ? 0 : milliseconds(latencies[latencies.count / 2])
let p99 = latencies.isEmpty ? 0 : milliseconds(latencies[min(latencies.count - 1, latencies.count * 99 / 100)])
print(String(format: #"{"scenario":"%@","concurrency":%d,"transactions":%d,"tps":%.0f,"p50ms":%.3f,"p99ms":%.3f}"#,
             options.scenario, options.concurrency, latencies.count, Double(latencies.count) / seconds, p50, p99))
