import HTTP

/// Numbers and cursors as requests spell them, checked once, here: every value a route reads from a
/// query is in range before any arithmetic meets it.
extension QueryParameters {
    /// A non-negative integer parameter, nil when absent; anything else (a sign, a fraction, digits
    /// past Int64, an empty value) is an `invalid` naming the parameter.
    func nonNegativeInteger(_ name: String) throws(DomainError) -> Int64? {
        guard let text = self[name] else { return nil }
        guard let number = Int64(text), number >= 0, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            throw .invalid("'\(name)' must be a non-negative integer.")
        }
        return number
    }
}

extension Pagination {
    /// `after` and `limit` (1 to `maximumLimit`, default `defaultLimit`) from a query.
    init(_ query: QueryParameters) throws(DomainError) {
        guard let text = query["limit"] else {
            self.init(after: query["after"])
            return
        }
        guard let limit = Int(text), (1...Self.maximumLimit).contains(limit) else {
            throw .invalid("'limit' must be an integer from 1 to \(Self.maximumLimit).")
        }
        self.init(after: query["after"], limit: limit)
    }
}

extension LedgerFeed {
    /// `after`, `limit` and `wait` (0 to `maximumWait` seconds) from a query.
    init(_ query: QueryParameters) throws(DomainError) {
        let pagination = try Pagination(query)
        guard let text = query["wait"] else {
            try self.init(pagination, wait: .zero)
            return
        }
        guard let seconds = Int(text), (0...Self.maximumWait).contains(seconds) else {
            throw .invalid("'wait' must be 0 to \(Self.maximumWait) seconds.")
        }
        try self.init(pagination, wait: .seconds(seconds))
    }
}

extension Idempotency {
    /// The request's `Idempotency-Key`, or nil when it carries none. The request hash covers the
    /// method, path and body, so a key reused on another endpoint is a different request.
    static func of(_ request: Request) throws(DomainError) -> Idempotency? {
        guard let key = request.headers.first(name: "Idempotency-Key") else { return nil }
        return try Idempotency(key: key, method: request.method.rawValue, path: request.path, body: request.body)
    }
}
