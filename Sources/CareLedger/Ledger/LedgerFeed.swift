import Postgres

/// A list clients poll in ledger order (`after`, `limit`, and `wait` up to 30 s). The cursor is the
/// seq of an item's ledger entry. The sequencer assigns seqs only to committed transactions, in
/// batches that become visible whole and in order, so everything after a cursor that will ever
/// exist either is visible already or gets a larger seq: a poller never skips an item that commits
/// late, however many writers and server instances there are (unlike ids or timestamps, which are
/// fixed before commit).
///
/// Each poll reads the log forward in windows of entries (`scanWindow`) and asks the area for its
/// items among them, so its cost follows the entries since the cursor, not the size of the caller's
/// history; a window with nothing for the caller still moves the cursor past it.
struct LedgerFeed {
    static let maximumWait = 30
    static let scanWindow = 2_000
    /// Windows one request reads at most before answering (an empty page whose `next` says go on).
    static let windowsPerRequest = 10

    /// The items shown, `next` when more may be waiting now, and `cursor`, where to poll from next time.
    struct Page<Row> {
        let shown: [Row]
        let next: String?
        let cursor: String?
    }

    let afterSeq: Int64
    let after: String?
    let limit: Int
    let wait: Duration

    /// A poll from `pagination`'s cursor (a seq), waiting up to `wait` for a first item.
    init(_ pagination: Pagination, wait: Duration) throws(DomainError) {
        afterSeq = try pagination.afterSequence() ?? -1
        after = pagination.after
        limit = pagination.limit
        self.wait = wait
    }

    /// The page after the cursor. `fetch` gets a range of seqs, all visible on the pool it is
    /// given, and returns the caller's items in it in seq order (at most the given count); when
    /// there are none yet, waits for sequenced batches until one brings some or `wait` is over.
    /// The pool is the hot standby when it holds what the primary is known to have past the
    /// cursor: a standby is a consistent past state of the primary, so its page is a gap-free
    /// prefix of the primary's, and the next poll goes on from its cursor.
    func poll<Row>(_ ledger: LedgerService, seq: (Row) -> Int64,
                   fetch: (_ seqs: ClosedRange<Int64>, _ limit: Int, _ source: PostgresPool) async throws -> [Row]) async throws -> Page<Row> {
        let deadline = ContinuousClock.now + wait
        var scannedTo = afterSeq
        var windows = 0
        while true {
            let from = scannedTo
            let (found, rows) = try await ledger.feedRead(after: from) { source -> ((last: Int64, count: Int)?, [Row]) in
                guard let window = try await ledger.store.window(after: from, size: Self.scanWindow, on: source) else { return (nil, []) }
                return (window, try await fetch(from + 1...window.last, limit + 1, source))
            }
            if let window = found {
                if rows.count > limit {
                    let shown = Array(rows.prefix(limit))
                    let cursor = shown.last.map { String(seq($0)) }
                    return Page(shown: shown, next: cursor, cursor: cursor)
                }
                scannedTo = window.last
                windows += 1
                let more = window.count == Self.scanWindow
                if !rows.isEmpty || (more && windows >= Self.windowsPerRequest) {
                    return Page(shown: rows, next: more ? String(scannedTo) : nil, cursor: String(scannedTo))
                }
                if more { continue }
            }
            guard ContinuousClock.now < deadline else {
                return Page(shown: [], next: nil, cursor: scannedTo > afterSeq ? String(scannedTo) : after)
            }
            await ledger.batches.next(timeout: deadline - ContinuousClock.now)
        }
    }
}
