/// `after` and `limit` of a cursor-paginated list.
struct Pagination: Sendable {
    static let defaultLimit = 50
    static let maximumLimit = 200

    let after: String?
    let limit: Int

    init(after: String?, limit: Int = Pagination.defaultLimit) {
        self.after = after.flatMap { $0.isEmpty ? nil : $0 }
        self.limit = limit
    }

    /// `after` as a sequence-number cursor (audit events, ledger-ordered feeds).
    func afterSequence() throws(DomainError) -> Int64? {
        guard let after else { return nil }
        guard let seq = Int64(after), seq >= 0 else { throw .invalid("'after' must be a cursor from a previous page.") }
        return seq
    }

    /// The page for rows fetched with `limit + 1`: the extra row only says there is more.
    func page<Row, Item: Encodable>(_ rows: [Row], cursor: (Row) -> String, item: (Row) throws -> Item) rethrows -> Page<Item> {
        let shown = rows.prefix(limit)
        let next = rows.count > limit ? shown.last.map(cursor) : nil
        return Page(items: try shown.map(item), next: next)
    }
}

/// A page of a list: the items, and the cursor for the next page (null on the last).
struct Page<Item: Encodable>: Encodable {
    let items: [Item]
    let next: String?

    private enum CodingKeys: String, CodingKey { case items, next }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(items, forKey: .items)
        try container.encode(next, forKey: .next)
    }
}
