/// An ordered list of header fields. Repeated fields are kept, in order, and names compare
/// case-insensitively (RFC 9110 §5.1, §5.3); nothing is ever dropped or merged behind the caller's back.
public struct HTTPHeaders: Sendable, Equatable, Sequence {
    /// One field line.
    public struct Field: Sendable, Equatable {
        /// The name as sent.
        public var name: String
        /// The value with surrounding whitespace removed.
        public var value: String
    }

    private var fields: [Field]

    /// Creates headers from name/value pairs, in order.
    public init(_ pairs: [(String, String)] = []) {
        fields = pairs.map { Field(name: $0.0, value: $0.1) }
    }

    /// The number of field lines.
    public var count: Int { fields.count }

    public func makeIterator() -> IndexingIterator<[Field]> { fields.makeIterator() }

    /// Appends a field line, keeping any earlier ones of the same name.
    public mutating func add(name: String, value: String) {
        fields.append(Field(name: name, value: value))
    }

    /// Replaces every field of this name with one field line.
    public mutating func replaceOrAdd(name: String, value: String) {
        remove(name: name)
        add(name: name, value: value)
    }

    /// Removes every field of this name.
    public mutating func remove(name: String) {
        fields.removeAll { Self.namesEqual($0.name, name) }
    }

    /// Every value of this name, in order.
    public subscript(name: String) -> [String] {
        fields.compactMap { Self.namesEqual($0.name, name) ? $0.value : nil }
    }

    /// The first value of this name.
    public func first(name: String) -> String? {
        fields.first { Self.namesEqual($0.name, name) }?.value
    }

    /// Whether any field has this name.
    public func contains(name: String) -> Bool {
        fields.contains { Self.namesEqual($0.name, name) }
    }

    /// The comma-separated list elements of every field of this name, trimmed and lower-cased, empty
    /// elements skipped (RFC 9110 §5.6.1).
    public func tokens(name: String) -> [String] {
        self[name].flatMap { value in
            value.split(separator: ",", omittingEmptySubsequences: true).compactMap { element -> String? in
                let trimmed = element.trimmingWhitespace()
                return trimmed.isEmpty ? nil : trimmed.lowercased()
            }
        }
    }

    static func namesEqual(_ lhs: String, _ rhs: String) -> Bool {
        let a = lhs.utf8, b = rhs.utf8
        guard a.count == b.count else { return false }
        return zip(a, b).allSatisfy { ByteClass.lower($0) == ByteClass.lower($1) }
    }
}

extension Substring {
    /// The substring without leading and trailing SP or HTAB.
    func trimmingWhitespace() -> String {
        let isOWS: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let start = firstIndex(where: { !isOWS($0) }), let end = lastIndex(where: { !isOWS($0) }) else {
            return ""
        }
        return String(self[start...end])
    }
}
