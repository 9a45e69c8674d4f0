import HTTP
import Postgres
import Synchronization
import Telemetry

/// Makes the limits that protect the service hold for the deployment as a whole: N instances behind
/// a load balancer must not mean N times a key's request rate, an address's authentication-failure
/// budget, or an address's connections. Every `interval`, each instance publishes in one statement
/// the tokens it granted since the last round (per key and per address) and its open connections
/// per address, and reads what the others published: their grants are charged to its own buckets,
/// their connections counted against the address's limit. The deployment so admits at most about
/// one interval's worth of grants per instance past a limit (while the news travels), not N times
/// the limit. Rows live in `limit_usage`, soft state a crash may lose; a round that fails leaves
/// each instance to its own counts until the next one succeeds.
public final class DeploymentLimits: ConnectionsElsewhere, Sendable {
    public static let defaultInterval: Duration = .milliseconds(100)
    /// Connections an instance reported that count while its report is younger than this.
    static let connectionReportLifetime = 5
    /// Grant counters of instances quiet for longer than this are deleted.
    static let quietRowLifetime = 600

    let pool: PostgresPool
    let buckets: AccessBuckets
    /// This process, as its rows name it.
    let instance = ResourceID.generate("ins")
    private let interval: Duration
    private let log: EventLog?
    private let state = Mutex(SyncState())
    private let task = Mutex<Task<Void, Never>?>(nil)

    private struct SyncState {
        /// Others' open connections, by client address.
        var elsewhere: [String: Int] = [:]
        /// Others' grant counters as last read, by instance, scope and name.
        var seen: [String: Int64] = [:]
        var rounds = 0
        /// Our addresses with open connections in the last round (a closed one is published as 0).
        var publishedConnections: Set<String> = []
        var failing = false
    }

    public init(pool: PostgresPool, limits: AccessLimits, interval: Duration = defaultInterval, log: EventLog? = nil) {
        self.pool = pool
        buckets = limits.buckets
        self.interval = interval
        self.log = log
    }

    public func openConnections(from address: String) -> Int {
        state.withLock { $0.elsewhere[address] ?? 0 }
    }

    /// Runs a round every `interval` until `stop()`; `localConnections` gives this instance's open
    /// connections by address.
    public func start(localConnections: @escaping @Sendable () -> [String: Int]) {
        let interval = self.interval
        task.withLock { task in
            task = Task { [weak self] in
                while !Task.isCancelled {
                    guard let self else { return }
                    do {
                        try await self.sync(localConnections: localConnections())
                        self.state.withLock { $0.failing = false }
                    } catch {
                        // Once per outage, not ten times a second.
                        if !self.state.withLock({ state in defer { state.failing = true }; return state.failing }) {
                            self.log?.log(.warning, "deployment limits are per instance until the database answers", [("error", .string("\(error)"))])
                        }
                    }
                    try? await Task.sleep(for: interval)
                }
            }
        }
    }

    public func stop() {
        task.withLock { $0 }?.cancel()
    }

    /// One round: publish what was granted here since the last and what is open here now, read
    /// what the other instances published, and apply it.
    func sync(localConnections: [String: Int]) async throws {
        let requests = buckets.requests.drainTaken(), failures = buckets.failures.drainTaken()
        let (closed, round) = state.withLock { state -> ([String], Int) in
            defer {
                state.publishedConnections = Set(localConnections.filter { $0.value > 0 }.keys)
                state.rounds += 1
            }
            return (state.publishedConnections.subtracting(localConnections.keys).sorted(), state.rounds)
        }
        var rows: [(scope: String, name: String, amount: Int)] = []
        rows += requests.map { ("key", $0.key, $0.value) }
        rows += failures.map { ("auth", $0.key, $0.value) }
        rows += localConnections.map { ("conn", $0.key, $0.value) } + closed.map { ("conn", $0, 0) }
        let published: [UsageRow]
        do {
            published = try await LimitUsageStore().exchange(instance: instance, rows: rows, connectionLifetime: Self.connectionReportLifetime,
                                                              quietLifetime: Self.quietRowLifetime, prune: round % 100 == 0, on: pool)
        } catch {
            // Not published: grant the counts back to the next round rather than lose them.
            buckets.requests.restoreTaken(requests)
            buckets.failures.restoreTaken(failures)
            throw error
        }
        apply(published, firstRound: round == 0)
    }

    private func apply(_ published: [UsageRow], firstRound: Bool) {
        var elsewhere: [String: Int] = [:]
        var charges: [(scope: String, name: String, tokens: Int)] = []
        state.withLock { state in
            for row in published {
                if row.scope == "conn" {
                    elsewhere[row.name, default: 0] += Int(clamping: row.amount)
                    continue
                }
                let key = "\(row.instance)\t\(row.scope)\t\(row.name)"
                let previous = state.seen[key]
                state.seen[key] = row.amount
                // A counter first seen in our first round is history; later, all of it is news. A
                // counter smaller than before was deleted and started again.
                let news = previous.map { row.amount >= $0 ? row.amount - $0 : row.amount } ?? (firstRound ? 0 : row.amount)
                if news > 0 { charges.append((row.scope, row.name, Int(clamping: news))) }
            }
            state.elsewhere = elsewhere
            if state.seen.count > 200_000 { state.seen = [:] }
        }
        for charge in charges {
            (charge.scope == "key" ? buckets.requests : buckets.failures).charge(charge.name, tokens: charge.tokens)
        }
    }
}

/// One instance's published counter or connection count.
struct UsageRow: Sendable {
    let instance: String
    let scope: String
    let name: String
    let amount: Int64
}

/// The only SQL on `limit_usage`.
struct LimitUsageStore: Sendable {
    /// Adds this instance's grants to its counters and sets its connection counts, and returns the
    /// other instances' rows that count: grant counters, and connection counts reported within
    /// `connectionLifetime` seconds. One statement, one round trip.
    func exchange(instance: String, rows: [(scope: String, name: String, amount: Int)], connectionLifetime: Int, quietLifetime: Int,
                  prune: Bool, on runner: some QueryRunner) async throws -> [UsageRow] {
        if prune {
            try await runner.query("DELETE FROM limit_usage WHERE updated_at < now() - make_interval(secs => \(quietLifetime))")
        }
        let result = try await runner.query("""
            WITH mine AS (
                INSERT INTO limit_usage (instance, scope, name, amount)
                SELECT \(instance), s, n, a FROM unnest(\(PostgresArray(rows.map { Optional($0.scope) }))::text[],
                                                        \(PostgresArray(rows.map { Optional($0.name) }))::text[],
                                                        \(PostgresArray(rows.map { Optional(String($0.amount)) }))::text[]::bigint[]) AS u(s, n, a)
                ON CONFLICT (instance, scope, name) DO UPDATE
                SET amount = CASE WHEN EXCLUDED.scope = 'conn' THEN EXCLUDED.amount ELSE limit_usage.amount + EXCLUDED.amount END,
                    updated_at = now()
                RETURNING 1)
            SELECT instance, scope, name, amount FROM limit_usage
            WHERE instance <> \(instance) AND (scope <> 'conn' OR (amount > 0 AND updated_at > now() - make_interval(secs => \(connectionLifetime))))
            """)
        return try result.all.map { row in
            UsageRow(instance: try row.decode("instance"), scope: try row.decode("scope"), name: try row.decode("name"),
                     amount: try row.decode("amount", as: Int64.self))
        }
    }
}
