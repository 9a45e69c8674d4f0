import HTTP

/// `after` and `limit` of a cursor-paginated list.
struct Pagination {
    static let defaultLimit = 50
    static let maximumLimit = 200

    let after: String?
    let limit: Int

    init(_ query: QueryParameters) throws(HTTPError) {
        after = query["after"].flatMap { $0.isEmpty ? nil : $0 }
        guard let text = query["limit"] else {
            limit = Self.defaultLimit
            return
        }
        guard let limit = Int(text), (1...Self.maximumLimit).contains(limit) else {
            throw APIError.badRequest("'limit' must be an integer from 1 to \(Self.maximumLimit).")
        }
        self.limit = limit
    }

    /// `after` as a sequence-number cursor (audit events, ledger-ordered feeds).
    func afterSequence() throws(HTTPError) -> Int64? {
        guard let after else { return nil }
        guard let seq = Int64(after), seq >= 0 else { throw APIError.badRequest("'after' must be a cursor from a previous page.") }
        return seq
    }

    /// The page for rows fetched with `limit + 1`: the extra row only says there is more.
    func page<Row, Item: Encodable>(_ rows: [Row], cursor: (Row) -> String, item: (Row) throws -> Item) rethrows -> Page<Item> {
        let shown = rows.prefix(limit)
        let next = rows.count > limit ? shown.last.map(cursor) : nil
        return Page(items: try shown.map(item), next: next)
    }
}
