import HTTP

/// A list clients poll in ledger order (`after`, `limit`, and `wait` up to 30 s). The cursor is the
/// seq of an item's ledger entry. The sequencer assigns seqs only to committed transactions, in
/// batches that become visible whole and in order, so everything after a cursor that will ever
/// exist either is visible already or gets a larger seq: a poller never skips an item that commits
/// late, however many writers and server instances there are (unlike ids or timestamps, which are
/// fixed before commit).
struct LedgerFeed {
    static let maximumWait = 30

    let afterSeq: Int64
    let after: String?
    let limit: Int
    let wait: Duration

    init(_ query: QueryParameters) throws(HTTPError) {
        let pagination = try Pagination(query)
        afterSeq = try pagination.afterSequence() ?? -1
        after = pagination.after
        limit = pagination.limit
        guard let text = query["wait"] else {
            wait = .zero
            return
        }
        guard let seconds = Int(text), (0...Self.maximumWait).contains(seconds) else {
            throw APIError.badRequest("'wait' must be 0 to \(Self.maximumWait) seconds.")
        }
        wait = .seconds(seconds)
    }

    /// The rows after the cursor (`fetch` gets the seq and `limit + 1`); when there are none yet,
    /// waits for sequenced batches until one brings some or `wait` is over.
    func poll<Row>(_ batches: BatchNotifier, fetch: (_ afterSeq: Int64, _ limit: Int) async throws -> [Row]) async throws -> [Row] {
        let deadline = ContinuousClock.now + wait
        while true {
            let rows = try await fetch(afterSeq, limit + 1)
            if !rows.isEmpty || ContinuousClock.now >= deadline { return rows }
            await batches.next(timeout: deadline - ContinuousClock.now)
        }
    }

    /// The page of `rows` (fetched with `limit + 1`): the items shown, `next` when more is waiting
    /// now, and `cursor`, where to poll from next time (the request's own when the page is empty).
    func page<Row>(_ rows: [Row], seq: (Row) -> Int64) -> (shown: ArraySlice<Row>, next: String?, cursor: String?) {
        let shown = rows.prefix(limit)
        return (shown, rows.count > limit ? shown.last.map { String(seq($0)) } : nil, shown.last.map { String(seq($0)) } ?? after)
    }
}
