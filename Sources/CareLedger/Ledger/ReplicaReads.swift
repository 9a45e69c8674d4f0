import Postgres
import Synchronization

/// Reads that tolerate lag, served from a hot standby when it already holds what they need: ledger
/// entries, proofs and checkpoints at sizes the standby has, and feeds past their cursor. A read
/// the standby cannot answer yet (a size it has not replayed, a feed whose new items it lacks) goes
/// to the primary, so an answer is never older than the caller asked for. Nothing that must see
/// the caller's own last write is routed here: only the ledger's and the feeds' reads ask.
///
/// The standby's size is its latest signed tree head (heads commit with their entries and nodes),
/// read at most every `refreshInterval`; a standby that errs is left alone for `retryAfter`.
final class ReplicaReads: Sendable {
    let pool: PostgresPool
    private let refreshInterval: Duration
    private let retryAfter: Duration
    private let state = Mutex(Known())

    private struct Known {
        /// The standby's tree size as last read.
        var size: Int64 = 0
        var checked: ContinuousClock.Instant?
        var downUntil: ContinuousClock.Instant?
        /// A read of its size is under way.
        var looking = false
    }
    /// Reads sent to the standby and to the primary (for `/metrics`).
    let servedByReplica = Atomic<Int>(0)
    let servedByPrimary = Atomic<Int>(0)

    init(pool: PostgresPool, refreshInterval: Duration = .milliseconds(20), retryAfter: Duration = .seconds(1)) {
        self.pool = pool
        self.refreshInterval = refreshInterval
        self.retryAfter = retryAfter
    }

    /// The tree size the standby was last seen to hold.
    var knownSize: Int64 { state.withLock { $0.size } }

    /// The standby's pool when it holds the first `size` entries (and their signed head), else `primary`.
    func pool(covering size: Int64, else primary: PostgresPool) async -> PostgresPool {
        await holds(size) ? replicaServed() : primaryServed(primary)
    }

    /// For a feed polled after `seq`, where the primary is known to hold `primarySize` entries: the
    /// standby when it has something past the cursor, or everything the primary is known to have.
    func pool(feedAfter seq: Int64, primarySize: Int64, else primary: PostgresPool) async -> PostgresPool {
        // The entry after the cursor is seq + 1, in a tree of seq + 2; computed only below the
        // primary's size, so a cursor near Int64.max cannot overflow.
        let wanted = seq < primarySize - 1 ? seq + 2 : primarySize
        return await holds(wanted) ? replicaServed() : primaryServed(primary)
    }

    /// A read on the standby failed: leave it alone for `retryAfter` (the next look reads its size again).
    func markDown() {
        let now = ContinuousClock.now
        state.withLock { state in
            state.downUntil = now + retryAfter
            state.size = 0
            state.checked = nil
        }
    }

    private func replicaServed() -> PostgresPool {
        servedByReplica.wrappingAdd(1, ordering: .relaxed)
        return pool
    }

    private func primaryServed(_ primary: PostgresPool) -> PostgresPool {
        servedByPrimary.wrappingAdd(1, ordering: .relaxed)
        return primary
    }

    private func holds(_ size: Int64) async -> Bool {
        let now = ContinuousClock.now
        // One look at a time: while it runs, other reads go by what is known (the primary, when short).
        let (known, look) = state.withLock { state -> (Int64, Bool) in
            if let down = state.downUntil, now < down { return (-1, false) }
            guard state.size < size, !state.looking, state.checked.map({ now - $0 >= refreshInterval }) ?? true else { return (state.size, false) }
            state.looking = true
            return (state.size, true)
        }
        if known >= size { return true }
        guard look else { return false }
        defer { state.withLock { $0.looking = false } }
        do {
            let rows = try await pool.query("SELECT coalesce(max(tree_size), 0) AS size FROM ledger_heads")
            let replayed = try rows.first?.decode("size", as: Int64.self) ?? 0
            state.withLock { state in
                state.size = max(state.size, replayed)
                state.checked = now
                state.downUntil = nil
            }
            return replayed >= size
        } catch {
            state.withLock { $0.downUntil = now + retryAfter }
            return false
        }
    }
}
